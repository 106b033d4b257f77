//! Growi's integer ids belong to one upstream and one key: an outbox never uses an id against
//! another upstream, an id is checked against the order at this upstream before the order's first
//! PATCH, and an update whose effect Growi already holds is done, not failed. Against the real
//! sandbox over HTTP.

mod common;

use common::*;
use salebeacon_sandbox::{RunningSandbox, SandboxConfig};
use serde_json::{json, Value};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(15);

async fn view(c: &reqwest::Client, base: &str, order_id: &str) -> Value {
    admin_get(c, base, &format!("/sales/{order_id}")).await.1
}

async fn patch(c: &reqwest::Client, base: &str, order_id: &str, body: Value) -> u16 {
    c.patch(format!("{base}/admin/sales/{order_id}"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn sent(c: &reqwest::Client, base: &str, order_id: &str) -> Value {
    eventually(LONG, &format!("{order_id} sent"), || async {
        view(c, base, order_id).await["state"] == "sent"
    })
    .await;
    view(c, base, order_id).await
}

async fn update_state(c: &reqwest::Client, base: &str, order_id: &str, state: &str) -> Value {
    eventually(LONG, &format!("{order_id}'s update {state}"), || async {
        view(c, base, order_id).await["updates"][0]["state"] == state
    })
    .await;
    view(c, base, order_id).await["updates"][0].clone()
}

fn status_of(sb: &RunningSandbox, order_id: &str) -> String {
    let s = sb
        .sales()
        .into_iter()
        .find(|s| s.external_id == order_id)
        .expect("the sandbox has the sale");
    serde_json::to_value(s.status)
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned()
}

/// The reproduction: the demo run twice. The sandbox starts empty each time (same URL,
/// same key), the outbox persists, so a new order gets the integer id an old order had. A PATCH
/// of the old order must not touch the new one.
#[tokio::test]
async fn a_forgetful_upstream_never_gets_a_patch_meant_for_another_order() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("outbox.sqlite3");
    let c = reqwest::Client::new();
    let sb = sandbox(0).await;
    let addr = sb.addr();
    let p = proxy(config(&sb.base_url(), &db)).await;
    assert_eq!(
        post_sale(&c, &p.base_url(), &sale("OLD-1", "creator42"))
            .await
            .0,
        202
    );
    let old_id = sent(&c, &p.base_url(), "OLD-1").await["growi_id"]
        .as_u64()
        .unwrap();
    p.shutdown().await;
    sb.shutdown().await;

    // The same sandbox again, on the same address, empty.
    let sb = salebeacon_sandbox::spawn(
        SandboxConfig {
            min_interval: Duration::ZERO,
            ..SandboxConfig::default()
        },
        addr,
    )
    .await
    .expect("the sandbox restarts on its address");
    let p = proxy(config(&sb.base_url(), &db)).await;
    let base = p.base_url();
    assert_eq!(
        post_sale(&c, &base, &sale("NEW-1", "creator42")).await.0,
        202
    );
    let new_id = sent(&c, &base, "NEW-1").await["growi_id"].as_u64().unwrap();
    assert_eq!(new_id, old_id, "the forgetful sandbox reuses the id");

    assert_eq!(
        patch(&c, &base, "OLD-1", json!({"status": "cancelled"})).await,
        202
    );
    let u = update_state(&c, &base, "OLD-1", "failed").await;
    assert!(
        u["last_error"]
            .as_str()
            .unwrap()
            .contains("Growi has no sale for this order"),
        "{u}"
    );
    assert_eq!(
        status_of(&sb, "NEW-1"),
        "unpaid",
        "the unrelated order is untouched"
    );
    assert!(
        sb.requests().iter().all(|r| r.method != "PATCH"),
        "no PATCH was sent at all"
    );
    p.shutdown().await;
    sb.shutdown().await;
}

#[tokio::test]
async fn an_outbox_refuses_another_upstream_unless_told_to_forget_its_ids() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("outbox.sqlite3");
    let c = reqwest::Client::new();
    let first = sandbox(0).await;
    let p = proxy(config(&first.base_url(), &db)).await;
    assert_eq!(
        post_sale(&c, &p.base_url(), &sale("UP-1", "creator42"))
            .await
            .0,
        202
    );
    sent(&c, &p.base_url(), "UP-1").await;
    p.shutdown().await;

    // Another upstream (a different address), the same database: refused, with a clear message.
    let second = sandbox(0).await;
    let Err(err) = salebeacon_proxy::spawn(config(&second.base_url(), &db)).await else {
        panic!("a proxy must not start against another upstream with this outbox");
    };
    let text = err.to_string();
    assert!(
        text.contains("another upstream or API key") && text.contains("--forget-upstream-ids"),
        "{text}"
    );
    assert!(!text.contains(API_KEY), "the key never appears: {text}");
    // The same upstream with another key is another upstream too.
    let mut other_key = config(&first.base_url(), &db);
    other_key.growi_api_key = salebeacon_proxy::Secret::new("sk_live_another_key");
    assert!(salebeacon_proxy::spawn(other_key).await.is_err());

    // Told to forget: the queue stays, the old id is not used; the first update looks the
    // order up at the new upstream, which has no such sale.
    let mut forget = config(&second.base_url(), &db);
    forget.forget_upstream_ids = true;
    let p = proxy(forget).await;
    let base = p.base_url();
    let v = view(&c, &base, "UP-1").await;
    assert_eq!(v["state"], "sent");
    assert!(v.get("growi_id").is_none(), "the old id is forgotten: {v}");
    assert_eq!(
        patch(&c, &base, "UP-1", json!({"status": "paid"})).await,
        202
    );
    update_state(&c, &base, "UP-1", "failed").await;
    assert!(second.requests().iter().all(|r| r.method != "PATCH"));
    p.shutdown().await;
    // From now on this database belongs to the second upstream: it starts without the flag.
    let p = proxy(config(&second.base_url(), &db)).await;
    p.shutdown().await;
    first.shutdown().await;
    second.shutdown().await;
}

/// The proxy sent a cancellation, Growi applied it, the proxy died before it recorded the answer:
/// after the restart the same PATCH is refused ("Cancelled sales cannot be updated."), but the
/// sale is cancelled, which is all the update asked for. So the update is done.
#[tokio::test]
async fn an_update_already_in_place_is_done_not_failed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("outbox.sqlite3");
    let c = reqwest::Client::new();
    let sb = sandbox(0).await;
    let p = proxy(config(&sb.base_url(), &db)).await;
    let base = p.base_url();
    for order in ["DONE-1", "DONE-2"] {
        assert_eq!(post_sale(&c, &base, &sale(order, "creator42")).await.0, 202);
    }
    let id = sent(&c, &base, "DONE-1").await["growi_id"]
        .as_u64()
        .unwrap();
    sent(&c, &base, "DONE-2").await;
    p.shutdown().await;
    // What the crashed proxy's PATCH did at Growi before the crash.
    let r = c
        .patch(format!("{}/affiliate_sales/{id}", sb.base_url()))
        .bearer_auth(API_KEY)
        .json(&json!({"status": "cancelled"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let p = proxy(config(&sb.base_url(), &db)).await;
    let base = p.base_url();
    assert_eq!(
        patch(&c, &base, "DONE-1", json!({"status": "cancelled"})).await,
        202
    );
    let u = update_state(&c, &base, "DONE-1", "sent").await;
    assert!(
        u["note"].as_str().unwrap().contains("already holds it"),
        "{u}"
    );
    assert_eq!(u["last_status"], 422);
    let (_, failed) = admin_get(&c, &base, "/sales?state=failed").await;
    assert_eq!(failed["count"], 0, "{failed}");

    // A refusal whose effect is not in place stays a failure: a cancelled sale cannot be paid.
    assert_eq!(
        patch(&c, &base, "DONE-1", json!({"status": "paid"})).await,
        202
    );
    eventually(LONG, "the second update failed", || async {
        view(&c, &base, "DONE-1").await["updates"][1]["state"] == "failed"
    })
    .await;
    let v = view(&c, &base, "DONE-1").await;
    assert_eq!(
        v["updates"][1]["last_error"],
        "Cancelled sales cannot be updated."
    );
    assert_eq!(status_of(&sb, "DONE-1"), "cancelled");
    assert_eq!(status_of(&sb, "DONE-2"), "unpaid");
    p.shutdown().await;
    sb.shutdown().await;
}
