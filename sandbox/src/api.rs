//! The emulated Growi API: `/api/public/v1/affiliate_sales` and the gate in front of it.
//!
//! Every request under `/api/` passes `api_guard` first, which does what Growi's edge does, in
//! this order: injected latency, injected `500`/`503`, authentication (`401`, then `403` for a
//! read-only key on a write), injected `429`, the real rate limits (`429`). Only then does the
//! handler run. The guard also buffers the body (so it can log the `order_id`) and appends every
//! answered request to the request log, which is how tests check a client's pacing.
//! The control API (`/_sandbox/...`, see `control.rs`) shares the router but not the guard.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{patch, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::limits::{KeyId, Rejection};
use crate::money::MajorSum;
use crate::sale::{SaleStatus, SandboxSale};
use crate::state::{RecordedRequest, SandboxState};
use crate::{control, timefmt, validate};

/// The API's base path.
pub const API_BASE: &str = "/api/public/v1";

/// Largest request body the API reads.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// Default `per_page` of the list endpoint.
pub const DEFAULT_PER_PAGE: u64 = 20;
/// Maximum `per_page`; larger values are clamped.
pub const MAX_PER_PAGE: u64 = 100;

/// The whole sandbox as a router: the API under `/api/public/v1` and the control API under
/// `/_sandbox`. Serve it with [`crate::serve`] (which adds connection-level `down`), or call it
/// in-process with `tower::ServiceExt::oneshot`.
pub fn app(state: SandboxState) -> Router {
    Router::new()
        .route(
            "/api/public/v1/affiliate_sales",
            post(create_sale).get(list_sales),
        )
        .route("/api/public/v1/affiliate_sales/{id}", patch(update_sale))
        .merge(control::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), api_guard))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::RouteNotFound
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// Whether a request path belongs to the emulated API (and so to auth, limits and faults).
pub fn is_api_path(path: &str) -> bool {
    path.starts_with("/api/")
}

fn is_write(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The `order_id` a request is about, for the request log.
pub(crate) fn logged_order_id(
    state: &SandboxState,
    method: &Method,
    uri: &Uri,
    body: &Bytes,
) -> Option<String> {
    if *method == Method::GET {
        let Query(q) = Query::<HashMap<String, String>>::try_from_uri(uri).ok()?;
        return q.get("order_id").filter(|s| !s.is_empty()).cloned();
    }
    if *method == Method::PATCH {
        let id: u64 = uri.path().rsplit('/').next()?.parse().ok()?;
        return state.store().get(id).map(|s| s.external_id.clone());
    }
    let obj = validate::parse_object(body).ok()?;
    validate::loose_order_id(&obj)
}

async fn api_guard(State(state): State<SandboxState>, req: Request, next: Next) -> Response {
    if !is_api_path(req.uri().path()) {
        return next.run(req).await;
    }
    let arrived = Instant::now();
    let arrived_wall = SystemTime::now();
    let received_at_ms = timefmt::now_ms();
    let (parts, body) = req.into_parts();
    let method = parts.method.clone();
    let path = parts.uri.path().to_owned();
    let (response, order_id) = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Err(_) => (ApiError::PayloadTooLarge.into_response(), None),
        Ok(bytes) => {
            let order_id = logged_order_id(&state, &method, &parts.uri, &bytes);
            let gate = gate(&state, &method, &parts, arrived, arrived_wall).await;
            let response = match gate {
                Err(e) => e.into_response(),
                Ok(()) => {
                    next.run(Request::from_parts(parts, Body::from(bytes)))
                        .await
                }
            };
            (response, order_id)
        }
    };
    let status = response.status().as_u16();
    tracing::info!(%method, %path, status, "api request");
    state.record(RecordedRequest {
        method: method.to_string(),
        path,
        order_id,
        status,
        received_at_ms,
    });
    response
}

async fn gate(
    state: &SandboxState,
    method: &Method,
    parts: &axum::http::request::Parts,
    arrived: Instant,
    arrived_wall: SystemTime,
) -> Result<(), ApiError> {
    let faults = state.faults();
    if faults.down {
        return Err(ApiError::Down);
    }
    if faults.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(faults.latency_ms)).await;
    }
    let injected = state.injector().roll_server_error();
    if let Some(code) = injected {
        return Err(ApiError::Injected(code));
    }
    let key = state
        .authenticate(parts.headers.get(header::AUTHORIZATION))
        .ok_or(ApiError::NotAuthenticated)?;
    if key == KeyId::ReadOnly && is_write(method) {
        return Err(ApiError::ReadOnlyKey);
    }
    let injected_429 = state.injector().roll_rate_limit();
    if injected_429 {
        return Err(ApiError::RateLimited(Rejection::MinInterval {
            interval: "1 second".to_owned(),
            retry_after: 1,
        }));
    }
    let checked = state.limiter().check(key, arrived, arrived_wall);
    checked.map_err(ApiError::RateLimited)
}

