//! Reading request bodies the way Growi does: field by field, with Growi's own 422 messages.
//!
//! Bodies are parsed as a generic JSON object rather than with `#[derive(Deserialize)]` so the
//! sandbox controls the order of checks and every message (a derived deserializer would answer
//! serde's wording for the first problem only). Growi's documented messages are used verbatim
//! where they exist; for type errors (which Growi does not document) the messages are the
//! sandbox's own, but the status is always 422. Unknown fields are ignored, as Growi does.

use axum::body::Bytes;
use serde_json::{Map, Value};

use crate::error::{ApiError, ATTRIBUTION_REQUIRED};
use crate::money::is_currency_code;
use crate::sale::{SaleStatus, SaleType, SandboxSale};
use crate::seed::{Affiliate, Seed};
use crate::timefmt;

/// Longest accepted `order_id` and free-text field, in bytes of UTF-8 (the project's reading of
/// a limit Growi does not publish; the tracker core applies the same rule, and
/// `tests/core_parity.rs` holds the two together).
pub const MAX_TEXT_LEN: usize = 255;

/// The body as a JSON object; an empty body is an empty object.
pub fn parse_object(body: &Bytes) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::unprocessable(
            "Request body must be a JSON object.",
        )),
        Err(e) => Err(ApiError::BadRequest(format!("Malformed JSON body: {e}"))),
    }
}

/// The value of `key` unless it is missing or `null`.
fn present<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

/// `order_id` as a string, for logging (numbers are shown as written).
pub fn loose_order_id(obj: &Map<String, Value>) -> Option<String> {
    match present(obj, "order_id")? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The create body's `order_id`, or Growi's "Order ID is required.".
pub fn order_id(obj: &Map<String, Value>) -> Result<String, ApiError> {
    match present(obj, "order_id") {
        Some(Value::String(s)) if !s.trim().is_empty() => {
            if s.len() > MAX_TEXT_LEN {
                Err(ApiError::unprocessable(format!(
                    "order_id must be at most {MAX_TEXT_LEN} bytes."
                )))
            } else {
                Ok(s.clone())
            }
        }
        Some(Value::String(_)) | None => Err(ApiError::unprocessable("Order ID is required.")),
        Some(_) => Err(ApiError::unprocessable("order_id must be a string.")),
    }
}

fn amount(obj: &Map<String, Value>, key: &str) -> Result<Option<i64>, ApiError> {
    match present(obj, key) {
        None => Ok(None),
        Some(v) => match v.as_i64() {
            Some(n) if n >= 0 => Ok(Some(n)),
            _ => Err(ApiError::unprocessable(format!(
                "{key} must be a non-negative integer amount in minor units (e.g. 9999 for 99.99)."
            ))),
        },
    }
}

fn positive_id(obj: &Map<String, Value>, key: &str) -> Result<Option<u64>, ApiError> {
    match present(obj, key) {
        None => Ok(None),
        Some(v) => match v.as_u64() {
            Some(n) if n > 0 => Ok(Some(n)),
            _ => Err(ApiError::unprocessable(format!(
                "{key} must be a positive integer."
            ))),
        },
    }
}

fn currency(obj: &Map<String, Value>) -> Result<Option<String>, ApiError> {
    match present(obj, "currency") {
        None => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) if is_currency_code(s) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::unprocessable(
            "Currency must be a lowercase ISO 4217 code (e.g. usd).",
        )),
    }
}

/// A free-text field: `Ok(None)` when missing, `null` or blank.
fn text(obj: &Map<String, Value>, key: &str) -> Result<Option<String>, ApiError> {
    match present(obj, key) {
        None => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) if s.len() <= MAX_TEXT_LEN => Ok(Some(s.clone())),
        Some(Value::String(_)) => Err(ApiError::unprocessable(format!(
            "{key} must be at most {MAX_TEXT_LEN} bytes."
        ))),
        Some(_) => Err(ApiError::unprocessable(format!("{key} must be a string."))),
    }
}

