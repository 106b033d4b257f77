//! The paced sender: one task per Growi API key that drains the outbox into Growi.
//!
//! Growi allows one request per 2 s per key and answers `429` otherwise, so the sender is a single
//! loop, not a pool: take the oldest eligible job, wait for the pace gate (the configured time
//! since the previous request *started*, and any `429` `retry_after` / `reset_time`), send, record
//! the outcome in the outbox, repeat. A job that fails for a retryable reason (network, timeout,
//! 408, 5xx) keeps its place at the head with capped exponential backoff and jitter
//! (`Backoff` from the core); a permanent refusal (`422`, `404`, other `4xx`) moves it to `failed`
//! with Growi's reason; `401` / `403` mean the key is wrong, which no job can fix, so the sender
//! pauses and logs loudly and every job stays queued.
//!
//! Delivery is at-least-once: a job is marked `sent` only after Growi's `2xx`, so a crash between
//! the two resends it, and Growi's idempotency by `order_id` makes the second create return the
//! first sale. Updates (PATCH) go by Growi's integer id, recorded from the create's `data.id`.

use crate::config::ProxyConfig;
use crate::metrics::Metrics;
use crate::now_ms;
use crate::outbox::{Job, JobKind, Outbox};
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use salebeacon::retry::{classify, parse_retry_after, Disposition};
use salebeacon::time::parse_rfc3339;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// Largest upstream response body we read.
const MAX_RESPONSE: usize = 64 * 1024;
/// Wait after a 429 that says nothing about how long.
const DEFAULT_429_WAIT: Duration = Duration::from_secs(2);
/// How often an idle sender looks at the outbox even without a wake-up.
const IDLE_POLL: Duration = Duration::from_secs(1);

