//! A sale: what a shop hands us ([`SaleInput`]) and the validated create body for Growi's
//! `POST /affiliate_sales` ([`Sale`]).
//!
//! This module is the one definition of a valid sale, used by the browser tracker before it
//! stores or sends anything and by the proxy before it queues anything. Field names are Growi's
//! own snake_case names. [`SaleInput::validate`] reports every problem at once, and knows who is
//! asking ([`Origin`]): `commission`, `due_at` and `status` are the merchant's server-side
//! decisions and are refused from a browser.

#[allow(unused_imports)]
use crate::prelude::*;

use crate::attribution::{is_valid_tag, Referral};
use crate::issue::Issue;
use crate::money::{self, MAX_AMOUNT};
use crate::text;
use crate::time::{self, Timestamp};
use crate::value::{read_object, suggest, Loose};
use serde::{Deserialize, Deserializer, Serialize};

/// Every field a sale input may carry. `status` is not a Growi create field; it is listed so that
/// it gets a precise refusal rather than "unknown field".
pub const SALE_FIELDS: &[&str] = &[
    "order_id",
    "total",
    "subtotal",
    "currency",
    "campaign_affiliate_id",
    "growi_user_id",
    "growi_campaign_id",
    "occurred_at",
    "due_at",
    "customer_email",
    "customer_name",
    "visitor_uid",
    "sale_type",
    "commission",
    "status",
];

/// Fields that travel with a sale to the proxy but are not Growi's: validation skips them and
/// [`Sale`] does not carry them. `order_token` is the merchant backend's signature over the order
/// (see the proxy's trust policy).
pub const TRANSPORT_FIELDS: &[&str] = &["order_token"];

/// Names people commonly use for a field, and the field they mean.
const ALIASES: &[(&str, &str)] = &[
    ("amount", "total"),
    ("value", "total"),
    ("revenue", "total"),
    ("price", "total"),
    ("email", "customer_email"),
    ("name", "customer_name"),
    ("ref", "campaign_affiliate_id"),
    ("tag", "campaign_affiliate_id"),
    ("affiliate", "campaign_affiliate_id"),
    ("affiliate_tag", "campaign_affiliate_id"),
    ("visitor_id", "visitor_uid"),
    ("order", "order_id"),
    ("id", "order_id"),
];

/// Longest `order_id`, `customer_name` and `customer_email` we accept, in bytes of UTF-8.
///
/// Growi's reference states no length limit; this is our reading, and it is in bytes (not
/// characters) because that is the stricter of the two: 200 × "é" is 200 characters but 400
/// bytes, and a store that counts bytes refuses it. A sale the proxy acknowledges must be one
/// Growi takes, so the core, the proxy (which uses the core) and the sandbox all apply exactly
/// this rule; `sandbox/tests` holds the sandbox to it.
pub const MAX_TEXT_BYTES: usize = 255;

/// Who hands us a sale: a browser is not trusted with the merchant's decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A page: `trackSale`, `POST /sales`, the pixel.
    Browser,
    /// The merchant's own server code, or the proxy's admin API.
    Server,
}

/// A sale as handed to us, each field still unchecked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SaleInput {
    fields: Vec<(String, Loose)>,
}

impl<'de> Deserialize<'de> for SaleInput {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(SaleInput {
            fields: read_object(d, "a sale")?,
        })
    }
}

/// `one_time` or `subscription`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SaleType {
    OneTime,
    Subscription,
}

/// A validated create body for `POST /affiliate_sales`. Serializes to exactly what Growi takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sale {
    pub order_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtotal: Option<u64>,
    /// Lower case ISO 4217.
    pub currency: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign_affiliate_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub growi_user_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub growi_campaign_id: Option<u64>,
    /// On the wire in UTC, `2025-09-30T23:55:29.000Z`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visitor_uid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sale_type: Option<SaleType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commission: Option<u64>,
}

impl Sale {
    /// The create body as JSON text, exactly what `serde_json::to_string` writes. Written by hand
    /// so the browser module needs no JSON serializer (every byte counts there).
    pub fn to_json(&self) -> String {
        let mut w = crate::json::ObjectWriter::new();
        self.write_fields(&mut w);
        w.finish()
    }

