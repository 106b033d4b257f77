//! The durable outbox: every accepted sale and every admin update, as a job, until Growi has it.
//!
//! Shape and why:
//! - **One table of jobs**, `kind` = `create` (a sale, unique by `order_id`, which is also how a
//!   duplicate is detected) or `update` (a PATCH body for an `order_id`). `seq` orders everything,
//!   so the sender drains oldest first, and an update is only eligible once its create is `sent`
//!   (the sender then makes sure of Growi's integer id).
//! - **Durable before the answer.** A sale is committed before the browser hears `202`; inserts
//!   that arrive together are committed together (group commit), so one fsync serves hundreds of
//!   requests.
//! - **Bound to one upstream.** The Growi ids the outbox records belong to the upstream and key
//!   it was bound to ([`Binding`]); another one is refused.
//! - **Refused sales are kept too** (the newest [`REFUSED_KEEP`]), because a pixel's refusal
//!   reaches nobody otherwise.
//!
//! This module holds the types every backend shares and [`Outbox`], which dispatches to the
//! backend `--db` names: [`sqlite`] (a file: one proxy, the default) or [`postgres`] (a URL:
//! several proxies sharing one queue). Every behaviour is the same on both; the proxy's tests run
//! against each.

pub mod postgres;
pub mod sqlite;

use crate::config::DbSync;

use serde::Serialize;
use std::sync::Arc;
use tokio::sync::Notify;

/// At most this many refused sales are kept (the oldest go first).
pub const REFUSED_KEEP: i64 = 10_000;

/// A job's delivery state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Queued,
    Sent,
    Failed,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Sent => "sent",
            JobState::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<JobState> {
        match s {
            "queued" => Some(JobState::Queued),
            "sent" => Some(JobState::Sent),
            "failed" => Some(JobState::Failed),
            _ => None,
        }
    }
}

/// What a job does upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    Create,
    Update,
}

/// The outcome of offering a sale to the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    /// Committed as a new job.
    Queued,
    /// A sale with this `order_id` is already in the outbox.
    Duplicate,
}

/// The outbox failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OutboxError {
    #[error("the outbox is closed")]
    Closed,
    /// Another process holds the outbox's lock file.
    #[error(
        "another salebeacon-proxy is already using this SQLite outbox (it holds {lock}); one \
         SQLite file serves exactly one proxy, since two would run two senders against one Growi \
         key. To run several instances, give them one PostgreSQL outbox (--db postgres://...)"
    )]
    InUse { lock: String },
    #[error("sqlite: {0}")]
    Sqlite(String),
    /// The database was written by a newer proxy.
    #[error(
        "the outbox has schema version {found}, newer than this salebeacon-proxy knows ({known}): \
         run the newer proxy, or give this one another database"
    )]
    NewerSchema { found: i64, known: i64 },
    /// The database server failed or cannot be reached (the message never holds the URL).
    #[error("database: {0}")]
    Database(String),
    /// The Growi ids in the outbox belong to another upstream or key.
    #[error(
        "this outbox holds Growi sale ids from another upstream or API key (fingerprint {stored}; \
         this proxy's is {current}). Updates sent with those ids here could change other sales. \
         Give this upstream its own database (--db), or start once with --forget-upstream-ids to \
         keep the queue and look every sale up again at the new upstream before its first update"
    )]
    OtherUpstream { stored: String, current: String },
}

/// The next job for the sender.
#[derive(Debug, Clone)]
pub struct Job {
    pub seq: i64,
    pub kind: JobKind,
    pub order_id: String,
    /// The JSON body to send.
    pub body: String,
    pub attempts: u32,
    /// Unix ms before which it must not be tried.
    pub next_attempt_at: i64,
    /// For an update: the Growi id of its sale.
    pub growi_id: Option<i64>,
    /// For an update: whether that id is known to be this order's at this upstream (a look-up by
    /// `order_id` found it); when it is not, the sender looks it up before the PATCH.
    pub id_checked: bool,
}

/// A job as the admin API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct JobView {
    pub id: i64,
    pub kind: JobKind,
    pub order_id: String,
    pub state: JobState,
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<String>,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub growi_id: Option<i64>,
    pub created_at: String,
    pub sent_at: Option<String>,
    /// How the job was settled, when that needs saying (e.g. an update found already in place).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// What is (or was) sent upstream.
    #[schema(value_type = Object)]
    pub body: serde_json::Value,
}

