//! Thin, infallible wrappers over the few browser facilities the tracker reads: the clock,
//! randomness, the console, the page URL, Global Privacy Control.
//!
//! Each returns a neutral value instead of failing when the facility is missing (a worker, an old
//! browser, a test page), because conversion tracking must never break a shop's page.

use js_sys::Reflect;
use wasm_bindgen::JsValue;

pub fn window() -> Option<web_sys::Window> {
    web_sys::window()
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    js_sys::Date::now() as i64
}

/// 16 random bytes from `crypto.getRandomValues`, or from `Math.random` if that is missing.
pub fn random_bytes() -> [u8; 16] {
    let mut bytes = [0u8; 16];
    let filled = window()
        .and_then(|w| w.crypto().ok())
        .is_some_and(|c| c.get_random_values_with_u8_array(&mut bytes).is_ok());
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
    web_sys::console::warn_1(&JsValue::from_str(&format!("salebeacon: {message}")));
}

pub fn error(message: &str) {
    web_sys::console::error_1(&JsValue::from_str(&format!("salebeacon: {message}")));
}

/// The page's `location.search`.
pub fn search() -> String {
    window()
        .and_then(|w| w.location().search().ok())
        .unwrap_or_default()
}

/// The page's host name (no port).
pub fn hostname() -> String {
    window()
        .and_then(|w| w.location().hostname().ok())
        .unwrap_or_default()
}

/// Whether the page is served over https (cookies get `Secure`).
pub fn is_https() -> bool {
    window()
        .and_then(|w| w.location().protocol().ok())
        .is_some_and(|p| p == "https:")
}

/// `navigator.globalPrivacyControl === true`.
pub fn global_privacy_control() -> bool {
    window()
        .and_then(|w| Reflect::get(&w.navigator(), &"globalPrivacyControl".into()).ok())
        .is_some_and(|v| v.as_bool() == Some(true))
}

/// Removes the named query parameters from the address bar without a reload.
pub fn remove_params(names: &[String]) {
    let Some(w) = window() else { return };
    let Ok(href) = w.location().href() else {
        return;
    };
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
