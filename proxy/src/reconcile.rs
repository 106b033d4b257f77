//! Reconciliation: what the outbox says Growi should hold, against what Growi holds.
//!
//! This module is the comparison and the report, and nothing else: pure functions over the
//! outbox's jobs ([`JobView`]) and Growi's sales ([`GrowiSale`]), unit-tested here. Running one
//! (reading the outbox, paging through Growi at the sender's pace, keeping the report) is
//! [`run`]; the admin endpoints are `http::reconcile`; the `reconcile` subcommand is the CLI.
//!
//! What the outbox expects of an order ([`Expected`]) is its create plus the updates that were
//! *sent*, applied in order: a cancellation or a corrected total that Growi acknowledged is part
//! of the truth, one still queued is not (yet), one Growi refused never will be. Only what the
//! proxy sent is compared: `total` and `subtotal` when the proxy set them, `currency`, and the
//! status. A status is only the proxy's to expect once an update set it; before that the sale
//! must merely be alive at Growi (Growi moves `unpaid` to `paid` itself when it pays the
//! commission), so a sale Growi shows `cancelled` or `refunded` that the proxy never cancelled is
//! a difference. Sales of other platforms (Shopify, ...) are Growi's, never differences.
//!
//! The differences ([`Kind`]): a sale sent but missing at Growi; one whose fields differ; a
//! website sale at Growi that this proxy never saw; several website sales at Growi for one order;
//! a sale the proxy marked failed that Growi holds nevertheless. A sale still queued at the proxy
//! is never one (it is on its way, or was delivered a moment ago and not recorded yet).
//!
//! Days are UTC calendar days ([`Day`]). Growi's `start_date` / `end_date` do not say in which
//! time zone they count, so [`run`] asks Growi for one day more on each side and this module
//! places every sale in the window by its own `occurred_at`: a sale near midnight is compared,
//! never taken for missing because the two sides cut the day differently.

pub mod run;

use crate::outbox::{JobKind, JobState, JobView};
use crate::sender::upstream::GrowiSale;
use salebeacon::time::{format_utc, parse_rfc3339};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

const DAY_MS: i64 = 86_400_000;

/// A calendar day (UTC), as days since 1970-01-01; written `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(i64);

impl Day {
    /// `YYYY-MM-DD` (a real date, 1970-9999).
    pub fn parse(text: &str) -> Option<Day> {
        let t = text.trim();
        if t.len() != 10 {
            return None;
        }
        parse_rfc3339(&format!("{t}T00:00:00Z")).map(Day::of_ms)
    }
    /// The day an instant (ms since the epoch) falls on.
    pub fn of_ms(ms: i64) -> Day {
        Day(ms.div_euclid(DAY_MS))
    }
    /// Midnight at its start, ms since the epoch.
    pub fn start_ms(self) -> i64 {
        self.0.saturating_mul(DAY_MS)
    }
    /// `days` later (earlier when negative).
    pub fn plus(self, days: i64) -> Day {
        Day(self.0.saturating_add(days))
    }
    /// How many days from `self` to `other`.
    pub fn days_until(self, other: Day) -> i64 {
        other.0 - self.0
    }
    /// `MM/DD/YYYY`, as Growi's list takes `start_date` and `end_date`.
    pub fn growi(self) -> String {
        let iso = self.to_string();
        let mut parts = iso.splitn(3, '-');
        let (y, m, d) = (parts.next(), parts.next(), parts.next());
        format!(
            "{}/{}/{}",
            m.unwrap_or("01"),
            d.unwrap_or("01"),
            y.unwrap_or("1970")
        )
    }
}

impl std::fmt::Display for Day {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let stamp = format_utc(self.start_ms());
        f.write_str(stamp.get(..10).unwrap_or(&stamp))
    }
}

impl Serialize for Day {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Day {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Day::parse(&text).ok_or_else(|| serde::de::Error::custom("expected a date, YYYY-MM-DD"))
    }
}

/// The days compared, both included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub since: Day,
    pub until: Day,
}

impl Window {
    /// Whether an instant (ms) falls on one of its days.
    pub fn holds(self, ms: i64) -> bool {
        let day = Day::of_ms(ms);
        self.since <= day && day <= self.until
    }
}

