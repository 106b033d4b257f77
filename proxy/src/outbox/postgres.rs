//! The PostgreSQL outbox: one queue that several proxy instances share.
//!
//! The same jobs, states and rules as the SQLite outbox (`sqlite.rs`), in PostgreSQL's terms:
//! - **Group commit.** Each instance has one writer task; sale inserts that arrive while it is
//!   busy go together in one statement (`INSERT ... SELECT FROM unnest(...) ON CONFLICT DO
//!   NOTHING RETURNING order_id`), one commit (one WAL flush) for the whole batch, and each request
//!   is answered after that commit. A duplicate is the conflict on the unique index, whichever
//!   instance holds the first sale.
//! - **One sender per key, across instances** ([`Outbox::leadership`]): a session advisory lock
//!   on the upstream fingerprint, held on a dedicated connection. PostgreSQL releases it when that
//!   connection ends, however the instance ends (SIGKILL included: the socket closes), so another
//!   instance takes over within its next try (every second). We chose an advisory lock over a
//!   lease row because it needs no clock and no expiry to tune: the database knows at once that
//!   its holder is gone. The pace survives the handover through the `pacer` row (when the last
//!   request started), which the new sender reads before its first request.
//! - **A maintained queue depth**: statement-level triggers add what each statement changes to
//!   one of 16 counter rows (chosen at random, so concurrent commits rarely wait on the same row);
//!   the depth is their sum, one cheap query at any backlog. The same triggers `NOTIFY` the leader
//!   when new work is queued, so an insert on another instance wakes it at once.
//! - **Versioned migrations** run at start-up under a transaction-scoped advisory lock (two
//!   instances starting together migrate once); a database of a newer schema is refused.
//! - **Connection loss** is an [`OutboxError::Database`]: intake answers 503 (the browser outbox
//!   retries), `/healthz` says why, and the pool reconnects by itself when the database is back.

use super::{
    Binding, Enqueued, Erase, Job, JobKind, JobState, JobView, ListFilter, OutboxError,
    RefusedView, RetryOutcome, SaleView, PERSONAL_FIELDS, REFUSED_KEEP,
};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use futures_util::StreamExt;
use salebeacon::time::format_utc;
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio_postgres::{AsyncMessage, NoTls};

/// The migrations, one per schema version.
const MIGRATIONS: &[&str] = &[
    // 1: everything the SQLite outbox has at its version 3.
    "CREATE TABLE jobs (
        seq             BIGSERIAL PRIMARY KEY,
        kind            TEXT    NOT NULL CHECK (kind IN ('create', 'update')),
        order_id        TEXT    NOT NULL,
        body            TEXT    NOT NULL,
        state           TEXT    NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'sent', 'failed')),
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at BIGINT  NOT NULL DEFAULT 0,
        last_status     INTEGER,
        last_error      TEXT,
        growi_id        BIGINT,
        created_at      BIGINT  NOT NULL,
        sent_at         BIGINT,
        id_checked      BOOLEAN NOT NULL DEFAULT false,
        note            TEXT
    );
    CREATE UNIQUE INDEX jobs_create_order ON jobs (order_id) WHERE kind = 'create';
    CREATE INDEX jobs_order ON jobs (order_id, seq);
    CREATE INDEX jobs_queued ON jobs (seq) WHERE state = 'queued';
    CREATE INDEX jobs_state ON jobs (state, seq);
    CREATE INDEX jobs_sent_at ON jobs (sent_at) WHERE state = 'sent';
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE refused (
        seq        BIGSERIAL PRIMARY KEY,
        source     TEXT   NOT NULL,
        order_id   TEXT,
        reason     TEXT   NOT NULL,
        issues     TEXT   NOT NULL,
        created_at BIGINT NOT NULL
    );
    CREATE TABLE counters (
        name  TEXT    NOT NULL,
        shard INTEGER NOT NULL,
        value BIGINT  NOT NULL,
        PRIMARY KEY (name, shard)
    );
    INSERT INTO counters SELECT 'queued', s, 0 FROM generate_series(0, 15) s;
    CREATE TABLE pacer (key TEXT PRIMARY KEY, last_request_at BIGINT NOT NULL);
    CREATE FUNCTION salebeacon_count_queued() RETURNS trigger LANGUAGE plpgsql AS $$
    -- One shard per statement, drawn once (random() in the WHERE clause would be drawn per row).
    DECLARE delta BIGINT := 0; n BIGINT; s INTEGER := floor(random() * 16)::int;
    BEGIN
        IF TG_OP IN ('INSERT', 'UPDATE') THEN
            SELECT count(*) INTO n FROM new_rows WHERE state = 'queued';
            delta := delta + n;
        END IF;
        IF TG_OP IN ('DELETE', 'UPDATE') THEN
            SELECT count(*) INTO n FROM old_rows WHERE state = 'queued';
            delta := delta - n;
        END IF;
        IF delta <> 0 THEN
            UPDATE counters SET value = value + delta
             WHERE name = 'queued' AND shard = s;
        END IF;
        IF delta > 0 THEN
            PERFORM pg_notify('salebeacon_jobs', '');
        END IF;
        RETURN NULL;
    END $$;
    CREATE TRIGGER jobs_count_insert AFTER INSERT ON jobs REFERENCING NEW TABLE AS new_rows
        FOR EACH STATEMENT EXECUTE FUNCTION salebeacon_count_queued();
    CREATE TRIGGER jobs_count_update AFTER UPDATE ON jobs
        REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
        FOR EACH STATEMENT EXECUTE FUNCTION salebeacon_count_queued();
    CREATE TRIGGER jobs_count_delete AFTER DELETE ON jobs REFERENCING OLD TABLE AS old_rows
        FOR EACH STATEMENT EXECUTE FUNCTION salebeacon_count_queued();",
];

