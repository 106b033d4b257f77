//! The browser-facing endpoints (`POST /sales`, `GET /pixel.gif`, `POST /touch`) and the
//! operators' (`GET /healthz`, `GET /metrics`).
//!
//! `POST /sales` and the pixel share one pipeline, [`accept_sale`]: cookies fill in what the
//! body lacks, the core validates (`Origin::Browser`, so `commission` / `due_at` / `status` are
//! refused), the signed order token is checked, an implausible `occurred_at` is replaced by the
//! proxy's clock, and the sale is committed to the outbox before anyone hears `202`. The admin
//! API's server-side create uses the same function with `Origin::Server`. Bodies are read as raw
//! bytes and parsed here, so `text/plain` (what `sendBeacon` sends without a preflight) and
//! `application/json` are the same, and every parse failure gets a 400 that says what was wrong.

use crate::error::AppError;
use crate::outbox::Enqueued;
use crate::trust::{client_ip, is_https, verify_order_token};
use crate::{now_ms, AppState};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use salebeacon::attribution::Attribution;
use salebeacon::retry::OUTBOX_MAX_AGE_MS;
use salebeacon::time::{format_utc, parse_rfc3339};
use salebeacon::visitor::is_uuid_v4;
use salebeacon::{Issue, Origin, SaleError, SaleInput};
use serde_json::json;
use std::time::Instant;

/// The attribution cookie the browser tracker writes from script.
pub const AFF_COOKIE: &str = "sb_aff";
/// The visitor-id cookie the browser tracker writes from script.
pub const VID_COOKIE: &str = "sb_vid";
/// The proxy's own HttpOnly copies, set by `/touch`. They need their own names: a browser lets no
/// script read or overwrite an HttpOnly cookie, so sharing `sb_aff` would freeze the tracker's
/// cookie at its first server-set value. Server-set cookies also outlive Safari's 7-day cap on
/// script-set ones; the pixel and `POST /sales` read either, the script's first.
pub const AFF_COOKIE_HTTP: &str = "sb_aff_h";
pub const VID_COOKIE_HTTP: &str = "sb_vid_h";

/// A transparent 1×1 GIF.
pub const GIF: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
];

/// Query parameters a pixel URL may carry only to defeat caches; they are not sale fields.
const CACHE_BUSTERS: &[&str] = &["_", "cb", "rnd"];
/// Personal data that has no place in a URL (it lands in access logs and referrers).
const PERSONAL_FIELDS: &[&str] = &["customer_email", "customer_name"];

/// How a sale was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    Queued,
    Duplicate,
}

impl IntoResponse for Accepted {
    fn into_response(self) -> Response {
        match self {
            Accepted::Queued => (StatusCode::ACCEPTED, Json(json!({"status": "queued"}))),
            Accepted::Duplicate => (StatusCode::OK, Json(json!({"status": "duplicate"}))),
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
    let result = async {
        let input: SaleInput = parse_json_body(&headers, body, state.config.body_limit)?;
        accept_sale(&state, input, &headers, Origin::Browser).await
    }
    .await;
    if let Err(e) = &result {
        if matches!(e, AppError::BadRequest(_) | AppError::UnsupportedMediaType) {
            crate::metrics::Metrics::inc(&state.metrics.sales_invalid);
        }
    }
    result
}

/// Reads a JSON object from a body sent as `application/json`, `text/plain` or without a type.
pub fn parse_json_body<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    limit: usize,
) -> Result<T, AppError> {
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let essence = ct
            .to_str()
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if !matches!(essence.as_str(), "application/json" | "text/plain" | "") {
            return Err(AppError::UnsupportedMediaType);
        }
    }
    let bytes = body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            AppError::TooLarge { limit }
        } else {
            AppError::BadRequest(format!("could not read the body: {}", r.body_text()))
        }
    })?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| AppError::BadRequest("the body is not UTF-8 text".into()))?;
    if text.trim().is_empty() {
        return Err(AppError::BadRequest(
            "the body is empty: send the sale as a JSON object".into(),
        ));
    }
    serde_json::from_str(text).map_err(|e| {
        use serde_json::error::Category;
        AppError::BadRequest(match e.classify() {
            Category::Data => format!("the body must be a JSON object: {e}"),
            Category::Syntax | Category::Eof => format!("the body is not valid JSON: {e}"),
            Category::Io => "could not read the body".into(),
        })
    })
}