/// What the outbox expects Growi to hold for one order: its create and its sent updates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expected {
    pub order_id: String,
    /// The create's delivery state.
    pub state: Option<JobState>,
    pub growi_id: Option<i64>,
    pub total: Option<i64>,
    pub subtotal: Option<i64>,
    pub currency: Option<String>,
    /// The status the last sent update set (`canceled` read as `cancelled`), if any did.
    pub status: Option<String>,
    /// ms since the epoch.
    pub occurred_at: Option<i64>,
    /// Updates still queued: Growi may not show them yet.
    pub queued_updates: u32,
    /// Why the create failed, when it did.
    pub last_error: Option<String>,
}

impl Expected {
    fn apply(&mut self, body: &Value, with_status: bool) {
        if let Some(n) = body.get("total").and_then(Value::as_i64) {
            self.total = Some(n);
        }
        if let Some(n) = body.get("subtotal").and_then(Value::as_i64) {
            self.subtotal = Some(n);
        }
        if let Some(c) = body.get("currency").and_then(Value::as_str) {
            self.currency = Some(c.to_ascii_lowercase());
        }
        if let Some(t) = body
            .get("occurred_at")
            .and_then(Value::as_str)
            .and_then(parse_rfc3339)
        {
            self.occurred_at = Some(t);
        }
        if with_status {
            if let Some(s) = body.get("status").and_then(Value::as_str) {
                self.status = Some(status_word(s));
            }
        }
    }

    fn sent(&self) -> bool {
        self.state == Some(JobState::Sent)
    }
}

/// Growi spells it `cancelled` on PATCH and `canceled` in its list filter: one word here.
fn status_word(s: &str) -> String {
    let s = s.trim().to_ascii_lowercase();
    if s == "canceled" {
        "cancelled".to_owned()
    } else {
        s
    }
}

/// Whether a status at Growi means the sale no longer counts.
fn is_void(status: &str) -> bool {
    matches!(status, "cancelled" | "refunded")
}

/// The expected state of every order whose create is among `jobs` (creates and updates, any
/// order: they are taken by `id`, the outbox's sequence). Updates without their create are left
/// out.
pub fn expected_from_jobs(jobs: impl IntoIterator<Item = JobView>) -> BTreeMap<String, Expected> {
    let mut jobs: Vec<JobView> = jobs.into_iter().collect();
    jobs.sort_by_key(|j| j.id);
    let mut out: BTreeMap<String, Expected> = BTreeMap::new();
    for job in jobs {
        match job.kind {
            JobKind::Create => {
                let mut e = Expected {
                    order_id: job.order_id.clone(),
                    state: Some(job.state),
                    growi_id: job.growi_id,
                    last_error: (job.state == JobState::Failed)
                        .then(|| job.last_error.clone())
                        .flatten(),
                    ..Expected::default()
                };
                e.apply(&job.body, false);
                out.insert(job.order_id, e);
            }
            JobKind::Update => {
                let Some(e) = out.get_mut(&job.order_id) else {
                    continue;
                };
                match job.state {
                    JobState::Sent => e.apply(&job.body, true),
                    JobState::Queued => e.queued_updates += 1,
                    JobState::Failed => {}
                }
            }
        }
    }
    out
}

/// How an order differs.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Sent (Growi acknowledged it), but Growi has no such sale now.
    MissingAtGrowi,
    /// At both, with different values.
    Differs,
    /// A website sale at Growi that this proxy never saw.
    UnknownToProxy,
    /// Several website sales at Growi for one order.
    DuplicateAtGrowi,
    /// The proxy marked it failed (Growi refused it), yet Growi holds it.
    FailedButAtGrowi,
}

impl Kind {
    /// For the table.
    pub fn label(self) -> &'static str {
        match self {
            Kind::MissingAtGrowi => "missing at Growi",
            Kind::Differs => "differs",
            Kind::UnknownToProxy => "unknown to proxy",
            Kind::DuplicateAtGrowi => "duplicate at Growi",
            Kind::FailedButAtGrowi => "failed but at Growi",
        }
    }
}

/// One field that differs: the proxy's value and Growi's (`null` when a side has none).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FieldDiff {
    pub field: String,
    #[schema(value_type = Value)]
    pub proxy: Value,
    #[schema(value_type = Value)]
    pub growi: Value,
}

