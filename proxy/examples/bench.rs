//! Benchmark (not a test): `cargo run --release -p salebeacon-proxy --example bench`.
//!
//! 1. `POST /salebeacon/sales` with durable enqueue (SQLite in a temp dir, WAL,
//!    `synchronous=FULL`, group commit), N keep-alive HTTP/1.1 clients on loopback for a few
//!    seconds: closed loop (as fast as it goes) and open loop at a fixed 5,000 requests/s (latency
//!    measured from each request's scheduled time, so a stall is not hidden).
//! 2. The same load against a trivial axum handler that only answers 202: the ceiling of this
//!    machine with this client.
//! 3. The sender's drain pace against the in-process sandbox (pace = sandbox min interval), at a
//!    fast 100 ms and at Growi's real 2 s.
//!
//! The proxy runs with `synchronous=FULL` (the default: fsync per commit) and with `NORMAL`.
//!
//! Options (env): `BENCH_SECS` (default 5), `BENCH_CLIENTS` (32), `BENCH_RATE` (5000),
//! `BENCH_DRAIN` (50 sales), `BENCH_PACE_MS` (100).

use axum::http::StatusCode;
use axum::routing::post;
use salebeacon_proxy::config::{DbSync, RateLimit};
use salebeacon_proxy::outbox::Database;
use salebeacon_proxy::{ProxyConfig, Secret};
use salebeacon_sandbox::SandboxConfig;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct LoadResult {
    ok: u64,
    errors: u64,
    secs: f64,
    latencies_us: Vec<u64>,
}

impl LoadResult {
    fn pct(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let i = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        self.latencies_us[i] as f64 / 1000.0
    }
}

static ORDER: AtomicU64 = AtomicU64::new(0);

/// One keep-alive connection sending sales until `deadline`. With `interval`, requests are
/// scheduled at that spacing (open loop) and latency counts from the scheduled time.
async fn client(
    addr: SocketAddr,
    path: &'static str,
    deadline: Instant,
    interval: Option<Duration>,
    offset: Duration,
) -> std::io::Result<(u64, u64, Vec<u64>)> {
    let mut s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    let mut buf = vec![0u8; 8192];
    let (mut ok, mut errors, mut lat) = (0u64, 0u64, Vec::new());
    let mut next = Instant::now() + offset;
    let run = std::process::id();
    while Instant::now() < deadline {
        let started = match interval {
            Some(iv) => {
                tokio::time::sleep_until(next.into()).await;
                let scheduled = next;
                next += iv;
                scheduled
            }
            None => Instant::now(),
        };
        let n = ORDER.fetch_add(1, Ordering::Relaxed);
        let body = format!(
            r#"{{"order_id":"BENCH-{run}-{n}","total":12999,"currency":"usd","campaign_affiliate_id":"creator42","visitor_uid":"0b6f3c1e-2a4d-4e5f-9a7b-1c2d3e4f5a6b"}}"#
        );
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: bench.local\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).await?;
        let mut filled = 0;
        let status = loop {
            let n = s.read(&mut buf[filled..]).await?;
            if n == 0 {
                return Err(std::io::Error::other("connection closed"));
            }
            filled += n;
            let Some(end) = buf[..filled].windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if filled >= end + 4 + len {
                break head.get(9..12).unwrap_or("").to_owned();
            }
        };
        lat.push(started.elapsed().as_micros() as u64);
        if status == "202" {
            ok += 1;
        } else {
            errors += 1;
        }
    }
    Ok((ok, errors, lat))
}

/// Runs the load on its own single-threaded runtime in its own OS thread, so the server keeps
/// its runtime.
fn load(
    addr: SocketAddr,
    path: &'static str,
    clients: usize,
    secs: f64,
    rate: Option<f64>,
) -> LoadResult {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let start = Instant::now();
            let deadline = start + Duration::from_secs_f64(secs);
            let interval = rate.map(|r| Duration::from_secs_f64(clients as f64 / r));
            let tasks: Vec<_> = (0..clients)
                .map(|i| {
                    let offset = interval
                        .map(|iv| iv.mul_f64(i as f64 / clients as f64))
                        .unwrap_or_default();
                    tokio::spawn(client(addr, path, deadline, interval, offset))
                })
                .collect();
            let mut r = LoadResult {
                ok: 0,
                errors: 0,
                secs: 0.0,
                latencies_us: Vec::new(),
            };
            for t in tasks {
                match t.await {
                    Ok(Ok((ok, errors, lat))) => {
                        r.ok += ok;
                        r.errors += errors;
                        r.latencies_us.extend(lat);
                    }
                    Ok(Err(e)) => {
                        eprintln!("client error: {e}");
                        r.errors += 1;
                    }
                    Err(e) => eprintln!("client task failed: {e}"),
                }
            }
            r.secs = start.elapsed().as_secs_f64();
            r.latencies_us.sort_unstable();
            r
        })
    })
    .join()
    .expect("load thread")
}

