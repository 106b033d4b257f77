//! The soak: browser-shaped load through the real proxy binary into the sandbox while everything
//! that can go wrong does, and every acknowledged sale reaches Growi exactly once.
//!
//! - **Browsers**: sales arrive over time (one every few milliseconds), each posted by one of many
//!   concurrent "browsers" exactly as the tracker sends it: the body is the core's
//!   `tracker::sale` answer (attribution and visitor id from the stored `sb_aff` / `sb_vid`),
//!   as `text/plain` (`sendBeacon`) or `application/json` (`fetch`), with an `Origin` and
//!   sometimes the cookies instead of the attribution in the body. A browser retries on no answer,
//!   a `5xx` or a `429` with the core's own schedule (`tracker::next_attempt`) until it hears
//!   `202` or `200`; some post the same order again later (a reload of the thank-you page) or twice
//!   at once (two tabs) and must hear `200 duplicate`.
//! - **Growi** (the in-process sandbox, `min_interval` = the pace): 20% of requests answered
//!   `500`/`503`, bursts of `429` (`rate_limit_rate` high for a moment), and slow periods. The
//!   proxy reaches it through a relay in this test that holds answers back: slowly (150 ms) in
//!   the slow periods, and now and then for longer than the proxy's timeout. The sandbox has done
//!   the work by then (its own `latency_ms` delays a request *before* it is handled, and a
//!   request whose client goes away is dropped), so a kill or a timeout in that window leaves a
//!   sale in Growi that the proxy never heard of, which it must send again without doubling.
//! - **The proxy** (`CARGO_BIN_EXE_salebeacon-proxy`, 5 ms pace) is SIGKILLed and restarted on the
//!   same outbox several times, during intake and during the drain.
//!
//! Then: the sandbox holds every acknowledged order exactly once, with the total, currency,
//! attribution and visitor the browser sent, and nothing else; the proxy reports each one sent
//! with the sandbox's id and an empty queue. The figures (sales, kills, requests, 5xx/429 seen,
//! creates answered again for an order Growi already held, duration) are printed as one
//! `soak-report` line.
//!
//! Size: `SALEBEACON_SOAK_SALES` (default 2,000, about a minute in a debug build, so it runs in
//! `cargo xtask test`, on SQLite and again on PostgreSQL through `common::db_arg`);
//! `cargo xtask soak --sales N` runs it long, in release mode.

mod common;

use common::{db_arg, eventually, sandbox_with, ADMIN_TOKEN, API_KEY};
use rand_lite::Rng;
use salebeacon::attribution::{Attribution, Model, Referral};
use salebeacon::tracker;
use salebeacon::value::Loose;
use salebeacon_sandbox::{Faults, RecordedRequest, RunningSandbox, SandboxConfig};
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The proxy's pace, and the sandbox's minimum interval.
const PACE_MS: u64 = 5;
/// The proxy's upstream timeout: the slowest answers take longer.
const TIMEOUT_MS: u64 = 2_000;
const ORIGIN: &str = "https://shop.example";
/// The sandbox's seeded affiliates: tags and Growi pairs it knows.
const TAGS: &[&str] = &["creator42", "ana_lifestyle", "fixed_fred"];
const PAIRS: &[(u64, u64)] = &[(42, 7), (43, 7), (44, 8)];
const CURRENCIES: &[&str] = &["usd", "eur", "jpy", "kwd", "gbp"];

/// A small deterministic PRNG (splitmix64), so a soak's choices repeat from its seed.
mod rand_lite {
    pub struct Rng(u64);
    impl Rng {
        pub fn new(seed: u64) -> Rng {
            Rng(seed)
        }
        pub fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
        pub fn below(&mut self, n: u64) -> u64 {
            self.next() % n.max(1)
        }
        pub fn chance(&mut self, p: f64) -> bool {
            (self.next() >> 11) as f64 / (1u64 << 53) as f64 >= 1.0 - p
        }
        pub fn unit(&mut self) -> f64 {
            (self.next() >> 11) as f64 / (1u64 << 53) as f64
        }
    }
}