/// One order that differs, and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Difference {
    pub order_id: String,
    pub kind: Kind,
    /// Growi's ids: the proxy's record for a missing sale, Growi's for the others.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub growi_ids: Vec<i64>,
    /// For `differs`, the fields that differ; for `unknown_to_proxy`, what Growi holds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldDiff>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One order, both sides: the difference, if any. `at_growi` are Growi's website sales with this
/// order id (usually one, or none).
pub fn compare_order(
    order_id: &str,
    expected: Option<&Expected>,
    at_growi: &[&GrowiSale],
) -> Option<Difference> {
    let diff = |kind, growi_ids, fields, note| Difference {
        order_id: order_id.to_owned(),
        kind,
        growi_ids,
        fields,
        note,
    };
    let ids: Vec<i64> = at_growi.iter().map(|s| s.id).collect();
    let growi = match at_growi {
        [] => {
            let e = expected.filter(|e| e.sent())?;
            let ids = e.growi_id.into_iter().collect();
            return Some(diff(Kind::MissingAtGrowi, ids, Vec::new(), None));
        }
        [one] => *one,
        _ => {
            let note = format!(
                "Growi holds {} website sales for this order",
                at_growi.len()
            );
            return Some(diff(Kind::DuplicateAtGrowi, ids, Vec::new(), Some(note)));
        }
    };
    let Some(e) = expected else {
        let held = vec![
            field("total", Value::Null, json!(growi.total)),
            field("currency", Value::Null, json!(growi.currency)),
            field("status", Value::Null, json!(growi.status)),
        ];
        return Some(diff(Kind::UnknownToProxy, ids, held, None));
    };
    match e.state {
        Some(JobState::Sent) => {}
        Some(JobState::Failed) => {
            let note = e
                .last_error
                .as_ref()
                .map(|r| format!("the proxy's create failed: {r}"));
            return Some(diff(Kind::FailedButAtGrowi, ids, Vec::new(), note));
        }
        Some(JobState::Queued) | None => return None,
    }
    let mut fields = Vec::new();
    for (name, want, held) in [
        ("total", e.total, growi.total),
        ("subtotal", e.subtotal, growi.subtotal),
    ] {
        if let Some(want) = want {
            if held != Some(want) {
                fields.push(field(name, json!(want), json!(held)));
            }
        }
    }
    if let Some(want) = &e.currency {
        let held = growi.currency.as_deref().map(str::to_ascii_lowercase);
        if held.as_deref() != Some(want.as_str()) {
            fields.push(field("currency", json!(want), json!(growi.currency)));
        }
    }
    let held = growi.status.as_deref().map(status_word);
    match (&e.status, held.as_deref()) {
        (Some(want), held) if held != Some(want.as_str()) => {
            fields.push(field("status", json!(want), json!(growi.status)));
        }
        (None, Some(held)) if is_void(held) => {
            fields.push(field("status", json!("active"), json!(growi.status)));
        }
        _ => {}
    }
    if fields.is_empty() {
        return None;
    }
    let note = (e.queued_updates > 0).then(|| {
        "an update for this order is still queued at the proxy; Growi may not have it yet"
            .to_owned()
    });
    Some(diff(Kind::Differs, ids, fields, note))
}

fn field(name: &str, proxy: Value, growi: Value) -> FieldDiff {
    FieldDiff {
        field: name.to_owned(),
        proxy,
        growi,
    }
}

/// How many sales each side had, and what came of them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Counts {
    /// Sales in the window the proxy sent.
    pub sent_by_proxy: u64,
    /// Website sales in the window at Growi (each order once).
    pub website_at_growi: u64,
    /// Orders in the window on both sides that agree.
    pub agree: u64,
    /// Sales in the window still queued at the proxy (not compared).
    pub not_sent_yet: u64,
    /// Sales of other platforms Growi listed (not compared, never differences).
    pub other_platforms: u64,
}

/// What [`compare`] found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Comparison {
    pub counts: Counts,
    /// Sorted by kind, then order id.
    pub differences: Vec<Difference>,
}