    /// Writes the body's fields into `w`, for callers that add transport fields after them.
    pub fn write_fields(&self, w: &mut crate::json::ObjectWriter) {
        w.str("order_id", &self.order_id);
        w.opt_num("total", self.total);
        w.opt_num("subtotal", self.subtotal);
        w.str("currency", &self.currency);
        w.opt_str(
            "campaign_affiliate_id",
            self.campaign_affiliate_id.as_deref(),
        );
        w.opt_num("growi_user_id", self.growi_user_id);
        w.opt_num("growi_campaign_id", self.growi_campaign_id);
        w.opt_str(
            "occurred_at",
            self.occurred_at.map(Timestamp::format).as_deref(),
        );
        w.opt_str("due_at", self.due_at.map(Timestamp::format).as_deref());
        w.opt_str("customer_email", self.customer_email.as_deref());
        w.opt_str("customer_name", self.customer_name.as_deref());
        w.opt_str("visitor_uid", self.visitor_uid.as_deref());
        w.opt_str(
            "sale_type",
            self.sale_type.map(|t| match t {
                SaleType::OneTime => "one_time",
                SaleType::Subscription => "subscription",
            }),
        );
        w.opt_num("commission", self.commission);
    }

    /// The sale's attribution.
    pub fn referral(&self) -> Option<Referral> {
        match (
            &self.campaign_affiliate_id,
            self.growi_user_id,
            self.growi_campaign_id,
        ) {
            (Some(tag), _, _) => Some(Referral::Tag(tag.clone())),
            (None, Some(user_id), Some(campaign_id)) => Some(Referral::Growi {
                user_id,
                campaign_id,
            }),
            _ => None,
        }
    }
}

/// Why a sale input is not a sale.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaleError {
    /// One or more fields break a rule: every one is listed.
    #[error("invalid sale: {}", crate::issue::summarize(.0))]
    Invalid(Vec<Issue>),
    /// Every field is fine but there is no attribution: Growi cannot take it.
    #[error("the sale has no attribution (campaign_affiliate_id, or growi_user_id and growi_campaign_id)")]
    Unattributed,
}

impl SaleError {
    /// The issues, with `Unattributed` as one issue on `campaign_affiliate_id`.
    pub fn issues(&self) -> Vec<Issue> {
        match self {
            SaleError::Invalid(issues) => issues.clone(),
            SaleError::Unattributed => vec![Issue::new(
                "campaign_affiliate_id",
                "attribution is required: campaign_affiliate_id, or both growi_user_id and growi_campaign_id",
            )],
        }
    }
}

impl SaleInput {
    /// An empty input, to fill with [`SaleInput::set`].
    pub fn new() -> Self {
        Self::default()
    }

    /// An input from `(name, value)` pairs, e.g. a JavaScript object's entries.
    pub fn from_fields(fields: Vec<(String, Loose)>) -> Self {
        SaleInput { fields }
    }

