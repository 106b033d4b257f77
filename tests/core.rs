//! The core's rules, natively: what makes a sale valid, what every bad input is told, and that
//! no input can make validation panic (property tests).
#![cfg(not(target_arch = "wasm32"))]

use proptest::prelude::*;
use salebeacon::attribution::{Attribution, Model, Referral};
use salebeacon::sale::SaleType;
use salebeacon::update::SaleStatus;
use salebeacon::{Issue, Origin, Sale, SaleError, SaleInput, SaleUpdateInput};
use serde_json::{json, Value};

fn input(v: Value) -> SaleInput {
    serde_json::from_value(v).expect("an object parses into SaleInput")
}

fn check(v: Value, origin: Origin) -> Result<Sale, SaleError> {
    input(v).validate(origin)
}

fn fields(issues: &[Issue]) -> Vec<&str> {
    let mut f: Vec<&str> = issues.iter().map(|i| i.field.as_str()).collect();
    f.sort();
    f
}

fn invalid(v: Value, origin: Origin) -> Vec<Issue> {
    match check(v, origin) {
        Err(SaleError::Invalid(issues)) => issues,
        other => panic!("expected invalid, got {other:?}"),
    }
}

#[test]
fn a_full_valid_sale_becomes_growis_create_body() {
    let sale = check(
        json!({
            "order_id": "  ORD-1001 ",
            "total": 12999,
            "subtotal": 11999,
            "currency": "USD",
            "campaign_affiliate_id": "creator42",
            "occurred_at": "2025-10-01T01:55:29+02:00",
            "customer_email": "ann@example.com",
            "customer_name": "Ann",
            "visitor_uid": "4b7c2f0e-58d1-4c3a-9f4e-2a1b3c4d5e6f",
            "sale_type": "subscription"
        }),
        Origin::Browser,
    )
    .unwrap();
    assert_eq!(sale.order_id, "ORD-1001");
    assert_eq!(sale.currency, "usd");
    assert_eq!(
        sale.occurred_at.map(|t| t.format()).as_deref(),
        Some("2025-09-30T23:55:29.000Z")
    );
    assert_eq!(sale.sale_type, Some(SaleType::Subscription));
    let body = serde_json::to_value(&sale).unwrap();
    assert_eq!(
        body,
        json!({
            "order_id": "ORD-1001", "total": 12999, "subtotal": 11999, "currency": "usd",
            "campaign_affiliate_id": "creator42", "occurred_at": "2025-09-30T23:55:29.000Z",
            "customer_email": "ann@example.com", "customer_name": "Ann",
            "visitor_uid": "4b7c2f0e-58d1-4c3a-9f4e-2a1b3c4d5e6f", "sale_type": "subscription"
        })
    );
}

#[test]
fn growi_id_pair_is_attribution_and_half_a_pair_is_an_error() {
    let sale = check(
        json!({"order_id": 1001, "subtotal": 5, "currency": "eur", "growi_user_id": 42, "growi_campaign_id": "7"}),
        Origin::Browser,
    )
    .unwrap();
    assert_eq!(sale.order_id, "1001");
    assert_eq!(
        sale.referral(),
        Some(Referral::Growi {
            user_id: 42,
            campaign_id: 7
        })
    );
    let issues = invalid(
        json!({"order_id": "A", "total": 5, "currency": "eur", "growi_user_id": 42}),
        Origin::Browser,
    );
    assert_eq!(fields(&issues), ["growi_campaign_id"]);
    let issues = invalid(
        json!({"order_id": "A", "total": 5, "currency": "eur", "growi_user_id": 0, "growi_campaign_id": -1}),
        Origin::Browser,
    );
    assert_eq!(fields(&issues), ["growi_campaign_id", "growi_user_id"]);
    let issues = invalid(
        json!({"order_id": "A", "total": 5, "currency": "eur", "campaign_affiliate_id": "x", "growi_user_id": 1, "growi_campaign_id": 2}),
        Origin::Browser,
    );
    assert_eq!(fields(&issues), ["campaign_affiliate_id"]);
}

#[test]
fn every_problem_is_reported_at_once() {
    let issues = invalid(
        json!({
            "order_id": "",
            "total": 12.5,
            "subtotal": -1,
            "currency": "dollars",
            "campaign_affiliate_id": "has space",
            "occurred_at": "yesterday",
            "customer_email": "ann@",
            "customer_name": 7,
            "sale_type": "lifetime",
            "orderId": "x"
        }),
        Origin::Browser,
    );
    assert_eq!(
        fields(&issues),
        [
            "campaign_affiliate_id",
            "currency",
            "customer_email",
            "customer_name",
            "occurred_at",
            "orderId",
            "order_id",
            "sale_type",
            "subtotal",
            "total"
        ]
    );
    let typo = issues.iter().find(|i| i.field == "orderId").unwrap();
    assert!(typo.message.contains("did you mean order_id?"), "{typo}");
    let float = issues.iter().find(|i| i.field == "total").unwrap();
    assert!(float.message.contains("minor units"), "{float}");
}

