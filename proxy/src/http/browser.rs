//! The tracker's endpoints: `POST /sales` and `/touch` (both behind the browser trust guard).
//!
//! The handlers only translate: the body and the cookies in, the intake pipeline's outcome out.
//! `POST /touch` stores what the tracker captured in the proxy's HttpOnly cookies (they outlive
//! Safari's 7-day cap on script-set cookies); `GET /touch` reads them back for a tracker whose
//! own storage lost the attribution; `DELETE /touch` expires them when consent is withdrawn.

use super::body::parse_json_body;
use super::cookies;
use crate::clock;
use crate::config::SecureCookies;
use crate::error::AppError;
use crate::intake::{self, Accepted, Source};
use crate::state::AppState;
use crate::trust::is_https;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use salebeacon::attribution::Attribution;
use salebeacon::contract::{AFF_COOKIE_HTTP, STATUS_DUPLICATE, STATUS_QUEUED, VID_COOKIE_HTTP};
use salebeacon::visitor::is_uuid_v4;
use salebeacon::{Issue, SaleInput};
use serde_json::json;

impl IntoResponse for Accepted {
    fn into_response(self) -> Response {
        match self {
            Accepted::Queued => (StatusCode::ACCEPTED, Json(json!({"status": STATUS_QUEUED}))),
            Accepted::Duplicate => (StatusCode::OK, Json(json!({"status": STATUS_DUPLICATE}))),
        }
        .into_response()
    }
}

/// `POST {base}/sales`.
#[utoipa::path(
    post,
    path = "/sales",
    tag = "browser",
    summary = "Record a sale from a page (the tracker's call)",
    description = "Validated by the core's browser rules, attributed from the body or the \
        visitor's first-party cookies, and committed to the outbox before the answer. The body \
        may be sent as application/json or text/plain (sendBeacon). Cross-origin calls only from \
        configured origins; rate limited per address.",
    request_body(content = crate::openapi::BrowserSale, content_type = "application/json"),
    responses(
        (status = 202, description = "Queued: a new sale, on disk", body = crate::openapi::IntakeStatus),
        (status = 200, description = "Duplicate: this order_id is already in the outbox", body = crate::openapi::IntakeStatus),
        (status = 400, description = "Not a JSON object", body = crate::openapi::ErrorBody),
        (status = 403, description = "An origin that is not allowed", body = crate::openapi::ErrorBody),
        (status = 413, description = "Body over the limit", body = crate::openapi::ErrorBody),
        (status = 415, description = "Neither JSON nor text", body = crate::openapi::ErrorBody),
        (status = 422, description = "Invalid or unattributed: every issue", body = crate::openapi::ErrorBody),
        (status = 429, description = "Rate limited (Retry-After)", body = crate::openapi::ErrorBody),
        (status = 503, description = "The outbox is unavailable (Retry-After)", body = crate::openapi::ErrorBody),
    )
)]
pub async fn post_sale(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Accepted, AppError> {
    let input: SaleInput = match parse_json_body(&headers, body, state.config.body_limit) {
        Ok(input) => input,
        Err(e) => {
            crate::metrics::Metrics::inc(&state.metrics.sales_invalid);
            return Err(e);
        }
    };
    let found = cookies::read(&headers, state.config.window_days, clock::now());
    Ok(intake::accept(&state, input, Source::Browser, &found).await?)
}

/// `GET {base}/touch`: what this browser's cookies hold for the proxy, `{"aff": <encoded
/// attribution or null>, "vid": <uuid or null>}`. The tracker asks only when its own storage has no
/// attribution at `trackSale` (Safari drops script-set cookies after 7 days; the HttpOnly copies
/// set by `POST /touch` live on). Attribution is not a secret: HttpOnly is there for lifetime.
#[utoipa::path(
    get,
    path = "/touch",
    tag = "browser",
    summary = "Read the proxy's HttpOnly attribution cookies back",
    responses(
        (status = 200, description = "What the cookies hold", body = TouchState),
        (status = 403, description = "An origin that is not allowed", body = crate::openapi::ErrorBody),
        (status = 429, description = "Rate limited", body = crate::openapi::ErrorBody),
    )
)]
pub async fn touched(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let found = cookies::read(&headers, state.config.window_days, clock::now());
    (
        [(header::CACHE_CONTROL, "no-store")],
        Json(TouchState {
            aff: found.attribution.map(|a| a.encode()),
            vid: found.visitor_id,
        }),
    )
        .into_response()
}

