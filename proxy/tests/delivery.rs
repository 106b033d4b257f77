//! The outbox and the paced sender against the sandbox over real HTTP.

mod common;

use common::*;
use salebeacon_sandbox::{Affiliate, Faults, SandboxConfig, Seed};
use serde_json::{json, Value};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(15);

async fn state_of(client: &reqwest::Client, base: &str, order_id: &str) -> Value {
    admin_get(client, base, &format!("/sales/{order_id}"))
        .await
        .1
}

async fn wait_state(client: &reqwest::Client, base: &str, order_id: &str, state: &str) -> Value {
    let start = std::time::Instant::now();
    loop {
        let v = state_of(client, base, order_id).await;
        if v["state"] == state {
            return v;
        }
        assert!(
            start.elapsed() < LONG,
            "{order_id} never reached {state}: {v}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn delivers_each_sale_once_and_creates_are_idempotent_upstream() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(0).await;
    let p = proxy(config(&sb.base_url(), &dir.path().join("a.db"))).await;
    let c = reqwest::Client::new();
    let base = p.base_url();
    for id in ["IDEM-1", "IDEM-2", "IDEM-3"] {
        assert_eq!(post_sale(&c, &base, &sale(id, "creator42")).await.0, 202);
    }
    let (status, body) = post_sale(&c, &base, &sale("IDEM-2", "creator42")).await;
    assert_eq!((status, body), (200, json!({"status": "duplicate"})));
    let mut ids = Vec::new();
    for id in ["IDEM-1", "IDEM-2", "IDEM-3"] {
        let v = wait_state(&c, &base, id, "sent").await;
        assert_eq!(v["last_status"], 201);
        ids.push(v["growi_id"].as_u64().expect("growi id recorded"));
    }
    // A second proxy with an empty outbox sends IDEM-2 again: Growi keeps one sale, same id.
    let dir2 = tempfile::tempdir().unwrap();
    let p2 = proxy(config(&sb.base_url(), &dir2.path().join("b.db"))).await;
    assert_eq!(
        post_sale(&c, &p2.base_url(), &sale("IDEM-2", "creator42"))
            .await
            .0,
        202
    );
    let again = wait_state(&c, &p2.base_url(), "IDEM-2", "sent").await;
    assert_eq!(again["growi_id"].as_u64(), Some(ids[1]));
    let sales = sb.sales();
    for id in ["IDEM-1", "IDEM-2", "IDEM-3"] {
        assert_eq!(
            sales.iter().filter(|s| s.external_id == id).count(),
            1,
            "{id}"
        );
    }
    assert_eq!(
        requests_for(&sb, "IDEM-2").len(),
        2,
        "sent once by each proxy"
    );
    p2.shutdown().await;
    p.shutdown().await;
    sb.shutdown().await;
}

#[tokio::test]
async fn never_faster_than_the_pace() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(0).await;
    let p = proxy(config(&sb.base_url(), &dir.path().join("a.db"))).await;
    let c = reqwest::Client::new();
    let base = p.base_url();
    for i in 0..6 {
        assert_eq!(
            post_sale(&c, &base, &sale(&format!("PACE-{i}"), "creator42"))
                .await
                .0,
            202
        );
    }
    eventually(LONG, "6 sales sent", || async {
        admin_get(&c, &base, "/sales?state=sent").await.1["count"] == 6
    })
    .await;
    let gap = min_gap_ms(&sb).expect("several requests");
    assert!(
        gap >= 199,
        "two upstream requests only {gap} ms apart (pace 200 ms)"
    );
    let times: Vec<u64> = sb.requests().iter().map(|r| r.received_at_ms).collect();
    let span = times[times.len() - 1] - times[0];
    assert!(
        span < 5 * 200 + 600,
        "drained too slowly: {span} ms for 6 sales"
    );
    p.shutdown().await;
    sb.shutdown().await;
}

#[tokio::test]
async fn a_429_retry_after_is_obeyed_before_any_next_request() {
    let dir = tempfile::tempdir().unwrap();
    // Growi allows one request a second; the proxy is (wrongly) configured for 200 ms.
    let sb = sandbox(1000).await;
    let p = proxy(config(&sb.base_url(), &dir.path().join("a.db"))).await;
    let c = reqwest::Client::new();
    let base = p.base_url();
    for i in 0..3 {
        assert_eq!(
            post_sale(&c, &base, &sale(&format!("RL-{i}"), "creator42"))
                .await
                .0,
            202
        );
    }
    eventually(LONG, "3 sales sent", || async {
        admin_get(&c, &base, "/sales?state=sent").await.1["count"] == 3
    })
    .await;
    let reqs = sb.requests();
    let limited: Vec<_> = reqs.iter().filter(|r| r.status == 429).collect();
    assert!(!limited.is_empty(), "the test needs at least one 429");
    for w in reqs.windows(2) {
        if w[0].status == 429 {
            let gap = w[1].received_at_ms - w[0].received_at_ms;
            assert!(
                gap >= 999,
                "next request {gap} ms after a 429 with retry_after 1"
            );
        }
    }
    assert_eq!(reqs.iter().filter(|r| r.status == 201).count(), 3);
    let metrics = c
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(&format!(
            "salebeacon_upstream_429_total {}\n",
            limited.len()
        )),
        "{metrics}"
    );
    p.shutdown().await;
    sb.shutdown().await;
}

