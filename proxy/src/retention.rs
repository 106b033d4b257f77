//! Retention: sent jobs are deleted once they are older than the configured period.
//!
//! A delivered sale costs about 300 bytes of outbox for ever otherwise. The default period (400
//! days) outlives a year of returns, so refunds and corrections by `order_id` still find their
//! sale. Deletion runs in small batches with a pause between them, so it never holds the writer
//! (SQLite) or a lock (PostgreSQL) long enough to stall intake. An order with a job still queued
//! or failed keeps all its jobs.

use crate::clock::now_ms;
use crate::outbox::Outbox;
use std::time::Duration;
use tokio::sync::watch;

/// Jobs deleted per statement.
const BATCH: u32 = 500;
/// Pause between two batches of one round.
const BREATHER: Duration = Duration::from_millis(50);
/// How often a round starts.
const EVERY: Duration = Duration::from_secs(600);

/// Deletes, every ten minutes (and once at start), the sent jobs older than `days`.
pub async fn run(outbox: Outbox, days: u32, mut shutdown: watch::Receiver<bool>) {
    loop {
        let before = now_ms().saturating_sub(i64::from(days) * 86_400_000);
        match prune(&outbox, before, &mut shutdown).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, days, "retention: deleted sent jobs"),
            Err(e) => tracing::warn!(error = %e, "retention: could not delete old jobs"),
        }
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// One round: batches until none is left (or shutdown). Returns how many were deleted.
pub async fn prune(
    outbox: &Outbox,
    before: i64,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<u64, crate::outbox::OutboxError> {
    let mut total = 0;
    loop {
        if *shutdown.borrow() {
            return Ok(total);
        }
        let n = outbox.prune_sent(before, BATCH).await?;
        total += n;
        if n < u64::from(BATCH) {
            return Ok(total);
        }
        tokio::time::sleep(BREATHER).await;
    }
}