/// A sale refused at intake (the pixel's refusals never reach anyone otherwise).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RefusedView {
    pub id: i64,
    /// `pixel` or `browser`.
    pub source: String,
    pub order_id: Option<String>,
    /// `invalid`, `unattributed`, `order_token`, ...
    pub reason: String,
    #[schema(value_type = Vec<crate::openapi::IssueBody>)]
    pub issues: serde_json::Value,
    pub created_at: String,
}

/// Which jobs [`Outbox::list`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    pub state: Option<JobState>,
    pub kind: Option<JobKind>,
    /// Order ids that contain this text, ignoring case.
    pub order_id: Option<String>,
    /// Sales whose `campaign_affiliate_id` is exactly this.
    pub affiliate: Option<String>,
    /// Created at or after (ms since the epoch).
    pub since_ms: Option<i64>,
    /// Created before (ms since the epoch).
    pub until_ms: Option<i64>,
    /// Newest first (the dashboard) rather than queue order (the default).
    pub newest_first: bool,
    pub limit: u32,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Create => "create",
            JobKind::Update => "update",
        }
    }
}

/// Whose personal data [`Outbox::erase`] removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Erase {
    OrderId(String),
    /// Every sale with this customer email (compared ignoring case).
    Email(String),
}

/// The fields of a stored sale that name or track a person, removed by [`Outbox::erase`]. The
/// data inventory (README) lists them; a test holds the two together.
pub const PERSONAL_FIELDS: &[&str] = &["customer_email", "customer_name", "visitor_uid"];

/// What [`Outbox::bind_upstream`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    /// The outbox had no upstream yet (a new one): it is bound to this one now.
    New,
    /// Bound to this upstream and key already.
    Same,
    /// An outbox written before upstreams were recorded: bound now, and every Growi id it holds
    /// will be looked up before its first update (this many).
    Unverified(u64),
    /// `--forget-upstream-ids`: bound to the new upstream; this many ids were forgotten.
    Forgot(u64),
}

/// A sale and its updates.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SaleView {
    #[serde(flatten)]
    pub sale: JobView,
    pub updates: Vec<JobView>,
}

/// The result of asking to retry a failed sale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryOutcome {
    NotFound,
    /// Nothing failed for this order (the state of its create).
    NothingFailed(JobState),
    /// This many jobs (the create and/or its updates) are queued again.
    Requeued(usize),
}

pub use crate::database::{mask_password, Database};

/// The outbox, on whichever backend: cheap to clone.
#[derive(Clone, Debug)]
pub enum Outbox {
    Sqlite(sqlite::Outbox),
    Postgres(postgres::Outbox),
}

/// The right to send for one upstream key (see [`Outbox::leadership`]).
pub enum Leadership {
    /// A SQLite outbox has one process (its lock file): that process always leads.
    Sole,
    Postgres(postgres::Leadership),
}

impl Leadership {
    /// Whether it still holds (a PostgreSQL lock is lost with its connection).
    pub async fn holds(&self) -> bool {
        match self {
            Leadership::Sole => true,
            Leadership::Postgres(l) => l.holds().await,
        }
    }
}

macro_rules! both {
    ($self:ident, $o:ident => $e:expr) => {
        match $self {
            Outbox::Sqlite($o) => $e,
            Outbox::Postgres($o) => $e,
        }
    };
}

impl Outbox {
    /// Opens the outbox `db` names (creating and migrating it as needed).
    pub async fn open(
        db: &Database,
        sync: DbSync,
        batch_max: usize,
    ) -> Result<Outbox, OutboxError> {
        match db {
            Database::Sqlite(path) => {
                sqlite::Outbox::open(path, sync, batch_max).map(Outbox::Sqlite)
            }
            Database::Postgres(url) => postgres::Outbox::open(url, batch_max)
                .await
                .map(Outbox::Postgres),
        }
    }

    /// Tries to become the one sender for `key` (an upstream fingerprint): always granted on
    /// SQLite; on PostgreSQL, to one instance at a time.
    pub async fn leadership(&self, key: &str) -> Result<Option<Leadership>, OutboxError> {
        match self {
            Outbox::Sqlite(_) => Ok(Some(Leadership::Sole)),
            Outbox::Postgres(o) => Ok(o.leadership(key).await?.map(Leadership::Postgres)),
        }
    }