/// The `Cookie` header's value for `name`, if any.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().trim_matches('"'))
}

/// The live attribution in the `sb_aff` (or `sb_aff_h`) cookie, if any.
fn cookie_attribution(headers: &HeaderMap, window_days: u32, now: i64) -> Option<Attribution> {
    [AFF_COOKIE, AFF_COOKIE_HTTP]
        .into_iter()
        .filter_map(|name| cookie(headers, name))
        .find_map(|raw| live_attribution(raw, window_days, now))
}

/// The visitor uid in the `sb_vid` (or `sb_vid_h`) cookie, if it is a UUID v4.
fn cookie_visitor_id(headers: &HeaderMap) -> Option<&str> {
    [VID_COOKIE, VID_COOKIE_HTTP]
        .into_iter()
        .filter_map(|name| cookie(headers, name))
        .find(|v| is_uuid_v4(v))
}

fn live_attribution(raw: &str, window_days: u32, now: i64) -> Option<Attribution> {
    let Some(a) = Attribution::decode(raw) else {
        tracing::debug!("ignored an sb_aff cookie that does not decode");
        return None;
    };
    if a.is_expired(now, window_days) {
        tracing::debug!("ignored an expired sb_aff cookie");
        return None;
    }
    Some(a)
}

/// The pipeline behind `POST /sales`, the pixel and the admin create.
pub async fn accept_sale(
    state: &AppState,
    mut input: SaleInput,
    headers: &HeaderMap,
    origin: Origin,
) -> Result<Accepted, AppError> {
    let config = &state.config;
    let metrics = &state.metrics;
    let now = now_ms();
    if origin == Origin::Browser {
        let referral = cookie_attribution(headers, config.window_days, now).map(|a| a.referral);
        input.fill_in(referral.as_ref(), cookie_visitor_id(headers));
    }
    let invalid = |issues: Vec<Issue>| {
        crate::metrics::Metrics::inc(&metrics.sales_invalid);
        AppError::invalid_sale(issues)
    };
    let mut sale = match input.validate(origin) {
        Ok(s) => s,
        Err(e @ SaleError::Unattributed) => {
            tracing::info!(order_id = ?input.order_id(), "refused an unattributed sale");
            return Err(invalid(e.issues()));
        }
        Err(e) => return Err(invalid(e.issues())),
    };
    if origin == Origin::Browser {
        if let Some(secret) = &config.order_token_secret {
            let given = input.get("order_token").is_some();
            let check = match input.order_token() {
                Some(token) => verify_order_token(
                    secret.expose().as_bytes(),
                    token,
                    &sale,
                    u64::try_from(now / 1000).unwrap_or(0),
                ),
                None if given => Err(Issue::new("order_token", "must be a string")),
                None if config.require_order_token => Err(Issue::new(
                    "order_token",
                    "is required: the merchant's backend signs each order (see the proxy's README)",
                )),
                None => Ok(()),
            };
            if let Err(issue) = check {
                tracing::warn!(order_id = %sale.order_id, reason = %issue.message, "refused a sale's order token");
                return Err(invalid(vec![issue]));
            }
        }
        let max_future = i64::try_from(config.max_future_skew.as_millis()).unwrap_or(i64::MAX);
        let max_age = i64::try_from(OUTBOX_MAX_AGE_MS).unwrap_or(i64::MAX);
        match sale.occurred_at.as_deref().and_then(parse_rfc3339) {
            Some(t) if t > now.saturating_add(max_future) => {
                tracing::info!(order_id = %sale.order_id, occurred_at = ?sale.occurred_at, "occurred_at is in the future beyond the allowed skew; using the proxy's clock");
                sale.occurred_at = Some(format_utc(now));
            }
            Some(t) if t < now.saturating_sub(max_age) => {
                tracing::info!(order_id = %sale.order_id, occurred_at = ?sale.occurred_at, "occurred_at is older than the browser outbox keeps sales; using the proxy's clock");
                sale.occurred_at = Some(format_utc(now));
            }
            Some(_) => {}
            None => sale.occurred_at = Some(format_utc(now)),
        }
        if let Some(days) = config.due_days {
            let occurred = sale
                .occurred_at
                .as_deref()
                .and_then(parse_rfc3339)
                .unwrap_or(now);
            sale.due_at = Some(format_utc(occurred + i64::from(days) * 86_400_000));
        }
    } else if sale.occurred_at.is_none() {
        // Queued sales may leave hours later: "now" is when we heard of it, not when Growi does.
        sale.occurred_at = Some(format_utc(now));
    }
    let body = serde_json::to_string(&sale).map_err(|e| AppError::Internal(e.to_string()))?;
    let order_id = sale.order_id;
    match state.outbox.enqueue_sale(order_id.clone(), body, now).await {
        Ok(Enqueued::Queued) => {
            crate::metrics::Metrics::inc(&metrics.sales_accepted);
            tracing::info!(%order_id, "sale queued");
            Ok(Accepted::Queued)
        }
        Ok(Enqueued::Duplicate) => {
            crate::metrics::Metrics::inc(&metrics.sales_duplicate);
            tracing::info!(%order_id, "duplicate sale");
            Ok(Accepted::Duplicate)
        }
        Err(e) => Err(AppError::Unavailable(e.to_string())),
    }
}

