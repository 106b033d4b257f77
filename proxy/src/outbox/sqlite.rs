//! The SQLite outbox: one file, one process.
//!
//! - **One writer thread owns the connection.** rusqlite is synchronous and SQLite has one writer
//!   anyway; the thread takes commands from a channel. Sale inserts that arrive while it is busy
//!   are committed together in **one transaction per batch (group commit)**: one fsync serves
//!   hundreds of requests, and each request is answered only after the commit that holds its sale
//!   returned, so `202` means "on disk". Every other operation (sender bookkeeping, admin reads)
//!   runs as a closure on the same thread, in order with the inserts.
//! - **WAL mode**, `synchronous=FULL` by default (a commit is fsynced before the answer: the sale
//!   survives a power cut). `synchronous=NORMAL` is offered: in WAL mode a committed transaction
//!   is in the WAL file in the OS page cache, so it survives a crash or `kill -9` of the process
//!   but not a power cut of the machine.
//! - **One process per file**: an exclusive lock on `<db>.lock` (see [`lock_file`]).
//! - **Versioned schema**: `PRAGMA user_version` counts the [`MIGRATIONS`] that have run.

use super::{
    Binding, Enqueued, Erase, Job, JobKind, JobState, JobView, ListFilter, OutboxError,
    RefusedView, RetryOutcome, SaleView, PERSONAL_FIELDS, REFUSED_KEEP,
};
use crate::config::DbSync;
use rusqlite::{params, Connection, OptionalExtension};
use salebeacon::time::format_utc;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Notify};

/// The most closures or inserts taken from the channel in one round.
const CHANNEL_CAPACITY: usize = 8192;

/// The schema, one step per version; `PRAGMA user_version` counts the steps that have run. A
/// database written by a newer proxy (a higher version) is refused at start-up.
const MIGRATIONS: &[&str] = &[
    // 1: jobs.
    "CREATE TABLE IF NOT EXISTS jobs (
        seq             INTEGER PRIMARY KEY AUTOINCREMENT,
        kind            TEXT    NOT NULL CHECK (kind IN ('create', 'update')),
        order_id        TEXT    NOT NULL,
        body            TEXT    NOT NULL,
        state           TEXT    NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'sent', 'failed')),
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL DEFAULT 0,
        last_status     INTEGER,
        last_error      TEXT,
        growi_id        INTEGER,
        created_at      INTEGER NOT NULL,
        sent_at         INTEGER
    );
    CREATE UNIQUE INDEX IF NOT EXISTS jobs_create_order ON jobs (order_id) WHERE kind = 'create';
    CREATE INDEX IF NOT EXISTS jobs_order ON jobs (order_id, seq);
    CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, seq);",
    // 2: which upstream the Growi ids belong to, whether an id is known to be this order's, a note
    // on how a job was settled, and the sales refused at intake.
    "ALTER TABLE jobs ADD COLUMN id_checked INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE jobs ADD COLUMN note TEXT;
    CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS refused (
        seq        INTEGER PRIMARY KEY AUTOINCREMENT,
        source     TEXT    NOT NULL,
        order_id   TEXT,
        reason     TEXT    NOT NULL,
        issues     TEXT    NOT NULL,
        created_at INTEGER NOT NULL
    );",
    // 3: the queue depth as a maintained figure (triggers keep it, whatever changes a job's
    // state), when a sent job was sent (for retention), and when the last upstream request
    // started (the pace holds across restarts).
    "CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
    INSERT INTO counters (name, value) SELECT 'queued', count(*) FROM jobs WHERE state = 'queued';
    CREATE TRIGGER jobs_count_insert AFTER INSERT ON jobs WHEN NEW.state = 'queued'
        BEGIN UPDATE counters SET value = value + 1 WHERE name = 'queued'; END;
    CREATE TRIGGER jobs_count_update AFTER UPDATE OF state ON jobs WHEN OLD.state <> NEW.state
        BEGIN UPDATE counters SET value = value + (NEW.state = 'queued') - (OLD.state = 'queued')
              WHERE name = 'queued'; END;
    CREATE TRIGGER jobs_count_delete AFTER DELETE ON jobs WHEN OLD.state = 'queued'
        BEGIN UPDATE counters SET value = value - 1 WHERE name = 'queued'; END;
    CREATE INDEX jobs_sent_at ON jobs (sent_at) WHERE state = 'sent';
    CREATE TABLE pacer (key TEXT PRIMARY KEY, last_request_at INTEGER NOT NULL);",
];