/// A timestamp field: ISO 8601 string or Unix timestamp (integer seconds), normalised.
fn timestamp(obj: &Map<String, Value>, key: &str) -> Result<Option<String>, ApiError> {
    let bad = || {
        ApiError::unprocessable(format!(
            "{key} must be an ISO 8601 date-time or a Unix timestamp in seconds."
        ))
    };
    let ts = match present(obj, key) {
        None => return Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(None),
        Some(Value::String(s)) => match s.trim().parse::<i64>() {
            Ok(secs) => timefmt::from_unix_seconds(secs),
            Err(_) => timefmt::parse_iso(s),
        },
        Some(Value::Number(n)) => n.as_i64().and_then(timefmt::from_unix_seconds),
        Some(_) => None,
    };
    ts.map(|t| Some(timefmt::format_ts(t))).ok_or_else(bad)
}

fn sale_type(obj: &Map<String, Value>) -> Result<SaleType, ApiError> {
    match present(obj, "sale_type") {
        None => Ok(SaleType::OneTime),
        Some(Value::String(s)) if s == "one_time" => Ok(SaleType::OneTime),
        Some(Value::String(s)) if s == "subscription" => Ok(SaleType::Subscription),
        Some(_) => Err(ApiError::unprocessable(
            "sale_type must be one_time or subscription.",
        )),
    }
}

/// Finds the affiliate a create body attributes the sale to.
fn attribution(obj: &Map<String, Value>, seed: &Seed) -> Result<Affiliate, ApiError> {
    let not_found = || ApiError::unprocessable("Campaign affiliate not found.");
    let tag = match present(obj, "campaign_affiliate_id") {
        None => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(s.clone()),
        // Growi's field is a code, but a numeric code sent as a JSON number is looked up as text.
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(_) => {
            return Err(ApiError::unprocessable(
                "campaign_affiliate_id must be a string (the affiliate tag).",
            ))
        }
    };
    let user = positive_id(obj, "growi_user_id")?;
    let campaign = positive_id(obj, "growi_campaign_id")?;
    if let Some(tag) = tag {
        // The tag wins when both forms are given.
        return seed.affiliate_by_tag(&tag).cloned().ok_or_else(not_found);
    }
    match (user, campaign) {
        (Some(u), Some(c)) => seed.affiliate_by_ids(u, c).cloned().ok_or_else(not_found),
        _ => Err(ApiError::unprocessable(ATTRIBUTION_REQUIRED)),
    }
}

/// A validated create request, waiting for its id.
#[derive(Debug)]
pub struct NewSale {
    order_id: String,
    total: Option<i64>,
    subtotal: Option<i64>,
    currency: String,
    commission: i64,
    affiliate: Affiliate,
    occurred_at: String,
    due_at: Option<String>,
    customer_email: Option<String>,
    customer_name: Option<String>,
    visitor_uid: Option<String>,
    sale_type: SaleType,
}

impl NewSale {
    /// The sale record, with its Growi id.
    pub fn into_sale(self, id: u64) -> SandboxSale {
        SandboxSale {
            id,
            external_id: self.order_id,
            platform: "website".to_owned(),
            status: SaleStatus::Unpaid,
            occurred_at: self.occurred_at,
            total: self.total,
            subtotal: self.subtotal,
            commission: self.commission,
            currency: self.currency,
            customer_email: self.customer_email,
            customer_name: self.customer_name,
            visitor_uid: self.visitor_uid,
            campaign_affiliate_id: Some(self.affiliate.tag),
            growi_user_id: Some(self.affiliate.growi_user_id),
            growi_campaign_id: Some(self.affiliate.campaign_id),
            sale_type: self.sale_type,
            due_at: self.due_at,
        }
    }
}