/// Growi's sales (any pages, repeats allowed) grouped by order: website sales only (the others
/// are counted), each Growi id once. Sales without an order id are kept under `""`.
pub fn website_sales(growi: &[GrowiSale]) -> (BTreeMap<String, Vec<&GrowiSale>>, u64) {
    let mut seen = BTreeSet::new();
    let mut others = 0;
    let mut by_order: BTreeMap<String, Vec<&GrowiSale>> = BTreeMap::new();
    for sale in growi {
        if !seen.insert(sale.id) {
            continue;
        }
        let website = sale
            .platform
            .as_deref()
            .is_none_or(|p| p.eq_ignore_ascii_case("website"));
        if !website {
            others += 1;
            continue;
        }
        let order = sale.external_id.clone().unwrap_or_default();
        by_order.entry(order).or_default().push(sale);
    }
    (by_order, others)
}

/// Compares the outbox's expectations with Growi's sales over `window`. `growi` may reach a day
/// beyond the window on each side: a sale is in the window by its own `occurred_at` (Growi's or
/// the outbox's), and compared when either side places it there.
pub fn compare(
    window: Window,
    outbox: &BTreeMap<String, Expected>,
    growi: &[GrowiSale],
) -> Comparison {
    let (by_order, other_platforms) = website_sales(growi);
    let mut counts = Counts {
        other_platforms,
        ..Counts::default()
    };
    let in_window = |ms: Option<i64>| ms.is_none_or(|t| window.holds(t));
    let growi_in_window = |sales: &[&GrowiSale]| {
        sales.iter().any(|s| {
            in_window(
                s.occurred_at
                    .as_deref()
                    .map(|t| parse_rfc3339(t).unwrap_or(window.since.start_ms())),
            )
        })
    };
    let mut orders: BTreeSet<&str> = BTreeSet::new();
    for (order, e) in outbox {
        if !in_window(e.occurred_at) {
            continue;
        }
        match e.state {
            Some(JobState::Sent) => {
                counts.sent_by_proxy += 1;
                orders.insert(order);
            }
            Some(JobState::Queued) => counts.not_sent_yet += 1,
            _ => {}
        }
    }
    for (order, sales) in &by_order {
        if growi_in_window(sales) {
            if order.is_empty() {
                counts.website_at_growi += sales.len() as u64;
            } else {
                counts.website_at_growi += 1;
            }
            orders.insert(order);
        }
    }
    let mut differences = Vec::new();
    for order in orders {
        let at_growi: &[&GrowiSale] = by_order.get(order).map_or(&[], Vec::as_slice);
        if order.is_empty() {
            // Growi's sales without an order id: none can be the proxy's.
            for sale in at_growi {
                if let Some(mut d) = compare_order("", None, &[sale]) {
                    d.note = Some("Growi shows no order id for this sale".into());
                    differences.push(d);
                }
            }
            continue;
        }
        match compare_order(order, outbox.get(order), at_growi) {
            Some(d) => differences.push(d),
            None => {
                if !at_growi.is_empty() && outbox.get(order).is_some_and(Expected::sent) {
                    counts.agree += 1;
                }
            }
        }
    }
    differences.sort_by(|a, b| (a.kind, &a.order_id).cmp(&(b.kind, &b.order_id)));
    Comparison {
        counts,
        differences,
    }
}

