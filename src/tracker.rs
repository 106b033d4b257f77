//! The rules the browser tracker's JavaScript calls, as plain functions over text.
//!
//! The browser tracker is JavaScript (the outbox, delivery, cookies, consent: plumbing that costs
//! far fewer bytes in JS than through wasm-bindgen) around this WebAssembly module, which holds
//! every rule that decides what a value is worth: what a valid sale is, which URL parameter
//! credits which creator and for how long, what an amount is in minor units, what a visitor id
//! looks like, when a failed delivery is retried. The same functions run natively in tests and,
//! through [`crate::web`]'s thin `#[wasm_bindgen]` facade, in the page.
//!
//! Why fields in and JSON text out: the page hands an object over field by field (a name and a
//! value of a JavaScript type), which needs no parser on this side at all, and the answers are
//! JSON text, which the JavaScript side parses for free; strings and numbers are the types
//! wasm-bindgen passes with the least glue. Each function is total: any input gives an answer
//! (an `issues` list, `null`, a default), never a panic.

#[allow(unused_imports)]
use crate::prelude::*;

use crate::attribution::{self, Attribution, Model, Referral};
use crate::issue::Issue;
use crate::json::{push_string, ObjectWriter};
use crate::retry::{classify, parse_retry_after, Backoff, Disposition};
use crate::sale::{Origin, SaleError, SaleInput};
use crate::time::format_utc;
use crate::value::Loose;
use crate::{money, visitor};

/// `[{"field":..,"message":..},...]`.
fn issues_json(issues: &[Issue]) -> String {
    let mut out = String::from("[");
    for (i, issue) in issues.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let mut w = ObjectWriter::new();
        w.str("field", &issue.field);
        w.str("message", &issue.message);
        out.push_str(&w.finish());
    }
    out.push(']');
    out
}

fn issues_answer(issues: &[Issue]) -> String {
    let mut w = ObjectWriter::new();
    w.raw("issues", &issues_json(issues));
    w.finish()
}

/// The live attribution encoded in `aff` (a cookie or storage value), if it decodes and is
/// inside the window at `now`.
fn live(aff: &str, window_days: u32, now: i64) -> Option<Attribution> {
    Attribution::decode(aff).filter(|a| !a.is_expired(now, window_days))
}

/// The fields of a JavaScript object as the page handed them over: each own field's name and
/// value ([`Loose`]).
pub type Fields = Vec<(String, Loose)>;

/// Validates a sale for `trackSale`. `fields` is the shop's sale; `aff` the stored attribution
/// (encoded, or empty), `vid` the visitor uid (or empty): they fill in what the sale does not say
/// itself. Answers one of:
/// - `{"order_id":"..","body":{...}}`: the request body for the proxy (Growi's create fields,
///   plus the `order_token` if the page passed one);
/// - `{"issues":[...]}`: every problem;
/// - `{"unattributed":true}`: valid, but no creator to credit.
pub fn sale(fields: Fields, aff: &str, vid: &str, window_days: u32, now: i64) -> String {
    let mut input = SaleInput::from_fields(fields);
    let referral = live(aff, window_days, now).map(|a| a.referral);
    let vid = (!vid.is_empty()).then_some(vid);
    input.fill_in(referral.as_ref(), vid);
    match input.validate(Origin::Browser) {
        Ok(sale) => {
            let mut body = ObjectWriter::new();
            sale.write_fields(&mut body);
            if let Some(token) = input.order_token() {
                body.str("order_token", token);
            }
            let mut w = ObjectWriter::new();
            w.str("order_id", &sale.order_id);
            w.raw("body", &body.finish());
            w.finish()
        }
        Err(SaleError::Unattributed) => "{\"unattributed\":true}".into(),
        Err(SaleError::Invalid(issues)) => issues_answer(&issues),
    }
}

