//! The control API's sale edits (`POST /_sandbox/sales`, `PATCH` / `DELETE
//! /_sandbox/sales/{order_id}`) and their in-process twins on `RunningSandbox`: how a test makes
//! "Growi" disagree with a client. They bypass the API's rules, its rate limit and its request
//! log, and the API then shows exactly what they did.

mod common;

use common::{fast, sale, start, Client};
use salebeacon_sandbox::{SaleEdit, SaleInsert, SaleStatus, SandboxConfig};
use serde_json::{json, Value};
use std::time::Duration;

const PACE: Duration = Duration::from_millis(400);

impl Client {
    async fn control(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}/_sandbox/{path}", self.root));
        if let Some(b) = body {
            req = req.json(&b);
        }
        self.send(req).await
    }
}

fn external_ids(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|s| s["external_id"].as_str().expect("external_id").to_owned())
        .collect()
}

#[tokio::test]
async fn sales_are_inserted_changed_and_deleted_over_http_and_the_api_shows_it() {
    // A pace: the edits must neither count against it nor appear in the request log.
    let sb = start(SandboxConfig {
        min_interval: PACE,
        ..SandboxConfig::default()
    })
    .await;
    let c = Client::new(&sb);
    use reqwest::Method;

    let (status, shop) = c
        .control(
            Method::POST,
            "sales",
            Some(
                json!({"order_id": "SHOP-7", "platform": "shopify", "total": 5000,
                        "currency": "USD", "occurred_at": "2025-03-02T10:00:00Z"}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{shop}");
    assert_eq!(shop["platform"], "shopify");
    assert_eq!(shop["currency"], "usd", "kept lowercase, as Growi does");
    assert_eq!(shop["occurred_at"], "2025-03-02T10:00:00.000Z");
    assert_eq!(shop["status"], "unpaid");
    let (status, web) = c
        .control(
            Method::POST,
            "sales",
            Some(
                json!({"external_id": "WEB-7", "total": 1200, "subtotal": 1000,
                        "currency": "eur", "status": "refunded", "commission": 120}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{web}");
    assert_eq!(
        (web["platform"].as_str(), web["status"].as_str()),
        (Some("website"), Some("refunded"))
    );
    assert!(web["id"].as_u64().unwrap() > shop["id"].as_u64().unwrap());

    // Refusals: a taken order id, a bad currency, a negative amount, an unknown field, not JSON.
    for (body, want) in [
        (
            json!({"order_id": "WEB-7", "total": 1, "currency": "eur"}),
            422,
        ),
        (
            json!({"order_id": "X-1", "total": 1, "currency": "euro"}),
            422,
        ),
        (
            json!({"order_id": "X-2", "total": -1, "currency": "eur"}),
            422,
        ),
        (
            json!({"order_id": "X-3", "currency": "eur", "colour": "red"}),
            400,
        ),
        (json!({"order_id": "", "currency": "eur"}), 422),
    ] {
        let (status, answer) = c.control(Method::POST, "sales", Some(body.clone())).await;
        assert_eq!(status, want, "{body} -> {answer}");
        assert!(answer["error"].is_string(), "{answer}");
    }

    // The API lists them, by platform.
    let (_, website) = c.list("store_platform=website&per_page=100").await;
    let ids = external_ids(&website);
    assert!(
        ids.contains(&"WEB-7".to_owned()) && !ids.contains(&"SHOP-7".to_owned()),
        "{ids:?}"
    );
    tokio::time::sleep(PACE).await;
    let (_, shopify) = c.list("store_platform=shopify&per_page=100").await;
    assert!(external_ids(&shopify).contains(&"SHOP-7".to_owned()));

    // A sale the API created, cancelled through the API, then changed behind its back: the API
    // itself refuses to touch a cancelled sale, the control API does not.
    tokio::time::sleep(PACE).await;
    let (status, created) = c.create(sale("API-1", 9999)).await;
    assert_eq!(status, 201, "{created}");
    let id = created["data"]["id"].as_u64().unwrap();
    tokio::time::sleep(PACE).await;
    assert_eq!(c.patch(id, json!({"status": "cancelled"})).await.0, 200);
    let (status, changed) = c
        .control(
            Method::PATCH,
            "sales/API-1",
            Some(json!({"total": 5000, "currency": "gbp", "status": "paid", "subtotal": 4000})),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(
        (
            &changed["total"],
            &changed["subtotal"],
            &changed["currency"],
            &changed["status"]
        ),
        (&json!(5000), &json!(4000), &json!("gbp"), &json!("paid"))
    );
    assert_eq!(changed["id"].as_u64(), Some(id), "the same sale");
    let held = sb
        .sales()
        .into_iter()
        .find(|s| s.external_id == "API-1")
        .unwrap();
    assert_eq!((held.total, held.status), (Some(5000), SaleStatus::Paid));
    let (status, _) = c
        .control(
            Method::PATCH,
            "sales/API-1",
            Some(json!({"status": "lost"})),
        )
        .await;
    assert_eq!(
        status, 400,
        "an unknown status is not JSON the edit can take"
    );
    assert_eq!(
        c.control(Method::PATCH, "sales/NOPE", Some(json!({"total": 1})))
            .await
            .0,
        404
    );

    // Deleted: gone from the API's list; a second delete is a 404. The list comes right after
    // the deletes: they do not count against the interval.
    tokio::time::sleep(PACE).await;
    let (status, gone) = c.control(Method::DELETE, "sales/WEB-7", None).await;
    assert_eq!((status, gone["external_id"].as_str()), (200, Some("WEB-7")));
    assert_eq!(c.control(Method::DELETE, "sales/WEB-7", None).await.0, 404);
    let (status, website) = c.list("store_platform=website&per_page=100").await;
    assert_eq!(status, 200);
    let ids = external_ids(&website);
    assert!(
        !ids.contains(&"WEB-7".to_owned()) && ids.contains(&"API-1".to_owned()),
        "{ids:?}"
    );

    // Only the API requests are in the log, none of them rate limited: the edits came between
    // them without counting against the 2 s interval.
    let log = sb.requests();
    assert!(log.iter().all(|r| r.path.starts_with("/api/")), "{log:?}");
    assert!(log.iter().all(|r| r.status != 429), "{log:?}");
    assert_eq!(log.len(), 5, "list, list, create, patch, list: {log:?}");
    sb.shutdown().await;
}

#[tokio::test]
async fn in_process_edits_are_the_same_and_persist_in_the_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let config = || SandboxConfig {
        state_file: Some(path.clone()),
        ..fast()
    };
    let sb = start(config()).await;
    let shop = sb
        .insert_sale(SaleInsert {
            external_id: "SHOP-9".into(),
            platform: Some("shopify".into()),
            total: Some(700),
            currency: "usd".into(),
            ..SaleInsert::default()
        })
        .expect("inserted");
    assert_eq!(shop.platform, "shopify");
    let web = sb
        .insert_sale(SaleInsert {
            external_id: "WEB-9".into(),
            total: Some(100),
            currency: "usd".into(),
            ..SaleInsert::default()
        })
        .expect("inserted");
    assert!(
        sb.insert_sale(SaleInsert {
            external_id: "WEB-9".into(),
            currency: "usd".into(),
            ..SaleInsert::default()
        })
        .is_err(),
        "an order id is unique"
    );
    let edited = sb
        .edit_sale(
            "WEB-9",
            SaleEdit {
                status: Some(SaleStatus::Cancelled),
                total: Some(90),
                ..SaleEdit::default()
            },
        )
        .expect("edited");
    assert_eq!(
        (edited.id, edited.total, edited.status),
        (web.id, Some(90), SaleStatus::Cancelled)
    );
    assert!(sb.edit_sale("NOPE", SaleEdit::default()).is_err());
    assert_eq!(sb.delete_sale("SHOP-9").expect("deleted").id, shop.id);
    assert!(sb.delete_sale("SHOP-9").is_err());
    sb.shutdown().await;

    // Restarted on its state file: the edit and the deletion held.
    let sb = start(config()).await;
    let sales = sb.sales();
    assert!(sales.iter().all(|s| s.external_id != "SHOP-9"));
    let web = sales
        .iter()
        .find(|s| s.external_id == "WEB-9")
        .expect("kept");
    assert_eq!((web.total, web.status), (Some(90), SaleStatus::Cancelled));
    // A new sale does not reuse the deleted one's id.
    let next = sb
        .insert_sale(SaleInsert {
            external_id: "WEB-10".into(),
            currency: "usd".into(),
            total: Some(1),
            ..SaleInsert::default()
        })
        .expect("inserted");
    assert!(next.id > web.id && next.id != shop.id);
    sb.shutdown().await;
}
