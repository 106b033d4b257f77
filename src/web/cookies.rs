//! First-party cookies: `sb_aff` (the attribution) and `sb_vid` (the visitor uid).
//!
//! `cookieDomain: "auto"` finds the widest domain the browser lets us set, by trying: from the
//! registrable-looking suffix (`example.com`, or `example.co.uk` after the browser refuses
//! `co.uk`) towards the full host name, the first domain at which a probe cookie sticks wins. That
//! is how `shop.example.com` and `checkout.example.com` come to share attribution, without
//! shipping a public-suffix list. IP addresses and single-label hosts (`localhost`) get host-only
//! cookies.

use super::browser;
use wasm_bindgen::JsValue;

pub const AFFILIATION: &str = "sb_aff";
pub const VISITOR: &str = "sb_vid";
const PROBE: &str = "sb_probe";

fn document() -> Option<JsValue> {
    browser::global("document")
}

/// Reads a cookie by name.
pub fn get(name: &str) -> Option<String> {
    let all = browser::prop_str(&document()?, "cookie")?;
    all.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then(|| v.to_owned())
    })
}

/// Sets a cookie for `max_age_secs` (0 deletes it).
pub fn set(name: &str, value: &str, max_age_secs: i64, domain: Option<&str>) {
    let Some(doc) = document() else { return };
    let mut c = crate::text::concat(&[name, "=", value, "; Path=/; Max-Age="]);
    crate::text::push_int(&mut c, max_age_secs);
    c.push_str("; SameSite=Lax");
    if let Some(d) = domain {
        c.push_str("; Domain=");
        c.push_str(d);
    }
    if browser::is_https() {
        c.push_str("; Secure");
    }
    let _ = js_sys::Reflect::set(&doc, &"cookie".into(), &c.into());
}

fn is_ip_or_single_label(host: &str) -> bool {
    // Byte tests, not `str::contains`: that pulls the substring searcher into the module.
    !host.as_bytes().contains(&b'.')
        || host.as_bytes().contains(&b':')
        || host.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

/// The widest domain that accepts a cookie, or `None` for host-only cookies.
pub fn auto_domain() -> Option<String> {
    let host = browser::hostname();
    if is_ip_or_single_label(&host) {
        return None;
    }
    let labels: Vec<&str> = host.split('.').collect();
    for n in 2..=labels.len() {
        let candidate = crate::text::join(labels[labels.len() - n..].iter().copied(), ".");
        set(PROBE, "1", 10, Some(&candidate));
        if get(PROBE).is_some() {
            set(PROBE, "", 0, Some(&candidate));
            return Some(candidate);
        }
    }
    None
}
