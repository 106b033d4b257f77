//! A correction to a sale already in Growi: the body of `PATCH /affiliate_sales/{id}`.
//!
//! Updates are the merchant's back-office business (refunds, cancellations, corrections) and reach
//! Growi only through the proxy's admin API, never from a browser. Every field is optional and
//! only what changes is sent; `customer_email` / `customer_name` may be `null` to clear them, and
//! times may be RFC 3339 or Unix seconds (normalised to RFC 3339 UTC). Growi spells the status
//! `cancelled` on PATCH and `canceled` in list filters; we accept both and send `cancelled`.

#[allow(unused_imports)]
use crate::prelude::*;

use crate::issue::Issue;
use crate::sale::Checker;
use crate::time;
use crate::value::{read_object, Loose};
use serde::{Deserialize, Deserializer, Serialize};

/// Fields an update may carry.
pub const UPDATE_FIELDS: &[&str] = &[
    "total",
    "subtotal",
    "currency",
    "occurred_at",
    "due_at",
    "customer_email",
    "customer_name",
    "commission",
    "status",
];

/// The statuses a PATCH may set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SaleStatus {
    Unpaid,
    Paid,
    PaidExternally,
    Cancelled,
}

impl SaleStatus {
    pub fn parse(s: &str) -> Option<SaleStatus> {
        match s {
            "unpaid" => Some(SaleStatus::Unpaid),
            "paid" => Some(SaleStatus::Paid),
            "paid_externally" => Some(SaleStatus::PaidExternally),
            "cancelled" | "canceled" => Some(SaleStatus::Cancelled),
            _ => None,
        }
    }
}

/// An update as handed to us, unchecked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SaleUpdateInput {
    fields: Vec<(String, Loose)>,
}

impl<'de> Deserialize<'de> for SaleUpdateInput {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(SaleUpdateInput {
            fields: read_object(d, "an update")?,
        })
    }
}

/// A validated PATCH body. `Some(None)` on a nullable field sends `null` (clears it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SaleUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subtotal: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub occurred_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_email: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_name: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commission: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<SaleStatus>,
}

impl SaleUpdateInput {
    fn raw(&self, name: &str) -> Option<&Loose> {
        self.fields
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// Checks every rule; lists every problem.
    pub fn validate(&self) -> Result<SaleUpdate, Vec<Issue>> {
        let mut v = Checker::default();
        for (name, _) in &self.fields {
            if !UPDATE_FIELDS.contains(&name.as_str()) {
                let hint = match name.as_str() {
                    "order_id" => " (the sale is named by the URL; order ids cannot change)",
                    _ => "",
                };
                if hint.is_empty() {
                    v.unknown(name, UPDATE_FIELDS, &[]);
                } else {
                    v.push(name, format!("cannot be updated{hint}"));
                }
            }
        }
        if self.fields.is_empty() {
            v.push("update", "is empty: send at least one field to change");
        }
        // `null` means "clear" only for the two nullable fields; elsewhere it is an error.
        let non_null = |name: &str| self.raw(name).filter(|x| **x != Loose::Null);
        for name in [
            "total",
            "subtotal",
            "currency",
            "occurred_at",
            "due_at",
            "commission",
            "status",
        ] {
            if self.raw(name) == Some(&Loose::Null) {
                v.push(
                    name,
                    "cannot be null (only customer_email and customer_name can be cleared)",
                );
            }
        }
        let mut out = SaleUpdate {
            total: v.amount("total", non_null("total")),
            subtotal: v.amount("subtotal", non_null("subtotal")),
            currency: non_null("currency").and_then(|c| v.currency(Some(c))),
            occurred_at: stamp(&mut v, "occurred_at", non_null("occurred_at")),
            due_at: stamp(&mut v, "due_at", non_null("due_at")),
            commission: v.amount("commission", non_null("commission")),
            ..SaleUpdate::default()
        };
        out.customer_email = match self.raw("customer_email") {
            None => None,
            Some(Loose::Null) => Some(None),
            some => v.email(some).map(Some),
        };
        out.customer_name = match self.raw("customer_name") {
            None => None,
            Some(Loose::Null) => Some(None),
            some => v
                .text("customer_name", some, crate::sale::MAX_TEXT_BYTES)
                .map(Some),
        };
        out.status = match non_null("status") {
            None => None,
            Some(Loose::Str(s)) if SaleStatus::parse(s).is_some() => SaleStatus::parse(s),
            Some(_) => {
                v.push(
                    "status",
                    "must be one of unpaid, paid, paid_externally, cancelled",
                );
                None
            }
        };
        if v.issues.is_empty() {
            Ok(out)
        } else {
            Err(v.issues)
        }
    }
}

fn stamp(v: &mut Checker, field: &str, value: Option<&Loose>) -> Option<String> {
    match value? {
        Loose::Int(secs) if (0..=time::MAX_UNIX_SECONDS).contains(secs) => {
            Some(time::format_utc(secs * 1000))
        }
        Loose::Int(_) => {
            v.push(field, "is not a plausible Unix timestamp (seconds)");
            None
        }
        other => v.timestamp(field, Some(other)).map(time::format_utc),
    }
}
