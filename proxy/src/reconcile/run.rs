//! Running a reconciliation inside the proxy, at the sender's pace, and keeping its report.
//!
//! **Why inside the proxy.** Growi takes one request per 2 s per key, and the sender already
//! spends that allowance. A reconciliation with a client of its own (another process, or another
//! task here) would put a second requester on the key: two requests closer than the pace, `429`s,
//! and a sender that backs off. So the pages are read *by the sender*, between its jobs, through
//! the same request path as a create (leadership checked, the start recorded, the pace gate):
//! [`crate::sender::Reads`]. The command line's `reconcile` is only a client of the admin API.
//!
//! **Why started, then polled.** A reconciliation of `n` pages takes at least `n` paces (more
//! while the queue is busy: the pace is shared one job, one page), minutes for a busy month. No
//! HTTP request should be held open that long (proxies in front cut idle requests at 60 s), so
//! `POST /admin/reconcile` starts a run and answers `202` at once, the run writes its progress to
//! the outbox's `meta` table after every page ([`Record`]: the run under way or last run, and the
//! last finished report), and the caller polls `GET /admin/reconcile`. A run that stops without
//! finishing (its instance killed) is recognised by its `updated_at`, which a live run refreshes
//! at least every [`HEARTBEAT`].
//!
//! **Several instances (PostgreSQL).** Only the instance that is the sender can pace a read; the
//! others stand by. A standing-by instance refuses to start a run with `503` and `Retry-After`
//! (the CLI retries, and behind a load balancer soon reaches the sender), rather than handing the
//! run to the sender through the database: that would need a queue of run requests and a second
//! poller in the sender, for a command a person runs now and then. What *every* instance can do is
//! answer the polls, since the record lives in the shared database: the CLI's polls may land
//! anywhere. If the sender's instance stops mid-run, the run stops with it (its record goes stale,
//! the CLI says so) and is simply started again on the new sender.
//!
//! **Consistent without a snapshot of Growi.** The outbox is read first, then Growi's pages. A sale
//! the outbox had as sent was acknowledged by Growi before any page was read, so its absence is
//! real. Anything else that looks different (a sale at Growi the outbox did not have, a field that
//! differs) may have been sent while the pages were read: each such order is read again from the
//! outbox after the last page and compared again, and only a difference that still holds is kept.

use super::{
    compare, compare_order, expected_from_jobs, website_sales, Day, Difference, Kind, Report,
    Window,
};
use crate::now_ms;
use crate::outbox::{ListFilter, OutboxError};
use crate::sender::upstream::{GrowiSale, Reply};
use crate::sender::Reads;
use salebeacon::time::format_utc;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Growi's largest page.
const PER_PAGE: u32 = 100;
/// A run never reads more pages than this (a million sales); a wider window is refused midway.
const MAX_PAGES: u32 = 10_000;
/// Tries of one page when Growi answers 5xx, 429 or nothing.
const PAGE_ATTEMPTS: u32 = 5;
/// At most this many differences are listed (and re-checked); the rest are counted. The record is
/// rewritten after every page and read by every poll, so it stays small (a few hundred KB).
pub const MAX_LISTED: usize = 2_000;
/// A running run writes its record at least this often, even while it waits (a long `429`).
pub const HEARTBEAT: Duration = Duration::from_secs(15);
/// A run whose record was not refreshed for this long is taken for dead.
pub const STALE_AFTER: Duration = Duration::from_secs(120);
/// The window when the caller names none: the last 30 days, today included.
pub const DEFAULT_DAYS: i64 = 30;
/// Outbox jobs created this long before the window are not read: a sale's `occurred_at` is never
/// much later than its arrival, and the window reaches a day further (see the parent module).
const CREATED_SLACK_MS: i64 = 2 * 86_400_000;

/// A run's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Running,
    Done,
    Failed,
}

/// A run as the admin API shows it, under way or ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunStatus {
    pub id: String,
    pub state: RunState,
    #[schema(value_type = String, format = Date)]
    pub since: Day,
    #[schema(value_type = String, format = Date)]
    pub until: Day,
    pub started_at: String,
    /// Refreshed after every page, and at least every [`HEARTBEAT`] while the run lives.
    pub updated_at: String,
    #[serde(default)]
    pub finished_at: Option<String>,
    pub pages_read: u32,
    /// Known after the first page.
    #[serde(default)]
    pub page_count: Option<u32>,
    /// When done: whether everything agrees, and how many orders differ.
    #[serde(default)]
    pub agree: Option<bool>,
    #[serde(default)]
    pub differences: Option<u64>,
    /// When failed: why.
    #[serde(default)]
    pub error: Option<String>,
    /// Running, but not heard of for [`STALE_AFTER`]: its instance stopped (set when read).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stale: bool,
}

