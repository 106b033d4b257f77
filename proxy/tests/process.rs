//! The real binary: SIGKILL in the middle of draining loses and duplicates nothing, SIGTERM shuts
//! down cleanly, start-up errors name the problem, `sign-token` mints what the proxy accepts, and
//! no secret reaches stderr.

mod common;

use common::process::*;
use common::*;
use salebeacon_sandbox::{Faults, RunningSandbox};
use serde_json::Value;
use std::time::Duration;

async fn start(sb: &RunningSandbox, db: &std::path::Path) -> Proc {
    start_proxy(
        &sb.base_url(),
        &db_arg(db),
        &[
            "--pace-ms",
            "120",
            "--backoff-base-ms",
            "50",
            "--backoff-cap-ms",
            "300",
            "--db-sync",
            "full",
        ],
    )
    .await
}

fn assert_no_secrets(text: &str) {
    assert!(!text.contains(API_KEY), "the Growi key leaked:\n{text}");
    assert!(
        !text.contains(ADMIN_TOKEN),
        "the admin token leaked:\n{text}"
    );
}

#[tokio::test]
async fn sigkill_while_draining_then_restart_delivers_every_sale_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("outbox.sqlite3");
    let sb = sandbox(0).await;
    // Slow answers: the kill is likely to land with a request in flight.
    sb.set_faults(Faults {
        latency_ms: 80,
        ..Faults::default()
    });
    let first = start(&sb, &db).await;
    let c = reqwest::Client::new();
    let n = 16;
    for i in 0..n {
        let (status, _) =
            post_sale(&c, &first.base, &sale(&format!("KILL-{i}"), "creator42")).await;
        assert_eq!(status, 202);
    }
    eventually(Duration::from_secs(20), "some sales delivered", || async {
        sb.sales()
            .iter()
            .filter(|s| s.external_id.starts_with("KILL-"))
            .count()
            >= 4
    })
    .await;
    let mut first = first;
    first.child.kill().await.expect("SIGKILL");
    let before = sb
        .sales()
        .iter()
        .filter(|s| s.external_id.starts_with("KILL-"))
        .count();
    assert!(
        before < n,
        "killed before the end of the drain ({before} delivered)"
    );

    let mut second = start(&sb, &db).await;
    eventually(
        Duration::from_secs(30),
        "every sale sent after restart",
        || async {
            admin_get(&c, &second.base, "/sales?state=sent&limit=1000")
                .await
                .1["count"]
                == n
        },
    )
    .await;
    let sales = sb.sales();
    for i in 0..n {
        let id = format!("KILL-{i}");
        assert_eq!(
            sales.iter().filter(|s| s.external_id == id).count(),
            1,
            "{id} exactly once"
        );
    }
    let health: Value = c
        .get(format!("{}/healthz", second.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["queue_depth"], 0);

    // SIGTERM: a graceful stop.
    let pid = second.child.id().expect("running").to_string();
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(ok.success());
    let status = tokio::time::timeout(Duration::from_secs(10), second.child.wait())
        .await
        .expect("stops after SIGTERM")
        .unwrap();
    assert!(status.success(), "clean exit: {status:?}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let log2 = second.stderr.lock().unwrap().clone();
    assert!(log2.contains("proxy stopped"), "{log2}");
    assert_no_secrets(&first.stderr.lock().unwrap());
    assert_no_secrets(&log2);
    // Logs piped to a file or a journal are plain text, and values are printed as values.
    let logs = format!("{}{log2}", first.stderr.lock().unwrap());
    assert!(
        !logs.contains('\u{1b}'),
        "no ANSI escape codes in a piped log"
    );
    assert!(
        !logs.contains("Some("),
        "no Rust debug formatting in the log:\n{logs}"
    );
    assert!(logs.contains("growi_id=1947457 "), "{logs}");
    sb.shutdown().await;
}

#[tokio::test]
async fn start_up_errors_name_the_problem() {
    let run = |envs: Vec<(&'static str, &'static str)>, args: Vec<&'static str>| {
        let mut cmd = std::process::Command::new(BIN);
        cmd.env_remove("GROWI_API_KEY")
            .env_remove("SALEBEACON_ORDER_TOKEN_SECRET");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        cmd.args(["--listen", "127.0.0.1:0", "--db", "/nonexistent-dir/x.db"])
            .args(args);
        cmd.output().unwrap()
    };
    let out = run(vec![], vec![]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("GROWI_API_KEY is not set"));
    let out = run(
        vec![("GROWI_API_KEY", API_KEY)],
        vec!["--upstream", "not a url"],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(err.contains("invalid upstream"), "{err}");
    assert_no_secrets(&err);
    let out = run(
        vec![("GROWI_API_KEY", API_KEY)],
        vec!["--require-order-token"],
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("SALEBEACON_ORDER_TOKEN_SECRET is not set")
    );
    let out = run(vec![("GROWI_API_KEY", API_KEY)], vec![]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot open the outbox"));
    // A PostgreSQL server that is not there: named, with its password masked.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let out = std::process::Command::new(BIN)
        .args(["--listen", "127.0.0.1:0"])
        .env("GROWI_API_KEY", API_KEY)
        .env(
            "SALEBEACON_DB",
            format!("postgres://shop:pg-pass-0123@127.0.0.1:{closed}/salebeacon"),
        )
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        err.contains("cannot open the outbox")
            && err.contains(&format!(
                "postgres://shop:***@127.0.0.1:{closed}/salebeacon"
            )),
        "{err}"
    );
    assert!(!err.contains("pg-pass-0123"), "{err}");
    assert_no_secrets(&err);
}

#[tokio::test]
async fn sign_token_mints_what_the_proxy_accepts() {
    let out = std::process::Command::new(BIN)
        .args([
            "sign-token",
            "--order-id",
            "ORD-9",
            "--total",
            "12999",
            "--currency",
            "USD",
            "--ttl-secs",
            "600",
        ])
        .env("SALEBEACON_ORDER_TOKEN_SECRET", ORDER_SECRET)
        .output()
        .unwrap();
    assert!(out.status.success());
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let input: salebeacon::SaleInput = serde_json::from_value(serde_json::json!({
        "order_id": "ORD-9", "total": 12999, "currency": "usd", "campaign_affiliate_id": "creator42"
    }))
    .unwrap();
    let sale = input.validate(salebeacon::Origin::Browser).unwrap();
    let now = u64::try_from(salebeacon_proxy::now_ms() / 1000).unwrap();
    assert_eq!(
        salebeacon_proxy::verify_order_token(ORDER_SECRET.as_bytes(), &token, &sale, now),
        Ok(())
    );
    let expiry: u64 = token.split('.').next().unwrap().parse().unwrap();
    assert!((now + 590..=now + 610).contains(&expiry));
    let missing = std::process::Command::new(BIN)
        .args(["sign-token", "--order-id", "A", "--currency", "usd"])
        .env_remove("SALEBEACON_ORDER_TOKEN_SECRET")
        .output()
        .unwrap();
    assert!(!missing.status.success());
}

#[tokio::test]
async fn sqlite_a_second_proxy_on_the_same_file_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("outbox.sqlite3");
    let sb = sandbox(0).await;
    let mut first = start(&sb, &db).await;
    let out = tokio::process::Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--upstream", &sb.base_url()])
        .arg("--db")
        .arg(&db)
        .env("GROWI_API_KEY", API_KEY)
        .env("NO_COLOR", "1")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "the second proxy must not run");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        err.contains("another salebeacon-proxy is already using this SQLite outbox")
            && err.contains("postgres://"),
        "{err}"
    );
    assert_no_secrets(&err);
    // The first one still works, and after it is gone (even by SIGKILL) a new one starts.
    let c = reqwest::Client::new();
    assert_eq!(
        post_sale(&c, &first.base, &sale("LOCK-1", "creator42"))
            .await
            .0,
        202
    );
    first.child.kill().await.unwrap();
    let again = start(&sb, &db).await;
    let (status, _) = post_sale(&c, &again.base, &sale("LOCK-1", "creator42")).await;
    assert_eq!(status, 200, "the restarted proxy has the same outbox");
    let mut again = again;
    again.child.kill().await.unwrap();
    sb.shutdown().await;
}
