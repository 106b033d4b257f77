//! The recorder: a tiny HTTP server that stands in for the merchant proxy in the browser tests.
//!
//! The wasm tests of the tracker run in headless Chromium, which can only talk to a real server.
//! The recorder answers like the proxy would, chosen by the test through the URL, and remembers
//! every request so the test can ask afterwards what reached "the proxy". `cargo xtask test`
//! starts it in a background thread and hands its URL to the tests as `SALEBEACON_TEST_SERVER`;
//! `cargo xtask recorder` runs it in the foreground for running the browser tests by hand.
//!
//! # Contract (the browser tests are written against exactly this)
//!
//! Every test uses its own *scenario*: one path segment of `[A-Za-z0-9_-]` (1–128 characters).
//!
//! | request | answer |
//! |---|---|
//! | `OPTIONS` any path | `204` |
//! | `POST /{scenario}/sales` | records the request, then by the scenario's prefix: `dup…` → `200 {"status":"duplicate"}`; `invalid…` → `422 {"error":"invalid sale","issues":[{"field":"total","message":"rejected by the test server"}]}`; `down…` → `503 {"error":"unavailable"}`; `slow…` → waits 3 s, then `202 {"status":"queued"}`; anything else (`ok…`) → `202 {"status":"queued"}` |
//! | `POST /{scenario}/touch` | records the request under `{scenario}/touch`; `204` |
//! | `GET /{scenario}/_recorded` | `200`, a JSON array of the recorded sales requests of the scenario, in arrival order |
//! | `GET /{scenario}/_recorded_touch` | the same for touches |
//! | other paths | `404 {"error":"not found"}`; a known path with another method: `405` |
//!
//! A recorded entry is `{"body": <the body parsed as JSON, or the raw text if it is not JSON>,
//! "content_type": <the Content-Type header, or null>}`. Requests are recorded before the answer
//! is sent (a `slow…` request that the client aborted is still recorded).
//!
//! Every response carries `Access-Control-Allow-Origin: <the request's Origin, or *>`,
//! `Access-Control-Allow-Credentials: true`, `Access-Control-Allow-Methods: GET, POST, OPTIONS`,
//! `Access-Control-Allow-Headers: content-type`, `Vary: Origin`, `Cache-Control: no-store` and
//! `Connection: close` (one request per connection; the server closes it after answering).
//! Bodies need a `Content-Length` (at most 1 MiB); each connection gets its own thread; bad input
//! gets a `4xx` JSON error, never a panic.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use serde_json::{json, Value};

/// The port `cargo xtask test` tries first, so the URL compiled into the tests stays the same
/// from run to run (a different URL would make cargo rebuild the tests that read it).
pub const PREFERRED_PORT: u16 = 47817;
/// How long a `slow…` scenario waits before answering.
pub const SLOW_DELAY: Duration = Duration::from_secs(3);

const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 1024 * 1024;
const READ_TIMEOUT: Duration = Duration::from_secs(15);

/// Recorded entries by key (`scenario` for sales, `scenario/touch` for touches).
type Store = Mutex<HashMap<String, Vec<Value>>>;

/// A running recorder; it stops accepting connections when dropped.
pub struct Recorder {
    addr: SocketAddr,
    #[cfg_attr(not(test), expect(dead_code, reason = "read by the unit tests"))]
    store: Arc<Store>,
    stop: Arc<AtomicBool>,
}

impl Recorder {
    /// Starts a recorder on `addr` (port 0: any free port); `log` prints one line per request.
    pub fn start(addr: impl ToSocketAddrs, log: bool) -> io::Result<Recorder> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let store = Arc::new(Store::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (store2, stop2) = (Arc::clone(&store), Arc::clone(&stop));
        thread::Builder::new()
            .name("recorder-accept".into())
            .spawn(move || accept_loop(listener, store2, stop2, log))?;
        Ok(Recorder { addr, store, stop })
    }

