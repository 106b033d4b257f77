//! A sale as the sandbox holds it and the API shows it: [`SandboxSale`], its [`SaleStatus`] and
//! [`SaleType`].
//!
//! The types live apart from the store (which keeps and persists sales) and the seed (which
//! describes campaigns, affiliates and pre-existing sales), so both can use them without
//! importing each other.

use serde::{Deserialize, Serialize};

/// The status of a sale, spelled as Growi spells it on PATCH (`cancelled`, two l's).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SaleStatus {
    /// New sales are unpaid.
    #[default]
    Unpaid,
    /// The commission was paid through Growi.
    Paid,
    /// The commission was paid outside Growi.
    PaidExternally,
    /// Cancelled: frozen, cannot be updated any more.
    Cancelled,
    /// Refunded (set by Growi, not settable through PATCH; can appear in a seed).
    Refunded,
}

impl SaleStatus {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SaleStatus::Unpaid => "unpaid",
            SaleStatus::Paid => "paid",
            SaleStatus::PaidExternally => "paid_externally",
            SaleStatus::Cancelled => "cancelled",
            SaleStatus::Refunded => "refunded",
        }
    }
}

/// `one_time` (default) or `subscription`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SaleType {
    /// A one-off purchase.
    #[default]
    OneTime,
    /// A subscription payment.
    Subscription,
}

fn website() -> String {
    "website".to_owned()
}

/// One sale, exactly as the API answers it inside `{"data": ...}`. Amounts are integer minor
/// units; timestamps are ISO 8601 UTC strings with milliseconds (`2025-09-30T23:55:29.000Z`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxSale {
    /// Growi's integer id (what PATCH takes).
    pub id: u64,
    /// The merchant's `order_id`.
    pub external_id: String,
    /// `website` for sales created through the public API; anything else (e.g. `shopify`) can
    /// only come from a seed, and cannot be updated.
    #[serde(default = "website")]
    pub platform: String,
    /// The sale's status.
    #[serde(default)]
    pub status: SaleStatus,
    /// When the sale happened.
    pub occurred_at: String,
    /// Total, minor units.
    #[serde(default)]
    pub total: Option<i64>,
    /// Subtotal, minor units.
    #[serde(default)]
    pub subtotal: Option<i64>,
    /// The affiliate's commission, minor units.
    #[serde(default)]
    pub commission: i64,
    /// Lowercase ISO 4217 code.
    pub currency: String,
    /// Customer e-mail, if given.
    #[serde(default)]
    pub customer_email: Option<String>,
    /// Customer name, if given.
    #[serde(default)]
    pub customer_name: Option<String>,
    /// The tracker's visitor id, if given.
    #[serde(default)]
    pub visitor_uid: Option<String>,
    /// The affiliate's tag (Growi calls the field `campaign_affiliate_id`, but it is a code).
    #[serde(default)]
    pub campaign_affiliate_id: Option<String>,
    /// The affiliate's Growi user id.
    #[serde(default)]
    pub growi_user_id: Option<u64>,
    /// The campaign's Growi id.
    #[serde(default)]
    pub growi_campaign_id: Option<u64>,
    /// `one_time` or `subscription`.
    #[serde(default)]
    pub sale_type: SaleType,
    /// When the commission becomes due, if set.
    #[serde(default)]
    pub due_at: Option<String>,
}

impl SandboxSale {
    /// What commissions are computed from: the total, or the subtotal when there is no total.
    pub fn commission_base(&self) -> Option<i64> {
        self.total.or(self.subtotal)
    }
}