/// The advisory lock key that serialises migrations between instances.
const MIGRATION_LOCK: i64 = 0x5a1e_bea0_0000_0001;

impl From<tokio_postgres::Error> for OutboxError {
    fn from(e: tokio_postgres::Error) -> Self {
        OutboxError::Database(describe(&e))
    }
}

impl From<deadpool_postgres::PoolError> for OutboxError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(e) => OutboxError::from(e),
            other => OutboxError::Database(format!("no database connection: {other}")),
        }
    }
}

/// The driver's error with its cause (the server's message, or the socket's), never the URL.
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => match std::error::Error::source(e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    }
}

struct Insert {
    order_id: String,
    body: String,
    now: i64,
    reply: oneshot::Sender<Result<Enqueued, OutboxError>>,
}

/// A handle on the PostgreSQL outbox; cheap to clone.
#[derive(Clone)]
pub struct Outbox {
    pool: Pool,
    config: Arc<tokio_postgres::Config>,
    inserts: mpsc::Sender<Insert>,
    changed: Arc<Notify>,
    writer: Arc<std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PostgresOutbox")
    }
}

/// One connection of our own (not pooled): the leader's lock and the notifications it listens to.
async fn connect(
    config: &tokio_postgres::Config,
    notify: Option<Arc<Notify>>,
) -> Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>), OutboxError> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let task = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(_)) => {
                    if let Some(n) = &notify {
                        n.notify_one();
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %describe(&e), "a database connection ended");
                    break;
                }
            }
        }
    });
    Ok((client, task))
}

