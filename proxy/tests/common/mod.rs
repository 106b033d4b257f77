//! Shared test helpers: an in-process sandbox, a proxy pointed at it, polling, and the outbox
//! database of a test.
//!
//! Every test runs against both outbox backends: `cargo xtask test` runs the suite once as is
//! (SQLite files) and once with `SALEBEACON_TEST_POSTGRES` set to a throwaway PostgreSQL server it
//! started (`postgres://postgres@127.0.0.1:PORT/postgres`). Then [`database`] maps each test's
//! SQLite path to a database of its own on that server (created on first use, the same one for
//! the same path, so a test that restarts a proxy on its outbox reopens it). Tests named
//! `sqlite_*` hold for one SQLite file only and the PostgreSQL pass skips them; tests named
//! `postgres_*` need several instances on one database and the SQLite pass skips them.
#![allow(dead_code)]

pub mod process;

use salebeacon_proxy::config::RateLimit;
use salebeacon_proxy::outbox::Database;
use salebeacon_proxy::{ProxyConfig, RunningProxy, Secret};
use salebeacon_sandbox::{RunningSandbox, SandboxConfig};
use serde_json::{json, Value};
use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

pub const API_KEY: &str = "sk_test_sandbox";
pub const ADMIN_TOKEN: &str = "admin-token-0123456789-secret";
pub const ORDER_SECRET: &str = "order-token-secret-0123456789";

pub async fn sandbox(min_interval_ms: u64) -> RunningSandbox {
    sandbox_with(SandboxConfig {
        min_interval: Duration::from_millis(min_interval_ms),
        ..SandboxConfig::default()
    })
    .await
}

pub async fn sandbox_with(config: SandboxConfig) -> RunningSandbox {
    salebeacon_sandbox::spawn(config, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("sandbox starts")
}

/// A test configuration: fast pace and backoff, rate limit off, admin token set.
pub fn config(upstream: &str, db: &Path) -> ProxyConfig {
    let mut c = ProxyConfig::new(Secret::new(API_KEY));
    c.listen = "127.0.0.1:0".parse().unwrap();
    c.upstream = upstream.to_owned();
    c.db = database(db);
    c.pace = Duration::from_millis(200);
    c.upstream_timeout = Duration::from_secs(2);
    c.backoff.base_ms = 50;
    c.backoff.cap_ms = 400;
    c.auth_pause = Duration::from_millis(500);
    c.rate_limit = RateLimit {
        per_minute: 0,
        burst: 1,
    };
    c.admin_token = Some(Secret::new(ADMIN_TOKEN));
    c
}

pub async fn proxy(config: ProxyConfig) -> RunningProxy {
    salebeacon_proxy::spawn(config).await.expect("proxy starts")
}

pub fn sale(order_id: &str, tag: &str) -> Value {
    json!({"order_id": order_id, "total": 12999, "currency": "usd", "campaign_affiliate_id": tag})
}

pub async fn post_sale(client: &reqwest::Client, base: &str, body: &Value) -> (u16, Value) {
    let r = client
        .post(format!("{base}/sales"))
        .json(body)
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

pub async fn admin_get(client: &reqwest::Client, base: &str, path: &str) -> (u16, Value) {
    let r = client
        .get(format!("{base}/admin{path}"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Polls `check` every 20 ms until it is true or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < timeout, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Upstream API requests for `order_id`, in arrival order.
pub fn requests_for(
    sandbox: &RunningSandbox,
    order_id: &str,
) -> Vec<salebeacon_sandbox::RecordedRequest> {
    sandbox
        .requests()
        .into_iter()
        .filter(|r| r.order_id.as_deref() == Some(order_id))
        .collect()
}

/// Smallest gap between two consecutive API request arrivals, ms.
pub fn min_gap_ms(sandbox: &RunningSandbox) -> Option<u64> {
    let times: Vec<u64> = sandbox
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/api/"))
        .map(|r| r.received_at_ms)
        .collect();
    times.windows(2).map(|w| w[1].saturating_sub(w[0])).min()
}

/// The PostgreSQL server of this run, if the suite runs against PostgreSQL.
pub fn postgres() -> Option<String> {
    std::env::var("SALEBEACON_TEST_POSTGRES")
        .ok()
        .filter(|s| !s.is_empty())
}

/// The outbox for a test whose SQLite file would be `path`: that file, or on the PostgreSQL pass
/// a database of its own (see the module's doc).
pub fn database(path: &Path) -> Database {
    let Some(server) = postgres() else {
        return Database::Sqlite(path.to_owned());
    };
    let digest = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        path.hash(&mut h);
        h.finish()
    };
    Database::Postgres(create_database(&server, &format!("sbt_{digest:016x}")))
}

/// Creates database `name` on `server` (a URL ending in `/<database>`) unless it exists; returns
/// its URL.
pub fn create_database(server: &str, name: &str) -> String {
    let url = match server.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{name}"),
        None => panic!("a PostgreSQL URL must end with /<database>: {server}"),
    };
    let (server, name) = (server.to_owned(), name.to_owned());
    // A thread of its own: the tests call this from inside their runtime.
    let created = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        rt.block_on(async move {
            let (client, conn) = tokio_postgres::connect(&server, tokio_postgres::NoTls)
                .await
                .expect("the test PostgreSQL server answers");
            let task = tokio::spawn(conn);
            let r = client
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .await;
            if let Err(e) = r {
                let exists = e.code() == Some(&tokio_postgres::error::SqlState::DUPLICATE_DATABASE);
                assert!(exists, "creating {name}: {e}");
            }
            drop(client);
            let _ = task.await;
        })
    })
    .join();
    created.expect("creating the test database");
    url
}

/// The PostgreSQL server of a `postgres_*` test: the run's (`SALEBEACON_TEST_POSTGRES`), or one
/// started for it when the test runs on its own (`cargo test -p salebeacon-proxy postgres_`).
pub struct PgServer {
    pub url: String,
    _own: Option<salebeacon_pgtest::Cluster>,
}

pub fn pg_server() -> PgServer {
    match postgres() {
        Some(url) => PgServer { url, _own: None },
        None => {
            let own = salebeacon_pgtest::Cluster::start(salebeacon_pgtest::Durability::Throwaway)
                .expect("a throwaway PostgreSQL server (the postgres_* tests need its binaries)");
            PgServer {
                url: own.url(),
                _own: Some(own),
            }
        }
    }
}

/// A new, empty database on `server` for one test.
pub fn fresh_database(server: &PgServer) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    create_database(
        &server.url,
        &format!("sbt_{nanos:x}_{}", std::process::id()),
    )
}

/// The `--db` argument of a proxy process for a test whose SQLite file would be `path`.
pub fn db_arg(path: &Path) -> String {
    match database(path) {
        Database::Sqlite(p) => p.display().to_string(),
        Database::Postgres(url) => url,
    }
}
