//! Sales put into the store or changed behind the API's back (`POST`, `PATCH /_sandbox/sales`):
//! what a test needs to make Growi disagree with a proxy (a lost sale, another amount, a Shopify
//! sale). [`SaleInsert`] and [`SaleEdit`] are what the control API and
//! [`crate::RunningSandbox`] take; their own checks are only what keeps the store readable (the
//! public API's rules do not apply).
//!
//! A file of its own because both the control API (`control.rs`) and the state (`state.rs`) use
//! them, and neither should import the other.

use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::sale::{SaleStatus, SandboxSale};
use crate::timefmt;

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
