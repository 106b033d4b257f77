//! Signed order tokens, verified: the merchant's backend signs `order_id`, `total`, `currency`
//! and an expiry with a shared secret; a forged or altered sale then fails, because a page cannot
//! mint a token. The format and the signing are the core's (`salebeacon::order_token`), shared
//! with merchants' Rust backends; the npm package's `salebeacon/server` signs the same way.
//!
//! The signature is read as the README states it, lower-case hex only, so that exactly one text
//! verifies for a sale and an expiry: a token with any character changed is refused (an
//! upper-case digit used to read as the same signature; found by `proxy/tests/fuzz.rs`).

use ring::hmac;
use salebeacon::{Issue, Sale};

/// The text an order token signs (the core's one definition).
pub use salebeacon::order_token::message as token_message;
/// Mints an order token (the core's; the `sign-token` subcommand and the tests use it).
pub use salebeacon::order_token::sign_order_token;

/// Checks a token against a validated sale at `now` (Unix seconds). The error is the issue to
/// report on `order_token`.
pub fn verify_order_token(secret: &[u8], token: &str, sale: &Sale, now: u64) -> Result<(), Issue> {
    let malformed = || {
        Issue::new(
            "order_token",
            "is malformed: expected <expiry>.<64 lower-case hex digits>",
        )
    };
    let (expiry, sig) = token.trim().split_once('.').ok_or_else(malformed)?;
    if expiry.is_empty() || expiry.len() > 12 || !expiry.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed());
    }
    let expiry_secs: u64 = expiry.parse().map_err(|_| malformed())?;
    let sig = unhex(sig).filter(|s| s.len() == 32).ok_or_else(malformed)?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let message = token_message(&sale.order_id, sale.total, &sale.currency, expiry_secs);
    if hmac::verify(&key, message.as_bytes(), &sig).is_err() {
        return Err(Issue::new(
            "order_token",
            "does not match this order (order_id, total and currency must be exactly what the merchant's backend signed)",
        ));
    }
    if expiry_secs < now {
        return Err(Issue::new(
            "order_token",
            "has expired: the merchant's backend must mint a fresh one",
        ));
    }
    Ok(())
}

/// Lower-case hex only (what [`hex`] writes and the README documents).
fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let val = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    s.as_bytes()
        .chunks(2)
        .map(|p| Some(val(p[0])? << 4 | val(p[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sale(total: Option<u64>) -> Sale {
        let input: salebeacon::SaleInput = serde_json::from_value(serde_json::json!({
            "order_id": "ORD-1", "total": total, "subtotal": 100, "currency": "usd",
            "campaign_affiliate_id": "creator42"
        }))
        .unwrap();
        input.validate(salebeacon::Origin::Browser).unwrap()
    }

    #[test]
    fn tokens_round_trip_and_fail_when_altered() {
        let secret = b"0123456789abcdef0123";
        let t = sign_order_token(secret, "ORD-1", Some(12999), "USD", 2_000_000_000);
        assert!(t.starts_with("2000000000."));
        assert_eq!(t.len(), 11 + 64);
        assert_eq!(
            verify_order_token(secret, &t, &sale(Some(12999)), 1_900_000_000),
            Ok(())
        );
        assert!(verify_order_token(secret, &t, &sale(Some(1)), 1_900_000_000).is_err());
        assert!(verify_order_token(b"another secret!!", &t, &sale(Some(12999)), 0).is_err());
        let expired = verify_order_token(secret, &t, &sale(Some(12999)), 2_000_000_001);
        assert!(expired.unwrap_err().message.contains("expired"));
        let none = sign_order_token(secret, "ORD-1", None, "usd", 2_000_000_000);
        assert_eq!(verify_order_token(secret, &none, &sale(None), 0), Ok(()));
        // One text per signature: the same digits in upper case are refused.
        let (expiry, sig) = t.split_once('.').unwrap();
        let upper = format!("{expiry}.{}", sig.to_ascii_uppercase());
        assert!(verify_order_token(secret, &upper, &sale(Some(12999)), 1_900_000_000).is_err());
        for bad in ["", "x", "1.zz", "1.abcd", ".00"] {
            assert!(
                verify_order_token(secret, bad, &sale(None), 0).is_err(),
                "{bad}"
            );
        }
        assert_eq!(
            token_message("A", Some(5), "EUR", 9),
            "A\n5\neur\n9",
            "the documented message format"
        );
    }
}