/// Builds the HTTP client for the upstream: rustls, timeouts, no redirects, the key as a
/// sensitive default header (so it is never printed by the client's own debug output).
pub fn client(config: &ProxyConfig) -> Result<reqwest::Client, String> {
    let mut auth = HeaderValue::from_str(&format!("Bearer {}", config.growi_api_key.expose()))
        .map_err(|_| "GROWI_API_KEY cannot be sent in an HTTP header".to_owned())?;
    auth.set_sensitive(true);
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(AUTHORIZATION, auth);
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(
        reqwest::header::ACCEPT,
        HeaderValue::from_static("application/json"),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .user_agent(concat!("salebeacon-proxy/", env!("CARGO_PKG_VERSION")))
        .timeout(config.upstream_timeout)
        .connect_timeout(config.upstream_timeout.min(Duration::from_secs(10)))
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(Duration::from_secs(90))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

/// The sender task's state.
pub struct Sender {
    outbox: Outbox,
    client: reqwest::Client,
    config: Arc<ProxyConfig>,
    metrics: Arc<Metrics>,
    /// When the previous request started.
    last_start: Option<Instant>,
    /// No request before this (429, key refused).
    blocked_until: Option<Instant>,
    /// Durations of the last requests, for [`Sender::note_duration`].
    recent: std::collections::VecDeque<Duration>,
    /// Added to the pace after a request that may have reached Growi late.
    extra: Duration,
}

/// How many recent request durations the baseline is taken over.
const RECENT: usize = 16;

/// What one upstream attempt came to.
enum Outcome {
    Answer { status: u16, body: String },
    Network(String),
}

impl Sender {
    pub fn new(
        outbox: Outbox,
        client: reqwest::Client,
        config: Arc<ProxyConfig>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Sender {
            outbox,
            client,
            config,
            metrics,
            last_start: None,
            blocked_until: None,
            recent: std::collections::VecDeque::with_capacity(RECENT),
            extra: Duration::ZERO,
        }
    }

    /// Drains until `shutdown` turns true. A request in flight is finished and recorded first.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let changed = self.outbox.changed();
        tracing::info!(upstream = %self.config.upstream, pace_ms = self.config.pace.as_millis() as u64, "sender started");
        loop {
            if *shutdown.borrow() {
                break;
            }
            let job = match self.outbox.next_job().await {
                Ok(job) => job,
                Err(e) => {
                    tracing::error!(error = %e, "sender cannot read the outbox");
                    if wait(&mut shutdown, Instant::now() + IDLE_POLL, None).await {
                        break;
                    }
                    continue;
                }
            };
            let Some(job) = job else {
                if wait(&mut shutdown, Instant::now() + IDLE_POLL, Some(&changed)).await {
                    break;
                }
                continue;
            };
            // The job's own retry time first; re-read the head after that wait, since an older job
            // may have been put back (admin retry) meanwhile.
            let now = now_ms();
            if job.next_attempt_at > now {
                let delay =
                    Duration::from_millis(u64::try_from(job.next_attempt_at - now).unwrap_or(0));
                if wait(&mut shutdown, Instant::now() + delay, Some(&changed)).await {
                    break;
                }
                continue;
            }
            // The head job is sent as soon as the gate opens, without another look at the queue:
            // a round trip to the outbox here would be added to every gap between requests.
            let gate = self.gate();
            if gate > Instant::now() && wait(&mut shutdown, gate, None).await {
                break;
            }
            self.attempt(job).await;
        }
        tracing::info!("sender stopped");
    }

    /// The earliest moment the next request may start.
    fn gate(&self) -> Instant {
        let pace = self.last_start.map(|t| t + self.config.pace + self.extra);
        match (pace, self.blocked_until) {
            (Some(a), Some(b)) => a.max(b),
            (Some(a), None) => a,
            (None, Some(b)) => b,
            (None, None) => Instant::now(),
        }
    }

    async fn attempt(&mut self, job: Job) {
        let url = match (job.kind, job.growi_id) {
            (JobKind::Create, _) => format!("{}/affiliate_sales", self.config.upstream),
            (JobKind::Update, Some(id)) => format!("{}/affiliate_sales/{id}", self.config.upstream),
            (JobKind::Update, None) => return,
        };
        let request = match job.kind {
            JobKind::Create => self.client.post(&url),
            JobKind::Update => self.client.patch(&url),
        }
        .body(job.body.clone());
        let started = Instant::now();
        self.last_start = Some(started);
        let outcome = match request.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let header_retry = resp
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_retry_after);
                match read_capped(resp).await {
                    Ok(mut body) => {
                        if let (429, Some(ms)) = (status, header_retry) {
                            // Keep the header's word too; the body's fields are read below.
                            body = merge_retry_header(&body, ms);
                        }
                        Outcome::Answer { status, body }
                    }
                    Err(e) => Outcome::Network(e),
                }
            }
            Err(e) => Outcome::Network(describe(&e)),
        };
        self.metrics.observe_upstream(started.elapsed());
        self.note_duration(started.elapsed());
        let result = self.record(&job, outcome).await;
        if let Err(e) = result {
            tracing::error!(error = %e, seq = job.seq, "could not record a delivery outcome; the job stays queued");
        }
    }

    /// Growi counts the pace between request *arrivals*; we only know when ours started. A request
    /// that took longer than the fastest recent one (a new connection with its TCP/TLS handshake,
    /// a slow network moment) may have arrived late by that much, so the next start waits that
    /// much longer. In steady state the difference is about zero and the pace is kept exactly.
    /// The very first request has no baseline and counts in full. Capped at one pace.
    fn note_duration(&mut self, took: Duration) {
        let baseline = self.recent.iter().min().copied().unwrap_or(Duration::ZERO);
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(took);
        self.extra = took.saturating_sub(baseline).min(self.config.pace);
    }

    async fn record(
        &mut self,
        job: &Job,
        outcome: Outcome,
    ) -> Result<(), crate::outbox::OutboxError> {
        let m = &self.metrics;
        let order_id = job.order_id.as_str();
        let kind = match job.kind {
            JobKind::Create => "create",
            JobKind::Update => "update",
        };
        let (status, body) = match outcome {
            Outcome::Network(error) => {
                return self.retry(job, None, format!("network: {error}")).await
            }
            Outcome::Answer { status, body } => (status, body),
        };
        let json: Option<serde_json::Value> = serde_json::from_str(&body).ok();
        if status == 429 {
            Metrics::inc(&m.upstream_429);
            Metrics::inc(&m.upstream_retries);
            let wait = rate_limit_wait(json.as_ref(), now_ms()).unwrap_or(DEFAULT_429_WAIT);
            self.blocked_until = Some(Instant::now() + wait);
            let reason = reason(json.as_ref(), status);
            tracing::warn!(%order_id, wait_ms = wait.as_millis() as u64, %reason, "Growi rate limited the sender; waiting before any next request");
            return self.outbox.note(job.seq, status, reason).await;
        }
        if status == 401 || status == 403 {
            m.sender_paused.store(true, Relaxed);
            self.blocked_until = Some(Instant::now() + self.config.auth_pause);
            let reason = reason(json.as_ref(), status);
            tracing::error!(
                status,
                %reason,
                pause_secs = self.config.auth_pause.as_secs(),
                "GROWI REFUSED THE API KEY: check GROWI_API_KEY (a read-only key gets 403 on writes). \
                 Delivery is paused; every sale stays queued and nothing is lost."
            );
            return self.outbox.note(job.seq, status, reason).await;
        }
        m.sender_paused.store(false, Relaxed);
        match classify(status) {
            Disposition::Delivered => {
                let id = json
                    .as_ref()
                    .and_then(|j| j.pointer("/data/id"))
                    .and_then(serde_json::Value::as_i64);
                if job.kind == JobKind::Create && id.is_none() {
                    return self
                        .retry(
                            job,
                            Some(status),
                            format!("Growi answered {status} without data.id"),
                        )
                        .await;
                }
                Metrics::inc(&m.upstream_sent);
                tracing::info!(%order_id, kind, status, growi_id = ?id, attempts = job.attempts + 1, "delivered");
                self.outbox.mark_sent(job.seq, status, id, now_ms()).await
            }
            Disposition::Retry => {
                let reason = reason(json.as_ref(), status);
                self.retry(job, Some(status), reason).await
            }
            Disposition::Rejected => {
                Metrics::inc(&m.upstream_failed);
                let reason = reason(json.as_ref(), status);
                tracing::warn!(%order_id, kind, status, %reason, "Growi refused the job for good; it is now failed (see the admin API)");
                self.outbox.mark_failed(job.seq, status, reason).await
            }
        }
    }

    async fn retry(
        &mut self,
        job: &Job,
        status: Option<u16>,
        error: String,
    ) -> Result<(), crate::outbox::OutboxError> {
        Metrics::inc(&self.metrics.upstream_retries);
        let delay = self.config.backoff.delay_ms(job.attempts, fastrand::f64());
        tracing::warn!(order_id = %job.order_id, ?status, %error, retry_in_ms = delay, attempts = job.attempts + 1, "delivery failed; will retry");
        let next = now_ms().saturating_add(i64::try_from(delay).unwrap_or(i64::MAX));
        self.outbox.mark_retry(job.seq, status, error, next).await
    }
}