#[test]
fn required_fields() {
    let issues = invalid(json!({"campaign_affiliate_id": "x"}), Origin::Server);
    assert_eq!(fields(&issues), ["currency", "order_id", "total"]);
    assert!(issues
        .iter()
        .any(|i| i.message.contains("total or subtotal is required")));
}

#[test]
fn common_wrong_names_get_a_suggestion() {
    let issues = invalid(
        json!({"order_id": "A", "amount": 5, "currency": "usd", "ref": "x", "email": "a@b.co", "totl": 1}),
        Origin::Browser,
    );
    let hint = |f: &str| {
        issues
            .iter()
            .find(|i| i.field == f)
            .map(|i| i.message.clone())
            .unwrap()
    };
    assert!(hint("amount").contains("did you mean total?"));
    assert!(hint("ref").contains("did you mean campaign_affiliate_id?"));
    assert!(hint("email").contains("did you mean customer_email?"));
    assert!(hint("totl").contains("did you mean total?"));
}

#[test]
fn a_browser_cannot_decide_what_the_merchant_decides() {
    let body = json!({
        "order_id": "A", "total": 5, "currency": "usd", "campaign_affiliate_id": "x",
        "commission": 100, "due_at": "2030-01-01T00:00:00Z", "status": "paid"
    });
    let issues = invalid(body.clone(), Origin::Browser);
    assert_eq!(fields(&issues), ["commission", "due_at", "status"]);
    assert!(issues.iter().all(|i| i.message.contains("server-side")));
    // The merchant's server may set commission and due_at; status is never part of a create.
    let issues = invalid(body, Origin::Server);
    assert_eq!(fields(&issues), ["status"]);
    let sale = check(
        json!({"order_id": "A", "total": 5, "currency": "usd", "campaign_affiliate_id": "x",
               "commission": 100, "due_at": "2030-01-01T00:00:00Z"}),
        Origin::Server,
    )
    .unwrap();
    assert_eq!(sale.commission, Some(100));
    assert_eq!(
        sale.due_at.map(|t| t.format()).as_deref(),
        Some("2030-01-01T00:00:00.000Z")
    );
}

#[test]
fn unattributed_is_its_own_outcome() {
    assert_eq!(
        check(
            json!({"order_id": "A", "total": 5, "currency": "usd"}),
            Origin::Browser
        ),
        Err(SaleError::Unattributed)
    );
    // Other problems come first: an invalid sale is reported as invalid.
    assert!(matches!(
        check(json!({"order_id": "A", "currency": "usd"}), Origin::Browser),
        Err(SaleError::Invalid(_))
    ));
}

#[test]
fn amounts_are_integers_within_javascripts_safe_range() {
    let base = |total: Value| json!({"order_id": "A", "total": total, "currency": "usd", "campaign_affiliate_id": "x"});
    assert!(check(base(json!(9_007_199_254_740_991u64)), Origin::Browser).is_ok());
    assert!(check(base(json!(9_007_199_254_740_992u64)), Origin::Browser).is_err());
    assert!(check(base(json!(0)), Origin::Browser).is_ok());
    assert!(
        check(base(json!(1e3)), Origin::Browser).is_ok(),
        "1000.0 is an integer"
    );
    assert!(check(base(json!("1000")), Origin::Browser).is_err());
    assert!(check(base(json!(u64::MAX)), Origin::Browser).is_err());
    assert!(check(base(json!(null)), Origin::Browser).is_err());
}

#[test]
fn order_ids_are_trimmed_printable_and_bounded() {
    let base = |id: Value| json!({"order_id": id, "total": 1, "currency": "usd", "campaign_affiliate_id": "x"});
    assert!(check(base(json!("a".repeat(255))), Origin::Browser).is_ok());
    assert!(check(base(json!("a".repeat(256))), Origin::Browser).is_err());
    // The limit is in bytes: 127 × "é" + "a" is 255 bytes, 128 × "é" is 256.
    assert!(check(
        base(json!(format!("{}a", "é".repeat(127)))),
        Origin::Browser
    )
    .is_ok());
    let long = invalid(base(json!("é".repeat(128))), Origin::Browser);
    assert_eq!(
        long[0].message,
        "must be at most 255 bytes of UTF-8 text (this one has 256)"
    );
    assert!(check(base(json!("   ")), Origin::Browser).is_err());
    assert!(check(base(json!("a\u{7}b")), Origin::Browser).is_err());
    assert!(check(base(json!("Bestellung-Ü-1")), Origin::Browser).is_ok());
    assert!(check(base(json!(true)), Origin::Browser).is_err());
}

