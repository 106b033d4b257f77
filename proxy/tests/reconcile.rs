//! Reconciliation end to end, against the in-process sandbox with divergences injected through its
//! control API: the report names each divergence and only those (a missing sale, a changed amount,
//! a changed status, a website sale the proxy never saw; a Shopify sale and the proxy's own
//! cancellations and corrections are not divergences), the reconciliation's reads never break the
//! pace while the sender goes on delivering, and the `reconcile` subcommand's exit codes, table
//! and JSON. The last test (`postgres_*`) is the several-instances rule: a standing-by instance
//! refuses to start a run, the sender's instance runs it, every instance reads its record.

mod common;

use common::process::BIN;
use common::*;
use salebeacon_proxy::now_ms;
use salebeacon_proxy::outbox::Database;
use salebeacon_proxy::reconcile::Day;
use salebeacon_sandbox::{RunningSandbox, SaleInsert};
use serde_json::{json, Value};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(30);
/// The pace of `common::config`, and the sandbox's minimum interval: closer requests get a 429.
const PACE_MS: u64 = 200;

async fn admin(
    c: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
) -> (u16, Option<String>, Value) {
    let mut req = c.request(method, url).bearer_auth(ADMIN_TOKEN);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.expect("request");
    let status = r.status().as_u16();
    let retry_after = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (status, retry_after, r.json().await.unwrap_or(Value::Null))
}

/// A control-API call to the sandbox.
async fn control(
    c: &reqwest::Client,
    sb: &RunningSandbox,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    let mut req = c.request(method, format!("{}/_sandbox/{path}", sb.root_url()));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.expect("control API answers");
    assert!(r.status().is_success(), "control {path}: {}", r.status());
    r.json().await.expect("json")
}

async fn wait_sent(c: &reqwest::Client, base: &str, order_id: &str, updates: usize) {
    eventually(
        LONG,
        &format!("{order_id} and {updates} updates sent"),
        || async {
            let v = admin_get(c, base, &format!("/sales/{order_id}")).await.1;
            v["state"] == "sent"
                && v["updates"]
                    .as_array()
                    .map_or(0, |u| u.iter().filter(|x| x["state"] == "sent").count())
                    == updates
        },
    )
    .await;
}