    /// Starts on 127.0.0.1:`port`, or on a free port if that one is taken.
    pub fn start_preferring(port: u16, log: bool) -> io::Result<Recorder> {
        Recorder::start(("127.0.0.1", port), log)
            .or_else(|_| Recorder::start(("127.0.0.1", 0), log))
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The entries recorded under `key` (`scenario` or `scenario/touch`).
    #[cfg(test)]
    pub fn recorded(&self, key: &str) -> Vec<Value> {
        lock(&self.store).get(key).cloned().unwrap_or_default()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

fn lock(store: &Store) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Value>>> {
    store.lock().unwrap_or_else(|e| e.into_inner())
}

fn accept_loop(listener: TcpListener, store: Arc<Store>, stop: Arc<AtomicBool>, log: bool) {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else {
            // E.g. too many open files: back off instead of spinning.
            thread::sleep(Duration::from_millis(10));
            continue;
        };
        let store = Arc::clone(&store);
        let spawned = thread::Builder::new()
            .name("recorder-conn".into())
            .spawn(move || serve(stream, &store, log));
        if spawned.is_err() {
            thread::sleep(Duration::from_millis(10));
        }
    }
}

/// A parsed request.
#[derive(Debug, Default)]
struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A response about to be written.
#[derive(Debug)]
struct Response {
    status: u16,
    body: Option<Value>,
    allow: Option<&'static str>,
}

impl Response {
    fn json(status: u16, body: Value) -> Response {
        Response {
            status,
            body: Some(body),
            allow: None,
        }
    }

    fn empty(status: u16) -> Response {
        Response {
            status,
            body: None,
            allow: None,
        }
    }

    fn error(status: u16, message: &str) -> Response {
        Response::json(status, json!({ "error": message }))
    }
}

fn serve(mut stream: TcpStream, store: &Store, log: bool) {
    let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
    let _ = stream.set_write_timeout(Some(READ_TIMEOUT));
    // Filled as far as it was read, so even an error answer echoes the request's Origin.
    let mut request = Request::default();
    let response = match read_request(&mut stream, &mut request) {
        Ok(true) => route(&request, store),
        // Closed (or idle, e.g. a browser's speculative preconnect) before sending a request.
        Ok(false) => return,
        Err((status, message)) => Response::error(status, &message),
    };
    if log {
        eprintln!(
            "recorder: {} {} -> {}",
            request.method, request.path, response.status
        );
    }
    let _ = stream.write_all(&encode(&request, &response));
    let _ = stream.flush();
    // Close politely: stop sending, then read what the client may still send until it closes, so
    // the kernel does not answer unread data with a reset that could hide our response.
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut sink = [0u8; 4096];
    let mut drained = 0;
    while drained < MAX_BODY {
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
}

/// Reads one request into `request`. `Ok(false)`: the connection closed before a request started.
/// `Err((status, message))`: a malformed or unsupported request (`request` holds what was read).
fn read_request(stream: &mut TcpStream, request: &mut Request) -> Result<bool, (u16, String)> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i;
        }
        if buf.len() > MAX_HEAD {
            return Err((431, "request head too large".into()));
        }
        match stream.read(&mut chunk) {
            Ok(0) if buf.is_empty() => return Ok(false),
            Ok(0) => return Err((400, "connection closed inside the request head".into())),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) if buf.is_empty() => return Ok(false),
            Err(_) => return Err((408, "timed out reading the request head".into())),
        }
    };
    let head = std::str::from_utf8(&buf[..head_end])
        .map_err(|_| (400, "request head is not UTF-8".to_string()))?;
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err((400, format!("malformed request line {request_line:?}")));
    };
    if !version.starts_with("HTTP/1.") || method.is_empty() || !target.starts_with('/') {
        return Err((400, format!("malformed request line {request_line:?}")));
    }
    request.method = method.to_owned();
    request.path = target
        .split(['?', '#'])
        .next()
        .unwrap_or_default()
        .to_owned();
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err((400, format!("malformed header line {line:?}")));
        };
        request
            .headers
            .push((name.trim().to_owned(), value.trim().to_owned()));
    }

    if request.header("transfer-encoding").is_some() {
        return Err((
            411,
            "send the body with a Content-Length (chunked bodies are not supported)".into(),
        ));
    }
    let length = match request.header("content-length") {
        None => 0,
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| (400, format!("bad Content-Length {v:?}")))?,
    };
    if length > MAX_BODY {
        return Err((413, format!("body larger than {MAX_BODY} bytes")));
    }
    if length > 0
        && request
            .header("expect")
            .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
    {
        let _ = stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
    }
    let mut body = buf.split_off(head_end + 4);
    body.truncate(length);
    while body.len() < length {
        let want = (length - body.len()).min(chunk.len());
        match stream.read(&mut chunk[..want]) {
            Ok(0) => return Err((400, "connection closed inside the body".into())),
            Ok(n) => body.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Err((408, "timed out reading the body".into())),
        }
    }
    request.body = body;
    Ok(true)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A scenario name: 1–128 of `[A-Za-z0-9_-]`.