impl From<rusqlite::Error> for OutboxError {
    fn from(e: rusqlite::Error) -> Self {
        OutboxError::Sqlite(e.to_string())
    }
}

type Op = Box<dyn FnOnce(&mut Connection) + Send>;

enum Cmd {
    Insert {
        order_id: String,
        body: String,
        now: i64,
        reply: oneshot::Sender<Result<Enqueued, OutboxError>>,
    },
    Op(Op),
    Close,
}

/// A handle on the outbox; cheap to clone. The writer thread ends when [`Outbox::close`] is
/// called or every handle is dropped.
#[derive(Clone)]
pub struct Outbox {
    tx: mpsc::Sender<Cmd>,
    changed: Arc<Notify>,
    thread: Arc<std::sync::Mutex<Option<std::thread::JoinHandle<()>>>>,
    checkpointer: Arc<std::sync::Mutex<Option<Checkpointer>>>,
    /// The lock file, held (an exclusive `flock`) while this outbox is open.
    lock: Arc<std::sync::Mutex<Option<std::fs::File>>>,
    /// A read-only connection for the admin API's lists and look-ups (WAL lets it read while the
    /// writer commits), so a slow query never delays intake.
    reader: Arc<std::sync::Mutex<Connection>>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Outbox")
    }
}

impl Outbox {
    /// Opens (creating if needed) the database at `path` and starts the writer thread.
    pub fn open(path: &Path, sync: DbSync, batch_max: usize) -> Result<Outbox, OutboxError> {
        let lock = lock_file(path)?;
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(OutboxError::Sqlite(format!(
                "could not switch to WAL mode (got {mode})"
            )));
        }
        conn.execute_batch(match sync {
            DbSync::Full => "PRAGMA synchronous=FULL;",
            DbSync::Normal => "PRAGMA synchronous=NORMAL;",
        })?;
        migrate(&conn)?;
        let reader = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        reader.busy_timeout(std::time::Duration::from_secs(5))?;
        // Checkpoints run on their own thread and connection (below), never inside a commit.
        conn.execute_batch("PRAGMA wal_autocheckpoint=0;")?;
        let checkpointer = Checkpointer::start(path)?;
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        let changed = Arc::new(Notify::new());
        let notify = changed.clone();
        let batch_max = batch_max.max(1);
        let thread = std::thread::Builder::new()
            .name("salebeacon-outbox".into())
            .spawn(move || writer(conn, rx, notify, batch_max))
            .map_err(|e| OutboxError::Sqlite(format!("cannot start the writer thread: {e}")))?;
        Ok(Outbox {
            tx,
            changed,
            thread: Arc::new(std::sync::Mutex::new(Some(thread))),
            checkpointer: Arc::new(std::sync::Mutex::new(Some(checkpointer))),
            lock: Arc::new(std::sync::Mutex::new(Some(lock))),
            reader: Arc::new(std::sync::Mutex::new(reader)),
        })
    }

    /// Runs a read on the reader connection, on tokio's blocking pool.
    async fn read<T, F>(&self, f: F) -> Result<T, OutboxError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let reader = self.reader.clone();
        tokio::task::spawn_blocking(move || {
            let mut c = reader
                .lock()
                .map_err(|_| OutboxError::Sqlite("the reader connection is poisoned".into()))?;
            f(&mut c).map_err(OutboxError::from)
        })
        .await
        .map_err(|_| OutboxError::Closed)?
    }

    /// Woken whenever new work may be ready for the sender.
    pub fn changed(&self) -> Arc<Notify> {
        self.changed.clone()
    }

    /// Commits a validated sale (its Growi create body as JSON). Returns once it is on disk.
    pub async fn enqueue_sale(
        &self,
        order_id: String,
        body: String,
        now: i64,
    ) -> Result<Enqueued, OutboxError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Cmd::Insert {
                order_id,
                body,
                now,
                reply,
            })
            .await
            .map_err(|_| OutboxError::Closed)?;
        rx.await.map_err(|_| OutboxError::Closed)?
    }

    /// Runs `f` on the writer thread.
    async fn call<T, F>(&self, f: F) -> Result<T, OutboxError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let op: Op = Box::new(move |conn| {
            let _ = reply.send(f(conn).map_err(OutboxError::from));
        });
        self.tx
            .send(Cmd::Op(op))
            .await
            .map_err(|_| OutboxError::Closed)?;
        rx.await.map_err(|_| OutboxError::Closed)?
    }

    /// Jobs waiting to be delivered: the maintained figure (one row), so a health check costs
    /// the same at any backlog.
    pub async fn queue_depth(&self) -> Result<u64, OutboxError> {
        self.call(|c| {
            c.query_row(
                "SELECT value FROM counters WHERE name = 'queued'",
                [],
                |r| r.get::<_, i64>(0),
            )
        })
        .await
        .map(|n| u64::try_from(n).unwrap_or(0))
    }

    /// Deletes up to `batch` jobs sent before `before` (ms), and what else of their order is
    /// settled with them; returns how many went. Small batches, so intake never waits long.
    pub async fn prune_sent(&self, before: i64, batch: u32) -> Result<u64, OutboxError> {
        self.call(move |c| {
            let n = c.execute(
                "DELETE FROM jobs WHERE seq IN (
                     SELECT seq FROM jobs WHERE state = 'sent' AND sent_at < ?1
                       AND NOT EXISTS (SELECT 1 FROM jobs o WHERE o.order_id = jobs.order_id
                                       AND o.state <> 'sent')
                     ORDER BY sent_at LIMIT ?2)",
                params![before, batch],
            )?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
        .await
    }

    /// When the last upstream request for `key` (an upstream fingerprint) started, if known.
    pub async fn last_request(&self, key: String) -> Result<Option<i64>, OutboxError> {
        self.call(move |c| {
            c.query_row(
                "SELECT last_request_at FROM pacer WHERE key = ?1",
                [key],
                |r| r.get(0),
            )
            .optional()
        })
        .await
    }

    /// Records that an upstream request for `key` starts at `at` (ms).
    pub async fn record_request(&self, key: String, at: i64) -> Result<(), OutboxError> {
        self.call(move |c| {
            c.execute(
                "INSERT INTO pacer (key, last_request_at) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET last_request_at = excluded.last_request_at",
                params![key, at],
            )
            .map(|_| ())
        })
        .await
    }

    /// The oldest queued job that can go now or later (an update only once its sale was sent),
    /// regardless of its `next_attempt_at`: a job waiting for its retry keeps its place.
    pub async fn next_job(&self) -> Result<Option<Job>, OutboxError> {
        self.call(|c| {
            c.prepare_cached(
                "SELECT j.seq, j.kind, j.order_id, j.body, j.attempts, j.next_attempt_at, s.growi_id,
                        s.id_checked
                 FROM jobs j
                 LEFT JOIN jobs s ON j.kind = 'update' AND s.kind = 'create' AND s.order_id = j.order_id
                 WHERE j.state = 'queued'
                   AND (j.kind = 'create' OR s.state = 'sent')
                 ORDER BY j.seq LIMIT 1",
            )?
            .query_row([], |r| {
                let kind: String = r.get(1)?;
                Ok(Job {
                    seq: r.get(0)?,
                    kind: if kind == "update" { JobKind::Update } else { JobKind::Create },
                    order_id: r.get(2)?,
                    body: r.get(3)?,
                    attempts: r.get(4)?,
                    next_attempt_at: r.get(5)?,
                    growi_id: r.get(6)?,
                    id_checked: r.get::<_, Option<bool>>(7)?.unwrap_or(false),
                })
            })
            .optional()
        })
        .await
    }

    /// Growi took the job. For a create, `growi_id` is Growi's id of the sale (not yet checked:
    /// only a look-up by `order_id` at the upstream, right before the order's first update, marks
    /// it checked); `note` says how a job was settled when that is not plain (an update found
    /// already in place).
    pub async fn mark_sent(
        &self,
        seq: i64,
        status: u16,
        growi_id: Option<i64>,
        note: Option<String>,
        now: i64,
    ) -> Result<(), OutboxError> {
        let notify = self.changed.clone();
        self.call(move |c| {
            c.execute(
                "UPDATE jobs SET state = 'sent', sent_at = ?2, last_status = ?3, last_error = NULL,
                        attempts = attempts + 1, growi_id = COALESCE(?4, growi_id), note = ?5
                 WHERE seq = ?1",
                params![seq, now, status, growi_id, note],
            )?;
            notify.notify_one();
            Ok(())
        })
        .await
    }

    /// A look-up at the upstream found this order's sale: its id is `growi_id`, checked.
    pub async fn adopt_growi_id(&self, order_id: String, growi_id: i64) -> Result<(), OutboxError> {
        let notify = self.changed.clone();
        self.call(move |c| {
            c.execute(
                "UPDATE jobs SET growi_id = ?2, id_checked = 1 WHERE kind = 'create' AND order_id = ?1",
                params![order_id, growi_id],
            )?;
            notify.notify_one();
            Ok(())
        })
        .await
    }

    /// Ties the outbox to one upstream and key (`fingerprint`, never the key itself). Refuses
    /// another one unless `forget` says to forget the Growi ids it holds.
    pub async fn bind_upstream(
        &self,
        fingerprint: String,
        forget: bool,
    ) -> Result<Binding, OutboxError> {
        self.call(move |c| {
            let tx = c.transaction()?;
            let stored: Option<String> = tx
                .query_row("SELECT value FROM meta WHERE key = 'upstream'", [], |r| {
                    r.get(0)
                })
                .optional()?;
            let ids: i64 = tx.query_row(
                "SELECT count(*) FROM jobs WHERE kind = 'create' AND growi_id IS NOT NULL",
                [],
                |r| r.get(0),
            )?;
            let ids = u64::try_from(ids).unwrap_or(0);
            let binding = match stored {
                Some(s) if s == fingerprint => return Ok(Ok(Binding::Same)),
                Some(s) if !forget => {
                    return Ok(Err(OutboxError::OtherUpstream {
                        stored: s,
                        current: fingerprint,
                    }))
                }
                Some(_) => {
                    tx.execute(
                        "UPDATE jobs SET growi_id = NULL, id_checked = 0 WHERE kind = 'create'",
                        [],
                    )?;
                    Binding::Forgot(ids)
                }
                None if ids > 0 => {
                    tx.execute("UPDATE jobs SET id_checked = 0 WHERE kind = 'create'", [])?;
                    Binding::Unverified(ids)
                }
                None => Binding::New,
            };
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('upstream', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [&fingerprint],
            )?;
            tx.commit()?;
            Ok(Ok(binding))
        })
        .await?
    }

    /// Records a sale refused at intake, keeping the newest [`REFUSED_KEEP`].
    pub async fn record_refused(
        &self,
        source: &'static str,
        order_id: Option<String>,
        reason: &'static str,
        issues: String,
        now: i64,
    ) -> Result<(), OutboxError> {
        self.call(move |c| {
            c.execute(
                "INSERT INTO refused (source, order_id, reason, issues, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![source, order_id, reason, issues, now],
            )?;
            let last = c.last_insert_rowid();
            if last % 100 == 0 {
                c.execute("DELETE FROM refused WHERE seq <= ?1", [last - REFUSED_KEEP])?;
            }
            Ok(())
        })
        .await
    }

    /// The newest refused sales first, at most `limit`.
    pub async fn refused(&self, limit: u32) -> Result<Vec<RefusedView>, OutboxError> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT seq, source, order_id, reason, issues, created_at FROM refused
                 ORDER BY seq DESC LIMIT ?1",
            )?;
            let rows = stmt
                .query_map([limit], |r| {
                    let issues: String = r.get(4)?;
                    Ok(RefusedView {
                        id: r.get(0)?,
                        source: r.get(1)?,
                        order_id: r.get(2)?,
                        reason: r.get(3)?,
                        issues: serde_json::from_str(&issues).unwrap_or(serde_json::Value::Null),
                        created_at: format_utc(r.get(5)?),
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await
    }

    /// The attempt failed in a way worth retrying at `next_attempt_at`.
    pub async fn mark_retry(
        &self,
        seq: i64,
        status: Option<u16>,
        error: String,
        next_attempt_at: i64,
    ) -> Result<(), OutboxError> {
        self.call(move |c| {
            c.execute(
                "UPDATE jobs SET attempts = attempts + 1, next_attempt_at = ?2, last_status = ?3,
                        last_error = ?4
                 WHERE seq = ?1",
                params![seq, next_attempt_at, status, error],
            )?;
            Ok(())
        })
        .await
    }

    /// Records why a job did not go (rate limit, key refused) without counting an attempt.
    pub async fn note(&self, seq: i64, status: u16, error: String) -> Result<(), OutboxError> {
        self.call(move |c| {
            c.execute(
                "UPDATE jobs SET last_status = ?2, last_error = ?3 WHERE seq = ?1",
                params![seq, status, error],
            )?;
            Ok(())
        })
        .await
    }

    /// Growi refused the job for good.
    pub async fn mark_failed(
        &self,
        seq: i64,
        status: u16,
        error: String,
    ) -> Result<(), OutboxError> {
        self.call(move |c| {
            c.execute(
                "UPDATE jobs SET state = 'failed', attempts = attempts + 1, last_status = ?2,
                        last_error = ?3
                 WHERE seq = ?1",
                params![seq, status, error],
            )?;
            Ok(())
        })
        .await
    }

    /// Queues a PATCH body for the sale `order_id`. `None` if the outbox has no such sale.
    pub async fn enqueue_update(
        &self,
        order_id: String,
        body: String,
        now: i64,
    ) -> Result<Option<i64>, OutboxError> {
        let notify = self.changed.clone();
        self.call(move |c| {
            let tx = c.transaction()?;
            let known: Option<i64> = tx
                .query_row(
                    "SELECT seq FROM jobs WHERE kind = 'create' AND order_id = ?1",
                    [&order_id],
                    |r| r.get(0),
                )
                .optional()?;
            if known.is_none() {
                return Ok(None);
            }
            tx.execute(
                "INSERT INTO jobs (kind, order_id, body, created_at) VALUES ('update', ?1, ?2, ?3)",
                params![order_id, body, now],
            )?;
            let seq = tx.last_insert_rowid();
            tx.commit()?;
            notify.notify_one();
            Ok(Some(seq))
        })
        .await
    }

    /// Puts a sale's failed create and failed updates back in the queue, keeping their place.
    pub async fn retry_failed(&self, order_id: String) -> Result<RetryOutcome, OutboxError> {
        let notify = self.changed.clone();
        self.call(move |c| {
            let tx = c.transaction()?;
            let state: Option<String> = tx
                .query_row(
                    "SELECT state FROM jobs WHERE kind = 'create' AND order_id = ?1",
                    [&order_id],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(state) = state else {
                return Ok(RetryOutcome::NotFound);
            };
            let n = tx.execute(
                "UPDATE jobs SET state = 'queued', attempts = 0, next_attempt_at = 0
                 WHERE order_id = ?1 AND state = 'failed'",
                [&order_id],
            )?;
            tx.commit()?;
            if n == 0 {
                let s = JobState::parse(&state).unwrap_or(JobState::Queued);
                return Ok(RetryOutcome::NothingFailed(s));
            }
            notify.notify_one();
            Ok(RetryOutcome::Requeued(n))
        })
        .await
    }

    /// A sale with its updates, by `order_id`.
    pub async fn get(&self, order_id: String) -> Result<Option<SaleView>, OutboxError> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM jobs WHERE order_id = ?1 ORDER BY seq"
            ))?;
            let rows = stmt
                .query_map([&order_id], view_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut sale = None;
            let mut updates = Vec::new();
            for v in rows {
                match v.kind {
                    JobKind::Create => sale = Some(v),
                    JobKind::Update => updates.push(v),
                }
            }
            Ok(sale.map(|sale| SaleView { sale, updates }))
        })
        .await
    }

    /// Jobs in `state` (any state if `None`), oldest first, at most `limit`.
    /// Jobs matching `filter`. Read on a connection of its own: a filter that scans many rows
    /// never holds up intake on the writer thread.
    pub async fn list(&self, f: ListFilter) -> Result<Vec<JobView>, OutboxError> {
        self.read(move |c| {
            let order = if f.newest_first { "DESC" } else { "ASC" };
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM jobs
                 WHERE (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR kind = ?2)
                   AND (?3 IS NULL OR instr(lower(order_id), lower(?3)) > 0)
                   AND (?4 IS NULL OR json_extract(body, '$.campaign_affiliate_id') = ?4)
                   AND (?5 IS NULL OR created_at >= ?5) AND (?6 IS NULL OR created_at < ?6)
                 ORDER BY seq {order} LIMIT ?7"
            ))?;
            let rows = stmt
                .query_map(
                    params![
                        f.state.map(JobState::as_str),
                        f.kind.map(JobKind::as_str),
                        f.order_id,
                        f.affiliate,
                        f.since_ms,
                        f.until_ms,
                        f.limit
                    ],
                    view_from_row,
                )?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await
    }

    pub async fn count(&self, state: JobState) -> Result<u64, OutboxError> {
        self.read(move |c| {
            c.query_row(
                "SELECT count(*) FROM jobs WHERE state = ?1",
                [state.as_str()],
                |r| r.get::<_, i64>(0),
            )
        })
        .await
        .map(|n| u64::try_from(n).unwrap_or(0))
    }

    pub async fn erase(&self, who: Erase) -> Result<u64, OutboxError> {
        let paths: Vec<String> = PERSONAL_FIELDS.iter().map(|f| format!("'$.{f}'")).collect();
        let paths = paths.join(", ");
        self.call(move |c| {
            let (order_id, email) = match &who {
                Erase::OrderId(o) => (Some(o.clone()), None),
                Erase::Email(e) => (None, Some(e.trim().to_lowercase())),
            };
            let tx = c.transaction()?;
            let orders: Vec<String> = {
                let mut stmt = tx.prepare(
                    "SELECT order_id FROM jobs WHERE kind = 'create'
                       AND (order_id = ?1
                            OR lower(json_extract(body, '$.customer_email')) = ?2)",
                )?;
                let rows = stmt
                    .query_map(params![order_id, email], |r| r.get(0))?
                    .collect::<rusqlite::Result<Vec<String>>>()?;
                rows
            };
            for o in &orders {
                tx.execute(
                    &format!(
                        "UPDATE jobs SET body = json_remove(body, {paths}) WHERE order_id = ?1"
                    ),
                    [o],
                )?;
            }
            tx.execute(
                "DELETE FROM refused WHERE order_id = ?1
                    OR (?2 IS NOT NULL AND instr(lower(issues), ?2) > 0)",
                params![order_id, email],
            )?;
            tx.commit()?;
            Ok(u64::try_from(orders.len()).unwrap_or(0))
        })
        .await
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), OutboxError> {
        self.call(|c| c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0)))
            .await
            .map(|_| ())
    }

    /// Finishes every command already sent, then stops the writer thread and waits for it.
    pub async fn close(&self) {
        let _ = self.tx.send(Cmd::Close).await;
        let handle = self.thread.lock().ok().and_then(|mut g| g.take());
        if let Some(h) = handle {
            let _ = tokio::task::spawn_blocking(move || h.join()).await;
        }
        let checkpointer = self.checkpointer.lock().ok().and_then(|mut g| g.take());
        if let Some(c) = checkpointer {
            let _ = tokio::task::spawn_blocking(move || c.stop()).await;
        }
        // Dropping the file releases the lock: another proxy may open the outbox now.
        drop(self.lock.lock().ok().and_then(|mut g| g.take()));
    }

    /// The reconciliation record in `meta` (see [`super::Outbox::reconcile_record`]).
    pub async fn reconcile_record(&self) -> Result<Option<String>, OutboxError> {
        self.call(|c| {
            c.query_row("SELECT value FROM meta WHERE key = 'reconcile'", [], |r| {
                r.get(0)
            })
            .optional()
        })
        .await
    }

    /// Replaces the reconciliation record in `meta`.
    pub async fn set_reconcile_record(&self, json: String) -> Result<(), OutboxError> {
        self.call(move |c| {
            c.execute(
                "INSERT INTO meta (key, value) VALUES ('reconcile', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [json],
            )
            .map(|_| ())
        })
        .await
    }
}