/// What a page's URL means for attribution, typed: the browser's [`capture`] and the proxy's
/// capture at the edge (`POST /touch`) both come here, so they cannot disagree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureOutcome {
    /// The attribution to keep, if any.
    pub kept: Option<Attribution>,
    /// Whether it differs from the stored one (so the stored copies are refreshed).
    pub changed: bool,
    /// Every recognised parameter present, valid or not (for `cleanUrl`).
    pub present: Vec<String>,
    /// Why a value was ignored, one line each.
    pub warnings: Vec<String>,
}

/// [`capture`]'s rules over decoded `pairs` in priority order (the Growi pair, then the tag
/// parameters as configured; the tag parameters' order is their priority).
pub fn capture_pairs(
    pairs: &[(String, String)],
    stored: Option<Attribution>,
    model: Model,
    window_days: u32,
    now: i64,
) -> CaptureOutcome {
    let params: Vec<&str> = pairs
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| *k != attribution::GROWI_USER_PARAM && *k != attribution::GROWI_CAMPAIGN_PARAM)
        .collect();
    let captured = attribution::capture(pairs, &params);
    let kept = attribution::apply(stored.clone(), captured.referral, model, now, window_days);
    CaptureOutcome {
        changed: kept.is_some() && kept != stored,
        kept,
        present: captured.present,
        warnings: captured
            .rejected
            .iter()
            .map(|r| {
                crate::text::concat(&["ignored ", &r.param, "=\"", &r.value, "\": ", r.reason])
            })
            .collect(),
    }
}

/// What a page's URL means for attribution. `found` holds the recognised parameters present in
/// the URL, already decoded, in priority order (the page's tag parameters as configured, and
/// `growi_user_id` / `growi_campaign_id`): the JavaScript side reads them with `URLSearchParams`,
/// the rules are here. `stored` is the attribution already stored (encoded, or
/// empty), `model` `last_click` or `first_click`. Answers `{"aff":..,"changed":..,"present":[..],
/// "warnings":[..]}`: the attribution to keep (encoded, or `null`), whether it differs from the
/// stored one (so the proxy's copy is refreshed), the recognised parameters present (for
/// `cleanUrl`), and why any value was ignored.
pub fn capture(found: Fields, stored: &str, model: &str, window_days: u32, now: i64) -> String {
    let pairs: Vec<(String, String)> = found
        .into_iter()
        .filter_map(|(k, v)| match v {
            Loose::Str(s) => Some((k, s)),
            _ => None,
        })
        .collect();
    let model = Model::parse(model).unwrap_or_default();
    let out = capture_pairs(&pairs, Attribution::decode(stored), model, window_days, now);
    let mut w = ObjectWriter::new();
    match &out.kept {
        Some(a) => w.str("aff", &a.encode()),
        None => w.raw("aff", "null"),
    }
    w.raw("changed", if out.changed { "true" } else { "false" });
    w.raw(
        "present",
        &string_list(out.present.iter().map(String::as_str)),
    );
    w.raw(
        "warnings",
        &string_list(out.warnings.iter().map(String::as_str)),
    );
    w.finish()
}

fn string_list<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let mut out = String::from("[");
    for (i, s) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_string(&mut out, s);
    }
    out.push(']');
    out
}

/// The public view of an attribution (`attribution()` in the browser API): `{"campaign_affiliate_id"
/// | "growi_user_id","growi_campaign_id", "model","captured_at","expires_at"}`, or `null` when
/// `aff` is empty, unreadable or expired.
pub fn describe(aff: &str, window_days: u32, now: i64) -> String {
    let Some(a) = live(aff, window_days, now) else {
        return "null".into();
    };
    let mut w = ObjectWriter::new();
    match &a.referral {
        Referral::Tag(tag) => w.str("campaign_affiliate_id", tag),
        Referral::Growi {
            user_id,
            campaign_id,
        } => {
            w.num("growi_user_id", *user_id);
            w.num("growi_campaign_id", *campaign_id);
        }
    }
    w.str("model", a.model.as_str());
    w.str("captured_at", &format_utc(a.captured_at));
    w.str("expires_at", &format_utc(a.expires_at(window_days)));
    w.finish()
}

