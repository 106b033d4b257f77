//! Rate limits, fault injection, the request log, the control API and persistence, over HTTP.

mod common;

use std::time::{Duration, Instant};

use common::{fast, sale, start, Client, KEY};
use salebeacon_sandbox::{spawn, timefmt, Faults, SandboxConfig};
use serde_json::{json, Value};

#[tokio::test]
async fn min_interval_gives_429_with_growi_message() {
    let sb = start(SandboxConfig::default()).await; // 2000 ms, as Growi
    let c = Client::new(&sb);
    assert_eq!(c.create(sale("R-1", 100)).await.0, 201);
    let (status, body) = c.create(sale("R-2", 100)).await;
    assert_eq!(status, 429);
    assert_eq!(
        body,
        json!({"error": "Rate limit exceeded. Please wait 2 seconds between requests.", "retry_after": 2})
    );
    // Reads count too.
    assert_eq!(c.list("").await.0, 429);
    assert!(sb.sales().iter().all(|s| s.external_id != "R-2"));
}

#[tokio::test]
async fn short_interval_message_retry_after_and_rejections_do_not_reset_the_clock() {
    let sb = start(SandboxConfig {
        min_interval: Duration::from_millis(600),
        ..SandboxConfig::default()
    })
    .await;
    let c = Client::new(&sb);
    let t0 = Instant::now();
    assert_eq!(c.create(sale("S-1", 100)).await.0, 201);
    tokio::time::sleep_until((t0 + Duration::from_millis(300)).into()).await;
    let (status, body) = c.create(sale("S-2", 100)).await;
    assert_eq!(status, 429);
    assert_eq!(
        body,
        json!({"error": "Rate limit exceeded. Please wait 0.6 seconds between requests.", "retry_after": 1})
    );
    // 700 ms after the accepted request (only 400 ms after the rejected one): accepted, because
    // a rejected request does not count.
    tokio::time::sleep_until((t0 + Duration::from_millis(700)).into()).await;
    let (status, body) = c.create(sale("S-2", 100)).await;
    assert_eq!(status, 201, "{body}");
    let log = sb.requests();
    let statuses: Vec<u16> = log.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [201, 429, 201]);
}

#[tokio::test]
async fn auth_failures_come_before_rate_limiting() {
    let sb = start(SandboxConfig::default()).await;
    let c = Client::new(&sb);
    let url = c.sales_url();
    assert_eq!(
        c.send(c.http.post(&url).bearer_auth("wrong").json(&sale("A-1", 1)))
            .await
            .0,
        401
    );
    assert_eq!(
        c.create(sale("A-1", 1)).await.0,
        201,
        "a 401 does not use the interval"
    );
    assert_eq!(c.send(c.http.post(&url).json(&sale("A-2", 1))).await.0, 401);
    assert_eq!(c.create(sale("A-2", 1)).await.0, 429);
}

#[tokio::test]
async fn hourly_limit_gives_429_with_reset_time() {
    let sb = start(SandboxConfig {
        hourly_limit: Some(2),
        ..fast()
    })
    .await;
    let c = Client::new(&sb);
    assert_eq!(c.create(sale("H-1", 1)).await.0, 201);
    assert_eq!(
        c.create(json!({"order_id": "H-x"})).await.0,
        422,
        "a 422 counts too"
    );
    let before = timefmt::now_ms();
    let (status, body) = c.create(sale("H-2", 1)).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"], "Hourly rate limit of 2 requests exceeded.");
    let retry_after = body["retry_after"].as_u64().expect("retry_after");
    assert!((3590..=3600).contains(&retry_after), "{retry_after}");
    let reset = body["reset_time"].as_str().expect("reset_time");
    let reset_ts = timefmt::parse_iso(reset).expect("ISO 8601 reset_time");
    let reset_ms = u64::try_from(reset_ts.as_millisecond()).expect("positive");
    let expected = before + 3_600_000;
    assert!(
        reset_ms.abs_diff(expected) < 15_000,
        "reset_time {reset} not about an hour from now"
    );
    assert!(sb.sales().iter().all(|s| s.external_id != "H-2"));
    // reset clears the limiter.
    sb.reset().expect("reset");
    assert_eq!(c.create(sale("H-2", 1)).await.0, 201);
}