// --- the proxy process -----------------------------------------------------------------------

/// The real binary, its log kept to the last lines.
struct Proxy {
    child: Child,
    base: String,
    log: Arc<Mutex<VecDeque<String>>>,
}

impl Proxy {
    async fn start(upstream: &str, db: &str) -> Proxy {
        let pace = PACE_MS.to_string();
        let timeout = TIMEOUT_MS.to_string();
        let mut child = Command::new(env!("CARGO_BIN_EXE_salebeacon-proxy"))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--upstream",
                upstream,
                "--db",
                db,
            ])
            .args(["--pace-ms", &pace, "--timeout-ms", &timeout])
            .args(["--backoff-base-ms", "5", "--backoff-cap-ms", "200"])
            .args(["--rate-limit-per-minute", "0", "--allow-origin", ORIGIN])
            .env("GROWI_API_KEY", API_KEY)
            .env("SALEBEACON_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("RUST_LOG", "warn")
            .env("NO_COLOR", "1")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("the proxy binary starts");
        let stderr = child.stderr.take().expect("stderr piped");
        let log = Arc::new(Mutex::new(VecDeque::new()));
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
                if let Ok(mut l) = sink.lock() {
                    if l.len() == 200 {
                        l.pop_front();
                    }
                    l.push_back(line);
                }
            }
        });
        let base = tokio::time::timeout(Duration::from_secs(30), rx)
            .await
            .expect("the proxy announced its address")
            .expect("stderr open");
        Proxy { child, base, log }
    }

    fn log(&self) -> String {
        self.log
            .lock()
            .map(|l| l.iter().cloned().collect::<Vec<_>>().join("\n"))
            .unwrap_or_default()
    }

    /// SIGKILL, and wait for it to be gone.
    async fn kill(&mut self) {
        self.child.kill().await.expect("SIGKILL");
    }
}

// --- the relay -------------------------------------------------------------------------------

/// Forwards every request to the sandbox at once and holds its answer back `delay` ms.
async fn relay(sandbox_root: String, delay: Arc<AtomicU64>) -> String {
    use axum::body::Bytes;
    use axum::http::{HeaderMap, Method, StatusCode, Uri};
    use axum::response::IntoResponse;
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("a client");
    let handler = move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
        let (client, root, delay) = (client.clone(), sandbox_root.clone(), delay.clone());
        async move {
            let path = uri.path_and_query().map_or("/", |p| p.as_str());
            let mut req = client.request(method, format!("{root}{path}")).body(body);
            for name in ["authorization", "content-type"] {
                if let Some(v) = headers.get(name) {
                    req = req.header(name, v.clone());
                }
            }
            let answer = match req.send().await {
                Ok(r) => {
                    let status = StatusCode::from_u16(r.status().as_u16())
                        .unwrap_or(StatusCode::BAD_GATEWAY);
                    let mut out = HeaderMap::new();
                    for name in ["content-type", "retry-after"] {
                        if let Some(v) = r.headers().get(name) {
                            out.insert(name, v.clone());
                        }
                    }
                    let body = r.bytes().await.unwrap_or_default();
                    (status, out, body).into_response()
                }
                Err(_) => StatusCode::BAD_GATEWAY.into_response(),
            };
            let hold = delay.load(Relaxed);
            if hold > 0 {
                tokio::time::sleep(Duration::from_millis(hold)).await;
            }
            answer
        }
    };
    let app = axum::Router::new().fallback(handler);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("the relay binds");
    let addr = listener.local_addr().expect("an address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}{}", salebeacon_sandbox::API_BASE)
}

// --- the browsers ----------------------------------------------------------------------------

/// What the sandbox must end up holding for one order.
#[derive(Debug, Clone, PartialEq)]
struct Expected {
    total: i64,
    currency: String,
    referral: Referral,
    visitor: String,
}