fn valid_scenario(s: &str) -> bool {
    (1..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn route(request: &Request, store: &Store) -> Response {
    if request.method == "OPTIONS" {
        return Response::empty(204);
    }
    let segments: Vec<&str> = request.path.trim_start_matches('/').split('/').collect();
    let [scenario, action] = segments.as_slice() else {
        return Response::error(404, "not found");
    };
    if !valid_scenario(scenario) {
        return Response::error(404, "not found");
    }
    let method = request.method.as_str();
    match (*action, method) {
        ("sales", "POST") => {
            record(store, scenario, request);
            sales_answer(scenario)
        }
        ("touch", "POST") => {
            record(store, &format!("{scenario}/touch"), request);
            Response::empty(204)
        }
        ("_recorded", "GET") => Response::json(200, Value::Array(recorded(store, scenario))),
        ("_recorded_touch", "GET") => Response::json(
            200,
            Value::Array(recorded(store, &format!("{scenario}/touch"))),
        ),
        ("sales" | "touch", _) => Response {
            allow: Some("POST, OPTIONS"),
            ..Response::error(405, "method not allowed")
        },
        ("_recorded" | "_recorded_touch", _) => Response {
            allow: Some("GET, OPTIONS"),
            ..Response::error(405, "method not allowed")
        },
        _ => Response::error(404, "not found"),
    }
}

fn sales_answer(scenario: &str) -> Response {
    if scenario.starts_with("dup") {
        Response::json(200, json!({ "status": "duplicate" }))
    } else if scenario.starts_with("invalid") {
        Response::json(
            422,
            json!({
                "error": "invalid sale",
                "issues": [{ "field": "total", "message": "rejected by the test server" }],
            }),
        )
    } else if scenario.starts_with("down") {
        Response::error(503, "unavailable")
    } else {
        if scenario.starts_with("slow") {
            thread::sleep(SLOW_DELAY);
        }
        Response::json(202, json!({ "status": "queued" }))
    }
}

fn record(store: &Store, key: &str, request: &Request) {
    let body = std::str::from_utf8(&request.body)
        .ok()
        .and_then(|text| serde_json::from_str::<Value>(text).ok())
        .unwrap_or_else(|| Value::String(String::from_utf8_lossy(&request.body).into_owned()));
    let entry = json!({ "body": body, "content_type": request.header("content-type") });
    lock(store).entry(key.to_owned()).or_default().push(entry);
}

fn recorded(store: &Store, key: &str) -> Vec<Value> {
    lock(store).get(key).cloned().unwrap_or_default()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        422 => "Unprocessable Content",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "",
    }
}

fn encode(request: &Request, response: &Response) -> Vec<u8> {
    let origin = request
        .header("origin")
        .filter(|o| !o.is_empty())
        .unwrap_or("*");
    // Header values are echoed; refuse anything that could split the response.
    let origin = if origin.contains(['\r', '\n']) {
        "*"
    } else {
        origin
    };
    let mut head = format!(
        "HTTP/1.1 {} {}\r\n\
         Access-Control-Allow-Origin: {origin}\r\n\
         Access-Control-Allow-Credentials: true\r\n\
         Access-Control-Allow-Methods: GET, POST, OPTIONS\r\n\
         Access-Control-Allow-Headers: content-type\r\n\
         Vary: Origin\r\n\
         Cache-Control: no-store\r\n\
         Connection: close\r\n",
        response.status,
        reason(response.status)
    );
    if request
        .header("access-control-request-private-network")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    {
        head.push_str("Access-Control-Allow-Private-Network: true\r\n");
    }
    if let Some(allow) = response.allow {
        head.push_str(&format!("Allow: {allow}\r\n"));
    }
    let body = response
        .body
        .as_ref()
        .map(|b| b.to_string())
        .unwrap_or_default();
    if response.body.is_some() {
        head.push_str("Content-Type: application/json\r\n");
    }
    if response.status != 204 {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// A raw HTTP exchange: sends `request` bytes, reads until the server closes.
    fn exchange(addr: SocketAddr, request: &[u8]) -> (u16, String, String) {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(request).unwrap();
        // Like a client that has said everything: lets the server see a truncated body end.
        let _ = s.shutdown(Shutdown::Write);
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (status, head.to_owned(), body.to_owned())
    }

    fn post(addr: SocketAddr, path: &str, content_type: &str, body: &str) -> (u16, String, String) {
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nOrigin: http://127.0.0.1:9\r\nContent-Type: {content_type}\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        exchange(addr, req.as_bytes())
    }

    fn get(addr: SocketAddr, path: &str) -> (u16, String, Value) {
        let (status, head, body) = exchange(
            addr,
            format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
        );
        (
            status,
            head,
            serde_json::from_str(&body).unwrap_or(Value::Null),
        )
    }

    fn recorder() -> Recorder {
        Recorder::start("127.0.0.1:0", false).unwrap()
    }

    #[test]
    fn records_sales_and_answers_by_scenario() {
        let r = recorder();
        let sale = r#"{"order_id":"ORD-1","total":100}"#;
        let (status, head, body) = post(r.addr(), "/ok-1/sales", "application/json", sale);
        assert_eq!(status, 202, "{head}");
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap(),
            json!({"status": "queued"})
        );
        assert!(
            head.contains("Access-Control-Allow-Origin: http://127.0.0.1:9\r\n"),
            "{head}"
        );
        assert!(
            head.contains("Access-Control-Allow-Credentials: true\r\n"),
            "{head}"
        );
        assert!(
            head.contains("Vary: Origin\r\n") && head.contains("Connection: close\r\n"),
            "{head}"
        );

        post(
            r.addr(),
            "/ok-1/sales",
            "text/plain;charset=UTF-8",
            "not json",
        );
        let (status, _, list) = get(r.addr(), "/ok-1/_recorded");
        assert_eq!(status, 200);
        assert_eq!(
            list,
            json!([
                {"body": {"order_id": "ORD-1", "total": 100}, "content_type": "application/json"},
                {"body": "not json", "content_type": "text/plain;charset=UTF-8"},
            ])
        );
        assert_eq!(r.recorded("ok-1").len(), 2);

        let answers = [
            ("dup-1", 200, json!({"status": "duplicate"})),
            ("down-1", 503, json!({"error": "unavailable"})),
            ("anything", 202, json!({"status": "queued"})),
            (
                "invalid_1",
                422,
                json!({"error": "invalid sale", "issues": [{"field": "total", "message": "rejected by the test server"}]}),
            ),
        ];
        for (scenario, want_status, want_body) in answers {
            let (status, _, body) = post(
                r.addr(),
                &format!("/{scenario}/sales"),
                "application/json",
                "{}",
            );
            assert_eq!(status, want_status, "{scenario}");
            assert_eq!(
                serde_json::from_str::<Value>(&body).unwrap(),
                want_body,
                "{scenario}"
            );
            assert_eq!(
                r.recorded(scenario),
                vec![json!({"body": {}, "content_type": "application/json"})]
            );
        }
        // Scenarios do not see each other's requests.
        assert_eq!(get(r.addr(), "/unused/_recorded").2, json!([]));
    }

    #[test]
    fn records_touches_separately() {
        let r = recorder();
        let (status, head, body) = post(
            r.addr(),
            "/ok-t/touch",
            "application/json",
            r#"{"tag":"ann"}"#,
        );
        assert_eq!(status, 204, "{head}");
        assert!(
            body.is_empty() && !head.contains("Content-Length"),
            "{head}"
        );
        assert_eq!(get(r.addr(), "/ok-t/_recorded").2, json!([]));
        assert_eq!(
            get(r.addr(), "/ok-t/_recorded_touch").2,
            json!([{"body": {"tag": "ann"}, "content_type": "application/json"}])
        );
    }

    #[test]
    fn answers_preflight_and_defaults_origin() {
        let r = recorder();
        let (status, head, _) = exchange(
            r.addr(),
            b"OPTIONS /ok/sales HTTP/1.1\r\nOrigin: http://shop.test\r\nAccess-Control-Request-Method: POST\r\n\
              Access-Control-Request-Headers: content-type\r\n\r\n",
        );
        assert_eq!(status, 204);
        for h in [
            "Access-Control-Allow-Origin: http://shop.test",
            "Access-Control-Allow-Methods: GET, POST, OPTIONS",
            "Access-Control-Allow-Headers: content-type",
        ] {
            assert!(head.contains(h), "{h} missing from {head}");
        }
        let (_, head, _) = get(r.addr(), "/ok/_recorded");
        assert!(
            head.contains("Access-Control-Allow-Origin: *\r\n"),
            "{head}"
        );
        assert!(r.recorded("ok").is_empty(), "a preflight is not a sale");
    }

    #[test]
    fn slow_scenarios_wait_but_do_not_block_others() {
        let r = recorder();
        let addr = r.addr();
        let started = Instant::now();
        let slow = thread::spawn(move || post(addr, "/slow-1/sales", "application/json", "{}"));
        thread::sleep(Duration::from_millis(100));
        let (status, _, _) = post(addr, "/ok-2/sales", "application/json", "{}");
        assert_eq!(status, 202);
        assert!(
            started.elapsed() < SLOW_DELAY,
            "a slow request blocked another connection"
        );
        let (status, _, _) = slow.join().unwrap();
        assert_eq!(status, 202);
        assert!(started.elapsed() >= SLOW_DELAY);
        assert_eq!(r.recorded("slow-1").len(), 1);
    }

    #[test]
    fn rejects_bad_input_without_dying() {
        let r = recorder();
        let cases: [(&[u8], u16); 8] = [
            (b"garbage\r\n\r\n", 400),
            (b"GET /a/b/c HTTP/1.1\r\n\r\n", 404),
            (b"GET /bad!name/_recorded HTTP/1.1\r\n\r\n", 404),
            (b"GET /ok/sales HTTP/1.1\r\n\r\n", 405),
            (
                b"POST /ok/_recorded HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
                405,
            ),
            (
                b"POST /ok/sales HTTP/1.1\r\nContent-Length: nope\r\n\r\n",
                400,
            ),
            (
                b"POST /ok/sales HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n",
                413,
            ),
            (
                b"POST /ok/sales HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                411,
            ),
        ];
        for (request, want) in cases {
            let (status, head, _) = exchange(r.addr(), request);
            assert_eq!(
                status,
                want,
                "{:?} -> {head}",
                String::from_utf8_lossy(request)
            );
        }
        // Error answers still carry CORS headers for the request's origin.
        let (status, head, _) = exchange(
            r.addr(),
            b"POST /ok/sales HTTP/1.1\r\nOrigin: http://shop.test\r\nContent-Length: 99999999\r\n\r\n",
        );
        assert_eq!(status, 413);
        assert!(
            head.contains("Access-Control-Allow-Origin: http://shop.test\r\n"),
            "{head}"
        );
        // Truncated body, a bare close, and non-UTF-8 bytes.
        exchange(
            r.addr(),
            b"POST /ok/sales HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc",
        );
        drop(TcpStream::connect(r.addr()).unwrap());
        exchange(r.addr(), b"POST /ok/sales HTTP/1.1\r\n\xff\xfe\r\n\r\n");
        let (status, _, body) = post(r.addr(), "/ok/sales", "application/octet-stream", "\u{1}x");
        assert_eq!(status, 202, "{body}");
        assert_eq!(
            r.recorded("ok"),
            vec![json!({"body": "\u{1}x", "content_type": "application/octet-stream"})]
        );
    }

    #[test]
    fn reads_bodies_sent_in_pieces_and_after_100_continue() {
        let r = recorder();
        let mut s = TcpStream::connect(r.addr()).unwrap();
        s.write_all(
            b"POST /ok-p/sales?x=1 HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 13\r\n\r\n",
        )
        .unwrap();
        let mut interim = [0u8; 25];
        s.read_exact(&mut interim).unwrap();
        assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
        s.write_all(b"{\"a\":").unwrap();
        thread::sleep(Duration::from_millis(50));
        s.write_all(b"[1,2,3]}").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        assert!(out.starts_with("HTTP/1.1 202 "), "{out}");
        assert_eq!(
            r.recorded("ok-p"),
            vec![json!({"body": {"a": [1, 2, 3]}, "content_type": null})]
        );
    }

    #[test]
    fn serves_many_connections_at_once() {
        let r = recorder();
        let addr = r.addr();
        let clients: Vec<_> = (0..16)
            .map(|i| {
                thread::spawn(move || {
                    post(
                        addr,
                        "/ok-many/sales",
                        "application/json",
                        &format!("{{\"n\":{i}}}"),
                    )
                    .0
                })
            })
            .collect();
        for c in clients {
            assert_eq!(c.join().unwrap(), 202);
        }
        assert_eq!(r.recorded("ok-many").len(), 16);
    }

    #[test]
    fn falls_back_when_the_preferred_port_is_taken() {
        let first = recorder();
        let second = Recorder::start_preferring(first.addr().port(), false).unwrap();
        assert_ne!(first.addr(), second.addr());
        assert!(second.url().starts_with("http://127.0.0.1:"));
        let port = first.addr().port();
        drop(first);
        // Dropped recorders stop serving.
        thread::sleep(Duration::from_millis(50));
        let refused = TcpStream::connect(("127.0.0.1", port))
            .and_then(|mut s| {
                s.set_read_timeout(Some(Duration::from_secs(2)))?;
                s.write_all(b"GET /ok/_recorded HTTP/1.1\r\n\r\n")?;
                let mut out = Vec::new();
                s.read_to_end(&mut out)?;
                Ok(out)
            })
            .map_or(true, |out| out.is_empty());
        assert!(refused);
    }
}
