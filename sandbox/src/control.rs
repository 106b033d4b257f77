//! The control API under `/_sandbox/`: change faults, read the request log, reset.
//!
//! It is a developer tool with **no authentication**, deliberately outside the API path so that
//! auth, rate limits and faults never apply to it (a test must be able to switch `down` off
//! again while the API is "down"). Never expose a sandbox port beyond localhost or a test network.
//! The same operations exist in-process on [`crate::RunningSandbox`] and [`SandboxState`].
//!
//! Its reads (`GET`) answer any origin (`Access-Control-Allow-Origin: *`, no credentials), so a
//! page on another port, such as the demo storefront's sales page, can show what "Growi" holds.

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::faults::Faults;
use crate::sale::SandboxSale;
use crate::state::{RecordedRequest, SandboxState};

/// The control routes (merged into [`crate::app`]).
pub fn routes() -> Router<SandboxState> {
    let reads = tower_http::cors::CorsLayer::new()
        .allow_origin(tower_http::cors::Any)
        .allow_methods([axum::http::Method::GET]);
    Router::new()
        .route("/_sandbox/faults", get(get_faults).put(put_faults))
        .route("/_sandbox/requests", get(get_requests))
        .route("/_sandbox/sales", get(get_sales))
        .route("/_sandbox/reset", post(reset))
        .layer(reads)
}

async fn get_faults(State(state): State<SandboxState>) -> Json<Faults> {
    Json(state.faults())
}

/// Replaces the faults; fields left out take their defaults (off).
async fn put_faults(
    State(state): State<SandboxState>,
    body: Bytes,
) -> Result<Json<Faults>, ApiError> {
    let faults: Faults = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("Malformed faults JSON: {e}")))?;
    faults.validate().map_err(ApiError::Unprocessable)?;
    state.set_faults(faults);
    Ok(Json(state.faults()))
}

async fn get_requests(State(state): State<SandboxState>) -> Json<Vec<RecordedRequest>> {
    Json(state.requests())
}

async fn get_sales(State(state): State<SandboxState>) -> Json<Vec<SandboxSale>> {
    Json(state.sales())
}

async fn reset(State(state): State<SandboxState>) -> Result<Json<Value>, ApiError> {
    state.reset()?;
    Ok(Json(json!({ "reset": true })))
}