/// What `GET /touch` answers (and `POST /touch` takes, with `domain`).
#[derive(serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct TouchState {
    /// The encoded attribution (the tracker's `sb_aff` value), or null.
    pub aff: Option<String>,
    /// The visitor id (UUID v4), or null.
    pub vid: Option<String>,
}

/// `POST /touch`'s body: either what the tracker captured (`aff`, `vid`), or, from the script-tag
/// loader on a same-origin page, the URL's parameters for the proxy to capture (`url_params`).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct TouchBody {
    /// The encoded attribution to keep (the tracker's `sb_aff` value).
    aff: Option<String>,
    /// The visitor id to keep (UUID v4, lower case).
    vid: Option<String>,
    /// The tracker's cookie domain (`cookieDomain: "auto"`, or the page's explicit one); used
    /// only within the request's host.
    domain: Option<String>,
    /// Capture at the edge: the URL's recognised parameters as `[name, value]` pairs, in priority
    /// order (the Growi pair, then the tag parameters as configured).
    url_params: Option<Vec<Vec<String>>>,
    /// With `url_params`: the attribution model (`last_click`, the default, or `first_click`).
    model: Option<String>,
    /// With `url_params`: the attribution window in days (default: the proxy's `window_days`).
    window_days: Option<u32>,
}

/// `POST {base}/touch`: `{"aff": "<encoded attribution>", "vid": "<uuid v4>", "domain":
/// "<the tracker's cookie domain>"}` → HttpOnly cookies; or `{"url_params": [[name, value], ..]}`
/// → the core's capture, the tracker's cookies and their HttpOnly copies ([`super::edge`]).
#[utoipa::path(
    post,
    path = "/touch",
    tag = "browser",
    summary = "Keep the attribution in HttpOnly cookies (they outlive Safari's 7-day cap)",
    request_body(content = TouchBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Captured at the edge (`url_params`): the cookies in Set-Cookie headers", body = super::edge::EdgeCapture),
        (status = 204, description = "Stored in Set-Cookie headers"),
        (status = 400, description = "Nothing usable: every issue", body = crate::openapi::ErrorBody),
        (status = 403, description = "An origin that is not allowed", body = crate::openapi::ErrorBody),
        (status = 413, description = "Body over the limit", body = crate::openapi::ErrorBody),
        (status = 415, description = "Neither JSON nor text", body = crate::openapi::ErrorBody),
        (status = 429, description = "Rate limited", body = crate::openapi::ErrorBody),
    )
)]
pub async fn touch(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    let config = &state.config;
    let value: serde_json::Map<String, serde_json::Value> =
        parse_json_body(&headers, body, config.body_limit)?;
    let now = clock::now();
    let mut issues = Vec::new();
    let mut set = Vec::new();
    let secure = match config.secure_cookies {
        SecureCookies::Always => true,
        SecureCookies::Never => false,
        SecureCookies::Auto => is_https(&headers),
    };
    let asked = match value.get("domain") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s.as_str()),
        Some(_) => {
            issues.push(Issue::new("domain", "must be a string"));
            None
        }
    };
    let host = request_host(&headers, config.trust_forwarded_for).unwrap_or_default();
    if value.contains_key(super::edge::FIELD) {
        return super::edge::capture(config, &headers, &value, &host, secure, now);
    }
    let domain = cookies::cookie_domain_for(config.cookie_domain.as_deref(), asked, &host);
    if let (Some(a), None) = (asked, &domain) {
        tracing::debug!(asked = a, %host, "touch: a cookie domain outside the request's host was ignored (host-only cookies)");
    }
    match value.get("aff") {
        None | Some(serde_json::Value::Null) => {}
        Some(serde_json::Value::String(s)) => match Attribution::decode(s) {
            None => issues.push(Issue::new(
                "aff",
                "is not an encoded attribution (the tracker's sb_aff value)",
            )),
            Some(a) if a.is_expired(now.millis(), config.window_days) => {
                issues.push(Issue::new("aff", "is past the attribution window"))
            }
            Some(a) if a.captured_at > now.millis() + 300_000 => {
                issues.push(Issue::new("aff", "was captured in the future"))
            }
            Some(a) => set.push((
                AFF_COOKIE_HTTP,
                a.encode(),
                salebeacon::time::Timestamp::from_millis(a.expires_at(config.window_days)),
            )),
        },
        Some(_) => issues.push(Issue::new("aff", "must be a string")),
    }
    match value.get("vid") {
        None | Some(serde_json::Value::Null) => {}
        Some(serde_json::Value::String(s)) if is_uuid_v4(s) => set.push((
            VID_COOKIE_HTTP,
            s.clone(),
            now.plus_days(config.visitor_cookie_days),
        )),
        Some(_) => issues.push(Issue::new("vid", "must be a UUID v4 in lower case")),
    }
    if set.is_empty() {
        if issues.is_empty() {
            issues.push(Issue::new("touch", "send aff and/or vid"));
        }
        return Err(AppError::Unusable {
            message: "nothing to store".into(),
            issues,
        });
    }
    if !issues.is_empty() {
        tracing::debug!(issues = %salebeacon::issue::summarize(&issues), "touch ignored part of its body");
    }
    let mut r = StatusCode::NO_CONTENT.into_response();
    for (name, value, expires) in set {
        let header = cookies::http_only(name, value, expires, now, secure, domain.as_deref())
            .ok_or_else(|| AppError::Internal(format!("cannot write the {name} cookie")))?;
        r.headers_mut().append(header::SET_COOKIE, header);
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// `DELETE /touch`'s query: the tracker's cookie domain, so the copies set with it are found.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ForgetQuery {
    /// The tracker's cookie domain (`cookieDomain: "auto"`), as it sent it to `POST /touch`.
    domain: Option<String>,
}

