//! The emulated API over real HTTP: auth, create, idempotency, commissions, PATCH rules, list.

mod common;

use common::{fast, sale, start, Client, KEY};
use salebeacon_sandbox::{SaleStatus, SandboxConfig};
use serde_json::{json, Value};

#[tokio::test]
async fn missing_or_wrong_key_gets_401_without_echoing_the_key() {
    let sb = start(fast()).await;
    let c = Client::new(&sb);
    let url = c.sales_url();
    let secret_guess = "sk_live_guess_that_must_not_be_echoed";
    let attempts = [
        c.http.post(&url).json(&sale("A-1", 100)),
        c.http
            .post(&url)
            .bearer_auth(secret_guess)
            .json(&sale("A-1", 100)),
        c.http
            .post(&url)
            .header("authorization", format!("bearer {KEY}"))
            .json(&sale("A-1", 100)),
        c.http
            .post(&url)
            .header("authorization", format!("Bearer  {KEY}"))
            .json(&sale("A-1", 100)),
        c.http
            .post(&url)
            .header("authorization", KEY)
            .json(&sale("A-1", 100)),
        c.http.get(&url).bearer_auth(secret_guess),
        c.http
            .patch(format!("{url}/1947000"))
            .bearer_auth(secret_guess)
            .json(&json!({"status": "paid"})),
        c.http.get(format!("{}/no_such_route", c.base)),
    ];
    for req in attempts {
        let resp = req.send().await.expect("http");
        assert_eq!(resp.status().as_u16(), 401);
        let text = resp.text().await.expect("body");
        assert!(!text.contains(secret_guess), "key echoed: {text}");
        assert!(!text.contains(KEY), "key echoed: {text}");
        let body: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(body, json!({"error": "Not Authenticated"}));
    }
    assert!(sb.sales().iter().all(|s| s.external_id != "A-1"));
}