/// Brings the schema up to date, one migration per transaction.
fn migrate(conn: &Connection) -> Result<(), OutboxError> {
    let known = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > known {
        return Err(OutboxError::NewerSchema { found, known });
    }
    for (i, step) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(found).unwrap_or(0))
    {
        let version = i + 1;
        conn.execute_batch(&format!(
            "BEGIN IMMEDIATE; {step}; PRAGMA user_version = {version}; COMMIT;"
        ))?;
        tracing::info!(version, "outbox schema migrated");
    }
    Ok(())
}

/// Takes the exclusive lock on `<db>.lock` next to the database, or says who holds it. The
/// operating system releases it when the process ends, however it ends (`kill -9` included), so
/// a crashed proxy never blocks its successor.
fn lock_file(db: &Path) -> Result<std::fs::File, OutboxError> {
    let mut name = db.as_os_str().to_owned();
    name.push(".lock");
    let path = std::path::PathBuf::from(name);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| OutboxError::Sqlite(format!("cannot open {}: {e}", path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(OutboxError::InUse {
            lock: path.display().to_string(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(OutboxError::Sqlite(format!(
            "cannot lock {}: {e}",
            path.display()
        ))),
    }
}

/// Copies the WAL into the database file in the background (`PRAGMA wal_checkpoint(PASSIVE)`
/// every 250 ms on its own connection). SQLite's automatic checkpoint would run inside whichever
/// commit crosses the threshold and stall every request waiting on that batch; a passive
/// checkpoint on another connection runs beside the writer instead.
/// Dropping it (when the last outbox handle goes) also stops the thread, without waiting.
struct Checkpointer {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Checkpointer {
    fn start(path: &Path) -> Result<Checkpointer, OutboxError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("salebeacon-checkpoint".into())
            .spawn(move || {
                let checkpoint = |mode: &str| {
                    let sql = format!("PRAGMA wal_checkpoint({mode})");
                    if let Err(e) = conn.query_row(&sql, [], |_| Ok(())) {
                        tracing::warn!(error = %e, "WAL checkpoint failed");
                    }
                };
                while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::sleep(std::time::Duration::from_millis(250));
                    checkpoint("PASSIVE");
                }
                checkpoint("TRUNCATE");
            })
            .map_err(|e| OutboxError::Sqlite(format!("cannot start the checkpoint thread: {e}")))?;
        Ok(Checkpointer {
            stop,
            thread: Some(thread),
        })
    }

    fn stop(mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

const COLUMNS: &str = "seq, kind, order_id, state, attempts, next_attempt_at, last_status, \
                       last_error, growi_id, created_at, sent_at, body, note";

fn view_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<JobView> {
    let kind: String = r.get(1)?;
    let state: String = r.get(3)?;
    let state = JobState::parse(&state).unwrap_or(JobState::Queued);
    let next: i64 = r.get(5)?;
    let body: String = r.get(11)?;
    Ok(JobView {
        id: r.get(0)?,
        kind: if kind == "update" {
            JobKind::Update
        } else {
            JobKind::Create
        },
        order_id: r.get(2)?,
        state,
        attempts: r.get(4)?,
        next_attempt_at: (state == JobState::Queued && next > 0).then(|| format_utc(next)),
        last_status: r.get(6)?,
        last_error: r.get(7)?,
        growi_id: r.get(8)?,
        created_at: format_utc(r.get(9)?),
        sent_at: r.get::<_, Option<i64>>(10)?.map(format_utc),
        note: r.get(12)?,
        body: serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)),
    })
}

/// The writer thread: group-commits inserts, runs other operations in arrival order.
fn writer(
    mut conn: Connection,
    mut rx: mpsc::Receiver<Cmd>,
    changed: Arc<Notify>,
    batch_max: usize,
) {
    let mut inserts = Vec::with_capacity(batch_max);
    let mut ops: Vec<Op> = Vec::new();
    let mut closing = false;
    while let Some(first) = rx.blocking_recv() {
        let mut pending = Some(first);
        while let Some(cmd) = pending.take().or_else(|| {
            (inserts.len() < batch_max && ops.len() < batch_max)
                .then(|| rx.try_recv().ok())
                .flatten()
        }) {
            match cmd {
                Cmd::Insert {
                    order_id,
                    body,
                    now,
                    reply,
                } => inserts.push((order_id, body, now, reply)),
                Cmd::Op(op) => ops.push(op),
                Cmd::Close => {
                    closing = true;
                    break;
                }
            }
        }
        if !inserts.is_empty() {
            commit_inserts(&mut conn, &mut inserts, &changed);
        }
        for op in ops.drain(..) {
            let run = std::panic::AssertUnwindSafe(|| op(&mut conn));
            if std::panic::catch_unwind(run).is_err() {
                tracing::error!("an outbox operation panicked");
            }
        }
        if closing {
            return;
        }
    }
}

type Insert = (
    String,
    String,
    i64,
    oneshot::Sender<Result<Enqueued, OutboxError>>,
);

fn commit_inserts(conn: &mut Connection, inserts: &mut Vec<Insert>, changed: &Notify) {
    let result = (|| -> rusqlite::Result<Vec<Enqueued>> {
        let tx = conn.transaction()?;
        let mut outcomes = Vec::with_capacity(inserts.len());
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO jobs (kind, order_id, body, created_at) VALUES ('create', ?1, ?2, ?3)
                 ON CONFLICT DO NOTHING",
            )?;
            for (order_id, body, now, _) in inserts.iter() {
                let n = stmt.execute(params![order_id, body, now])?;
                outcomes.push(if n == 1 {
                    Enqueued::Queued
                } else {
                    Enqueued::Duplicate
                });
            }
        }
        tx.commit()?;
        Ok(outcomes)
    })();
    match result {
        Ok(outcomes) => {
            if outcomes.contains(&Enqueued::Queued) {
                changed.notify_one();
            }
            for ((_, _, _, reply), outcome) in inserts.drain(..).zip(outcomes) {
                let _ = reply.send(Ok(outcome));
            }
        }
        Err(e) => {
            tracing::error!(error = %e, batch = inserts.len(), "outbox commit failed");
            let err = OutboxError::from(e);
            for (_, _, _, reply) in inserts.drain(..) {
                let _ = reply.send(Err(err.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn duplicates_in_one_batch_and_update_ordering() {
        let dir = tempfile::tempdir().unwrap();
        let ob = Outbox::open(&dir.path().join("t.db"), DbSync::Normal, 64).unwrap();
        // Concurrent inserts of the same order: exactly one is queued, whatever the batching.
        let tries: Vec<_> = (0..20)
            .map(|i| {
                let ob = ob.clone();
                tokio::spawn(async move {
                    ob.enqueue_sale(format!("O-{}", i % 5), "{}".into(), 1)
                        .await
                })
            })
            .collect();
        let mut queued = 0;
        for t in tries {
            if t.await.unwrap().unwrap() == Enqueued::Queued {
                queued += 1;
            }
        }
        assert_eq!(queued, 5);
        assert_eq!(ob.queue_depth().await.unwrap(), 5);

        // An update waits for its create's Growi id; it then comes before younger creates.
        let first = ob.next_job().await.unwrap().unwrap();
        assert_eq!(first.kind, JobKind::Create);
        let upd = ob
            .enqueue_update(first.order_id.clone(), "{\"status\":\"paid\"}".into(), 2)
            .await
            .unwrap();
        assert!(upd.is_some());
        assert_eq!(
            ob.enqueue_update("NOPE".into(), "{}".into(), 2)
                .await
                .unwrap(),
            None
        );
        assert_eq!(ob.next_job().await.unwrap().unwrap().seq, first.seq);
        ob.mark_sent(first.seq, 201, Some(77), None, 3)
            .await
            .unwrap();
        let next = ob.next_job().await.unwrap().unwrap();
        assert_eq!(
            next.kind,
            JobKind::Create,
            "the update is younger than the other creates"
        );
        for _ in 0..4 {
            let j = ob.next_job().await.unwrap().unwrap();
            assert_eq!(j.kind, JobKind::Create);
            ob.mark_failed(j.seq, 422, "no".into()).await.unwrap();
        }
        let u = ob.next_job().await.unwrap().unwrap();
        assert_eq!((u.kind, u.growi_id), (JobKind::Update, Some(77)));
        let failed = super::super::ListFilter {
            state: Some(JobState::Failed),
            limit: 10,
            ..Default::default()
        };
        assert_eq!(ob.list(failed).await.unwrap().len(), 4);
        assert_eq!(ob.count(JobState::Failed).await.unwrap(), 4);
        ob.close().await;
        assert!(ob.queue_depth().await.is_err());
    }

    #[tokio::test]
    async fn migrates_a_first_version_outbox_and_refuses_a_newer_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            // An outbox as the first release wrote it: schema 1 without a version, a sent sale
            // with a Growi id.
            let c = Connection::open(&path).unwrap();
            c.execute_batch(MIGRATIONS[0]).unwrap();
            c.execute(
                "INSERT INTO jobs (kind, order_id, body, state, growi_id, created_at)
                 VALUES ('create', 'OLD', '{}', 'sent', 1947457, 1)",
                [],
            )
            .unwrap();
        }
        let ob = Outbox::open(&path, DbSync::Normal, 8).unwrap();
        assert_eq!(
            ob.bind_upstream("aaaa".into(), false).await.unwrap(),
            Binding::Unverified(1),
            "ids of unknown origin are looked up before their first update"
        );
        assert_eq!(
            ob.bind_upstream("aaaa".into(), false).await.unwrap(),
            Binding::Same
        );
        assert!(matches!(
            ob.bind_upstream("bbbb".into(), false).await,
            Err(OutboxError::OtherUpstream { .. })
        ));
        assert_eq!(
            ob.bind_upstream("bbbb".into(), true).await.unwrap(),
            Binding::Forgot(1)
        );
        ob.close().await;
        {
            let c = Connection::open(&path).unwrap();
            let v: i64 = c
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .unwrap();
            assert_eq!(v, MIGRATIONS.len() as i64);
            c.execute_batch("PRAGMA user_version = 99").unwrap();
        }
        let Err(err) = Outbox::open(&path, DbSync::Normal, 8) else {
            panic!("a newer schema must be refused");
        };
        assert!(err.to_string().contains("schema version 99"), "{err}");
    }

    #[tokio::test]
    async fn one_process_at_a_time_per_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let first = Outbox::open(&path, DbSync::Normal, 64).unwrap();
        let second = Outbox::open(&path, DbSync::Normal, 64);
        let Err(err) = second else {
            panic!("a second outbox on the same file must not open")
        };
        assert!(matches!(err, OutboxError::InUse { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("t.db.lock") && text.contains("postgres://"),
            "{text}"
        );
        first.close().await;
        let again = Outbox::open(&path, DbSync::Normal, 64).unwrap();
        again.close().await;
    }
}
