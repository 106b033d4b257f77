//! When the next upstream request may start: the pace, and any wait Growi asked for.
//!
//! Growi counts the pace between request *arrivals*; the sender only knows when its requests
//! started and how long they took. A request that took longer than the fastest recent one (a new
//! connection with its TCP/TLS handshake, a slow network moment) may have arrived late by that
//! much, so the next start waits that much longer. In steady state the difference is about zero
//! and the pace is kept exactly. The very first request has no baseline and counts in full; the
//! extra wait is capped at one pace. A `429`'s `retry_after` (or an auth pause) blocks every
//! request until it has passed.

use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;

/// How many recent request durations the baseline is taken over.
const RECENT: usize = 16;

/// The pace gate of one sender.
#[derive(Debug)]
pub struct Pacer {
    pace: Duration,
    /// When the previous request started.
    last_start: Option<Instant>,
    /// No request before this (429, key refused).
    blocked_until: Option<Instant>,
    /// Durations of the last requests.
    recent: VecDeque<Duration>,
    /// Added to the pace after a request that may have reached Growi late.
    extra: Duration,
}

impl Pacer {
    pub fn new(pace: Duration) -> Self {
        Pacer {
            pace,
            last_start: None,
            blocked_until: None,
            recent: VecDeque::with_capacity(RECENT),
            extra: Duration::ZERO,
        }
    }

    /// The earliest moment the next request may start.
    pub fn gate(&self) -> Instant {
        let pace = self.last_start.map(|t| t + self.pace + self.extra);
        match (pace, self.blocked_until) {
            (Some(a), Some(b)) => a.max(b),
            (Some(a), None) => a,
            (None, Some(b)) => b,
            (None, None) => Instant::now(),
        }
    }

    /// A request starts now.
    pub fn started(&mut self, at: Instant) {
        self.last_start = Some(at);
    }

    /// The request that started last took `took`.
    pub fn finished(&mut self, took: Duration) {
        let baseline = self.recent.iter().min().copied().unwrap_or(Duration::ZERO);
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(took);
        self.extra = took.saturating_sub(baseline).min(self.pace);
    }

    /// No request before `now + wait`.
    pub fn block_for(&mut self, now: Instant, wait: Duration) {
        let until = now + wait;
        self.blocked_until = Some(self.blocked_until.map_or(until, |b| b.max(until)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paces_from_the_last_start_and_honours_blocks() {
        let pace = Duration::from_millis(2000);
        let mut p = Pacer::new(pace);
        let t0 = Instant::now();
        assert!(p.gate() <= Instant::now(), "the first request goes at once");
        p.started(t0);
        p.finished(Duration::from_millis(50));
        // The first request has no baseline: its whole duration counts.
        assert_eq!(p.gate(), t0 + pace + Duration::from_millis(50));
        p.started(t0 + pace);
        p.finished(Duration::from_millis(50));
        assert_eq!(p.gate(), t0 + pace + pace, "steady state: exactly the pace");
        p.block_for(t0 + pace, Duration::from_secs(30));
        assert_eq!(p.gate(), t0 + pace + Duration::from_secs(30));
    }
}