impl Record {
    /// Marks the run stale if it claims to run but has not been refreshed for [`STALE_AFTER`].
    pub fn judged(mut self, now: i64) -> Record {
        if let Some(run) = self.run.as_mut() {
            let heard = salebeacon::time::parse_rfc3339(&run.updated_at).unwrap_or(0);
            let silent = u64::try_from(now.saturating_sub(heard)).unwrap_or(0);
            run.stale = run.state == RunState::Running && silent > STALE_AFTER.as_millis() as u64;
        }
        self
    }
}

/// What `meta` keeps: the run under way (or the last one), and the last finished report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Record {
    pub run: Option<RunStatus>,
    pub last: Option<Report>,
}

/// Why a run was not started.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// Another instance is the sender (or none is yet): only the sender can pace the reads.
    #[error("this instance is not the sender for its upstream; only the sender can pace a reconciliation")]
    Standby,
    /// This instance runs one already.
    #[error("a reconciliation is already running")]
    Running(RunStatus),
    #[error(transparent)]
    Outbox(#[from] OutboxError),
}

/// What a run works with: the parts of the app's state it needs. Taken rather than the app's
/// state itself, which holds the [`Reconciler`]: the state knows this module, not the reverse.
#[derive(Clone)]
pub struct Parts {
    pub outbox: crate::outbox::Outbox,
    pub config: Arc<crate::config::ProxyConfig>,
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// Starts runs and keeps one at a time; lives in the app's state.
#[derive(Clone)]
pub struct Reconciler {
    reads: Reads,
    /// The run under way on this instance.
    running: Arc<Mutex<Option<RunStatus>>>,
}

impl Reconciler {
    pub fn new(reads: Reads) -> Reconciler {
        Reconciler {
            reads,
            running: Arc::new(Mutex::new(None)),
        }
    }

    /// What the sender must serve (see [`crate::sender::Sender::serving`]).
    pub fn reads(&self) -> &Reads {
        &self.reads
    }

    /// The window for `since` / `until` as given: until defaults to today, since to
    /// [`DEFAULT_DAYS`] days up to until.
    pub fn window(since: Option<Day>, until: Option<Day>) -> Result<Window, String> {
        let until = until.unwrap_or_else(|| Day::of_ms(now_ms()));
        let since = since.unwrap_or_else(|| until.plus(1 - DEFAULT_DAYS));
        if since > until {
            return Err(format!("since ({since}) is after until ({until})"));
        }
        Ok(Window { since, until })
    }

