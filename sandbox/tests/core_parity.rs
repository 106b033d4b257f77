//! The sandbox emulates Growi on its own terms, but where the project has chosen a reading of a
//! rule Growi does not publish, the tracker core and the sandbox must apply the same one: a sale
//! the proxy acknowledges (core rules) must be a sale the sandbox takes. These tests hold the two
//! together; an intended difference is written down here.
//!
//! Intended difference: the sandbox takes any three lowercase letters as a currency (Growi's
//! reference says "usd, eur, gbp, etc." and we do not know its list), while the core takes only
//! active ISO 4217 codes. So the core is the stricter one, which is the safe direction.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use salebeacon::{Origin, SaleInput};
use salebeacon_sandbox::{app, SandboxConfig, SandboxState};
use serde_json::{json, Value};
use tower::ServiceExt;

async fn sandbox_takes(state: &SandboxState, body: &Value) -> bool {
    let req = Request::post("/api/public/v1/affiliate_sales")
        .header("content-type", "application/json")
        .header("authorization", "Bearer sk_test_sandbox")
        .body(Body::from(body.to_string()))
        .expect("request");
    let resp = app(state.clone()).oneshot(req).await.expect("infallible");
    match resp.status() {
        StatusCode::CREATED => true,
        StatusCode::UNPROCESSABLE_ENTITY => false,
        other => panic!("unexpected {other} for {body}"),
    }
}

fn core_takes(body: &Value) -> bool {
    let input: SaleInput = serde_json::from_value(body.clone()).expect("an object");
    input.validate(Origin::Server).is_ok()
}

#[tokio::test]
async fn text_limits_agree_at_every_boundary() {
    assert_eq!(
        salebeacon::sale::MAX_TEXT_BYTES,
        salebeacon_sandbox::validate::MAX_TEXT_LEN
    );
    let state = SandboxState::new(SandboxConfig {
        min_interval: std::time::Duration::ZERO,
        ..SandboxConfig::default()
    })
    .expect("state");
    let mut n = 0;
    let (mut taken, mut refused) = (0, 0);
    for field in ["order_id", "customer_name", "customer_email"] {
        for text in [
            "a".repeat(255),
            "a".repeat(256),
            "é".repeat(127),
            format!("{}a", "é".repeat(127)),
            "é".repeat(128),
            "é".repeat(200),
            "€".repeat(85),
            "€".repeat(86),
            "😀".repeat(63),
            format!("{}abc", "😀".repeat(63)),
            format!("{}abcd", "😀".repeat(63)),
        ] {
            n += 1;
            let value = if field == "customer_email" {
                email_like(&text)
            } else {
                text.clone()
            };
            let order = if field == "order_id" {
                value.clone()
            } else {
                format!("PARITY-{n}")
            };
            let mut body = json!({"order_id": order, "total": 100, "currency": "usd",
                                  "campaign_affiliate_id": "creator42"});
            body[field] = json!(value);
            assert_eq!(
                value.len(),
                text.len(),
                "{field}: the case keeps its byte length"
            );
            let core = core_takes(&body);
            assert_eq!(
                core,
                sandbox_takes(&state, &body).await,
                "{field} of {} bytes ({} characters)",
                value.len(),
                value.chars().count()
            );
            if core {
                taken += 1;
            } else {
                refused += 1;
            }
        }
    }
    assert_eq!(
        (taken, refused),
        (18, 15),
        "both sides of every boundary were tried"
    );
}

/// A syntactically valid email with as many bytes as `text`, made of `text`'s characters: the
/// domain's labels take them 12 characters at a time (at most 48 bytes, under the 63 a label may
/// have), padded with `x` to the exact length.
fn email_like(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut domain: Vec<String> = chars.chunks(12).map(|c| c.iter().collect()).collect();
    domain.push("com".into());
    let mut email = format!("x@{}", domain.join("."));
    while email.len() > text.len() && domain.len() > 2 {
        domain.remove(0);
        email = format!("x@{}", domain.join("."));
    }
    let pad = text.len().saturating_sub(email.len());
    format!("{}{}", "x".repeat(pad), email)
}

#[test]
fn currency_exponents_agree_for_every_active_code() {
    let mut checked = 0;
    for (code, exponent) in salebeacon::money::currencies() {
        let lower = code.to_ascii_lowercase();
        assert!(
            salebeacon_sandbox::money::is_currency_code(&lower),
            "{code}"
        );
        assert_eq!(
            salebeacon_sandbox::money::currency_exponent(&lower),
            u32::from(exponent),
            "{code}"
        );
        checked += 1;
    }
    assert!(
        checked > 150,
        "the core lists every active code ({checked})"
    );
}