impl Outbox {
    /// Connects (the URL's password never reaches a message), migrates the schema, and starts the
    /// writer task.
    pub async fn open(url: &str, batch_max: usize) -> Result<Outbox, OutboxError> {
        let config: tokio_postgres::Config = url.parse().map_err(|e: tokio_postgres::Error| {
            OutboxError::Database(format!("not a usable PostgreSQL URL ({})", describe(&e)))
        })?;
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(16)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(std::time::Duration::from_secs(5)))
            .create_timeout(Some(std::time::Duration::from_secs(5)))
            .build()
            .map_err(|e| OutboxError::Database(format!("cannot make a connection pool: {e}")))?;
        migrate(&pool).await?;
        let changed = Arc::new(Notify::new());
        let (inserts, rx) = mpsc::channel(8192);
        let writer = tokio::spawn(writer(pool.clone(), rx, batch_max.max(1)));
        Ok(Outbox {
            pool,
            config: Arc::new(config),
            inserts,
            changed,
            writer: Arc::new(std::sync::Mutex::new(Some(writer))),
        })
    }

    /// Woken when new work may be ready for the sender (on this instance; the leader also
    /// listens to the database's notifications, see [`Outbox::leadership`]).
    pub fn changed(&self) -> Arc<Notify> {
        self.changed.clone()
    }

    /// Commits a validated sale; returns once the batch holding it is committed.
    pub async fn enqueue_sale(
        &self,
        order_id: String,
        body: String,
        now: i64,
    ) -> Result<Enqueued, OutboxError> {
        let (reply, rx) = oneshot::channel();
        self.inserts
            .send(Insert {
                order_id,
                body,
                now,
                reply,
            })
            .await
            .map_err(|_| OutboxError::Closed)?;
        let outcome = rx.await.map_err(|_| OutboxError::Closed)??;
        if outcome == Enqueued::Queued {
            self.changed.notify_one();
        }
        Ok(outcome)
    }

    pub async fn queue_depth(&self) -> Result<u64, OutboxError> {
        let c = self.pool.get().await?;
        let row = c
            .query_one(
                "SELECT coalesce(sum(value), 0)::bigint FROM counters WHERE name = 'queued'",
                &[],
            )
            .await?;
        Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
    }

    pub async fn next_job(&self) -> Result<Option<Job>, OutboxError> {
        let c = self.pool.get().await?;
        let row = c
            .query_opt(
                "SELECT j.seq, j.kind, j.order_id, j.body, j.attempts, j.next_attempt_at, s.growi_id,
                        s.id_checked
                 FROM jobs j
                 LEFT JOIN jobs s ON j.kind = 'update' AND s.kind = 'create' AND s.order_id = j.order_id
                 WHERE j.state = 'queued' AND (j.kind = 'create' OR s.state = 'sent')
                 ORDER BY j.seq LIMIT 1",
                &[],
            )
            .await?;
        Ok(row.map(|r| {
            let kind: String = r.get(1);
            Job {
                seq: r.get(0),
                kind: if kind == "update" {
                    JobKind::Update
                } else {
                    JobKind::Create
                },
                order_id: r.get(2),
                body: r.get(3),
                attempts: u32::try_from(r.get::<_, i32>(4)).unwrap_or(0),
                next_attempt_at: r.get(5),
                growi_id: r.get(6),
                id_checked: r.get::<_, Option<bool>>(7).unwrap_or(false),
            }
        }))
    }

    pub async fn mark_sent(
        &self,
        seq: i64,
        status: u16,
        growi_id: Option<i64>,
        note: Option<String>,
        now: i64,
    ) -> Result<(), OutboxError> {
        let c = self.pool.get().await?;
        c.execute(
            "UPDATE jobs SET state = 'sent', sent_at = $2, last_status = $3, last_error = NULL,
                    attempts = attempts + 1, growi_id = COALESCE($4, growi_id), note = $5
             WHERE seq = $1",
            &[&seq, &now, &i32::from(status), &growi_id, &note],
        )
        .await?;
        self.changed.notify_one();
        Ok(())
    }

    pub async fn adopt_growi_id(&self, order_id: String, growi_id: i64) -> Result<(), OutboxError> {
        let c = self.pool.get().await?;
        c.execute(
            "UPDATE jobs SET growi_id = $2, id_checked = true WHERE kind = 'create' AND order_id = $1",
            &[&order_id, &growi_id],
        )
        .await?;
        self.changed.notify_one();
        Ok(())
    }

    pub async fn bind_upstream(
        &self,
        fingerprint: String,
        forget: bool,
    ) -> Result<Binding, OutboxError> {
        let mut c = self.pool.get().await?;
        let tx = c.transaction().await?;
        tx.execute("LOCK TABLE meta IN EXCLUSIVE MODE", &[]).await?;
        let stored: Option<String> = tx
            .query_opt("SELECT value FROM meta WHERE key = 'upstream'", &[])
            .await?
            .map(|r| r.get(0));
        let ids: i64 = tx
            .query_one(
                "SELECT count(*) FROM jobs WHERE kind = 'create' AND growi_id IS NOT NULL",
                &[],
            )
            .await?
            .get(0);
        let ids = u64::try_from(ids).unwrap_or(0);
        let binding = match stored {
            Some(s) if s == fingerprint => return Ok(Binding::Same),
            Some(s) if !forget => {
                return Err(OutboxError::OtherUpstream {
                    stored: s,
                    current: fingerprint,
                })
            }
            Some(_) => {
                tx.execute(
                    "UPDATE jobs SET growi_id = NULL, id_checked = false WHERE kind = 'create'",
                    &[],
                )
                .await?;
                Binding::Forgot(ids)
            }
            None if ids > 0 => {
                tx.execute(
                    "UPDATE jobs SET id_checked = false WHERE kind = 'create'",
                    &[],
                )
                .await?;
                Binding::Unverified(ids)
            }
            None => Binding::New,
        };
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('upstream', $1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[&fingerprint],
        )
        .await?;
        tx.commit().await?;
        Ok(binding)
    }

    pub async fn record_refused(
        &self,
        source: &'static str,
        order_id: Option<String>,
        reason: &'static str,
        issues: String,
        now: i64,
    ) -> Result<(), OutboxError> {
        let c = self.pool.get().await?;
        let seq: i64 = c
            .query_one(
                "INSERT INTO refused (source, order_id, reason, issues, created_at)
                 VALUES ($1, $2, $3, $4, $5) RETURNING seq",
                &[&source, &order_id, &reason, &issues, &now],
            )
            .await?
            .get(0);
        if seq % 100 == 0 {
            c.execute(
                "DELETE FROM refused WHERE seq <= $1",
                &[&(seq - REFUSED_KEEP)],
            )
            .await?;
        }
        Ok(())
    }

    pub async fn refused(&self, limit: u32) -> Result<Vec<RefusedView>, OutboxError> {
        let c = self.pool.get().await?;
        let rows = c
            .query(
                "SELECT seq, source, order_id, reason, issues, created_at FROM refused
                 ORDER BY seq DESC LIMIT $1",
                &[&i64::from(limit)],
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let issues: String = r.get(4);
                RefusedView {
                    id: r.get(0),
                    source: r.get(1),
                    order_id: r.get(2),
                    reason: r.get(3),
                    issues: serde_json::from_str(&issues).unwrap_or(serde_json::Value::Null),
                    created_at: format_utc(r.get(5)),
                }
            })
            .collect())
    }

    pub async fn mark_retry(
        &self,
        seq: i64,
        status: Option<u16>,
        error: String,
        next_attempt_at: i64,
    ) -> Result<(), OutboxError> {
        let c = self.pool.get().await?;
        c.execute(
            "UPDATE jobs SET attempts = attempts + 1, next_attempt_at = $2, last_status = $3,
                    last_error = $4
             WHERE seq = $1",
            &[&seq, &next_attempt_at, &status.map(i32::from), &error],
        )
        .await?;
        Ok(())
    }

    pub async fn note(&self, seq: i64, status: u16, error: String) -> Result<(), OutboxError> {
        let c = self.pool.get().await?;
        c.execute(
            "UPDATE jobs SET last_status = $2, last_error = $3 WHERE seq = $1",
            &[&seq, &i32::from(status), &error],
        )
        .await?;
        Ok(())
    }

    pub async fn mark_failed(
        &self,
        seq: i64,
        status: u16,
        error: String,
    ) -> Result<(), OutboxError> {
        let c = self.pool.get().await?;
        c.execute(
            "UPDATE jobs SET state = 'failed', attempts = attempts + 1, last_status = $2,
                    last_error = $3
             WHERE seq = $1",
            &[&seq, &i32::from(status), &error],
        )
        .await?;
        Ok(())
    }

    pub async fn enqueue_update(
        &self,
        order_id: String,
        body: String,
        now: i64,
    ) -> Result<Option<i64>, OutboxError> {
        let c = self.pool.get().await?;
        // One statement: the update is queued only if its sale is known.
        let row = c
            .query_opt(
                "INSERT INTO jobs (kind, order_id, body, created_at)
                 SELECT 'update', $1, $2, $3
                 WHERE EXISTS (SELECT 1 FROM jobs WHERE kind = 'create' AND order_id = $1)
                 RETURNING seq",
                &[&order_id, &body, &now],
            )
            .await?;
        self.changed.notify_one();
        Ok(row.map(|r| r.get(0)))
    }

    pub async fn retry_failed(&self, order_id: String) -> Result<RetryOutcome, OutboxError> {
        let mut c = self.pool.get().await?;
        let tx = c.transaction().await?;
        let state: Option<String> = tx
            .query_opt(
                "SELECT state FROM jobs WHERE kind = 'create' AND order_id = $1",
                &[&order_id],
            )
            .await?
            .map(|r| r.get(0));
        let Some(state) = state else {
            return Ok(RetryOutcome::NotFound);
        };
        let n = tx
            .execute(
                "UPDATE jobs SET state = 'queued', attempts = 0, next_attempt_at = 0
                 WHERE order_id = $1 AND state = 'failed'",
                &[&order_id],
            )
            .await?;
        tx.commit().await?;
        if n == 0 {
            return Ok(RetryOutcome::NothingFailed(
                JobState::parse(&state).unwrap_or(JobState::Queued),
            ));
        }
        self.changed.notify_one();
        Ok(RetryOutcome::Requeued(usize::try_from(n).unwrap_or(0)))
    }

    pub async fn get(&self, order_id: String) -> Result<Option<SaleView>, OutboxError> {
        let c = self.pool.get().await?;
        let rows = c
            .query(
                &format!("SELECT {COLUMNS} FROM jobs WHERE order_id = $1 ORDER BY seq"),
                &[&order_id],
            )
            .await?;
        let mut sale = None;
        let mut updates = Vec::new();
        for v in rows.iter().map(view_from_row) {
            match v.kind {
                JobKind::Create => sale = Some(v),
                JobKind::Update => updates.push(v),
            }
        }
        Ok(sale.map(|sale| SaleView { sale, updates }))
    }

    pub async fn list(&self, f: ListFilter) -> Result<Vec<JobView>, OutboxError> {
        let c = self.pool.get().await?;
        let order = if f.newest_first { "DESC" } else { "ASC" };
        let rows = c
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM jobs
                     WHERE ($1::text IS NULL OR state = $1) AND ($2::text IS NULL OR kind = $2)
                       AND ($3::text IS NULL OR strpos(lower(order_id), lower($3)) > 0)
                       AND ($4::text IS NULL OR (body::jsonb) ->> 'campaign_affiliate_id' = $4)
                       AND ($5::bigint IS NULL OR created_at >= $5)
                       AND ($6::bigint IS NULL OR created_at < $6)
                     ORDER BY seq {order} LIMIT $7"
                ),
                &[
                    &f.state.map(JobState::as_str),
                    &f.kind.map(JobKind::as_str),
                    &f.order_id,
                    &f.affiliate,
                    &f.since_ms,
                    &f.until_ms,
                    &i64::from(f.limit),
                ],
            )
            .await?;
        Ok(rows.iter().map(view_from_row).collect())
    }

    pub async fn count(&self, state: JobState) -> Result<u64, OutboxError> {
        let c = self.pool.get().await?;
        let row = c
            .query_one(
                "SELECT count(*) FROM jobs WHERE state = $1",
                &[&state.as_str()],
            )
            .await?;
        Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
    }

    pub async fn erase(&self, who: Erase) -> Result<u64, OutboxError> {
        let (order_id, email) = match &who {
            Erase::OrderId(o) => (Some(o.clone()), None),
            Erase::Email(e) => (None, Some(e.trim().to_lowercase())),
        };
        let removed: Vec<String> = PERSONAL_FIELDS.iter().map(|f| format!("- '{f}'")).collect();
        let removed = removed.join(" ");
        let mut c = self.pool.get().await?;
        let tx = c.transaction().await?;
        let orders = tx
            .query(
                "SELECT order_id FROM jobs WHERE kind = 'create'
                   AND (order_id = $1 OR lower((body::jsonb) ->> 'customer_email') = $2)",
                &[&order_id, &email],
            )
            .await?;
        let orders: Vec<String> = orders.iter().map(|r| r.get(0)).collect();
        tx.execute(
            &format!(
                "UPDATE jobs SET body = ((body::jsonb) {removed})::text WHERE order_id = ANY($1)"
            ),
            &[&orders],
        )
        .await?;
        tx.execute(
            "DELETE FROM refused WHERE order_id = $1
                OR ($2::text IS NOT NULL AND strpos(lower(issues), $2) > 0)",
            &[&order_id, &email],
        )
        .await?;
        tx.commit().await?;
        Ok(u64::try_from(orders.len()).unwrap_or(0))
    }

    pub async fn ping(&self) -> Result<(), OutboxError> {
        let c = self.pool.get().await?;
        c.query_one("SELECT 1", &[]).await?;
        Ok(())
    }

    pub async fn prune_sent(&self, before: i64, batch: u32) -> Result<u64, OutboxError> {
        let c = self.pool.get().await?;
        let n = c
            .execute(
                "DELETE FROM jobs WHERE seq IN (
                     SELECT seq FROM jobs j WHERE state = 'sent' AND sent_at < $1
                       AND NOT EXISTS (SELECT 1 FROM jobs o WHERE o.order_id = j.order_id
                                       AND o.state <> 'sent')
                     ORDER BY sent_at LIMIT $2)",
                &[&before, &i64::from(batch)],
            )
            .await?;
        Ok(n)
    }

    pub async fn last_request(&self, key: String) -> Result<Option<i64>, OutboxError> {
        let c = self.pool.get().await?;
        Ok(
            c.query_opt("SELECT last_request_at FROM pacer WHERE key = $1", &[&key])
                .await?
                .map(|r| r.get(0)),
        )
    }

    pub async fn record_request(&self, key: String, at: i64) -> Result<(), OutboxError> {
        let c = self.pool.get().await?;
        c.execute(
            "INSERT INTO pacer (key, last_request_at) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET last_request_at = excluded.last_request_at",
            &[&key, &at],
        )
        .await?;
        Ok(())
    }

    /// Tries to become the one sender for `key` (an upstream fingerprint) across every instance
    /// sharing this database. `Some` holds the lock (and listens for new work) until dropped or
    /// until its connection ends.
    pub async fn leadership(&self, key: &str) -> Result<Option<Leadership>, OutboxError> {
        let (client, task) = connect(&self.config, Some(self.changed.clone())).await?;
        let lock = lock_key(key);
        let got: bool = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&lock])
            .await?
            .get(0);
        if !got {
            task.abort();
            return Ok(None);
        }
        client.batch_execute("LISTEN salebeacon_jobs").await?;
        Ok(Some(Leadership { client, task }))
    }

    /// Stops the writer after the batches already sent to it.
    pub async fn close(&self) {
        let handle = self.writer.lock().ok().and_then(|mut g| g.take());
        if let Some(h) = handle {
            h.abort();
            let _ = h.await;
        }
        self.pool.close();
    }

    /// The reconciliation record in `meta` (see [`super::Outbox::reconcile_record`]).
    pub async fn reconcile_record(&self) -> Result<Option<String>, OutboxError> {
        let c = self.pool.get().await?;
        Ok(
            c.query_opt("SELECT value FROM meta WHERE key = 'reconcile'", &[])
                .await?
                .map(|r| r.get(0)),
        )
    }

    /// Replaces the reconciliation record in `meta`.
    pub async fn set_reconcile_record(&self, json: String) -> Result<(), OutboxError> {
        let c = self.pool.get().await?;
        c.execute(
            "INSERT INTO meta (key, value) VALUES ('reconcile', $1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[&json],
        )
        .await?;
        Ok(())
    }
}

