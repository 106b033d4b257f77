//! The front in-process (`tower::ServiceExt::oneshot`): site files and their names, the injected
//! script and CSP hashes, the request log, the control API, the offline marker.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::response::Response;
use salebeacon_testserver::{app, DropConnection, Injection, LogEntry, Options, TestServer};
use std::path::Path;
use tower::ServiceExt;

const PAGE: &str = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<meta http-equiv=\"Content-Security-Policy\" content=\"script-src 'self' 'wasm-unsafe-eval'\">\n<title>Home</title></head><body><header>top</header><p>hi</p></body></html>\n";

fn site(dir: &Path) {
    std::fs::write(dir.join("index.html"), PAGE).unwrap();
    std::fs::write(dir.join("shop.js"), "export const x = 1;\n").unwrap();
    std::fs::write(dir.join("style.css"), "p{}\n").unwrap();
    std::fs::write(dir.join("m.wasm"), b"\0asm\x01\0\0\0").unwrap();
    std::fs::write(dir.join(".env"), "SECRET=1\n").unwrap();
    std::fs::create_dir(dir.join("dev")).unwrap();
    std::fs::write(dir.join("dev/index.html"), "<p>dev</p>").unwrap();
    std::fs::write(
        dir.join("dev/blank.html"),
        "<html><body>blank</body></html>",
    )
    .unwrap();
}

struct Fixture {
    _dir: tempfile::TempDir,
    _outside: tempfile::TempDir,
    state: TestServer,
}

fn fixture(inject: Option<&str>) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    site(dir.path());
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "outside").unwrap();
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(outside.path(), dir.path().join("out")).unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("secret.txt"),
            dir.path().join("leak.txt"),
        )
        .unwrap();
        std::os::unix::fs::symlink(dir.path().join("shop.js"), dir.path().join("alias.js"))
            .unwrap();
    }
    let mut options = Options::new(dir.path());
    options.inject = inject.map(|s| Injection::new(s).unwrap());
    Fixture {
        _dir: dir,
        _outside: outside,
        state: TestServer::new(options),
    }
}

async fn call(state: &TestServer, req: Request<Body>) -> Response {
    app(state.clone()).oneshot(req).await.unwrap()
}

async fn get(state: &TestServer, uri: &str) -> (StatusCode, Option<String>, String) {
    let r = call(state, Request::get(uri).body(Body::empty()).unwrap()).await;
    let status = r.status();
    let ct = r
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = axum::body::to_bytes(r.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, ct, String::from_utf8_lossy(&body).into_owned())
}

