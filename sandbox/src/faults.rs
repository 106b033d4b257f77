//! Fault injection: the ways the real Growi misbehaves, on demand.
//!
//! A proxy must survive a slow upstream, 5xx answers, unexpected 429s and an upstream that is
//! simply gone. [`Faults`] is the knob set (changeable at run time through `/_sandbox/faults` or
//! [`crate::RunningSandbox::set_faults`]); [`FaultInjector`] rolls the dice with a seedable PRNG
//! (`fastrand`) so a test that sets a share between 0 and 1 can still be reproducible.
//! `down` is not handled here but in the accept loop (`server.rs`), because it must fail at the
//! connection level, below HTTP.

use serde::{Deserialize, Serialize};

/// Faults to inject into API requests (`/api/...`; the control API is never affected).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Extra delay before each API request is handled, in milliseconds.
    pub latency_ms: u64,
    /// Share (0..=1) of API requests answered `500` or `503` (half each).
    pub error_rate: f64,
    /// Share (0..=1) of API requests answered `429` with `retry_after: 1`.
    pub rate_limit_rate: f64,
    /// API requests fail at the connection level (closed with a TCP reset, no HTTP response).
    pub down: bool,
}

impl Faults {
    /// Checks that both shares are numbers in 0..=1.
    pub fn validate(&self) -> Result<(), String> {
        for (name, v) in [
            ("error_rate", self.error_rate),
            ("rate_limit_rate", self.rate_limit_rate),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("{name} must be a number between 0 and 1."));
            }
        }
        Ok(())
    }

    /// The same faults with both shares clamped into 0..=1 (NaN becomes 0).
    pub fn sanitized(mut self) -> Faults {
        let clamp = |v: f64| if v.is_nan() { 0.0 } else { v.clamp(0.0, 1.0) };
        self.error_rate = clamp(self.error_rate);
        self.rate_limit_rate = clamp(self.rate_limit_rate);
        self
    }
}

/// The current faults plus the PRNG that decides which requests they hit.
#[derive(Debug)]
pub struct FaultInjector {
    faults: Faults,
    rng: fastrand::Rng,
}

impl FaultInjector {
    /// Injector with these faults and a PRNG seeded with `seed`.
    pub fn new(faults: Faults, seed: u64) -> FaultInjector {
        FaultInjector {
            faults: faults.sanitized(),
            rng: fastrand::Rng::with_seed(seed),
        }
    }

    /// The current faults.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Replaces the faults (shares are clamped into 0..=1).
    pub fn set(&mut self, faults: Faults) {
        self.faults = faults.sanitized();
    }

    fn hit(&mut self, share: f64) -> bool {
        share > 0.0 && (share >= 1.0 || self.rng.f64() < share)
    }

    /// `Some(500 | 503)` when this request should get an injected server error.
    pub fn roll_server_error(&mut self) -> Option<u16> {
        if self.hit(self.faults.error_rate) {
            Some(if self.rng.bool() { 500 } else { 503 })
        } else {
            None
        }
    }

    /// Whether this request should get an injected `429`.
    pub fn roll_rate_limit(&mut self) -> bool {
        self.hit(self.faults.rate_limit_rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_validated_and_clamped() {
        let f = Faults {
            error_rate: 1.5,
            ..Faults::default()
        };
        assert!(f.validate().is_err());
        assert_eq!(f.sanitized().error_rate, 1.0);
        let nan = Faults {
            rate_limit_rate: f64::NAN,
            ..Faults::default()
        };
        assert!(nan.validate().is_err());
        assert_eq!(nan.sanitized().rate_limit_rate, 0.0);
    }

    #[test]
    fn same_seed_same_decisions() {
        let faults = Faults {
            error_rate: 0.5,
            ..Faults::default()
        };
        let mut a = FaultInjector::new(faults.clone(), 7);
        let mut b = FaultInjector::new(faults, 7);
        let ra: Vec<_> = (0..50).map(|_| a.roll_server_error()).collect();
        let rb: Vec<_> = (0..50).map(|_| b.roll_server_error()).collect();
        assert_eq!(ra, rb);
        assert!(ra.iter().any(Option::is_some));
        assert!(ra.iter().any(Option::is_none));
    }

    #[test]
    fn extremes_are_exact() {
        let mut always = FaultInjector::new(
            Faults {
                error_rate: 1.0,
                rate_limit_rate: 1.0,
                ..Faults::default()
            },
            1,
        );
        let mut never = FaultInjector::new(Faults::default(), 1);
        for _ in 0..100 {
            assert!(always.roll_server_error().is_some());
            assert!(always.roll_rate_limit());
            assert!(never.roll_server_error().is_none());
            assert!(!never.roll_rate_limit());
        }
    }
}
