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
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use salebeacon::{SaleInput, SaleUpdateInput};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The admin API's routes (relative to the base path), each registered with its OpenAPI
/// description, guarded by [`require_token`].
pub fn routes(state: AppState) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, update))
        .routes(routes!(retry))
        .routes(routes!(refused))
        .routes(routes!(summary))
        .routes(routes!(erase))
        .route_layer(axum::middleware::from_fn_with_state(state, require_token))
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

#[utoipa::path(
    get,
    path = "/admin/sales/{order_id}",
    tag = "admin",
    summary = "A sale's delivery state, with its updates",
    security(("admin_token" = []), ("dashboard_session" = [])),
    params(("order_id" = String, Path, description = "The merchant's order id")),
    responses(
        (status = 200, description = "The sale and its updates", body = crate::outbox::SaleView),
        (status = 404, description = "No such order in this outbox", body = crate::openapi::ErrorBody),
        (status = 401, description = "Missing or wrong admin token / session", body = crate::openapi::ErrorBody),
        (status = 403, description = "A session's change without its CSRF token, or from another origin", body = crate::openapi::ErrorBody),
        (status = 503, description = "Admin API disabled (no token configured) or the outbox unavailable", body = crate::openapi::ErrorBody),
    )
)]
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

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// `queued`, `sent`, `failed` or `all` (the default).
    state: Option<String>,
    /// `create` (sales), `update` (corrections) or `all` (the default).
    kind: Option<String>,
    /// Order ids that contain this, ignoring case.
    order_id: Option<String>,
    /// Sales with exactly this affiliate tag.
    affiliate: Option<String>,
    /// From this day (`2026-12-01`, UTC) or RFC 3339 time on.
    since: Option<String>,
    /// Up to this day (inclusive) or before this RFC 3339 time.
    until: Option<String>,
    /// `oldest` first (queue order, the default) or `newest` first.
    order: Option<String>,
    /// At most this many (1-1000, default 100).
    limit: Option<u32>,
}

/// A list of jobs.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct JobList {
    pub count: usize,
    pub jobs: Vec<crate::outbox::JobView>,
}

/// A query string that does not parse (`limit=-1`) as a JSON 400, like every other error.
fn query_error(e: QueryRejection) -> AppError {
    AppError::BadRequest(format!("bad query: {}", e.body_text()))
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
#[utoipa::path(
    get,
    path = "/admin/sales",
    tag = "admin",
    summary = "Sales and updates, filtered",
    security(("admin_token" = []), ("dashboard_session" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "The matching jobs", body = JobList),
        (status = 400, description = "A bad filter (every one named)", body = crate::openapi::ErrorBody),
        (status = 401, description = "Missing or wrong admin token / session", body = crate::openapi::ErrorBody),
        (status = 403, description = "A session's change without its CSRF token, or from another origin", body = crate::openapi::ErrorBody),
        (status = 503, description = "Admin API disabled (no token configured) or the outbox unavailable", body = crate::openapi::ErrorBody),
    )
)]
async fn list(
    State(state): State<AppState>,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, AppError> {
    let Query(q) = q.map_err(query_error)?;
    let filter = list_filter(q)?;
    let jobs = state
        .outbox
        .list(filter)
        .await
        .map_err(|e| AppError::Unavailable(e.to_string()))?;
    Ok(Json(JobList {
        count: jobs.len(),
        jobs,
    })
    .into_response())
}

/// What the dashboard's header shows.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Summary {
    /// Jobs waiting to be sent.
    pub queue_depth: u64,
    /// Jobs that failed (Growi refused them).
    pub failed: u64,
    /// The pace: milliseconds between upstream requests.
    pub pace_ms: u64,
    /// Now (RFC 3339).
    pub now: String,
    /// When Growi will have the whole queue at the pace, if nothing fails (RFC 3339).
    pub done_by: String,
    /// `running`, `paused: ...` or `standing by`.
    pub sender: &'static str,
}