/// This instance is the sender for a key; dropping it releases the lock (its connection ends).
pub struct Leadership {
    client: tokio_postgres::Client,
    task: tokio::task::JoinHandle<()>,
}

impl Leadership {
    /// Whether the lock is still held: its connection is open and answers.
    pub async fn holds(&self) -> bool {
        !self.client.is_closed() && self.client.simple_query("SELECT 1").await.is_ok()
    }
}

impl Drop for Leadership {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A stable 63-bit key for an advisory lock, from the upstream fingerprint.
fn lock_key(key: &str) -> i64 {
    let d = ring::digest::digest(&ring::digest::SHA256, key.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&d.as_ref()[..8]);
    i64::from_be_bytes(b) & i64::MAX
}

async fn migrate(pool: &Pool) -> Result<(), OutboxError> {
    let mut c = pool.get().await?;
    let tx = c.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS salebeacon_schema (version INTEGER NOT NULL);
         INSERT INTO salebeacon_schema SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM salebeacon_schema);",
    )
    .await?;
    let found: i32 = tx
        .query_one("SELECT version FROM salebeacon_schema", &[])
        .await?
        .get(0);
    let known = i32::try_from(MIGRATIONS.len()).unwrap_or(i32::MAX);
    if found > known {
        return Err(OutboxError::NewerSchema {
            found: i64::from(found),
            known: i64::from(known),
        });
    }
    for (i, step) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(found).unwrap_or(0))
    {
        tx.batch_execute(step).await?;
        let version = i32::try_from(i + 1).unwrap_or(i32::MAX);
        tx.execute("UPDATE salebeacon_schema SET version = $1", &[&version])
            .await?;
        tracing::info!(version, "outbox schema migrated (PostgreSQL)");
    }
    tx.commit().await?;
    Ok(())
}