/// A finished reconciliation: what was compared, and every order that differs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Report {
    /// The run's id.
    pub id: String,
    #[schema(value_type = String, format = Date)]
    pub since: Day,
    #[schema(value_type = String, format = Date)]
    pub until: Day,
    pub started_at: String,
    pub finished_at: String,
    /// True when nothing differs.
    pub agree: bool,
    pub counts: Counts,
    /// Pages of Growi's list read, and upstream requests made for them (retries included).
    pub pages: u32,
    pub requests: u32,
    pub differences: Vec<Difference>,
    /// Differences found beyond those listed (the list is capped).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub more_differences: u64,
    /// What a reader should know about this run (e.g. a window older than retention).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Report {
    /// The report as a plain-text table, one line per order that differs.
    pub fn table(&self) -> String {
        let c = &self.counts;
        let mut out = format!(
            "Reconciliation with Growi, {} to {} (UTC days), finished {}\n\
             {} sent by the proxy, {} at Growi, {} agree",
            self.since,
            self.until,
            self.finished_at,
            plural(c.sent_by_proxy, "sale"),
            plural(c.website_at_growi, "website sale"),
            c.agree
        );
        if c.not_sent_yet > 0 {
            out.push_str(&format!("; {} not sent yet", c.not_sent_yet));
        }
        if c.other_platforms > 0 {
            out.push_str(&format!(
                "; {} of other platforms left aside",
                plural(c.other_platforms, "sale")
            ));
        }
        out.push_str(&format!(
            " ({}, {})\n",
            plural(u64::from(self.pages), "page"),
            plural(u64::from(self.requests), "request")
        ));
        for note in &self.notes {
            out.push_str(&format!("Note: {}\n", clean(note)));
        }
        let total = self.differences.len() as u64 + self.more_differences;
        if total == 0 {
            out.push_str("Everything agrees.\n");
            return out;
        }
        out.push_str(&format!(
            "{total} {} differ{}:\n\n",
            if total == 1 { "order" } else { "orders" },
            if total == 1 { "s" } else { "" }
        ));
        let rows: Vec<[String; 3]> = self
            .differences
            .iter()
            .map(|d| {
                [
                    clean(&d.order_id),
                    d.kind.label().to_owned(),
                    clean(&detail(d)),
                ]
            })
            .collect();
        let header = [
            "ORDER".to_owned(),
            "DIFFERENCE".to_owned(),
            "DETAIL".to_owned(),
        ];
        let width = |i: usize| {
            rows.iter()
                .chain(std::iter::once(&header))
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
        };
        let (w0, w1) = (width(0), width(1));
        for row in std::iter::once(&header).chain(rows.iter()) {
            out.push_str(&format!(
                "{:w0$}  {:w1$}  {}\n",
                row[0],
                row[1],
                row[2],
                w0 = w0,
                w1 = w1
            ));
        }
        if self.more_differences > 0 {
            out.push_str(&format!(
                "... and {} more (not listed)\n",
                self.more_differences
            ));
        }
        out
    }
}

