//! Several proxy instances on one PostgreSQL outbox: they share the queue and its dedupe, one of
//! them sends at a time and never faster than the pace, a killed sender is replaced, and a
//! database restart in the middle of a drain loses nothing.
//!
//! Every test here is named `postgres_*`: the SQLite pass of `cargo xtask test` skips them, the
//! PostgreSQL pass runs them on its server; run alone (`cargo test -p salebeacon-proxy
//! postgres_`) they start a throwaway server of their own.

mod common;

use common::process::*;
use common::*;
use salebeacon_proxy::outbox::Database;
use salebeacon_sandbox::{Faults, RunningSandbox};
use serde_json::Value;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(60);

async fn health(c: &reqwest::Client, base: &str) -> (u16, Value) {
    let r = c
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("healthz answers");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Waits until `base` reports an empty queue. The sandbox records a sale as it arrives, and the
/// sender commits it once the answer is back, so "the sandbox has every sale" comes a moment
/// before "the queue is empty".
async fn queue_drains(c: &reqwest::Client, base: &str) {
    eventually(LONG, "an empty queue", || async {
        health(c, base).await.1["queue_depth"] == 0
    })
    .await;
}

/// How many times each of `prefix-0..n` reached the sandbox.
fn delivered(sb: &RunningSandbox, prefix: &str, n: usize) -> Vec<usize> {
    let sales = sb.sales();
    (0..n)
        .map(|i| {
            let id = format!("{prefix}-{i}");
            sales.iter().filter(|s| s.external_id == id).count()
        })
        .collect()
}

fn count_429(sb: &RunningSandbox) -> usize {
    sb.requests().iter().filter(|r| r.status == 429).count()
}

#[tokio::test]
async fn postgres_three_instances_share_one_queue_and_one_sender() {
    let server = pg_server();
    let db = fresh_database(&server);
    // The sandbox answers 429 to any request closer than the pace to the one before.
    let pace = 150;
    let sb = sandbox(pace).await;
    let mut proxies = Vec::new();
    for _ in 0..3 {
        let mut cfg = config(&sb.base_url(), std::path::Path::new("unused"));
        cfg.db = Database::Postgres(db.clone());
        cfg.pace = Duration::from_millis(pace);
        proxies.push(proxy(cfg).await);
    }
    let c = reqwest::Client::new();
    let n = 24;
    for i in 0..n {
        let sale = sale(&format!("MULTI-{i}"), "creator42");
        let first = &proxies[i % 3];
        assert_eq!(post_sale(&c, &first.base_url(), &sale).await.0, 202);
        // The same order at another instance is a duplicate, not a second sale.
        let other = &proxies[(i + 1) % 3];
        let (status, body) = post_sale(&c, &other.base_url(), &sale).await;
        assert_eq!((status, &body["status"]), (200, &Value::from("duplicate")));
    }
    eventually(LONG, "every sale delivered", || async {
        delivered(&sb, "MULTI", n).iter().all(|&k| k >= 1)
    })
    .await;
    assert_eq!(
        delivered(&sb, "MULTI", n),
        vec![1; n],
        "each sale exactly once"
    );
    assert_eq!(count_429(&sb), 0, "never faster than the pace");
    // One sender: the others stand by, and every instance sees the empty queue.
    let mut running = 0;
    for p in &proxies {
        queue_drains(&c, &p.base_url()).await;
        let (status, h) = health(&c, &p.base_url()).await;
        assert_eq!(status, 200, "{h}");
        if h["sender"] == "running" {
            running += 1;
        } else {
            assert!(
                h["sender"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("standing by"),
                "{h}"
            );
        }
    }
    assert_eq!(running, 1, "exactly one instance sends");
    // Any instance answers for any sale.
    let (status, v) = admin_get(&c, &proxies[2].base_url(), "/sales/MULTI-0").await;
    assert_eq!((status, &v["state"]), (200, &Value::from("sent")));
    for p in proxies {
        p.shutdown().await;
    }
    sb.shutdown().await;
}

/// The "done when": three proxies on one database, fed round-robin, the sending one
/// SIGKILLed again and again (and replaced by a new process), the upstream injecting 5xx and 429s:
/// every acknowledged sale reaches the sandbox exactly once, and no two requests ever arrive closer
/// than the pace.
#[tokio::test]
async fn postgres_killing_the_sender_again_and_again_loses_and_doubles_nothing() {
    let server = pg_server();
    let db = fresh_database(&server);
    let pace = 200u64;
    let sb = sandbox(pace).await;
    sb.set_faults(Faults {
        // Slow answers, so a kill often lands with a request in flight.
        latency_ms: 40,
        error_rate: 0.2,
        rate_limit_rate: 0.1,
        ..Faults::default()
    });
    let flags = [
        "--pace-ms",
        "200",
        "--backoff-base-ms",
        "50",
        "--backoff-cap-ms",
        "400",
    ];
    let mut fleet = Vec::new();
    for _ in 0..3 {
        fleet.push(start_proxy(&sb.base_url(), &db, &flags).await);
    }
    let c = reqwest::Client::new();
    let n = 30;
    let mut acknowledged = 0;
    for i in 0..n {
        let at = &fleet[i % fleet.len()].base;
        let (status, _) = post_sale(&c, at, &sale(&format!("TAKE-{i}"), "creator42")).await;
        assert_eq!(status, 202);
        acknowledged += 1;
    }
    assert_eq!(acknowledged, n);
    let sent = |sb: &RunningSandbox| delivered(sb, "TAKE", n).iter().filter(|&&k| k > 0).count();
    let mut kills = 0;
    for round in 1..=3 {
        // Let the current sender deliver a few more, then kill it and start a replacement.
        let target = (round * n / 5).min(n - 1);
        eventually(LONG, "some more sales delivered", || async {
            sent(&sb) >= target
        })
        .await;
        let mut sender = None;
        for (i, p) in fleet.iter().enumerate() {
            if health(&c, &p.base).await.1["sender"] == "running" {
                sender = Some(i);
            }
        }
        let Some(i) = sender else {
            // Between senders at this instant (a takeover in progress): the next round kills.
            continue;
        };
        let mut victim = fleet.remove(i);
        victim.kill().await;
        kills += 1;
        fleet.push(start_proxy(&sb.base_url(), &db, &flags).await);
    }
    assert!(kills >= 2, "the test killed the sender {kills} times");
    assert!(
        sent(&sb) < n,
        "the kills landed before the end of the drain"
    );
    eventually(Duration::from_secs(120), "every sale delivered", || async {
        sent(&sb) == n
    })
    .await;
    assert_eq!(
        delivered(&sb, "TAKE", n),
        vec![1; n],
        "each sale exactly once"
    );
    let gap = min_gap_ms(&sb).expect("requests");
    assert!(gap >= pace, "two requests {gap} ms apart (pace {pace} ms)");
    for p in &fleet {
        queue_drains(&c, &p.base).await;
    }
    let mut running = 0;
    for p in &fleet {
        running += usize::from(health(&c, &p.base).await.1["sender"] == "running");
    }
    assert_eq!(running, 1, "one sender among the survivors");
    for mut p in fleet {
        p.kill().await;
    }
    sb.shutdown().await;
}

#[tokio::test]
async fn postgres_a_database_restart_mid_drain_loses_nothing() {
    // A server of its own, since this test stops it.
    let mut cluster = salebeacon_pgtest::Cluster::start(salebeacon_pgtest::Durability::Default)
        .expect("a throwaway PostgreSQL server");
    let sb = sandbox(0).await;
    let mut cfg = config(&sb.base_url(), std::path::Path::new("unused"));
    cfg.db = Database::Postgres(cluster.url());
    cfg.pace = Duration::from_millis(100);
    let p = proxy(cfg).await;
    let base = p.base_url();
    let c = reqwest::Client::new();
    let n = 20;
    for i in 0..n {
        let (status, _) = post_sale(&c, &base, &sale(&format!("PGR-{i}"), "creator42")).await;
        assert_eq!(status, 202);
    }
    eventually(LONG, "some sales delivered", || async {
        delivered(&sb, "PGR", n).iter().sum::<usize>() >= 3
    })
    .await;
    let cluster = tokio::task::spawn_blocking(move || {
        cluster.stop().expect("the server stops");
        cluster
    })
    .await
    .expect("stopped");
    // While the database is down: a clear 503 with Retry-After, on intake and on health.
    let r = c
        .post(format!("{base}/sales"))
        .json(&sale("PGR-DOWN", "creator42"))
        .send()
        .await
        .expect("the proxy answers");
    assert_eq!(r.status().as_u16(), 503);
    assert_eq!(
        r.headers().get("retry-after").and_then(|v| v.to_str().ok()),
        Some("2")
    );
    let body: Value = r.json().await.expect("a JSON error");
    assert_eq!(body["error"], "the outbox is unavailable; retry later");
    let (status, h) = health(&c, &base).await;
    assert_eq!(status, 503, "{h}");
    assert!(!h.to_string().contains("127.0.0.1:"), "no URL in {h}");
    let mut cluster = cluster;
    let cluster = tokio::task::spawn_blocking(move || {
        cluster.resume().expect("the server starts again");
        cluster
    })
    .await
    .expect("restarted");
    // Back: intake takes sales again, and the drain finishes with nothing lost or doubled.
    eventually(LONG, "intake works again", || async {
        post_sale(&c, &base, &sale(&format!("PGR-{n}"), "creator42"))
            .await
            .0
            != 503
    })
    .await;
    eventually(LONG, "every sale delivered", || async {
        delivered(&sb, "PGR", n + 1).iter().all(|&k| k >= 1)
    })
    .await;
    assert_eq!(
        delivered(&sb, "PGR", n + 1),
        vec![1; n + 1],
        "each sale exactly once"
    );
    queue_drains(&c, &base).await;
    p.shutdown().await;
    sb.shutdown().await;
    drop(cluster);
}
