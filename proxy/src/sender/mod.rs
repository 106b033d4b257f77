//! The paced sender: one task per Growi API key that drains the outbox into Growi.
//!
//! Growi allows one request per 2 s per key and answers `429` otherwise, so the sender is a single
//! loop, not a pool: take the oldest eligible job, wait for the pace gate ([`pacer`]), send
//! ([`upstream`]), record the outcome in the outbox, repeat. A job that fails for a retryable
//! reason (network, timeout, 408, 5xx) keeps its place at the head with capped exponential
//! backoff and jitter (`Backoff` from the core); a permanent refusal (`422`, `404`, other `4xx`)
//! moves it to `failed` with Growi's reason; `401` / `403` mean the key is wrong, which no job can
//! fix, so the sender pauses and logs loudly and every job stays queued.
//!
//! Delivery is at-least-once: a job is marked `sent` only after Growi's `2xx`, so a crash between
//! the two resends it. Creates are idempotent at Growi by `order_id`, so a second create returns
//! the first sale. Updates (PATCH) go by Growi's integer id, and two rules keep them on the right
//! sale and honest after a crash:
//! - **The id must be known to be this order's at this upstream before a PATCH is sent.** Before an
//!   order's first update the sender looks the order up (`GET /affiliate_sales?order_id=`) and
//!   uses the id Growi gives, or fails the update when Growi has no such sale (the id came from
//!   another upstream, or from a sandbox that has since forgotten its sales). Updates are rare,
//!   so one look-up per order is affordable; checking the PATCH's answer afterwards would be too
//!   late, since the wrong sale would already have changed.
//! - **An update whose effect is already in place is done** ([`holds`]): when Growi refuses an
//!   update, the sender looks the sale up and marks the job sent (with a note) when Growi already
//!   holds every value it asked for, as after a crash between Growi applying a cancellation and
//!   the proxy recording it.
//!
//! Other parts of the proxy that must read from Growi (reconciliation) do not get a client of
//! their own: a second requester on the key would break the pace. They hand a list query to the
//! sender through [`Reads`], and the sender makes that request between two jobs, through the same
//! [`Sender::request`] path as its own (leadership checked, start recorded, pace gate), at most one
//! read per job, so a long reconciliation and a busy queue share the pace instead of starving each
//! other. A `429` or a refused key on a read holds back every later request, as on a job.

mod holds;
pub mod pacer;
pub mod upstream;

pub use upstream::client;

use crate::config::ProxyConfig;
use crate::metrics::Metrics;
use crate::now_ms;
use crate::outbox::{Job, JobKind, Leadership, Outbox, OutboxError};
use pacer::Pacer;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio::time::Instant;
use upstream::{sale_in_answer, sale_in_list, Reply, Upstream};

/// Wait after a 429 that says nothing about how long.
const DEFAULT_429_WAIT: Duration = Duration::from_secs(2);
/// How often an idle sender looks at the outbox even without a wake-up.
const IDLE_POLL: Duration = Duration::from_secs(1);
/// How often a standing-by instance tries to become the sender.
const LEADER_RETRY: Duration = Duration::from_secs(1);

/// How many reads may wait for the sender at once.
const READS_WAITING: usize = 4;

/// A page of Growi's list that another part of the proxy asked for (see [`Reads`]).
struct ListRead {
    query: Vec<(String, String)>,
    reply: oneshot::Sender<Reply>,
}

/// The way to ask the sender for a `GET /affiliate_sales` at its pace: cheap to clone. The sender
/// that [`Sender::serving`] these takes each read between two jobs.
#[derive(Clone)]
pub struct Reads {
    tx: mpsc::Sender<ListRead>,
    inbox: Arc<std::sync::Mutex<Option<mpsc::Receiver<ListRead>>>>,
    /// The sender's wake-up (the outbox's), so an idle sender takes a read at once.
    wake: Arc<Notify>,
}

/// The sender is gone: nothing will make the read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the sender is not running")]
pub struct SenderGone;

impl Reads {
    /// A channel to the sender that waits on `wake` (the outbox's [`Outbox::changed`]).
    pub fn new(wake: Arc<Notify>) -> Reads {
        let (tx, rx) = mpsc::channel(READS_WAITING);
        Reads {
            tx,
            inbox: Arc::new(std::sync::Mutex::new(Some(rx))),
            wake,
        }
    }