/// `GET {base}/admin/summary`: what the dashboard's header shows: the queue, when Growi will
/// have all of it at the current pace, failures, and whether this instance sends.
#[utoipa::path(
    get,
    path = "/admin/summary",
    tag = "admin",
    summary = "The queue, when it will be done, failures, the sender",
    security(("admin_token" = []), ("dashboard_session" = [])),
    responses(
        (status = 200, description = "The summary", body = Summary),
        (status = 401, description = "Missing or wrong admin token / session", body = crate::openapi::ErrorBody),
        (status = 403, description = "A session's change without its CSRF token, or from another origin", body = crate::openapi::ErrorBody),
        (status = 503, description = "Admin API disabled (no token configured) or the outbox unavailable", body = crate::openapi::ErrorBody),
    )
)]
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
    Ok(Json(Summary {
        queue_depth: depth,
        failed,
        pace_ms,
        now: salebeacon::time::format_utc(now),
        done_by: salebeacon::time::format_utc(done_by),
        sender,
    })
    .into_response())
}

/// Whose data to erase: exactly one of the two.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct EraseRequest {
    /// Erase this order's personal fields.
    order_id: Option<String>,
    /// Erase the personal fields of every sale with this customer email (any case).
    email: Option<String>,
}

/// How many sales were erased.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Erased {
    pub erased_sales: u64,
}

/// `POST {base}/admin/erase` with `{"order_id": ...}` or `{"email": ...}`: removes the personal
/// fields of the matching sales (a data subject's erasure request). Growi's own copy is Growi's
/// to erase; this answers for the proxy's.
#[utoipa::path(
    post,
    path = "/admin/erase",
    tag = "admin",
    summary = "Erase a person's data (customer_email, customer_name, visitor_uid)",
    security(("admin_token" = []), ("dashboard_session" = [])),
    request_body(content = EraseRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Erased (0 when nothing matched)", body = Erased),
        (status = 400, description = "Neither or both of order_id and email", body = crate::openapi::ErrorBody),
        (status = 413, description = "Body over the limit", body = crate::openapi::ErrorBody),
        (status = 415, description = "Not JSON", body = crate::openapi::ErrorBody),
        (status = 401, description = "Missing or wrong admin token / session", body = crate::openapi::ErrorBody),
        (status = 403, description = "A session's change without its CSRF token, or from another origin", body = crate::openapi::ErrorBody),
        (status = 503, description = "Admin API disabled (no token configured) or the outbox unavailable", body = crate::openapi::ErrorBody),
    )
)]
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
    Ok(Json(Erased {
        erased_sales: sales,
    })
    .into_response())
}

/// An update queued behind its sale.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct UpdateQueued {
    /// `queued`.
    pub status: &'static str,
    pub order_id: String,
    pub update_id: i64,
}

#[utoipa::path(
    patch,
    path = "/admin/sales/{order_id}",
    tag = "admin",
    summary = "Correct, refund or cancel a sale (queued behind its create, paced)",
    security(("admin_token" = []), ("dashboard_session" = [])),
    params(("order_id" = String, Path, description = "The merchant's order id")),
    request_body(content = crate::openapi::SaleUpdate, content_type = "application/json"),
    responses(
        (status = 202, description = "Queued", body = UpdateQueued),
        (status = 400, description = "Not a JSON object", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such order in this outbox", body = crate::openapi::ErrorBody),
        (status = 413, description = "Body over the limit", body = crate::openapi::ErrorBody),
        (status = 415, description = "Not JSON", body = crate::openapi::ErrorBody),
        (status = 422, description = "An invalid update: every issue", body = crate::openapi::ErrorBody),
        (status = 401, description = "Missing or wrong admin token / session", body = crate::openapi::ErrorBody),
        (status = 403, description = "A session's change without its CSRF token, or from another origin", body = crate::openapi::ErrorBody),
        (status = 503, description = "Admin API disabled (no token configured) or the outbox unavailable", body = crate::openapi::ErrorBody),
    )
)]
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
                Json(UpdateQueued {
                    status: "queued",
                    order_id,
                    update_id: id,
                }),
            )
                .into_response())
        }
        Ok(None) => Err(AppError::NotFound(format!(
            "no sale with order_id {order_id:?} in this proxy's outbox"
        ))),
        Err(e) => Err(AppError::Unavailable(e.to_string())),
    }
}

/// Failed jobs queued again.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Requeued {
    /// `queued`.
    pub status: &'static str,
    pub order_id: String,
    /// How many jobs (the sale and its failed updates).
    pub jobs: usize,
}