/// Validates a create body, in Growi's order: order id, currency, amounts, attribution, then
/// the optional fields.
pub fn new_sale(obj: &Map<String, Value>, seed: &Seed) -> Result<NewSale, ApiError> {
    let order_id = order_id(obj)?;
    let currency =
        currency(obj)?.ok_or_else(|| ApiError::unprocessable("Currency is required."))?;
    let total = amount(obj, "total")?;
    let subtotal = amount(obj, "subtotal")?;
    let Some(base) = total.or(subtotal) else {
        return Err(ApiError::unprocessable("Total or subtotal is required."));
    };
    let affiliate = attribution(obj, seed)?;
    let commission = match amount(obj, "commission")? {
        Some(c) => c,
        None => seed
            .campaign(affiliate.campaign_id)
            .map_or(0, |c| c.commission.commission_for(base)),
    };
    Ok(NewSale {
        order_id,
        total,
        subtotal,
        currency,
        commission,
        affiliate,
        occurred_at: timestamp(obj, "occurred_at")?.unwrap_or_else(timefmt::now_iso),
        due_at: timestamp(obj, "due_at")?,
        customer_email: text(obj, "customer_email")?,
        customer_name: text(obj, "customer_name")?,
        visitor_uid: text(obj, "visitor_uid")?,
        sale_type: sale_type(obj)?,
    })
}

fn not_null(obj: &Map<String, Value>, key: &str) -> Result<(), ApiError> {
    match obj.get(key) {
        Some(Value::Null) => Err(ApiError::unprocessable(format!("{key} cannot be null."))),
        _ => Ok(()),
    }
}

/// Applies a PATCH body to `sale` (already checked to be an updatable website sale).
///
/// Only the documented fields are read; `null` clears `customer_email`, `customer_name` and
/// `due_at` and is refused for the others. When the commission base (total, or subtotal for a
/// sale without total) changes and the body has no `commission`, the commission is recalculated
/// with the campaign's rule.
pub fn apply_patch(
    mut sale: SandboxSale,
    obj: &Map<String, Value>,
    seed: &Seed,
) -> Result<SandboxSale, ApiError> {
    for key in [
        "total",
        "subtotal",
        "currency",
        "occurred_at",
        "commission",
        "status",
    ] {
        not_null(obj, key)?;
    }
    let old_base = sale.commission_base();
    if let Some(t) = amount(obj, "total")? {
        sale.total = Some(t);
    }
    if let Some(s) = amount(obj, "subtotal")? {
        sale.subtotal = Some(s);
    }
    if obj.contains_key("currency") {
        sale.currency =
            currency(obj)?.ok_or_else(|| ApiError::unprocessable("Currency is required."))?;
    }
    if let Some(ts) = timestamp(obj, "occurred_at")? {
        sale.occurred_at = ts;
    }
    if obj.contains_key("due_at") {
        sale.due_at = timestamp(obj, "due_at")?;
    }
    for (key, field) in [
        ("customer_email", &mut sale.customer_email),
        ("customer_name", &mut sale.customer_name),
    ] {
        if obj.contains_key(key) {
            *field = text(obj, key)?;
        }
    }
    if let Some(status) = present(obj, "status") {
        sale.status = match status.as_str() {
            Some("unpaid") => SaleStatus::Unpaid,
            Some("paid") => SaleStatus::Paid,
            Some("paid_externally") => SaleStatus::PaidExternally,
            Some("cancelled") => SaleStatus::Cancelled,
            _ => {
                return Err(ApiError::unprocessable(
                    "status must be one of: unpaid, paid, paid_externally, cancelled.",
                ))
            }
        };
    }
    match amount(obj, "commission")? {
        Some(c) => sale.commission = c,
        None => {
            let new_base = sale.commission_base();
            if new_base != old_base {
                let rule = sale
                    .growi_campaign_id
                    .and_then(|id| seed.campaign(id))
                    .map(|c| c.commission);
                if let (Some(rule), Some(base)) = (rule, new_base) {
                    sale.commission = rule.commission_for(base);
                }
            }
        }
    }
    Ok(sale)
}
