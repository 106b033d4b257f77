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