/// `GET {base}/pixel.gif`: always a GIF; the outcome goes to the log.
pub async fn pixel(State(state): State<AppState>, req: Request) -> Response {
    let ip = client_ip(&req, &state.config);
    let headers = req.headers().clone();
    if let Err(retry) = state.limiter.check(ip, Instant::now()) {
        tracing::warn!(%ip, retry_after_secs = retry, "pixel rate limited; sale not recorded");
    } else {
        let pairs = salebeacon::attribution::parse_query(req.uri().query().unwrap_or(""));
        let mut dropped = Vec::new();
        let kept = pairs.into_iter().filter(|(k, _)| {
            if PERSONAL_FIELDS.contains(&k.as_str()) {
                dropped.push(k.clone());
                false
            } else {
                !CACHE_BUSTERS.contains(&k.as_str())
            }
        });
        let input = SaleInput::from_pairs(kept.collect::<Vec<_>>());
        if !dropped.is_empty() {
            tracing::warn!(fields = ?dropped, "dropped personal data from a pixel URL: it does not belong in URLs (send it with POST /sales or the admin API)");
        }
        match accept_sale(&state, input, &headers, Origin::Browser).await {
            Ok(outcome) => tracing::debug!(?outcome, "pixel sale"),
            Err(AppError::Invalid { issues, .. }) => {
                tracing::warn!(issues = %salebeacon::issue::summarize(&issues), "pixel sale refused")
            }
            Err(e) => tracing::warn!(error = %e, "pixel sale not recorded"),
        }
    }
    gif()
}

fn gif() -> Response {
    let mut r = (StatusCode::OK, GIF).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/gif"));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, max-age=0"),
    );
    r
}

/// `GET {base}/touch`: what this browser's cookies hold for the proxy, `{"aff": <encoded
/// attribution or null>, "vid": <uuid or null>}`. The tracker asks only when its own storage has no
/// attribution at `trackSale` (Safari drops script-set cookies after 7 days; the HttpOnly copies
/// set by `POST /touch` live on). Attribution is not a secret: HttpOnly is there for lifetime.
pub async fn touched(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let now = now_ms();
    let aff = cookie_attribution(&headers, state.config.window_days, now).map(|a| a.encode());
    let vid = cookie_visitor_id(&headers);
    (
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        Json(json!({ "aff": aff, "vid": vid })),
    )
        .into_response()
}

