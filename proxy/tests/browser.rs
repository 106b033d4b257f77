//! The browser-facing trust policy and endpoints, through the router with `oneshot`.

mod common;

use axum::body::Body;
use axum::http::{header, HeaderMap, Request, StatusCode};
use axum::Router;
use salebeacon::attribution::{Attribution, Model, Referral};
use salebeacon_proxy::config::RateLimit;
use salebeacon_proxy::outbox::Outbox;
use salebeacon_proxy::{app, now_ms, sign_order_token, AppState, ProxyConfig, Secret};
use serde_json::{json, Value};
use tower::ServiceExt;

const SHOP: &str = "https://shop.example.com";
const VID: &str = "0b6f3c1e-2a4d-4e5f-9a7b-1c2d3e4f5a6b";

struct Harness {
    app: Router,
    state: AppState,
    _dir: tempfile::TempDir,
}

async fn harness(tune: impl FnOnce(&mut ProxyConfig)) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let mut c = common::config("http://127.0.0.1:9/api/public/v1", &dir.path().join("o.db"));
    c.allowed_origins = vec![SHOP.into()];
    tune(&mut c);
    let c = c.validate().unwrap();
    let outbox = Outbox::open(&c.db, c.db_sync, c.batch_max).await.unwrap();
    let state = AppState::new(c, outbox);
    Harness {
        app: app(state.clone()),
        state,
        _dir: dir,
    }
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