#[utoipa::path(
    post,
    path = "/admin/sales/{order_id}/retry",
    tag = "admin",
    summary = "Queue a failed sale (and its failed updates) again, in its old place",
    security(("admin_token" = []), ("dashboard_session" = [])),
    params(("order_id" = String, Path, description = "The merchant's order id")),
    responses(
        (status = 202, description = "Queued again", body = Requeued),
        (status = 404, description = "No such order in this outbox", body = crate::openapi::ErrorBody),
        (status = 409, description = "Nothing failed for this order", body = crate::openapi::ErrorBody),
        (status = 401, description = "Missing or wrong admin token / session", body = crate::openapi::ErrorBody),
        (status = 403, description = "A session's change without its CSRF token, or from another origin", body = crate::openapi::ErrorBody),
        (status = 503, description = "Admin API disabled (no token configured) or the outbox unavailable", body = crate::openapi::ErrorBody),
    )
)]
async fn retry(
    State(state): State<AppState>,
    Path(order_id): Path<String>,
) -> Result<Response, AppError> {
    match state.outbox.retry_failed(order_id.clone()).await {
        Ok(RetryOutcome::Requeued(n)) => {
            tracing::info!(%order_id, jobs = n, "failed jobs queued again");
            Ok((
                StatusCode::ACCEPTED,
                Json(Requeued {
                    status: "queued",
                    order_id,
                    jobs: n,
                }),
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
#[utoipa::path(
    post,
    path = "/admin/sales",
    tag = "admin",
    summary = "Record a sale from the merchant's server",
    security(("admin_token" = []), ("dashboard_session" = [])),
    request_body(content = crate::openapi::ServerSale, content_type = "application/json"),
    responses(
        (status = 202, description = "Queued", body = crate::openapi::IntakeStatus),
        (status = 200, description = "Duplicate: this order_id is already in the outbox", body = crate::openapi::IntakeStatus),
        (status = 400, description = "Not a JSON object", body = crate::openapi::ErrorBody),
        (status = 413, description = "Body over the limit", body = crate::openapi::ErrorBody),
        (status = 415, description = "Not JSON", body = crate::openapi::ErrorBody),
        (status = 422, description = "Invalid: every issue", body = crate::openapi::ErrorBody),
        (status = 401, description = "Missing or wrong admin token / session", body = crate::openapi::ErrorBody),
        (status = 403, description = "A session's change without its CSRF token, or from another origin", body = crate::openapi::ErrorBody),
        (status = 503, description = "Admin API disabled (no token configured) or the outbox unavailable", body = crate::openapi::ErrorBody),
    )
)]
async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Accepted, AppError> {
    let input: SaleInput = parse_json_body(&headers, body, state.config.body_limit)?;
    Ok(intake::accept(&state, input, Source::Server, &Cookies::default()).await?)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct RefusedQuery {
    /// At most this many (1-1000, default 100), newest first.
    limit: Option<u32>,
}

/// Sales refused at intake.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct RefusedList {
    pub count: usize,
    pub refused: Vec<crate::outbox::RefusedView>,
}

/// `GET {base}/admin/refused`: the sales refused at intake from pages and pixels, newest first.
#[utoipa::path(
    get,
    path = "/admin/refused",
    tag = "admin",
    summary = "Sales refused at intake from pages and pixels, newest first",
    security(("admin_token" = []), ("dashboard_session" = [])),
    params(RefusedQuery),
    responses(
        (status = 200, description = "The refusals, with every issue", body = RefusedList),
        (status = 400, description = "A bad limit", body = crate::openapi::ErrorBody),
        (status = 401, description = "Missing or wrong admin token / session", body = crate::openapi::ErrorBody),
        (status = 403, description = "A session's change without its CSRF token, or from another origin", body = crate::openapi::ErrorBody),
        (status = 503, description = "Admin API disabled (no token configured) or the outbox unavailable", body = crate::openapi::ErrorBody),
    )
)]
async fn refused(
    State(state): State<AppState>,
    q: Result<Query<RefusedQuery>, QueryRejection>,
) -> Result<Response, AppError> {
    let Query(q) = q.map_err(query_error)?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let refused = state
        .outbox
        .refused(limit)
        .await
        .map_err(|e| AppError::Unavailable(e.to_string()))?;
    Ok(Json(RefusedList {
        count: refused.len(),
        refused,
    })
    .into_response())
}
