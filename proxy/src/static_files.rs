//! The tracker's own files (`GET {base}/salebeacon.js`, `{base}/*.wasm`), served from the shop's
//! origin so the embed needs no third-party host, no CORS and no CSP exception.
//!
//! Not built yet: a later issue fills [`routes`] (right MIME types, `application/wasm`, long
//! caching for hashed names, a short one for the loader). It is merged into the app in
//! [`crate::app`] after the API routes and outside the browser trust guard, since a script or
//! module GET carries no sale.

use crate::AppState;
use axum::Router;

/// The static-file routes under `base` (none yet).
pub fn routes(_base: &str) -> Router<AppState> {
    Router::new()
}
