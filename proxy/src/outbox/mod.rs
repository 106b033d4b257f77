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
//! This module holds the types every backend shares; [`sqlite`] is the embedded backend.

pub mod sqlite;

pub use sqlite::Outbox;

use serde::Serialize;

/// At most this many refused sales are kept (the oldest go first).
pub const REFUSED_KEEP: i64 = 10_000;

/// A job's delivery state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
#[derive(Debug, Clone, Serialize)]
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
    pub body: serde_json::Value,
}

/// A sale refused at intake (the pixel's refusals never reach anyone otherwise).
#[derive(Debug, Clone, Serialize)]
pub struct RefusedView {
    pub id: i64,
    /// `pixel` or `browser`.
    pub source: String,
    pub order_id: Option<String>,
    /// `invalid`, `unattributed`, `order_token`, ...
    pub reason: String,
    pub issues: serde_json::Value,
    pub created_at: String,
}

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
#[derive(Debug, Clone, Serialize)]
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