async fn call(h: &Harness, req: Request<Body>) -> Reply {
    let r = h.app.clone().oneshot(req).await.unwrap();
    let status = r.status();
    let headers = r.headers().clone();
    let body = axum::body::to_bytes(r.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec();
    Reply {
        status,
        headers,
        body,
    }
}

fn post(path: &str) -> axum::http::request::Builder {
    Request::post(format!("/salebeacon{path}")).header(header::CONTENT_TYPE, "application/json")
}

fn sales_req(body: &Value) -> Request<Body> {
    post("/sales").body(Body::from(body.to_string())).unwrap()
}

async fn stored(h: &Harness, order_id: &str) -> Value {
    let v = h
        .state
        .outbox
        .get(order_id.into())
        .await
        .unwrap()
        .expect("sale in the outbox");
    serde_json::to_value(v.sale.body).unwrap()
}

fn aff_cookie(tag: &str, captured_at: i64) -> String {
    Attribution {
        referral: Referral::Tag(tag.into()),
        model: Model::LastClick,
        captured_at,
    }
    .encode()
}

#[tokio::test]
async fn queued_then_duplicate() {
    let h = harness(|_| {}).await;
    let r = call(&h, sales_req(&common::sale("B-1", "creator42"))).await;
    assert_eq!(
        (r.status, r.json()),
        (StatusCode::ACCEPTED, json!({"status": "queued"}))
    );
    let r = call(&h, sales_req(&common::sale("B-1", "creator42"))).await;
    assert_eq!(
        (r.status, r.json()),
        (StatusCode::OK, json!({"status": "duplicate"}))
    );
    let body = stored(&h, "B-1").await;
    assert_eq!(body["campaign_affiliate_id"], "creator42");
    assert!(
        body["occurred_at"].as_str().unwrap().ends_with('Z'),
        "the proxy stamps occurred_at"
    );
}

#[tokio::test]
async fn text_the_upstream_would_refuse_is_refused_at_intake() {
    // 200 × "é" is 200 characters but 400 bytes: Growi's reading (the sandbox's) refuses it, so
    // the proxy must not answer 202 and let the browser believe it was sent.
    let h = harness(|_| {}).await;
    let mut sale = common::sale("LEN-1", "creator42");
    sale["customer_name"] = json!("é".repeat(200));
    let r = call(&h, sales_req(&sale)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.json());
    assert_eq!(r.json()["issues"][0]["field"], "customer_name");
    assert!(h.state.outbox.get("LEN-1".into()).await.unwrap().is_none());
    sale["customer_name"] = json!("é".repeat(127));
    assert_eq!(
        call(&h, sales_req(&sale)).await.status,
        StatusCode::ACCEPTED
    );
}

#[tokio::test]
async fn a_visitor_uid_must_be_a_uuid_v4() {
    let h = harness(|_| {}).await;
    let mut sale = common::sale("VID-1", "creator42");
    sale["visitor_uid"] = json!("abc");
    let r = call(&h, sales_req(&sale)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json()["issues"][0]["field"], "visitor_uid");
    sale["visitor_uid"] = json!(VID.to_ascii_uppercase());
    assert_eq!(
        call(&h, sales_req(&sale)).await.status,
        StatusCode::ACCEPTED
    );
    assert_eq!(stored(&h, "VID-1").await["visitor_uid"], VID);
}

#[tokio::test]
async fn cors_for_configured_origins_only() {
    let h = harness(|_| {}).await;
    let preflight = |origin: &str| {
        Request::options("/salebeacon/sales")
            .header(header::ORIGIN, origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .body(Body::empty())
            .unwrap()
    };
    let r = call(&h, preflight(SHOP)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(r.header("access-control-allow-origin"), Some(SHOP));
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert!(r
        .header("access-control-allow-methods")
        .unwrap()
        .contains("POST"));
    assert!(r
        .header("access-control-allow-headers")
        .unwrap()
        .contains("content-type"));

    let r = call(&h, preflight("https://evil.example")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.header("access-control-allow-origin"), None);

    let with_origin = |origin: &str, id: &str| {
        post("/sales")
            .header(header::ORIGIN, origin)
            .header(header::HOST, "proxy.example.com")
            .body(Body::from(common::sale(id, "creator42").to_string()))
            .unwrap()
    };
    let r = call(&h, with_origin(SHOP, "C-1")).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(r.header("access-control-allow-origin"), Some(SHOP));
    assert_eq!(r.header("vary"), Some("Origin"));

    let r = call(&h, with_origin("https://evil.example", "C-2")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.header("access-control-allow-origin"), None);
    assert!(
        h.state.outbox.get("C-2".into()).await.unwrap().is_none(),
        "not queued"
    );

    // Same origin: no CORS headers needed, accepted.
    let r = call(&h, with_origin("https://proxy.example.com", "C-3")).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(r.header("access-control-allow-origin"), None);
}

#[tokio::test]
async fn body_limit_is_413() {
    let h = harness(|c| c.body_limit = 1024).await;
    let mut sale = common::sale("BIG-1", "creator42");
    sale["customer_name"] = json!("x".repeat(2000));
    let r = call(&h, sales_req(&sale)).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(r.json()["error"].as_str().unwrap().contains("1024"));
}

#[tokio::test]
async fn per_ip_rate_limit_with_retry_after() {
    let h = harness(|c| {
        c.rate_limit = RateLimit {
            per_minute: 6,
            burst: 2,
        };
        c.trust_forwarded_for = true;
    })
    .await;
    let from = |ip: &str, id: &str| {
        post("/sales")
            .header("x-forwarded-for", format!("203.0.113.9, {ip}"))
            .body(Body::from(common::sale(id, "creator42").to_string()))
            .unwrap()
    };
    assert_eq!(
        call(&h, from("198.51.100.1", "RL-1")).await.status,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        call(&h, from("198.51.100.1", "RL-2")).await.status,
        StatusCode::ACCEPTED
    );
    let r = call(&h, from("198.51.100.1", "RL-3")).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=10).contains(&retry), "{retry}");
    assert_eq!(
        call(&h, from("198.51.100.2", "RL-4")).await.status,
        StatusCode::ACCEPTED
    );

    // Without trust_forwarded_for, X-Forwarded-For does not pick a fresh bucket.
    let h = harness(|c| {
        c.rate_limit = RateLimit {
            per_minute: 6,
            burst: 1,
        }
    })
    .await;
    assert_eq!(
        call(&h, from("198.51.100.1", "RL-5")).await.status,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        call(&h, from("198.51.100.2", "RL-6")).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn signed_order_tokens() {
    let h = harness(|c| {
        c.order_token_secret = Some(Secret::new(common::ORDER_SECRET));
        c.require_order_token = true;
    })
    .await;
    let secret = common::ORDER_SECRET.as_bytes();
    let later = u64::try_from(now_ms() / 1000).unwrap() + 600;
    let mut s = common::sale("TOK-1", "creator42");
    s["order_token"] = json!(sign_order_token(secret, "TOK-1", Some(12999), "usd", later));
    assert_eq!(call(&h, sales_req(&s)).await.status, StatusCode::ACCEPTED);
    let stored = stored(&h, "TOK-1").await;
    assert!(
        stored.get("order_token").is_none(),
        "the token is not sent to Growi"
    );

    let issue_of = |r: &Reply| {
        let v = r.json();
        assert_eq!(v["error"], "invalid sale");
        assert_eq!(v["issues"][0]["field"], "order_token", "{v}");
        v["issues"][0]["message"].as_str().unwrap().to_owned()
    };
    // Tampered: the page raised nothing but changed the total.
    let mut t = common::sale("TOK-2", "creator42");
    t["total"] = json!(1);
    t["order_token"] = json!(sign_order_token(secret, "TOK-2", Some(12999), "usd", later));
    let r = call(&h, sales_req(&t)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(issue_of(&r).contains("does not match"));
    // Forged with another secret.
    let mut f = common::sale("TOK-3", "creator42");
    f["order_token"] = json!(sign_order_token(
        b"guessed-secret-000000",
        "TOK-3",
        Some(12999),
        "usd",
        later
    ));
    assert_eq!(
        call(&h, sales_req(&f)).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    // Expired.
    let mut e = common::sale("TOK-4", "creator42");
    e["order_token"] = json!(sign_order_token(
        secret,
        "TOK-4",
        Some(12999),
        "usd",
        later - 1200
    ));
    let r = call(&h, sales_req(&e)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(issue_of(&r).contains("expired"));
    // Missing while required.
    let r = call(&h, sales_req(&common::sale("TOK-5", "creator42"))).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(issue_of(&r).contains("required"));
}

#[tokio::test]
async fn merchant_decisions_are_refused_from_a_browser() {
    let h = harness(|_| {}).await;
    let mut s = common::sale("M-1", "creator42");
    s["commission"] = json!(100);
    s["due_at"] = json!("2030-01-01T00:00:00Z");
    s["status"] = json!("paid");
    let r = call(&h, sales_req(&s)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let v = r.json();
    let fields: Vec<&str> = v["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["due_at", "commission", "status"], "{v}");
    let metrics = call(
        &h,
        Request::get("/salebeacon/metrics")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert!(String::from_utf8_lossy(&metrics.body).contains("salebeacon_sales_invalid_total 1\n"));
}

#[tokio::test]
async fn bodies_text_plain_and_unusable() {
    let h = harness(|_| {}).await;
    let text = |ct: &str, body: Vec<u8>| {
        Request::post("/salebeacon/sales")
            .header(header::CONTENT_TYPE, ct)
            .body(Body::from(body))
            .unwrap()
    };
    let s = common::sale("T-1", "creator42").to_string().into_bytes();
    let r = call(&h, text("text/plain;charset=UTF-8", s)).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    for (body, says) in [
        (b"order_id=1&total=2".to_vec(), "not valid JSON"),
        (b"[1,2]".to_vec(), "must be a JSON object"),
        (vec![0xff, 0xfe, b'{', b'}'], "not UTF-8"),
        (Vec::new(), "empty"),
    ] {
        let r = call(&h, text("text/plain", body)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        let err = r.json()["error"].as_str().unwrap().to_owned();
        assert!(err.contains(says), "{err}");
    }
    let r = call(
        &h,
        text("application/x-www-form-urlencoded", b"a=1".to_vec()),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn cookies_attribute_when_the_body_does_not() {
    let h = harness(|_| {}).await;
    let cookie = format!(
        "sb_aff={}; sb_vid={VID}",
        aff_cookie("ana_lifestyle", now_ms() - 86_400_000)
    );
    let req = |id: &str, cookie: &str| {
        post("/sales")
            .header(header::COOKIE, cookie)
            .body(Body::from(
                json!({"order_id": id, "total": 500, "currency": "eur"}).to_string(),
            ))
            .unwrap()
    };
    assert_eq!(
        call(&h, req("CK-1", &cookie)).await.status,
        StatusCode::ACCEPTED
    );
    let body = stored(&h, "CK-1").await;
    assert_eq!(body["campaign_affiliate_id"], "ana_lifestyle");
    assert_eq!(body["visitor_uid"], VID);

    let expired = format!(
        "sb_aff={}",
        aff_cookie("ana_lifestyle", now_ms() - 31 * 86_400_000)
    );
    let r = call(&h, req("CK-2", &expired)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json()["issues"][0]["field"], "campaign_affiliate_id");

    // Only the server-set HttpOnly copies left (Safari dropped the script cookies).
    let server_only = format!(
        "sb_aff_h={}; sb_vid_h={VID}",
        aff_cookie("creator42", now_ms())
    );
    assert_eq!(
        call(&h, req("CK-3", &server_only)).await.status,
        StatusCode::ACCEPTED
    );
    let body = stored(&h, "CK-3").await;
    assert_eq!(body["campaign_affiliate_id"], "creator42");
    assert_eq!(body["visitor_uid"], VID);
}

#[tokio::test]
async fn implausible_occurred_at_is_replaced() {
    let h = harness(|_| {}).await;
    let now = now_ms();
    let at = |ms: i64| salebeacon::time::format_utc(ms);
    for (id, occurred, kept) in [
        ("OA-1", at(now - 3_600_000), true),
        ("OA-2", at(now + 86_400_000), false),
        ("OA-3", at(now - 8 * 86_400_000), false),
    ] {
        let mut s = common::sale(id, "creator42");
        s["occurred_at"] = json!(occurred);
        assert_eq!(call(&h, sales_req(&s)).await.status, StatusCode::ACCEPTED);
        let got = stored(&h, id).await["occurred_at"]
            .as_str()
            .unwrap()
            .to_owned();
        let got_ms = salebeacon::time::parse_rfc3339(&got).unwrap();
        if kept {
            assert_eq!(got, occurred);
        } else {
            assert!((got_ms - now).abs() < 60_000, "{id}: {got}");
        }
    }
}

#[tokio::test]
async fn pixel_always_answers_a_gif_and_records_valid_sales() {
    let h = harness(|_| {}).await;
    let get = |q: &str, cookie: Option<&str>| {
        let mut b = Request::get(format!("/salebeacon/pixel.gif?{q}"));
        if let Some(c) = cookie {
            b = b.header(header::COOKIE, c);
        }
        b.body(Body::empty()).unwrap()
    };
    for q in [
        "",
        "order_id=P-0&total=abc",
        "%zz=&&&",
        "order_id=P-0&total=1&currency=usd",
    ] {
        let r = call(&h, get(q, None)).await;
        assert_eq!(r.status, StatusCode::OK, "{q}");
        assert_eq!(r.header("content-type"), Some("image/gif"));
        assert!(r.header("cache-control").unwrap().contains("no-store"));
        assert_eq!(&r.body[..6], b"GIF89a");
    }
    assert!(
        h.state.outbox.get("P-0".into()).await.unwrap().is_none(),
        "unattributed: not queued"
    );
    let cookie = format!("sb_aff={}; sb_vid={VID}", aff_cookie("creator42", now_ms()));
    let r = call(
        &h,
        get(
            "order_id=P-1&total=4200&currency=usd&customer_email=ann%40example.com&cb=123",
            Some(&cookie),
        ),
    )
    .await;
    assert_eq!(&r.body[..6], b"GIF89a");
    let body = stored(&h, "P-1").await;
    assert_eq!(body["total"], 4200);
    assert_eq!(body["campaign_affiliate_id"], "creator42");
    assert_eq!(body["visitor_uid"], VID);
    assert!(
        body.get("customer_email").is_none(),
        "personal data from a URL is dropped"
    );
}

#[tokio::test]
async fn pixel_refusals_are_recorded_where_the_merchant_looks() {
    let h = harness(|_| {}).await;
    let cookie = format!("sb_aff={}; sb_vid={VID}", aff_cookie("creator42", now_ms()));
    for q in [
        "order_id=PR-1&total=49.99&currency=usd",
        "order_id=PR-2&total=100&currency=usd&colour=red",
        "order_id=PR-3&total=100",
    ] {
        let r = call(
            &h,
            Request::get(format!("/salebeacon/pixel.gif?{q}"))
                .header(header::COOKIE, &cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(&r.body[..6], b"GIF89a", "always the GIF");
    }
    // Unattributed: no cookie.
    let r = call(
        &h,
        Request::get("/salebeacon/pixel.gif?order_id=PR-4&total=100&currency=usd")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(&r.body[..6], b"GIF89a");
    let admin = |path: &str| {
        Request::get(format!("/salebeacon/admin{path}"))
            .header(
                header::AUTHORIZATION,
                format!("Bearer {}", common::ADMIN_TOKEN),
            )
            .body(Body::empty())
            .unwrap()
    };
    let r = call(&h, admin("/refused")).await;
    assert_eq!(r.status, StatusCode::OK);
    let list = r.json();
    assert_eq!(list["count"], 4, "{list}");
    let by_order = |id: &str| {
        list["refused"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["order_id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("{id} is listed: {list}"))
    };
    let one = by_order("PR-1");
    assert_eq!(
        (one["source"].as_str(), one["reason"].as_str()),
        (Some("pixel"), Some("invalid"))
    );
    assert_eq!(one["issues"][0]["field"], "total");
    assert_eq!(by_order("PR-2")["issues"][0]["field"], "colour");
    assert_eq!(by_order("PR-3")["issues"][0]["field"], "currency");
    assert_eq!(by_order("PR-4")["reason"], "unattributed");
    // Newest first.
    assert_eq!(list["refused"][0]["order_id"], "PR-4");
    let r = call(
        &h,
        Request::get("/salebeacon/metrics")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    let text = String::from_utf8(r.body.clone()).unwrap();
    assert!(
        text.contains("salebeacon_sales_refused_total{source=\"pixel\",reason=\"invalid\"} 3\n"),
        "{text}"
    );
    assert!(text
        .contains("salebeacon_sales_refused_total{source=\"pixel\",reason=\"unattributed\"} 1\n"));
    // The list needs the admin token like the rest of the admin API.
    let r = call(
        &h,
        Request::get("/salebeacon/admin/refused")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn touch_uses_the_trackers_cookie_domain_within_the_host_only() {
    let h = harness(|_| {}).await;
    let touch = |host: &str, domain: &str| {
        post("/touch")
            .header(header::HOST, host)
            .body(Body::from(
                json!({"vid": VID, "domain": domain}).to_string(),
            ))
            .unwrap()
    };
    let cookie = |r: &Reply| r.header("set-cookie").unwrap_or_default().to_owned();
    let r = call(&h, touch("www.shop.example", "shop.example")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(cookie(&r).contains("Domain=shop.example"), "{}", cookie(&r));
    for (host, domain) in [
        ("www.shop.example", "evil.example"),
        ("www.shop.example", "example"),
        ("www.shop.example", "op.example"),
        ("127.0.0.1:8080", "0.0.1"),
    ] {
        let r = call(&h, touch(host, domain)).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert!(
            !cookie(&r).contains("Domain="),
            "{host} {domain}: host-only, {}",
            cookie(&r)
        );
    }
}

#[tokio::test]
async fn get_touch_reads_back_what_the_cookies_hold() {
    let h = harness(|_| {}).await;
    let get = |cookie: Option<String>| {
        let mut b = Request::get("/salebeacon/touch");
        if let Some(c) = cookie {
            b = b.header(header::COOKIE, c);
        }
        b.body(Body::empty()).unwrap()
    };
    // Only the server-set copies are left: what Safari keeps after its 7-day cap.
    let aff = aff_cookie("creator42", now_ms());
    let r = call(&h, get(Some(format!("sb_aff_h={aff}; sb_vid_h={VID}")))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.json(), json!({"aff": aff, "vid": VID}));
    // Nothing, or nothing live: nulls.
    let r = call(&h, get(None)).await;
    assert_eq!(r.json(), json!({"aff": null, "vid": null}));
    let old = aff_cookie("creator42", now_ms() - 31 * 86_400_000);
    let r = call(&h, get(Some(format!("sb_aff_h={old}; sb_vid_h=nope")))).await;
    assert_eq!(r.json(), json!({"aff": null, "vid": null}));
}

#[tokio::test]
async fn touch_sets_http_only_cookies() {
    let h = harness(|c| c.cookie_domain = Some("example.com".into())).await;
    let aff = aff_cookie("creator42", now_ms());
    let touch = |body: Value, https: bool| {
        let mut b = post("/touch");
        if https {
            b = b.header("x-forwarded-proto", "https");
        }
        b.body(Body::from(body.to_string())).unwrap()
    };
    let r = call(&h, touch(json!({"aff": aff, "vid": VID}), true)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let cookies: Vec<&str> = r
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(cookies.len(), 2);
    // The server's copies have their own names: the tracker's script cookies stay writable.
    assert!(!cookies
        .iter()
        .any(|c| c.starts_with("sb_aff=") || c.starts_with("sb_vid=")));
    let aff_c = cookies.iter().find(|c| c.starts_with("sb_aff_h=")).unwrap();
    assert!(aff_c.starts_with(&format!("sb_aff_h={aff};")));
    for attr in [
        "HttpOnly",
        "SameSite=Lax",
        "Path=/",
        "Secure",
        "Domain=example.com",
        "Expires=",
    ] {
        assert!(aff_c.contains(attr), "{attr} in {aff_c}");
    }
    let max_age: i64 = aff_c
        .split("Max-Age=")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (30 * 86_400 - 60..=30 * 86_400).contains(&max_age),
        "window: {max_age}"
    );
    let vid_c = cookies.iter().find(|c| c.starts_with("sb_vid_h=")).unwrap();
    assert!(
        vid_c.contains("HttpOnly") && vid_c.contains("Max-Age=34560000"),
        "{vid_c}"
    );

    let r = call(&h, touch(json!({"vid": VID}), false)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(
        !r.header("set-cookie").unwrap().contains("Secure"),
        "plain http: no Secure"
    );

    let r = call(
        &h,
        touch(json!({"aff": "creator42<script>", "vid": "nope"}), false),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let v = r.json();
    assert_eq!(v["issues"].as_array().unwrap().len(), 2, "{v}");
    assert!(r.header("set-cookie").is_none());
    // One valid value is enough; the invalid one is ignored.
    let r = call(&h, touch(json!({"aff": "garbage", "vid": VID}), false)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(r.headers.get_all("set-cookie").iter().count(), 1);
}

#[tokio::test]
async fn admin_needs_the_token_and_sends_no_cors() {
    let h = harness(|_| {}).await;
    let get = |auth: Option<&str>| {
        let mut b =
            Request::get("/salebeacon/admin/sales?state=failed").header(header::ORIGIN, SHOP);
        if let Some(a) = auth {
            b = b.header(header::AUTHORIZATION, a);
        }
        b.body(Body::empty()).unwrap()
    };
    assert_eq!(call(&h, get(None)).await.status, StatusCode::UNAUTHORIZED);
    let wrong = call(&h, get(Some("Bearer admin-token-0123456789-secreT"))).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.header("www-authenticate").is_some());
    let ok = call(&h, get(Some(&format!("Bearer {}", common::ADMIN_TOKEN)))).await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.json()["count"], 0);
    assert_eq!(ok.header("access-control-allow-origin"), None);
    let missing = Request::get("/salebeacon/admin/sales/NOPE")
        .header(
            header::AUTHORIZATION,
            format!("Bearer {}", common::ADMIN_TOKEN),
        )
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(&h, missing).await.status, StatusCode::NOT_FOUND);
    // Server-side create may set commission.
    let create = Request::post("/salebeacon/admin/sales")
        .header(header::AUTHORIZATION, format!("Bearer {}", common::ADMIN_TOKEN))
        .body(Body::from(json!({"order_id": "SRV-1", "total": 100, "currency": "usd", "campaign_affiliate_id": "creator42", "commission": 7}).to_string()))
        .unwrap();
    assert_eq!(call(&h, create).await.status, StatusCode::ACCEPTED);
    assert_eq!(stored(&h, "SRV-1").await["commission"], 7);

    let disabled = harness(|c| c.admin_token = None).await;
    let r = call(
        &disabled,
        get(Some(&format!("Bearer {}", common::ADMIN_TOKEN))),
    )
    .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn health_and_metrics() {
    let h = harness(|_| {}).await;
    call(&h, sales_req(&common::sale("H-1", "creator42"))).await;
    let r = call(
        &h,
        Request::get("/salebeacon/healthz")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["status"], "ok");
    assert_eq!(r.json()["queue_depth"], 1);
    let r = call(
        &h,
        Request::get("/salebeacon/metrics")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    let text = String::from_utf8(r.body).unwrap();
    for line in [
        "salebeacon_queue_depth 1\n",
        "salebeacon_sales_accepted_total 1\n",
        "salebeacon_sales_duplicate_total 0\n",
        "salebeacon_upstream_sent_total 0\n",
        "salebeacon_upstream_failed_total 0\n",
        "salebeacon_upstream_retries_total 0\n",
        "salebeacon_upstream_429_total 0\n",
        "salebeacon_upstream_latency_seconds_count 0\n",
    ] {
        assert!(text.contains(line), "{line} in\n{text}");
    }
    h.state.outbox.close().await;
    let r = call(
        &h,
        Request::get("/salebeacon/healthz")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn delete_touch_expires_the_http_only_copies_wherever_they_were_set() {
    let h = harness(|_| {}).await;
    let forget = |query: &str| {
        Request::delete(format!("/salebeacon/touch{query}"))
            .header(header::HOST, "www.shop.example")
            .body(Body::empty())
            .unwrap()
    };
    let r = call(&h, forget("?domain=shop.example")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let set: Vec<&str> = r
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    for name in ["sb_aff_h=", "sb_vid_h="] {
        let mine: Vec<&&str> = set.iter().filter(|c| c.starts_with(name)).collect();
        assert_eq!(mine.len(), 2, "host-only and on the domain: {set:?}");
        assert!(mine.iter().all(|c| c.contains("Max-Age=0")), "{set:?}");
        assert!(
            mine.iter().any(|c| c.contains("Domain=shop.example")),
            "{set:?}"
        );
        assert!(mine.iter().any(|c| !c.contains("Domain=")), "{set:?}");
    }
    // A foreign domain is not one this request can touch: host-only only.
    let r = call(&h, forget("?domain=evil.example")).await;
    let set: Vec<&str> = r
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    assert!(set.iter().all(|c| !c.contains("evil")), "{set:?}");
}

#[tokio::test]
async fn a_pixel_from_a_browser_with_global_privacy_control_reads_no_tracking_cookie() {
    let h = harness(|_| {}).await;
    let cookie = format!("sb_aff={}; sb_vid={VID}", aff_cookie("creator42", now_ms()));
    let pixel = |q: &str| {
        Request::get(format!("/salebeacon/pixel.gif?{q}"))
            .header(header::COOKIE, &cookie)
            .header("sec-gpc", "1")
            .body(Body::empty())
            .unwrap()
    };
    let r = call(&h, pixel("order_id=GPC-1&total=100&currency=usd")).await;
    assert_eq!(&r.body[..6], b"GIF89a");
    assert!(
        h.state.outbox.get("GPC-1".into()).await.unwrap().is_none(),
        "the cookie's attribution is not used: unattributed"
    );
    // Named in the URL itself, it counts, without the visitor id.
    call(
        &h,
        pixel("order_id=GPC-2&total=100&currency=usd&campaign_affiliate_id=creator42"),
    )
    .await;
    let body = stored(&h, "GPC-2").await;
    assert_eq!(body["campaign_affiliate_id"], "creator42");
    assert!(body.get("visitor_uid").is_none(), "{body}");
}

/// Capture at the edge: the loader hands the URL's parameters to `POST /touch`, and the proxy
/// applies the core's capture rules and sets the tracker's cookies (script-readable) and their
/// HttpOnly copies, on the host's registrable domain.
#[tokio::test]
async fn touch_with_url_params_captures_at_the_edge() {
    let h = harness(|_| {}).await;
    let edge = |body: Value, cookie: Option<&str>| {
        let mut b = post("/touch").header(header::HOST, "www.shop.example.co.uk");
        if let Some(c) = cookie {
            b = b.header(header::COOKIE, c);
        }
        b.body(Body::from(body.to_string())).unwrap()
    };
    let set_cookies = |r: &Reply| -> Vec<String> {
        r.headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    };
    let named = |all: &[String], name: &str| {
        all.iter()
            .find(|c| c.starts_with(&format!("{name}=")))
            .cloned()
            .unwrap_or_else(|| panic!("{name} in {all:?}"))
    };

    // A first visit: a new visitor id, the creator's tag, four cookies.
    let r = call(
        &h,
        edge(json!({"url_params": [["ref", "creator42"]]}), None),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let v = r.json();
    let aff = v["aff"].as_str().expect("an attribution").to_owned();
    assert_eq!(
        Attribution::decode(&aff).map(|a| a.referral),
        Some(Referral::Tag("creator42".into()))
    );
    let vid = v["vid"].as_str().unwrap().to_owned();
    assert!(salebeacon::visitor::is_uuid_v4(&vid), "{vid}");
    assert_eq!(v["present"], json!(["ref"]));
    assert_eq!(v["warnings"], json!([]));
    let all = set_cookies(&r);
    assert_eq!(all.len(), 4, "{all:?}");
    let script = named(&all, "sb_aff");
    assert!(script.starts_with(&format!("sb_aff={aff};")), "{script}");
    assert!(
        !script.contains("HttpOnly"),
        "the tracker reads it: {script}"
    );
    assert!(script.contains("Domain=example.co.uk"), "{script}");
    assert!(named(&all, "sb_aff_h").contains("HttpOnly"));
    assert!(named(&all, "sb_vid").starts_with(&format!("sb_vid={vid};")));
    assert!(named(&all, "sb_vid_h").contains("HttpOnly"));

    // The next landing, first click: the stored attribution (from the cookie) and visitor stay.
    let cookie = format!("sb_aff={aff}; sb_vid={vid}");
    let r = call(
        &h,
        edge(
            json!({"url_params": [["ref", "other"]], "model": "first_click"}),
            Some(&cookie),
        ),
    )
    .await;
    let v = r.json();
    assert_eq!(
        (v["aff"].as_str(), v["vid"].as_str()),
        (Some(aff.as_str()), Some(vid.as_str()))
    );
    // Last click (the default) replaces it; the Growi pair wins over a tag.
    let r = call(
        &h,
        edge(
            json!({"url_params": [["growi_user_id", "7"], ["growi_campaign_id", "9"], ["ref", "other"]]}),
            Some(&cookie),
        ),
    )
    .await;
    let kept = Attribution::decode(r.json()["aff"].as_str().unwrap()).unwrap();
    assert_eq!(
        kept.referral,
        Referral::Growi {
            user_id: 7,
            campaign_id: 9
        }
    );
    // An invalid tag is a warning the loader prints; nothing to keep, the visitor id only.
    let r = call(&h, edge(json!({"url_params": [["ref", "bad tag!"]]}), None)).await;
    assert_eq!(r.status, StatusCode::OK);
    let v = r.json();
    assert_eq!(v["aff"], Value::Null);
    assert_eq!(v["present"], json!(["ref"]));
    assert!(
        v["warnings"][0]
            .as_str()
            .unwrap()
            .contains("ref=\"bad tag!\""),
        "{v}"
    );
    let all = set_cookies(&r);
    assert_eq!(all.len(), 2, "{all:?}");
    // The data-* attributes as written: a window in digits, "auto" for the registrable domain.
    let r = call(
        &h,
        edge(
            json!({"url_params": [["ref", "c"]], "window_days": "2", "domain": "auto"}),
            None,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    let script = named(&set_cookies(&r), "sb_aff");
    assert!(script.contains("Domain=example.co.uk"), "{script}");
    assert!(
        script.contains("Max-Age=172800"),
        "a 2-day window: {script}"
    );
    // An explicit cookie domain of the page's is used within the host; an operator's wins.
    let r = call(
        &h,
        edge(
            json!({"url_params": [["ref", "c"]], "domain": "shop.example.co.uk"}),
            None,
        ),
    )
    .await;
    assert!(named(&set_cookies(&r), "sb_aff").contains("Domain=shop.example.co.uk"));
    let h2 = harness(|c| c.cookie_domain = Some("example.net".into())).await;
    let r = call(&h2, edge(json!({"url_params": [["ref", "c"]]}), None)).await;
    assert!(named(&set_cookies(&r), "sb_aff").contains("Domain=example.net"));
}

#[tokio::test]
async fn touch_with_url_params_names_every_bad_field() {
    let h = harness(|_| {}).await;
    let r = call(
        &h,
        post("/touch")
            .body(Body::from(
                json!({"url_params": [["ref"]], "model": "linear", "window_days": "sixty", "domain": 5, "aff": "x"})
                    .to_string(),
            ))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let v = r.json();
    let mut fields: Vec<&str> = v["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["field"].as_str().unwrap())
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        ["aff", "domain", "model", "url_params", "window_days"],
        "{v}"
    );
    assert!(r.header("set-cookie").is_none());
    let r = call(
        &h,
        post("/touch")
            .body(Body::from(json!({"url_params": {"ref": "x"}}).to_string()))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["issues"][0]["field"], "url_params");
}