#[tokio::test]
async fn network_failures_and_5xx_are_retried_until_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(0).await;
    sb.set_faults(Faults {
        down: true,
        ..Faults::default()
    });
    let mut cfg = config(&sb.base_url(), &dir.path().join("a.db"));
    cfg.pace = Duration::from_millis(50);
    let p = proxy(cfg).await;
    let c = reqwest::Client::new();
    let base = p.base_url();
    assert_eq!(
        post_sale(&c, &base, &sale("FLAKY-1", "creator42")).await.0,
        202
    );
    eventually(LONG, "two dropped attempts", || async {
        sb.requests().iter().filter(|r| r.status == 0).count() >= 2
    })
    .await;
    let v = state_of(&c, &base, "FLAKY-1").await;
    assert_eq!(v["state"], "queued");
    assert!(
        v["last_error"]
            .as_str()
            .unwrap_or("")
            .starts_with("network"),
        "{v}"
    );
    sb.set_faults(Faults {
        error_rate: 1.0,
        ..Faults::default()
    });
    eventually(LONG, "two 5xx answers", || async {
        sb.requests().iter().filter(|r| r.status >= 500).count() >= 2
    })
    .await;
    let v = state_of(&c, &base, "FLAKY-1").await;
    assert_eq!(v["state"], "queued");
    assert!(v["last_status"].as_u64().unwrap_or(0) >= 500, "{v}");
    sb.set_faults(Faults::default());
    let v = wait_state(&c, &base, "FLAKY-1", "sent").await;
    assert!(v["attempts"].as_u64().unwrap() >= 5, "{v}");
    assert_eq!(
        sb.sales()
            .iter()
            .filter(|s| s.external_id == "FLAKY-1")
            .count(),
        1
    );
    p.shutdown().await;
    sb.shutdown().await;
}

