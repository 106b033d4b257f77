//! Capture at the edge: `POST /touch` with the URL's recognised parameters (`url_params`).
//!
//! On a same-origin deployment the script-tag loader does not download the tracker for a landing
//! page (its JavaScript and its WebAssembly are most of what a working page costs): it hands the
//! creator's parameters to the proxy instead. The proxy applies the core's capture rules natively
//! ([`salebeacon::tracker::capture_pairs`], the function the browser's `visit` module calls) to
//! them and to the attribution this browser's cookies already hold, and sets the tracker's own
//! cookies (`sb_aff`, `sb_vid`: script-readable, so the tracker on a later page reads them as if
//! it had written them) and the proxy's HttpOnly copies (`sb_aff_h`, `sb_vid_h`). The loader
//! decides only *whether* there is work; what a parameter is worth is decided here, by the core.
//!
//! The cookie domain is the one the tracker would use: the operator's `cookie_domain`, else the
//! page's explicit `data-cookie-domain` (within the request's host), else the registrable domain
//! of the host (what the tracker's `cookieDomain: "auto"` finds by probing). The options arrive
//! as the loader's data-* attributes are written (`"60"`, `"auto"`), so the loader carries no
//! code to convert them; a value the tracker would refuse is refused here too (400), and the
//! loader then starts the tracker, whose error names it.

use super::cookies;
use crate::config::ProxyConfig;
use crate::error::AppError;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ring::rand::SecureRandom;
use salebeacon::attribution::{Model, MAX_WINDOW_DAYS, MIN_WINDOW_DAYS};
use salebeacon::contract::{AFF_COOKIE, AFF_COOKIE_HTTP, VID_COOKIE, VID_COOKIE_HTTP};
use salebeacon::time::Timestamp;
use salebeacon::Issue;
use serde_json::{Map, Value};

/// The body field that makes a `POST /touch` a capture at the edge.
pub const FIELD: &str = "url_params";

/// What `POST /touch` answers to a capture at the edge.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct EdgeCapture {
    /// The attribution kept (encoded, the `sb_aff` value), or null.
    pub aff: Option<String>,
    /// The visitor id (UUID v4), the stored one or a new one.
    pub vid: String,
    /// Every recognised parameter present, valid or not (the loader removes them for `cleanUrl`).
    pub present: Vec<String>,
    /// Why a value was ignored, one line each (the loader prints them on the console).
    pub warnings: Vec<String>,
}

/// A capture request, checked.
struct Request {
    pairs: Vec<(String, String)>,
    model: Model,
    window_days: u32,
    domain: Option<String>,
}

/// Reads the body's fields; every bad one is an issue.
fn parse(body: &Map<String, Value>, default_window: u32) -> Result<Request, Vec<Issue>> {
    let mut issues = Vec::new();
    let mut pairs = Vec::new();
    let pair = |v: &Value| match v.as_array().map(Vec::as_slice) {
        Some([Value::String(k), Value::String(v)]) => Some((k.clone(), v.clone())),
        _ => None,
    };
    match body.get(FIELD).and_then(Value::as_array) {
        Some(list) => match list.iter().map(pair).collect::<Option<Vec<_>>>() {
            Some(p) => pairs = p,
            None => issues.push(Issue::new(FIELD, "each item must be a [name, value] pair of strings")),
        },
        None => issues.push(Issue::new(
            FIELD,
            "must be a list of [name, value] pairs (the URL's recognised parameters, in priority order)",
        )),
    }
    let model = match body.get("model") {
        None | Some(Value::Null) => Model::default(),
        Some(v) => v.as_str().and_then(Model::parse).unwrap_or_else(|| {
            issues.push(Issue::new(
                "model",
                "must be \"last_click\" or \"first_click\"",
            ));
            Model::default()
        }),
    };
    let window_days = match body.get("window_days") {
        None | Some(Value::Null) => default_window,
        // A number, or its digits as text: the loader sends `data-window-days` as written.
        Some(v) => match v
            .as_u64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            .and_then(|n| u32::try_from(n).ok())
        {
            Some(n) if (MIN_WINDOW_DAYS..=MAX_WINDOW_DAYS).contains(&n) => n,
            _ => {
                issues.push(Issue::new(
                    "window_days",
                    format!("must be a whole number of days from {MIN_WINDOW_DAYS} to {MAX_WINDOW_DAYS}"),
                ));
                default_window
            }
        },
    };
    let domain = match body.get("domain") {
        None | Some(Value::Null) => None,
        // `"auto"` (the loader's `data-cookie-domain` as written): the host's registrable domain.
        Some(Value::String(s)) if s == "auto" => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            issues.push(Issue::new("domain", "must be a string"));
            None
        }
    };
    for other in ["aff", "vid"] {
        if body.get(other).is_some_and(|v| !v.is_null()) {
            issues.push(Issue::new(
                other,
                format!("is not taken with {FIELD}: the proxy captures and chooses it"),
            ));
        }
    }
    if issues.is_empty() {
        Ok(Request {
            pairs,
            model,
            window_days,
            domain,
        })
    } else {
        Err(issues)
    }
}

/// Captures, sets the cookies and answers [`EdgeCapture`]; `host` is the request's host, `secure`
/// whether the cookies carry `Secure`.
pub fn capture(
    config: &ProxyConfig,
    headers: &HeaderMap,
    body: &Map<String, Value>,
    host: &str,
    secure: bool,
    now: Timestamp,
) -> Result<Response, AppError> {
    let req = parse(body, config.window_days).map_err(|issues| AppError::Unusable {
        message: "invalid capture".into(),
        issues,
    })?;
    let found = cookies::read(headers, req.window_days, now);
    let out = salebeacon::tracker::capture_pairs(
        &req.pairs,
        found.attribution,
        req.model,
        req.window_days,
        now.millis(),
    );
    let vid = match found.visitor_id {
        Some(v) => v,
        None => {
            let mut random = [0u8; 16];
            ring::rand::SystemRandom::new()
                .fill(&mut random)
                .map_err(|_| AppError::Internal("no randomness for a visitor id".into()))?;
            salebeacon::tracker::visitor("", &random)
        }
    };
    let asked = req.domain.or_else(|| cookies::registrable_domain(host));
    let domain =
        cookies::cookie_domain_for(config.cookie_domain.as_deref(), asked.as_deref(), host);
    let vid_until = now.plus_days(config.visitor_cookie_days);
    let mut set = vec![
        (VID_COOKIE, vid.clone(), vid_until, false),
        (VID_COOKIE_HTTP, vid.clone(), vid_until, true),
    ];
    if let Some(a) = &out.kept {
        let until = Timestamp::from_millis(a.expires_at(req.window_days));
        set.push((AFF_COOKIE, a.encode(), until, false));
        set.push((AFF_COOKIE_HTTP, a.encode(), until, true));
    }
    let mut r = Json(EdgeCapture {
        aff: out.kept.as_ref().map(|a| a.encode()),
        vid,
        present: out.present,
        warnings: out.warnings,
    })
    .into_response();
    for (name, value, until, http_only) in set {
        let header = cookies::set_cookie(
            name,
            value,
            until,
            now,
            secure,
            domain.as_deref(),
            http_only,
        )
        .ok_or_else(|| AppError::Internal(format!("cannot write the {name} cookie")))?;
        r.headers_mut().append(header::SET_COOKIE, header);
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}
