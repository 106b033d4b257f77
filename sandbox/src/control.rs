//! The control API under `/_sandbox/`: change faults, read the request log, reset, and put,
//! change or remove sales behind the API's back.
//!
//! It is a developer tool with **no authentication**, deliberately outside the API path so that
//! auth, rate limits and faults never apply to it (a test must be able to switch `down` off
//! again while the API is "down"). Never expose a sandbox port beyond localhost or a test network.
//! The same operations exist in-process on [`crate::RunningSandbox`] and [`SandboxState`].
//!
//! Its reads (`GET`) answer any origin (`Access-Control-Allow-Origin: *`, no credentials), so a
//! page on another port, such as the demo storefront's sales page, can show what "Growi" holds.
//!
//! The sale edits (`POST /_sandbox/sales`, `PATCH` and `DELETE /_sandbox/sales/{order_id}`) are
//! how a test makes "Growi" disagree with a client, as the real one can (a sale changed in
//! Growi's dashboard, a Shopify sale, a sale lost): they write the store directly, with none of
//! the API's rules (a cancelled sale can be changed, a status can be `refunded`, the platform can
//! be anything), no rate limit and no entry in the request log, so a client's pacing checks see
//! only the client's own requests. What they take is [`SaleInsert`] and [`SaleEdit`] (`edit.rs`); the same
//! operations exist on [`SandboxState`] and [`crate::RunningSandbox`].

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::edit::{SaleEdit, SaleInsert};
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
        .route("/_sandbox/sales", get(get_sales).post(post_sale))
        .route(
            "/_sandbox/sales/{order_id}",
            patch(patch_sale).delete(delete_sale),
        )
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

fn parse<T: serde::de::DeserializeOwned>(body: &Bytes, what: &str) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("Malformed {what} JSON: {e}")))
}

/// `POST /_sandbox/sales`: `201` with the sale; `422` if the order exists or a field is wrong.
async fn post_sale(
    State(state): State<SandboxState>,
    body: Bytes,
) -> Result<(StatusCode, Json<SandboxSale>), ApiError> {
    let insert: SaleInsert = parse(&body, "sale")?;
    Ok((StatusCode::CREATED, Json(state.insert_sale(insert)?)))
}

/// `PATCH /_sandbox/sales/{order_id}`: `200` with the changed sale; `404` if there is none.
async fn patch_sale(
    State(state): State<SandboxState>,
    Path(order_id): Path<String>,
    body: Bytes,
) -> Result<Json<SandboxSale>, ApiError> {
    let edit: SaleEdit = parse(&body, "sale edit")?;
    Ok(Json(state.edit_sale(&order_id, edit)?))
}

/// `DELETE /_sandbox/sales/{order_id}`: `200` with the removed sale; `404` if there is none.
async fn delete_sale(
    State(state): State<SandboxState>,
    Path(order_id): Path<String>,
) -> Result<Json<SandboxSale>, ApiError> {
    Ok(Json(state.delete_sale(&order_id)?))
}