    /// Asks for one page of the list with `query`. The answer comes on the receiver once the
    /// sender made the request at its pace; the receiver errs if the sender stops first (shutdown,
    /// or another instance took the lead: the read then waits here, unmade, and is dropped
    /// unsent when the asker gave up).
    pub async fn list(
        &self,
        query: Vec<(String, String)>,
    ) -> Result<oneshot::Receiver<Reply>, SenderGone> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(ListRead { query, reply })
            .await
            .map_err(|_| SenderGone)?;
        self.wake.notify_one();
        Ok(answer)
    }

    fn take_inbox(&self) -> Option<mpsc::Receiver<ListRead>> {
        self.inbox.lock().ok().and_then(|mut inbox| inbox.take())
    }
}

/// The sender task's state.
pub struct Sender {
    outbox: Outbox,
    /// The upstream fingerprint: the leadership's and the pace record's key.
    key: String,
    upstream: Upstream,
    config: Arc<ProxyConfig>,
    metrics: Arc<Metrics>,
    pacer: Pacer,
    /// Reads asked through [`Reads`], if this sender serves them.
    reads: Option<mpsc::Receiver<ListRead>>,
}

/// Why the sender stopped where it was (the job stays queued).
enum Stopping {
    Shutdown,
    /// Another instance may be the sender now: sending here could double the pace.
    LostLead,
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
            key: config.upstream_fingerprint(),
            upstream: Upstream::new(client, &config.upstream),
            pacer: Pacer::new(config.pace),
            config,
            metrics,
            reads: None,
        }
    }

    /// Makes the reads asked through `reads` too (one sender takes them).
    pub fn serving(mut self, reads: &Reads) -> Self {
        self.reads = reads.take_inbox();
        self
    }

    /// Drains until `shutdown` turns true. A request in flight is finished and recorded first.
    ///
    /// Several proxies may share one outbox (PostgreSQL): only the one that holds the key's
    /// leadership sends; the others wait for it, trying again every second, and one takes over
    /// when the sender's instance is gone.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        tracing::info!(upstream = %self.config.upstream, pace_ms = self.config.pace.as_millis() as u64, "sender started");
        let mut waiting_said = false;
        loop {
            if *shutdown.borrow() {
                break;
            }
            let lead = match self.outbox.leadership(&self.key).await {
                Ok(Some(lead)) => lead,
                Ok(None) => {
                    if !waiting_said {
                        tracing::info!(
                            "another proxy instance sends for this upstream; this one stands by"
                        );
                        waiting_said = true;
                    }
                    if wait(&mut shutdown, Instant::now() + LEADER_RETRY, None).await {
                        break;
                    }
                    continue;
                }
                Err(e) => {
                    tracing::error!(error = %e, "sender cannot reach the outbox");
                    if wait(&mut shutdown, Instant::now() + LEADER_RETRY, None).await {
                        break;
                    }
                    continue;
                }
            };
            waiting_said = false;
            self.metrics.sender_active.store(true, Relaxed);
            tracing::info!("this proxy instance is the sender for this upstream");
            // Keep the pace of whoever sent last: an earlier run, or the instance taken over from.
            if let Ok(Some(last)) = self.outbox.last_request(self.key.clone()).await {
                let ago = u64::try_from(now_ms().saturating_sub(last)).unwrap_or(0);
                self.pacer.resume(Duration::from_millis(ago));
            }
            let stopped = self.drain(&lead, &mut shutdown).await;
            self.metrics.sender_active.store(false, Relaxed);
            drop(lead);
            if stopped {
                break;
            }
            tracing::warn!("this proxy instance lost the sender's lock (its database connection); trying to take it again");
        }
        tracing::info!("sender stopped");
    }

    /// Sends while this instance leads. True when shutting down; false when the lead was lost.
    async fn drain(&mut self, lead: &Leadership, shutdown: &mut watch::Receiver<bool>) -> bool {
        let changed = self.outbox.changed();
        loop {
            if *shutdown.borrow() {
                return true;
            }
            // At most one read per round, then the head job: each waits for the other's turn.
            if let Some(read) = self.reads.as_mut().and_then(|r| r.try_recv().ok()) {
                match self.serve_read(read, lead, shutdown).await {
                    Ok(()) => {}
                    Err(Stopping::Shutdown) => return true,
                    Err(Stopping::LostLead) => return false,
                }
            }
            let job = match self.outbox.next_job().await {
                Ok(job) => job,
                Err(e) => {
                    tracing::error!(error = %e, "sender cannot read the outbox");
                    if wait(shutdown, Instant::now() + IDLE_POLL, None).await {
                        return true;
                    }
                    if !lead.holds().await {
                        return false;
                    }
                    continue;
                }
            };
            let Some(job) = job else {
                if wait(shutdown, Instant::now() + IDLE_POLL, Some(&changed)).await {
                    return true;
                }
                if !lead.holds().await {
                    return false;
                }
                continue;
            };
            // The job's own retry time first; re-read the head after that wait, since an older job
            // may have been put back (admin retry) meanwhile.
            let now = now_ms();
            if job.next_attempt_at > now {
                let delay =
                    Duration::from_millis(u64::try_from(job.next_attempt_at - now).unwrap_or(0));
                if wait(shutdown, Instant::now() + delay, Some(&changed)).await {
                    return true;
                }
                continue;
            }
            let result = match job.kind {
                JobKind::Create => self.send_create(&job, lead, shutdown).await,
                JobKind::Update => self.send_update(&job, lead, shutdown).await,
            };
            match result {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::error!(error = %e, seq = job.seq, "could not record a delivery outcome; the job stays queued")
                }
                Err(Stopping::Shutdown) => return true,
                Err(Stopping::LostLead) => return false,
            }
        }
    }

    /// Waits for the pace gate, then makes one upstream request. The head job is sent as soon as
    /// the gate opens, without another look at the queue: a round trip to the outbox here would
    /// be added to every gap between requests.
    async fn request<F, Fut>(
        &mut self,
        lead: &Leadership,
        shutdown: &mut watch::Receiver<bool>,
        call: F,
    ) -> Result<Reply, Stopping>
    where
        F: FnOnce(Upstream) -> Fut,
        Fut: std::future::Future<Output = Reply>,
    {
        let gate = self.pacer.gate();
        if gate > Instant::now() && wait(shutdown, gate, None).await {
            return Err(Stopping::Shutdown);
        }
        // Still the sender, and the start recorded where a successor reads it, before the request
        // leaves: two instances never send at once, and the pace holds across a takeover.
        if !lead.holds().await {
            return Err(Stopping::LostLead);
        }
        if let Err(e) = self.outbox.record_request(self.key.clone(), now_ms()).await {
            tracing::warn!(error = %e, "could not record the request's start; not sending now");
            if wait(shutdown, Instant::now() + IDLE_POLL, None).await {
                return Err(Stopping::Shutdown);
            }
            return Err(Stopping::LostLead);
        }
        let started = Instant::now();
        self.pacer.started(started);
        let reply = call(self.upstream.clone()).await;
        let took = started.elapsed();
        self.metrics.observe_upstream(took);
        self.pacer.finished(took);
        Ok(reply)
    }

    /// Makes a read asked through [`Reads`] (unless its asker gave up) and hands the answer back.
    async fn serve_read(
        &mut self,
        read: ListRead,
        lead: &Leadership,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), Stopping> {
        let ListRead { query, reply } = read;
        if reply.is_closed() {
            return Ok(());
        }
        let answer = self
            .request(lead, shutdown, |u| async move { u.list(&query).await })
            .await?;
        match &answer {
            Reply::RateLimited { wait, reason } => {
                Metrics::inc(&self.metrics.upstream_429);
                let wait = wait.unwrap_or(DEFAULT_429_WAIT);
                self.pacer.block_for(Instant::now(), wait);
                tracing::warn!(wait_ms = wait.as_millis() as u64, %reason, "Growi rate limited a reconciliation read; waiting before any next request");
            }
            Reply::KeyRefused { status, reason } => {
                self.metrics.sender_paused.store(true, Relaxed);
                self.pacer.block_for(Instant::now(), self.config.auth_pause);
                tracing::error!(status, %reason, "GROWI REFUSED THE API KEY on a reconciliation read: check GROWI_API_KEY");
            }
            _ => {}
        }
        let _ = reply.send(answer);
        Ok(())
    }

    async fn send_create(
        &mut self,
        job: &Job,
        lead: &Leadership,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<Result<(), OutboxError>, Stopping> {
        let body = job.body.clone();
        let reply = self
            .request(lead, shutdown, |u| async move { u.create(body).await })
            .await?;
        let Reply::Done { status, body } = reply else {
            return Ok(self.settle_other(job, reply).await);
        };
        let Some(sale) = sale_in_answer(&body) else {
            let reason = format!("Growi answered {status} without data.id");
            return Ok(self.retry(job, Some(status), reason).await);
        };
        if sale.external_id.as_deref() != Some(job.order_id.as_str()) {
            tracing::warn!(order_id = %job.order_id, growi_id = sale.id, "Growi's create answer does not name this order");
        }
        Metrics::inc(&self.metrics.upstream_sent);
        self.metrics.sender_paused.store(false, Relaxed);
        tracing::info!(order_id = %job.order_id, kind = "create", status, growi_id = sale.id, attempts = job.attempts + 1, "delivered");
        Ok(self
            .outbox
            .mark_sent(job.seq, status, Some(sale.id), None, now_ms())
            .await)
    }

    async fn send_update(
        &mut self,
        job: &Job,
        lead: &Leadership,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<Result<(), OutboxError>, Stopping> {
        let recorded = match job.growi_id {
            Some(id) if job.id_checked => id,
            recorded => return self.check_id(job, recorded, lead, shutdown).await,
        };
        let body = job.body.clone();
        let reply = self
            .request(
                lead,
                shutdown,
                |u| async move { u.update(recorded, body).await },
            )
            .await?;
        match reply {
            Reply::Done { status, .. } => {
                Metrics::inc(&self.metrics.upstream_sent);
                self.metrics.sender_paused.store(false, Relaxed);
                tracing::info!(order_id = %job.order_id, kind = "update", status, growi_id = recorded, attempts = job.attempts + 1, "delivered");
                Ok(self
                    .outbox
                    .mark_sent(job.seq, status, None, None, now_ms())
                    .await)
            }
            Reply::Refused { status, reason } => {
                self.confirm_refused_update(job, status, reason, lead, shutdown)
                    .await
            }
            other => Ok(self.settle_other(job, other).await),
        }
    }

    /// Before an order's first PATCH: which sale is this order's at this upstream (and is it the
    /// one `recorded`)?
    async fn check_id(
        &mut self,
        job: &Job,
        recorded: Option<i64>,
        lead: &Leadership,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<Result<(), OutboxError>, Stopping> {
        let order_id = job.order_id.clone();
        let reply = self
            .request(lead, shutdown, |u| async move { u.find(&order_id).await })
            .await?;
        let Reply::Done { status, body } = reply else {
            return Ok(self.settle_other(job, reply).await);
        };
        match sale_in_list(&body, &job.order_id) {
            Some(sale) => {
                if recorded != Some(sale.id) {
                    tracing::warn!(order_id = %job.order_id, recorded = recorded.unwrap_or(0), growi_id = sale.id, "the outbox's Growi id for this order is not the upstream's; using the upstream's");
                } else {
                    tracing::info!(order_id = %job.order_id, growi_id = sale.id, "Growi id checked before the first update");
                }
                Ok(self
                    .outbox
                    .adopt_growi_id(job.order_id.clone(), sale.id)
                    .await)
            }
            None => {
                Metrics::inc(&self.metrics.upstream_failed);
                let reason = match recorded {
                    Some(id) => format!(
                        "Growi has no sale for this order at {} (the outbox's id {id} came from \
                         elsewhere); nothing was changed",
                        self.config.upstream
                    ),
                    None => format!(
                        "Growi has no sale for this order at {}; nothing was changed",
                        self.config.upstream
                    ),
                };
                tracing::warn!(order_id = %job.order_id, %reason, "update failed");
                Ok(self.outbox.mark_failed(job.seq, status, reason).await)
            }
        }
    }

    /// Growi refused an update: done anyway if Growi already holds what it asked for.
    async fn confirm_refused_update(
        &mut self,
        job: &Job,
        status: u16,
        refusal: String,
        lead: &Leadership,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<Result<(), OutboxError>, Stopping> {
        let order_id = job.order_id.clone();
        let reply = self
            .request(lead, shutdown, |u| async move { u.find(&order_id).await })
            .await?;
        let wanted: serde_json::Value =
            serde_json::from_str(&job.body).unwrap_or(serde_json::Value::Null);
        match reply {
            Reply::Done { body, .. } => {
                let held = sale_in_list(&body, &job.order_id);
                if held
                    .as_ref()
                    .is_some_and(|s| holds::already_holds(&wanted, s))
                {
                    Metrics::inc(&self.metrics.upstream_sent);
                    let note = format!(
                        "Growi refused the update ({status}: {refusal}) because it already holds \
                         it: done"
                    );
                    tracing::info!(order_id = %job.order_id, kind = "update", %refusal, "update already in place at Growi");
                    return Ok(self
                        .outbox
                        .mark_sent(job.seq, status, None, Some(note), now_ms())
                        .await);
                }
                Metrics::inc(&self.metrics.upstream_failed);
                tracing::warn!(order_id = %job.order_id, kind = "update", status, reason = %refusal, "Growi refused the job for good; it is now failed (see the admin API)");
                Ok(self.outbox.mark_failed(job.seq, status, refusal).await)
            }
            other => {
                // Whether it is in place cannot be told now: try the update again later (a
                // second refusal leads here again, and to the look-up).
                let detail = format!("{status}: {refusal}; could not check Growi: {other:?}");
                Ok(self.retry(job, Some(status), detail).await)
            }
        }
    }

    /// Every answer but a success, the same for creates and updates.
    async fn settle_other(&mut self, job: &Job, reply: Reply) -> Result<(), OutboxError> {
        let m = &self.metrics;
        let order_id = job.order_id.as_str();
        let kind = match job.kind {
            JobKind::Create => "create",
            JobKind::Update => "update",
        };
        match reply {
            Reply::Done { status, .. } => {
                // Not reached: successes are settled by the caller.
                self.retry(job, Some(status), "unexpected success".into())
                    .await
            }
            Reply::RateLimited { wait, reason } => {
                Metrics::inc(&m.upstream_429);
                Metrics::inc(&m.upstream_retries);
                let wait = wait.unwrap_or(DEFAULT_429_WAIT);
                self.pacer.block_for(Instant::now(), wait);
                tracing::warn!(%order_id, wait_ms = wait.as_millis() as u64, %reason, "Growi rate limited the sender; waiting before any next request");
                self.outbox.note(job.seq, 429, reason).await
            }
            Reply::KeyRefused { status, reason } => {
                m.sender_paused.store(true, Relaxed);
                self.pacer.block_for(Instant::now(), self.config.auth_pause);
                tracing::error!(
                    status,
                    %reason,
                    pause_secs = self.config.auth_pause.as_secs(),
                    "GROWI REFUSED THE API KEY: check GROWI_API_KEY (a read-only key gets 403 on writes). \
                     Delivery is paused; every sale stays queued and nothing is lost."
                );
                self.outbox.note(job.seq, status, reason).await
            }
            Reply::Refused { status, reason } => {
                m.sender_paused.store(false, Relaxed);
                Metrics::inc(&m.upstream_failed);
                tracing::warn!(%order_id, kind, status, %reason, "Growi refused the job for good; it is now failed (see the admin API)");
                self.outbox.mark_failed(job.seq, status, reason).await
            }
            Reply::Retry { status, reason } => {
                if status.is_some() {
                    m.sender_paused.store(false, Relaxed);
                }
                self.retry(job, status, reason).await
            }
        }
    }

    async fn retry(
        &mut self,
        job: &Job,
        status: Option<u16>,
        error: String,
    ) -> Result<(), OutboxError> {
        Metrics::inc(&self.metrics.upstream_retries);
        let delay = self.config.backoff.delay_ms(job.attempts, fastrand::f64());
        tracing::warn!(order_id = %job.order_id, status = status.map(i64::from).unwrap_or(-1), %error, retry_in_ms = delay, attempts = job.attempts + 1, "delivery failed; will retry");
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
