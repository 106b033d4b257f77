//! Growi's rate limits, per API key.
//!
//! Two rules (growi-api.md, "Rate limits"):
//! - a minimum interval between requests (default 2 s): a request that arrives sooner after the
//!   last *accepted* request gets `429` with `retry_after` = the interval rounded up to whole
//!   seconds. A rejected request does **not** count: it neither resets the interval clock nor uses
//!   up hourly quota, so a client that waits `retry_after` after a 429 always gets through.
//! - an optional hourly limit: a fixed one-hour window that opens with the first accepted request;
//!   once `N` requests were accepted in it, requests get `429` with the seconds left in the window
//!   and `reset_time` (ISO 8601) until it closes.
//!
//! Every request that passes these checks counts, whatever it is answered afterwards (a `422`
//! counts like a `201`): Growi limits requests, not sales. Times are taken when the request
//! *arrives* (before any injected latency), with a monotonic clock.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use crate::timefmt;

/// Length of the hourly window.
pub const HOUR: Duration = Duration::from_secs(3600);

/// Which configured key a request used (the keys themselves are never kept here).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyId {
    /// The read-write key.
    Main,
    /// The read-only key.
    ReadOnly,
}

/// Why a request was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// Too soon after the previous accepted request.
    MinInterval {
        /// The interval, worded for the message ("2 seconds").
        interval: String,
        /// The interval rounded up to whole seconds, at least 1.
        retry_after: u64,
    },
    /// The hourly quota is used up.
    Hourly {
        /// N.
        limit: u32,
        /// Whole seconds until the window closes, at least 1.
        retry_after: u64,
        /// When the window closes, ISO 8601.
        reset_time: String,
    },
}

#[derive(Debug, Default)]
struct KeyState {
    last_accepted: Option<Instant>,
    window: Option<(Instant, SystemTime)>,
    count: u32,
}

/// Per-key limiter state.
#[derive(Debug)]
pub struct RateLimiter {
    min_interval: Duration,
    hourly_limit: Option<u32>,
    keys: HashMap<KeyId, KeyState>,
}

/// "2 seconds", "1 second", "0.1 seconds".
pub fn describe_interval(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        let s = ms / 1000;
        if s == 1 {
            "1 second".to_owned()
        } else {
            format!("{s} seconds")
        }
    } else {
        format!("{} seconds", d.as_secs_f64())
    }
}

fn ceil_secs(d: Duration) -> u64 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    secs.max(1)
}

impl RateLimiter {
    /// A limiter; `min_interval` zero and `hourly_limit` `None` disable the rules.
    pub fn new(min_interval: Duration, hourly_limit: Option<u32>) -> RateLimiter {
        RateLimiter {
            min_interval,
            hourly_limit: hourly_limit.filter(|n| *n > 0),
            keys: HashMap::new(),
        }
    }

    /// Checks a request by `key` that arrived at `at` (`wall` is the wall-clock time now, for
    /// `reset_time`); counts it when accepted.
    pub fn check(&mut self, key: KeyId, at: Instant, wall: SystemTime) -> Result<(), Rejection> {
        let state = self.keys.entry(key).or_default();
        if !self.min_interval.is_zero() {
            if let Some(last) = state.last_accepted {
                if at.saturating_duration_since(last) < self.min_interval {
                    return Err(Rejection::MinInterval {
                        interval: describe_interval(self.min_interval),
                        retry_after: ceil_secs(self.min_interval),
                    });
                }
            }
        }
        if let Some(limit) = self.hourly_limit {
            if let Some((start, _)) = state.window {
                if at.saturating_duration_since(start) >= HOUR {
                    state.window = None;
                    state.count = 0;
                }
            }
            let (start, _) = *state.window.get_or_insert((at, wall));
            if state.count >= limit {
                let left = (start + HOUR).saturating_duration_since(at);
                let reset = wall + left;
                let reset_ms = reset
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
                    .unwrap_or(0);
                return Err(Rejection::Hourly {
                    limit,
                    retry_after: ceil_secs(left),
                    reset_time: timefmt::format_ms(reset_ms),
                });
            }
            state.count += 1;
        }
        state.last_accepted = Some(at);
        Ok(())
    }

    /// Forgets every key's history.
    pub fn reset(&mut self) {
        self.keys.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_wording() {
        assert_eq!(describe_interval(Duration::from_secs(2)), "2 seconds");
        assert_eq!(describe_interval(Duration::from_secs(1)), "1 second");
        assert_eq!(describe_interval(Duration::from_millis(100)), "0.1 seconds");
        assert_eq!(
            describe_interval(Duration::from_millis(1500)),
            "1.5 seconds"
        );
        assert_eq!(ceil_secs(Duration::from_millis(100)), 1);
        assert_eq!(ceil_secs(Duration::from_millis(2001)), 3);
        assert_eq!(ceil_secs(Duration::from_secs(2)), 2);
    }

    #[test]
    fn rejected_requests_do_not_reset_the_clock() {
        let mut l = RateLimiter::new(Duration::from_secs(2), None);
        let t0 = Instant::now();
        let wall = SystemTime::now();
        assert!(l.check(KeyId::Main, t0, wall).is_ok());
        let r = l.check(KeyId::Main, t0 + Duration::from_millis(1500), wall);
        assert!(matches!(
            r,
            Err(Rejection::MinInterval { retry_after: 2, .. })
        ));
        // 2 s after the accepted one, not after the rejected one.
        assert!(l
            .check(KeyId::Main, t0 + Duration::from_millis(2000), wall)
            .is_ok());
        // Keys are independent.
        assert!(l
            .check(KeyId::ReadOnly, t0 + Duration::from_millis(2001), wall)
            .is_ok());
    }

    #[test]
    fn hourly_window() {
        let mut l = RateLimiter::new(Duration::ZERO, Some(2));
        let t0 = Instant::now();
        let wall = SystemTime::now();
        assert!(l.check(KeyId::Main, t0, wall).is_ok());
        assert!(l.check(KeyId::Main, t0, wall).is_ok());
        match l.check(KeyId::Main, t0 + Duration::from_secs(600), wall) {
            Err(Rejection::Hourly {
                limit, retry_after, ..
            }) => {
                assert_eq!(limit, 2);
                assert_eq!(retry_after, 3000);
            }
            other => panic!("expected hourly rejection, got {other:?}"),
        }
        assert!(l.check(KeyId::Main, t0 + HOUR, wall).is_ok());
    }
}
