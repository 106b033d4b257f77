//! Origins and clients: which pages may call the browser endpoints, and who is calling.
//!
//! A cross-origin call is served, with `Access-Control-Allow-Origin` and credentials, only for a
//! configured origin; a same-origin call needs nothing; a call from any other origin is refused
//! with `403` and no CORS headers (so `sendBeacon` from a foreign page cannot plant sales either:
//! a `text/plain` POST needs no preflight, so CORS alone would not stop it). The client address
//! comes from `X-Forwarded-For` only when `trust_forwarded_for` is configured (otherwise anyone
//! could pick their own rate-limit bucket).

use crate::config::ProxyConfig;
use crate::error::AppError;
use crate::state::AppState;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

/// Where a request comes from, as far as CORS is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginCheck {
    /// No `Origin` header: not a cross-origin browser call (curl, an `<img>`, a navigation).
    Absent,
    /// The page is on the proxy's own origin.
    SameOrigin,
    /// A configured origin: answer with CORS headers for it.
    Allowed(HeaderValue),
    /// Anything else.
    Denied,
}

/// Classifies the request's `Origin`.
pub fn check_origin(headers: &HeaderMap, config: &ProxyConfig) -> OriginCheck {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return OriginCheck::Absent;
    };
    let Ok(text) = origin.to_str() else {
        return OriginCheck::Denied;
    };
    let lowered = text.trim().to_ascii_lowercase();
    if config.allowed_origins.contains(&lowered) {
        return OriginCheck::Allowed(origin.clone());
    }
    if headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"same-origin")
    {
        return OriginCheck::SameOrigin;
    }
    let authority = lowered
        .strip_prefix("https://")
        .or_else(|| lowered.strip_prefix("http://"));
    let hosts = [
        Some(header::HOST.as_str()),
        config.trust_forwarded_for.then_some("x-forwarded-host"),
    ];
    if let Some(authority) = authority {
        for name in hosts.into_iter().flatten() {
            let same = headers
                .get(name)
                .and_then(|h| h.to_str().ok())
                .is_some_and(|h| h.trim().eq_ignore_ascii_case(authority));
            if same {
                return OriginCheck::SameOrigin;
            }
        }
    }
    OriginCheck::Denied
}

/// Middleware for `/sales` and `/touch`: origin policy, CORS preflight and headers, rate limit.
pub async fn browser_guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let config = &state.config;
    let origin = check_origin(req.headers(), config);
    if req.method() == Method::OPTIONS {
        return match origin {
            OriginCheck::Allowed(o) => {
                let mut r = StatusCode::NO_CONTENT.into_response();
                let h = r.headers_mut();
                add_cors(h, o);
                h.insert(
                    header::ACCESS_CONTROL_ALLOW_METHODS,
                    HeaderValue::from_static("POST, DELETE, OPTIONS"),
                );
                h.insert(
                    header::ACCESS_CONTROL_ALLOW_HEADERS,
                    HeaderValue::from_static("content-type"),
                );
                h.insert(
                    header::ACCESS_CONTROL_MAX_AGE,
                    HeaderValue::from_static("600"),
                );
                r
            }
            OriginCheck::Denied => {
                let mut r = AppError::OriginNotAllowed.into_response();
                r.headers_mut()
                    .insert(header::VARY, HeaderValue::from_static("Origin"));
                r
            }
            OriginCheck::Absent | OriginCheck::SameOrigin => StatusCode::NO_CONTENT.into_response(),
        };
    }
    let mut response = if origin == OriginCheck::Denied {
        tracing::warn!(origin = req.headers().get(header::ORIGIN).and_then(|o| o.to_str().ok()).unwrap_or("(not text)"), path = %req.uri().path(), "refused a call from an origin that is not allowed");
        AppError::OriginNotAllowed.into_response()
    } else {
        let ip = client_ip(&req, config);
        match state.limiter.check(ip, Instant::now()) {
            Err(retry_after_secs) => {
                tracing::warn!(%ip, "rate limited");
                AppError::RateLimited { retry_after_secs }.into_response()
            }
            Ok(()) => next.run(req).await,
        }
    };
    let h = response.headers_mut();
    h.insert(header::VARY, HeaderValue::from_static("Origin"));
    if let OriginCheck::Allowed(o) = origin {
        add_cors(h, o);
    }
    response
}

fn add_cors(h: &mut HeaderMap, origin: HeaderValue) {
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    h.insert(
        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
        HeaderValue::from_static("true"),
    );
    h.insert(header::VARY, HeaderValue::from_static("Origin"));
}

/// The client's address: the TCP peer, or with `trust_forwarded_for` the last (rightmost)
/// address in `X-Forwarded-For`, which is the one the trusted reverse proxy appended.
pub fn client_ip(req: &Request, config: &ProxyConfig) -> IpAddr {
    if config.trust_forwarded_for {
        let forwarded = req
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|s| s.trim().parse::<IpAddr>().ok())
            .next_back();
        if let Some(ip) = forwarded {
            return ip;
        }
    }
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

/// Whether the request reached the reverse proxy over https.
pub fn is_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}
