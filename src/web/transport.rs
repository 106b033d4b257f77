//! Talking to the proxy: `POST {endpoint}/sales` and `POST {endpoint}/touch`.
//!
//! Bodies go as `text/plain` JSON: a "simple" request needs no CORS preflight when the proxy is on
//! another origin, and it is the same form `navigator.sendBeacon` sends, so the proxy has one
//! format to read. Requests use `keepalive` so that a sale sent as the page unloads still goes.
//! The proxy's answer is classified with the core's retry policy.

use super::browser;
use crate::issue::Issue;
use crate::retry::{classify, parse_retry_after, Disposition};
use js_sys::Reflect;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// What the proxy said about a sale.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// `202 queued`.
    Accepted,
    /// `200 duplicate`: the proxy already had this order.
    Duplicate,
    /// `422` with the proxy's issues.
    Invalid(Vec<Issue>),
    /// Another final `4xx`.
    Rejected { status: u16, message: String },
    /// Network error, `408`, `429`, `5xx`: try again, not before `after_ms` if given.
    Retry { after_ms: Option<u64> },
}

async fn post(url: &str, body: &str) -> Result<web_sys::Response, JsValue> {
    request(url, Some(body)).await
}

/// A POST with `body`, or a GET without one.
async fn request(url: &str, body: Option<&str>) -> Result<web_sys::Response, JsValue> {
    let window = browser::window().ok_or_else(|| JsValue::from_str("no window"))?;
    // A plain object set with `Reflect.set`, not web-sys's RequestInit setters: one import
    // instead of one per field (size budget). `keepalive` is not in web-sys's bindings anyway.
    let init = js_sys::Object::new();
    let headers = js_sys::Object::new();
    Reflect::set(
        &headers,
        &"content-type".into(),
        &"text/plain;charset=UTF-8".into(),
    )?;
    if let Some(body) = body {
        for (k, v) in [
            ("method", JsValue::from_str("POST")),
            ("body", JsValue::from_str(body)),
            ("headers", headers.into()),
            ("keepalive", JsValue::TRUE),
        ] {
            Reflect::set(&init, &k.into(), &v)?;
        }
    }
    let resp = JsFuture::from(window.fetch_with_str_and_init(url, init.unchecked_ref())).await?;
    // fetch resolves with a Response, always.
    Ok(resp.unchecked_into())
}

async fn json_of(resp: &web_sys::Response) -> JsValue {
    match resp.json() {
        Ok(p) => JsFuture::from(p).await.unwrap_or(JsValue::UNDEFINED),
        Err(_) => JsValue::UNDEFINED,
    }
}

fn string_field(v: &JsValue, name: &str) -> Option<String> {
    Reflect::get(v, &name.into()).ok()?.as_string()
}

fn issues_of(body: &JsValue) -> Vec<Issue> {
    let list = Reflect::get(body, &"issues".into()).unwrap_or(JsValue::UNDEFINED);
    if !js_sys::Array::is_array(&list) {
        return Vec::new();
    }
    js_sys::Array::from(&list)
        .iter()
        .filter_map(|i| {
            Some(Issue::new(
                string_field(&i, "field")?,
                string_field(&i, "message")?,
            ))
        })
        .collect()
}

/// Posts a sale's JSON body.
pub async fn post_sale(endpoint: &str, body: &str) -> Answer {
    let resp = match post(&crate::text::concat(&[endpoint, "/sales"]), body).await {
        Ok(r) => r,
        Err(_) => return Answer::Retry { after_ms: None },
    };
    let status = browser::prop(&resp, "status")
        .and_then(|s| s.as_f64())
        .unwrap_or(0.0) as u16;
    match classify(status) {
        Disposition::Delivered => {
            let body = json_of(&resp).await;
            if string_field(&body, "status").as_deref() == Some("duplicate") {
                Answer::Duplicate
            } else {
                Answer::Accepted
            }
        }
        Disposition::Retry => {
            let after_ms = resp
                .headers()
                .get("retry-after")
                .ok()
                .flatten()
                .and_then(|h| parse_retry_after(&h));
            Answer::Retry { after_ms }
        }
        Disposition::Rejected => {
            let body = json_of(&resp).await;
            let issues = issues_of(&body);
            if status == 422 && !issues.is_empty() {
                Answer::Invalid(issues)
            } else {
                let message = string_field(&body, "error")
                    .or_else(|| string_field(&body, "message"))
                    .or_else(|| browser::prop_str(&resp, "statusText"))
                    .unwrap_or_default();
                Answer::Rejected { status, message }
            }
        }
    }
}

/// `GET {endpoint}/touch`: the attribution the proxy's own HttpOnly cookies hold (encoded), if
/// any. Asked only when this browser's storage has none at `trackSale`: Safari drops script-set
/// cookies after 7 days, the server-set copies live on.
pub async fn get_touched(endpoint: &str) -> Option<String> {
    let resp = request(&crate::text::concat(&[endpoint, "/touch"]), None)
        .await
        .ok()?;
    let ok = browser::prop(&resp, "status").and_then(|s| s.as_f64()) == Some(200.0);
    if !ok {
        return None;
    }
    string_field(&json_of(&resp).await, "aff")
}

/// Tells the proxy about a capture so it can re-set the cookies server-side (fire and forget).
pub async fn post_touch(endpoint: &str, body: &str) {
    let _ = post(&crate::text::concat(&[endpoint, "/touch"]), body).await;
}
