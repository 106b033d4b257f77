//! When to try a delivery again: one policy for the browser outbox and the proxy's sender.
//!
//! Capped exponential backoff with "equal jitter" (half the delay fixed, half random), so that a
//! thousand browsers that lost the proxy at the same moment do not come back at the same moment,
//! while each still waits at least half its step. The random number is the caller's, so the core
//! stays deterministic and testable.

#[allow(unused_imports)]
use crate::prelude::*;

/// How long the browser outbox keeps trying a sale before it gives up (7 days). The proxy trusts
/// a browser's `occurred_at` only within this age.
pub const OUTBOX_MAX_AGE_MS: u64 = 7 * 86_400_000;

/// A backoff schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first delay.
    pub base_ms: u64,
    /// No delay is longer than this.
    pub cap_ms: u64,
}

impl Backoff {
    /// The browser: 1 s, 2 s, 4 s, ... up to 5 minutes.
    pub const BROWSER: Backoff = Backoff {
        base_ms: 1_000,
        cap_ms: 300_000,
    };
    /// The proxy's sender: 2 s (Growi's pace), 4 s, ... up to 10 minutes.
    pub const PROXY: Backoff = Backoff {
        base_ms: 2_000,
        cap_ms: 600_000,
    };

    /// The delay before retry number `attempt` (0 for the first retry), given `jitter` in [0, 1).
    pub fn delay_ms(&self, attempt: u32, jitter: f64) -> u64 {
        let step = self
            .base_ms
            .saturating_mul(1u64 << attempt.min(40))
            .min(self.cap_ms);
        let half = step / 2;
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        half + ((step - half) as f64 * jitter) as u64
    }
}

/// What an HTTP answer to a delivery means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Accepted (2xx): done.
    Delivered,
    /// Worth trying again: 408, 429, 5xx.
    Retry,
    /// Refused for good: any other status.
    Rejected,
}

/// Classifies a status code.
pub fn classify(status: u16) -> Disposition {
    match status {
        200..=299 => Disposition::Delivered,
        408 | 429 | 500..=599 => Disposition::Retry,
        _ => Disposition::Rejected,
    }
}

/// Reads a `Retry-After` header (whole seconds) as milliseconds, capped at one day. HTTP dates
/// are not used by the proxy and read as `None`.
pub fn parse_retry_after(value: &str) -> Option<u64> {
    let v = value.trim();
    if v.len() > 12 {
        return None;
    }
    crate::text::digits(v).map(|secs| secs.min(86_400) * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_jitters_within_bounds() {
        let b = Backoff::BROWSER;
        assert_eq!(b.delay_ms(0, 0.0), 500);
        assert_eq!(b.delay_ms(0, 1.0), 1000);
        assert_eq!(b.delay_ms(3, 0.0), 4000);
        assert_eq!(b.delay_ms(30, 0.999), 299_850);
        assert_eq!(b.delay_ms(u32::MAX, 1.0), 300_000);
        assert_eq!(b.delay_ms(1, f64::NAN), 1000);
    }

    #[test]
    fn classification() {
        assert_eq!(classify(202), Disposition::Delivered);
        assert_eq!(classify(200), Disposition::Delivered);
        for s in [408, 429, 500, 502, 503] {
            assert_eq!(classify(s), Disposition::Retry, "{s}");
        }
        for s in [400, 401, 403, 404, 413, 422] {
            assert_eq!(classify(s), Disposition::Rejected, "{s}");
        }
    }

    #[test]
    fn retry_after() {
        assert_eq!(parse_retry_after("2"), Some(2000));
        assert_eq!(parse_retry_after(" 3 "), Some(3000));
        assert_eq!(parse_retry_after("0.5"), None);
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("999999999"), Some(86_400_000));
    }
}