fn row(name: &str, r: &LoadResult) {
    println!(
        "| {name:<44} | {:>9.0} | {:>8.2} | {:>8.2} | {:>8.2} | {:>6} |",
        r.ok as f64 / r.secs,
        r.pct(0.5),
        r.pct(0.99),
        r.pct(0.999),
        r.errors
    );
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let secs: f64 = env_or("BENCH_SECS", 5.0);
    let clients: usize = env_or("BENCH_CLIENTS", 32);
    let rate: f64 = env_or("BENCH_RATE", 5000.0);
    let drain: usize = env_or("BENCH_DRAIN", 50);
    let pace_ms: u64 = env_or("BENCH_PACE_MS", 100);
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);

    let dir = tempfile::tempdir().expect("temp dir");
    let trivial = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let trivial_addr = trivial.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/salebeacon/sales",
        post(|_body: axum::body::Bytes| async {
            (
                StatusCode::ACCEPTED,
                axum::Json(serde_json::json!({"status": "queued"})),
            )
        }),
    );
    tokio::spawn(async move { axum::serve(trivial, app).await });

    println!(
        "salebeacon-proxy bench: {cores} cores, {clients} keep-alive clients, {secs} s per run, loopback"
    );
    println!();
    println!(
        "| {:<44} | {:>9} | {:>8} | {:>8} | {:>8} | {:>6} |",
        "POST /salebeacon/sales", "req/s", "p50 ms", "p99 ms", "p99.9 ms", "errors"
    );
    println!(
        "|{:-<46}|{:->11}|{:->10}|{:->10}|{:->10}|{:->8}|",
        "", "", "", "", "", ""
    );
    let path = "/salebeacon/sales";
    let _ = load(trivial_addr, path, clients, 1.0, None); // warm-up
    let r = load(trivial_addr, path, clients, secs, None);
    row("ceiling: trivial axum 202, closed loop", &r);
    let r = load(trivial_addr, path, clients, secs, Some(rate));
    row(&format!("ceiling: trivial axum 202, open {rate:.0}/s"), &r);

    for (sync, label) in [(DbSync::Full, "FULL"), (DbSync::Normal, "NORMAL")] {
        // An upstream that is up but slow to be asked (2 s pace): the sender stays out of the way.
        let sb =
            salebeacon_sandbox::spawn(SandboxConfig::default(), "127.0.0.1:0".parse().unwrap())
                .await
                .expect("sandbox");
        let mut c = ProxyConfig::new(Secret::new(salebeacon_sandbox::DEFAULT_API_KEY));
        c.listen = "127.0.0.1:0".parse().unwrap();
        c.upstream = sb.base_url();
        c.db = Database::Sqlite(dir.path().join(format!("bench-{label}.sqlite3")));
        c.db_sync = sync;
        // The limiter stays in the path, with a limit the benchmark cannot reach.
        c.rate_limit = RateLimit {
            per_minute: u32::MAX,
            burst: u32::MAX,
        };
        let proxy = salebeacon_proxy::spawn(c).await.expect("proxy");
        let _ = load(proxy.addr(), path, clients, 1.0, None);
        let r = load(proxy.addr(), path, clients, secs, None);
        row(
            &format!("proxy: durable enqueue ({label}), closed loop"),
            &r,
        );
        let r = load(proxy.addr(), path, clients, secs, Some(rate));
        row(
            &format!("proxy: durable enqueue ({label}), open {rate:.0}/s"),
            &r,
        );
        proxy.shutdown().await;
        sb.shutdown().await;
    }

    println!();
    println!("| drain: pace = sandbox min interval | sales | req/min achieved | allowed | achieved/allowed | 429s | gap min/max ms |");
    println!("|---|---|---|---|---|---|---|");
    drain_run(dir.path(), pace_ms, drain).await;
    drain_run(dir.path(), 2000, 6).await;
}

/// The sender against a sandbox that allows one request per `pace_ms`.
async fn drain_run(dir: &std::path::Path, pace_ms: u64, drain: usize) {
    let sb = salebeacon_sandbox::spawn(
        SandboxConfig {
            min_interval: Duration::from_millis(pace_ms),
            ..SandboxConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .expect("sandbox");
    let mut c = ProxyConfig::new(Secret::new(salebeacon_sandbox::DEFAULT_API_KEY));
    c.listen = "127.0.0.1:0".parse().unwrap();
    c.upstream = sb.base_url();
    c.db = Database::Sqlite(dir.join(format!("drain-{pace_ms}.sqlite3")));
    c.pace = Duration::from_millis(pace_ms);
    c.rate_limit.per_minute = 0;
    let proxy = salebeacon_proxy::spawn(c).await.expect("proxy");
    let http = reqwest::Client::new();
    for i in 0..drain {
        let body = serde_json::json!({"order_id": format!("DRAIN-{pace_ms}-{i}"), "total": 100, "currency": "usd", "campaign_affiliate_id": "creator42"});
        let _ = http
            .post(format!("{}/sales", proxy.base_url()))
            .json(&body)
            .send()
            .await;
    }
    let start = Instant::now();
    let delivered = || {
        sb.sales()
            .iter()
            .filter(|s| s.external_id.starts_with("DRAIN-"))
            .count()
    };
    while delivered() < drain && start.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let reqs = sb.requests();
    let n429 = reqs.iter().filter(|r| r.status == 429).count();
    let first = reqs.first().map(|r| r.received_at_ms).unwrap_or(0);
    let last = reqs.last().map(|r| r.received_at_ms).unwrap_or(0);
    let span_ms = (last - first).max(1) as f64;
    let per_min = (reqs.len().saturating_sub(1)) as f64 / span_ms * 60_000.0;
    let allowed = 60_000.0 / pace_ms as f64;
    let gaps: Vec<u64> = reqs
        .windows(2)
        .map(|w| w[1].received_at_ms - w[0].received_at_ms)
        .collect();
    println!(
        "| {pace_ms} ms | {}/{drain} delivered | {per_min:.1} | {allowed:.1} | {:.2} % | {n429} | {} / {} |",
        delivered(),
        per_min / allowed * 100.0,
        gaps.iter().min().unwrap_or(&0),
        gaps.iter().max().unwrap_or(&0)
    );
    proxy.shutdown().await;
    sb.shutdown().await;
}