const COLUMNS: &str = "seq, kind, order_id, state, attempts, next_attempt_at, last_status, \
                       last_error, growi_id, created_at, sent_at, body, note";

fn view_from_row(r: &tokio_postgres::Row) -> JobView {
    let kind: String = r.get(1);
    let state: String = r.get(3);
    let state = JobState::parse(&state).unwrap_or(JobState::Queued);
    let next: i64 = r.get(5);
    let body: String = r.get(11);
    JobView {
        id: r.get(0),
        kind: if kind == "update" {
            JobKind::Update
        } else {
            JobKind::Create
        },
        order_id: r.get(2),
        state,
        attempts: u32::try_from(r.get::<_, i32>(4)).unwrap_or(0),
        next_attempt_at: (state == JobState::Queued && next > 0).then(|| format_utc(next)),
        last_status: r
            .get::<_, Option<i32>>(6)
            .and_then(|s| u16::try_from(s).ok()),
        last_error: r.get(7),
        growi_id: r.get(8),
        created_at: format_utc(r.get(9)),
        sent_at: r.get::<_, Option<i64>>(10).map(format_utc),
        note: r.get(12),
        body: serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)),
    }
}

/// The writer task: takes what arrived while the last batch committed and commits it as one
/// statement.
async fn writer(pool: Pool, mut rx: mpsc::Receiver<Insert>, batch_max: usize) {
    let mut batch: Vec<Insert> = Vec::with_capacity(batch_max);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < batch_max {
            match rx.try_recv() {
                Ok(i) => batch.push(i),
                Err(_) => break,
            }
        }
        let result = commit(&pool, &batch).await;
        match result {
            Ok(inserted) => {
                let mut inserted: HashSet<String> = inserted;
                for i in batch.drain(..) {
                    // The first of a batch's requests for an order is the one that inserted it.
                    let outcome = if inserted.remove(&i.order_id) {
                        Enqueued::Queued
                    } else {
                        Enqueued::Duplicate
                    };
                    let _ = i.reply.send(Ok(outcome));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, batch = batch.len(), "outbox commit failed");
                for i in batch.drain(..) {
                    let _ = i.reply.send(Err(e.clone()));
                }
            }
        }
    }
}

async fn commit(pool: &Pool, batch: &[Insert]) -> Result<HashSet<String>, OutboxError> {
    let c = pool.get().await?;
    let orders: Vec<&str> = batch.iter().map(|i| i.order_id.as_str()).collect();
    let bodies: Vec<&str> = batch.iter().map(|i| i.body.as_str()).collect();
    let times: Vec<i64> = batch.iter().map(|i| i.now).collect();
    let rows = c
        .query(
            "INSERT INTO jobs (kind, order_id, body, created_at)
             SELECT 'create', o, b, t FROM unnest($1::text[], $2::text[], $3::bigint[]) AS u(o, b, t)
             ON CONFLICT (order_id) WHERE kind = 'create' DO NOTHING
             RETURNING order_id",
            &[&orders, &bodies, &times],
        )
        .await?;
    Ok(rows.into_iter().map(|r| r.get(0)).collect())
}
