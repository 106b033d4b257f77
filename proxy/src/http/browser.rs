//! The tracker's endpoints: `POST /sales` and `/touch` (both behind the browser trust guard).
//!
//! The handlers only translate: the body and the cookies in, the intake pipeline's outcome out.
//! `POST /touch` stores what the tracker captured in the proxy's HttpOnly cookies (they outlive
//! Safari's 7-day cap on script-set cookies); `GET /touch` reads them back for a tracker whose
//! own storage lost the attribution.

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
pub async fn touched(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let found = cookies::read(&headers, state.config.window_days, clock::now());
    (
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({
            "aff": found.attribution.map(|a| a.encode()),
            "vid": found.visitor_id,
        })),
    )
        .into_response()
}

/// `POST {base}/touch`: `{"aff": "<encoded attribution>", "vid": "<uuid v4>", "domain":
/// "<the tracker's cookie domain>"}` → HttpOnly cookies.
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
