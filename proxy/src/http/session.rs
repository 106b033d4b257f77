//! The dashboard's sign-in: the admin token exchanged once for a session cookie, and the CSRF
//! token that every state-changing request of a session must carry.
//!
//! - `POST {base}/admin/session` with `{"token": "<SALEBEACON_ADMIN_TOKEN>"}` sets `sb_admin`:
//!   HttpOnly (no script reads it), `SameSite=Strict` (no other site's page sends it),
//!   `Path={base}/admin`, `Secure` as the `/touch` cookies are, for eight hours. The token itself
//!   is never stored in the browser (not in the URL, not in localStorage).
//! - `GET {base}/admin/session` answers whether the browser is signed in, with the session's CSRF
//!   token and expiry, which the dashboard's script sends back as `X-CSRF-Token`.
//! - `DELETE {base}/admin/session` signs out (clears the cookie).
//!
//! The session is **stateless**: the cookie is `<expiry>.<nonce>.<mac>`, an HMAC-SHA256 under a key
//! derived from the admin token. Any instance that shares the admin token verifies it (several
//! proxies behind one load balancer need no shared session store), and changing the admin token
//! ends every session. The CSRF token is another HMAC of the cookie, so it needs no storage
//! either, and a page that cannot read the cookie cannot compute it.
//!
//! A cookie-authenticated request that changes something must carry the CSRF token and, when the
//! browser says where it comes from (`Origin`, `Sec-Fetch-Site`), come from this origin. Bearer
//! requests (scripts, the CLI) are not cookie-borne, so CSRF does not apply to them.

use super::cookies;
use crate::clock::now_ms;
use crate::config::SecureCookies;
use crate::error::AppError;
use crate::state::AppState;
use crate::trust::{ct_eq, is_https};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ring::hmac;
use serde::Deserialize;
use serde_json::json;

/// The session cookie's name.
pub const COOKIE: &str = "sb_admin";
/// The header that carries the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// How long a session lasts.
pub const LIFETIME_SECS: u64 = 8 * 3600;

/// A verified session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub expires_at: u64,
    csrf: String,
}

fn key(admin_token: &str) -> hmac::Key {
    // A key of its own: a session MAC is never an order token's or anything else's.
    let derived = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, admin_token.as_bytes()),
        b"salebeacon admin session v1",
    );
    hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new cookie value, valid until `now + LIFETIME_SECS`.
pub fn mint(admin_token: &str, now_secs: u64) -> String {
    let mut nonce = [0u8; 16];
    let random = ring::rand::SystemRandom::new();
    // If the system's randomness fails, the nonce stays zero: the MAC still binds the expiry.
    let _ = ring::rand::SecureRandom::fill(&random, &mut nonce);
    let payload = format!("{}.{}", now_secs + LIFETIME_SECS, hex(&nonce));
    let mac = hmac::sign(&key(admin_token), payload.as_bytes());
    format!("{payload}.{}", hex(mac.as_ref()))
}

/// The session a cookie value stands for, if it is genuine and unexpired.
pub fn verify(admin_token: &str, cookie: &str, now_secs: u64) -> Option<Session> {
    let (payload, mac) = cookie.rsplit_once('.')?;
    let (expiry, nonce) = payload.split_once('.')?;
    let expires_at: u64 = expiry.parse().ok()?;
    if nonce.len() != 32 || !nonce.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let key = key(admin_token);
    let expected = hex(hmac::sign(&key, payload.as_bytes()).as_ref());
    if !ct_eq(expected.as_bytes(), mac.as_bytes()) || expires_at <= now_secs {
        return None;
    }
    let csrf = hex(hmac::sign(&key, format!("csrf.{cookie}").as_bytes()).as_ref());
    Some(Session { expires_at, csrf })
}

/// The session of a request, if its cookie holds one.
pub fn of_request(state: &AppState, headers: &HeaderMap) -> Option<Session> {
    let token = state.config.admin_token.as_ref()?;
    let cookie = cookies::get(headers, COOKIE)?;
    verify(token.expose(), cookie, now_secs())
}

fn now_secs() -> u64 {
    u64::try_from(now_ms() / 1000).unwrap_or(0)
}

/// Why a cookie-authenticated request that changes something is refused (CSRF defence), if it
/// is.
pub fn csrf_refusal(session: &Session, method: &Method, headers: &HeaderMap) -> Option<AppError> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return None;
    }
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if site != "same-origin" {
            return Some(AppError::Forbidden(
                "a cross-site request cannot change anything here".into(),
            ));
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let host = headers
            .get("x-forwarded-host")
            .or_else(|| headers.get(header::HOST))
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let origin_host = origin.split_once("://").map_or("", |(_, h)| h);
        if origin == "null" || !origin_host.eq_ignore_ascii_case(host) {
            return Some(AppError::Forbidden(
                "a request from another origin cannot change anything here".into(),
            ));
        }
    }
    let given = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
    match given {
        Some(t) if ct_eq(t.as_bytes(), session.csrf.as_bytes()) => None,
        _ => Some(AppError::Forbidden(
            "missing or wrong X-CSRF-Token (sign in again if this persists)".into(),
        )),
    }
}

fn secure(state: &AppState, headers: &HeaderMap) -> bool {
    match state.config.secure_cookies {
        SecureCookies::Always => true,
        SecureCookies::Never => false,
        SecureCookies::Auto => is_https(headers),
    }
}