#[tokio::test]
async fn read_only_key_reads_but_cannot_write() {
    let sb = start(SandboxConfig {
        read_only_key: Some("sk_ro".to_owned()),
        ..fast()
    })
    .await;
    let c = Client::new(&sb);
    let (status, body) = c
        .send(
            c.http
                .post(c.sales_url())
                .bearer_auth("sk_ro")
                .json(&sale("RO-1", 100)),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"].is_string());
    let (status, _) = c.send(c.http.get(c.sales_url()).bearer_auth("sk_ro")).await;
    assert_eq!(status, 200);
    let (status, _) = c
        .send(
            c.http
                .patch(format!("{}/1947000", c.sales_url()))
                .bearer_auth("sk_ro")
                .json(&json!({})),
        )
        .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn create_returns_the_documented_sale_shape() {
    let sb = start(fast()).await;
    let c = Client::new(&sb);
    let (status, body) = c
        .create(json!({
            "order_id": "ORD-12345", "total": 9999, "subtotal": 9000, "currency": "usd",
            "campaign_affiliate_id": "creator42", "customer_email": "ann@example.com",
            "customer_name": "Ann", "visitor_uid": "2b7c7f0e-1a9b-4c1e-9d55-4c1f0d6f7a11",
            "occurred_at": "2025-09-30T23:55:29Z", "sale_type": "subscription",
            "due_at": "2025-10-30T00:00:00.000Z"
        }))
        .await;
    assert_eq!(status, 201, "{body}");
    let d = &body["data"];
    assert_eq!(d["id"], 1_947_457);
    assert_eq!(d["external_id"], "ORD-12345");
    assert_eq!(d["platform"], "website");
    assert_eq!(d["status"], "unpaid");
    assert_eq!(d["occurred_at"], "2025-09-30T23:55:29.000Z");
    assert_eq!(d["total"], 9999);
    assert_eq!(d["subtotal"], 9000);
    assert_eq!(d["commission"], 1000); // 10 % of 9999 = 999.9
    assert_eq!(d["currency"], "usd");
    assert_eq!(d["customer_email"], "ann@example.com");
    assert_eq!(d["customer_name"], "Ann");
    assert_eq!(d["visitor_uid"], "2b7c7f0e-1a9b-4c1e-9d55-4c1f0d6f7a11");
    assert_eq!(d["campaign_affiliate_id"], "creator42");
    assert_eq!(d["growi_user_id"], 42);
    assert_eq!(d["growi_campaign_id"], 7);
    assert_eq!(d["sale_type"], "subscription");
    assert_eq!(d["due_at"], "2025-10-30T00:00:00.000Z");

    // Defaults, and the next id.
    let (status, body) = c.create(sale("ORD-2", 100)).await;
    assert_eq!(status, 201);
    let d = &body["data"];
    assert_eq!(d["id"], 1_947_458);
    assert_eq!(d["sale_type"], "one_time");
    assert!(d["subtotal"].is_null());
    assert!(d["customer_email"].is_null());
    assert!(d["due_at"].is_null());
    let occurred = d["occurred_at"].as_str().expect("occurred_at");
    assert_eq!(
        occurred.len(),
        "2025-09-30T23:55:29.000Z".len(),
        "{occurred}"
    );
    assert!(occurred.ends_with('Z') && occurred.as_bytes()[19] == b'.');
    assert!(salebeacon_sandbox::timefmt::parse_iso(occurred).is_some());
}

#[tokio::test]
async fn every_documented_422_message_verbatim() {
    let sb = start(fast()).await;
    let c = Client::new(&sb);
    let attribution = "Attribution required: provide campaign_affiliate_id OR both growi_user_id and growi_campaign_id.";
    let cases = [
        (
            json!({"total": 100, "currency": "usd", "campaign_affiliate_id": "creator42"}),
            "Order ID is required.",
        ),
        (
            json!({"order_id": "", "total": 100, "currency": "usd", "campaign_affiliate_id": "creator42"}),
            "Order ID is required.",
        ),
        (
            json!({"order_id": null, "total": 100, "currency": "usd", "campaign_affiliate_id": "creator42"}),
            "Order ID is required.",
        ),
        (
            json!({"order_id": "V-1", "total": 100, "campaign_affiliate_id": "creator42"}),
            "Currency is required.",
        ),
        (
            json!({"order_id": "V-1", "total": 100, "currency": "", "campaign_affiliate_id": "creator42"}),
            "Currency is required.",
        ),
        (
            json!({"order_id": "V-1", "currency": "usd", "campaign_affiliate_id": "creator42"}),
            "Total or subtotal is required.",
        ),
        (
            json!({"order_id": "V-1", "total": null, "currency": "usd", "campaign_affiliate_id": "creator42"}),
            "Total or subtotal is required.",
        ),
        (
            json!({"order_id": "V-1", "total": 100, "currency": "usd"}),
            attribution,
        ),
        (
            json!({"order_id": "V-1", "total": 100, "currency": "usd", "growi_user_id": 42}),
            attribution,
        ),
        (
            json!({"order_id": "V-1", "total": 100, "currency": "usd", "growi_campaign_id": 7}),
            attribution,
        ),
        (
            json!({"order_id": "V-1", "total": 100, "currency": "usd", "campaign_affiliate_id": "nobody"}),
            "Campaign affiliate not found.",
        ),
        (
            json!({"order_id": "V-1", "total": 100, "currency": "usd", "growi_user_id": 42, "growi_campaign_id": 8}),
            "Campaign affiliate not found.",
        ),
        (
            json!({"order_id": "V-1", "total": 100, "currency": "usd", "growi_user_id": 999, "growi_campaign_id": 7}),
            "Campaign affiliate not found.",
        ),
    ];
    for (body, message) in cases {
        let (status, answer) = c.create(body.clone()).await;
        assert_eq!(status, 422, "{body} -> {answer}");
        assert_eq!(answer, json!({"error": message}), "{body}");
    }
    assert!(sb.sales().iter().all(|s| s.external_id != "V-1"));
}

#[tokio::test]
async fn wrong_types_are_422_and_bad_json_is_400() {
    let sb = start(fast()).await;
    let c = Client::new(&sb);
    let base = sale("T-1", 100);
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    let cases = [
        with("total", json!("99.99")),
        with("total", json!(99.99)),
        with("total", json!(-1)),
        with("subtotal", json!("100")),
        with("commission", json!(1.5)),
        with("currency", json!("USD")),
        with("currency", json!("dollars")),
        with("currency", json!(840)),
        with("order_id", json!(["x"])),
        with("occurred_at", json!("yesterday")),
        with("due_at", json!(true)),
        with("sale_type", json!("weekly")),
        with("customer_email", json!(5)),
        with("campaign_affiliate_id", json!({"tag": "creator42"})),
        json!({"order_id": "T-1", "total": 100, "currency": "usd", "growi_user_id": "abc", "growi_campaign_id": 7}),
        json!({"order_id": "T-1", "total": 100, "currency": "usd", "growi_user_id": 42, "growi_campaign_id": -7}),
    ];
    for body in cases {
        let (status, answer) = c.create(body.clone()).await;
        assert_eq!(status, 422, "{body} -> {answer}");
        assert!(
            answer["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{answer}"
        );
    }
    for raw in ["{not json", "{\"order_id\": \"T-1\",", "\u{0}"] {
        let (status, answer) = c.create_raw(raw).await;
        assert_eq!(status, 400, "{raw:?} -> {answer}");
        assert!(answer["error"].is_string(), "{answer}");
    }
    for raw in ["[]", "\"ORD\"", "42"] {
        let (status, answer) = c.create_raw(raw).await;
        assert_eq!(status, 422, "{raw:?} -> {answer}");
        assert!(answer["error"].is_string());
    }
    assert_eq!(sb.sales().len(), 1, "only the seeded sale");
}

#[tokio::test]
async fn create_is_idempotent_and_the_first_version_wins() {
    let sb = start(fast()).await;
    let c = Client::new(&sb);
    let (s1, first) = c.create(sale("IDEM-1", 5000)).await;
    assert_eq!(s1, 201);
    let mut changed = sale("IDEM-1", 7777);
    changed["campaign_affiliate_id"] = json!("ana_lifestyle");
    changed["customer_email"] = json!("other@example.com");
    let (s2, second) = c.create(changed).await;
    assert_eq!(s2, 201);
    assert_eq!(first, second);
    assert_eq!(second["data"]["total"], 5000);
    assert_eq!(second["data"]["campaign_affiliate_id"], "creator42");
    // Even a retry that would not validate returns the existing sale.
    let (s3, third) = c.create(json!({"order_id": "IDEM-1"})).await;
    assert_eq!(s3, 201);
    assert_eq!(third, first);
    let matching: Vec<_> = sb
        .sales()
        .into_iter()
        .filter(|s| s.external_id == "IDEM-1")
        .collect();
    assert_eq!(matching.len(), 1);
    // The next new sale gets the next id: repeats consume none.
    let (_, next) = c.create(sale("IDEM-2", 1)).await;
    assert_eq!(
        next["data"]["id"],
        first["data"]["id"].as_u64().expect("id") + 1
    );
}

#[tokio::test]
async fn commissions_follow_campaign_rules_and_round_half_up() {
    let sb = start(fast()).await;
    let c = Client::new(&sb);
    let commission = |body: Value| {
        let c = &c;
        async move {
            let (status, answer) = c.create(body.clone()).await;
            assert_eq!(status, 201, "{body} -> {answer}");
            answer["data"]["commission"].as_i64().expect("commission")
        }
    };
    assert_eq!(commission(sale("C-1", 1995)).await, 200); // 199.5 -> 200
    assert_eq!(commission(sale("C-2", 1994)).await, 199); // 199.4 -> 199
    assert_eq!(commission(sale("C-3", 0)).await, 0);
    assert_eq!(
        commission(
            json!({"order_id": "C-4", "subtotal": 1995, "currency": "usd",
                          "campaign_affiliate_id": "ana_lifestyle"})
        )
        .await,
        200,
        "subtotal is the base when there is no total"
    );
    assert_eq!(
        commission(
            json!({"order_id": "C-5", "total": 1000, "subtotal": 900, "currency": "usd",
                          "campaign_affiliate_id": "creator42"})
        )
        .await,
        100,
        "total wins over subtotal"
    );
    assert_eq!(
        commission(
            json!({"order_id": "C-6", "total": 123456, "currency": "usd",
                          "campaign_affiliate_id": "fixed_fred"})
        )
        .await,
        500,
        "fixed rule"
    );
    assert_eq!(
        commission(json!({"order_id": "C-7", "total": 1500, "currency": "jpy",
                          "growi_user_id": 42, "growi_campaign_id": 7}))
        .await,
        150
    );
    assert_eq!(
        commission(json!({"order_id": "C-8", "total": 10000, "currency": "usd",
                          "campaign_affiliate_id": "creator42", "commission": 123}))
        .await,
        123,
        "explicit commission overrides"
    );
    let by_ids = sb
        .sales()
        .into_iter()
        .find(|s| s.external_id == "C-7")
        .expect("C-7");
    assert_eq!(by_ids.campaign_affiliate_id.as_deref(), Some("creator42"));
    assert_eq!(by_ids.growi_user_id, Some(42));
}

#[tokio::test]
async fn patch_rules() {
    let sb = start(fast()).await;
    let c = Client::new(&sb);
    let (_, created) = c
        .create(json!({"order_id": "P-1", "total": 10000, "currency": "usd",
                       "campaign_affiliate_id": "creator42", "customer_email": "ann@example.com",
                       "customer_name": "Ann"}))
        .await;
    let id = created["data"]["id"].as_u64().expect("id");
    assert_eq!(created["data"]["commission"], 1000);

    // Not found.
    for bad in ["999", "abc", "1947457999999999999999"] {
        let (status, body) = c.patch(bad, json!({"status": "paid"})).await;
        assert_eq!(status, 404, "{bad}");
        assert_eq!(body, json!({"error": "Sale not found"}));
    }
    // Website only (the seeded shopify sale).
    let (status, body) = c.patch(1_947_000, json!({"status": "paid"})).await;
    assert_eq!(status, 422);
    assert_eq!(
        body,
        json!({"error": "Only sales created via the public API (website platform) can be updated."})
    );

    // Total changes, no commission sent: recalculated (10 % of 19995 = 1999.5 -> 2000).
    let (status, body) = c.patch(id, json!({"total": 19995})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["total"], 19995);
    assert_eq!(body["data"]["commission"], 2000);
    assert_eq!(body["data"]["external_id"], "P-1");
    // Commission sent: taken as is.
    let (_, body) = c.patch(id, json!({"total": 30000, "commission": 42})).await;
    assert_eq!(body["data"]["commission"], 42);
    // Unchanged total: the commission stays.
    let (_, body) = c.patch(id, json!({"total": 30000})).await;
    assert_eq!(body["data"]["commission"], 42);
    // null clears, Unix timestamps and ISO offsets are accepted.
    let (status, body) = c
        .patch(
            id,
            json!({"customer_email": null, "occurred_at": 1_759_276_529,
                   "due_at": "2025-10-31T02:00:00+02:00", "status": "paid", "currency": "eur"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let d = &body["data"];
    assert!(d["customer_email"].is_null());
    assert_eq!(d["customer_name"], "Ann", "fields not sent are kept");
    assert_eq!(d["occurred_at"], "2025-09-30T23:55:29.000Z");
    assert_eq!(d["due_at"], "2025-10-31T00:00:00.000Z");
    assert_eq!(d["status"], "paid");
    assert_eq!(d["currency"], "eur");
    // Invalid values.
    for body in [
        json!({"status": "refunded"}),
        json!({"status": "canceled"}),
        json!({"total": "100"}),
        json!({"total": null}),
        json!({"occurred_at": "not a date"}),
        json!({"customer_name": 7}),
        json!({"currency": "EUR"}),
    ] {
        let (status, answer) = c.patch(id, body.clone()).await;
        assert_eq!(status, 422, "{body} -> {answer}");
    }
    let (status, _) = c
        .send(
            c.http
                .patch(format!("{}/{id}", c.sales_url()))
                .bearer_auth(KEY)
                .body("{oops"),
        )
        .await;
    assert_eq!(status, 400);

    // Cancel, then frozen.
    let (status, body) = c.patch(id, json!({"status": "cancelled"})).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["status"], "cancelled");
    let (status, body) = c.patch(id, json!({"status": "paid"})).await;
    assert_eq!(status, 422);
    assert_eq!(body, json!({"error": "Cancelled sales cannot be updated."}));
    let stored = sb.sales().into_iter().find(|s| s.id == id).expect("sale");
    assert_eq!(stored.status, SaleStatus::Cancelled);
    assert_eq!(stored.customer_email, None);
}

#[tokio::test]
async fn patch_on_fixed_campaign_keeps_the_fixed_commission() {
    let sb = start(fast()).await;
    let c = Client::new(&sb);
    let (_, created) = c
        .create(
            json!({"order_id": "F-1", "subtotal": 1000, "currency": "usd",
                       "campaign_affiliate_id": "fixed_fred", "commission": 1}),
        )
        .await;
    let id = created["data"]["id"].as_u64().expect("id");
    assert_eq!(created["data"]["commission"], 1);
    let (_, body) = c.patch(id, json!({"total": 5000})).await;
    assert_eq!(
        body["data"]["commission"], 500,
        "recalculated with the fixed rule"
    );
}

async fn seed_list(c: &Client) -> Vec<u64> {
    let bodies = [
        json!({"order_id": "L-1", "total": 12999, "currency": "usd", "campaign_affiliate_id": "creator42",
               "customer_email": "ann@example.com"}),
        json!({"order_id": "L-2", "total": 1995, "currency": "usd", "campaign_affiliate_id": "ana_lifestyle",
               "customer_name": "Bob Builder"}),
        json!({"order_id": "L-3", "total": 5000, "currency": "usd", "campaign_affiliate_id": "fixed_fred",
               "due_at": "2020-01-01T00:00:00Z"}),
        json!({"order_id": "L-4", "total": 1000, "currency": "usd", "campaign_affiliate_id": "creator42",
               "due_at": "2999-01-01T00:00:00Z"}),
        json!({"order_id": "L-5", "total": 1500, "currency": "jpy", "campaign_affiliate_id": "creator42"}),
    ];
    let mut ids = Vec::new();
    for b in bodies {
        let (status, answer) = c.create(b).await;
        assert_eq!(status, 201, "{answer}");
        ids.push(answer["data"]["id"].as_u64().expect("id"));
    }
    ids
}

fn order_ids(body: &Value) -> Vec<String> {
    body["data"]
        .as_array()
        .expect("data array")
        .iter()
        .map(|s| s["external_id"].as_str().expect("external_id").to_owned())
        .collect()
}

#[tokio::test]
async fn list_filters_pagination_and_aggregates() {
    let sb = start(fast()).await;
    let c = Client::new(&sb);
    let ids = seed_list(&c).await;
    // L-1 paid, L-2 cancelled.
    assert_eq!(c.patch(ids[0], json!({"status": "paid"})).await.0, 200);
    assert_eq!(c.patch(ids[1], json!({"status": "cancelled"})).await.0, 200);

    // Everything, newest first, default page size.
    let (status, all) = c.list("").await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(
        order_ids(&all),
        ["L-5", "L-4", "L-3", "L-2", "L-1", "SHOP-1001"]
    );
    assert_eq!(
        all["meta"],
        json!({"row_count": 6, "page_count": 1, "current_page": 1})
    );
    let first = &all["data"][4];
    assert_eq!(
        first["total"], 12999,
        "sale amounts stay integer minor units"
    );

    // Filters.
    assert_eq!(order_ids(&c.list("order_id=L-3").await.1), ["L-3"]);
    assert_eq!(order_ids(&c.list("status=paid").await.1), ["L-1"]);
    assert_eq!(order_ids(&c.list("status=canceled").await.1), ["L-2"]);
    assert_eq!(order_ids(&c.list("status=cancelled").await.1), ["L-2"]);
    assert_eq!(
        order_ids(&c.list("status=unpaid").await.1),
        ["L-5", "L-4", "L-3", "SHOP-1001"]
    );
    assert_eq!(order_ids(&c.list("status=due").await.1), ["L-3"]);
    assert_eq!(
        order_ids(&c.list("affiliate_tag=creator42").await.1),
        ["L-5", "L-4", "L-1", "SHOP-1001"]
    );
    assert_eq!(
        order_ids(&c.list("store_platform=shopify").await.1),
        ["SHOP-1001"]
    );
    assert_eq!(
        order_ids(
            &c.list("store_platform=website&affiliate_tag=creator42&status=unpaid")
                .await
                .1
        ),
        ["L-5", "L-4"]
    );
    assert_eq!(order_ids(&c.list("search=BUILDER").await.1), ["L-2"]);
    assert_eq!(order_ids(&c.list("campaign_id=8").await.1), ["L-3"]);
    assert_eq!(order_ids(&c.list("creator_id=43").await.1), ["L-2"]);
    assert_eq!(
        order_ids(&c.list("start_date=09/01/2025&end_date=09/01/2025").await.1),
        ["SHOP-1001"]
    );
    assert_eq!(c.list("status=bogus").await.0, 422);
    assert_eq!(c.list("page=0").await.0, 422);
    assert_eq!(c.list("per_page=x").await.0, 422);
    assert_eq!(c.list("start_date=2025-09-01").await.0, 422);

    // Pagination.
    let (_, p2) = c.list("per_page=2&page=2").await;
    assert_eq!(order_ids(&p2), ["L-3", "L-2"]);
    assert_eq!(
        p2["meta"],
        json!({"row_count": 6, "page_count": 3, "current_page": 2})
    );
    let (_, p4) = c.list("per_page=2&page=4").await;
    assert_eq!(order_ids(&p4), Vec::<String>::new());
    assert_eq!(p4["meta"]["current_page"], 4);
    let (_, clamped) = c.list("per_page=1000").await;
    assert_eq!(
        clamped["meta"]["page_count"], 1,
        "per_page is clamped to 100"
    );

    // Aggregates in major units, over all matching rows (not just the page), cancelled excluded.
    // GMV: 129.99 + 50.00 + 10.00 + 1500 (jpy) + 50.00 (shopify) = 1739.99
    // Commission: 13.00 (L-1) + 5.00 (L-3) + 1.00 (L-4) + 150 (L-5) + 5.00 (shopify) = 174.00
    let agg = &p2["additional_data"];
    assert_eq!(agg["total_gmv"], json!(1739.99));
    assert_eq!(agg["total_commission"], json!(174.0));
    assert_eq!(agg["paid_commission"], json!(13.0));
    assert_eq!(agg["unpaid_commission"], json!(161.0));
    assert_eq!(agg["total_orders"], 5);
    assert_eq!(agg["total_vat"], json!(0.0));
    assert_eq!(agg["total_refunded_amount"], json!(0.0));
    let (_, one) = c.list("order_id=L-1").await;
    assert_eq!(one["additional_data"]["total_gmv"], json!(129.99));
    assert_eq!(one["additional_data"]["paid_commission"], json!(13.0));
}
