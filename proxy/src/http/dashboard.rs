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
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

const INDEX: &str = include_str!("../../dashboard/index.html");
const SCRIPT: &str = include_str!("../../dashboard/app.js");
const STYLE: &str = include_str!("../../dashboard/app.css");

/// The dashboard's Content Security Policy.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                       connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
                       base-uri 'none'";

/// The dashboard's routes, relative to the base path (not behind the admin token: the sign-in
/// page must load without it). Sign-in attempts go through the per-address rate limit, like the
/// browser endpoints.
pub fn routes(state: AppState) -> OpenApiRouter<AppState> {
    let sign_in = OpenApiRouter::new()
        .routes(routes!(session::sign_in))
        .route_layer(axum::middleware::from_fn_with_state(state, limit));
    OpenApiRouter::new()
        .routes(routes!(home))
        .routes(routes!(page))
        .routes(routes!(script))
        .routes(routes!(style))
        .routes(routes!(session::current, session::sign_out))
        .merge(sign_in)
}

/// `{base}/admin` → `{base}/admin/` (the page's relative links need the slash).
#[utoipa::path(
    get,
    path = "/admin",
    tag = "dashboard",
    summary = "The dashboard (redirects to /admin/)",
    responses((status = 308, description = "To /admin/"))
)]
async fn home(uri: axum::extract::OriginalUri) -> Redirect {
    Redirect::permanent(&format!("{}/", uri.path().trim_end_matches('/')))
}

#[utoipa::path(
    get,
    path = "/admin/",
    tag = "dashboard",
    summary = "The dashboard's page",
    responses((status = 200, description = "HTML", body = String, content_type = "text/html"))
)]
async fn page() -> Response {
    file(INDEX, "text/html; charset=utf-8")
}

#[utoipa::path(
    get,
    path = "/admin/app.js",
    tag = "dashboard",
    summary = "The dashboard's script",
    responses((status = 200, description = "JavaScript", body = String, content_type = "text/javascript"))
)]
async fn script() -> Response {
    file(SCRIPT, "text/javascript; charset=utf-8")
}

#[utoipa::path(
    get,
    path = "/admin/app.css",
    tag = "dashboard",
    summary = "The dashboard's stylesheet",
    responses((status = 200, description = "CSS", body = String, content_type = "text/css"))
)]
async fn style() -> Response {
    file(STYLE, "text/css; charset=utf-8")
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