fn data(sale: &SandboxSale) -> Json<Value> {
    Json(json!({ "data": sale }))
}

/// `POST /affiliate_sales`. An existing `order_id` returns the stored sale unchanged, with `201`,
/// before the rest of the body is even validated: the first accepted version is the truth.
async fn create_sale(
    State(state): State<SandboxState>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let obj = validate::parse_object(&body)?;
    let order_id = validate::order_id(&obj)?;
    let existing = state.store().by_order_id(&order_id).cloned();
    if let Some(existing) = existing {
        return Ok((StatusCode::CREATED, data(&existing)));
    }
    let new_sale = validate::new_sale(&obj, state.seed())?;
    let mut store = state.store();
    if let Some(existing) = store.by_order_id(&order_id) {
        return Ok((StatusCode::CREATED, data(existing)));
    }
    let sale = store.insert_new(|id| new_sale.into_sale(id))?;
    Ok((StatusCode::CREATED, data(&sale)))
}

/// `PATCH /affiliate_sales/{id}`.
async fn update_sale(
    State(state): State<SandboxState>,
    id: Result<Path<String>, axum::extract::rejection::PathRejection>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let id: u64 = id
        .ok()
        .and_then(|Path(raw)| raw.parse().ok())
        .ok_or(ApiError::SaleNotFound)?;
    let mut store = state.store();
    let current = store.get(id).cloned().ok_or(ApiError::SaleNotFound)?;
    if current.platform != "website" {
        return Err(ApiError::unprocessable(
            "Only sales created via the public API (website platform) can be updated.",
        ));
    }
    if current.status == SaleStatus::Cancelled {
        return Err(ApiError::unprocessable(
            "Cancelled sales cannot be updated.",
        ));
    }
    let obj = validate::parse_object(&body)?;
    let updated = validate::apply_patch(current.clone(), &obj, state.seed())?;
    if updated != current {
        store.replace(updated.clone())?;
    }
    Ok(data(&updated))
}

