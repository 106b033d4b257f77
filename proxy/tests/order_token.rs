//! Order tokens signed two ways are one token: the core's `sign_order_token` (a merchant's Rust
//! backend) and the npm package's `salebeacon/server` `signOrderToken` (WebCrypto, run here in
//! Node); the proxy takes the token with `require_order_token` and refuses it on another order.

mod common;

use common::*;
use serde_json::json;

const SECRET: &str = ORDER_SECRET;

/// `signOrderToken` from www/package/server.js, in Node, with a fixed clock.
fn sign_in_node(
    order_id: &str,
    total: Option<u64>,
    currency: &str,
    ttl: u64,
    now_ms: i64,
) -> String {
    let server_js = concat!(env!("CARGO_MANIFEST_DIR"), "/../www/package/server.js");
    let total = total.map_or("null".to_owned(), |t| t.to_string());
    let script = format!(
        "import({server_js:?}).then(m => m.signOrderToken({{orderId: {order_id:?}, total: {total}, \
         currency: {currency:?}}}, {{secret: {SECRET:?}, ttlSecs: {ttl}, now: {now_ms}}}))\
         .then(t => console.log(t), e => {{ console.error(e.message); process.exit(1); }})"
    );
    let out = std::process::Command::new("node")
        .args(["--input-type=module", "-e", &script])
        .output()
        .expect("node runs (the e2e suite needs it too)");
    assert!(
        out.status.success(),
        "node: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test]
async fn tokens_from_rust_and_node_are_one_and_the_proxy_takes_them() {
    let now_ms = salebeacon_proxy::now_ms();
    let now = u64::try_from(now_ms / 1000).unwrap();
    let expiry = now + 600;
    let core = salebeacon::order_token::sign_order_token(
        SECRET.as_bytes(),
        "TOK-N1",
        Some(12999),
        "USD",
        expiry,
    );
    let node = sign_in_node(
        "TOK-N1",
        Some(12999),
        "USD",
        600,
        i64::try_from(now * 1000).unwrap(),
    );
    assert_eq!(node, core, "WebCrypto and the Rust crate sign alike");
    let without_total = sign_in_node(
        "TOK-N2",
        None,
        "eur",
        600,
        i64::try_from(now * 1000).unwrap(),
    );
    assert_eq!(
        without_total,
        salebeacon::order_token::sign_order_token(SECRET.as_bytes(), "TOK-N2", None, "eur", expiry)
    );

    // The proxy, requiring tokens, takes a Node-signed sale and refuses it altered.
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(0).await;
    let mut cfg = config(&sb.base_url(), &dir.path().join("t.db"));
    cfg.order_token_secret = Some(salebeacon_proxy::Secret::new(SECRET));
    cfg.require_order_token = true;
    let p = proxy(cfg).await;
    let c = reqwest::Client::new();
    let mut s = sale("TOK-N1", "creator42");
    s["currency"] = json!("usd");
    s["order_token"] = json!(node);
    assert_eq!(post_sale(&c, &p.base_url(), &s).await.0, 202);
    let mut altered = sale("TOK-N3", "creator42");
    altered["order_token"] = json!(node);
    let (status, body) = post_sale(&c, &p.base_url(), &altered).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["issues"][0]["field"], "order_token");
    let mut none = sale("TOK-N4", "creator42");
    none["total"] = json!(1);
    assert_eq!(post_sale(&c, &p.base_url(), &none).await.0, 422);
    p.shutdown().await;
    sb.shutdown().await;
}