    /// Reads a query string's pairs (the pixel). Digit-only values of number fields become
    /// numbers, since a URL has no types.
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut input = SaleInput::new();
        for (k, v) in pairs {
            let (k, v) = (k.into(), v.into());
            let numeric = matches!(
                k.as_str(),
                "total" | "subtotal" | "growi_user_id" | "growi_campaign_id" | "commission"
            );
            let value = match text::digits(&v).and_then(|n| i64::try_from(n).ok()) {
                Some(n) if numeric => Loose::Int(n),
                _ => Loose::Str(v),
            };
            input.set(&k, value);
        }
        input
    }

    /// Sets a field (replacing an earlier value of the same name).
    pub fn set(&mut self, name: &str, value: Loose) {
        self.fields.retain(|(k, _)| k != name);
        self.fields.push((name.to_owned(), value));
    }

    /// The value of a field, if present and not `null`.
    pub fn get(&self, name: &str) -> Option<&Loose> {
        self.fields
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
            .filter(|v| **v != Loose::Null)
    }

    /// Whether the input names any attribution field itself.
    pub fn has_attribution(&self) -> bool {
        [
            "campaign_affiliate_id",
            "growi_user_id",
            "growi_campaign_id",
        ]
        .iter()
        .any(|f| self.get(f).is_some())
    }

    /// Fills in attribution and visitor uid that the caller did not give: the stored attribution
    /// of the browser, or the proxy's cookies. What the caller gave always wins.
    pub fn fill_in(&mut self, referral: Option<&Referral>, visitor_uid: Option<&str>) {
        if let (false, Some(r)) = (self.has_attribution(), referral) {
            match r {
                Referral::Tag(tag) => self.set("campaign_affiliate_id", Loose::Str(tag.clone())),
                Referral::Growi {
                    user_id,
                    campaign_id,
                } => {
                    self.set("growi_user_id", Loose::Int(*user_id as i64));
                    self.set("growi_campaign_id", Loose::Int(*campaign_id as i64));
                }
            }
        }
        if let (None, Some(uid)) = (self.get("visitor_uid"), visitor_uid) {
            self.set("visitor_uid", Loose::Str(uid.to_owned()));
        }
    }

    /// The signed order token, if the page passed one (a string).
    pub fn order_token(&self) -> Option<&str> {
        match self.get("order_token")? {
            Loose::Str(s) => Some(s.as_str()),
            _ => None,
        }
    }

    /// The `order_id` as given, for a duplicate check before validation (trimmed; numbers
    /// as their decimal text).
    pub fn order_id(&self) -> Option<String> {
        match self.get("order_id")? {
            Loose::Str(s) => Some(s.trim().to_owned()),
            Loose::Int(n) => Some(text::int(*n)),
            _ => None,
        }
    }

    /// Checks every rule and builds the create body, or lists every problem.
    pub fn validate(&self, origin: Origin) -> Result<Sale, SaleError> {
        let mut v = Checker::default();
        for (name, _) in &self.fields {
            if !SALE_FIELDS.contains(&name.as_str()) && !TRANSPORT_FIELDS.contains(&name.as_str()) {
                v.unknown(name, SALE_FIELDS, ALIASES);
            }
        }
        let order_id = v.order_id(self.get("order_id"));
        let total = v.amount("total", self.get("total"));
        let subtotal = v.amount("subtotal", self.get("subtotal"));
        if self.get("total").is_none() && self.get("subtotal").is_none() {
            v.push("total", "total or subtotal is required (an integer in minor units, e.g. 12999 for 129.99 usd)");
        }
        let currency = v.currency(self.get("currency"));
        let tag = v.text(
            "campaign_affiliate_id",
            self.get("campaign_affiliate_id"),
            64,
        );
        if let Some(t) = &tag {
            if !is_valid_tag(t) {
                v.push(
                    "campaign_affiliate_id",
                    "must be 1-64 letters, digits, '_', '.' or '-'",
                );
            }
        }
        let user_id = v.growi_id("growi_user_id", self.get("growi_user_id"));
        let campaign_id = v.growi_id("growi_campaign_id", self.get("growi_campaign_id"));
        let (has_user, has_campaign) = (
            self.get("growi_user_id").is_some(),
            self.get("growi_campaign_id").is_some(),
        );
        if has_user != has_campaign {
            let missing = if has_user {
                "growi_campaign_id"
            } else {
                "growi_user_id"
            };
            let given = if has_user {
                "growi_user_id"
            } else {
                "growi_campaign_id"
            };
            v.push(
                missing,
                text::concat(&["is required together with ", given]),
            );
        }
        if self.get("campaign_affiliate_id").is_some() && (has_user || has_campaign) {
            v.push(
                "campaign_affiliate_id",
                "give either campaign_affiliate_id or growi_user_id with growi_campaign_id, not both",
            );
        }
        let occurred_at = v.timestamp("occurred_at", self.get("occurred_at"));
        let due_at = v.server_only(origin, "due_at", self.get("due_at"), |v, x| {
            v.timestamp("due_at", Some(x))
        });
        let customer_email = v.email(self.get("customer_email"));
        let customer_name = v.text("customer_name", self.get("customer_name"), MAX_TEXT_BYTES);
        let visitor_uid = v.visitor_uid(self.get("visitor_uid"));
        let sale_type = match self.get("sale_type") {
            None => None,
            Some(Loose::Str(s)) if s == "one_time" => Some(SaleType::OneTime),
            Some(Loose::Str(s)) if s == "subscription" => Some(SaleType::Subscription),
            Some(_) => {
                v.push("sale_type", "must be \"one_time\" or \"subscription\"");
                None
            }
        };
        let commission = v.server_only(origin, "commission", self.get("commission"), |v, x| {
            v.amount("commission", Some(x))
        });
        if self.get("status").is_some() {
            v.push(
                "status",
                match origin {
                    Origin::Browser => "is the merchant's server-side decision and cannot be sent from a browser; set it through the proxy's admin API",
                    Origin::Server => "is not part of a new sale (every new sale is unpaid); change it with an update",
                },
            );
        }
        if !v.issues.is_empty() {
            return Err(SaleError::Invalid(v.issues));
        }
        let (Some(order_id), Some(currency)) = (order_id, currency) else {
            return Err(SaleError::Invalid(v.issues));
        };
        let complete_pair = user_id.is_some() && campaign_id.is_some();
        if tag.is_none() && !complete_pair {
            return Err(SaleError::Unattributed);
        }
        Ok(Sale {
            order_id,
            total,
            subtotal,
            currency,
            campaign_affiliate_id: tag,
            growi_user_id: user_id,
            growi_campaign_id: campaign_id,
            occurred_at: occurred_at.map(Timestamp::from_millis),
            due_at: due_at.flatten().map(Timestamp::from_millis),
            customer_email,
            customer_name,
            visitor_uid,
            sale_type,
            commission: commission.flatten(),
        })
    }
}

