//! The admin API under `{base}/admin`, for the merchant's back office.
//!
//! Growi names a sale by its integer id, the merchant by its `order_id`; the proxy knows both
//! (it recorded `data.id` when the create went through), so the back office only ever uses
//! `order_id`. A PATCH is validated by the core (`SaleUpdateInput`) and queued behind its create
//! through the same paced sender, so updates obey the same rate limit and ordering as creates.
//!
//! `GET /admin/refused` lists the sales refused at intake from pages and pixels (a pixel's
//! refusal reaches nobody else), with every issue. `GET /admin/sales` filters by state, kind,
//! order id, affiliate and dates; `GET /admin/summary` is the dashboard's header (queue, when it
//! will be done at the pace, failures); `POST /admin/erase` removes a person's data by `order_id`
//! or email.
//!
//! Every route needs `Authorization: Bearer $SALEBEACON_ADMIN_TOKEN`, compared in constant time,
//! or the dashboard's session cookie with its CSRF token for changes ([`super::session`]); with
//! no token configured the whole API answers 503. No CORS headers are ever sent here: another
//! site's page must not be able to call it.

use super::body::parse_json_body;
use crate::clock::now_ms;
use crate::error::AppError;
use crate::intake::{self, Accepted, Cookies, Source};
use crate::outbox::{Erase, JobKind, JobState, ListFilter, RetryOutcome};
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
        .route(&format!("{base}/admin/summary"), get(summary))
        .route(&format!("{base}/admin/erase"), post(erase))
        .layer(axum::middleware::from_fn_with_state(state, require_token))
}

/// Lets a request through with the admin token as a bearer (scripts, the CLI) or with a
/// dashboard session cookie ([`super::session`]), which must also pass the CSRF checks when the
/// request changes something.
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
    if let Some(token) = given {
        if ct_eq(token.as_bytes(), expected.expose().as_bytes()) {
            return next.run(req).await;
        }
    } else if let Some(session) = super::session::of_request(&state, req.headers()) {
        return match super::session::csrf_refusal(&session, req.method(), req.headers()) {
            None => next.run(req).await,
            Some(refusal) => {
                tracing::warn!(path = %req.uri().path(), "dashboard request refused: {refusal}");
                refusal.into_response()
            }
        };
    }
    tracing::warn!(path = %req.uri().path(), "admin request with a missing or wrong token");
    AppError::Unauthorized.into_response()
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
    kind: Option<String>,
    order_id: Option<String>,
    affiliate: Option<String>,
    since: Option<String>,
    until: Option<String>,
    order: Option<String>,
    limit: Option<u32>,
}

/// A day (`2026-12-01`, UTC) or an RFC 3339 time, in ms; a day's `end` is the next midnight.
fn parse_when(field: &str, text: &str, end: bool) -> Result<i64, AppError> {
    let t = text.trim();
    let day = t.len() == 10 && t.as_bytes().get(4) == Some(&b'-');
    let parsed = if day {
        salebeacon::time::parse_rfc3339(&format!("{t}T00:00:00Z")).map(|ms| {
            if end {
                ms + 86_400_000
            } else {
                ms
            }
        })
    } else {
        salebeacon::time::parse_rfc3339(t)
    };
    parsed.ok_or_else(|| {
        AppError::BadRequest(format!(
            "{field} must be a day (2026-12-01) or an RFC 3339 time, not {t:?}"
        ))
    })
}