/// What `status=` selects.
enum StatusFilter {
    Any(&'static [SaleStatus]),
    /// Unpaid sales whose `due_at` has passed.
    Due,
}

struct ListQuery {
    page: u64,
    per_page: u64,
    order_id: Option<String>,
    status: Option<StatusFilter>,
    affiliate_tag: Option<String>,
    store_platform: Option<String>,
    campaign_id: Option<u64>,
    creator_id: Option<u64>,
    search: Option<String>,
    start_date: Option<jiff::civil::Date>,
    end_date: Option<jiff::civil::Date>,
}

fn parse_list_query(q: &HashMap<String, String>) -> Result<ListQuery, ApiError> {
    let get = |k: &str| q.get(k).map(|s| s.trim()).filter(|s| !s.is_empty());
    let positive = |k: &str| -> Result<Option<u64>, ApiError> {
        match get(k) {
            None => Ok(None),
            Some(v) => match v.parse::<u64>() {
                Ok(n) if n > 0 => Ok(Some(n)),
                _ => Err(ApiError::unprocessable(format!(
                    "{k} must be a positive integer."
                ))),
            },
        }
    };
    let date = |k: &str| -> Result<Option<jiff::civil::Date>, ApiError> {
        match get(k) {
            None => Ok(None),
            Some(v) => timefmt::parse_us_date(v).map(Some).ok_or_else(|| {
                ApiError::unprocessable(format!("{k} must be a date in MM/DD/YYYY format."))
            }),
        }
    };
    let status = match get("status") {
        None => None,
        Some("paid") => Some(StatusFilter::Any(&[
            SaleStatus::Paid,
            SaleStatus::PaidExternally,
        ])),
        Some("paid_externally") => Some(StatusFilter::Any(&[SaleStatus::PaidExternally])),
        Some("unpaid") => Some(StatusFilter::Any(&[SaleStatus::Unpaid])),
        Some("canceled" | "cancelled") => Some(StatusFilter::Any(&[SaleStatus::Cancelled])),
        Some("refunded") => Some(StatusFilter::Any(&[SaleStatus::Refunded])),
        Some("due") => Some(StatusFilter::Due),
        Some(_) => {
            return Err(ApiError::unprocessable(
                "status must be one of: paid, due, unpaid, canceled, refunded.",
            ))
        }
    };
    Ok(ListQuery {
        page: positive("page")?.unwrap_or(1),
        per_page: positive("per_page")?
            .unwrap_or(DEFAULT_PER_PAGE)
            .min(MAX_PER_PAGE),
        order_id: get("order_id").map(str::to_owned),
        status,
        affiliate_tag: get("affiliate_tag").map(str::to_owned),
        store_platform: get("store_platform").map(str::to_owned),
        campaign_id: positive("campaign_id")?,
        creator_id: positive("creator_id")?,
        search: get("search").map(str::to_lowercase),
        start_date: date("start_date")?,
        end_date: date("end_date")?,
    })
}

fn matches(q: &ListQuery, s: &SandboxSale, now_iso: &str) -> bool {
    let eq =
        |want: &Option<String>, have: Option<&str>| want.as_deref().is_none_or(|w| have == Some(w));
    let status_ok = match &q.status {
        None => true,
        Some(StatusFilter::Any(set)) => set.contains(&s.status),
        // Stored timestamps share one fixed-width UTC format, so they compare as strings.
        Some(StatusFilter::Due) => {
            s.status == SaleStatus::Unpaid && s.due_at.as_deref().is_some_and(|d| d <= now_iso)
        }
    };
    let search_ok = q.search.as_deref().is_none_or(|needle| {
        [&s.customer_email, &s.customer_name].iter().any(|f| {
            f.as_deref()
                .is_some_and(|v| v.to_lowercase().contains(needle))
        })
    });
    let date = timefmt::utc_date_of(&s.occurred_at);
    let start_ok = q.start_date.is_none_or(|d| date.is_some_and(|x| x >= d));
    let end_ok = q.end_date.is_none_or(|d| date.is_some_and(|x| x <= d));
    status_ok
        && search_ok
        && start_ok
        && end_ok
        && eq(&q.order_id, Some(&s.external_id))
        && eq(&q.affiliate_tag, s.campaign_affiliate_id.as_deref())
        && eq(&q.store_platform, Some(&s.platform))
        && q.campaign_id.is_none_or(|c| s.growi_campaign_id == Some(c))
        && q.creator_id.is_none_or(|c| s.growi_user_id == Some(c))
}

/// The list's `additional_data`, in major units, over every matching sale (not just the page).
fn aggregates(sales: &[&SandboxSale]) -> Value {
    let mut gmv = MajorSum::default();
    let mut commission = MajorSum::default();
    let mut paid = MajorSum::default();
    let mut unpaid = MajorSum::default();
    let mut refunded = MajorSum::default();
    let mut orders = 0u64;
    for s in sales {
        let amount = s.commission_base().unwrap_or(0);
        match s.status {
            SaleStatus::Cancelled => continue,
            SaleStatus::Refunded => {
                refunded.add(amount, &s.currency);
                orders += 1;
                continue;
            }
            SaleStatus::Paid | SaleStatus::PaidExternally => paid.add(s.commission, &s.currency),
            SaleStatus::Unpaid => unpaid.add(s.commission, &s.currency),
        }
        orders += 1;
        gmv.add(amount, &s.currency);
        commission.add(s.commission, &s.currency);
    }
    json!({
        "total_gmv": gmv.to_f64(),
        "total_commission": commission.to_f64(),
        "paid_commission": paid.to_f64(),
        "unpaid_commission": unpaid.to_f64(),
        "total_vat": 0.0,
        "total_orders": orders,
        "total_refunded_amount": refunded.to_f64(),
    })
}

/// `GET /affiliate_sales`: newest first (descending id).
async fn list_sales(
    State(state): State<SandboxState>,
    query: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(raw) =
        query.map_err(|e| ApiError::BadRequest(format!("Malformed query string: {e}")))?;
    let q = parse_list_query(&raw)?;
    let now = timefmt::now_iso();
    let store = state.store();
    let matching: Vec<&SandboxSale> = store.all().rev().filter(|s| matches(&q, s, &now)).collect();
    let row_count = matching.len() as u64;
    let page_count = row_count.div_ceil(q.per_page);
    let skip = usize::try_from((q.page - 1).saturating_mul(q.per_page)).unwrap_or(usize::MAX);
    let take = usize::try_from(q.per_page).unwrap_or(usize::MAX);
    let page: Vec<&SandboxSale> = matching.iter().skip(skip).take(take).copied().collect();
    Ok(Json(json!({
        "data": page,
        "meta": {
            "row_count": row_count,
            "page_count": page_count,
            "current_page": q.page,
        },
        "additional_data": aggregates(&matching),
    })))
}
