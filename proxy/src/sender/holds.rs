//! Whether Growi already holds what an update asked for.
//!
//! An update is not idempotent the way a create is: if the proxy dies after Growi applied a
//! PATCH but before the proxy recorded the answer, the resent PATCH can be refused (a cancelled
//! sale "cannot be updated"), although its effect is in place. So when Growi refuses an update,
//! the sender looks the sale up and compares: the update is done when every field it set has
//! exactly that value at Growi. A field Growi's answer does not show cannot be confirmed, so
//! the update then stays refused; nothing is ever marked done on a guess.

use super::upstream::GrowiSale;
use salebeacon::time::parse_rfc3339;
use serde_json::Value;

/// Whether `sale` (as Growi shows it) already has every value the update body `update` sets.
pub fn already_holds(update: &Value, sale: &GrowiSale) -> bool {
    let Some(fields) = update.as_object() else {
        return false;
    };
    !fields.is_empty()
        && fields.iter().all(|(name, wanted)| match name.as_str() {
            "status" => same_status(wanted, sale.status.as_deref()),
            "total" => same_int(wanted, sale.total),
            "subtotal" => same_int(wanted, sale.subtotal),
            "commission" => same_int(wanted, sale.commission),
            "currency" => match (wanted.as_str(), sale.currency.as_deref()) {
                (Some(w), Some(h)) => w.eq_ignore_ascii_case(h),
                _ => false,
            },
            "occurred_at" => same_time(wanted, sale.occurred_at.as_deref()),
            "due_at" => same_time(wanted, sale.due_at.as_deref()),
            "customer_email" => same_text(wanted, sale.customer_email.as_deref()),
            "customer_name" => same_text(wanted, sale.customer_name.as_deref()),
            _ => false,
        })
}

/// Growi spells it `cancelled` on PATCH and `canceled` in the list filter: both are the same.
fn same_status(wanted: &Value, held: Option<&str>) -> bool {
    let norm = |s: &str| {
        if s == "canceled" {
            "cancelled".to_owned()
        } else {
            s.to_owned()
        }
    };
    match (wanted.as_str(), held) {
        (Some(w), Some(h)) => norm(w) == norm(h),
        _ => false,
    }
}

fn same_int(wanted: &Value, held: Option<i64>) -> bool {
    wanted.as_i64().is_some() && wanted.as_i64() == held
}

fn same_text(wanted: &Value, held: Option<&str>) -> bool {
    match wanted {
        Value::Null => held.is_none(),
        Value::String(w) => held == Some(w.as_str()),
        _ => false,
    }
}

fn same_time(wanted: &Value, held: Option<&str>) -> bool {
    match wanted {
        Value::Null => held.is_none(),
        Value::String(w) => match (parse_rfc3339(w), held.and_then(parse_rfc3339)) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sale() -> GrowiSale {
        GrowiSale {
            id: 1,
            external_id: Some("A".into()),
            status: Some("cancelled".into()),
            total: Some(1000),
            currency: Some("usd".into()),
            occurred_at: Some("2025-09-30T23:55:29.000Z".into()),
            ..GrowiSale::default()
        }
    }

    #[test]
    fn done_only_when_every_field_is_confirmed() {
        let s = sale();
        assert!(already_holds(&json!({"status": "cancelled"}), &s));
        assert!(already_holds(&json!({"status": "canceled"}), &s));
        assert!(already_holds(
            &json!({"status": "cancelled", "total": 1000, "currency": "USD"}),
            &s
        ));
        assert!(already_holds(
            &json!({"occurred_at": "2025-09-30T23:55:29Z"}),
            &s
        ));
        assert!(!already_holds(&json!({"status": "paid"}), &s));
        assert!(!already_holds(
            &json!({"status": "cancelled", "total": 999}),
            &s
        ));
        // Growi's answer does not show the commission: it cannot be confirmed.
        assert!(!already_holds(
            &json!({"status": "cancelled", "commission": 5}),
            &s
        ));
        assert!(!already_holds(&json!({"customer_name": "Ann"}), &s));
        assert!(already_holds(&json!({"customer_name": null}), &s));
        assert!(!already_holds(&json!({}), &s));
        assert!(!already_holds(&json!({"unknown": 1}), &s));
    }
}
