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
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Seconds a standing-by instance asks the caller to wait before asking again.
const STANDBY_RETRY_SECS: u64 = 2;

/// The reconciliation routes (relative to the base path), each with its OpenAPI description,
/// guarded like the rest of the admin API.
pub fn routes(state: AppState) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(status, start))
        .routes(routes!(last))
        .route_layer(axum::middleware::from_fn_with_state(
            state,
            super::admin::require_token,
        ))
}

/// A run, as `POST` answers it.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct Started {
    run: crate::reconcile::run::RunStatus,
}

/// The days to compare (UTC, both included); both optional: the last 30 days.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct StartBody {
    /// `YYYY-MM-DD`.
    since: Option<String>,
    /// `YYYY-MM-DD`.
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
#[utoipa::path(
    post,
    path = "/admin/reconcile",
    tag = "admin",
    summary = "Start a reconciliation with Growi (read at the sender's pace)",
    security(("admin_token" = []), ("dashboard_session" = [])),
    request_body(content = StartBody, content_type = "application/json"),
    responses(
        (status = 202, description = "Started; follow it with GET /admin/reconcile", body = Started),
        (status = 400, description = "A bad date or body", body = crate::openapi::ErrorBody),
        (status = 409, description = "A run is under way on this instance", body = Object),
        (status = 413, description = "Body over the limit", body = crate::openapi::ErrorBody),
        (status = 415, description = "Not JSON", body = crate::openapi::ErrorBody),
        (status = 401, description = "Missing or wrong admin token / session", body = crate::openapi::ErrorBody),
        (status = 403, description = "A session's change without its CSRF token, or from another origin", body = crate::openapi::ErrorBody),
        (status = 503, description = "Admin API disabled, the outbox unavailable, or (POST) this instance stands by (Retry-After)", body = crate::openapi::ErrorBody),
    )
)]
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
    match state
        .reconcile
        .start(&state.reconcile_parts(), window)
        .await
    {
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
#[utoipa::path(
    get,
    path = "/admin/reconcile",
    tag = "admin",
    summary = "The run under way (or the last one) and the last finished report",
    security(("admin_token" = []), ("dashboard_session" = [])),
    responses(
        (status = 200, description = "The record", body = crate::reconcile::run::Record),
        (status = 401, description = "Missing or wrong admin token / session", body = crate::openapi::ErrorBody),
        (status = 403, description = "A session's change without its CSRF token, or from another origin", body = crate::openapi::ErrorBody),
        (status = 503, description = "Admin API disabled, the outbox unavailable, or (POST) this instance stands by (Retry-After)", body = crate::openapi::ErrorBody),
    )
)]
async fn status(State(state): State<AppState>) -> Result<Response, AppError> {
    let rec = record(&state.reconcile_parts())
        .await
        .map_err(|e| AppError::Unavailable(e.to_string()))?;
    Ok(Json(rec.judged(now_ms())).into_response())
}

/// `GET {base}/admin/reconcile/last`.
#[utoipa::path(
    get,
    path = "/admin/reconcile/last",
    tag = "admin",
    summary = "The last finished reconciliation report",
    security(("admin_token" = []), ("dashboard_session" = [])),
    responses(
        (status = 200, description = "The report", body = crate::reconcile::Report),
        (status = 404, description = "None has finished yet", body = crate::openapi::ErrorBody),
        (status = 401, description = "Missing or wrong admin token / session", body = crate::openapi::ErrorBody),
        (status = 403, description = "A session's change without its CSRF token, or from another origin", body = crate::openapi::ErrorBody),
        (status = 503, description = "Admin API disabled, the outbox unavailable, or (POST) this instance stands by (Retry-After)", body = crate::openapi::ErrorBody),
    )
)]
async fn last(State(state): State<AppState>) -> Result<Response, AppError> {
    let rec = record(&state.reconcile_parts())
        .await
        .map_err(|e| AppError::Unavailable(e.to_string()))?;
    match rec.last {
        Some(report) => Ok(Json(report).into_response()),
        None => Err(AppError::NotFound(
            "no reconciliation has finished yet: POST /admin/reconcile starts one".into(),
        )),
    }
}
