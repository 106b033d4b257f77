//! The proxy as its real binary, for tests that kill it, restart it, or read its log: started
//! with `--listen 127.0.0.1:0`, its address read from its "listening on" line, its stderr kept.
//! Dropping a [`Proc`] kills the process (tokio reaps it).

use super::{ADMIN_TOKEN, API_KEY};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const BIN: &str = env!("CARGO_BIN_EXE_salebeacon-proxy");

pub struct Proc {
    pub child: Child,
    pub base: String,
    pub stderr: Arc<Mutex<String>>,
}

impl Proc {
    /// The log so far.
    pub fn log(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// SIGKILL, waited for.
    pub async fn kill(&mut self) {
        self.child.kill().await.expect("SIGKILL");
    }
}

/// Starts the binary against `upstream` on outbox `db` (a path or a URL), with `extra` flags,
/// the test key and admin token, and debug logging.
pub async fn start_proxy(upstream: &str, db: &str, extra: &[&str]) -> Proc {
    let mut child = Command::new(BIN)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            upstream,
            "--db",
            db,
        ])
        .args(extra)
        .env("GROWI_API_KEY", API_KEY)
        .env("SALEBEACON_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("RUST_LOG", "debug")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("proxy binary starts");
    let stderr = child.stderr.take().expect("stderr piped");
    let log = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = tokio::sync::oneshot::channel();
    let sink = log.clone();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        let mut tx = Some(tx);
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(url) = line.strip_prefix("salebeacon-proxy listening on ") {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(url.trim().to_owned());
                }
            }
            if let Ok(mut s) = sink.lock() {
                s.push_str(&line);
                s.push('\n');
            }
        }
    });
    let base = tokio::time::timeout(Duration::from_secs(20), rx)
        .await
        .expect("proxy announced its address")
        .expect("stderr open");
    Proc {
        child,
        base,
        stderr: log,
    }
}