    /// Starts a run over `window` in the background; its status as first recorded.
    pub async fn start(&self, state: &Parts, window: Window) -> Result<RunStatus, Refusal> {
        if !state.metrics.sender_active.load(Relaxed) {
            return Err(Refusal::Standby);
        }
        let now = format_utc(now_ms());
        let status = RunStatus {
            id: format!("{:016x}", fastrand::u64(..)),
            state: RunState::Running,
            since: window.since,
            until: window.until,
            started_at: now.clone(),
            updated_at: now,
            finished_at: None,
            pages_read: 0,
            page_count: None,
            agree: None,
            differences: None,
            error: None,
            stale: false,
        };
        {
            let mut running = self.running.lock().map_err(|_| Refusal::Standby)?;
            if let Some(run) = running.as_ref() {
                return Err(Refusal::Running(run.clone()));
            }
            *running = Some(status.clone());
        }
        let clear = ClearOnDrop(self.running.clone());
        if let Err(e) = save_run(state, &status, None).await {
            drop(clear);
            return Err(e.into());
        }
        tracing::info!(id = %status.id, since = %window.since, until = %window.until, "reconciliation started");
        let task = Task {
            state: state.clone(),
            reads: self.reads.clone(),
            status: status.clone(),
            window,
            requests: 0,
        };
        tokio::spawn(async move {
            task.run().await;
            drop(clear);
        });
        Ok(status)
    }
}

/// Forgets the run under way when the run ends, however it ends.
struct ClearOnDrop(Arc<Mutex<Option<RunStatus>>>);

impl Drop for ClearOnDrop {
    fn drop(&mut self) {
        if let Ok(mut running) = self.0.lock() {
            *running = None;
        }
    }
}

/// The record as `meta` holds it (empty when there is none or it cannot be read).
pub async fn record(state: &Parts) -> Result<Record, OutboxError> {
    let text = state.outbox.reconcile_record().await?;
    Ok(text
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default())
}

/// Writes `run` into the record, and `report` as the last report when given.
async fn save_run(
    state: &Parts,
    run: &RunStatus,
    report: Option<Report>,
) -> Result<(), OutboxError> {
    let mut rec = record(state).await?;
    rec.run = Some(run.clone());
    if let Some(r) = report {
        rec.last = Some(r);
    }
    let json = serde_json::to_string(&rec)
        .map_err(|e| OutboxError::Database(format!("cannot write the reconciliation: {e}")))?;
    state.outbox.set_reconcile_record(json).await
}

/// One run.
struct Task {
    state: Parts,
    reads: Reads,
    status: RunStatus,
    window: Window,
    requests: u32,
}

impl Task {
    async fn run(mut self) {
        let started = self.status.started_at.clone();
        let outcome = self.reconcile().await;
        let now = format_utc(now_ms());
        self.status.updated_at = now.clone();
        self.status.finished_at = Some(now.clone());
        let report = match outcome {
            Ok((comparison_differences, more, counts, notes)) => {
                let report = Report {
                    id: self.status.id.clone(),
                    since: self.window.since,
                    until: self.window.until,
                    started_at: started,
                    finished_at: now,
                    agree: comparison_differences.is_empty() && more == 0,
                    counts,
                    pages: self.status.pages_read,
                    requests: self.requests,
                    differences: comparison_differences,
                    more_differences: more,
                    notes,
                };
                self.status.state = RunState::Done;
                self.status.agree = Some(report.agree);
                self.status.differences =
                    Some(report.differences.len() as u64 + report.more_differences);
                tracing::info!(id = %self.status.id, agree = report.agree, differences = self.status.differences.unwrap_or(0), pages = report.pages, "reconciliation done");
                Some(report)
            }
            Err(e) => {
                tracing::warn!(id = %self.status.id, error = %e, "reconciliation failed");
                self.status.state = RunState::Failed;
                self.status.error = Some(e);
                None
            }
        };
        if let Err(e) = save_run(&self.state, &self.status, report).await {
            tracing::error!(id = %self.status.id, error = %e, "could not keep the reconciliation's outcome");
        }
    }

    /// The differences (listed, and how many more), the counts and the notes.
    async fn reconcile(
        &mut self,
    ) -> Result<(Vec<Difference>, u64, super::Counts, Vec<String>), String> {
        let window = self.window;
        let jobs = self
            .state
            .outbox
            .list(ListFilter {
                since_ms: Some(window.since.start_ms().saturating_sub(CREATED_SLACK_MS)),
                limit: u32::MAX,
                ..ListFilter::default()
            })
            .await
            .map_err(|e| format!("cannot read the outbox: {e}"))?;
        let outbox = expected_from_jobs(jobs);
        let growi = self.read_growi().await?;
        let comparison = compare(window, &outbox, &growi);
        let (by_order, _) = website_sales(&growi);
        let mut counts = comparison.counts;
        let mut listed = Vec::new();
        let mut more = 0u64;
        for d in comparison.differences {
            if listed.len() >= MAX_LISTED {
                more += 1;
                continue;
            }
            match d.kind {
                // Sent before the first page was read: Growi should have had it all along.
                Kind::MissingAtGrowi | Kind::DuplicateAtGrowi => listed.push(d),
                _ if d.order_id.is_empty() => listed.push(d),
                // May have changed while the pages were read: compare again with the outbox now.
                _ => {
                    let now = self
                        .state
                        .outbox
                        .get(d.order_id.clone())
                        .await
                        .map_err(|e| format!("cannot read the outbox: {e}"))?;
                    let fresh = now.map(|v| {
                        let jobs = std::iter::once(v.sale).chain(v.updates);
                        expected_from_jobs(jobs)
                    });
                    let expected = fresh.as_ref().and_then(|m| m.get(&d.order_id));
                    let at_growi = by_order.get(&d.order_id).map_or(&[][..], Vec::as_slice);
                    match compare_order(&d.order_id, expected, at_growi) {
                        Some(still) => listed.push(still),
                        None if expected.is_some_and(|e| e.sent()) => {
                            counts.agree += 1;
                            if !outbox.contains_key(&d.order_id) {
                                counts.sent_by_proxy += 1;
                            }
                        }
                        None => {}
                    }
                }
            }
        }
        listed.sort_by(|a, b| (a.kind, &a.order_id).cmp(&(b.kind, &b.order_id)));
        let mut notes = Vec::new();
        let days = self.state.config.retention_days;
        if days > 0 {
            let horizon = Day::of_ms(now_ms()).plus(1 - i64::from(days));
            if window.since < horizon {
                notes.push(format!(
                    "the window starts before the retention horizon ({horizon}, {days} days): \
                     sales sent before it may have been deleted from the outbox and show as \
                     unknown to the proxy"
                ));
            }
        }
        Ok((listed, more, counts, notes))
    }