async fn log(state: &TestServer) -> Vec<LogEntry> {
    let r = call(
        state,
        Request::get("/__test/requests")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let body = axum::body::to_bytes(r.into_body(), usize::MAX)
        .await
        .unwrap();
    serde_json::from_slice(&body).unwrap()
}

#[tokio::test]
async fn serves_the_site_with_mime_types_and_index_pages() {
    let f = fixture(None);
    let cases = [
        ("/", "text/html; charset=utf-8", "<title>Home</title>"),
        ("/index.html", "text/html; charset=utf-8", "<p>hi</p>"),
        (
            "/shop.js",
            "text/javascript; charset=utf-8",
            "export const x",
        ),
        ("/style.css", "text/css; charset=utf-8", "p{}"),
        ("/m.wasm", "application/wasm", "asm"),
        ("/dev/", "text/html; charset=utf-8", "<p>dev</p>"),
        ("/dev", "text/html; charset=utf-8", "<p>dev</p>"),
        ("/dev/blank.html?x=1", "text/html; charset=utf-8", "blank"),
        ("/d%65v/blank.html", "text/html; charset=utf-8", "blank"),
    ];
    for (uri, ct, text) in cases {
        let (status, got_ct, body) = get(&f.state, uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        assert_eq!(got_ct.as_deref(), Some(ct), "{uri}");
        assert!(body.contains(text), "{uri}: {body}");
    }
    // Without --inject, pages are served as they are.
    assert_eq!(get(&f.state, "/").await.2, PAGE);
    let r = call(
        &f.state,
        Request::get("/shop.js").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(r.headers()[header::CACHE_CONTROL], "no-cache");
    let r = call(
        &f.state,
        Request::post("/index.html").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn names_stay_inside_the_folder() {
    let f = fixture(None);
    for uri in [
        "/../Cargo.toml",
        "/dev/../index.html",
        "/%2e%2e/secret.txt",
        "/dev%2Fblank.html",
        "/dev%2fblank.html",
        "/dev%5Cblank.html",
        "/.env",
        "/%2eenv",
        "/dev/%00",
        "/%ff.html",
        "/missing.html",
        "/out/secret.txt",
        "/leak.txt",
        "/C:%5Cx",
    ] {
        let (status, _, body) = get(&f.state, uri).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}: {body}");
        assert!(
            !body.contains("outside") && !body.contains("SECRET"),
            "{uri}"
        );
    }
    // A symlink that stays inside the folder is followed.
    let (status, _, body) = get(&f.state, "/alias.js").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("export const x"));
}

#[tokio::test]
async fn the_script_goes_first_in_head_with_its_hash_in_the_policy() {
    let script = "window.__sbLog=[];localStorage.setItem('demo:sandbox','http://127.0.0.1:4010')";
    let f = fixture(Some(script));
    let hash = Injection::new(script).unwrap().hash().to_owned();
    let (_, _, page) = get(&f.state, "/").await;
    assert!(
        page.starts_with(&format!(
            "<!doctype html>\n<html lang=\"en\"><head><script>{script}</script><meta charset"
        )),
        "{page}"
    );
    assert!(
        page.contains(&format!(
            "content=\"script-src 'self' 'wasm-unsafe-eval' {hash}\""
        )),
        "{page}"
    );
    assert!(page.contains("<header>top</header>"), "{page}");
    // A page without <head>: still first.
    let (_, _, blank) = get(&f.state, "/dev/blank.html").await;
    assert_eq!(
        blank,
        format!("<html><script>{script}</script><body>blank</body></html>")
    );
    // Scripts and styles are not pages.
    assert!(!get(&f.state, "/shop.js").await.2.contains(script));

    // ?csp=1: the strict header with the hash; without it, no header.
    let r = call(
        &f.state,
        Request::get("/?ref=creator42&csp=1")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(
        r.headers()[header::CONTENT_SECURITY_POLICY],
        format!("script-src 'self' 'wasm-unsafe-eval' {hash}").as_str()
    );
    let r = call(&f.state, Request::get("/").body(Body::empty()).unwrap()).await;
    assert!(r.headers().get(header::CONTENT_SECURITY_POLICY).is_none());
    let r = call(
        &f.state,
        Request::get("/shop.js?csp=1").body(Body::empty()).unwrap(),
    )
    .await;
    assert!(r.headers().get(header::CONTENT_SECURITY_POLICY).is_none());
}

#[tokio::test]
async fn the_log_records_requests_and_resets() {
    let f = fixture(None);
    get(&f.state, "/dev/blank.html?x=1").await;
    let post = Request::post("/salebeacon/sales")
        .header(header::HOST, "shop.test:1234")
        .header(header::ORIGIN, "http://shop.test:1234")
        .header(header::COOKIE, "sb_vid=abc")
        .header(header::CONTENT_TYPE, "text/plain;charset=UTF-8")
        .header("x-not-recorded", "1")
        .body(Body::from("{\"order_id\":\"ORD-1\"}"))
        .unwrap();
    let r = call(&f.state, post).await;
    // No --proxy: the front says so with a 502, as nginx would for a proxy that is down.
    assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
    let entries = log(&f.state).await;
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(entries[0].method, "GET");
    assert_eq!(entries[0].path, "/dev/blank.html?x=1");
    assert_eq!(entries[0].status, Some(200));
    assert_eq!(entries[0].body, None);
    assert_eq!(entries[1].method, "POST");
    assert_eq!(entries[1].path, "/salebeacon/sales");
    assert_eq!(entries[1].body.as_deref(), Some("{\"order_id\":\"ORD-1\"}"));
    assert_eq!(entries[1].headers["host"], "shop.test:1234");
    assert_eq!(entries[1].headers["cookie"], "sb_vid=abc");
    assert!(!entries[1].headers.contains_key("x-not-recorded"));
    assert_eq!(entries[1].status, Some(502));
    assert!(entries[0].seq < entries[1].seq && entries[0].at_ms <= entries[1].at_ms);

    let r = call(
        &f.state,
        Request::post("/__test/reset").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(
        log(&f.state).await.is_empty(),
        "the control API is not logged"
    );
}

/// `PUT /__test/{name}` with `body`: the switch's answer.
async fn switch(state: &TestServer, name: &str, body: &'static str) -> StatusCode {
    call(
        state,
        Request::put(format!("/__test/{name}"))
            .body(Body::from(body))
            .unwrap(),
    )
    .await
    .status()
}

#[tokio::test]
async fn the_offline_switch_marks_api_calls_only() {
    let f = fixture(None);
    assert_eq!(
        switch(&f.state, "offline", "maybe").await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        switch(&f.state, "offline", "true").await,
        StatusCode::NO_CONTENT
    );
    assert!(f.state.offline());
    let (_, _, on) = get(&f.state, "/__test/offline").await;
    assert_eq!(on, "true");

    let api = call(
        &f.state,
        Request::post("/salebeacon/sales")
            .body(Body::from("{}"))
            .unwrap(),
    )
    .await;
    assert!(api.extensions().get::<DropConnection>().is_some());
    let touch = call(
        &f.state,
        Request::get("/salebeacon/touch")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert!(touch.extensions().get::<DropConnection>().is_some());
    // The tracker's files and the site's pages are not API calls.
    let file = call(
        &f.state,
        Request::get("/salebeacon/salebeacon.js")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert!(file.extensions().get::<DropConnection>().is_none());
    let page = call(&f.state, Request::get("/").body(Body::empty()).unwrap()).await;
    assert!(page.extensions().get::<DropConnection>().is_none());
    assert_eq!(page.status(), StatusCode::OK);
    let statuses: Vec<_> = log(&f.state).await.iter().map(|e| e.status).collect();
    assert_eq!(statuses, [Some(0), Some(0), Some(502), Some(200)]);

    switch(&f.state, "offline", "false").await;
    let api = call(
        &f.state,
        Request::post("/salebeacon/sales")
            .body(Body::from("{}"))
            .unwrap(),
    )
    .await;
    assert!(api.extensions().get::<DropConnection>().is_none());
}

#[tokio::test]
async fn the_hold_switch_keeps_api_calls_waiting_then_drops_them() {
    let f = fixture(None);
    assert_eq!(
        switch(&f.state, "hold", "soon").await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        switch(&f.state, "hold", "true").await,
        StatusCode::NO_CONTENT
    );
    assert!(f.state.held());
    // A file still loads at once while API calls wait.
    let file = call(
        &f.state,
        Request::get("/salebeacon/salebeacon.js")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert!(file.extensions().get::<DropConnection>().is_none());
    let state = f.state.clone();
    let waiting = tokio::spawn(async move {
        call(
            &state,
            Request::post("/salebeacon/sales")
                .body(Body::from("{}"))
                .unwrap(),
        )
        .await
    });
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    assert!(!waiting.is_finished(), "the API call waits while held");
    let logged = log(&f.state).await;
    assert_eq!(
        logged.last().map(|e| e.status),
        Some(None),
        "recorded, unanswered"
    );
    switch(&f.state, "hold", "false").await;
    let answer = waiting.await.unwrap();
    assert!(
        answer.extensions().get::<DropConnection>().is_some(),
        "dropped once the hold is lifted"
    );
    assert_eq!(log(&f.state).await.last().map(|e| e.status), Some(Some(0)));
}