fn set_cookie(
    state: &AppState,
    headers: &HeaderMap,
    value: &str,
    max_age: u64,
) -> Option<HeaderValue> {
    let path = format!("{}/admin", state.config.base_path);
    let c = cookie::Cookie::build((COOKIE, value.to_owned()))
        .path(path)
        .http_only(true)
        .same_site(cookie::SameSite::Strict)
        .secure(secure(state, headers))
        .max_age(cookie::time::Duration::seconds(
            i64::try_from(max_age).unwrap_or(0),
        ));
    HeaderValue::from_str(&c.build().to_string()).ok()
}

#[derive(Deserialize)]
struct SignIn {
    token: String,
}

/// `POST {base}/admin/session`: the admin token in, a session cookie out.
pub async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    let Some(expected) = &state.config.admin_token else {
        return Err(AppError::AdminDisabled);
    };
    // A sign-in is only ever made by the dashboard's own page (login CSRF would sign a victim
    // in to the attacker's session).
    if headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|s| s != "same-origin")
    {
        return Err(AppError::Forbidden(
            "sign in from the dashboard's own page".into(),
        ));
    }
    let input: SignIn = super::body::parse_json_body(&headers, body, 4096)?;
    if !ct_eq(input.token.trim().as_bytes(), expected.expose().as_bytes()) {
        tracing::warn!("dashboard sign-in with a wrong token");
        return Err(AppError::Unauthorized);
    }
    let value = mint(expected.expose(), now_secs());
    let session = verify(expected.expose(), &value, now_secs())
        .ok_or_else(|| AppError::Internal("a fresh session did not verify".into()))?;
    let cookie = set_cookie(&state, &headers, &value, LIFETIME_SECS)
        .ok_or_else(|| AppError::Internal("session cookie".into()))?;
    tracing::info!("dashboard session started");
    let mut r =
        Json(json!({"csrf": session.csrf, "expires_at": session.expires_at})).into_response();
    r.headers_mut().insert(header::SET_COOKIE, cookie);
    Ok(r)
}

/// `GET {base}/admin/session`: whether this browser is signed in, and if so the session's CSRF
/// token (`{"signed_in": false}` otherwise: the page asks before it knows, and a 401 would be a
/// console error on every visit).
pub async fn current(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    if state.config.admin_token.is_none() {
        return Err(AppError::AdminDisabled);
    }
    let body = match of_request(&state, &headers) {
        Some(session) => {
            json!({"signed_in": true, "csrf": session.csrf, "expires_at": session.expires_at})
        }
        None => json!({"signed_in": false}),
    };
    let mut r = Json(body).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// `DELETE {base}/admin/session`: signs out (the cookie is cleared; CSRF-checked, so another site
/// cannot sign the merchant out either).
pub async fn sign_out(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    if let Some(session) = of_request(&state, &headers) {
        if let Some(refusal) = csrf_refusal(&session, &method, &headers) {
            return Err(refusal);
        }
    }
    let mut r = StatusCode::NO_CONTENT.into_response();
    if let Some(cookie) = set_cookie(&state, &headers, "", 0) {
        r.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "admin-token-0123456789";

    #[test]
    fn a_session_verifies_until_it_expires_and_only_under_its_token() {
        let c = mint(TOKEN, 1_000);
        let s = verify(TOKEN, &c, 1_001).expect("fresh");
        assert_eq!(s.expires_at, 1_000 + LIFETIME_SECS);
        assert!(
            verify(TOKEN, &c, 1_000 + LIFETIME_SECS).is_none(),
            "expired"
        );
        assert!(verify("another-admin-token-456", &c, 1_001).is_none());
        // Any change to the value breaks it, the expiry above all.
        let later = c.replacen(&(1_000 + LIFETIME_SECS).to_string(), "99999999999", 1);
        assert!(verify(TOKEN, &later, 1_001).is_none());
        assert!(verify(TOKEN, "", 1_001).is_none());
        assert!(verify(TOKEN, "1.2.3", 1_001).is_none());
        // Two sessions differ (nonce), and so do their CSRF tokens.
        let d = mint(TOKEN, 1_000);
        assert_ne!(c, d);
        assert_ne!(s.csrf, verify(TOKEN, &d, 1_001).expect("fresh").csrf);
    }

    #[test]
    fn changes_need_the_csrf_token_and_this_origin() {
        let c = mint(TOKEN, 1_000);
        let s = verify(TOKEN, &c, 1_001).expect("fresh");
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("shop.example"));
        assert!(
            csrf_refusal(&s, &Method::GET, &h).is_none(),
            "reads are free"
        );
        assert!(csrf_refusal(&s, &Method::POST, &h).is_some(), "no token");
        h.insert(CSRF_HEADER, HeaderValue::from_str(&s.csrf).unwrap());
        assert!(csrf_refusal(&s, &Method::POST, &h).is_none());
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://shop.example"),
        );
        assert!(csrf_refusal(&s, &Method::PATCH, &h).is_none());
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(
            csrf_refusal(&s, &Method::POST, &h).is_some(),
            "another origin"
        );
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://shop.example"),
        );
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(csrf_refusal(&s, &Method::POST, &h).is_some(), "cross-site");
    }
}