fn list_filter(q: ListQuery) -> Result<ListFilter, AppError> {
    let mut bad = Vec::new();
    let state = match q.state.as_deref() {
        None | Some("") | Some("all") => None,
        Some(s) => JobState::parse(s).or_else(|| {
            bad.push(format!(
                "state must be queued, sent, failed or all, not {s:?}"
            ));
            None
        }),
    };
    let kind = match q.kind.as_deref() {
        None | Some("") | Some("all") => None,
        Some("create") => Some(JobKind::Create),
        Some("update") => Some(JobKind::Update),
        Some(k) => {
            bad.push(format!("kind must be create, update or all, not {k:?}"));
            None
        }
    };
    let mut when = |field: &str, v: Option<String>, end: bool| match v.filter(|v| !v.is_empty()) {
        None => None,
        Some(v) => parse_when(field, &v, end)
            .map_err(|e| bad.push(e.to_string()))
            .ok(),
    };
    let since_ms = when("since", q.since, false);
    let until_ms = when("until", q.until, true);
    let newest_first = match q.order.as_deref() {
        None | Some("") | Some("oldest") => false,
        Some("newest") => true,
        Some(o) => {
            bad.push(format!("order must be oldest or newest, not {o:?}"));
            false
        }
    };
    if !bad.is_empty() {
        return Err(AppError::BadRequest(bad.join("; ")));
    }
    let text = |v: Option<String>| v.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    Ok(ListFilter {
        state,
        kind,
        order_id: text(q.order_id),
        affiliate: text(q.affiliate),
        since_ms,
        until_ms,
        newest_first,
        limit: q.limit.unwrap_or(100).clamp(1, 1000),
    })
}

/// `GET {base}/admin/sales`: jobs, filtered (state, kind, order id, affiliate, dates).
async fn list(
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Response, AppError> {
    let filter = list_filter(q)?;
    let jobs = state
        .outbox
        .list(filter)
        .await
        .map_err(|e| AppError::Unavailable(e.to_string()))?;
    Ok(Json(json!({ "count": jobs.len(), "jobs": jobs })).into_response())
}

/// `GET {base}/admin/summary`: what the dashboard's header shows: the queue, when Growi will
/// have all of it at the current pace, failures, and whether this instance sends.
async fn summary(State(state): State<AppState>) -> Result<Response, AppError> {
    let unavailable = |e: crate::outbox::OutboxError| AppError::Unavailable(e.to_string());
    let depth = state.outbox.queue_depth().await.map_err(unavailable)?;
    let failed = state
        .outbox
        .count(JobState::Failed)
        .await
        .map_err(unavailable)?;
    let pace_ms = u64::try_from(state.config.pace.as_millis()).unwrap_or(u64::MAX);
    let now = now_ms();
    let done_by =
        now.saturating_add(i64::try_from(depth.saturating_mul(pace_ms)).unwrap_or(i64::MAX));
    let m = &state.metrics;
    let sender = match (
        m.sender_active.load(std::sync::atomic::Ordering::Relaxed),
        m.sender_paused.load(std::sync::atomic::Ordering::Relaxed),
    ) {
        (false, _) => "standing by",
        (true, true) => "paused: Growi refused the API key",
        (true, false) => "running",
    };
    Ok(Json(json!({
        "queue_depth": depth,
        "failed": failed,
        "pace_ms": pace_ms,
        "now": salebeacon::time::format_utc(now),
        "done_by": salebeacon::time::format_utc(done_by),
        "sender": sender,
    }))
    .into_response())
}

#[derive(Debug, Deserialize)]
struct EraseRequest {
    order_id: Option<String>,
    email: Option<String>,
}

/// `POST {base}/admin/erase` with `{"order_id": ...}` or `{"email": ...}`: removes the personal
/// fields of the matching sales (a data subject's erasure request). Growi's own copy is Growi's
/// to erase; this answers for the proxy's.
async fn erase(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    let req: EraseRequest = parse_json_body(&headers, body, state.config.body_limit)?;
    let text = |v: Option<String>| v.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    let who = match (text(req.order_id), text(req.email)) {
        (Some(o), None) => Erase::OrderId(o),
        (None, Some(e)) => Erase::Email(e),
        _ => {
            return Err(AppError::BadRequest(
                "give exactly one of order_id or email".into(),
            ))
        }
    };
    let sales = state
        .outbox
        .erase(who)
        .await
        .map_err(|e| AppError::Unavailable(e.to_string()))?;
    tracing::info!(sales, "personal data erased on request");
    Ok(Json(json!({ "erased_sales": sales })).into_response())
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