    pub fn changed(&self) -> Arc<Notify> {
        both!(self, o => o.changed())
    }
    pub async fn enqueue_sale(
        &self,
        order_id: String,
        body: String,
        now: i64,
    ) -> Result<Enqueued, OutboxError> {
        both!(self, o => o.enqueue_sale(order_id, body, now).await)
    }
    pub async fn queue_depth(&self) -> Result<u64, OutboxError> {
        both!(self, o => o.queue_depth().await)
    }
    pub async fn next_job(&self) -> Result<Option<Job>, OutboxError> {
        both!(self, o => o.next_job().await)
    }
    pub async fn mark_sent(
        &self,
        seq: i64,
        status: u16,
        growi_id: Option<i64>,
        note: Option<String>,
        now: i64,
    ) -> Result<(), OutboxError> {
        both!(self, o => o.mark_sent(seq, status, growi_id, note, now).await)
    }
    pub async fn adopt_growi_id(&self, order_id: String, growi_id: i64) -> Result<(), OutboxError> {
        both!(self, o => o.adopt_growi_id(order_id, growi_id).await)
    }
    pub async fn bind_upstream(
        &self,
        fingerprint: String,
        forget: bool,
    ) -> Result<Binding, OutboxError> {
        both!(self, o => o.bind_upstream(fingerprint, forget).await)
    }
    pub async fn record_refused(
        &self,
        source: &'static str,
        order_id: Option<String>,
        reason: &'static str,
        issues: String,
        now: i64,
    ) -> Result<(), OutboxError> {
        both!(self, o => o.record_refused(source, order_id, reason, issues, now).await)
    }
    pub async fn refused(&self, limit: u32) -> Result<Vec<RefusedView>, OutboxError> {
        both!(self, o => o.refused(limit).await)
    }
    pub async fn mark_retry(
        &self,
        seq: i64,
        status: Option<u16>,
        error: String,
        next_attempt_at: i64,
    ) -> Result<(), OutboxError> {
        both!(self, o => o.mark_retry(seq, status, error, next_attempt_at).await)
    }
    pub async fn note(&self, seq: i64, status: u16, error: String) -> Result<(), OutboxError> {
        both!(self, o => o.note(seq, status, error).await)
    }
    pub async fn mark_failed(
        &self,
        seq: i64,
        status: u16,
        error: String,
    ) -> Result<(), OutboxError> {
        both!(self, o => o.mark_failed(seq, status, error).await)
    }
    pub async fn enqueue_update(
        &self,
        order_id: String,
        body: String,
        now: i64,
    ) -> Result<Option<i64>, OutboxError> {
        both!(self, o => o.enqueue_update(order_id, body, now).await)
    }
    pub async fn retry_failed(&self, order_id: String) -> Result<RetryOutcome, OutboxError> {
        both!(self, o => o.retry_failed(order_id).await)
    }
    pub async fn get(&self, order_id: String) -> Result<Option<SaleView>, OutboxError> {
        both!(self, o => o.get(order_id).await)
    }
    pub async fn list(&self, filter: ListFilter) -> Result<Vec<JobView>, OutboxError> {
        both!(self, o => o.list(filter).await)
    }
    /// Removes [`PERSONAL_FIELDS`] from the matching sales and their updates (queued ones then
    /// reach Growi without them), and deletes matching refusals; returns how many sales changed.
    pub async fn erase(&self, who: Erase) -> Result<u64, OutboxError> {
        both!(self, o => o.erase(who).await)
    }
    /// How many jobs are in `state` (creates and updates).
    pub async fn count(&self, state: JobState) -> Result<u64, OutboxError> {
        both!(self, o => o.count(state).await)
    }
    pub async fn ping(&self) -> Result<(), OutboxError> {
        both!(self, o => o.ping().await)
    }
    pub async fn prune_sent(&self, before: i64, batch: u32) -> Result<u64, OutboxError> {
        both!(self, o => o.prune_sent(before, batch).await)
    }
    pub async fn last_request(&self, key: String) -> Result<Option<i64>, OutboxError> {
        both!(self, o => o.last_request(key).await)
    }
    pub async fn record_request(&self, key: String, at: i64) -> Result<(), OutboxError> {
        both!(self, o => o.record_request(key, at).await)
    }
    pub async fn close(&self) {
        both!(self, o => o.close().await)
    }

    /// The reconciliation record (the run under way or last run, and the last report), as JSON:
    /// kept in `meta` so that every instance and the dashboard read the same.
    pub async fn reconcile_record(&self) -> Result<Option<String>, OutboxError> {
        both!(self, o => o.reconcile_record().await)
    }
    /// Replaces the reconciliation record.
    pub async fn set_reconcile_record(&self, json: String) -> Result<(), OutboxError> {
        both!(self, o => o.set_reconcile_record(json).await)
    }
}
