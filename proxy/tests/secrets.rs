//! The Growi key and the admin token appear in no response (body or header) and no log line,
//! across a run that exercises every path that handles them: deliveries, a key Growi refuses,
//! admin calls with good and bad tokens, bad input, and the configuration's Debug output.
//! (The process tests check the binary's stderr the same way.)

mod common;

use common::*;
use salebeacon_sandbox::SandboxConfig;
use serde_json::json;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn record(seen: &mut String, r: &reqwest::Response) {
    for (k, v) in r.headers() {
        seen.push_str(&format!("{k}: {}\n", String::from_utf8_lossy(v.as_bytes())));
    }
}

async fn exchange(seen: &mut String, req: reqwest::RequestBuilder) -> u16 {
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    record(seen, &r);
    seen.push_str(&r.text().await.unwrap());
    seen.push('\n');
    status
}

#[tokio::test]
async fn secrets_never_leave_the_proxy() {
    let logs = Buffer(Arc::new(Mutex::new(Vec::new())));
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "trace,salebeacon_sandbox=off",
        ))
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(0).await;
    let mut cfg = config(&sb.base_url(), &dir.path().join("a.db"));
    cfg.order_token_secret = Some(salebeacon_proxy::Secret::new(ORDER_SECRET));
    tracing::info!(config = ?cfg, "config debug output");
    let p = proxy(cfg).await;
    // A second proxy whose (real) key Growi refuses: the error path must not print it either.
    let refusing = sandbox_with(SandboxConfig {
        api_key: "sk_other_key".into(),
        min_interval: Duration::ZERO,
        ..SandboxConfig::default()
    })
    .await;
    let p2 = proxy(config(&refusing.base_url(), &dir.path().join("b.db"))).await;

    let c = reqwest::Client::new();
    let mut seen = String::new();
    let base = p.base_url();
    assert_eq!(
        exchange(
            &mut seen,
            c.post(format!("{base}/sales"))
                .json(&sale("S-1", "creator42"))
        )
        .await,
        202
    );
    assert_eq!(
        exchange(
            &mut seen,
            c.post(format!("{base}/sales"))
                .json(&sale("S-2", "nobody_here"))
        )
        .await,
        202
    );
    assert_eq!(
        exchange(
            &mut seen,
            c.post(format!("{base}/sales"))
                .json(&json!({"order_id": 1, "commission": 5}))
        )
        .await,
        422
    );
    let mut t = sale("S-3", "creator42");
    t["order_token"] = json!("1.00");
    assert_eq!(
        exchange(&mut seen, c.post(format!("{base}/sales")).json(&t)).await,
        422
    );
    assert_eq!(
        exchange(
            &mut seen,
            c.post(format!("{}/sales", p2.base_url()))
                .json(&sale("S-4", "creator42"))
        )
        .await,
        202
    );
    for auth in [
        format!("Bearer {ADMIN_TOKEN}x"),
        "Bearer nope".into(),
        format!("Basic {ADMIN_TOKEN}"),
    ] {
        let r = c
            .get(format!("{base}/admin/sales"))
            .header("authorization", auth);
        assert_eq!(exchange(&mut seen, r).await, 401);
    }
    let wait_for = |order: &'static str, state: &'static str| {
        let c = c.clone();
        let base = base.clone();
        async move {
            eventually(Duration::from_secs(10), order, || async {
                admin_get(&c, &base, &format!("/sales/{order}")).await.1["state"] == state
            })
            .await
        }
    };
    wait_for("S-1", "sent").await;
    wait_for("S-2", "failed").await;
    eventually(Duration::from_secs(10), "refused key", || async {
        refusing.requests().iter().any(|r| r.status == 401)
    })
    .await;
    for path in [
        "/admin/sales/S-1",
        "/admin/sales/S-2",
        "/admin/sales?state=all",
        "/healthz",
        "/metrics",
    ] {
        let r = c.get(format!("{base}{path}")).bearer_auth(ADMIN_TOKEN);
        assert_eq!(exchange(&mut seen, r).await, 200, "{path}");
    }
    let r = c
        .patch(format!("{base}/admin/sales/S-1"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"status": "paid"}));
    assert_eq!(exchange(&mut seen, r).await, 202);
    eventually(Duration::from_secs(10), "update sent", || async {
        admin_get(&c, &base, "/sales/S-1").await.1["updates"][0]["state"] == "sent"
    })
    .await;
    p.shutdown().await;
    p2.shutdown().await;
    sb.shutdown().await;
    refusing.shutdown().await;

    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("delivered"), "the capture works:\n{logs}");
    assert!(
        logs.contains("GROWI REFUSED THE API KEY"),
        "the refusal is logged"
    );
    assert!(logs.contains("Secret(<redacted>)"), "Debug redacts");
    for (what, text) in [("logs", &logs), ("responses", &seen)] {
        assert!(!text.contains(API_KEY), "the Growi key is in the {what}");
        assert!(
            !text.contains(ADMIN_TOKEN),
            "the admin token is in the {what}"
        );
        assert!(
            !text.contains(ORDER_SECRET),
            "the order-token secret is in the {what}"
        );
    }
}
