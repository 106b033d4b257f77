//! Counters for `GET /metrics`, in Prometheus' text format.
//!
//! A handful of relaxed atomics and one fixed-bucket histogram: enough for the few numbers an
//! operator watches (is the queue growing, are we being rate limited, how slow is Growi), without
//! a metrics framework in the request path. The queue depth is not a counter: it is read from the
//! outbox at scrape time, so it cannot drift from the truth.

use std::fmt::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::verdict::{Refusal, Source};

/// Upper bounds of the upstream latency buckets, seconds.
const BUCKETS: [f64; 11] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// The proxy's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    pub sales_accepted: AtomicU64,
    pub sales_duplicate: AtomicU64,
    pub sales_invalid: AtomicU64,
    pub upstream_sent: AtomicU64,
    pub upstream_failed: AtomicU64,
    pub upstream_retries: AtomicU64,
    pub upstream_429: AtomicU64,
    /// 1 while the sender is paused because Growi refused the key.
    pub sender_paused: AtomicBool,
    /// 1 while this instance is the sender for its upstream (others stand by).
    pub sender_active: AtomicBool,
    /// Sales refused at intake, by source (browser, pixel) and reason ([`Refusal::REASONS`]).
    refused: [[AtomicU64; Refusal::REASONS.len()]; Source::RECORDED.len()],
    latency_buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
}

impl Metrics {
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }

    /// Counts a sale refused at intake (the admin API's refusals are answered, not counted).
    pub fn refused(&self, source: Source, reason: &str) {
        let s = Source::RECORDED.iter().position(|x| *x == source);
        let r = Refusal::REASONS.iter().position(|x| *x == reason);
        if let (Some(s), Some(r)) = (s, r) {
            self.refused[s][r].fetch_add(1, Relaxed);
        }
    }

    /// Records one upstream request's duration (any outcome with an HTTP answer or a timeout).
    pub fn observe_upstream(&self, d: Duration) {
        let secs = d.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                self.latency_buckets[i].fetch_add(1, Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Relaxed);
        self.latency_sum_micros
            .fetch_add(u64::try_from(d.as_micros()).unwrap_or(u64::MAX), Relaxed);
    }

    /// The exposition text. `queue_depth` is `None` when the outbox did not answer.
    pub fn render(&self, queue_depth: Option<u64>) -> String {
        let mut out = String::with_capacity(2048);
        let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        };
        if let Some(depth) = queue_depth {
            metric(
                "salebeacon_queue_depth",
                "gauge",
                "Jobs (sales and updates) waiting in the outbox.",
                depth,
            );
        }
        let counters = [
            (
                "salebeacon_sales_accepted_total",
                "Sales accepted into the outbox.",
                &self.sales_accepted,
            ),
            (
                "salebeacon_sales_duplicate_total",
                "Sales refused as duplicates of a known order_id.",
                &self.sales_duplicate,
            ),
            (
                "salebeacon_sales_invalid_total",
                "Sales refused as invalid (422) or unusable (400).",
                &self.sales_invalid,
            ),
            (
                "salebeacon_upstream_sent_total",
                "Jobs Growi accepted.",
                &self.upstream_sent,
            ),
            (
                "salebeacon_upstream_failed_total",
                "Jobs Growi refused for good.",
                &self.upstream_failed,
            ),
            (
                "salebeacon_upstream_retries_total",
                "Upstream attempts that will be retried (network, 5xx, 429).",
                &self.upstream_retries,
            ),
            (
                "salebeacon_upstream_429_total",
                "Upstream answers 429 (rate limited).",
                &self.upstream_429,
            ),
        ];
        for (name, help, c) in counters {
            metric(name, "counter", help, c.load(Relaxed));
        }
        let name = "salebeacon_sales_refused_total";
        let _ = writeln!(
            out,
            "# HELP {name} Sales refused at intake, by source and reason (see GET /admin/refused).\n# TYPE {name} counter"
        );
        for (s, source) in Source::RECORDED.iter().enumerate() {
            for (r, reason) in Refusal::REASONS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "{name}{{source=\"{}\",reason=\"{reason}\"}} {}",
                    source.as_str(),
                    self.refused[s][r].load(Relaxed)
                );
            }
        }
        let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        };
        metric(
            "salebeacon_sender_active",
            "gauge",
            "1 while this instance is the one sender for its upstream (instances sharing a PostgreSQL outbox take turns).",
            u64::from(self.sender_active.load(Relaxed)),
        );
        metric(
            "salebeacon_sender_paused",
            "gauge",
            "1 while Growi refuses the API key (401/403) and the sender waits.",
            u64::from(self.sender_paused.load(Relaxed)),
        );
        let name = "salebeacon_upstream_latency_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Duration of upstream requests.\n# TYPE {name} histogram"
        );
        for (i, bound) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{bound}\"}} {}",
                self.latency_buckets[i].load(Relaxed)
            );
        }
        let count = self.latency_count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.latency_sum_micros.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histogram() {
        let m = Metrics::default();
        Metrics::inc(&m.sales_accepted);
        m.observe_upstream(Duration::from_millis(30));
        let text = m.render(Some(3));
        assert!(text.contains("salebeacon_queue_depth 3\n"));
        assert!(text.contains("salebeacon_sales_accepted_total 1\n"));
        assert!(text.contains("salebeacon_upstream_latency_seconds_bucket{le=\"0.025\"} 0\n"));
        assert!(text.contains("salebeacon_upstream_latency_seconds_bucket{le=\"0.05\"} 1\n"));
        assert!(text.contains("salebeacon_upstream_latency_seconds_count 1\n"));
        m.refused(Source::Pixel, "invalid");
        let text = m.render(None);
        assert!(text
            .contains("salebeacon_sales_refused_total{source=\"pixel\",reason=\"invalid\"} 1\n"));
        assert!(text
            .contains("salebeacon_sales_refused_total{source=\"browser\",reason=\"invalid\"} 0\n"));
    }
}