/// One sale as a browser holds it: the body the tracker built, and how it is sent.
struct Order {
    id: String,
    body: String,
    expected: Expected,
    cookie: Option<String>,
    beacon: bool,
}

fn order(i: usize, rng: &mut Rng, now: i64) -> Order {
    let id = format!("SOAK-{i:06}");
    let referral = if rng.chance(0.75) {
        Referral::Tag(TAGS[rng.below(TAGS.len() as u64) as usize].to_owned())
    } else {
        let (user_id, campaign_id) = PAIRS[rng.below(PAIRS.len() as u64) as usize];
        Referral::Growi {
            user_id,
            campaign_id,
        }
    };
    let aff = Attribution {
        referral: referral.clone(),
        model: Model::LastClick,
        captured_at: now - rng.below(7 * 86_400_000) as i64,
    }
    .encode();
    let mut random = [0u8; 16];
    for b in random.iter_mut() {
        *b = rng.next() as u8;
    }
    let visitor = tracker::visitor("", &random);
    let total = rng.below(500_000) as i64;
    let currency = CURRENCIES[rng.below(CURRENCIES.len() as u64) as usize].to_owned();
    let fields = vec![
        ("order_id".to_owned(), Loose::Str(id.clone())),
        ("total".to_owned(), Loose::Int(total)),
        (
            "currency".to_owned(),
            Loose::Str(currency.to_ascii_uppercase()),
        ),
    ];
    // Most browsers still hold the attribution and the tracker puts it in the body; some lost
    // their storage and only the cookies (sent along) carry it to the proxy.
    let from_cookie = rng.chance(0.1);
    let (answer, cookie) = if from_cookie {
        let answer = tracker::sale(fields.clone(), "", &visitor, 30, now);
        (answer, Some(format!("sb_aff_h={aff}; sb_vid={visitor}")))
    } else {
        (tracker::sale(fields, &aff, &visitor, 30, now), None)
    };
    let v: Value = serde_json::from_str(&answer).expect("the tracker answers JSON");
    let body = if from_cookie {
        // Unattributed in the browser: the tracker would send it for the proxy's cookies.
        assert_eq!(v, serde_json::json!({"unattributed": true}), "{answer}");
        serde_json::json!({"order_id": id, "total": total, "currency": currency, "visitor_uid": visitor})
            .to_string()
    } else {
        assert_eq!(v["order_id"], id.as_str(), "{answer}");
        v["body"].to_string()
    };
    Order {
        id,
        body,
        expected: Expected {
            total,
            currency,
            referral,
            visitor,
        },
        cookie,
        beacon: rng.chance(0.5),
    }
}

/// What the browsers heard.
#[derive(Default)]
struct Heard {
    queued: AtomicU64,
    duplicate: AtomicU64,
    unavailable: AtomicU64,
    no_answer: AtomicU64,
    other: AtomicU64,
    reposts: AtomicU64,
}

/// Posts `o` until the proxy acknowledges it; returns the status that did (202 or 200).
async fn post_until_acknowledged(
    client: &reqwest::Client,
    base: &RwLock<String>,
    o: &Order,
    heard: &Heard,
    rng: &mut Rng,
) -> u16 {
    let mut attempts = 0u32;
    loop {
        let url = format!(
            "{}/sales",
            base.read().map(|b| b.clone()).unwrap_or_default()
        );
        let mut req = client
            .post(url)
            .header("origin", ORIGIN)
            .header(
                "content-type",
                if o.beacon {
                    "text/plain;charset=UTF-8"
                } else {
                    "application/json"
                },
            )
            .body(o.body.clone());
        if let Some(c) = &o.cookie {
            req = req.header("cookie", c.clone());
        }
        let (status, retry_after) = match req.send().await {
            Ok(r) => {
                let s = r.status().as_u16();
                let ra = r
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                let text = r.text().await.unwrap_or_default();
                match s {
                    202 => {
                        heard.queued.fetch_add(1, Relaxed);
                        return s;
                    }
                    200 => {
                        assert!(text.contains("duplicate"), "200 {text}");
                        heard.duplicate.fetch_add(1, Relaxed);
                        return s;
                    }
                    503 => heard.unavailable.fetch_add(1, Relaxed),
                    _ => heard.other.fetch_add(1, Relaxed),
                };
                assert!(
                    s >= 500 || s == 429 || s == 408,
                    "{} was refused for good: {s} {text}",
                    o.id
                );
                (s, ra)
            }
            Err(_) => {
                heard.no_answer.fetch_add(1, Relaxed);
                (0, String::new())
            }
        };
        let wait = tracker::next_attempt(status, attempts, rng.unit(), &retry_after);
        assert!(wait > 0.0, "{} given up after {status}", o.id);
        attempts += 1;
        tokio::time::sleep(Duration::from_millis(wait as u64)).await;
    }
}

