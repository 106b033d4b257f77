//! When the next upstream request may start: the pace as Growi sees it, and any wait Growi
//! asked for.
//!
//! Growi counts the pace between request *arrivals*; the sender only knows when its requests
//! started and how long they took. Request `i` arrived at most `took_i` after it started, and the
//! next one will arrive at least `d_min` after it starts, where `d_min` is a lower bound of the
//! network's delay. So the next start waits `pace + took_i - d_min` after the last start, and the
//! arrivals are then at least `pace` apart whatever the jitter:
//! `gap = pace + (took_i - arrival_i) + (arrival_{i+1} - d_min) >= pace`.
//! `d_min` is learned, and taken as zero for the first 16 requests: the fastest request seen so
//! far (not of a short window: a window that forgets its minimum overestimates the bound, which is
//! how a fast request used to arrive early and earn a 429), less a margin for an even faster one:
//! the whole observed spread (median less minimum), at least 2 ms. The margin is that wide because
//! the fastest of a few samples overestimates the true minimum (16 draws of 5-120 ms often bottom
//! out near 20 ms; a narrower margin measurably earned 429s, and a 429 costs a second); it costs
//! little, since on a jittery link the bound would be small anyway, while on a steady link (a
//! spread of a millisecond or two) the pace is kept almost exactly. Each millisecond of mean jitter costs about one millisecond of throughput: at Growi's
//! 2 s pace, 5-120 ms of jitter leaves about 97% of the allowed rate (`cargo xtask bench proxy`).
//!
//! A `429`'s `retry_after` (or an auth pause) blocks every request until it has passed. A sender
//! that takes over from another instance (or a restarted one) starts from when the last request
//! started, as the outbox recorded it ([`Pacer::resume`]).

use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;

/// How many recent request durations the spread is taken over.
const RECENT: usize = 64;
/// Until this many requests were seen, nothing is assumed about the network: the next start waits
/// the whole duration of the last request.
const LEARNING: usize = 16;
/// The least margin below the fastest request seen.
const MIN_MARGIN: Duration = Duration::from_millis(2);
/// A request whose duration is unknown (another instance's, before a takeover) may have arrived
/// this long after it started.
const UNKNOWN_DELAY: Duration = Duration::from_millis(250);

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
    /// The fastest request ever seen.
    fastest: Option<Duration>,
    /// Added to the pace before the next start: how late the last request may have arrived,
    /// beyond the least delay the next one will have.
    extra: Duration,
}

impl Pacer {
    pub fn new(pace: Duration) -> Self {
        Pacer {
            pace,
            last_start: None,
            blocked_until: None,
            recent: VecDeque::with_capacity(RECENT),
            fastest: None,
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

    /// Starts from a request that another sender (or an earlier run) started `ago` ago, whose
    /// duration is unknown.
    pub fn resume(&mut self, ago: Duration) {
        let now = Instant::now();
        let start = now.checked_sub(ago).unwrap_or(now);
        if self.last_start.is_none_or(|t| t < start) {
            self.last_start = Some(start);
            self.extra = UNKNOWN_DELAY;
        }
    }

    /// A request starts now.
    pub fn started(&mut self, at: Instant) {
        self.last_start = Some(at);
    }

    /// The request that started last took `took`.
    pub fn finished(&mut self, took: Duration) {
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(took);
        let fastest = self.fastest.map_or(took, |f| f.min(took));
        self.fastest = Some(fastest);
        // Not capped: a slow request may have arrived just before its answer came back.
        self.extra = took.saturating_sub(self.lower_bound());
    }

    /// The least delay the next request can be expected to have.
    fn lower_bound(&self) -> Duration {
        let Some(fastest) = self.fastest.filter(|_| self.recent.len() >= LEARNING) else {
            return Duration::ZERO;
        };
        let mut sorted: Vec<Duration> = self.recent.iter().copied().collect();
        sorted.sort();
        let median = sorted.get(sorted.len() / 2).copied().unwrap_or(fastest);
        let margin = median.saturating_sub(fastest).max(MIN_MARGIN);
        fastest.saturating_sub(margin)
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
        // Nothing learned yet: the whole duration counts.
        assert_eq!(p.gate(), t0 + pace + Duration::from_millis(50));
        for _ in 0..LEARNING {
            p.started(t0 + pace);
            p.finished(Duration::from_millis(50));
        }
        p.started(t0 + pace);
        p.finished(Duration::from_millis(80));
        // Learned: 50 ms is as fast as it gets (less the 2 ms margin: every request took 50 ms but
        // this one, so the spread is nil).
        assert_eq!(p.gate(), t0 + pace + pace + Duration::from_millis(32));
        p.block_for(t0 + pace, Duration::from_secs(30));
        assert_eq!(p.gate(), t0 + pace + Duration::from_secs(30));
    }

    /// Arrivals are `start + delay`: with any sequence of delays the sender can observe (the
    /// duration of a request is at least its delay), consecutive arrivals are at least the pace
    /// apart, from the first request on (many short runs: the first requests, when little is
    /// known about the network, are where a learned bound goes wrong).
    #[test]
    fn arrivals_keep_the_pace_through_jitter() {
        let pace = Duration::from_millis(2000);
        let mut worst = Duration::MAX;
        let mut total = Duration::ZERO;
        let (runs, n) = (400u64, 60u32);
        for seed in 1..=runs {
            let mut p = Pacer::new(pace);
            let mut rng = 0x2545_f491_4f6c_dd1d_u64 ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let mut next = || {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng
            };
            let t0 = Instant::now();
            let mut start = t0;
            let mut last_arrival: Option<Instant> = None;
            for _ in 0..n {
                // 5-120 ms on the way there, 0-20 ms back.
                let up = Duration::from_millis(5 + next() % 116);
                let down = Duration::from_millis(next() % 21);
                let arrival = start + up;
                if let Some(prev) = last_arrival {
                    worst = worst.min(arrival - prev);
                }
                last_arrival = Some(arrival);
                p.started(start);
                p.finished(up + down);
                let gate = p.gate();
                total += gate - start;
                start = gate;
            }
        }
        assert!(worst >= pace, "two arrivals {worst:?} apart");
        let mean = total / (n * runs as u32);
        assert!(mean < pace + Duration::from_millis(90), "mean gap {mean:?}");
    }

    /// A steady network: the learned bound gives back almost all of the pace.
    #[test]
    fn a_steady_link_keeps_almost_exactly_the_pace() {
        let pace = Duration::from_millis(2000);
        let mut p = Pacer::new(pace);
        let t0 = Instant::now();
        let mut start = t0;
        for i in 0..100u64 {
            p.started(start);
            // 40 ms there and back, give or take a millisecond.
            p.finished(Duration::from_millis(80 + i % 2));
            start = p.gate();
        }
        let mean = (start - t0) / 100;
        // 16 learning requests at +81 ms, then about +3 ms each (without learning: +81 ms).
        assert!(
            mean <= pace + Duration::from_millis(20),
            "mean gap {mean:?}"
        );
    }

    #[test]
    fn a_takeover_waits_for_the_previous_senders_last_request() {
        let pace = Duration::from_millis(2000);
        let mut p = Pacer::new(pace);
        p.resume(Duration::from_millis(500));
        let wait = p.gate().saturating_duration_since(Instant::now());
        assert!(
            wait > Duration::from_millis(1700) && wait <= pace + UNKNOWN_DELAY,
            "{wait:?}"
        );
    }
}
