//! The tracker's files and the site, served by a real proxy over HTTP: MIME types, ETags and
//! revalidation, caching by name, and no way out of the configured folders.

mod common;

use common::{config, proxy, sale, sandbox};
use reqwest::header;

#[tokio::test]
async fn serves_the_package_and_the_site_with_the_right_headers() {
    let tmp = tempfile::tempdir().unwrap();
    let pkg = tmp.path().join("pkg");
    let site = tmp.path().join("site");
    std::fs::create_dir_all(site.join("dev")).unwrap();
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::write(pkg.join("salebeacon.js"), "/* loader */").unwrap();
    std::fs::write(pkg.join("salebeacon_wasm_bg.wasm"), b"\0asm\x01\0\0\0").unwrap();
    std::fs::write(
        pkg.join("salebeacon_wasm_bg.0123abcd.wasm"),
        b"\0asm\x01\0\0\0",
    )
    .unwrap();
    std::fs::write(tmp.path().join("secret.txt"), "outside").unwrap();
    std::fs::write(site.join("index.html"), "<h1>shop</h1>").unwrap();
    std::fs::write(site.join("dev/queue.html"), "<p>q</p>").unwrap();
    let sb = sandbox(0).await;
    let mut c = config(&sb.base_url(), &tmp.path().join("outbox.sqlite3"));
    c.static_dir = Some(pkg);
    c.site_dir = Some(site);
    let p = proxy(c).await;
    let root = format!("http://{}", p.addr());
    let http = reqwest::Client::new();

    let r = http
        .get(format!("{root}/salebeacon/salebeacon.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()[header::CONTENT_TYPE],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(r.headers()[header::CACHE_CONTROL], "no-cache");
    let etag = r.headers()[header::ETAG].clone();
    assert_eq!(r.text().await.unwrap(), "/* loader */");
    // A revisit with the ETag costs a 304 and no body.
    let r = http
        .get(format!("{root}/salebeacon/salebeacon.js"))
        .header(header::IF_NONE_MATCH, etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);

    let r = http
        .get(format!("{root}/salebeacon/salebeacon_wasm_bg.wasm"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()[header::CONTENT_TYPE], "application/wasm");
    let r = http
        .get(format!(
            "{root}/salebeacon/salebeacon_wasm_bg.0123abcd.wasm"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()[header::CACHE_CONTROL],
        "public, max-age=31536000, immutable"
    );

    for escape in [
        "/salebeacon/..%2Fsecret.txt",
        "/salebeacon/%2e%2e/secret.txt",
        "/../secret.txt",
        "/dev/../../secret.txt",
    ] {
        let r = http.get(format!("{root}{escape}")).send().await.unwrap();
        assert_ne!(r.status(), 200, "{escape}");
    }
    assert_eq!(
        http.get(format!("{root}/salebeacon/nope.js"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    let r = http.get(format!("{root}/")).send().await.unwrap();
    assert_eq!(
        r.headers()[header::CONTENT_TYPE],
        "text/html; charset=utf-8"
    );
    assert_eq!(r.text().await.unwrap(), "<h1>shop</h1>");
    let r = http
        .get(format!("{root}/dev/queue.html"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "<p>q</p>");

    // The API routes still answer beside the files.
    let (status, _) = common::post_sale(
        &http,
        &format!("{root}/salebeacon"),
        &sale("ST-1", "creator42"),
    )
    .await;
    assert_eq!(status, 202);
    assert_eq!(
        http.get(format!("{root}/salebeacon/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

/// Sends `GET {path}` exactly as written (no client-side normalisation of `..` or `%2e`), returns
/// the status and the body.
async fn raw_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

#[tokio::test]
async fn no_name_reaches_a_file_outside_the_folders() {
    let tmp = tempfile::tempdir().unwrap();
    let pkg = tmp.path().join("pkg");
    let site = tmp.path().join("site");
    std::fs::create_dir_all(site.join("dev")).unwrap();
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::write(pkg.join("salebeacon.js"), "/* loader */").unwrap();
    std::fs::write(site.join("index.html"), "<h1>shop</h1>").unwrap();
    std::fs::write(site.join("dev/queue.html"), "<p>q</p>").unwrap();
    let outside = tmp.path().join("secret.txt");
    std::fs::write(&outside, "TOP-SECRET-OUTSIDE").unwrap();
    std::fs::create_dir_all(tmp.path().join("elsewhere")).unwrap();
    std::fs::write(tmp.path().join("elsewhere/x.js"), "TOP-SECRET-OUTSIDE").unwrap();
    // Symlinks inside the folders that lead out of them.
    std::os::unix::fs::symlink(&outside, pkg.join("link.js")).unwrap();
    std::os::unix::fs::symlink(tmp.path().join("elsewhere"), site.join("away")).unwrap();
    std::os::unix::fs::symlink(&outside, site.join("link.html")).unwrap();
    // The proxy's own database, and a dot file, inside the site folder must not be served either.
    std::fs::write(site.join(".env"), "TOP-SECRET-OUTSIDE").unwrap();
    let sb = sandbox(0).await;
    let db = tmp.path().join("outbox.sqlite3");
    let mut c = config(&sb.base_url(), &db);
    c.static_dir = Some(pkg);
    c.site_dir = Some(site);
    let p = proxy(c).await;
    let secret = outside.display().to_string();
    let enc = |s: &str| s.replace('/', "%2F");
    let mut attempts: Vec<String> = Vec::new();
    for route in ["/salebeacon/", "/", "/dev/"] {
        for name in [
            enc(&secret),
            secret.replace('/', "%2f"),
            format!("%2F{}", enc(&secret)),
            "..%2Fsecret.txt".into(),
            "..%2F..%2Fsecret.txt".into(),
            "%2e%2e%2fsecret.txt".into(),
            "%2E%2E%2Fsecret.txt".into(),
            "%2e%2e/secret.txt".into(),
            "%2e%2e/%2e%2e/secret.txt".into(),
            "../secret.txt".into(),
            "../../secret.txt".into(),
            "..%5Csecret.txt".into(),
            "..%5C..%5Csecret.txt".into(),
            "..\\secret.txt".into(),
            "%252e%252e%252fsecret.txt".into(),
            "%c0%ae%c0%ae%c0%afsecret.txt".into(),
            "..%00/secret.txt".into(),
            "salebeacon.js%00".into(),
            "%2Fproc%2Fself%2Fenviron".into(),
            "%2Fetc%2Fpasswd".into(),
            "%2F%2Fetc%2Fpasswd".into(),
            "/etc/passwd".into(),
            "link.js".into(),
            "link.html".into(),
            "away/x.js".into(),
            "away%2Fx.js".into(),
            ".env".into(),
            "%2eenv".into(),
            "outbox.sqlite3".into(),
            "..%2Foutbox.sqlite3".into(),
            "C:%5Csecret.txt".into(),
        ] {
            attempts.push(format!("{route}{name}"));
        }
    }
    attempts.push("//etc/passwd".into());
    attempts.push("/salebeacon/%2e%2e%2f%2e%2e%2f%2e%2e%2fproc/self/environ".into());
    for path in &attempts {
        let (status, body) = raw_get(p.addr(), path).await;
        assert!(
            !body.contains("TOP-SECRET-OUTSIDE")
                && !body.contains("root:x:0")
                && !body.contains("SQLite format")
                && !body.contains(common::API_KEY),
            "{path} leaked a file ({status})"
        );
        assert!(matches!(status, 400 | 404), "{path} answered {status}");
    }
    // What is inside is still served, also percent-encoded.
    assert_eq!(raw_get(p.addr(), "/salebeacon/salebeacon.js").await.0, 200);
    assert_eq!(
        raw_get(p.addr(), "/salebeacon/salebeacon%2Ejs").await.0,
        200
    );
    assert_eq!(raw_get(p.addr(), "/dev/queue.html").await.0, 200);
    assert_eq!(raw_get(p.addr(), "/dev/").await.0, 404);
    assert_eq!(raw_get(p.addr(), "/").await.0, 200);
}

#[tokio::test]
async fn brotli_copies_go_to_browsers_that_take_brotli() {
    let tmp = tempfile::tempdir().unwrap();
    let pkg = tmp.path().join("pkg");
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::write(pkg.join("index.js"), "/* the tracker */").unwrap();
    std::fs::write(pkg.join("index.js.br"), b"BROTLI-BYTES").unwrap();
    std::fs::write(pkg.join("plain.js"), "/* no copy */").unwrap();
    // A brotli "copy" that is a symlink out of the folder is not served.
    std::fs::write(tmp.path().join("secret"), "TOP-SECRET-OUTSIDE").unwrap();
    std::fs::write(pkg.join("trap.js"), "/* trap */").unwrap();
    std::os::unix::fs::symlink(tmp.path().join("secret"), pkg.join("trap.js.br")).unwrap();
    let sb = sandbox(0).await;
    let mut c = config(&sb.base_url(), &tmp.path().join("outbox.sqlite3"));
    c.static_dir = Some(pkg);
    let p = proxy(c).await;
    let root = format!("http://{}/salebeacon", p.addr());
    let http = reqwest::Client::builder().no_brotli().build().unwrap();
    let get = |file: &str, enc: Option<&str>| {
        let mut r = http.get(format!("{root}/{file}"));
        if let Some(e) = enc {
            r = r.header(header::ACCEPT_ENCODING, e);
        }
        r.send()
    };
    let r = get("index.js", Some("gzip, deflate, br")).await.unwrap();
    assert_eq!(r.headers()[header::CONTENT_ENCODING], "br");
    assert_eq!(r.headers()[header::VARY], "Accept-Encoding");
    assert_eq!(
        r.headers()[header::CONTENT_TYPE],
        "text/javascript; charset=utf-8"
    );
    let etag = r.headers()[header::ETAG].clone();
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"BROTLI-BYTES");
    let r = http
        .get(format!("{root}/index.js"))
        .header(header::ACCEPT_ENCODING, "br")
        .header(header::IF_NONE_MATCH, etag.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        304,
        "the brotli copy revalidates with its own ETag"
    );
    for enc in [None, Some("gzip"), Some("br;q=0, gzip")] {
        let r = get("index.js", enc).await.unwrap();
        assert!(
            r.headers().get(header::CONTENT_ENCODING).is_none(),
            "{enc:?}"
        );
        assert_ne!(r.headers()[header::ETAG], etag);
        assert_eq!(r.text().await.unwrap(), "/* the tracker */");
    }
    let r = get("plain.js", Some("br")).await.unwrap();
    assert!(r.headers().get(header::CONTENT_ENCODING).is_none());
    let r = get("trap.js", Some("br")).await.unwrap();
    assert!(r.headers().get(header::CONTENT_ENCODING).is_none());
    assert_eq!(r.text().await.unwrap(), "/* trap */");
    p.shutdown().await;
    sb.shutdown().await;
}

#[tokio::test]
async fn a_page_on_the_proxy_origin_gets_the_loader_built_for_its_mark() {
    let tmp = tempfile::tempdir().unwrap();
    let pkg = tmp.path().join("pkg");
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::write(pkg.join("salebeacon.js"), "/* checks */").unwrap();
    std::fs::write(pkg.join("salebeacon.js.br"), b"BR-CHECKS").unwrap();
    std::fs::write(pkg.join("salebeacon.quiet.js"), "/* none waits */").unwrap();
    std::fs::write(pkg.join("salebeacon.waiting.js"), "/* a sale waits */").unwrap();
    let sb = sandbox(0).await;
    let mut c = config(&sb.base_url(), &tmp.path().join("outbox.sqlite3"));
    c.static_dir = Some(pkg.clone());
    let p = proxy(c).await;
    let url = format!("http://{}/salebeacon/salebeacon.js", p.addr());
    let http = reqwest::Client::builder().no_brotli().build().unwrap();
    let get = |site: Option<&str>, cookie: Option<&str>, etag: Option<&header::HeaderValue>| {
        let mut r = http.get(&url);
        if let Some(s) = site {
            r = r.header("sec-fetch-site", s);
        }
        if let Some(c) = cookie {
            r = r.header(header::COOKIE, c);
        }
        if let Some(e) = etag {
            r = r.header(header::IF_NONE_MATCH, e.clone());
        }
        r.send()
    };
    let quiet = get(Some("same-origin"), Some("sb_aff=x"), None)
        .await
        .unwrap();
    assert_eq!(quiet.status(), 200);
    assert_eq!(
        quiet.headers()[header::VARY],
        "Accept-Encoding, Cookie, Sec-Fetch-Site"
    );
    assert_eq!(quiet.headers()[header::CACHE_CONTROL], "no-cache");
    assert_eq!(
        quiet.headers()[header::CONTENT_TYPE],
        "text/javascript; charset=utf-8"
    );
    let quiet_tag = quiet.headers()[header::ETAG].clone();
    assert_eq!(quiet.text().await.unwrap(), "/* none waits */");
    let r = get(Some("same-origin"), Some("a=1; sb_wait=1"), None)
        .await
        .unwrap();
    let waiting_tag = r.headers()[header::ETAG].clone();
    assert_eq!(r.text().await.unwrap(), "/* a sale waits */");
    assert_ne!(quiet_tag, waiting_tag, "each variant has its own ETag");
    // Revalidation: the cached variant is still the right one (304), or the other is sent.
    let r = get(Some("same-origin"), None, Some(&quiet_tag))
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    let r = get(Some("same-origin"), Some("sb_wait=1"), Some(&quiet_tag))
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "a sale now waits: the other loader");
    assert_eq!(r.text().await.unwrap(), "/* a sale waits */");
    // Another origin (its cookies are not this proxy's to see) or no Fetch Metadata: the loader
    // that checks the mark itself, whatever the request carries; brotli as usual.
    for (site, cookie) in [
        (Some("cross-site"), Some("sb_wait=1")),
        (Some("same-site"), None),
        (None, Some("sb_wait=1")),
        (None, None),
    ] {
        let r = get(site, cookie, None).await.unwrap();
        assert_eq!(
            r.headers()[header::VARY],
            "Accept-Encoding, Cookie, Sec-Fetch-Site"
        );
        assert_eq!(
            r.text().await.unwrap(),
            "/* checks */",
            "{site:?} {cookie:?}"
        );
    }
    let r = http
        .get(&url)
        .header("sec-fetch-site", "cross-site")
        .header(header::ACCEPT_ENCODING, "br")
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"BR-CHECKS");
    // The variants' own names are plain files, revalidated like the loader.
    let r = http
        .get(format!(
            "http://{}/salebeacon/salebeacon.quiet.js",
            p.addr()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()[header::VARY], "Accept-Encoding");
    assert_eq!(r.text().await.unwrap(), "/* none waits */");
    // A package built before the variants: every page gets the loader that checks.
    std::fs::remove_file(pkg.join("salebeacon.quiet.js")).unwrap();
    let r = get(Some("same-origin"), None, None).await.unwrap();
    assert_eq!(r.text().await.unwrap(), "/* checks */");
    p.shutdown().await;
    sb.shutdown().await;
}
