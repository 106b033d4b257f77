//! The router in-process, through `tower::ServiceExt::oneshot` (no sockets).

use axum::body::Body;
use axum::http::{Request, StatusCode};
use salebeacon_sandbox::{app, Faults, SandboxConfig, SandboxState};
use serde_json::{json, Value};
use tower::ServiceExt;

fn state() -> SandboxState {
    SandboxState::new(SandboxConfig {
        min_interval: std::time::Duration::ZERO,
        ..SandboxConfig::default()
    })
    .expect("state")
}

async fn call(state: &SandboxState, req: Request<Body>) -> (StatusCode, Value) {
    let resp = app(state.clone()).oneshot(req).await.expect("infallible");
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn post(body: &Value, key: Option<&str>) -> Request<Body> {
    let mut b =
        Request::post("/api/public/v1/affiliate_sales").header("content-type", "application/json");
    if let Some(k) = key {
        b = b.header("authorization", format!("Bearer {k}"));
    }
    b.body(Body::from(body.to_string())).expect("request")
}

#[tokio::test]
async fn create_and_auth_in_process() {
    let st = state();
    let body = json!({"order_id": "O-1", "total": 1995, "currency": "usd", "campaign_affiliate_id": "creator42"});
    let (status, answer) = call(&st, post(&body, None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer, json!({"error": "Not Authenticated"}));
    let (status, answer) = call(&st, post(&body, Some("sk_test_sandbox"))).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(answer["data"]["commission"], 200);
    assert_eq!(st.sales().len(), 2);
    assert_eq!(st.requests().len(), 2);
}

#[tokio::test]
async fn down_in_process_is_a_503() {
    let st = state();
    st.set_faults(Faults {
        down: true,
        ..Faults::default()
    });
    let body = json!({"order_id": "O-2"});
    let (status, answer) = call(&st, post(&body, Some("sk_test_sandbox"))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(answer["error"].is_string());
    let (status, faults) = call(
        &st,
        Request::get("/_sandbox/faults")
            .body(Body::empty())
            .expect("req"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(faults["down"], true);
}

#[tokio::test]
async fn oversized_body_is_413() {
    let st = state();
    let big = "x".repeat(2 << 20);
    let (status, answer) = call(
        &st,
        post(&json!({"order_id": big}), Some("sk_test_sandbox")),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(answer["error"].is_string());
}

#[tokio::test]
async fn control_reads_answer_any_origin() {
    let st = state();
    let req = Request::get("/_sandbox/sales")
        .header("origin", "http://127.0.0.1:8080")
        .body(Body::empty())
        .expect("req");
    let resp = app(st.clone()).oneshot(req).await.expect("infallible");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["access-control-allow-origin"], "*");
    // The API itself is not opened to pages.
    let resp = app(st)
        .oneshot(post(&json!({}), Some("sk_test_sandbox")))
        .await
        .expect("infallible");
    assert!(resp.headers().get("access-control-allow-origin").is_none());
}