// --- what Growi saw --------------------------------------------------------------------------

/// Every API request the sandbox answered, counted as it goes (its own log keeps the newest
/// 100,000 only).
#[derive(Default)]
struct Requests {
    seen: Option<RecordedRequest>,
    total: u64,
    by_status: HashMap<u16, u64>,
    creates_201: HashMap<String, u64>,
    min_gap_ms: Option<u64>,
    last_arrival: Option<u64>,
    closer_than_pace: u64,
}

impl Requests {
    fn take(&mut self, sb: &RunningSandbox) {
        let log = sb.requests();
        let start = match &self.seen {
            None => 0,
            Some(last) => log.iter().rposition(|r| r == last).map_or(0, |i| i + 1),
        };
        for r in &log[start..] {
            self.total += 1;
            *self.by_status.entry(r.status).or_default() += 1;
            if r.method == "POST" && r.status == 201 {
                if let Some(id) = &r.order_id {
                    *self.creates_201.entry(id.clone()).or_default() += 1;
                }
            }
            // The pace as Growi counts it: between requests its limiter let through.
            if r.status != 429 {
                if let Some(prev) = self.last_arrival {
                    let gap = r.received_at_ms.saturating_sub(prev);
                    self.min_gap_ms = Some(self.min_gap_ms.map_or(gap, |g| g.min(gap)));
                    if gap < PACE_MS {
                        self.closer_than_pace += 1;
                    }
                }
                self.last_arrival = Some(r.received_at_ms);
            }
        }
        if let Some(last) = log.last() {
            self.seen = Some(last.clone());
        }
    }
}

/// The rhythms of the weather: a burst of 429s every `burst`, answers held back longer than the
/// proxy's timeout for a second every `stuck`, and slow answers for 0.8 s of every 3 s.
#[derive(Clone, Copy)]
struct Rhythm {
    burst: u64,
    stuck: u64,
}

/// Whether `t` into the run falls in a slow period.
fn is_slow(t: Duration) -> bool {
    t.as_millis() as u64 % 3_000 >= 2_200
}

/// The sandbox's faults at `t` into the run (20% 5xx always, the 429 bursts, 40 ms before each
/// request in the slow periods), and how long the relay holds answers back then.
fn weather(t: Duration, rhythm: Rhythm) -> (Faults, u64) {
    let ms = t.as_millis() as u64;
    let burst = ms % rhythm.burst >= rhythm.burst - 300;
    let slow = is_slow(t);
    let stuck = ms % rhythm.stuck >= rhythm.stuck - 1_000;
    let faults = Faults {
        error_rate: 0.2,
        rate_limit_rate: if burst { 0.9 } else { 0.0 },
        latency_ms: if slow { 40 } else { 0 },
        down: false,
    };
    let hold = if stuck {
        TIMEOUT_MS + 500
    } else if slow {
        150
    } else {
        0
    };
    (faults, hold)
}

