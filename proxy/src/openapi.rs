//! The proxy's OpenAPI 3.1 document, served at `{base}/openapi.json`.
//!
//! It cannot drift from the code: every documented route is registered once, through
//! `utoipa-axum`'s router (see `http::api`), which adds the handler to the axum router and its
//! `#[utoipa::path]` description to this document together; a route is in both or in neither.
//! The response types derive their schemas from the structs that are serialized.
//!
//! The request bodies of sales and updates are described here by hand, because the core reads
//! them as loose bags of fields (every problem reported at once, with suggestions), not as
//! structs. Their property lists come from the core's own field lists (`SALE_FIELDS`,
//! `UPDATE_FIELDS`), and a test holds every field to a described type, so a field added to the
//! core without a description fails the build's tests. What the schemas say is what the core
//! accepts at least: the core also reads numbers sent as digit strings and times as Unix
//! seconds, which the schemas document as alternatives.

use salebeacon::sale::{SALE_FIELDS, TRANSPORT_FIELDS};
use salebeacon::update::UPDATE_FIELDS;
use serde::Serialize;
use std::borrow::Cow;
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, Object, ObjectBuilder, OneOfBuilder, Schema, Type,
};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

/// The fields a browser may not send (the merchant's server-side decisions).
pub const SERVER_ONLY: &[&str] = &["commission", "due_at", "status"];

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

fn integer(min: i64) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(min as f64))
}

/// Minor units (cents): an integer, or the same digits as a string.
fn amount(what: &str) -> RefOr<Schema> {
    OneOfBuilder::new()
        .item(integer(0).maximum(Some(salebeacon::money::MAX_AMOUNT as f64)))
        .item(string().pattern(Some("^[0-9]{1,15}$")))
        .description(Some(format!(
            "{what} in the currency's minor units (cents): 12999 for 129.99 USD, 1299 for \
             1299 JPY"
        )))
        .into()
}

/// A time: RFC 3339 with a zone, or Unix seconds.
fn time(what: &str) -> RefOr<Schema> {
    OneOfBuilder::new()
        .item(
            string().format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::DateTime,
            ))),
        )
        .item(integer(0))
        .description(Some(format!(
            "{what}: RFC 3339 with a time zone, or Unix seconds"
        )))
        .into()
}

fn text(description: &str, max: usize) -> RefOr<Schema> {
    string()
        .max_length(Some(max))
        .description(Some(description))
        .into()
}

/// The schema of one sale or update field, by its wire name; `None` for a name the document
/// does not know (a test keeps that from happening).
pub fn field_schema(name: &str) -> Option<RefOr<Schema>> {
    let max = salebeacon::sale::MAX_TEXT_BYTES;
    Some(match name {
        "order_id" => text("The merchant's order id; the idempotency key", max),
        "total" => amount("The order total"),
        "subtotal" => amount("The order subtotal"),
        "currency" => {
            // The core's own table: lower case listed, any case accepted.
            let codes: Vec<String> = salebeacon::money::currencies()
                .map(|(code, _)| code.to_ascii_lowercase())
                .collect();
            string()
                .enum_values(Some(codes))
                .description(Some(
                    "ISO 4217 code (listed in lower case; any case is accepted and sent lower \
                     case)",
                ))
                .into()
        }
        "campaign_affiliate_id" => string()
            .pattern(Some("^[A-Za-z0-9_.-]{1,64}$"))
            .description(Some(
                "The creator's affiliate tag (the `ref` URL parameter the tracker captured)",
            ))
            .into(),
        "growi_user_id" => integer(1).description(Some("Growi user id (with growi_campaign_id)")).into(),
        "growi_campaign_id" => integer(1)
            .description(Some("Growi campaign id (with growi_user_id)"))
            .into(),
        "occurred_at" => time("When the order was placed"),
        "due_at" => time("When the commission is due (server side only)"),
        "customer_email" => OneOfBuilder::new()
            .item(string().format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::Email,
            ))))
            .item(ObjectBuilder::new().schema_type(Type::Null))
            .description(Some("The customer's email (null clears it on an update)"))
            .into(),
        "customer_name" => OneOfBuilder::new()
            .item(string().max_length(Some(max)))
            .item(ObjectBuilder::new().schema_type(Type::Null))
            .description(Some("The customer's name (null clears it on an update)"))
            .into(),
        "visitor_uid" => string()
            .format(Some(utoipa::openapi::SchemaFormat::Custom("uuid".into())))
            .pattern(Some(
                "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-4[0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}$",
            ))
            .description(Some("The tracker's visitor id (UUID v4)"))
            .into(),
        "sale_type" => string()
            .enum_values(Some(["one_time", "subscription"]))
            .into(),
        "commission" => amount("The commission, server side only (Growi computes it otherwise)"),
        "status" => string()
            .enum_values(Some(["unpaid", "paid", "paid_externally", "cancelled", "canceled"]))
            .description(Some("Updates only; `canceled` is read as `cancelled`"))
            .into(),
        "order_token" => string()
            .pattern(Some("^[0-9]{1,12}\\.[0-9a-f]{64}$"))
            .description(Some(
                "The merchant backend's signature over the order (`signOrderToken`), when the \
                 proxy requires one",
            ))
            .into(),
        _ => return None,
    })
}

