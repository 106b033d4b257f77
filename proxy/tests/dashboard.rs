//! The dashboard's server side over real HTTP: its files and their security headers, sign-in
//! to a session cookie, the CSRF checks on changes, sign-out; and the admin API it uses: list
//! filters, the summary, and erasure of a person's data. (The page itself is driven in a real
//! browser by `www/e2e/tests/dashboard.test.mjs`.)

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::Duration;

const BASE_PATH: &str = "/salebeacon";

struct Signed {
    cookie: String,
    csrf: String,
}

async fn sign_in(c: &reqwest::Client, base: &str, token: &str) -> (u16, Option<Signed>, String) {
    let r = c
        .post(format!("{base}/admin/session"))
        .json(&json!({ "token": token }))
        .send()
        .await
        .expect("sign-in answers");
    let status = r.status().as_u16();
    let set = r
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    let signed = body["csrf"].as_str().map(|csrf| Signed {
        cookie: set.split(';').next().unwrap_or("").to_owned(),
        csrf: csrf.to_owned(),
    });
    (status, signed, set)
}

#[tokio::test]
async fn the_dashboards_files_carry_a_strict_policy() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(0).await;
    let p = proxy(config(&sb.base_url(), &dir.path().join("d.db"))).await;
    let c = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let root = p.base_url();
    let r = c.get(format!("{root}/admin")).send().await.unwrap();
    assert_eq!(r.status(), 308);
    assert_eq!(r.headers()["location"], format!("{BASE_PATH}/admin/"));
    for (path, kind) in [
        ("/admin/", "text/html"),
        ("/admin/app.js", "text/javascript"),
        ("/admin/app.css", "text/css"),
    ] {
        let r = c.get(format!("{root}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let h = r.headers();
        assert!(
            h["content-type"].to_str().unwrap().starts_with(kind),
            "{path}"
        );
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("default-src 'none'")
                && csp.contains("script-src 'self'")
                && !csp.contains("unsafe"),
            "{csp}"
        );
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["cache-control"], "no-store");
    }
    // No inline script or style, and nothing from elsewhere, in the page itself.
    let html = c
        .get(format!("{root}/admin/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!html.contains("<script>") && !html.contains("style=") && !html.contains("http"));
    p.shutdown().await;
    sb.shutdown().await;
}

#[tokio::test]
async fn a_session_signs_in_checks_csrf_and_signs_out() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(0).await;
    let p = proxy(config(&sb.base_url(), &dir.path().join("s.db"))).await;
    let c = reqwest::Client::new();
    let base = p.base_url();
    assert_eq!(
        post_sale(&c, &base, &sale("DASH-1", "creator42")).await.0,
        202
    );

    // A wrong token: 401, no cookie. Without a cookie, not signed in; nor is the API open.
    let (status, signed, set) = sign_in(&c, &base, "not-the-admin-token").await;
    assert_eq!((status, signed.is_none(), set.as_str()), (401, true, ""));
    let r = c.get(format!("{base}/admin/session")).send().await.unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"signed_in": false})
    );
    let r = c.get(format!("{base}/admin/sales")).send().await.unwrap();
    assert_eq!(r.status(), 401);

    let (status, signed, set) = sign_in(&c, &base, ADMIN_TOKEN).await;
    assert_eq!(status, 200);
    let s = signed.expect("a session");
    for attribute in [
        "HttpOnly",
        "SameSite=Strict",
        &format!("Path={BASE_PATH}/admin"),
    ] {
        assert!(set.contains(attribute), "{attribute} in {set}");
    }
    assert!(!set.contains(ADMIN_TOKEN), "the token is not the cookie");
    let with = |rb: reqwest::RequestBuilder| rb.header("cookie", &s.cookie);

    // Reads need only the cookie.
    let r = with(c.get(format!("{base}/admin/sales/DASH-1")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = with(c.get(format!("{base}/admin/session")))
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["csrf"], s.csrf.as_str());

    // A change without the CSRF token, or from another origin or site, is refused.
    let change = |extra: &[(&str, &str)]| {
        let mut rb = with(c.patch(format!("{base}/admin/sales/DASH-1")))
            .json(&json!({"status": "cancelled"}));
        for (k, v) in extra {
            rb = rb.header(*k, *v);
        }
        rb
    };
    assert_eq!(change(&[]).send().await.unwrap().status(), 403);
    assert_eq!(
        change(&[("x-csrf-token", "0".repeat(64).as_str())])
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        change(&[
            ("x-csrf-token", s.csrf.as_str()),
            ("origin", "https://attacker.example")
        ])
        .send()
        .await
        .unwrap()
        .status(),
        403
    );
    assert_eq!(
        change(&[
            ("x-csrf-token", s.csrf.as_str()),
            ("sec-fetch-site", "cross-site")
        ])
        .send()
        .await
        .unwrap()
        .status(),
        403
    );
    // With it, from this origin: the cancellation is queued.
    let host = base
        .trim_end_matches(BASE_PATH)
        .trim_start_matches("http://")
        .to_owned();
    let r = change(&[
        ("x-csrf-token", s.csrf.as_str()),
        ("origin", &format!("http://{host}")),
        ("sec-fetch-site", "same-origin"),
    ])
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 202, "{:?}", r.text().await);

    // A sign-in from another site is refused (login CSRF).
    let r = c
        .post(format!("{base}/admin/session"))
        .header("sec-fetch-site", "cross-site")
        .json(&json!({ "token": ADMIN_TOKEN }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // Sign-out clears the cookie.
    let r = with(c.delete(format!("{base}/admin/session")))
        .header("x-csrf-token", &s.csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let cleared = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    p.shutdown().await;

    // A session minted under one admin token means nothing under another.
    let mut cfg = config(&sb.base_url(), &dir.path().join("s.db"));
    cfg.admin_token = Some(salebeacon_proxy::Secret::new(
        "another-admin-token-9876543210",
    ));
    let p = proxy(cfg).await;
    let r = c
        .get(format!("{}/admin/sales", p.base_url()))
        .header("cookie", &s.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    p.shutdown().await;
    sb.shutdown().await;
}

#[tokio::test]
async fn the_list_filters_and_names_every_bad_filter() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(0).await;
    let mut cfg = config(&sb.base_url(), &dir.path().join("f.db"));
    // Keep everything queued while the list is read.
    cfg.growi_api_key = salebeacon_proxy::Secret::new("sk_wrong_key");
    cfg.auth_pause = Duration::from_secs(60);
    let p = proxy(cfg).await;
    let c = reqwest::Client::new();
    let base = p.base_url();
    for (id, tag) in [
        ("ORD-A1", "creator42"),
        ("ord-a2", "creator42"),
        ("ORD-B1", "other7"),
    ] {
        assert_eq!(post_sale(&c, &base, &sale(id, tag)).await.0, 202);
    }
    let ids = |v: &Value| -> Vec<String> {
        v["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["order_id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, v) = admin_get(&c, &base, "/sales?order_id=ord&order=newest").await;
    assert_eq!(ids(&v), ["ORD-B1", "ord-a2", "ORD-A1"]);
    let (_, v) = admin_get(&c, &base, "/sales?order_id=ORD-a").await;
    assert_eq!(ids(&v), ["ORD-A1", "ord-a2"], "contains, ignoring case");
    let (_, v) = admin_get(&c, &base, "/sales?affiliate=other7").await;
    assert_eq!(ids(&v), ["ORD-B1"]);
    let today = salebeacon::time::format_utc(salebeacon_proxy::now_ms());
    let today = &today[..10];
    let (_, v) = admin_get(
        &c,
        &base,
        &format!("/sales?since={today}&until={today}&state=queued&kind=create"),
    )
    .await;
    assert_eq!(ids(&v).len(), 3);
    let (_, v) = admin_get(&c, &base, "/sales?until=2001-01-01").await;
    assert_eq!(ids(&v).len(), 0);
    let (status, v) = admin_get(
        &c,
        &base,
        "/sales?state=lost&kind=refund&since=yesterday&order=sideways",
    )
    .await;
    assert_eq!(status, 400);
    let e = v["error"].as_str().unwrap();
    for named in ["state", "kind", "since", "order"] {
        assert!(e.contains(named), "{named} in {e}");
    }
    let (status, v) = admin_get(&c, &base, "/summary").await;
    assert_eq!(status, 200);
    assert_eq!(
        (v["queue_depth"].clone(), v["failed"].clone()),
        (json!(3), json!(0))
    );
    assert!(v["done_by"].as_str().unwrap() > v["now"].as_str().unwrap());
    p.shutdown().await;
    sb.shutdown().await;
}

#[tokio::test]
async fn erasing_a_person_removes_them_before_growi_sees_them() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(0).await;
    // Growi unreachable while the erasure request comes in.
    sb.set_faults(salebeacon_sandbox::Faults {
        down: true,
        ..Default::default()
    });
    let p = proxy(config(&sb.base_url(), &dir.path().join("e.db"))).await;
    let c = reqwest::Client::new();
    let base = p.base_url();
    let person = |id: &str, email: &str| {
        let mut s = sale(id, "creator42");
        s["customer_email"] = json!(email);
        s["customer_name"] = json!("Ada Lovelace");
        s["visitor_uid"] = json!("0b6f3c1e-2a4d-4e5f-9a7b-1c2d3e4f5a6b");
        s
    };
    for (id, email) in [
        ("ER-1", "ada@example.com"),
        ("ER-2", "ADA@example.com"),
        ("ER-3", "grace@example.com"),
    ] {
        assert_eq!(post_sale(&c, &base, &person(id, email)).await.0, 202);
    }
    let erase = |body: Value| {
        c.post(format!("{base}/admin/erase"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
    };
    let r = erase(json!({"email": "Ada@Example.com"})).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["erased_sales"], 2);
    let r = erase(json!({})).await.unwrap();
    assert_eq!(r.status(), 400);
    for id in ["ER-1", "ER-2"] {
        let (_, v) = admin_get(&c, &base, &format!("/sales/{id}")).await;
        for field in salebeacon_proxy::outbox::PERSONAL_FIELDS {
            assert!(
                v["body"].get(field).is_none(),
                "{id} still has {field}: {v}"
            );
        }
        assert_eq!(v["body"]["total"], 12999, "the sale itself stays");
    }
    let (_, v) = admin_get(&c, &base, "/sales/ER-3").await;
    assert_eq!(v["body"]["customer_email"], "grace@example.com");

    // Delivered once Growi is back: it never sees the erased person.
    sb.set_faults(salebeacon_sandbox::Faults::default());
    eventually(Duration::from_secs(20), "all three delivered", || async {
        sb.sales()
            .iter()
            .filter(|s| s.external_id.starts_with("ER-"))
            .count()
            == 3
    })
    .await;
    for s in sb
        .sales()
        .iter()
        .filter(|s| s.external_id.starts_with("ER-"))
    {
        let wire = serde_json::to_string(s).unwrap();
        assert_eq!(
            wire.contains("Ada Lovelace"),
            s.external_id == "ER-3",
            "{wire}"
        );
    }
    p.shutdown().await;
    sb.shutdown().await;
}