#[tokio::test]
async fn error_rate_one_gives_5xx_and_rate_limit_rate_one_gives_429() {
    let sb = start(SandboxConfig {
        faults: Faults {
            error_rate: 1.0,
            ..Faults::default()
        },
        ..fast()
    })
    .await;
    let c = Client::new(&sb);
    for i in 0..6 {
        let (status, body) = c.create(sale(&format!("E-{i}"), 1)).await;
        assert!(status == 500 || status == 503, "{status}");
        assert!(body["error"].is_string());
    }
    assert_eq!(sb.sales().len(), 1, "nothing was created");

    let (status, faults) = c
        .control_put("faults", json!({"rate_limit_rate": 1.0}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        faults,
        json!({"latency_ms": 0, "error_rate": 0.0, "rate_limit_rate": 1.0, "down": false})
    );
    let (status, body) = c.create(sale("E-9", 1)).await;
    assert_eq!(status, 429);
    assert_eq!(body["retry_after"], 1);
    assert!(body["error"]
        .as_str()
        .is_some_and(|e| e.starts_with("Rate limit exceeded.")));

    sb.set_faults(Faults::default());
    assert_eq!(c.create(sale("E-9", 1)).await.0, 201);
    assert_eq!(
        c.control_get("faults").await.1["rate_limit_rate"],
        json!(0.0)
    );
}

#[tokio::test]
async fn fault_shares_are_reproducible_with_a_seed() {
    async fn statuses(seed: u64) -> Vec<u16> {
        let sb = start(SandboxConfig {
            faults: Faults {
                error_rate: 0.5,
                ..Faults::default()
            },
            fault_seed: seed,
            ..fast()
        })
        .await;
        let c = Client::new(&sb);
        let mut out = Vec::new();
        for i in 0..16 {
            out.push(c.list(&format!("order_id=X-{i}")).await.0);
        }
        sb.shutdown().await;
        out
    }
    let a = statuses(99).await;
    let b = statuses(99).await;
    assert_eq!(a, b);
    assert!(a.contains(&200) && a.iter().any(|s| *s >= 500), "{a:?}");
}

#[tokio::test]
async fn latency_delays_api_requests_only() {
    let sb = start(SandboxConfig {
        faults: Faults {
            latency_ms: 300,
            ..Faults::default()
        },
        ..fast()
    })
    .await;
    let c = Client::new(&sb);
    let t = Instant::now();
    assert_eq!(c.list("").await.0, 200);
    assert!(t.elapsed() >= Duration::from_millis(300));
    let t = Instant::now();
    assert_eq!(c.control_get("faults").await.0, 200);
    assert!(t.elapsed() < Duration::from_millis(300));
}

#[tokio::test]
async fn down_drops_connections_while_the_control_api_works() {
    let sb = start(fast()).await;
    let c = Client::new(&sb);
    // Warm a pooled keep-alive connection first: it must be cut too.
    assert_eq!(c.create(sale("D-0", 1)).await.0, 201);

    let (status, _) = c.control_put("faults", json!({"down": true})).await;
    assert_eq!(status, 200);
    for client in [c.http.clone(), reqwest::Client::new()] {
        let t = Instant::now();
        let result = client
            .post(c.sales_url())
            .bearer_auth(KEY)
            .json(&sale("D-1", 1))
            .send()
            .await;
        let err = result.expect_err("no HTTP response while down");
        assert!(!err.is_timeout(), "{err}");
        assert!(err.status().is_none());
        assert!(t.elapsed() < Duration::from_secs(5));
    }
    let (status, faults) = c.control_get("faults").await;
    assert_eq!(status, 200);
    assert_eq!(faults["down"], true);
    assert!(sb.sales().iter().all(|s| s.external_id != "D-1"));
    let dropped: Vec<_> = sb
        .requests()
        .into_iter()
        .filter(|r| r.status == 0)
        .collect();
    assert!(!dropped.is_empty());
    assert!(dropped.iter().all(|r| r.order_id.as_deref() == Some("D-1")));

    // Back up.
    let (status, _) = c.control_put("faults", json!({"down": false})).await;
    assert_eq!(status, 200);
    let (status, body) = c.create(sale("D-1", 1)).await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn request_log_records_every_api_request() {
    let sb = start(fast()).await;
    let c = Client::new(&sb);
    let start_ms = timefmt::now_ms();
    let (_, created) = c.create(sale("LOG-1", 100)).await;
    let id = created["data"]["id"].as_u64().expect("id");
    c.create(json!({"order_id": "LOG-2"})).await;
    c.patch(id, json!({"status": "paid"})).await;
    c.list("order_id=LOG-1").await;
    c.send(c.http.get(c.sales_url())).await; // 401
    c.control_get("sales").await; // control API: not logged

    let log = sb.requests();
    let summary: Vec<(String, String, Option<String>, u16)> = log
        .iter()
        .map(|r| {
            (
                r.method.clone(),
                r.path.clone(),
                r.order_id.clone(),
                r.status,
            )
        })
        .collect();
    let path = "/api/public/v1/affiliate_sales".to_owned();
    assert_eq!(
        summary,
        [
            ("POST".into(), path.clone(), Some("LOG-1".into()), 201),
            ("POST".into(), path.clone(), Some("LOG-2".into()), 422),
            (
                "PATCH".into(),
                format!("{path}/{id}"),
                Some("LOG-1".into()),
                200
            ),
            ("GET".into(), path.clone(), Some("LOG-1".into()), 200),
            ("GET".into(), path.clone(), None, 401),
        ]
    );
    let times: Vec<u64> = log.iter().map(|r| r.received_at_ms).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]));
    assert!(times[0] >= start_ms && times[4] <= timefmt::now_ms());

    // The same log over HTTP.
    let (status, over_http) = c.control_get("requests").await;
    assert_eq!(status, 200);
    assert_eq!(over_http, serde_json::to_value(&log).expect("json"));
    assert_eq!(over_http[0]["received_at_ms"], json!(times[0]));

    // Reset keeps the seed, clears sales and the log; ids start over.
    let (status, _) = c.control_post("reset").await;
    assert_eq!(status, 200);
    assert!(sb.requests().is_empty());
    let sales = sb.sales();
    assert_eq!(sales.len(), 1);
    assert_eq!(sales[0].external_id, "SHOP-1001");
    let (_, again) = c.create(sale("LOG-1", 100)).await;
    assert_eq!(again["data"]["id"], 1_947_457);
}