/// Sleeps until `until`, or until `changed` fires, or shutdown. True when shutting down.
async fn wait(
    shutdown: &mut watch::Receiver<bool>,
    until: Instant,
    changed: Option<&tokio::sync::Notify>,
) -> bool {
    let notified = async {
        match changed {
            Some(n) => n.notified().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::time::sleep_until(until) => false,
        _ = notified => false,
        r = shutdown.changed() => r.is_err() || *shutdown.borrow(),
    }
}

async fn read_capped(mut resp: reqwest::Response) -> Result<String, String> {
    let mut buf = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| describe(&e))? {
        let room = MAX_RESPONSE.saturating_sub(buf.len());
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if room <= chunk.len() {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

fn merge_retry_header(body: &str, ms: u64) -> String {
    match serde_json::from_str::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(mut o)) if !o.contains_key("retry_after") => {
            o.insert("retry_after".into(), serde_json::json!(ms as f64 / 1000.0));
            serde_json::Value::Object(o).to_string()
        }
        Ok(_) => body.to_owned(),
        Err(_) => serde_json::json!({ "retry_after": ms as f64 / 1000.0 }).to_string(),
    }
}

/// How long a 429 asks us to wait: the longer of `retry_after` (seconds) and `reset_time`.
pub fn rate_limit_wait(body: Option<&serde_json::Value>, now: i64) -> Option<Duration> {
    let body = body?;
    let retry = body.get("retry_after").and_then(|v| match v {
        // Whole seconds through the core; a fractional number (not documented, but harmless to
        // honour) rounds up to the millisecond.
        serde_json::Value::Number(n) => parse_retry_after(&n.to_string()).or_else(|| {
            n.as_f64()
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(|s| (s.min(86_400.0) * 1000.0).ceil() as u64)
        }),
        serde_json::Value::String(s) => parse_retry_after(s),
        _ => None,
    });
    let reset = body
        .get("reset_time")
        .and_then(serde_json::Value::as_str)
        .and_then(parse_rfc3339)
        .map(|t| {
            u64::try_from(t.saturating_sub(now))
                .unwrap_or(0)
                .min(86_400_000)
        });
    match (retry, reset) {
        (None, None) => None,
        (a, b) => Some(Duration::from_millis(a.unwrap_or(0).max(b.unwrap_or(0)))),
    }
}

/// Growi's reason: its `error` or `message` field, or the status.
fn reason(body: Option<&serde_json::Value>, status: u16) -> String {
    body.and_then(|b| {
        b.get("error")
            .and_then(serde_json::Value::as_str)
            .or_else(|| b.get("message").and_then(serde_json::Value::as_str))
    })
    .map(|s| s.chars().take(500).collect())
    .unwrap_or_else(|| format!("HTTP {status}"))
}

/// A reqwest error with its causes, e.g. "error sending request: connection refused".
fn describe(e: &reqwest::Error) -> String {
    let mut s = if e.is_timeout() {
        "timed out".to_owned()
    } else {
        e.to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rate_limit_waits() {
        let now = 1_000_000;
        assert_eq!(
            rate_limit_wait(Some(&json!({"retry_after": 2})), now),
            Some(Duration::from_secs(2))
        );
        let reset = salebeacon::time::format_utc(now + 30_000);
        assert_eq!(
            rate_limit_wait(Some(&json!({"retry_after": 2, "reset_time": reset})), now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(rate_limit_wait(Some(&json!({"error": "x"})), now), None);
        assert_eq!(
            rate_limit_wait(Some(&json!({"retry_after": 0.5})), now),
            Some(Duration::from_millis(500))
        );
        assert_eq!(
            rate_limit_wait(Some(&json!({"retry_after": "3"})), now),
            Some(Duration::from_secs(3))
        );
    }

    #[test]
    fn reasons() {
        assert_eq!(
            reason(
                Some(&json!({"error": "Campaign affiliate not found."})),
                422
            ),
            "Campaign affiliate not found."
        );
        assert_eq!(reason(Some(&json!({"message": "m"})), 422), "m");
        assert_eq!(reason(None, 404), "HTTP 404");
    }
}