#[tokio::test]
async fn a_rejected_sale_fails_with_growis_reason_and_can_be_retried() {
    let dir = tempfile::tempdir().unwrap();
    let state_file = dir.path().join("sandbox.json");
    let sb = sandbox_with(SandboxConfig {
        min_interval: Duration::ZERO,
        state_file: Some(state_file.clone()),
        ..SandboxConfig::default()
    })
    .await;
    let addr = sb.addr();
    let p = proxy(config(&sb.base_url(), &dir.path().join("a.db"))).await;
    let c = reqwest::Client::new();
    let base = p.base_url();
    assert_eq!(
        post_sale(&c, &base, &sale("LATE-1", "late_joiner")).await.0,
        202
    );
    assert_eq!(
        post_sale(&c, &base, &sale("OK-1", "creator42")).await.0,
        202
    );
    let v = wait_state(&c, &base, "LATE-1", "failed").await;
    assert_eq!(v["last_status"], 422);
    assert_eq!(v["last_error"], "Campaign affiliate not found.");
    wait_state(&c, &base, "OK-1", "sent").await;
    let (_, failed) = admin_get(&c, &base, "/sales?state=failed").await;
    assert_eq!(failed["count"], 1);
    assert_eq!(failed["jobs"][0]["order_id"], "LATE-1");
    let r = c
        .post(format!("{base}/admin/sales/OK-1/retry"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409, "nothing failed for a sent sale");

    // The creator joins the campaign: Growi now knows the tag.
    sb.shutdown().await;
    let mut seed = Seed::default();
    seed.affiliates.push(Affiliate {
        tag: "late_joiner".into(),
        growi_user_id: 99,
        campaign_id: 7,
    });
    let sb = salebeacon_sandbox::spawn(
        SandboxConfig {
            min_interval: Duration::ZERO,
            state_file: Some(state_file),
            seed,
            ..SandboxConfig::default()
        },
        addr,
    )
    .await
    .expect("sandbox restarts on the same port");
    let r = c
        .post(format!("{base}/admin/sales/LATE-1/retry"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let v = wait_state(&c, &base, "LATE-1", "sent").await;
    assert!(v["growi_id"].as_u64().is_some());
    assert_eq!(
        sb.sales()
            .iter()
            .filter(|s| s.external_id == "LATE-1")
            .count(),
        1
    );
    p.shutdown().await;
    sb.shutdown().await;
}

#[tokio::test]
async fn admin_patch_by_order_id_reaches_growi_after_the_create() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(0).await;
    let p = proxy(config(&sb.base_url(), &dir.path().join("a.db"))).await;
    let c = reqwest::Client::new();
    let base = p.base_url();
    assert_eq!(
        post_sale(&c, &base, &sale("UPD-1", "creator42")).await.0,
        202
    );
    // Queued at once, before the create has gone: it waits for Growi's id.
    let patch = |body: Value, order: &str| {
        c.patch(format!("{base}/admin/sales/{order}"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
    };
    let r = patch(json!({"status": "paid", "total": 5000}), "UPD-1")
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let r = patch(
        json!({"status": "refunded_maybe", "order_id": "x"}),
        "UPD-1",
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 422);
    let body: Value = r.json().await.unwrap();
    let fields: Vec<&str> = body["issues"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["field"].as_str())
        .collect();
    assert!(
        fields.contains(&"status") && fields.contains(&"order_id"),
        "{body}"
    );
    assert_eq!(
        patch(json!({"status": "paid"}), "NOPE")
            .await
            .unwrap()
            .status(),
        404
    );

    eventually(LONG, "update sent", || async {
        state_of(&c, &base, "UPD-1").await["updates"][0]["state"] == "sent"
    })
    .await;
    let v = state_of(&c, &base, "UPD-1").await;
    let growi_id = v["growi_id"].as_u64().unwrap();
    let s = sb
        .sales()
        .into_iter()
        .find(|s| s.external_id == "UPD-1")
        .unwrap();
    assert_eq!(s.id, growi_id);
    assert_eq!(s.total, Some(5000));
    assert_eq!(serde_json::to_value(s.status).unwrap(), "paid");
    let reqs = requests_for(&sb, "UPD-1");
    assert_eq!(reqs[0].method, "POST");
    // Before the order's first update, its Growi id is looked up by order_id at this upstream.
    assert_eq!(reqs[1].method, "GET");
    assert_eq!(reqs[1].path, "/api/public/v1/affiliate_sales");
    assert_eq!(reqs[2].method, "PATCH");
    assert_eq!(
        reqs[2].path,
        format!("/api/public/v1/affiliate_sales/{growi_id}")
    );
    p.shutdown().await;
    sb.shutdown().await;
}

#[tokio::test]
async fn a_refused_key_pauses_the_sender_and_keeps_the_queue() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(0).await;
    let mut cfg = config(&sb.base_url(), &dir.path().join("a.db"));
    cfg.growi_api_key = salebeacon_proxy::Secret::new("sk_wrong_key");
    cfg.auth_pause = Duration::from_millis(400);
    let p = proxy(cfg).await;
    let c = reqwest::Client::new();
    let base = p.base_url();
    assert_eq!(
        post_sale(&c, &base, &sale("KEY-1", "creator42")).await.0,
        202
    );
    assert_eq!(
        post_sale(&c, &base, &sale("KEY-2", "creator42")).await.0,
        202
    );
    eventually(LONG, "two 401s", || async {
        sb.requests().iter().filter(|r| r.status == 401).count() >= 2
    })
    .await;
    let reqs = sb.requests();
    assert!(
        reqs[1].received_at_ms - reqs[0].received_at_ms >= 399,
        "paused between tries"
    );
    let health: Value = c
        .get(format!("{base}/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["queue_depth"], 2, "nothing burned: {health}");
    assert!(
        health["sender"].as_str().unwrap().starts_with("paused"),
        "{health}"
    );
    let v = state_of(&c, &base, "KEY-1").await;
    assert_eq!(
        (v["state"].clone(), v["attempts"].clone()),
        (json!("queued"), json!(0))
    );
    p.shutdown().await;
    sb.shutdown().await;
}

#[tokio::test]
async fn the_queue_depth_counts_every_waiting_sale_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(0).await;
    // A refused key keeps every sale waiting while the depth is read.
    let mut cfg = config(&sb.base_url(), &dir.path().join("depth.db"));
    cfg.growi_api_key = salebeacon_proxy::Secret::new("sk_wrong_key");
    cfg.auth_pause = Duration::from_secs(60);
    let p = proxy(cfg).await;
    let c = reqwest::Client::new();
    let base = p.base_url();
    let depth = || async {
        let h: Value = c
            .get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        h["queue_depth"].clone()
    };
    for i in 0..40 {
        let (status, _) = post_sale(&c, &base, &sale(&format!("DEPTH-{i}"), "creator42")).await;
        assert_eq!(status, 202);
        // A duplicate adds nothing.
        let (status, _) = post_sale(&c, &base, &sale(&format!("DEPTH-{i}"), "creator42")).await;
        assert_eq!(status, 200);
    }
    assert_eq!(depth().await, json!(40));
    p.shutdown().await;
    sb.shutdown().await;
}
