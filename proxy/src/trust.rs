//! The trust policy for browser-facing endpoints: a browser is not trusted.
//!
//! Four independent checks, each small enough to read in one sitting:
//! - **Origin / CORS** ([`check_origin`], [`browser_guard`]): a cross-origin call is served, with
//!   `Access-Control-Allow-Origin` and credentials, only for configured origins; a same-origin
//!   call needs nothing; a call from any other origin is refused with `403` and no CORS headers
//!   (so `sendBeacon` from a foreign page cannot plant sales either).
//! - **Per-IP rate limit** ([`RateLimiter`]): a token bucket per client address; the address comes
//!   from `X-Forwarded-For` only when `trust_forwarded_for` is configured (otherwise anyone could
//!   pick their own bucket).
//! - **Signed order token** ([`sign_order_token`], [`verify_order_token`]): the merchant's backend
//!   signs `order_id`, `total`, `currency` and an expiry with a shared secret; a forged or altered
//!   sale then fails, because a page cannot mint a token.
//! - **Constant-time comparison** ([`ct_eq`]) for the admin token.
//!
//! The body limit is axum's `DefaultBodyLimit` (see `api.rs`), and the server-side-only fields
//! (`commission`, `due_at`, `status`) are refused by the core's `Origin::Browser` validation.

use crate::config::{ProxyConfig, RateLimit};
use crate::error::AppError;
use crate::AppState;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ring::{digest, hmac};
use salebeacon::{Issue, Sale};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Mutex;
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
                    HeaderValue::from_static("POST, OPTIONS"),
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
        tracing::warn!(origin = ?req.headers().get(header::ORIGIN), path = %req.uri().path(), "refused a call from an origin that is not allowed");
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

/// Per-IP token buckets.
#[derive(Debug)]
pub struct RateLimiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

/// Above this many tracked addresses, full buckets are forgotten.
const MAX_TRACKED: usize = 100_000;

impl RateLimiter {
    pub fn new(limit: RateLimit) -> Self {
        RateLimiter {
            limit,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `ip`, or says how many seconds until one is available.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), u64> {
        if self.limit.per_minute == 0 {
            return Ok(());
        }
        let rate = f64::from(self.limit.per_minute) / 60.0;
        let burst = f64::from(self.limit.burst);
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        if buckets.len() >= MAX_TRACKED {
            buckets.retain(|_, (tokens, last)| {
                *tokens + now.saturating_duration_since(*last).as_secs_f64() * rate < burst
            });
        }
        let (tokens, last) = buckets.entry(ip).or_insert((burst, now));
        *tokens = (*tokens + now.saturating_duration_since(*last).as_secs_f64() * rate).min(burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / rate).ceil().max(1.0) as u64)
        }
    }
}

/// The text an order token signs: `"{order_id}\n{total}\n{currency}\n{expiry}"`, `total` empty
/// when the sale has none, `currency` lower case.
pub fn token_message(order_id: &str, total: Option<u64>, currency: &str, expiry: u64) -> String {
    let total = total.map(|t| t.to_string()).unwrap_or_default();
    format!(
        "{order_id}\n{total}\n{}\n{expiry}",
        currency.trim().to_ascii_lowercase()
    )
}

/// Mints an order token: `<expiry unix seconds>.<hex HMAC-SHA256(secret, token_message)>`.
pub fn sign_order_token(
    secret: &[u8],
    order_id: &str,
    total: Option<u64>,
    currency: &str,
    expiry: u64,
) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let tag = hmac::sign(
        &key,
        token_message(order_id, total, currency, expiry).as_bytes(),
    );
    format!("{expiry}.{}", hex(tag.as_ref()))
}

/// Checks a token against a validated sale at `now` (Unix seconds). The error is the issue to
/// report on `order_token`.
pub fn verify_order_token(secret: &[u8], token: &str, sale: &Sale, now: u64) -> Result<(), Issue> {
    let malformed = || {
        Issue::new(
            "order_token",
            "is malformed: expected <expiry>.<64 hex digits>",
        )
    };
    let (expiry, sig) = token.trim().split_once('.').ok_or_else(malformed)?;
    if expiry.is_empty() || expiry.len() > 12 || !expiry.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed());
    }
    let expiry_secs: u64 = expiry.parse().map_err(|_| malformed())?;
    let sig = unhex(sig).filter(|s| s.len() == 32).ok_or_else(malformed)?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let message = token_message(&sale.order_id, sale.total, &sale.currency, expiry_secs);
    if hmac::verify(&key, message.as_bytes(), &sig).is_err() {
        return Err(Issue::new(
            "order_token",
            "does not match this order (order_id, total and currency must be exactly what the merchant's backend signed)",
        ));
    }
    if expiry_secs < now {
        return Err(Issue::new(
            "order_token",
            "has expired: the merchant's backend must mint a fresh one",
        ));
    }
    Ok(())
}

/// Equality in time that does not depend on where the inputs differ (or their lengths: both are
/// hashed first).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    let (da, db) = (
        digest::digest(&digest::SHA256, a),
        digest::digest(&digest::SHA256, b),
    );
    da.as_ref()
        .iter()
        .zip(db.as_ref())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    s
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let val = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    s.as_bytes()
        .chunks(2)
        .map(|p| Some(val(p[0])? << 4 | val(p[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn sale(total: Option<u64>) -> Sale {
        let input: salebeacon::SaleInput = serde_json::from_value(serde_json::json!({
            "order_id": "ORD-1", "total": total, "subtotal": 100, "currency": "usd",
            "campaign_affiliate_id": "creator42"
        }))
        .unwrap();
        input.validate(salebeacon::Origin::Browser).unwrap()
    }

    #[test]
    fn tokens_round_trip_and_fail_when_altered() {
        let secret = b"0123456789abcdef0123";
        let t = sign_order_token(secret, "ORD-1", Some(12999), "USD", 2_000_000_000);
        assert!(t.starts_with("2000000000."));
        assert_eq!(t.len(), 11 + 64);
        assert_eq!(
            verify_order_token(secret, &t, &sale(Some(12999)), 1_900_000_000),
            Ok(())
        );
        assert!(verify_order_token(secret, &t, &sale(Some(1)), 1_900_000_000).is_err());
        assert!(verify_order_token(b"another secret!!", &t, &sale(Some(12999)), 0).is_err());
        let expired = verify_order_token(secret, &t, &sale(Some(12999)), 2_000_000_001);
        assert!(expired.unwrap_err().message.contains("expired"));
        let none = sign_order_token(secret, "ORD-1", None, "usd", 2_000_000_000);
        assert_eq!(verify_order_token(secret, &none, &sale(None), 0), Ok(()));
        for bad in ["", "x", "1.zz", "1.abcd", ".00"] {
            assert!(
                verify_order_token(secret, bad, &sale(None), 0).is_err(),
                "{bad}"
            );
        }
        assert_eq!(
            token_message("A", Some(5), "EUR", 9),
            "A\n5\neur\n9",
            "the documented message format"
        );
    }

    #[test]
    fn constant_time_eq() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"abcd"));
    }

    #[test]
    fn buckets_refill() {
        let l = RateLimiter::new(RateLimit {
            per_minute: 60,
            burst: 2,
        });
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let t0 = Instant::now();
        assert!(l.check(ip, t0).is_ok());
        assert!(l.check(ip, t0).is_ok());
        assert_eq!(l.check(ip, t0), Err(1));
        assert!(l.check(ip, t0 + Duration::from_millis(1100)).is_ok());
        let other = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        assert!(l.check(other, t0).is_ok());
    }
}
