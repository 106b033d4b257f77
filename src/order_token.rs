//! Order tokens: the merchant's backend signs `order_id`, `total`, `currency` and an expiry with
//! a shared secret (`SALEBEACON_ORDER_TOKEN_SECRET`), the page sends the token with its sale as
//! `order_token`, and the proxy, which has the secret too, refuses a sale whose token does not
//! match: a page cannot mint one, so a forged or altered sale fails.
//!
//! This is the one definition of the format, `<expiry unix seconds>.<lower-case hex
//! HMAC-SHA256(secret, message)>` with the message `"{order_id}\n{total}\n{currency}\n{expiry}"`
//! (`total` empty when the sale has none, `currency` lower case). [`message`] is always here (the
//! proxy verifies against it); [`sign_order_token`] needs the `token` feature (a merchant's Rust
//! backend: `salebeacon = { version = "0.1", default-features = false, features = ["token"] }`),
//! which brings RustCrypto's HMAC and SHA-256 and nothing for the browser. The npm package's
//! `salebeacon/server` signs the same way with WebCrypto; a test holds the three together.

#[allow(unused_imports)]
use crate::prelude::*;

/// The text an order token signs.
pub fn message(order_id: &str, total: Option<u64>, currency: &str, expiry: u64) -> String {
    let total = total.map(|t| t.to_string()).unwrap_or_default();
    format!(
        "{order_id}\n{total}\n{}\n{expiry}",
        currency.trim().to_ascii_lowercase()
    )
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    s
}

/// Mints an order token valid until `expiry` (Unix seconds) for the sale the page will send.
#[cfg(feature = "token")]
pub fn sign_order_token(
    secret: &[u8],
    order_id: &str,
    total: Option<u64>,
    currency: &str,
    expiry: u64,
) -> String {
    use hmac::{Hmac, Mac};
    // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
    let tag = match <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret) {
        Ok(mut mac) => {
            mac.update(message(order_id, total, currency, expiry).as_bytes());
            mac.finalize().into_bytes()
        }
        Err(_) => return String::new(),
    };
    format!("{expiry}.{}", hex(&tag))
}

#[cfg(all(test, feature = "token"))]
mod tests {
    use super::*;

    /// RFC 4231 test case 2 ("Jefe"), through our hex.
    #[test]
    fn hmac_sha256_is_the_standard_one() {
        use hmac::{Hmac, Mac};
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex(&mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn the_token_binds_every_part_of_the_order() {
        let t = sign_order_token(
            b"order-token-secret-0123456789",
            "ORD-9",
            Some(12999),
            "USD",
            1_800_000_600,
        );
        // The same vector as www/package/server.js signs (proxy/tests/order_token.rs runs both).
        assert_eq!(
            t,
            "1800000600.bbe9cb5928881d703f4d3501e6b43b2ef28722625357029051cb822d4e5c8b57"
        );
        let other = |o: &str, tot: Option<u64>, c: &str, e: u64| {
            sign_order_token(b"order-token-secret-0123456789", o, tot, c, e)
        };
        assert_ne!(t, other("ORD-8", Some(12999), "usd", 1_800_000_600));
        assert_ne!(t, other("ORD-9", Some(12998), "usd", 1_800_000_600));
        assert_ne!(t, other("ORD-9", None, "usd", 1_800_000_600));
        assert_ne!(t, other("ORD-9", Some(12999), "eur", 1_800_000_600));
        assert_ne!(t, other("ORD-9", Some(12999), "usd", 1_800_000_601));
        assert_eq!(
            t,
            other("ORD-9", Some(12999), " usd ", 1_800_000_600),
            "currency in any case"
        );
    }
}