/// `1 page`, `3 pages`.
fn plural(n: u64, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// What the table says about one difference.
fn detail(d: &Difference) -> String {
    let ids = |ids: &[i64]| {
        ids.iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let shown = |v: &Value| match v {
        Value::Null => "none".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut text = match d.kind {
        Kind::MissingAtGrowi => match d.growi_ids.first() {
            Some(id) => format!("sent (Growi id {id}), but Growi has no such sale"),
            None => "sent, but Growi has no such sale".to_owned(),
        },
        Kind::Differs => d
            .fields
            .iter()
            .map(|f| {
                format!(
                    "{}: proxy {}, Growi {}",
                    f.field,
                    shown(&f.proxy),
                    shown(&f.growi)
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
        Kind::UnknownToProxy => {
            let held = d
                .fields
                .iter()
                .map(|f| format!("{} {}", f.field, shown(&f.growi)))
                .collect::<Vec<_>>()
                .join(", ");
            format!(
                "at Growi (id {}: {held}), never seen by this proxy",
                ids(&d.growi_ids)
            )
        }
        Kind::DuplicateAtGrowi => format!("Growi ids {}", ids(&d.growi_ids)),
        Kind::FailedButAtGrowi => format!(
            "failed at the proxy, but Growi holds it (id {})",
            ids(&d.growi_ids)
        ),
    };
    if let Some(note) = &d.note {
        text.push_str(&format!(" ({note})"));
    }
    text
}

/// Text from Growi or a shop, safe on a terminal: control characters are escaped.
fn clean(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: i64, kind: JobKind, order: &str, state: JobState, body: Value) -> JobView {
        JobView {
            id,
            kind,
            order_id: order.to_owned(),
            state,
            attempts: 1,
            next_attempt_at: None,
            last_status: Some(201),
            last_error: (state == JobState::Failed).then(|| "Campaign affiliate not found.".into()),
            growi_id: (kind == JobKind::Create && state == JobState::Sent).then_some(1000 + id),
            created_at: "2025-03-01T10:00:00.000Z".into(),
            sent_at: None,
            note: None,
            body,
        }
    }

    fn create(id: i64, order: &str, state: JobState) -> JobView {
        job(
            id,
            JobKind::Create,
            order,
            state,
            json!({"order_id": order, "total": 12999, "subtotal": 11000, "currency": "usd",
                   "occurred_at": "2025-03-01T10:00:00.000Z", "campaign_affiliate_id": "creator42"}),
        )
    }

    fn update(id: i64, order: &str, state: JobState, body: Value) -> JobView {
        job(id, JobKind::Update, order, state, body)
    }

    fn growi(id: i64, order: &str, platform: &str, total: i64, status: &str) -> GrowiSale {
        GrowiSale {
            id,
            external_id: Some(order.to_owned()),
            platform: Some(platform.to_owned()),
            status: Some(status.to_owned()),
            total: Some(total),
            subtotal: Some(11000),
            currency: Some("usd".into()),
            occurred_at: Some("2025-03-01T10:00:00.000Z".into()),
            ..GrowiSale::default()
        }
    }

    fn march() -> Window {
        Window {
            since: Day::parse("2025-03-01").unwrap(),
            until: Day::parse("2025-03-31").unwrap(),
        }
    }

    #[test]
    fn days_read_write_and_count() {
        let d = Day::parse("2025-03-01").unwrap();
        assert_eq!(d.to_string(), "2025-03-01");
        assert_eq!(d.growi(), "03/01/2025");
        assert_eq!(d.plus(-1).to_string(), "2025-02-28");
        assert_eq!(d.plus(31).to_string(), "2025-04-01");
        assert_eq!(
            Day::parse("2024-02-29").unwrap().plus(1).growi(),
            "03/01/2024"
        );
        assert_eq!(d.days_until(d.plus(30)), 30);
        for bad in [
            "2025-02-29",
            "2025-3-01",
            "03/01/2025",
            "2025-03-01T00:00:00Z",
            "",
            "x",
        ] {
            assert_eq!(Day::parse(bad), None, "{bad}");
        }
        assert_eq!(serde_json::to_value(d).unwrap(), json!("2025-03-01"));
        assert_eq!(
            serde_json::from_value::<Day>(json!("2025-03-01")).unwrap(),
            d
        );
        assert!(serde_json::from_value::<Day>(json!("2025-13-01")).is_err());
        let w = march();
        assert!(w.holds(parse_rfc3339("2025-03-31T23:59:59.999Z").unwrap()));
        assert!(!w.holds(parse_rfc3339("2025-04-01T00:00:00Z").unwrap()));
        assert!(!w.holds(parse_rfc3339("2025-02-28T23:59:59Z").unwrap()));
    }

    #[test]
    fn the_expected_state_is_the_create_plus_its_sent_updates() {
        let jobs = vec![
            // Out of order on purpose: taken by id.
            update(
                4,
                "A",
                JobState::Sent,
                json!({"total": 5000, "status": "canceled"}),
            ),
            create(1, "A", JobState::Sent),
            update(5, "A", JobState::Failed, json!({"total": 1})),
            update(6, "A", JobState::Queued, json!({"status": "paid"})),
            create(2, "B", JobState::Failed),
            update(3, "ORPHAN", JobState::Sent, json!({"total": 1})),
            create(7, "C", JobState::Sent),
            update(
                8,
                "C",
                JobState::Sent,
                json!({"currency": "EUR", "occurred_at": "2025-04-02T00:00:00Z"}),
            ),
        ];
        let e = expected_from_jobs(jobs);
        assert_eq!(e.len(), 3, "no entry for an update without its create");
        let a = &e["A"];
        assert_eq!(
            (a.total, a.subtotal, a.status.as_deref(), a.queued_updates),
            (Some(5000), Some(11000), Some("cancelled"), 1),
            "the sent update counts, the failed one does not, the queued one is noted"
        );
        assert_eq!(a.growi_id, Some(1001));
        let b = &e["B"];
        assert_eq!(b.state, Some(JobState::Failed));
        assert_eq!(
            b.last_error.as_deref(),
            Some("Campaign affiliate not found.")
        );
        let c = &e["C"];
        assert_eq!(c.currency.as_deref(), Some("eur"));
        assert_eq!(c.occurred_at, parse_rfc3339("2025-04-02T00:00:00Z"));
        assert_eq!(c.status, None, "a create never sets the status");
    }

    #[test]
    fn each_kind_of_difference_and_only_those() {
        let jobs = vec![
            create(1, "SAME", JobState::Sent),
            create(2, "MISSING", JobState::Sent),
            create(3, "AMOUNT", JobState::Sent),
            create(4, "CANCELLED", JobState::Sent),
            update(
                5,
                "CANCELLED",
                JobState::Sent,
                json!({"status": "cancelled"}),
            ),
            create(6, "REFUNDED_THERE", JobState::Sent),
            create(7, "QUEUED", JobState::Queued),
            create(8, "FAILED", JobState::Failed),
            create(9, "PAID_THERE", JobState::Sent),
            create(10, "CANCELLED_OK", JobState::Sent),
            update(
                11,
                "CANCELLED_OK",
                JobState::Sent,
                json!({"status": "cancelled", "total": 0}),
            ),
            create(12, "CURRENCY", JobState::Sent),
            create(13, "FAILED_NOT_THERE", JobState::Failed),
        ];
        let outbox = expected_from_jobs(jobs);
        let mut currency = growi(112, "CURRENCY", "website", 12999, "unpaid");
        currency.currency = Some("EUR".into());
        let mut cancelled_ok = growi(110, "CANCELLED_OK", "website", 0, "canceled");
        cancelled_ok.total = Some(0);
        let at_growi = vec![
            growi(101, "SAME", "website", 12999, "unpaid"),
            growi(103, "AMOUNT", "website", 10000, "unpaid"),
            growi(104, "CANCELLED", "website", 12999, "unpaid"),
            growi(106, "REFUNDED_THERE", "website", 12999, "refunded"),
            growi(107, "QUEUED", "website", 12999, "unpaid"),
            growi(108, "FAILED", "website", 12999, "unpaid"),
            growi(109, "PAID_THERE", "website", 12999, "paid"),
            cancelled_ok,
            currency,
            growi(120, "NEVER_SEEN", "website", 500, "unpaid"),
            growi(121, "SHOP-1", "shopify", 500, "unpaid"),
            growi(122, "DUP", "website", 1, "unpaid"),
            growi(123, "DUP", "website", 1, "unpaid"),
            // A repeat from a shifted page is the same sale, not a duplicate.
            growi(101, "SAME", "website", 12999, "unpaid"),
        ];
        let c = compare(march(), &outbox, &at_growi);
        let got: Vec<(&str, Kind)> = c
            .differences
            .iter()
            .map(|d| (d.order_id.as_str(), d.kind))
            .collect();
        assert_eq!(
            got,
            vec![
                ("MISSING", Kind::MissingAtGrowi),
                ("AMOUNT", Kind::Differs),
                ("CANCELLED", Kind::Differs),
                ("CURRENCY", Kind::Differs),
                ("REFUNDED_THERE", Kind::Differs),
                ("NEVER_SEEN", Kind::UnknownToProxy),
                ("DUP", Kind::DuplicateAtGrowi),
                ("FAILED", Kind::FailedButAtGrowi),
            ]
        );
        let by = |o: &str| c.differences.iter().find(|d| d.order_id == o).unwrap();
        assert_eq!(
            by("MISSING").growi_ids,
            vec![1002],
            "the proxy's recorded id"
        );
        assert_eq!(
            by("AMOUNT").fields,
            vec![field("total", json!(12999), json!(10000))]
        );
        assert_eq!(
            by("CANCELLED").fields,
            vec![field("status", json!("cancelled"), json!("unpaid"))]
        );
        assert_eq!(
            by("REFUNDED_THERE").fields,
            vec![field("status", json!("active"), json!("refunded"))]
        );
        assert_eq!(
            by("CURRENCY").fields,
            vec![field("currency", json!("usd"), json!("EUR"))]
        );
        assert_eq!(by("NEVER_SEEN").growi_ids, vec![120]);
        assert_eq!(by("DUP").growi_ids, vec![122, 123]);
        assert!(by("FAILED")
            .note
            .as_deref()
            .unwrap()
            .contains("Campaign affiliate"));
        assert_eq!(
            c.counts,
            Counts {
                sent_by_proxy: 8,
                website_at_growi: 11,
                agree: 3,
                not_sent_yet: 1,
                other_platforms: 1,
            }
        );
    }

    #[test]
    fn the_window_is_each_sales_own_day_on_either_side() {
        let mut late = create(1, "LATE", JobState::Sent);
        late.body["occurred_at"] = json!("2025-03-31T23:30:00.000Z");
        let mut before = create(2, "BEFORE", JobState::Sent);
        before.body["occurred_at"] = json!("2025-02-28T12:00:00.000Z");
        let outbox = expected_from_jobs(vec![late, before]);
        // Growi placed LATE on April 1st (its day cuts elsewhere): still compared, and it agrees.
        let mut late_there = growi(1, "LATE", "website", 12999, "unpaid");
        late_there.occurred_at = Some("2025-04-01T00:30:00.000Z".into());
        // A Growi sale of the day before the window, fetched by the widened query: left aside.
        let mut early = growi(3, "EARLY", "website", 1, "unpaid");
        early.occurred_at = Some("2025-02-28T20:00:00.000Z".into());
        let c = compare(march(), &outbox, &[late_there, early]);
        assert_eq!(c.differences, vec![], "{:?}", c.differences);
        assert_eq!((c.counts.sent_by_proxy, c.counts.agree), (1, 1));
        // BEFORE is outside the window and missing at Growi: not this window's business.
        assert!(c.differences.iter().all(|d| d.order_id != "BEFORE"));
    }

    #[test]
    fn a_queued_update_is_named_with_the_difference_it_explains() {
        let outbox = expected_from_jobs(vec![
            create(1, "A", JobState::Sent),
            update(2, "A", JobState::Queued, json!({"status": "cancelled"})),
        ]);
        let held = growi(1, "A", "website", 12999, "cancelled");
        let d = compare_order("A", outbox.get("A"), &[&held]).unwrap();
        assert_eq!(d.kind, Kind::Differs);
        assert!(d.note.unwrap().contains("still queued"));
        assert_eq!(
            compare_order("A", None, &[]),
            None,
            "nothing on either side is no difference"
        );
    }

    #[test]
    fn the_table_names_each_order_and_how() {
        let outbox = expected_from_jobs(vec![
            create(1, "ORD-1002", JobState::Sent),
            create(2, "ORD-1003", JobState::Sent),
        ]);
        let c = compare(
            march(),
            &outbox,
            &[
                growi(7, "ORD-1003", "website", 10000, "unpaid"),
                growi(8, "ORD-\u{1b}[31m9", "website", 5000, "unpaid"),
            ],
        );
        let report = Report {
            id: "r1".into(),
            since: march().since,
            until: march().until,
            started_at: "2025-04-01T08:00:00.000Z".into(),
            finished_at: "2025-04-01T08:00:04.000Z".into(),
            agree: false,
            counts: c.counts,
            pages: 1,
            requests: 1,
            differences: c.differences,
            more_differences: 0,
            notes: vec![],
        };
        let table = report.table();
        assert!(table.contains("2025-03-01 to 2025-03-31"), "{table}");
        assert!(table.contains("3 orders differ"), "{table}");
        assert!(
            table.contains(
                "2 sales sent by the proxy, 2 website sales at Growi, 0 agree (1 page, 1 request)"
            ),
            "{table}"
        );
        let line = |order: &str| {
            table
                .lines()
                .find(|l| l.starts_with(order))
                .unwrap_or_else(|| panic!("no line for {order}: {table}"))
                .to_owned()
        };
        assert!(line("ORD-1002").contains("missing at Growi"));
        assert!(line("ORD-1002").contains("Growi id 1001"));
        assert!(line("ORD-1003").contains("total: proxy 12999, Growi 10000"));
        assert!(
            !table.contains('\u{1b}'),
            "no escape sequence from Growi reaches the terminal: {table:?}"
        );
        assert!(line("ORD-\\u{1b}[31m9").contains("unknown to proxy"));
        // Columns line up.
        let header = line("ORDER");
        let at = header.find("DIFFERENCE").unwrap();
        assert_eq!(&line("ORD-1003")[at..at + 7], "differs");
        // The JSON form reads back the same.
        let back: Report = serde_json::from_str(&serde_json::to_string(&report).unwrap()).unwrap();
        assert_eq!(back, report);
        let agreeing = Report {
            differences: vec![],
            agree: true,
            ..report
        };
        assert!(agreeing.table().contains("Everything agrees."));
    }
}