/// `POST {base}/touch`: `{"aff": "<encoded attribution>", "vid": "<uuid v4>"}` → HttpOnly cookies.
pub async fn touch(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    let config = &state.config;
    let value: serde_json::Map<String, serde_json::Value> =
        parse_json_body(&headers, body, config.body_limit)?;
    let now = now_ms();
    let mut issues = Vec::new();
    let mut cookies = Vec::new();
    let secure = match config.secure_cookies {
        crate::config::SecureCookies::Always => true,
        crate::config::SecureCookies::Never => false,
        crate::config::SecureCookies::Auto => is_https(&headers),
    };
    let domain = config.cookie_domain.as_deref();
    match value.get("aff") {
        None | Some(serde_json::Value::Null) => {}
        Some(serde_json::Value::String(s)) => match Attribution::decode(s) {
            None => issues.push(Issue::new(
                "aff",
                "is not an encoded attribution (the tracker's sb_aff value)",
            )),
            Some(a) if a.is_expired(now, config.window_days) => {
                issues.push(Issue::new("aff", "is past the attribution window"))
            }
            Some(a) if a.captured_at > now + 300_000 => {
                issues.push(Issue::new("aff", "was captured in the future"))
            }
            Some(a) => cookies.push(set_cookie(
                AFF_COOKIE_HTTP,
                &a.encode(),
                a.expires_at(config.window_days),
                now,
                secure,
                domain,
            )),
        },
        Some(_) => issues.push(Issue::new("aff", "must be a string")),
    }
    match value.get("vid") {
        None | Some(serde_json::Value::Null) => {}
        Some(serde_json::Value::String(s)) if is_uuid_v4(s) => cookies.push(set_cookie(
            VID_COOKIE_HTTP,
            s,
            now + i64::from(config.visitor_cookie_days) * 86_400_000,
            now,
            secure,
            domain,
        )),
        Some(_) => issues.push(Issue::new("vid", "must be a UUID v4 in lower case")),
    }
    if cookies.is_empty() {
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
    for c in cookies {
        r.headers_mut().append(header::SET_COOKIE, c?);
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

fn set_cookie(
    name: &str,
    value: &str,
    expires_ms: i64,
    now: i64,
    secure: bool,
    domain: Option<&str>,
) -> Result<HeaderValue, AppError> {
    let max_age = (expires_ms - now).max(0) / 1000;
    let mut c = format!(
        "{name}={value}; Path=/; Expires={}; Max-Age={max_age}; HttpOnly; SameSite=Lax",
        http_date(expires_ms)
    );
    if secure {
        c.push_str("; Secure");
    }
    if let Some(d) = domain {
        c.push_str("; Domain=");
        c.push_str(d);
    }
    HeaderValue::from_str(&c).map_err(|e| AppError::Internal(format!("cookie header: {e}")))
}

/// `Tue, 30 Sep 2025 23:55:29 GMT` (RFC 9110's IMF-fixdate).
pub fn http_date(ms: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let iso = format_utc(ms);
    let weekday = DAYS[usize::try_from(ms.div_euclid(86_400_000).rem_euclid(7)).unwrap_or(0)];
    let month: usize = iso.get(5..7).and_then(|m| m.parse().ok()).unwrap_or(1);
    format!(
        "{weekday}, {} {} {} {} GMT",
        iso.get(8..10).unwrap_or("01"),
        MONTHS[month.clamp(1, 12) - 1],
        iso.get(0..4).unwrap_or("1970"),
        iso.get(11..19).unwrap_or("00:00:00"),
    )
}

/// `GET {base}/healthz`.
pub async fn healthz(State(state): State<AppState>) -> Response {
    match state.outbox.queue_depth().await {
        Ok(depth) => {
            let paused = state
                .metrics
                .sender_paused
                .load(std::sync::atomic::Ordering::Relaxed);
            Json(json!({
                "status": "ok",
                "queue_depth": depth,
                "sender": if paused { "paused: Growi refused the API key" } else { "running" },
            }))
            .into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "health check: outbox unusable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "unavailable", "error": "the outbox is unusable"})),
            )
                .into_response()
        }
    }
}

/// `GET {base}/metrics`.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let depth = state.outbox.queue_depth().await.ok();
    let mut r = state.metrics.render(depth).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(
            http_date(1_759_276_529_000),
            "Tue, 30 Sep 2025 23:55:29 GMT"
        );
    }

    #[test]
    fn cookies_parse() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; sb_aff=1~l~5~t~x; sb_vid=\"v\""),
        );
        assert_eq!(cookie(&h, "sb_aff"), Some("1~l~5~t~x"));
        assert_eq!(cookie(&h, "sb_vid"), Some("v"));
        assert_eq!(cookie(&h, "b"), None);
    }

    #[test]
    fn gif_is_a_gif() {
        assert_eq!(&GIF[..6], b"GIF89a");
        assert_eq!(GIF.len(), 43);
        assert_eq!(GIF[GIF.len() - 1], 0x3b);
    }
}
