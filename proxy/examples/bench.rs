//! Benchmark (not a test): `cargo run --release -p salebeacon-proxy --example bench`.
//!
//! 1. `POST /salebeacon/sales` with durable enqueue (SQLite in a temp dir, WAL,
//!    `synchronous=FULL`, group commit), N keep-alive HTTP/1.1 clients on loopback for a few
//!    seconds: closed loop (as fast as it goes) and open loop at a fixed 5,000 requests/s (latency
//!    measured from each request's scheduled time, so a stall is not hidden).
//! 2. The same load against a trivial axum handler that only answers 202: the ceiling of this
//!    machine with this client.
//! 3. The sender's drain pace against the in-process sandbox (pace = sandbox min interval), at a
//!    fast 100 ms and at Growi's real 2 s; then at 2 s through a network that delays each request
//!    5-30 ms, and 5-120 ms.
//! 4. With `BENCH_POSTGRES` (a server URL; `cargo xtask bench proxy` starts one): intake on one
//!    PostgreSQL instance and on three sharing one database (clients round-robin), and the drain
//!    of three instances through that jittery network.
//!
//! SQLite runs with `synchronous=FULL` (the default: fsync per commit) and with `NORMAL`;
//! PostgreSQL with its defaults (`fsync=on`, `synchronous_commit=on`).
//!
//! Options (env): `BENCH_SECS` (default 5), `BENCH_CLIENTS` (32), `BENCH_RATE` (5000),
//! `BENCH_DRAIN` (50 sales), `BENCH_PACE_MS` (100), `BENCH_JITTER_DRAIN` (20 sales at 2 s through
//! the jittery network), `BENCH_DEBUG` (print every upstream request of each drain).

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
    addrs: &[SocketAddr],
    path: &'static str,
    clients: usize,
    secs: f64,
    rate: Option<f64>,
) -> LoadResult {
    let addrs = addrs.to_vec();
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
                    // Clients spread over the instances, round-robin.
                    let addr = addrs[i % addrs.len()];
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
    let _ = load(&[trivial_addr], path, clients, 1.0, None); // warm-up
    let r = load(&[trivial_addr], path, clients, secs, None);
    row("ceiling: trivial axum 202, closed loop", &r);
    let r = load(&[trivial_addr], path, clients, secs, Some(rate));
    row(&format!("ceiling: trivial axum 202, open {rate:.0}/s"), &r);

    let postgres = std::env::var("BENCH_POSTGRES")
        .ok()
        .filter(|s| !s.is_empty());
    let mut setups: Vec<(String, Vec<Database>, DbSync)> = vec![
        (
            "SQLite FULL".into(),
            vec![Database::Sqlite(dir.path().join("bench-full.sqlite3"))],
            DbSync::Full,
        ),
        (
            "SQLite NORMAL".into(),
            vec![Database::Sqlite(dir.path().join("bench-normal.sqlite3"))],
            DbSync::Normal,
        ),
    ];
    if let Some(server) = &postgres {
        for n in [1usize, 3] {
            let url = fresh_database(server, &format!("bench_intake_{n}")).await;
            setups.push((
                format!("PostgreSQL x{n}"),
                vec![Database::Postgres(url); n],
                DbSync::Full,
            ));
        }
    }
    for (label, dbs, sync) in setups {
        // An upstream that is up but slow to be asked (2 s pace): the sender stays out of the way.
        let sb =
            salebeacon_sandbox::spawn(SandboxConfig::default(), "127.0.0.1:0".parse().unwrap())
                .await
                .expect("sandbox");
        let mut proxies = Vec::new();
        for db in dbs {
            let mut c = ProxyConfig::new(Secret::new(salebeacon_sandbox::DEFAULT_API_KEY));
            c.listen = "127.0.0.1:0".parse().unwrap();
            c.upstream = sb.base_url();
            c.db = db;
            c.db_sync = sync;
            // The limiter stays in the path, with a limit the benchmark cannot reach.
            c.rate_limit = RateLimit {
                per_minute: u32::MAX,
                burst: u32::MAX,
            };
            proxies.push(salebeacon_proxy::spawn(c).await.expect("proxy"));
        }
        let addrs: Vec<SocketAddr> = proxies.iter().map(|p| p.addr()).collect();
        let _ = load(&addrs, path, clients, 1.0, None);
        let r = load(&addrs, path, clients, secs, None);
        row(
            &format!("proxy: durable enqueue ({label}), closed loop"),
            &r,
        );
        let r = load(&addrs, path, clients, secs, Some(rate));
        row(
            &format!("proxy: durable enqueue ({label}), open {rate:.0}/s"),
            &r,
        );
        for p in proxies {
            p.shutdown().await;
        }
        sb.shutdown().await;
    }

    println!();
    println!("| drain: pace = sandbox min interval | outbox | network delay | sales | req/min achieved | allowed | achieved/allowed | 429s | gap min/max ms |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let sqlite = |name: &str| vec![Database::Sqlite(dir.path().join(name))];
    drain_run("SQLite", sqlite("drain-fast.sqlite3"), pace_ms, drain, None).await;
    drain_run("SQLite", sqlite("drain-growi.sqlite3"), 2000, 6, None).await;
    // At Growi's 2 s pace through a jittery network (each request delayed 5-30 ms, then 5-120
    // ms on its way there): what a merchant's proxy sees.
    let jittered: usize = env_or("BENCH_JITTER_DRAIN", 20);
    for (min, max) in [(5, 30), (5, 120)] {
        let jitter = Some((min, max));
        let name = format!("drain-jitter-{max}.sqlite3");
        drain_run("SQLite", sqlite(&name), 2000, jittered, jitter).await;
        if let Some(server) = &postgres {
            let url = fresh_database(server, &format!("bench_drain_3_{max}")).await;
            let three = vec![Database::Postgres(url); 3];
            drain_run("PostgreSQL x3", three, 2000, jittered, jitter).await;
        }
    }
}

/// Creates database `name` (dropped first if there) on the server at `server` (a URL ending in
/// `/<database>`); returns its URL.
async fn fresh_database(server: &str, name: &str) -> String {
    let (client, conn) = tokio_postgres::connect(server, tokio_postgres::NoTls)
        .await
        .expect("BENCH_POSTGRES answers");
    let task = tokio::spawn(conn);
    for statement in [
        format!("DROP DATABASE IF EXISTS {name}"),
        format!("CREATE DATABASE {name}"),
    ] {
        client
            .batch_execute(&statement)
            .await
            .expect("a fresh database");
    }
    drop(client);
    let _ = task.await;
    let base = server.rsplit_once('/').map(|(b, _)| b).unwrap_or(server);
    format!("{base}/{name}")
}

/// A TCP relay that holds each chunk sent towards `upstream` for a random delay in
/// `min..=max` ms (in order on each connection), as a jittery network would: the sandbox sees
/// requests *arrive* late, which is what its pace check counts. Returns the relay's address.
async fn jitter_relay(upstream: SocketAddr, min: u64, max: u64) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut rng_state = 0x9e37_79b9_7f4a_7c15u64;
        while let Ok((inbound, _)) = listener.accept().await {
            rng_state = rng_state.wrapping_mul(6364136223846793005).wrapping_add(1);
            let seed = rng_state;
            tokio::spawn(async move {
                let Ok(outbound) = TcpStream::connect(upstream).await else {
                    return;
                };
                let _ = inbound.set_nodelay(true);
                let _ = outbound.set_nodelay(true);
                let (mut in_read, mut in_write) = inbound.into_split();
                let (mut out_read, mut out_write) = outbound.into_split();
                let forward = async move {
                    let mut rng = seed;
                    let mut last_release = Instant::now();
                    let mut buf = vec![0u8; 16384];
                    loop {
                        let n = match in_read.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        let delay = Duration::from_millis(min + rng % (max - min + 1));
                        let release = (Instant::now() + delay).max(last_release);
                        last_release = release;
                        tokio::time::sleep_until(release.into()).await;
                        if out_write.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                };
                let back = async move {
                    let _ = tokio::io::copy(&mut out_read, &mut in_write).await;
                };
                tokio::join!(forward, back);
            });
        }
    });
    addr
}

