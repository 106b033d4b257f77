//! The WebAssembly module as JavaScript calls it (wasm-bindgen-test, in Node's V8): every export
//! through the real glue, strings and numbers across the boundary, and the module's allocator
//! under load. The rules themselves are tested natively (`tests/core.rs`, `src/tracker.rs`); the
//! tracker's JavaScript is tested in real browsers by the end-to-end suite (`www/e2e`).
#![cfg(target_arch = "wasm32")]

use salebeacon::web;
use serde_json::Value;
use wasm_bindgen_test::*;

const NOW: f64 = 1_800_000_000_000.0;

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap()
}

/// Hands a sale over as the tracker's JavaScript does, field by field.
fn put_sale(order_id: &str, total: f64) {
    web::put("order_id", 3, order_id, 0.0);
    web::put("total", 2, "", total);
    web::put("currency", 3, "usd", 0.0);
    web::put("customer_email", 0, "", 0.0);
}

#[wasm_bindgen_test]
fn a_landing_page_captures_and_a_thank_you_page_validates() {
    web::put("ref", 3, "creator42", 0.0);
    let c = json(&web::capture("", "last_click", 30, NOW));
    let aff = c["aff"].as_str().unwrap().to_owned();
    assert!(aff.ends_with("~t~creator42"));
    let info = json(&web::describe(&aff, 30, NOW));
    assert_eq!(info["campaign_affiliate_id"], "creator42");
    let vid = web::visitor("", &[7; 16]);
    assert_eq!(vid.len(), 36);

    put_sale("W-1", 12999.0);
    let r = json(&web::sale(&aff, &vid, 30, NOW));
    assert_eq!(r["order_id"], "W-1");
    assert_eq!(r["body"]["visitor_uid"], Value::String(vid));
    assert_eq!(r["body"]["campaign_affiliate_id"], "creator42");

    // Numbers keep their kind across the boundary: 129.99 is not an integer amount.
    put_sale("W-2", 129.99);
    let r = json(&web::sale(&aff, "", 30, NOW));
    assert_eq!(r["issues"][0]["field"], "total");
    // Fields are consumed by each call: nothing leaks into the next one.
    let r = json(&web::sale(&aff, "", 30, NOW));
    assert!(r["issues"].as_array().unwrap().len() >= 2, "{r}");
}

#[wasm_bindgen_test]
fn amounts_and_retries() {
    assert_eq!(json(&web::minor_units("19.99", "usd"))["value"], 1999);
    assert_eq!(
        json(&web::minor_units("1.999", "usd"))["issues"][0]["field"],
        "amount"
    );
    assert_eq!(web::next_attempt(202, 0, 0.5, ""), 0.0);
    assert_eq!(web::next_attempt(422, 0, 0.5, ""), -1.0);
    assert_eq!(web::next_attempt(503, 0, 0.0, "3"), 3000.0);
}

#[wasm_bindgen_test]
fn every_export_gives_back_what_it_allocates() {
    // In the page nothing else lives in the module between two calls, so the arena starts over
    // after each one; here the test harness keeps allocations of its own, so the check is that
    // each call returns the count of live allocations to where it was.
    let aff = {
        web::put("ref", 3, "creator42", 0.0);
        json(&web::capture("", "last_click", 30, NOW))["aff"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let big = "é".repeat(64 * 1024);
    for round in 0..200 {
        let before = web::arena_live();
        let answers = [
            {
                put_sale(&big, 1.0);
                web::sale(&aff, "", 30, NOW)
            },
            {
                put_sale("A-1", 100.0);
                web::sale(&aff, "", 30, NOW)
            },
            {
                web::put("ref", 3, "x", 0.0);
                web::put("growi_user_id", 3, "-1", 0.0);
                web::capture(&aff, "first_click", 30, NOW)
            },
            web::describe(&aff, 30, NOW),
            web::minor_units("1.999", "kwd"),
            web::visitor("nope", &[1; 16]),
        ];
        drop(answers);
        assert_eq!(web::arena_live(), before, "round {round}");
    }
}
