//! Every documented route in one place: the router and the OpenAPI document are built together
//! here from the handlers' `#[utoipa::path]` descriptions (see [`crate::openapi`]), so a route
//! cannot exist without its description or the other way round.
//!
//! Paths are relative to the base path (`/sales`, `/admin/sales`); `lib.rs` nests the router under
//! `base_path` and the document names the base path as its server. Each group keeps its own
//! guard: the browser trust guard on `/sales` and `/touch`, the admin token (or session) on the
//! admin API, the sign-in rate limit on the dashboard's sign-in. The tracker's static files and the
//! demo site (`files.rs`) are files, not API, and stay outside the document.

use super::{admin, browser, dashboard, ops, pixel, reconcile};
use crate::state::AppState;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use std::sync::Arc;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::Modify;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "salebeacon-proxy",
        description = "The merchant's proxy between the salebeacon tracker and Growi's affiliate \
            sales API: browser intake (sales, attribution cookies, pixel), operations, the admin \
            API and the dashboard. Wire JSON follows Growi's snake_case; amounts are integer \
            minor units.",
        license(name = "MIT OR Apache-2.0")
    ),
    modifiers(&Security),
    tags(
        (name = "browser", description = "What pages call (the tracker, the pixel)"),
        (name = "operations", description = "Health and metrics"),
        (name = "admin", description = "The merchant's back office (admin token or dashboard session)"),
        (name = "dashboard", description = "The dashboard's page and sign-in"),
    )
)]
struct ApiDoc;

/// Security schemes: the admin token as a bearer, or the dashboard's session cookie.
pub struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("SALEBEACON_ADMIN_TOKEN"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "dashboard_session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                super::session::COOKIE,
                "The dashboard's session (POST /admin/session); changes also need X-CSRF-Token",
            ))),
        );
    }
}

/// The document as served, built once.
#[derive(Clone)]
pub struct Document(pub Arc<String>);

#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    summary = "This document",
    responses((status = 200, description = "OpenAPI 3.1", body = Object, content_type = "application/json"))
)]
async fn openapi(Extension(doc): Extension<Document>) -> Response {
    let mut r = doc.0.as_str().to_owned().into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// The documented routes and their document, with `base` as the document's server.
pub fn documented(state: &AppState, base: &str) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let browser = OpenApiRouter::new()
        .routes(routes!(browser::post_sale, browser::preflight_sales))
        .routes(routes!(
            browser::touch,
            browser::touched,
            browser::forget,
            browser::preflight_touch
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::trust::browser_guard,
        ));
    let (router, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(browser)
        .routes(routes!(pixel::pixel))
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::metrics))
        .routes(routes!(openapi))
        .merge(admin::routes(state.clone()))
        .merge(reconcile::routes(state.clone()))
        .merge(dashboard::routes(state.clone()))
        .split_for_parts();
    let server = if base.is_empty() { "/" } else { base };
    doc.servers = Some(vec![utoipa::openapi::Server::new(server)]);
    (router, doc)
}

/// The documented routes under `base`, serving their document at `{base}/openapi.json`.
pub fn router(state: &AppState, base: &str) -> Router<AppState> {
    let (router, doc) = documented(state, base);
    let json = doc
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\":\"the document did not serialize: {e}\"}}"));
    let router = router.layer(Extension(Document(Arc::new(json))));
    if base.is_empty() {
        router
    } else {
        Router::new().nest(base, router)
    }
}
