//! The `salebeacon-sandbox` binary: start-up line, env fallbacks, key hygiene, SIGTERM.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::Duration;

#[tokio::test]
async fn binary_prints_its_url_serves_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let seed_path = dir.path().join("seed.json");
    std::fs::write(
        &seed_path,
        r#"{"campaigns":[{"id":1,"commission":{"type":"fixed","amount":250}}],
            "affiliates":[{"tag":"cli_tag","growi_user_id":5,"campaign_id":1}]}"#,
    )
    .expect("seed");
    let key = "sk_cli_secret_value";
    let mut child = Command::new(env!("CARGO_BIN_EXE_salebeacon-sandbox"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--min-interval-ms",
            "0",
            "--seed",
        ])
        .arg(&seed_path)
        .env("SANDBOX_API_KEY", key)
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("first line");
    let url = line
        .trim()
        .strip_prefix("salebeacon-sandbox listening on ")
        .expect("the documented start-up line")
        .to_owned();
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/api/public/v1"),
        "{url}"
    );

    let http = reqwest::Client::new();
    let resp = http
        .post(format!("{url}/affiliate_sales"))
        .bearer_auth(key)
        .json(
            &serde_json::json!({"order_id": "CLI-1", "total": 100, "currency": "usd",
                                  "campaign_affiliate_id": "cli_tag"}),
        )
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 201);
    let body: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(body["data"]["commission"], 250);
    let resp = http
        .get(format!("{url}/affiliate_sales"))
        .bearer_auth("wrong")
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 401);

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let mut exited = None;
    for _ in 0..100 {
        if let Some(status) = child.try_wait().expect("wait") {
            exited = Some(status);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let Some(status) = exited else {
        let _ = child.kill();
        panic!("no graceful exit on SIGTERM");
    };
    assert!(status.success(), "{status}");
    let mut logs = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut logs)
        .expect("logs");
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).expect("rest");
    assert!(
        !logs.contains(key) && !rest.contains(key),
        "the key leaked into output"
    );
    assert!(logs.contains("api request"), "{logs}");
}

#[test]
fn binary_requires_a_key_and_rejects_bad_shares() {
    let bin = env!("CARGO_BIN_EXE_salebeacon-sandbox");
    let out = Command::new(bin)
        .args(["--listen", "127.0.0.1:0"])
        .env_remove("SANDBOX_API_KEY")
        .output()
        .expect("run");
    assert!(!out.status.success());
    let out = Command::new(bin)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--api-key",
            "k",
            "--error-rate",
            "1.5",
        ])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("between 0 and 1"));
}