#[test]
fn names_and_emails_are_bounded_in_bytes() {
    let base = |k: &str, v: Value| {
        let mut o =
            json!({"order_id": "A", "total": 1, "currency": "usd", "campaign_affiliate_id": "x"});
        o[k] = v;
        o
    };
    assert!(check(
        base("customer_name", json!("é".repeat(127))),
        Origin::Browser
    )
    .is_ok());
    let issues = invalid(
        base("customer_name", json!("é".repeat(200))),
        Origin::Browser,
    );
    assert_eq!(fields(&issues), ["customer_name"]);
    assert!(issues[0].message.contains("255 bytes"), "{issues:?}");
    let email = format!("{}@example.com", "ü".repeat(122));
    assert!(email.chars().count() < 255 && email.len() > 255);
    assert_eq!(
        fields(&invalid(
            base("customer_email", json!(email)),
            Origin::Browser
        )),
        ["customer_email"]
    );
}

#[test]
fn emails() {
    for ok in ["a@b.co", "first.last+tag@sub.example.com", "ü@exämple.de"] {
        assert!(salebeacon::sale::is_valid_email(ok), "{ok}");
    }
    for bad in [
        "", "a", "a@", "@b.co", "a@b", "a b@c.co", "a@b..co", ".a@b.co", "a@-b.co", "a@b.1",
    ] {
        assert!(!salebeacon::sale::is_valid_email(bad), "{bad}");
    }
}

const MINE: &str = "4b7c2f0e-58d1-4c3a-9f4e-2a1b3c4d5e6f";
const STORED: &str = "0b6f3c1e-2a4d-4e5f-9a7b-1c2d3e4f5a6b";

#[test]
fn fill_in_never_overrides_what_the_caller_gave() {
    let mut i = input(
        json!({"order_id": "A", "total": 1, "currency": "usd", "campaign_affiliate_id": "mine", "visitor_uid": MINE}),
    );
    i.fill_in(Some(&Referral::Tag("stored".into())), Some(STORED));
    let sale = i.validate(Origin::Browser).unwrap();
    assert_eq!(sale.campaign_affiliate_id.as_deref(), Some("mine"));
    assert_eq!(sale.visitor_uid.as_deref(), Some(MINE));
    let mut i = input(json!({"order_id": "A", "total": 1, "currency": "usd"}));
    i.fill_in(
        Some(&Referral::Growi {
            user_id: 4,
            campaign_id: 2,
        }),
        Some(STORED),
    );
    let sale = i.validate(Origin::Browser).unwrap();
    assert_eq!(
        (sale.growi_user_id, sale.growi_campaign_id),
        (Some(4), Some(2))
    );
    assert_eq!(sale.visitor_uid.as_deref(), Some(STORED));
}

#[test]
fn visitor_uids_are_uuid_v4() {
    let with = |v: Value| json!({"order_id": "A", "total": 1, "currency": "usd", "campaign_affiliate_id": "x", "visitor_uid": v});
    for bad in [
        json!("abc"),
        json!("v-1"),
        json!(MINE.replace('4', "1")),
        json!(7),
        json!(format!("{MINE}0")),
    ] {
        let issues = invalid(with(bad.clone()), Origin::Browser);
        assert_eq!(fields(&issues), ["visitor_uid"], "{bad}");
    }
    let upper = check(with(json!(MINE.to_ascii_uppercase())), Origin::Server).unwrap();
    assert_eq!(
        upper.visitor_uid.as_deref(),
        Some(MINE),
        "kept in lower case"
    );
}

#[test]
fn the_pixel_reads_a_query_string() {
    let pairs = salebeacon::attribution::parse_query(
        "order_id=ORD-7&total=12999&currency=usd&growi_user_id=42&growi_campaign_id=7",
    );
    let sale = SaleInput::from_pairs(pairs)
        .validate(Origin::Browser)
        .unwrap();
    assert_eq!(sale.total, Some(12999));
    assert_eq!(sale.growi_user_id, Some(42));
    let bad = SaleInput::from_pairs([("order_id", "X"), ("total", "12.99"), ("currency", "usd")]);
    assert!(
        matches!(bad.validate(Origin::Browser), Err(SaleError::Invalid(i)) if fields(&i) == ["total"])
    );
}

