//! The admin API under `{base}/admin`, for the merchant's back office.
//!
//! Growi names a sale by its integer id, the merchant by its `order_id`; the proxy knows both
//! (it recorded `data.id` when the create went through), so the back office only ever uses
//! `order_id`. A PATCH is validated by the core (`SaleUpdateInput`) and queued behind its create
//! through the same paced sender, so updates obey the same rate limit and ordering as creates.
//!
//! `GET /admin/refused` lists the sales refused at intake from pages and pixels (a pixel's
//! refusal reaches nobody else), with every issue.
//!
//! Every route needs `Authorization: Bearer $SALEBEACON_ADMIN_TOKEN`, compared in constant time;
//! with no token configured the whole API answers 503. No CORS headers are ever sent here: a
//! browser page must not be able to call it.

use super::body::parse_json_body;
use crate::clock::now_ms;
use crate::error::AppError;
use crate::intake::{self, Accepted, Cookies, Source};
use crate::outbox::{JobState, RetryOutcome};
use crate::state::AppState;
use crate::trust::ct_eq;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use salebeacon::{SaleInput, SaleUpdateInput};
use serde::Deserialize;
use serde_json::json;

/// The admin routes, under `{base}/admin`, guarded by [`require_token`].
pub fn routes(base: &str, state: AppState) -> Router<AppState> {
    Router::new()
        .route(&format!("{base}/admin/sales"), get(list).post(create))
        .route(
            &format!("{base}/admin/sales/{{order_id}}"),
            get(show).patch(update),
        )
        .route(
            &format!("{base}/admin/sales/{{order_id}}/retry"),
            post(retry),
        )
        .route(&format!("{base}/admin/refused"), get(refused))
        .layer(axum::middleware::from_fn_with_state(state, require_token))
}

/// Checks the bearer token.
pub async fn require_token(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(expected) = &state.config.admin_token else {
        return AppError::AdminDisabled.into_response();
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        Some(token) if ct_eq(token.as_bytes(), expected.expose().as_bytes()) => next.run(req).await,
        _ => {
            tracing::warn!(path = %req.uri().path(), "admin request with a missing or wrong token");
            AppError::Unauthorized.into_response()
        }
    }
}

async fn show(
    State(state): State<AppState>,
    Path(order_id): Path<String>,
) -> Result<Response, AppError> {
    match state.outbox.get(order_id.clone()).await {
        Ok(Some(view)) => Ok(Json(view).into_response()),
        Ok(None) => Err(AppError::NotFound(format!(
            "no sale with order_id {order_id:?} in this proxy's outbox"
        ))),
        Err(e) => Err(AppError::Unavailable(e.to_string())),
    }
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    state: Option<String>,
    limit: Option<u32>,
}

async fn list(
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Response, AppError> {
    let filter = match q.state.as_deref() {
        None | Some("") | Some("all") => None,
        Some(s) => Some(JobState::parse(s).ok_or_else(|| {
            AppError::BadRequest(format!(
                "state must be queued, sent, failed or all, not {s:?}"
            ))
        })?),
    };
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let jobs = state
        .outbox
        .list(filter, limit)
        .await
        .map_err(|e| AppError::Unavailable(e.to_string()))?;
    Ok(Json(json!({ "count": jobs.len(), "jobs": jobs })).into_response())
}

async fn update(
    State(state): State<AppState>,
    Path(order_id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    let input: SaleUpdateInput = parse_json_body(&headers, body, state.config.body_limit)?;
    let update = input.validate().map_err(|issues| AppError::Invalid {
        what: "update",
        issues,
    })?;
    let body = serde_json::to_string(&update).map_err(|e| AppError::Internal(e.to_string()))?;
    match state
        .outbox
        .enqueue_update(order_id.clone(), body, now_ms())
        .await
    {
        Ok(Some(id)) => {
            tracing::info!(%order_id, update_id = id, "update queued");
            Ok((
                StatusCode::ACCEPTED,
                Json(json!({"status": "queued", "order_id": order_id, "update_id": id})),
            )
                .into_response())
        }
        Ok(None) => Err(AppError::NotFound(format!(
            "no sale with order_id {order_id:?} in this proxy's outbox"
        ))),
        Err(e) => Err(AppError::Unavailable(e.to_string())),
    }
}

async fn retry(
    State(state): State<AppState>,
    Path(order_id): Path<String>,
) -> Result<Response, AppError> {
    match state.outbox.retry_failed(order_id.clone()).await {
        Ok(RetryOutcome::Requeued(n)) => {
            tracing::info!(%order_id, jobs = n, "failed jobs queued again");
            Ok((
                StatusCode::ACCEPTED,
                Json(json!({"status": "queued", "order_id": order_id, "jobs": n})),
            )
                .into_response())
        }
        Ok(RetryOutcome::NothingFailed(s)) => Err(AppError::Conflict(format!(
            "nothing failed for order_id {order_id:?} (its sale is {})",
            s.as_str()
        ))),
        Ok(RetryOutcome::NotFound) => Err(AppError::NotFound(format!(
            "no sale with order_id {order_id:?} in this proxy's outbox"
        ))),
        Err(e) => Err(AppError::Unavailable(e.to_string())),
    }
}

/// A server-side create: `Origin::Server` rules (may carry `commission` and `due_at`).
async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Accepted, AppError> {
    let input: SaleInput = parse_json_body(&headers, body, state.config.body_limit)?;
    Ok(intake::accept(&state, input, Source::Server, &Cookies::default()).await?)
}

#[derive(Debug, Deserialize)]
struct RefusedQuery {
    limit: Option<u32>,
}

/// `GET {base}/admin/refused`: the sales refused at intake from pages and pixels, newest first.
async fn refused(
    State(state): State<AppState>,
    Query(q): Query<RefusedQuery>,
) -> Result<Response, AppError> {
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let refused = state
        .outbox
        .refused(limit)
        .await
        .map_err(|e| AppError::Unavailable(e.to_string()))?;
    Ok(Json(json!({ "count": refused.len(), "refused": refused })).into_response())
}