/// The sender(s) against a sandbox that allows one request per `pace_ms`, through a jittery
/// network when `jitter` is set; one proxy instance per database given.
async fn drain_run(
    label: &str,
    dbs: Vec<Database>,
    pace_ms: u64,
    drain: usize,
    jitter: Option<(u64, u64)>,
) {
    let sb = salebeacon_sandbox::spawn(
        SandboxConfig {
            min_interval: Duration::from_millis(pace_ms),
            ..SandboxConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .expect("sandbox");
    let upstream = match jitter {
        Some((min, max)) => sb.base_url().replace(
            &sb.addr().to_string(),
            &jitter_relay(sb.addr(), min, max).await.to_string(),
        ),
        None => sb.base_url(),
    };
    let mut proxies = Vec::new();
    for db in dbs {
        let mut c = ProxyConfig::new(Secret::new(salebeacon_sandbox::DEFAULT_API_KEY));
        c.listen = "127.0.0.1:0".parse().unwrap();
        c.upstream = upstream.clone();
        c.db = db;
        c.pace = Duration::from_millis(pace_ms);
        c.rate_limit.per_minute = 0;
        proxies.push(salebeacon_proxy::spawn(c).await.expect("proxy"));
    }
    let http = reqwest::Client::new();
    for i in 0..drain {
        let body = serde_json::json!({"order_id": format!("DRAIN-{pace_ms}-{i}"), "total": 100, "currency": "usd", "campaign_affiliate_id": "creator42"});
        let at = &proxies[i % proxies.len()];
        let _ = http
            .post(format!("{}/sales", at.base_url()))
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
    while delivered() < drain && start.elapsed() < Duration::from_secs(300) {
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
    if std::env::var_os("BENCH_DEBUG").is_some() {
        for (i, r) in reqs.iter().enumerate() {
            let gap = i
                .checked_sub(1)
                .map(|j| r.received_at_ms - reqs[j].received_at_ms);
            eprintln!(
                "{i:3} {} {} {:?} gap {gap:?}",
                r.method, r.status, r.order_id
            );
        }
    }
    let network = match jitter {
        Some((min, max)) => format!("{min}-{max} ms"),
        None => "loopback".into(),
    };
    println!(
        "| {pace_ms} ms | {label} | {network} | {}/{drain} delivered | {per_min:.1} | {allowed:.1} | {:.2} % | {n429} | {} / {} |",
        delivered(),
        per_min / allowed * 100.0,
        gaps.iter().min().unwrap_or(&0),
        gaps.iter().max().unwrap_or(&0)
    );
    for p in proxies {
        p.shutdown().await;
    }
    sb.shutdown().await;
}
