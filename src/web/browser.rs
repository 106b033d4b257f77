//! Thin, infallible wrappers over the few browser facilities the tracker reads: the clock,
//! randomness, the console, the page URL, Global Privacy Control.
//!
//! Each returns a neutral value instead of failing when the facility is missing (a worker, an old
//! browser, a test page), because conversion tracking must never break a shop's page.

use crate::text::concat;
use js_sys::Reflect;
use wasm_bindgen::{JsCast, JsValue};

pub fn window() -> Option<web_sys::Window> {
    web_sys::window()
}

/// `obj[name]`, or `None` when reading it throws.
///
/// Property reads go through this one `Reflect.get` rather than web-sys getters: every distinct
/// web-sys method is its own import, with its own shim in the JS glue (DESIGN.md size budget).
pub fn prop(obj: &JsValue, name: &str) -> Option<JsValue> {
    Reflect::get(obj, &JsValue::from_str(name)).ok()
}

/// `obj[name]` when it is a string.
pub fn prop_str(obj: &JsValue, name: &str) -> Option<String> {
    prop(obj, name)?.as_string()
}

/// `window[name]` when it is an object (`document`, `navigator`, `localStorage`, ...).
pub fn global(name: &str) -> Option<JsValue> {
    prop(window()?.as_ref(), name).filter(JsValue::is_object)
}

/// `location[name]` as a string, or `""`.
fn location(name: &str) -> String {
    global("location")
        .and_then(|l| prop_str(&l, name))
        .unwrap_or_default()
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    js_sys::Date::now() as i64
}

/// 16 random bytes from `crypto.getRandomValues`, or from `Math.random` if that is missing.
pub fn random_bytes() -> [u8; 16] {
    let mut bytes = [0u8; 16];
    let filled = global("crypto").is_some_and(|c| {
        c.unchecked_into::<web_sys::Crypto>()
            .get_random_values_with_u8_array(&mut bytes)
            .is_ok()
    });
    if !filled {
        for b in bytes.iter_mut() {
            *b = (js_sys::Math::random() * 256.0) as u8;
        }
    }
    bytes
}

/// A number in [0, 1) for backoff jitter.
pub fn jitter() -> f64 {
    js_sys::Math::random()
}

pub fn warn(message: &str) {
    web_sys::console::warn_1(&JsValue::from_str(&concat(&["salebeacon: ", message])));
}

pub fn error(message: &str) {
    web_sys::console::error_1(&JsValue::from_str(&concat(&["salebeacon: ", message])));
}

/// The page's `location.search`.
pub fn search() -> String {
    location("search")
}

/// The page's host name (no port).
pub fn hostname() -> String {
    location("hostname")
}

/// Whether the page is served over https (cookies get `Secure`).
pub fn is_https() -> bool {
    location("protocol") == "https:"
}

/// `navigator.globalPrivacyControl === true`.
pub fn global_privacy_control() -> bool {
    global("navigator")
        .and_then(|n| prop(&n, "globalPrivacyControl"))
        .is_some_and(|v| v.as_bool() == Some(true))
}

/// Removes the named query parameters from the address bar without a reload.
pub fn remove_params(names: &[String]) {
    let Some(w) = window() else { return };
    let href = location("href");
    let Ok(url) = web_sys::Url::new(&href) else {
        return;
    };
    let params = url.search_params();
    for name in names {
        params.delete(name);
    }
    if let Ok(history) = w.history() {
        let _ = history.replace_state_with_url(&JsValue::NULL, "", Some(&url.href()));
    }
}
