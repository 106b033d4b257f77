//! The reconciliation's admin endpoints, under `{base}/admin/reconcile`.
//!
//! - `POST /admin/reconcile` with `{"since": "YYYY-MM-DD", "until": "YYYY-MM-DD"}` (both
//!   optional: the last 30 days) starts a run and answers `202 {"run": {...}}` at once: a run
//!   takes a pace per page and shares the pace with the sender, so it is never awaited inside one
//!   HTTP request ([`crate::reconcile::run`] says why). `409` with the run under way if this
//!   instance runs one; `503` with `Retry-After` on an instance that stands by (only the sender's
//!   instance can pace the reads: ask again, a load balancer will reach it).
//! - `GET /admin/reconcile` is `{"run": {...}, "last": {...}}`: the run under way or the last one
//!   (state `running`, `done` or `failed`; `stale` when its instance stopped), and the last
//!   finished report. Any instance answers it: the record is in the outbox's database.
//! - `GET /admin/reconcile/last` is the last finished report alone (`404` before the first), for
//!   the dashboard.
//!
//! Same guard as the rest of the admin API ([`super::admin::require_token`]: the bearer token or
//! a dashboard session, with its CSRF checks on the `POST`).

use super::body::parse_json_body;
use crate::clock::now_ms;
use crate::error::AppError;
use crate::reconcile::run::{record, Reconciler, Refusal};
use crate::reconcile::Day;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

/// Seconds a standing-by instance asks the caller to wait before asking again.
const STANDBY_RETRY_SECS: u64 = 2;

/// The reconciliation routes, guarded like the rest of the admin API.
pub fn routes(base: &str, state: AppState) -> Router<AppState> {
    Router::new()
        .route(&format!("{base}/admin/reconcile"), get(status).post(start))
        .route(&format!("{base}/admin/reconcile/last"), get(last))
        .layer(axum::middleware::from_fn_with_state(
            state,
            super::admin::require_token,
        ))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StartBody {
    since: Option<String>,
    until: Option<String>,
}

fn day(name: &str, value: Option<&str>) -> Result<Option<Day>, AppError> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => Day::parse(v).map(Some).ok_or_else(|| {
            AppError::BadRequest(format!("{name} must be a date, YYYY-MM-DD, not {v:?}"))
        }),
    }
}

/// `POST {base}/admin/reconcile`.
async fn start(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    let empty = matches!(&body, Ok(b) if b.iter().all(u8::is_ascii_whitespace));
    let body: StartBody = if empty {
        StartBody::default()
    } else {
        parse_json_body(&headers, body, state.config.body_limit)?
    };
    let since = day("since", body.since.as_deref())?;
    let until = day("until", body.until.as_deref())?;
    let window = Reconciler::window(since, until).map_err(AppError::BadRequest)?;
    match state.reconcile.start(&state, window).await {
        Ok(run) => Ok((StatusCode::ACCEPTED, Json(json!({ "run": run }))).into_response()),
        Err(Refusal::Standby) => {
            let mut response = (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({
                    "error": "this instance stands by: only the instance that sends to Growi \
                              can pace a reconciliation; ask again (another instance, or this \
                              one once it is the sender, will start it)"
                })),
            )
                .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(STANDBY_RETRY_SECS));
            Ok(response)
        }
        Err(Refusal::Running(run)) => Ok((
            StatusCode::CONFLICT,
            Json(json!({
                "error": "a reconciliation is already running; follow it with GET /admin/reconcile",
                "run": run,
            })),
        )
            .into_response()),
        Err(Refusal::Outbox(e)) => Err(AppError::Unavailable(e.to_string())),
    }
}

/// `GET {base}/admin/reconcile`.
async fn status(State(state): State<AppState>) -> Result<Response, AppError> {
    let rec = record(&state)
        .await
        .map_err(|e| AppError::Unavailable(e.to_string()))?;
    Ok(Json(rec.judged(now_ms())).into_response())
}

/// `GET {base}/admin/reconcile/last`.
async fn last(State(state): State<AppState>) -> Result<Response, AppError> {
    let rec = record(&state)
        .await
        .map_err(|e| AppError::Unavailable(e.to_string()))?;
    match rec.last {
        Some(report) => Ok(Json(report).into_response()),
        None => Err(AppError::NotFound(
            "no reconciliation has finished yet: POST /admin/reconcile starts one".into(),
        )),
    }
}
