//! The trust policy for browser-facing endpoints: a browser is not trusted.
//!
//! One concern per module, each small enough to read in one sitting:
//! - [`origin`]: which origins may call (CORS for configured ones, nothing for the same origin,
//!   `403` for any other) and who the client is (`X-Forwarded-*` only when trusted); the
//!   middleware [`browser_guard`] applies both, with the rate limit, to `/sales` and `/touch`.
//! - [`rate_limit`]: a token bucket per client address.
//! - [`order_token`]: HMAC-signed order tokens minted by the merchant's backend, which a page
//!   cannot forge.
//! - [`ct_eq`] (here): comparison in constant time, for the admin token.
//!
//! The body limit is axum's `DefaultBodyLimit` (see `lib.rs`), and the server-side-only fields
//! (`commission`, `due_at`, `status`) are refused by the core's `Origin::Browser` validation.

pub mod order_token;
pub mod origin;
pub mod rate_limit;

pub use order_token::{sign_order_token, token_message, verify_order_token};
pub use origin::{browser_guard, check_origin, client_ip, is_https, OriginCheck};
pub use rate_limit::RateLimiter;

use ring::digest;

/// Equality in time that does not depend on where the inputs differ (or their lengths: both are
/// hashed first).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    let (da, db) = (
        digest::digest(&digest::SHA256, a),
        digest::digest(&digest::SHA256, b),
    );
    da.as_ref()
        .iter()
        .zip(db.as_ref())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"abcd"));
    }
}