/// Starts a reconciliation over `window` and follows it until it ends; the final record.
async fn reconcile(c: &reqwest::Client, base: &str, window: Value) -> Value {
    let url = format!("{base}/admin/reconcile");
    let (status, _, started) = loop {
        let answer = admin(c, reqwest::Method::POST, url.clone(), Some(window.clone())).await;
        // Right after start-up the sender may not lead yet.
        if answer.0 != 503 {
            break answer;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status, 202, "{started}");
    let id = started["run"]["id"].as_str().expect("a run id").to_owned();
    let start = std::time::Instant::now();
    loop {
        let (_, _, rec) = admin(c, reqwest::Method::GET, url.clone(), None).await;
        if rec["run"]["id"] == id.as_str() && rec["run"]["state"] != "running" {
            return rec;
        }
        assert!(start.elapsed() < LONG, "run {id} never ended: {rec}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn kinds(report: &Value) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = report["differences"]
        .as_array()
        .expect("differences")
        .iter()
        .map(|d| {
            (
                d["order_id"].as_str().unwrap_or("").to_owned(),
                d["kind"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    v.sort();
    v
}

fn today() -> Day {
    Day::of_ms(now_ms())
}

#[tokio::test]
async fn names_each_divergence_and_only_those_without_breaking_the_pace() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(PACE_MS).await;
    let p = proxy(config(&sb.base_url(), &dir.path().join("r.db"))).await;
    let c = reqwest::Client::new();
    let base = p.base_url();

    // Nothing yet: no report, and the endpoints are the admin API's.
    let last = format!("{base}/admin/reconcile/last");
    assert_eq!(
        admin(&c, reqwest::Method::GET, last.clone(), None).await.0,
        404
    );
    let anonymous = c.get(&last).send().await.unwrap().status().as_u16();
    assert_eq!(anonymous, 401);
    let (status, _, bad) = admin(
        &c,
        reqwest::Method::POST,
        format!("{base}/admin/reconcile"),
        Some(json!({"since": "2025-02-30"})),
    )
    .await;
    assert_eq!(status, 400, "{bad}");

    for i in 1..=6 {
        assert_eq!(
            post_sale(&c, &base, &sale(&format!("A-{i}"), "creator42"))
                .await
                .0,
            202
        );
    }
    for i in 1..=6 {
        wait_sent(&c, &base, &format!("A-{i}"), 0).await;
    }
    // The proxy's own changes, sent as PATCH updates: part of what Growi should hold.
    let patch = |order: &str, body: Value| {
        let url = format!("{base}/admin/sales/{order}");
        let c = c.clone();
        async move {
            let (status, _, v) = admin(&c, reqwest::Method::PATCH, url, Some(body)).await;
            assert_eq!(status, 202, "{v}");
        }
    };
    patch("A-3", json!({"status": "cancelled"})).await;
    patch("A-4", json!({"total": 5000})).await;
    wait_sent(&c, &base, "A-3", 1).await;
    wait_sent(&c, &base, "A-4", 1).await;

    // Divergences, behind the proxy's back.
    use reqwest::Method;
    control(&c, &sb, Method::DELETE, "sales/A-1", None).await;
    control(
        &c,
        &sb,
        Method::PATCH,
        "sales/A-2",
        Some(json!({"total": 10000})),
    )
    .await;
    control(
        &c,
        &sb,
        Method::PATCH,
        "sales/A-5",
        Some(json!({"status": "refunded"})),
    )
    .await;
    control(
        &c,
        &sb,
        Method::POST,
        "sales",
        Some(json!({"order_id": "W-NEVER", "total": 4200, "currency": "usd"})),
    )
    .await;
    control(
        &c,
        &sb,
        Method::POST,
        "sales",
        Some(json!({"order_id": "SHOP-1", "platform": "shopify", "total": 900, "currency": "usd"})),
    )
    .await;
    // 230 website sales of the day before the window: Growi's list is asked for a day more on
    // each side, so they make three pages to read, and none of them is a difference.
    let before = format_day_noon(today().plus(-2));
    for i in 0..230 {
        sb.insert_sale(SaleInsert {
            external_id: format!("OLD-{i}"),
            total: Some(100),
            currency: "usd".into(),
            occurred_at: Some(before.clone()),
            ..SaleInsert::default()
        })
        .expect("inserted");
    }
    // The sender stays busy while the pages are read.
    for i in 1..=8 {
        assert_eq!(
            post_sale(&c, &base, &sale(&format!("B-{i}"), "creator42"))
                .await
                .0,
            202
        );
    }
    let window = json!({"since": today().plus(-1), "until": today().plus(1)});
    let url = format!("{base}/admin/reconcile");
    let (status, _, first) = admin(&c, Method::POST, url.clone(), Some(window.clone())).await;
    assert_eq!(status, 202, "{first}");
    // One run at a time: a second start while it runs is a 409 naming the first.
    let (status, _, second) = admin(&c, Method::POST, url.clone(), Some(window.clone())).await;
    assert_eq!(status, 409, "{second}");
    assert_eq!(second["run"]["id"], first["run"]["id"]);
    let id = first["run"]["id"].as_str().unwrap().to_owned();
    let start = std::time::Instant::now();
    let rec = loop {
        let (_, _, rec) = admin(&c, Method::GET, url.clone(), None).await;
        if rec["run"]["state"] != "running" {
            break rec;
        }
        assert!(start.elapsed() < LONG, "never ended: {rec}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(rec["run"]["id"], id.as_str());
    assert_eq!(rec["run"]["state"], "done", "{rec}");
    let report = &rec["last"];
    assert_eq!(report["id"], id.as_str());
    assert_eq!(
        kinds(report),
        vec![
            ("A-1".to_owned(), "missing_at_growi".to_owned()),
            ("A-2".to_owned(), "differs".to_owned()),
            ("A-5".to_owned(), "differs".to_owned()),
            ("W-NEVER".to_owned(), "unknown_to_proxy".to_owned()),
        ],
        "{report}"
    );
    let diff = |order: &str| {
        report["differences"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["order_id"] == order)
            .cloned()
            .unwrap()
    };
    assert_eq!(
        diff("A-2")["fields"],
        json!([{"field": "total", "proxy": 12999, "growi": 10000}])
    );
    assert_eq!(
        diff("A-5")["fields"],
        json!([{"field": "status", "proxy": "active", "growi": "refunded"}])
    );
    assert_eq!(report["agree"], false);
    assert_eq!(report["pages"], 3, "{report}");
    assert_eq!(rec["run"]["pages_read"], 3);
    // The dashboard's endpoint shows the same report.
    let (status, _, shown) = admin(&c, Method::GET, last, None).await;
    assert_eq!((status, &shown), (200, report));

    // The pace held: the sandbox answers 429 to any request closer than the pace to the last.
    let log = sb.requests();
    assert!(log.iter().all(|r| r.status != 429), "{log:?}");
    let gap = min_gap_ms(&sb).expect("requests");
    assert!(gap >= PACE_MS - 1, "two upstream requests {gap} ms apart");
    // The pages were read through the sender, between its jobs: creates went on meanwhile.
    let lists: Vec<u64> = log
        .iter()
        .filter(|r| r.method == "GET" && r.order_id.is_none())
        .map(|r| r.received_at_ms)
        .collect();
    assert_eq!(lists.len(), 3, "one request per page: {log:?}");
    let creates_between = log
        .iter()
        .filter(|r| {
            r.method == "POST" && r.received_at_ms > lists[0] && r.received_at_ms < lists[2]
        })
        .count();
    assert!(
        creates_between >= 1,
        "the sender paused for the pages: {log:?}"
    );
    for i in 1..=8 {
        wait_sent(&c, &base, &format!("B-{i}"), 0).await;
    }

    // Once the divergences are undone (what can be: A-1 stays lost), a run names only A-1 and
    // the one sale nobody can undo at Growi.
    control(
        &c,
        &sb,
        Method::PATCH,
        "sales/A-2",
        Some(json!({"total": 12999})),
    )
    .await;
    control(
        &c,
        &sb,
        Method::PATCH,
        "sales/A-5",
        Some(json!({"status": "unpaid"})),
    )
    .await;
    control(&c, &sb, Method::DELETE, "sales/W-NEVER", None).await;
    let rec = reconcile(&c, &base, window).await;
    assert_eq!(
        kinds(&rec["last"]),
        vec![("A-1".to_owned(), "missing_at_growi".to_owned())],
        "{rec}"
    );
    assert_eq!(rec["last"]["counts"]["sent_by_proxy"], 14, "{rec}");
    assert_eq!(rec["last"]["counts"]["agree"], 13, "{rec}");
    p.shutdown().await;
    sb.shutdown().await;
}

fn format_day_noon(day: Day) -> String {
    format!("{day}T12:00:00.000Z")
}

/// The `reconcile` subcommand against the running proxy: `(exit code, stdout, stderr)`.
async fn cli(base: &str, token: Option<&str>, extra: &[&str]) -> (i32, String, String) {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.env_clear()
        .arg("reconcile")
        .args(["--proxy", base])
        .args(extra)
        .kill_on_drop(true);
    if let Some(t) = token {
        cmd.env("SALEBEACON_ADMIN_TOKEN", t);
    }
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("the command ends")
        .expect("the command runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_cli_prints_a_table_or_json_and_exits_by_the_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(PACE_MS).await;
    let p = proxy(config(&sb.base_url(), &dir.path().join("cli.db"))).await;
    let c = reqwest::Client::new();
    let base = p.base_url();
    for id in ["C-1", "C-2"] {
        assert_eq!(post_sale(&c, &base, &sale(id, "creator42")).await.0, 202);
    }
    wait_sent(&c, &base, "C-1", 0).await;
    wait_sent(&c, &base, "C-2", 0).await;
    let since = today().plus(-1).to_string();
    let dates = ["--since", since.as_str()];

    let (code, out, err) = cli(&base, Some(ADMIN_TOKEN), &dates).await;
    assert_eq!(code, 0, "all agree: {out}{err}");
    assert!(out.contains("Everything agrees."), "{out}");
    assert!(out.contains("2 sales sent by the proxy"), "{out}");

    sb.edit_sale(
        "C-2",
        salebeacon_sandbox::SaleEdit {
            total: Some(1),
            currency: Some("eur".into()),
            ..Default::default()
        },
    )
    .expect("edited");
    let (code, out, err) = cli(&base, Some(ADMIN_TOKEN), &dates).await;
    assert_eq!(code, 1, "a difference: {out}{err}");
    let line = out
        .lines()
        .find(|l| l.starts_with("C-2"))
        .unwrap_or_else(|| panic!("no line for C-2: {out}"));
    assert!(line.contains("differs"), "{line}");
    assert!(line.contains("total: proxy 12999, Growi 1"), "{line}");
    assert!(line.contains("currency: proxy usd, Growi eur"), "{line}");
    assert!(!out.contains("C-1"), "C-1 agrees: {out}");
    assert!(err.contains("reconciling"), "progress on stderr: {err}");

    let (code, out, _) = cli(&base, Some(ADMIN_TOKEN), &["--json", "--since", &since]).await;
    assert_eq!(code, 1);
    let report: Value = serde_json::from_str(&out).expect("stdout is the JSON report");
    assert_eq!(report["agree"], false);
    assert_eq!(report["differences"][0]["order_id"], "C-2");
    assert_eq!(report["differences"].as_array().unwrap().len(), 1);

    // Could not run: exit 2, with a reason and never the token.
    let wrong = "not-the-admin-token-0123456789";
    let (code, out, err) = cli(&base, Some(wrong), &dates).await;
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("SALEBEACON_ADMIN_TOKEN"), "{err}");
    assert!(!err.contains(wrong) && !out.contains(wrong));
    let (code, _, err) = cli(&base, None, &dates).await;
    assert_eq!(code, 2);
    assert!(err.contains("SALEBEACON_ADMIN_TOKEN is not set"), "{err}");
    let (code, _, err) = cli(&base, Some(ADMIN_TOKEN), &["--since", "yesterday"]).await;
    assert_eq!(code, 2);
    assert!(err.contains("--since"), "{err}");
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let (code, _, err) = cli(
        &format!("http://{closed}/salebeacon"),
        Some(ADMIN_TOKEN),
        &dates,
    )
    .await;
    assert_eq!(code, 2);
    assert!(err.contains("cannot reach the proxy"), "{err}");
    // Growi refusing the key ends the run: exit 2 with Growi's reason.
    sb.reset().expect("reset");
    let mut cfg = config(&sb.base_url(), &dir.path().join("badkey.db"));
    cfg.growi_api_key = salebeacon_proxy::Secret::new("sk_wrong_key");
    let bad = proxy(cfg).await;
    let (code, _, err) = cli(&bad.base_url(), Some(ADMIN_TOKEN), &dates).await;
    assert_eq!(code, 2);
    assert!(err.contains("Growi refused the API key"), "{err}");
    assert!(!err.contains("sk_wrong_key"), "{err}");
    bad.shutdown().await;
    p.shutdown().await;
    sb.shutdown().await;
}

#[tokio::test]
async fn postgres_a_standing_by_instance_refuses_and_every_instance_reads_the_record() {
    let server = pg_server();
    let db = fresh_database(&server);
    let sb = sandbox(PACE_MS).await;
    let mut proxies = Vec::new();
    for _ in 0..2 {
        let mut cfg = config(&sb.base_url(), std::path::Path::new("unused"));
        cfg.db = Database::Postgres(db.clone());
        proxies.push(proxy(cfg).await);
    }
    let active = |i: usize| {
        proxies[i]
            .state()
            .metrics
            .sender_active
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    eventually(LONG, "one instance sends", || async {
        active(0) || active(1)
    })
    .await;
    let (sender, standby) = if active(0) { (0, 1) } else { (1, 0) };
    let c = reqwest::Client::new();
    assert_eq!(
        post_sale(&c, &proxies[standby].base_url(), &sale("PG-1", "creator42"))
            .await
            .0,
        202
    );
    wait_sent(&c, &proxies[standby].base_url(), "PG-1", 0).await;
    let window = json!({"since": today().plus(-1), "until": today()});
    let (status, retry_after, body) = admin(
        &c,
        reqwest::Method::POST,
        format!("{}/admin/reconcile", proxies[standby].base_url()),
        Some(window.clone()),
    )
    .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(retry_after.as_deref(), Some("2"));
    assert!(
        body["error"].as_str().unwrap().contains("stands by"),
        "{body}"
    );
    let rec = reconcile(&c, &proxies[sender].base_url(), window).await;
    assert_eq!(rec["run"]["state"], "done", "{rec}");
    assert_eq!(rec["last"]["agree"], true, "{rec}");
    // The standing-by instance reads the same record from the shared database.
    let (status, _, seen) = admin(
        &c,
        reqwest::Method::GET,
        format!("{}/admin/reconcile", proxies[standby].base_url()),
        None,
    )
    .await;
    assert_eq!((status, &seen), (200, &rec));
    assert!(sb.requests().iter().all(|r| r.status != 429));
    for p in proxies {
        p.shutdown().await;
    }
    sb.shutdown().await;
}