fn sales_wanted() -> usize {
    std::env::var("SALEBEACON_SOAK_SALES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(2_000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_every_acknowledged_sale_reaches_growi_exactly_once() {
    let n = sales_wanted();
    let long = n > 10_000;
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("a temporary folder");
    let db = db_arg(&dir.path().join("soak.sqlite3"));
    let sb = sandbox_with(SandboxConfig {
        min_interval: Duration::from_millis(PACE_MS),
        fault_seed: 0x50a6,
        ..SandboxConfig::default()
    })
    .await;
    let sb = Arc::new(sb);
    let hold = Arc::new(AtomicU64::new(0));
    let upstream = relay(sb.root_url(), hold.clone()).await;
    let proxy = Proxy::start(&upstream, &db).await;
    let base = Arc::new(RwLock::new(proxy.base.clone()));
    let proxy = Arc::new(tokio::sync::Mutex::new(proxy));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a client");
    let heard = Arc::new(Heard::default());
    let now = salebeacon_proxy::now_ms();

    // Growi's weather.
    let done = Arc::new(AtomicBool::new(false));
    let rhythm = if long {
        Rhythm {
            burst: 15_000,
            stuck: 60_000,
        }
    } else {
        Rhythm {
            burst: 6_000,
            stuck: 20_000,
        }
    };
    let t0 = Instant::now();
    let weather_task = {
        let (sb, done, hold) = (sb.clone(), done.clone(), hold.clone());
        tokio::spawn(async move {
            while !done.load(Relaxed) {
                let (faults, held) = weather(t0.elapsed(), rhythm);
                sb.set_faults(faults);
                hold.store(held, Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            sb.set_faults(Faults::default());
            hold.store(0, Relaxed);
        })
    };
    // The request log, read as it goes.
    let requests = Arc::new(Mutex::new(Requests::default()));
    let reader = {
        let (sb, done, requests) = (sb.clone(), done.clone(), requests.clone());
        tokio::spawn(async move {
            while !done.load(Relaxed) {
                if let Ok(mut r) = requests.lock() {
                    r.take(&sb);
                }
                tokio::time::sleep(Duration::from_millis(if long { 1_000 } else { 250 })).await;
            }
        })
    };

    // The browsers: sale i arrives at i x `arrival`; each is one task, at most `browsers` at once.
    let arrival = Duration::from_micros(if long { 7_000 } else { 6_000 });
    let browsers = Arc::new(tokio::sync::Semaphore::new(64));
    let acknowledged: Arc<Mutex<HashMap<String, Expected>>> = Arc::default();
    let posted = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    let feeder = {
        let (client, base, heard, acknowledged, posted) = (
            client.clone(),
            base.clone(),
            heard.clone(),
            acknowledged.clone(),
            posted.clone(),
        );
        tokio::spawn(async move {
            let t0 = tokio::time::Instant::now();
            let mut rng = Rng::new(0x50a6_0001);
            for i in 0..n {
                // A browser that failed for good fails the soak now, not at the end.
                while let Some(r) = tasks.try_join_next() {
                    if let Err(e) = r {
                        std::panic::resume_unwind(e.into_panic());
                    }
                }
                tokio::time::sleep_until(t0 + arrival * i as u32).await;
                let permit = browsers.clone().acquire_owned().await.expect("a permit");
                let o = order(i, &mut rng, now);
                let seed = rng.next();
                let (client, base, heard, acknowledged, posted) = (
                    client.clone(),
                    base.clone(),
                    heard.clone(),
                    acknowledged.clone(),
                    posted.clone(),
                );
                tasks.spawn(async move {
                    let mut rng = Rng::new(seed);
                    let two_tabs = rng.chance(0.03);
                    if two_tabs {
                        let mut other = Rng::new(seed ^ 1);
                        let (a, b) = tokio::join!(
                            post_until_acknowledged(&client, &base, &o, &heard, &mut rng),
                            post_until_acknowledged(&client, &base, &o, &heard, &mut other),
                        );
                        assert!(
                            a == 200 || b == 200,
                            "{}: two tabs both heard a new sale ({a}, {b})",
                            o.id
                        );
                    } else {
                        post_until_acknowledged(&client, &base, &o, &heard, &mut rng).await;
                    }
                    if let Ok(mut acked) = acknowledged.lock() {
                        acked.insert(o.id.clone(), o.expected.clone());
                    }
                    posted.fetch_add(1, Relaxed);
                    drop(permit);
                    // A reload of the thank-you page, a little later: the same order again.
                    if rng.chance(0.1) {
                        tokio::time::sleep(Duration::from_millis(rng.below(2_000))).await;
                        let again =
                            post_until_acknowledged(&client, &base, &o, &heard, &mut rng).await;
                        heard.reposts.fetch_add(1, Relaxed);
                        assert_eq!(again, 200, "{}: a reload heard a new sale", o.id);
                    }
                });
            }
            while let Some(r) = tasks.join_next().await {
                if let Err(e) = r {
                    std::panic::resume_unwind(e.into_panic());
                }
            }
        })
    };

    // The kills: spread over intake and drain, by progress (acknowledged + delivered of 2n).
    let kills_wanted = if long { (n / 10_000).clamp(6, 20) } else { 5 };
    let delivered = |sb: &RunningSandbox| {
        sb.sales()
            .iter()
            .filter(|s| s.external_id.starts_with("SOAK-"))
            .count()
    };
    let deadline = started
        + if long {
            Duration::from_millis(n as u64 * 20 + 600_000)
        } else {
            Duration::from_secs(150)
        };
    let mut kills = 0;
    while kills < kills_wanted {
        let progress = posted.load(Relaxed) + delivered(&sb);
        let target = 2 * n * (kills + 1) / (kills_wanted + 1);
        if progress >= target {
            // Two kills in three land in a slow period, with a request most likely in flight:
            // Growi creates the sale after the proxy is gone, and the restarted proxy sends it
            // again.
            if kills % 3 != 2 {
                while !is_slow(t0.elapsed() + Duration::from_millis(50))
                    && Instant::now() < deadline
                {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            let mut p = proxy.lock().await;
            p.kill().await;
            kills += 1;
            // systemd's Restart=always, give or take.
            tokio::time::sleep(Duration::from_millis(100 + 50 * (kills as u64 % 4))).await;
            *p = Proxy::start(&upstream, &db).await;
            if let Ok(mut b) = base.write() {
                *b = p.base.clone();
            }
        } else {
            if feeder.is_finished() && posted.load(Relaxed) < n {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "stalled before kill {}: {} acknowledged, {} delivered\n{}",
                kills + 1,
                posted.load(Relaxed),
                delivered(&sb),
                proxy.lock().await.log()
            );
            tokio::time::sleep(Duration::from_millis(if long { 500 } else { 100 })).await;
        }
    }
    if let Err(e) = feeder.await {
        std::panic::resume_unwind(e.into_panic());
    }
    let base_now = base.read().map(|b| b.clone()).unwrap_or_default();
    // Polled gently: each look copies every sale the sandbox holds.
    while delivered(&sb) < n {
        assert!(
            Instant::now() < deadline,
            "not every acknowledged sale reached the sandbox: {} of {n}\n{}",
            delivered(&sb),
            proxy.lock().await.log()
        );
        tokio::time::sleep(Duration::from_millis(if long { 1_000 } else { 50 })).await;
    }
    // The queue is empty (the last sends are recorded) before the faults stop.
    eventually(Duration::from_secs(30), "an empty queue", || async {
        let h = client.get(format!("{base_now}/healthz")).send().await;
        match h {
            Ok(r) => r.json::<Value>().await.is_ok_and(|v| v["queue_depth"] == 0),
            Err(_) => false,
        }
    })
    .await;
    done.store(true, Relaxed);
    let _ = weather_task.await;
    let _ = reader.await;
    if let Ok(mut r) = requests.lock() {
        r.take(&sb);
    }
    let duration = started.elapsed();

    // Exactly once, and what the browser sent.
    let acked = acknowledged.lock().map(|a| a.clone()).unwrap_or_default();
    assert_eq!(acked.len(), n, "every sale was acknowledged");
    let mut held: HashMap<String, Vec<salebeacon_sandbox::SandboxSale>> = HashMap::new();
    for s in sb.sales().into_iter().filter(|s| s.platform == "website") {
        held.entry(s.external_id.clone()).or_default().push(s);
    }
    assert_eq!(
        held.len(),
        n,
        "the sandbox holds other sales than those acknowledged"
    );
    for (id, want) in &acked {
        let got = held.get(id).map(Vec::as_slice).unwrap_or_default();
        assert_eq!(got.len(), 1, "{id} is held {} times", got.len());
        let s = &got[0];
        assert_eq!(s.total, Some(want.total), "{id}: total");
        assert_eq!(s.currency, want.currency, "{id}: currency");
        assert_eq!(
            s.visitor_uid.as_deref(),
            Some(want.visitor.as_str()),
            "{id}: visitor"
        );
        match &want.referral {
            Referral::Tag(t) => {
                assert_eq!(s.campaign_affiliate_id.as_deref(), Some(t.as_str()), "{id}")
            }
            Referral::Growi {
                user_id,
                campaign_id,
            } => assert_eq!(
                (s.growi_user_id, s.growi_campaign_id),
                (Some(*user_id), Some(*campaign_id)),
                "{id}"
            ),
        }
    }
    // The proxy says each was sent, with the id Growi gave it (all of them, or a sample).
    let step = (n / 2_000).max(1);
    let mut ids: Vec<&String> = acked.keys().collect();
    ids.sort();
    for id in ids.iter().step_by(step) {
        let r = client
            .get(format!("{base_now}/admin/sales/{id}"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("the admin API answers");
        let v: Value = r.json().await.expect("JSON");
        assert_eq!(v["state"], "sent", "{id}: {v}");
        assert_eq!(
            v["growi_id"].as_u64(),
            Some(held[*id][0].id),
            "{id}: the proxy recorded another Growi id: {v}"
        );
    }
    let r = requests
        .lock()
        .map(|mut r| std::mem::take(&mut *r))
        .unwrap_or_default();
    let status = |s: u16| r.by_status.get(&s).copied().unwrap_or(0);
    let redundant: u64 = r.creates_201.values().map(|c| c.saturating_sub(1)).sum();
    let report = format!(
        "soak-report sales={n} acknowledged={} kills={kills} requests={} created_201={} \
         redundant_creates={redundant} upstream_5xx={} upstream_429={} no_answer={} \
         min_gap_ms={} closer_than_pace={} browser_queued={} browser_duplicate={} \
         browser_503={} browser_no_answer={} browser_other={} reloads={} seconds={:.1} \
         exactly_once=yes",
        acked.len(),
        r.total,
        status(201),
        status(500) + status(503),
        status(429),
        status(0),
        r.min_gap_ms.map_or("-".into(), |g| g.to_string()),
        r.closer_than_pace,
        heard.queued.load(Relaxed),
        heard.duplicate.load(Relaxed),
        heard.unavailable.load(Relaxed),
        heard.no_answer.load(Relaxed),
        heard.other.load(Relaxed),
        heard.reposts.load(Relaxed),
        duration.as_secs_f64(),
    );
    eprintln!("{report}");
    assert!(kills >= 5, "the proxy was killed {kills} times");
    assert!(status(500) + status(503) > 0, "no upstream 5xx was seen");
    assert!(status(429) > 0, "no upstream 429 was seen");
    let mut p = proxy.lock().await;
    p.kill().await;
    drop(p);
    if let Ok(sb) = Arc::try_unwrap(sb) {
        sb.shutdown().await;
    }
}
