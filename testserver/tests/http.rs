//! The front over real HTTP: forwarding to a stand-in upstream (methods, headers, bodies,
//! streaming, repeated `Set-Cookie`), to a real salebeacon-proxy in front of a real sandbox (the
//! proxy's files, cookies and same-origin check through the front), the offline switch as a
//! client sees it (a reset connection), and the binary itself (its ready line, SIGTERM).

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use salebeacon_proxy::config::RateLimit;
use salebeacon_proxy::{ProxyConfig, RunningProxy, Secret};
use salebeacon_sandbox::{RunningSandbox, SandboxConfig};
use salebeacon_testserver::{serve, Injection, LogEntry, Options, TestServer};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, Mutex};

/// A front on a free port; stops when the returned sender is dropped or fired.
async fn front(options: Options) -> (String, TestServer, oneshot::Sender<()>) {
    let state = TestServer::new(options);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(serve(listener, state.clone(), async move {
        let _ = stopped.await;
    }));
    (format!("http://{addr}"), state, stop)
}

fn site_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("index.html"),
        "<!doctype html><html><head><title>shop</title></head><body>shop</body></html>",
    )
    .unwrap();
    dir
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn log(base: &str) -> Vec<LogEntry> {
    client()
        .get(format!("{base}/__test/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// What the stand-in upstream saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

type Gate = std::sync::Arc<Mutex<Option<oneshot::Receiver<()>>>>;

/// A front that forwards to a stand-in [`upstream`], and what that upstream saw; both stop when
/// this is dropped.
struct Stand {
    base: String,
    seen: std::sync::Arc<std::sync::Mutex<Vec<Seen>>>,
    _site: tempfile::TempDir,
    _stops: [oneshot::Sender<()>; 2],
}

async fn front_to_upstream(gate: Gate) -> Stand {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (up, stop_up) = upstream(seen.clone(), gate).await;
    let site = site_dir();
    let mut options = Options::new(site.path());
    options.proxy = Some(format!("http://{up}"));
    let (base, _state, stop) = front(options).await;
    Stand {
        base,
        seen,
        _site: site,
        _stops: [stop_up, stop],
    }
}

/// `PUT /__test/{name}` with `body`: the answer's status.
async fn put_switch(base: &str, name: &str, body: &'static str) -> StatusCode {
    client()
        .put(format!("{base}/__test/{name}"))
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
}

/// An upstream that records each request and answers: `/salebeacon/stream` with one chunk, then a
/// second one once the gate opens; anything else with two `Set-Cookie` headers and the body back.
async fn upstream(
    seen: std::sync::Arc<std::sync::Mutex<Vec<Seen>>>,
    gate: Gate,
) -> (SocketAddr, oneshot::Sender<()>) {
    let handler = move |method: Method, uri: axum::http::Uri, headers: HeaderMap, body: Bytes| {
        let seen = seen.clone();
        let gate = gate.clone();
        async move {
            seen.lock().unwrap().push(Seen {
                method,
                path: uri
                    .path_and_query()
                    .map(|p| p.as_str().to_owned())
                    .unwrap_or_default(),
                headers,
                body: body.clone(),
            });
            if uri.path() == "/salebeacon/stream" {
                let rx = gate.lock().await.take();
                return Response::builder()
                    .header("content-type", "text/plain")
                    .body(Body::from_stream(two_chunks(rx)))
                    .unwrap();
            }
            let mut r = (StatusCode::CREATED, body).into_response();
            r.headers_mut()
                .append("set-cookie", "a=1; Path=/; HttpOnly".parse().unwrap());
            r.headers_mut()
                .append("set-cookie", "b=2; Path=/".parse().unwrap());
            r.headers_mut().insert("x-upstream", "yes".parse().unwrap());
            r
        }
    };
    let app = Router::new().fallback(any(handler));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    (addr, stop)
}

/// `first;`, then (once `gate` fires) `second`.
fn two_chunks(
    gate: Option<oneshot::Receiver<()>>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    futures_util::stream::unfold((0u8, gate), |(step, gate)| async move {
        match step {
            0 => Some((Ok(Bytes::from_static(b"first;")), (1, gate))),
            1 => {
                if let Some(g) = gate {
                    let _ = g.await;
                }
                Some((Ok(Bytes::from_static(b"second")), (2, None)))
            }
            _ => None,
        }
    })
}

#[tokio::test]
async fn forwards_methods_headers_bodies_and_every_set_cookie() {
    let stand = front_to_upstream(Gate::default()).await;
    let (base, seen) = (stand.base.clone(), stand.seen.clone());

    let r = client()
        .patch(format!("{base}/salebeacon/admin/sales/ORD-1?x=1&y=%20"))
        .header("host", "shop.test:8443")
        .header("cookie", "sb_vid=v1; sb_aff=a1")
        .header("origin", "http://shop.test:8443")
        .header("authorization", "Bearer t")
        .header("x-custom", "kept")
        .body("{\"total\":5}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let cookies: Vec<_> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(cookies, ["a=1; Path=/; HttpOnly", "b=2; Path=/"]);
    assert_eq!(r.headers()["x-upstream"], "yes");
    assert_eq!(r.text().await.unwrap(), "{\"total\":5}");

    let s = seen.lock().unwrap()[0].clone();
    assert_eq!(s.method, Method::PATCH);
    assert_eq!(s.path, "/salebeacon/admin/sales/ORD-1?x=1&y=%20");
    assert_eq!(s.headers["host"], "shop.test:8443", "the original Host");
    assert_eq!(s.headers["cookie"], "sb_vid=v1; sb_aff=a1");
    assert_eq!(s.headers["origin"], "http://shop.test:8443");
    assert_eq!(s.headers["authorization"], "Bearer t");
    assert_eq!(s.headers["x-custom"], "kept");
    assert_eq!(&s.body[..], b"{\"total\":5}");

    // Only the proxy's paths are forwarded: the site answers the rest.
    let r = client()
        .get(format!("{base}/salebeaconx"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn the_fetch_metadata_switch_strips_sec_fetch_headers_only() {
    let stand = front_to_upstream(Gate::default()).await;
    let (base, seen) = (stand.base.clone(), stand.seen.clone());
    let ask = || {
        client()
            .get(format!("{base}/salebeacon/salebeacon.js"))
            .header("sec-fetch-site", "same-origin")
            .header("sec-fetch-mode", "no-cors")
            .header("sec-fetch-dest", "script")
            .header("cookie", "sb_wait=1")
            .send()
    };
    let put = |on| put_switch(&base, "no-fetch-metadata", on);
    assert_eq!(put("yes").await, StatusCode::BAD_REQUEST);
    assert_eq!(put("true").await, StatusCode::NO_CONTENT);
    assert_eq!(ask().await.unwrap().status(), StatusCode::CREATED);
    assert_eq!(put("false").await, StatusCode::NO_CONTENT);
    assert_eq!(ask().await.unwrap().status(), StatusCode::CREATED);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    for name in ["sec-fetch-site", "sec-fetch-mode", "sec-fetch-dest"] {
        assert!(seen[0].headers.get(name).is_none(), "{name} stripped");
        assert!(seen[1].headers.get(name).is_some(), "{name} kept once off");
    }
    assert_eq!(
        seen[0].headers["cookie"], "sb_wait=1",
        "the rest goes as it came"
    );
    // The log records the request as the browser sent it.
    let logged: Vec<_> = log(&base)
        .await
        .into_iter()
        .filter(|e| e.path == "/salebeacon/salebeacon.js")
        .collect();
    assert_eq!(logged.len(), 2);
    assert!(logged
        .iter()
        .all(|e| e.headers.contains_key("sec-fetch-site")));
}

#[tokio::test]
async fn streams_the_answer() {
    let (open, gate) = oneshot::channel::<()>();
    let stand = front_to_upstream(std::sync::Arc::new(Mutex::new(Some(gate)))).await;
    let base = stand.base.clone();
    let mut r = client()
        .get(format!("{base}/salebeacon/stream"))
        .send()
        .await
        .unwrap();
    // The first chunk arrives while the upstream still holds the second one back.
    let first = tokio::time::timeout(Duration::from_secs(5), r.chunk())
        .await
        .expect("the first chunk comes through before the answer is complete")
        .unwrap()
        .unwrap();
    assert_eq!(&first[..], b"first;");
    open.send(()).unwrap();
    let mut rest = Vec::new();
    while let Some(c) = r.chunk().await.unwrap() {
        rest.extend_from_slice(&c);
    }
    assert_eq!(rest, b"second");
}

const KEY: &str = "sk_test_front";
const ADMIN: &str = "admin-token-front-0123456789";

async fn stack(static_dir: &Path, db: &Path) -> (RunningSandbox, RunningProxy) {
    let sandbox = salebeacon_sandbox::spawn(
        SandboxConfig {
            api_key: KEY.to_owned(),
            min_interval: Duration::from_millis(0),
            ..SandboxConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let mut c = ProxyConfig::new(Secret::new(KEY));
    c.listen = "127.0.0.1:0".parse().unwrap();
    c.upstream = sandbox.base_url();
    c.db = salebeacon_proxy::outbox::Database::Sqlite(db.to_owned());
    c.pace = Duration::from_millis(50);
    c.rate_limit = RateLimit {
        per_minute: 0,
        burst: 1,
    };
    c.admin_token = Some(Secret::new(ADMIN));
    c.static_dir = Some(static_dir.to_owned());
    let proxy = salebeacon_proxy::spawn(c).await.unwrap();
    (sandbox, proxy)
}

#[tokio::test]
async fn in_front_of_the_real_proxy() {
    let tmp = tempfile::tempdir().unwrap();
    let pkg = tmp.path().join("pkg");
    std::fs::create_dir(&pkg).unwrap();
    std::fs::write(pkg.join("salebeacon.js"), "/* loader */\n").unwrap();
    std::fs::write(pkg.join("index.0123456789.js"), "/* hashed */\n").unwrap();
    let (sandbox, proxy) = stack(&pkg, &tmp.path().join("outbox.sqlite3")).await;
    let site = site_dir();
    let mut options = Options::new(site.path());
    options.proxy = Some(format!("http://{}", proxy.addr()));
    options.inject = Some(Injection::new("window.__sbLog=[]").unwrap());
    let (base, _state, stop) = front(options).await;
    let port = base.rsplit(':').next().unwrap().to_owned();
    let shop = format!("shop.test:{port}");
    let http = client();

    // The proxy's own file serving: types, caching, ETag revalidation.
    let r = http
        .get(format!("{base}/salebeacon/salebeacon.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    assert_eq!(r.headers()["cache-control"], "no-cache");
    let etag = r.headers()["etag"].clone();
    let r = http
        .get(format!("{base}/salebeacon/salebeacon.js"))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    let r = http
        .get(format!("{base}/salebeacon/index.0123456789.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );

    // Cookies: /touch answers two Set-Cookie for the shop's domain (from the forwarded Host) ...
    let vid = "6f1c2a9e-3b4d-4e5f-8a6b-7c8d9e0f1a2b";
    let aff = format!("1~l~{}~t~creator42", now_ms());
    let r = http
        .post(format!("{base}/salebeacon/touch"))
        .header("host", &shop)
        .header("origin", format!("http://{shop}"))
        .header("content-type", "text/plain;charset=UTF-8")
        .body(json!({"aff": aff, "vid": vid, "domain": "shop.test"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let set: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(set.len(), 2, "{set:?}");
    assert!(set.iter().any(|c| c.starts_with("sb_aff_h=")), "{set:?}");
    assert!(set.iter().any(|c| c.starts_with("sb_vid_h=")), "{set:?}");
    assert!(
        set.iter()
            .all(|c| c.contains("HttpOnly") && c.contains("Domain=shop.test")),
        "{set:?}"
    );
    // ... and reads them back from the forwarded Cookie header.
    let cookie_header = set
        .iter()
        .map(|c| c.split(';').next().unwrap())
        .collect::<Vec<_>>()
        .join("; ");
    let back: Value = http
        .get(format!("{base}/salebeacon/touch"))
        .header("host", &shop)
        .header("cookie", &cookie_header)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(back["vid"], vid);
    assert_eq!(back["aff"], aff);

    // The same-origin check sees the page's Host: a sale from the shop's page is taken ...
    let sale = json!({"order_id": "ORD-FRONT-1", "total": 2500, "currency": "usd",
                      "campaign_affiliate_id": "creator42", "visitor_uid": vid});
    let r = http
        .post(format!("{base}/salebeacon/sales"))
        .header("host", &shop)
        .header("origin", format!("http://{shop}"))
        .header("content-type", "text/plain;charset=UTF-8")
        .body(sale.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED, "{:?}", r.text().await);
    // ... one from another origin is refused.
    let r = http
        .post(format!("{base}/salebeacon/sales"))
        .header("host", &shop)
        .header("origin", "http://elsewhere.test")
        .header("content-type", "text/plain;charset=UTF-8")
        .body(
            json!({"order_id": "ORD-FRONT-2", "total": 1, "currency": "usd",
                     "campaign_affiliate_id": "creator42"})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    let deadline = Instant::now() + Duration::from_secs(10);
    while !sandbox
        .sales()
        .iter()
        .any(|s| s.external_id == "ORD-FRONT-1")
    {
        assert!(Instant::now() < deadline, "the sale reached the sandbox");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The log saw all of it, bodies of the POSTs included.
    let entries = log(&base).await;
    let posts: Vec<_> = entries
        .iter()
        .filter(|e| e.method == "POST" && e.path == "/salebeacon/sales")
        .collect();
    assert_eq!(posts.len(), 2);
    assert!(posts[0].body.as_deref().unwrap().contains("ORD-FRONT-1"));
    assert_eq!(posts[0].status, Some(202));
    assert_eq!(posts[1].status, Some(403));
    assert_eq!(posts[0].headers["host"], shop);
    let loader = entries
        .iter()
        .find(|e| e.path == "/salebeacon/salebeacon.js")
        .unwrap();
    assert_eq!(loader.cache_control.as_deref(), Some("no-cache"));

    // The proxy stopped: the front answers 502, as a reverse proxy would.
    proxy.shutdown().await;
    let r = http
        .get(format!("{base}/salebeacon/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
    let _ = stop.send(());
    sandbox.shutdown().await;
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[tokio::test]
async fn offline_resets_api_calls_and_keeps_files() {
    let stand = front_to_upstream(Gate::default()).await;
    let (base, seen) = (stand.base.clone(), stand.seen.clone());
    let http = client();
    assert_eq!(
        put_switch(&base, "offline", "true").await,
        StatusCode::NO_CONTENT
    );
    let err = http
        .post(format!("{base}/salebeacon/sales"))
        .body("{\"order_id\":\"OFF-1\"}")
        .send()
        .await
        .expect_err("no answer while offline");
    assert!(!err.is_status() && !err.is_timeout(), "{err:?}");
    assert!(http
        .get(format!("{base}/salebeacon/pixel.gif?order_id=x"))
        .send()
        .await
        .is_err());
    // Pages and the tracker's files still load.
    let r = http
        .get(format!("{base}/salebeacon/salebeacon.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = http.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "nothing else reached upstream"
    );

    assert_eq!(
        put_switch(&base, "offline", "false").await,
        StatusCode::NO_CONTENT
    );
    let r = http
        .post(format!("{base}/salebeacon/sales"))
        .body("{\"order_id\":\"OFF-2\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);

    let entries = log(&base).await;
    let sales: Vec<_> = entries
        .iter()
        .filter(|e| e.path == "/salebeacon/sales")
        .map(|e| (e.body.clone().unwrap(), e.status))
        .collect();
    // The dropped POST is recorded with status 0 (a client may retry it on a new connection).
    assert!(sales
        .iter()
        .all(|(b, s)| (b.contains("OFF-1") && *s == Some(0))
            || (b.contains("OFF-2") && *s == Some(201))));
    assert!(sales.iter().any(|(b, _)| b.contains("OFF-1")));
}

#[test]
fn the_binary_prints_its_address_and_stops_on_sigterm() {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::process::{Command, Stdio};

    let site = site_dir();
    let inject = site.path().join("inject.js");
    std::fs::write(&inject, "window.__injected = 1;").unwrap();
    let bin = env!("CARGO_BIN_EXE_salebeacon-testserver");
    let mut child = Command::new(bin)
        .args(["--site"])
        .arg(site.path())
        .arg("--inject")
        .arg(&inject)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let url = line
        .trim()
        .strip_prefix("salebeacon-testserver listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");

    // A page over a plain socket: the script is in it.
    let addr = url.strip_prefix("http://").unwrap();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: shop.test\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut page = String::new();
    s.read_to_string(&mut page).unwrap();
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(
        page.contains("<head><script>window.__injected = 1;</script><title>"),
        "{page}"
    );

    let started = Instant::now();
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "still running 10 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    let mut rest = String::new();
    let _ = stderr.read_to_string(&mut rest);
    assert!(rest.contains("shutting down"), "{rest}");
}

#[test]
fn the_binary_explains_bad_arguments() {
    let site = site_dir();
    let inject = site.path().join("bad.js");
    std::fs::write(&inject, "a = '</script>';").unwrap();
    let bin = env!("CARGO_BIN_EXE_salebeacon-testserver");
    let out = std::process::Command::new(bin)
        .arg("--site")
        .arg(site.path())
        .arg("--inject")
        .arg(&inject)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("</script"), "{err}");
    let out = std::process::Command::new(bin)
        .args(["--site", "/nonexistent/site", "--proxy", "ftp://x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a folder"));
}
