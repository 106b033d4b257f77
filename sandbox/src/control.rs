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
//! only the client's own requests. What they take is [`SaleInsert`] and [`SaleEdit`]; the same
//! operations exist on [`SandboxState`] and [`crate::RunningSandbox`].

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::faults::Faults;
use crate::sale::{SaleStatus, SandboxSale};
use crate::state::{RecordedRequest, SandboxState};
use crate::timefmt;

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

/// A sale put straight into the store (`POST /_sandbox/sales`): any platform, any status. It gets
/// the next Growi id; `order_id` is taken for `external_id`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaleInsert {
    /// The merchant's order id (required, unique).
    #[serde(alias = "order_id")]
    pub external_id: String,
    /// `website` when left out; e.g. `shopify` for a sale the public API could not create.
    #[serde(default)]
    pub platform: Option<String>,
    /// `unpaid` when left out.
    #[serde(default)]
    pub status: Option<SaleStatus>,
    /// ISO 8601; now when left out.
    #[serde(default)]
    pub occurred_at: Option<String>,
    /// Minor units.
    #[serde(default)]
    pub total: Option<i64>,
    /// Minor units.
    #[serde(default)]
    pub subtotal: Option<i64>,
    /// Minor units; 0 when left out (no campaign rule is applied).
    #[serde(default)]
    pub commission: Option<i64>,
    /// Three letters (stored lowercase).
    pub currency: String,
    /// The affiliate's tag, kept as given.
    #[serde(default)]
    pub campaign_affiliate_id: Option<String>,
}

/// Changes to a held sale (`PATCH /_sandbox/sales/{order_id}`), applied as given, whatever the
/// sale's status or platform. Fields left out stay as they are.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaleEdit {
    #[serde(default)]
    pub total: Option<i64>,
    #[serde(default)]
    pub subtotal: Option<i64>,
    #[serde(default)]
    pub commission: Option<i64>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub status: Option<SaleStatus>,
    #[serde(default)]
    pub occurred_at: Option<String>,
    #[serde(default)]
    pub platform: Option<String>,
}

fn amount(name: &str, v: Option<i64>) -> Result<Option<i64>, ApiError> {
    match v {
        Some(n) if n < 0 => Err(ApiError::unprocessable(format!(
            "{name} must be a non-negative integer (minor units)."
        ))),
        other => Ok(other),
    }
}

fn currency(v: &str) -> Result<String, ApiError> {
    let c = v.trim().to_ascii_lowercase();
    if c.len() == 3 && c.bytes().all(|b| b.is_ascii_lowercase()) {
        Ok(c)
    } else {
        Err(ApiError::unprocessable("currency must be three letters."))
    }
}

fn platform(v: &str) -> Result<String, ApiError> {
    let p = v.trim();
    if !p.is_empty() && p.len() <= 32 && p.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(p.to_owned())
    } else {
        Err(ApiError::unprocessable(
            "platform must be 1-32 printable ASCII characters (website, shopify, ...).",
        ))
    }
}

fn occurred_at(v: &str) -> Result<String, ApiError> {
    timefmt::parse_iso(v)
        .map(timefmt::format_ts)
        .ok_or_else(|| ApiError::unprocessable("occurred_at must be an ISO 8601 date-time."))
}

impl SaleInsert {
    /// The sale it describes, with Growi id `id`, or the 422 that says what is wrong.
    pub fn into_sale(self, id: u64) -> Result<SandboxSale, ApiError> {
        let external_id = self.external_id.trim().to_owned();
        if external_id.is_empty() || external_id.len() > 255 {
            return Err(ApiError::unprocessable(
                "order_id (external_id) must be 1-255 bytes.",
            ));
        }
        Ok(SandboxSale {
            id,
            external_id,
            platform: platform(self.platform.as_deref().unwrap_or("website"))?,
            status: self.status.unwrap_or_default(),
            occurred_at: match self.occurred_at.as_deref() {
                Some(t) => occurred_at(t)?,
                None => timefmt::now_iso(),
            },
            total: amount("total", self.total)?,
            subtotal: amount("subtotal", self.subtotal)?,
            commission: amount("commission", self.commission)?.unwrap_or(0),
            currency: currency(&self.currency)?,
            customer_email: None,
            customer_name: None,
            visitor_uid: None,
            campaign_affiliate_id: self.campaign_affiliate_id,
            growi_user_id: None,
            growi_campaign_id: None,
            sale_type: Default::default(),
            due_at: None,
        })
    }
}

impl SaleEdit {
    /// `sale` with these changes, or the 422 that says what is wrong.
    pub fn apply(self, mut sale: SandboxSale) -> Result<SandboxSale, ApiError> {
        if let Some(t) = amount("total", self.total)? {
            sale.total = Some(t);
        }
        if let Some(t) = amount("subtotal", self.subtotal)? {
            sale.subtotal = Some(t);
        }
        if let Some(c) = amount("commission", self.commission)? {
            sale.commission = c;
        }
        if let Some(c) = self.currency.as_deref() {
            sale.currency = currency(c)?;
        }
        if let Some(s) = self.status {
            sale.status = s;
        }
        if let Some(t) = self.occurred_at.as_deref() {
            sale.occurred_at = occurred_at(t)?;
        }
        if let Some(p) = self.platform.as_deref() {
            sale.platform = platform(p)?;
        }
        Ok(sale)
    }
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