#[tokio::test]
async fn control_api_rejects_bad_faults_and_unknown_paths_are_json_404() {
    let sb = start(fast()).await;
    let c = Client::new(&sb);
    let (status, body) = c.control_put("faults", json!({"error_rate": 2.0})).await;
    assert_eq!(status, 422);
    assert!(body["error"].is_string());
    let (status, body) = c
        .send(
            c.http
                .put(format!("{}/_sandbox/faults", c.root))
                .body("nope"),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        c.control_get("faults").await.1,
        serde_json::to_value(Faults::default()).expect("json")
    );
    let (status, body) = c.list("").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = c
        .send(
            c.http
                .get(format!("{}/nothing_here", c.base))
                .bearer_auth(KEY),
        )
        .await;
    assert_eq!(status, 404);
    assert!(body["error"].is_string());
    let (status, body) = c.send(c.http.delete(c.sales_url()).bearer_auth(KEY)).await;
    assert_eq!(status, 405);
    assert!(body["error"].is_string());
}

#[tokio::test]
async fn state_file_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sandbox-state.json");
    let config = || SandboxConfig {
        state_file: Some(path.clone()),
        ..fast()
    };
    let sb = start(config()).await;
    let c = Client::new(&sb);
    let (_, created) = c.create(sale("ST-1", 2500)).await;
    let id = created["data"]["id"].as_u64().expect("id");
    assert_eq!(c.patch(id, json!({"status": "paid"})).await.0, 200);
    let before = sb.sales();
    sb.shutdown().await;

    let on_disk: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("state file")).expect("json");
    assert_eq!(on_disk["sales"].as_array().map(Vec::len), Some(2));
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "no temp files left: {leftovers:?}");

    let sb = start(config()).await;
    assert_eq!(sb.sales(), before);
    let c = Client::new(&sb);
    let (status, again) = c.create(sale("ST-1", 9999)).await;
    assert_eq!(status, 201);
    assert_eq!(
        again["data"]["status"], "paid",
        "idempotency survives the restart"
    );
    let (_, next) = c.create(sale("ST-2", 1)).await;
    assert_eq!(next["data"]["id"], id + 1);
    sb.shutdown().await;

    // A corrupt state file is an error at start-up, not silently ignored.
    std::fs::write(&path, "{garbage").expect("write");
    let err = spawn(config(), "127.0.0.1:0".parse().expect("addr")).await;
    assert!(err.is_err());
}

#[tokio::test]
async fn custom_seed_from_json() {
    let seed = salebeacon_sandbox::Seed::from_json(
        r#"{"campaigns": [{"id": 3, "commission": {"type": "percent", "bps": 550}}],
            "affiliates": [{"tag": "zed", "growi_user_id": 9, "campaign_id": 3}],
            "first_sale_id": 10}"#,
    )
    .expect("seed");
    let sb = start(SandboxConfig { seed, ..fast() }).await;
    let c = Client::new(&sb);
    let (status, body) = c
        .create(json!({"order_id": "Z-1", "total": 1000, "currency": "usd", "campaign_affiliate_id": "zed"}))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["data"]["id"], 10);
    assert_eq!(body["data"]["commission"], 55);
    assert_eq!(
        c.create(sale("Z-2", 1)).await.1["error"],
        "Campaign affiliate not found."
    );
}