/// Collects issues while each rule converts its field.
#[derive(Default)]
pub(crate) struct Checker {
    pub(crate) issues: Vec<Issue>,
}

impl Checker {
    /// One issue. Not generic and never inlined: validation has dozens of call sites, and each
    /// one is a plain call this way (the browser module's size budget).
    #[inline(never)]
    pub(crate) fn push(&mut self, field: &str, message: impl AsRef<str>) {
        self.add(field, message.as_ref());
    }

    #[inline(never)]
    fn add(&mut self, field: &str, message: &str) {
        self.issues.push(Issue {
            field: field.to_owned(),
            message: message.to_owned(),
        });
    }

    pub(crate) fn unknown(&mut self, name: &str, known: &[&'static str], aliases: &[(&str, &str)]) {
        let hint = aliases
            .iter()
            .find(|(a, _)| a.eq_ignore_ascii_case(name))
            .map(|(_, k)| *k)
            .or_else(|| suggest(name, known));
        let message = match hint {
            Some(k) => text::concat(&["is not a field of a sale; did you mean ", k, "?"]),
            None => "is not a field of a sale".to_owned(),
        };
        self.push(name, message);
    }

    fn wrong_type(&mut self, field: &str, wanted: &str, got: &Loose) {
        self.push(
            field,
            text::concat(&["must be ", wanted, ", not ", got.kind()]),
        );
    }

    fn order_id(&mut self, value: Option<&Loose>) -> Option<String> {
        let text = match value {
            None => {
                self.push("order_id", "is required");
                return None;
            }
            Some(Loose::Int(n)) if *n >= 0 => text::int(*n),
            Some(Loose::Str(s)) => s.trim().to_owned(),
            Some(other) => {
                self.wrong_type("order_id", "a string", other);
                return None;
            }
        };
        if text.is_empty() {
            self.push("order_id", "must not be empty");
            return None;
        }
        if text.len() > MAX_TEXT_BYTES {
            self.push("order_id", too_long(text.len()));
            return None;
        }
        if text.chars().any(char::is_control) {
            self.push("order_id", "must contain printable characters only");
            return None;
        }
        Some(text)
    }

    pub(crate) fn amount(&mut self, field: &str, value: Option<&Loose>) -> Option<u64> {
        match value? {
            Loose::Int(n) if *n < 0 => self.push(field, "must not be negative"),
            Loose::Int(n) if *n as u64 > MAX_AMOUNT => {
                self.push(field, "must be at most 2^53-1 (9007199254740991)")
            }
            Loose::Int(n) => return u64::try_from(*n).ok(),
            Loose::Fraction => self.push(
                field,
                "must be an integer in minor units (cents): 129.99 usd is 12999; toMinorUnits(\"129.99\", \"usd\") converts exactly",
            ),
            Loose::Str(_) => self.push(
                field,
                "must be a number in minor units, not a string (toMinorUnits converts \"129.99\")",
            ),
            other => self.wrong_type(field, "an integer in minor units", other),
        }
        None
    }

    pub(crate) fn currency(&mut self, value: Option<&Loose>) -> Option<String> {
        match value {
            None => self.push("currency", "is required (an ISO 4217 code such as \"usd\")"),
            Some(Loose::Str(s)) => {
                let code = s.trim();
                if money::exponent(code).is_some() {
                    return Some(code.to_ascii_lowercase());
                }
                self.push(
                    "currency",
                    text::concat(&["\"", code, "\" is not an active ISO 4217 currency code"]),
                );
            }
            Some(other) => self.wrong_type("currency", "a string", other),
        }
        None
    }

    pub(crate) fn text(
        &mut self,
        field: &str,
        value: Option<&Loose>,
        max: usize,
    ) -> Option<String> {
        match value? {
            Loose::Str(s) => {
                let t = s.trim();
                if t.is_empty() {
                    self.push(field, "must not be empty (leave it out instead)");
                } else if t.len() > max {
                    self.push(field, too_long(t.len()));
                } else if t.chars().any(char::is_control) {
                    self.push(field, "must contain printable characters only");
                } else {
                    return Some(t.to_owned());
                }
            }
            other => self.wrong_type(field, "a string", other),
        }
        None
    }

    fn growi_id(&mut self, field: &str, value: Option<&Loose>) -> Option<u64> {
        match value? {
            Loose::Int(n) if *n > 0 && *n as u64 <= MAX_AMOUNT => u64::try_from(*n).ok(),
            Loose::Str(s) => match text::digits(s.trim()) {
                Some(n) if n > 0 && n <= MAX_AMOUNT => Some(n),
                _ => {
                    self.push(field, "must be a positive integer");
                    None
                }
            },
            _ => {
                self.push(field, "must be a positive integer");
                None
            }
        }
    }

    pub(crate) fn timestamp(&mut self, field: &str, value: Option<&Loose>) -> Option<i64> {
        match value? {
            Loose::Str(s) => match time::parse_rfc3339(s) {
                Some(ms) => return Some(ms),
                None => self.push(
                    field,
                    "must be an RFC 3339 date-time with a time zone, e.g. \"2025-09-30T23:55:29Z\"",
                ),
            },
            other => self.wrong_type(field, "an RFC 3339 date-time string", other),
        }
        None
    }

    /// A UUID v4 (the tracker's visitor id), any case, kept in lower case.
    fn visitor_uid(&mut self, value: Option<&Loose>) -> Option<String> {
        let text = self.text("visitor_uid", value, 36)?.to_ascii_lowercase();
        if crate::visitor::is_uuid_v4(&text) {
            Some(text)
        } else {
            self.push(
                "visitor_uid",
                "must be a UUID v4 like 0b6f3c1e-2a4d-4e5f-9a7b-1c2d3e4f5a6b (the tracker's visitor id)",
            );
            None
        }
    }

    pub(crate) fn email(&mut self, value: Option<&Loose>) -> Option<String> {
        let text = self.text("customer_email", value, MAX_TEXT_BYTES)?;
        if is_valid_email(&text) {
            Some(text)
        } else {
            self.push("customer_email", "is not a valid email address");
            None
        }
    }

    fn server_only<T>(
        &mut self,
        origin: Origin,
        field: &str,
        value: Option<&Loose>,
        check: impl FnOnce(&mut Self, &Loose) -> Option<T>,
    ) -> Option<Option<T>> {
        let value = value?;
        match origin {
            Origin::Browser => {
                self.push(
                    field,
                    "is the merchant's server-side decision and cannot be sent from a browser (the proxy can set it)",
                );
                None
            }
            Origin::Server => Some(check(self, value)),
        }
    }
}

/// "must be at most 255 bytes of UTF-8 text (this one has N)".
fn too_long(bytes: usize) -> String {
    let mut m = String::from("must be at most ");
    text::push_uint(&mut m, MAX_TEXT_BYTES as u64, 1);
    m.push_str(" bytes of UTF-8 text (this one has ");
    text::push_uint(&mut m, bytes as u64, 1);
    m.push(')');
    m
}

/// A syntactic check: `local@domain.tld`, no spaces, sensible lengths and labels; any
/// non-ASCII character is allowed where a letter is (internationalised addresses).
///
/// Written over bytes (a byte of a non-ASCII character is always >= 0x80), which the browser
/// module's size budget prefers to `char` iteration; `tests/core.rs` holds it to the `char`-based
/// statement of the same rules on random input.
pub fn is_valid_email(s: &str) -> bool {
    let b = s.as_bytes();
    let Some(at) = b.iter().rposition(|&c| c == b'@') else {
        return false;
    };
    let (local, domain) = (&b[..at], &b[at + 1..]);
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local.first() != Some(&b'.')
        && local.last() != Some(&b'.')
        && !local.windows(2).any(|w| w == b"..")
        && local.iter().all(|&c| {
            c.is_ascii_alphanumeric() || c >= 0x80 || b"!#$%&'*+/=?^_`{|}~.-".contains(&c)
        });
    if !local_ok || domain.len() > 253 {
        return false;
    }
    let mut labels = 0;
    let mut last: &[u8] = &[];
    for label in domain.split(|&c| c == b'.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label.first() != Some(&b'-')
            && label.last() != Some(&b'-')
            && label
                .iter()
                .all(|&c| c.is_ascii_alphanumeric() || c >= 0x80 || c == b'-');
        if !ok {
            return false;
        }
        labels += 1;
        last = label;
    }
    // The top-level label: at least two characters (bytes that start one), not all digits.
    labels >= 2
        && last.iter().filter(|&&c| c & 0xC0 != 0x80).count() >= 2
        && !last.iter().all(u8::is_ascii_digit)
}