/// `toMinorUnits`: `{"value":1999}`, or `{"issues":[..]}` naming `amount` or `currency`.
/// `amount` is the decimal text (a JavaScript number arrives as its shortest form, `String(n)`).
pub fn minor_units(amount: &str, currency: &str) -> String {
    match money::to_minor_units(amount, currency) {
        Ok(v) => {
            let mut w = ObjectWriter::new();
            w.num("value", v);
            w.finish()
        }
        Err(e) => {
            let field = match e {
                money::MoneyError::UnknownCurrency(_) => "currency",
                _ => "amount",
            };
            issues_answer(&[Issue::new(field, e.message())])
        }
    }
}

/// The visitor uid to use: `stored` when it is a UUID v4 (any case, kept in lower case), else a
/// new one from `random` (16 bytes from `crypto.getRandomValues`; fewer are padded with zeros).
pub fn visitor(stored: &str, random: &[u8]) -> String {
    let lower = stored.trim().to_ascii_lowercase();
    if visitor::is_uuid_v4(&lower) {
        return lower;
    }
    let mut bytes = [0u8; 16];
    for (b, r) in bytes.iter_mut().zip(random) {
        *b = *r;
    }
    visitor::uuid_v4(bytes)
}

/// What to do after the proxy answered a sale with `status` (`0`: no answer, a network error):
/// `0` it is delivered (2xx); `-1` it is refused for good (a 4xx other than 408 and 429); else
/// the milliseconds to wait before the next attempt: the `Retry-After` header's (`retry_after`,
/// may be empty) or the browser's capped exponential backoff for attempt number `attempts`, with
/// `jitter` in [0, 1).
pub fn next_attempt(status: u16, attempts: u32, jitter: f64, retry_after: &str) -> f64 {
    let retry = |_: ()| {
        parse_retry_after(retry_after)
            .unwrap_or_else(|| Backoff::BROWSER.delay_ms(attempts, jitter))
            .max(1) as f64
    };
    if status == 0 {
        return retry(());
    }
    match classify(status) {
        Disposition::Delivered => 0.0,
        Disposition::Rejected => -1.0,
        Disposition::Retry => retry(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    /// The fields of a JSON object, as the page would hand them over.
    fn f(json: &str) -> Fields {
        match serde_json::from_str::<serde_json::Value>(json) {
            Ok(serde_json::Value::Object(m)) => m
                .into_iter()
                .map(|(k, v)| (k, serde_json::from_value::<Loose>(v).unwrap()))
                .collect(),
            _ => Vec::new(),
        }
    }

    #[test]
    fn sales_validate_with_the_stored_attribution() {
        let aff = Attribution {
            referral: Referral::Tag("creator42".into()),
            model: Model::LastClick,
            captured_at: NOW - 1000,
        }
        .encode();
        let vid = "0b6f3c1e-2a4d-4e5f-9a7b-1c2d3e4f5a6b";
        let ok = sale(
            f(r#"{"order_id":"A-1","total":12999,"currency":"USD","order_token":"1.ab"}"#),
            &aff,
            vid,
            30,
            NOW,
        );
        assert_eq!(
            ok,
            format!(
                r#"{{"order_id":"A-1","body":{{"order_id":"A-1","total":12999,"currency":"usd","campaign_affiliate_id":"creator42","visitor_uid":"{vid}","order_token":"1.ab"}}}}"#
            )
        );
        assert_eq!(
            sale(
                f(r#"{"order_id":"A","total":1,"currency":"usd"}"#),
                "",
                "",
                30,
                NOW
            ),
            r#"{"unattributed":true}"#
        );
        // An attribution past the window does not count.
        let old = Attribution {
            referral: Referral::Tag("x".into()),
            model: Model::LastClick,
            captured_at: NOW - 31 * 86_400_000,
        }
        .encode();
        assert_eq!(
            sale(
                f(r#"{"order_id":"A","total":1,"currency":"usd"}"#),
                &old,
                "",
                30,
                NOW
            ),
            r#"{"unattributed":true}"#
        );
        let bad = sale(
            f(r#"{"orderId":"A","total":129.99,"currency":"dollars","commission":1}"#),
            &aff,
            "",
            30,
            NOW,
        );
        for f in ["orderId", "order_id", "total", "currency", "commission"] {
            assert!(bad.contains(&format!(r#""field":"{f}""#)), "{f} in {bad}");
        }
    }

    #[test]
    fn capture_applies_the_model_and_reports() {
        let first = capture(f(r#"{"ref":"creator42"}"#), "", "last_click", 30, NOW);
        let v: serde_json::Value = serde_json::from_str(&first).unwrap();
        assert_eq!(v["changed"], true);
        assert_eq!(v["present"], serde_json::json!(["ref"]));
        let aff = v["aff"].as_str().unwrap().to_owned();
        assert!(aff.ends_with("~t~creator42"));
        // First click keeps the live one; nothing changes, so no refresh of the proxy's copy.
        let again = capture(f(r#"{"ref":"other"}"#), &aff, "first_click", 30, NOW + 5);
        let v: serde_json::Value = serde_json::from_str(&again).unwrap();
        assert_eq!(
            (v["aff"].as_str(), &v["changed"]),
            (Some(aff.as_str()), &serde_json::json!(false))
        );
        let bad = capture(
            f(r#"{"ref":"<script>\n","aff":"ok-too"}"#),
            "",
            "last_click",
            30,
            NOW,
        );
        let v: serde_json::Value = serde_json::from_str(&bad).unwrap();
        assert!(
            v["aff"].as_str().unwrap().ends_with("~t~ok-too"),
            "a bad first one hides no good second one"
        );
        assert!(v["warnings"][0]
            .as_str()
            .unwrap()
            .starts_with("ignored ref=\"<script>\n\""));
        let growi = capture(
            f(r#"{"ref":"x","growi_user_id":"42","growi_campaign_id":"7"}"#),
            "",
            "last_click",
            30,
            NOW,
        );
        assert!(growi.contains("~g~42~7"), "the Growi pair wins: {growi}");
    }

    #[test]
    fn descriptions_amounts_visitors_and_retries() {
        let aff = Attribution {
            referral: Referral::Growi {
                user_id: 4,
                campaign_id: 2,
            },
            model: Model::FirstClick,
            captured_at: 0,
        }
        .encode();
        let d: serde_json::Value = serde_json::from_str(&describe(&aff, 30, 1000)).unwrap();
        assert_eq!(d["growi_user_id"], 4);
        assert_eq!(d["expires_at"], "1970-01-31T00:00:00.000Z");
        assert_eq!(describe(&aff, 30, 31 * 86_400_000), "null");
        assert_eq!(describe("junk", 30, 0), "null");
        assert_eq!(minor_units("19.99", "usd"), r#"{"value":1999}"#);
        assert!(minor_units("1.999", "usd").contains(r#""field":"amount""#));
        assert!(minor_units("1", "xyz").contains(r#""field":"currency""#));
        let v = visitor("", &[0xff; 16]);
        assert_eq!(v, "ffffffff-ffff-4fff-bfff-ffffffffffff");
        assert_eq!(visitor(&v.to_ascii_uppercase(), &[0; 16]), v);
        assert_eq!(
            visitor("not-a-uuid", &[]),
            "00000000-0000-4000-8000-000000000000"
        );
        assert_eq!(next_attempt(202, 0, 0.5, ""), 0.0);
        assert_eq!(next_attempt(422, 0, 0.5, ""), -1.0);
        assert_eq!(next_attempt(429, 3, 0.5, "7"), 7000.0);
        assert!((500.0..=1000.0).contains(&next_attempt(0, 0, 0.5, "")));
        assert!((500.0..=1000.0).contains(&next_attempt(503, 0, 0.0, "")));
    }
}