#[test]
fn order_token_travels_but_is_not_part_of_the_sale() {
    let i = input(
        json!({"order_id": "A", "total": 1, "currency": "usd", "campaign_affiliate_id": "x", "order_token": "123.abc"}),
    );
    assert_eq!(i.order_token(), Some("123.abc"));
    let sale = i.validate(Origin::Browser).unwrap();
    assert!(serde_json::to_value(&sale)
        .unwrap()
        .get("order_token")
        .is_none());
}

#[test]
fn input_that_is_not_an_object_is_a_parse_error() {
    assert!(serde_json::from_value::<SaleInput>(json!([1, 2])).is_err());
    assert!(serde_json::from_value::<SaleInput>(json!("sale")).is_err());
    assert!(serde_json::from_str::<SaleInput>(r#"{"order_id": "a", "x": {"deep": [1]}}"#).is_ok());
}

#[test]
fn updates_follow_growis_patch_rules() {
    let u: SaleUpdateInput = serde_json::from_value(json!({
        "total": 5000, "customer_email": null, "customer_name": "Ann B",
        "occurred_at": 1_759_276_529, "due_at": "2030-01-01T00:00:00+01:00", "status": "canceled"
    }))
    .unwrap();
    let body = serde_json::to_value(u.validate().unwrap()).unwrap();
    assert_eq!(
        body,
        json!({
            "total": 5000, "customer_email": null, "customer_name": "Ann B",
            "occurred_at": "2025-09-30T23:55:29.000Z", "due_at": "2029-12-31T23:00:00.000Z",
            "status": "cancelled"
        })
    );
    let u: SaleUpdateInput = serde_json::from_value(
        json!({"status": "refunded", "total": null, "order_id": "B", "totl": 1}),
    )
    .unwrap();
    let issues = u.validate().unwrap_err();
    assert_eq!(fields(&issues), ["order_id", "status", "total", "totl"]);
    let empty: SaleUpdateInput = serde_json::from_value(json!({})).unwrap();
    assert_eq!(fields(&empty.validate().unwrap_err()), ["update"]);
    assert_eq!(
        SaleStatus::parse("paid_externally"),
        Some(SaleStatus::PaidExternally)
    );
}

#[test]
fn money_and_currency_rules_from_growi_open_points() {
    use salebeacon::money::to_minor_units;
    assert_eq!(to_minor_units("19.99", "usd"), Ok(1999));
    assert_eq!(to_minor_units("1500", "jpy"), Ok(1500));
    assert_eq!(to_minor_units("1.234", "kwd"), Ok(1234));
    // The float trap: 0.29 * 100 == 28.999999999999996 in binary floating point.
    assert_eq!(to_minor_units(&format!("{}", 0.29f64), "usd"), Ok(29));
    for (amount, cents) in [("1.10", 110), ("4.35", 435), ("1.15", 115), ("0.07", 7)] {
        assert_eq!(to_minor_units(amount, "usd"), Ok(cents), "{amount}");
    }
    assert!(
        to_minor_units("8.675", "usd").is_err(),
        "never rounds silently"
    );
}

fn loose_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::String),
        "[a-z0-9_.-]{1,70}".prop_map(Value::String),
        "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(Z|[+-][0-9]{2}:[0-9]{2})"
            .prop_map(Value::String),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map(".{0,5}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(salebeacon::sale::SALE_FIELDS).prop_map(str::to_owned),
        ".{0,12}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Whatever the object holds, validation answers and never panics; an invalid answer
    /// always names at least one field.
    #[test]
    fn validation_never_panics(obj in prop::collection::btree_map(field_name(), loose_value(), 0..10)) {
        let v = Value::Object(obj.into_iter().collect());
        let i: SaleInput = serde_json::from_value(v).unwrap();
        for origin in [Origin::Browser, Origin::Server] {
            match i.validate(origin) {
                Ok(_) | Err(SaleError::Unattributed) => {}
                Err(SaleError::Invalid(issues)) => prop_assert!(!issues.is_empty()),
            }
        }
        let u: Result<SaleUpdateInput, _> = serde_json::from_value(Value::Object(Default::default()));
        prop_assert!(u.is_ok());
    }

    /// Every valid sale's JSON body reads back as the same valid sale.
    #[test]
    fn valid_sales_round_trip_through_json(
        order_id in "[A-Za-z0-9-]{1,40}",
        total in prop::option::of(0u64..=9_007_199_254_740_991),
        subtotal in 0u64..1_000_000,
        currency in prop::sample::select(vec!["usd", "EUR", "jpy", "kwd", "Gbp"]),
        tag in "[A-Za-z0-9_.-]{1,64}",
        secs in 0i64..253_402_300_799,
        email in prop::option::of("[a-z]{1,10}@[a-z]{1,10}\\.[a-z]{2,5}"),
    ) {
        let occurred = salebeacon::time::format_utc(secs * 1000);
        let mut v = json!({"order_id": order_id, "subtotal": subtotal, "currency": currency,
                           "campaign_affiliate_id": tag, "occurred_at": occurred});
        if let Some(t) = total { v["total"] = json!(t); }
        if let Some(e) = &email { v["customer_email"] = json!(e); }
        let sale = check(v, Origin::Browser).unwrap();
        let body = serde_json::to_value(&sale).unwrap();
        let again = check(body.clone(), Origin::Browser).unwrap();
        prop_assert_eq!(&again, &sale);
        let typed: Sale = serde_json::from_value(body).unwrap();
        prop_assert_eq!(typed, sale);
    }

    /// Cookie values decode to what was encoded, and random text never decodes to garbage.
    #[test]
    fn attribution_cookie_round_trips(tag in "[A-Za-z0-9_.-]{1,64}", at in 0i64..4_102_444_800_000, first in any::<bool>(), junk in ".{0,80}") {
        let a = Attribution {
            referral: Referral::Tag(tag),
            model: if first { Model::FirstClick } else { Model::LastClick },
            captured_at: at,
        };
        prop_assert_eq!(Attribution::decode(&a.encode()), Some(a));
        if let Some(d) = Attribution::decode(&junk) {
            prop_assert_eq!(d.encode(), junk);
        }
    }

    /// Decimal text converts exactly: whole.frac in usd is whole*100 + frac.
    #[test]
    fn money_conversion_is_exact(whole in 0u64..10_000_000_000, cents in 0u64..100) {
        let text = format!("{whole}.{cents:02}");
        prop_assert_eq!(salebeacon::money::to_minor_units(&text, "usd"), Ok(whole * 100 + cents));
    }
}

proptest! {
    /// The browser's hand-written JSON equals serde_json's for every valid sale, including
    /// strings that need escaping.
    #[test]
    fn hand_written_json_matches_serde_json(
        order_id in "[^\u{0}-\u{8}]{1,30}",
        name in prop::option::of(".{1,30}"),
        total in prop::option::of(0u64..=9_007_199_254_740_991),
        pair in any::<bool>(),
    ) {
        let mut v = json!({"order_id": order_id, "subtotal": 5, "currency": "usd", "sale_type": "one_time"});
        if let Some(t) = total { v["total"] = json!(t); }
        if let Some(n) = &name { v["customer_name"] = json!(n); }
        if pair { v["growi_user_id"] = json!(4); v["growi_campaign_id"] = json!(9); } else { v["campaign_affiliate_id"] = json!("x"); }
        if let Ok(sale) = check(v, Origin::Browser) {
            prop_assert_eq!(sale.to_json(), serde_json::to_string(&sale).unwrap());
        }
    }
}

#[test]
fn json_escaping_matches_serde_json_for_control_characters() {
    let mut s = String::new();
    let text: String = (0u8..0x20)
        .map(char::from)
        .chain("\"\\/é😀\u{7f}".chars())
        .collect();
    salebeacon::json::push_string(&mut s, &text);
    assert_eq!(s, serde_json::to_string(&text).unwrap());
}

/// The email rule as first written, over `char`s: the byte-level `is_valid_email` must agree.
fn reference_email(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.as_bytes().windows(2).any(|w| w == b"..")
        && local.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || !c.is_ascii()
                || b"!#$%&'*+/=?^_`{|}~.-".contains(&(c as u8))
        });
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = domain.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || !c.is_ascii() || c == '-')
        })
        && labels.last().is_some_and(|tld| {
            tld.chars().count() >= 2 && !tld.chars().all(|c| c.is_ascii_digit())
        });
    local_ok && domain_ok
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]
    #[test]
    fn email_check_over_bytes_agrees_with_the_char_statement(
        s in "[a-zA-Z0-9.@\\-_+é€😀 ]{0,40}|[a-z]{1,10}@[a-zé0-9-]{0,10}(\\.[a-zé0-9-]{0,6}){0,3}"
    ) {
        prop_assert_eq!(salebeacon::sale::is_valid_email(&s), reference_email(&s), "{}", s);
    }
}