fn object_of<'a>(fields: impl Iterator<Item = &'a str>, required: &[&str], what: &str) -> Object {
    let mut o = ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(what))
        .additional_properties(Some(AdditionalProperties::FreeForm(false)));
    for f in fields {
        if let Some(s) = field_schema(f) {
            o = o.property(f, s);
        }
    }
    for r in required {
        o = o.required(*r);
    }
    o.build()
}

/// A sale as a page sends it to `POST /sales` (the browser's fields only).
pub struct BrowserSale;

impl PartialSchema for BrowserSale {
    fn schema() -> RefOr<Schema> {
        let fields = SALE_FIELDS
            .iter()
            .chain(TRANSPORT_FIELDS)
            .copied()
            .filter(|f| !SERVER_ONLY.contains(f));
        Schema::Object(object_of(
            fields,
            &["order_id", "currency"],
            "A sale, as the tracker sends it. Also `total` or `subtotal`, and the attribution \
             (`campaign_affiliate_id`, or `growi_user_id` with `growi_campaign_id`) unless the \
             proxy finds it in the visitor's cookies.",
        ))
        .into()
    }
}
impl ToSchema for BrowserSale {}

/// A sale as the merchant's server sends it to `POST /admin/sales`.
pub struct ServerSale;

impl PartialSchema for ServerSale {
    fn schema() -> RefOr<Schema> {
        let fields = SALE_FIELDS
            .iter()
            .chain(TRANSPORT_FIELDS)
            .copied()
            .filter(|f| *f != "status");
        Schema::Object(object_of(
            fields,
            &["order_id", "currency"],
            "A sale from the merchant's server: a browser sale's fields plus `commission` and \
             `due_at`.",
        ))
        .into()
    }
}
impl ToSchema for ServerSale {}

/// A correction to a sale: `PATCH /admin/sales/{order_id}`.
pub struct SaleUpdate;

impl PartialSchema for SaleUpdate {
    fn schema() -> RefOr<Schema> {
        Schema::Object(object_of(
            UPDATE_FIELDS.iter().copied(),
            &[],
            "What changes; only the fields sent are changed. A refund lowers `total`; a \
             cancellation sets `status`.",
        ))
        .into()
    }
}
impl ToSchema for SaleUpdate {}

/// An error answer: what went wrong, and every bad field when there are some.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: String,
    #[schema(nullable = false)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issues: Option<Vec<IssueBody>>,
}

/// One bad field.
#[derive(Serialize, ToSchema)]
pub struct IssueBody {
    pub field: String,
    pub message: String,
}

/// `POST /sales`: `queued` (202, a new sale) or `duplicate` (200, this order is already in).
#[derive(Serialize, ToSchema)]
pub struct IntakeStatus {
    #[schema(value_type = String, example = "queued")]
    pub status: Cow<'static, str>,
}

/// A list of `T`.
pub fn list_of(item: RefOr<Schema>) -> RefOr<Schema> {
    ArrayBuilder::new().items(item).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_the_core_reads_is_described() {
        for f in SALE_FIELDS
            .iter()
            .chain(TRANSPORT_FIELDS)
            .chain(UPDATE_FIELDS)
        {
            assert!(field_schema(f).is_some(), "{f} has no schema in openapi.rs");
        }
    }

    #[test]
    fn a_browser_sale_leaves_out_the_servers_fields() {
        let json = serde_json::to_value(BrowserSale::schema()).unwrap();
        let props = json["properties"].as_object().unwrap();
        for f in SERVER_ONLY {
            assert!(!props.contains_key(*f), "{f}");
        }
        assert!(props.contains_key("order_token") && props.contains_key("visitor_uid"));
        assert_eq!(json["additionalProperties"], false);
    }
}
