//! The merchant's dashboard at `{base}/admin/`: three files compiled into the binary
//! (`proxy/dashboard/`: HTML, CSS, a small script; no build step, no third-party assets) and
//! the sign-in routes of [`super::session`].
//!
//! The files are public (they hold no data); everything they show comes from the admin API, which
//! needs the session cookie. Every response here carries a strict Content Security Policy (only
//! this origin's script, style and fetches; no inline code, no frames, no form posts elsewhere),
//! `X-Frame-Options: DENY`, `nosniff` and `no-referrer`, and the page is never cached.

use super::session;
use crate::state::AppState;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

const INDEX: &str = include_str!("../../dashboard/index.html");
const SCRIPT: &str = include_str!("../../dashboard/app.js");
const STYLE: &str = include_str!("../../dashboard/app.css");

/// The dashboard's Content Security Policy.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                       connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
                       base-uri 'none'";

/// The dashboard's routes (not behind the admin token: the sign-in page must load without it).
/// Sign-in attempts go through the per-address rate limit, like the browser endpoints.
pub fn routes(base: &str, state: AppState) -> Router<AppState> {
    let home = format!("{base}/admin/");
    let sign_in = Router::new()
        .route(
            &format!("{base}/admin/session"),
            axum::routing::post(session::sign_in),
        )
        .route_layer(axum::middleware::from_fn_with_state(state, limit));
    Router::new()
        .route(
            &format!("{base}/admin"),
            get(move || async move { Redirect::permanent(&home) }),
        )
        .route(
            &format!("{base}/admin/"),
            get(|| async { file(INDEX, "text/html; charset=utf-8") }),
        )
        .route(
            &format!("{base}/admin/app.js"),
            get(|| async { file(SCRIPT, "text/javascript; charset=utf-8") }),
        )
        .route(
            &format!("{base}/admin/app.css"),
            get(|| async { file(STYLE, "text/css; charset=utf-8") }),
        )
        .route(
            &format!("{base}/admin/session"),
            get(session::current).delete(session::sign_out),
        )
        .merge(sign_in)
}

async fn limit(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let ip = crate::trust::client_ip(&req, &state.config);
    match state.limiter.check(ip, std::time::Instant::now()) {
        Ok(()) => next.run(req).await,
        Err(retry_after_secs) => {
            tracing::warn!(%ip, "dashboard sign-in rate limited");
            crate::error::AppError::RateLimited { retry_after_secs }.into_response()
        }
    }
}

fn file(body: &'static str, content_type: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    secure_headers(h);
    r
}

/// The headers every dashboard file carries.
pub fn secure_headers(h: &mut axum::http::HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
}
