//! Intake: the one sale pipeline behind `POST /sales`, the pixel and the admin API's create.
//!
//! In order: what the browser's cookies hold fills in what the sale lacks (attribution, visitor
//! id), the core validates (`Origin::Browser` for a page, so `commission` / `due_at` / `status` are
//! refused), the signed order token is checked, an implausible `occurred_at` is replaced by the
//! proxy's clock, `due_at` is set from the configured return window, and the sale is committed to
//! the outbox before anyone hears `202`. The pipeline knows no HTTP: the handlers read the body
//! and the cookies and turn the [`Refusal`] into an answer. A refusal from a page or a pixel is
//! also recorded in the outbox's refused list and counted by reason, because a pixel's refusal
//! reaches nobody else.

pub use crate::verdict::{Accepted, Cookies, Refusal, Source};

use crate::clock;
use crate::metrics::Metrics;
use crate::outbox::{Enqueued, OutboxError};
use crate::state::AppState;
use crate::trust::verify_order_token;
use salebeacon::retry::OUTBOX_MAX_AGE_MS;
use salebeacon::time::Timestamp;
use salebeacon::{Issue, SaleError, SaleInput};

/// Runs the pipeline. `cookies` fill in a page's or a pixel's sale; a server-side create ignores
/// them.
pub async fn accept(
    state: &AppState,
    mut input: SaleInput,
    source: Source,
    cookies: &Cookies,
) -> Result<Accepted, Refusal> {
    let result = admit(state, &mut input, source, cookies).await;
    match &result {
        Ok(Accepted::Queued) => Metrics::inc(&state.metrics.sales_accepted),
        Ok(Accepted::Duplicate) => Metrics::inc(&state.metrics.sales_duplicate),
        Err(refusal) => refused(state, &input, source, refusal).await,
    }
    result
}

/// Records and counts a refusal of a page's or a pixel's sale (the only word it leaves).
pub async fn refused(state: &AppState, input: &SaleInput, source: Source, refusal: &Refusal) {
    if !matches!(refusal, Refusal::Unavailable(_)) {
        Metrics::inc(&state.metrics.sales_invalid);
    }
    state.metrics.refused(source, refusal.reason());
    let order_id = input.order_id().map(|id| truncate(id, 255));
    let issues = refusal.issues();
    tracing::info!(
        source = source.as_str(),
        reason = refusal.reason(),
        order_id = order_id.as_deref().unwrap_or("-"),
        issues = %salebeacon::issue::summarize(&issues),
        "sale refused"
    );
    if source == Source::Server || matches!(refusal, Refusal::Unavailable(_)) {
        return;
    }
    let issues = serde_json::to_string(&issues).unwrap_or_else(|_| "[]".into());
    if let Err(e) = state
        .outbox
        .record_refused(
            source.as_str(),
            order_id,
            refusal.reason(),
            issues,
            clock::now_ms(),
        )
        .await
    {
        tracing::warn!(error = %e, "could not record a refused sale");
    }
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

async fn admit(
    state: &AppState,
    input: &mut SaleInput,
    source: Source,
    cookies: &Cookies,
) -> Result<Accepted, Refusal> {
    let config = &state.config;
    let now = clock::now();
    if source != Source::Server {
        let referral = cookies.attribution.as_ref().map(|a| a.referral.clone());
        input.fill_in(referral.as_ref(), cookies.visitor_id.as_deref());
    }
    let mut sale = match input.validate(source.origin()) {
        Ok(s) => s,
        Err(e @ SaleError::Unattributed) => return Err(Refusal::Unattributed(e.issues())),
        Err(e) => return Err(Refusal::Invalid(e.issues())),
    };
    if source != Source::Server {
        if let Some(secret) = &config.order_token_secret {
            let given = input.get("order_token").is_some();
            let check = match input.order_token() {
                Some(token) => verify_order_token(
                    secret.expose().as_bytes(),
                    token,
                    &sale,
                    u64::try_from(now.millis() / 1000).unwrap_or(0),
                ),
                None if given => Err(Issue::new("order_token", "must be a string")),
                None if config.require_order_token => Err(Issue::new(
                    "order_token",
                    "is required: the merchant's backend signs each order (see the proxy's README)",
                )),
                None => Ok(()),
            };
            check.map_err(Refusal::OrderToken)?;
        }
        sale.occurred_at = Some(plausible_occurred_at(
            sale.occurred_at,
            now,
            config.max_future_skew,
            &sale.order_id,
        ));
        if let (Some(days), Some(occurred)) = (config.due_days, sale.occurred_at) {
            sale.due_at = Some(occurred.plus_days(days));
        }
    } else if sale.occurred_at.is_none() {
        // Queued sales may leave hours later: "now" is when we heard of it, not when Growi does.
        sale.occurred_at = Some(now);
    }
    let body = serde_json::to_string(&sale).map_err(|e| {
        Refusal::Unavailable(OutboxError::Sqlite(format!("cannot write the sale: {e}")))
    })?;
    let order_id = sale.order_id;
    match state
        .outbox
        .enqueue_sale(order_id.clone(), body, now.millis())
        .await
    {
        Ok(Enqueued::Queued) => {
            tracing::info!(%order_id, source = source.as_str(), "sale queued");
            Ok(Accepted::Queued)
        }
        Ok(Enqueued::Duplicate) => {
            tracing::info!(%order_id, source = source.as_str(), "duplicate sale");
            Ok(Accepted::Duplicate)
        }
        Err(e) => Err(Refusal::Unavailable(e)),
    }
}

/// A browser's `occurred_at`, unless it is in the future beyond the allowed skew or older than
/// the browser outbox keeps sales: then the proxy's clock, and a log line that says why.
fn plausible_occurred_at(
    given: Option<Timestamp>,
    now: Timestamp,
    max_future: std::time::Duration,
    order_id: &str,
) -> Timestamp {
    let max_future = i64::try_from(max_future.as_millis()).unwrap_or(i64::MAX);
    let max_age = i64::try_from(OUTBOX_MAX_AGE_MS).unwrap_or(i64::MAX);
    match given {
        Some(t) if t.millis() > now.millis().saturating_add(max_future) => {
            tracing::info!(%order_id, occurred_at = %t.format(), "occurred_at is in the future beyond the allowed skew; using the proxy's clock");
            now
        }
        Some(t) if t.millis() < now.millis().saturating_sub(max_age) => {
            tracing::info!(%order_id, occurred_at = %t.format(), "occurred_at is older than the browser outbox keeps sales; using the proxy's clock");
            now
        }
        Some(t) => t,
        None => now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn implausible_times_become_now() {
        let now = Timestamp::from_millis(1_800_000_000_000);
        let skew = Duration::from_secs(300);
        let at = |ms: i64| Some(Timestamp::from_millis(ms));
        assert_eq!(plausible_occurred_at(None, now, skew, "A"), now);
        let ok = at(now.millis() - 60_000);
        assert_eq!(plausible_occurred_at(ok, now, skew, "A"), ok.unwrap());
        assert_eq!(
            plausible_occurred_at(at(now.millis() + 600_000), now, skew, "A"),
            now
        );
        let old = now.millis() - i64::try_from(OUTBOX_MAX_AGE_MS).unwrap() - 1;
        assert_eq!(plausible_occurred_at(at(old), now, skew, "A"), now);
    }

    #[test]
    fn long_order_ids_are_cut_on_a_character() {
        assert_eq!(truncate("é".repeat(200), 255).len(), 254);
        assert_eq!(truncate("abc".into(), 255), "abc");
    }
}