    /// Every page of Growi's website sales over the window and a day on each side.
    async fn read_growi(&mut self) -> Result<Vec<GrowiSale>, String> {
        let mut sales = Vec::new();
        let mut page = 1u32;
        loop {
            let (data, page_count) = self.read_page(page).await?;
            let empty = data.is_empty();
            sales.extend(data);
            self.status.pages_read = page;
            self.status.page_count = page_count;
            self.status.updated_at = format_utc(now_ms());
            if let Err(e) = save_run(&self.state, &self.status, None).await {
                tracing::warn!(error = %e, "could not record the reconciliation's progress");
            }
            if empty || page_count.is_none_or(|n| page >= n) {
                return Ok(sales);
            }
            if page >= MAX_PAGES {
                return Err(format!(
                    "more than {MAX_PAGES} pages of sales: reconcile a shorter window"
                ));
            }
            page += 1;
        }
    }

    /// One page: its sales and Growi's page count, trying again after a 5xx, a 429 or no answer.
    async fn read_page(&mut self, page: u32) -> Result<(Vec<GrowiSale>, Option<u32>), String> {
        let window = self.window;
        let query: Vec<(String, String)> = [
            ("store_platform", "website".to_owned()),
            ("per_page", PER_PAGE.to_string()),
            ("page", page.to_string()),
            ("start_date", window.since.plus(-1).growi()),
            ("end_date", window.until.plus(1).growi()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let mut last = String::new();
        for attempt in 1..=PAGE_ATTEMPTS {
            let reply = self.ask(query.clone()).await?;
            self.requests += 1;
            match reply {
                Reply::Done { body, .. } => return read_list(&body, page),
                Reply::KeyRefused { status, reason } => {
                    return Err(format!(
                        "Growi refused the API key ({status}: {reason}); check GROWI_API_KEY"
                    ))
                }
                Reply::Refused { status, reason } => {
                    return Err(format!(
                        "Growi refused the list request ({status}: {reason})"
                    ))
                }
                // The sender's pacer already waits what a 429 asked for.
                Reply::RateLimited { reason, .. } => last = format!("429: {reason}"),
                Reply::Retry { status, reason } => {
                    last = match status {
                        Some(s) => format!("{s}: {reason}"),
                        None => reason,
                    };
                    tokio::time::sleep(Duration::from_secs(u64::from(attempt))).await;
                }
            }
        }
        Err(format!(
            "Growi did not answer page {page} after {PAGE_ATTEMPTS} tries (last: {last})"
        ))
    }

    /// Hands one read to the sender and waits for its answer, keeping the record fresh and
    /// giving up when this instance stops being the sender.
    async fn ask(&mut self, query: Vec<(String, String)>) -> Result<Reply, String> {
        let gone = "this instance stopped being the sender (shutting down, or another instance \
                    took over); start the reconciliation again";
        // The sender takes one read per round: a full channel means reads it will never take.
        let asked = tokio::time::timeout(HEARTBEAT, self.reads.list(query)).await;
        let mut answer = match asked {
            Ok(Ok(answer)) => answer,
            _ => return Err(gone.to_owned()),
        };
        loop {
            tokio::select! {
                reply = &mut answer => return reply.map_err(|_| gone.to_owned()),
                () = tokio::time::sleep(HEARTBEAT) => {
                    if !self.state.metrics.sender_active.load(Relaxed) {
                        return Err(gone.to_owned());
                    }
                    self.status.updated_at = format_utc(now_ms());
                    if let Err(e) = save_run(&self.state, &self.status, None).await {
                        tracing::warn!(error = %e, "could not record the reconciliation's progress");
                    }
                }
            }
        }
    }
}

/// The sales and the page count of one list answer.
fn read_list(body: &Value, page: u32) -> Result<(Vec<GrowiSale>, Option<u32>), String> {
    let data = body
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("Growi's answer for page {page} has no data list"))?;
    let sales = data
        .iter()
        .filter_map(|v| serde_json::from_value::<GrowiSale>(v.clone()).ok())
        .collect();
    let page_count = body
        .get("meta")
        .and_then(|m| m.get("page_count"))
        .and_then(Value::as_u64)
        .map(|n| u32::try_from(n).unwrap_or(u32::MAX));
    Ok((sales, page_count))
}