/// `DELETE {base}/touch`: expires the proxy's HttpOnly copies (`sb_aff_h`, `sb_vid_h`), which no
/// script can delete: the tracker calls it when consent is denied.
#[utoipa::path(
    delete,
    path = "/touch",
    tag = "browser",
    summary = "Forget this browser: expire the HttpOnly attribution cookies (consent withdrawn)",
    params(ForgetQuery),
    responses(
        (status = 204, description = "Expired (Set-Cookie with Max-Age=0, host-only and on the cookie domain)"),
        (status = 403, description = "An origin that is not allowed", body = crate::openapi::ErrorBody),
        (status = 429, description = "Rate limited", body = crate::openapi::ErrorBody),
    )
)]
pub async fn forget(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<axum::extract::Query<ForgetQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, AppError> {
    let config = &state.config;
    let now = clock::now();
    let secure = match config.secure_cookies {
        SecureCookies::Always => true,
        SecureCookies::Never => false,
        SecureCookies::Auto => is_https(&headers),
    };
    let asked = query.ok().and_then(|q| q.0.domain);
    let host = request_host(&headers, config.trust_forwarded_for).unwrap_or_default();
    let domain =
        cookies::cookie_domain_for(config.cookie_domain.as_deref(), asked.as_deref(), &host);
    let mut r = StatusCode::NO_CONTENT.into_response();
    for name in [AFF_COOKIE_HTTP, VID_COOKIE_HTTP] {
        for d in [None, domain.as_deref()] {
            let header = cookies::http_only(name, String::new(), now, now, secure, d)
                .ok_or_else(|| AppError::Internal(format!("cannot expire the {name} cookie")))?;
            r.headers_mut().append(header::SET_COOKIE, header);
        }
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// A CORS preflight (the browser guard answers it: 204 for a configured origin, 403 otherwise).
#[utoipa::path(
    options,
    path = "/sales",
    tag = "browser",
    summary = "CORS preflight",
    responses(
        (status = 204, description = "Allowed (headers for a configured origin)"),
        (status = 403, description = "An origin that is not allowed", body = crate::openapi::ErrorBody),
    )
)]
pub async fn preflight_sales() -> StatusCode {
    StatusCode::NO_CONTENT
}

/// A CORS preflight for `/touch`.
#[utoipa::path(
    options,
    path = "/touch",
    tag = "browser",
    summary = "CORS preflight",
    responses(
        (status = 204, description = "Allowed (headers for a configured origin)"),
        (status = 403, description = "An origin that is not allowed", body = crate::openapi::ErrorBody),
    )
)]
pub async fn preflight_touch() -> StatusCode {
    StatusCode::NO_CONTENT
}

/// The host the browser asked for: `X-Forwarded-Host` behind a trusted reverse proxy, else
/// `Host`.
fn request_host(headers: &HeaderMap, trust_forwarded: bool) -> Option<String> {
    let forwarded = trust_forwarded
        .then(|| headers.get("x-forwarded-host"))
        .flatten()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next());
    forwarded
        .or_else(|| headers.get(header::HOST).and_then(|v| v.to_str().ok()))
        .map(|h| h.trim().to_owned())
}
