//! First-party cookies: `sb_aff` (the attribution) and `sb_vid` (the visitor uid).
//!
//! `cookieDomain: "auto"` finds the widest domain the browser lets us set, by trying: from the
//! registrable-looking suffix (`example.com`, or `example.co.uk` after the browser refuses
//! `co.uk`) towards the full host name, the first domain at which a probe cookie sticks wins. That
//! is how `shop.example.com` and `checkout.example.com` come to share attribution, without
//! shipping a public-suffix list. IP addresses and single-label hosts (`localhost`) get host-only
//! cookies.

use super::browser;
use wasm_bindgen::JsCast;

pub const AFFILIATION: &str = "sb_aff";
pub const VISITOR: &str = "sb_vid";
const PROBE: &str = "sb_probe";

fn document() -> Option<web_sys::HtmlDocument> {
    browser::window()?.document()?.dyn_into().ok()
}

/// Reads a cookie by name.
pub fn get(name: &str) -> Option<String> {
    let all = document()?.cookie().ok()?;
    all.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then(|| v.to_owned())
    })
}

/// Sets a cookie for `max_age_secs` (0 deletes it).
pub fn set(name: &str, value: &str, max_age_secs: i64, domain: Option<&str>) {
    let Some(doc) = document() else { return };
    let mut c = format!("{name}={value}; Path=/; Max-Age={max_age_secs}; SameSite=Lax");
    if let Some(d) = domain {
        c.push_str("; Domain=");
        c.push_str(d);
    }
    if browser::is_https() {
        c.push_str("; Secure");
    }
    let _ = doc.set_cookie(&c);
}

fn is_ip_or_single_label(host: &str) -> bool {
    !host.contains('.')
        || host.contains(':')
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
        let candidate = labels[labels.len() - n..].join(".");
        set(PROBE, "1", 10, Some(&candidate));
        if get(PROBE).is_some() {
            set(PROBE, "", 0, Some(&candidate));
            return Some(candidate);
        }
    }
    None
}
