//! `init(options)`: reading the JavaScript options object into [`Options`], with every default
//! from DESIGN.md and one issue per bad option (unknown names get a "did you mean").
//!
//! Options are read with `Reflect` rather than serde because they are camelCase JS values that
//! include a list (`params`), and because a typo like `windowdays` must be reported, not ignored.

use crate::attribution::{
    Model, DEFAULT_PARAMS, DEFAULT_WINDOW_DAYS, MAX_WINDOW_DAYS, MIN_WINDOW_DAYS,
};
use crate::issue::Issue;
use crate::text::{concat, join};
use crate::value::suggest;
use js_sys::{Array, Object, Reflect};
use wasm_bindgen::{JsCast, JsValue};

const NAMES: &[&str] = &[
    "endpoint",
    "params",
    "model",
    "windowDays",
    "cookieDomain",
    "consent",
    "respectGpc",
    "cleanUrl",
];

/// Whether the visitor allowed tracking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consent {
    Granted,
    Pending,
    Denied,
}

impl Consent {
    pub fn parse(s: &str) -> Option<Consent> {
        match s {
            "granted" => Some(Consent::Granted),
            "pending" => Some(Consent::Pending),
            "denied" => Some(Consent::Denied),
            _ => None,
        }
    }
}

/// Where cookies are scoped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CookieDomain {
    /// The widest domain the browser accepts, found by trying.
    Auto,
    /// This domain exactly.
    Fixed(String),
}

/// Validated `init` options.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// The proxy's base URL, without a trailing slash.
    pub endpoint: String,
    pub params: Vec<String>,
    pub model: Model,
    pub window_days: u32,
    pub cookie_domain: CookieDomain,
    pub consent: Consent,
    pub respect_gpc: bool,
    pub clean_url: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            endpoint: "/salebeacon".into(),
            params: DEFAULT_PARAMS.iter().map(|s| (*s).to_owned()).collect(),
            model: Model::LastClick,
            window_days: DEFAULT_WINDOW_DAYS,
            cookie_domain: CookieDomain::Auto,
            consent: Consent::Granted,
            respect_gpc: true,
            clean_url: false,
        }
    }
}

fn kind(v: &JsValue) -> String {
    if v.is_null() {
        "null".into()
    } else if Array::is_array(v) {
        "a list".into()
    } else {
        concat(&["a ", &v.js_typeof().as_string().unwrap_or_default()])
    }
}

/// Reads the options object; `undefined`/`null` means all defaults.
pub fn parse(value: &JsValue) -> Result<Options, Vec<Issue>> {
    let mut o = Options::default();
    if value.is_undefined() || value.is_null() {
        return Ok(o);
    }
    let Some(obj) = value
        .dyn_ref::<Object>()
        .filter(|_| !Array::is_array(value))
    else {
        return Err(vec![Issue::new(
            "options",
            concat(&["must be an object, not ", &kind(value)]),
        )]);
    };
    let mut issues = Vec::new();
    let mut bad = |field: &str, msg: String| issues.push(Issue::new(field, msg));
    for key in Object::keys(obj).iter() {
        let key = key.as_string().unwrap_or_default();
        if !NAMES.contains(&key.as_str()) {
            match suggest(&key, NAMES) {
                Some(k) => bad(
                    &key,
                    concat(&["is not an init option; did you mean ", k, "?"]),
                ),
                None => bad(
                    &key,
                    concat(&[
                        "is not an init option (known: ",
                        &join(NAMES.iter().copied(), ", "),
                        ")",
                    ]),
                ),
            }
        }
    }
    let get = |name: &str| {
        Reflect::get(obj, &name.into())
            .ok()
            .filter(|v| !v.is_undefined())
    };
    if let Some(v) = get("endpoint") {
        match v
            .as_string()
            .map(|s| s.trim().trim_end_matches('/').to_owned())
        {
            Some(s)
                if s.starts_with('/') || s.starts_with("https://") || s.starts_with("http://") =>
            {
                o.endpoint = s;
            }
            Some(s) if s.is_empty() => o.endpoint = String::new(),
            Some(_) => bad(
                "endpoint",
                "must be a path like \"/salebeacon\" or an http(s) URL".into(),
            ),
            None => bad("endpoint", concat(&["must be a string, not ", &kind(&v)])),
        }
    }
    if let Some(v) = get("params") {
        let names: Option<Vec<String>> = Array::is_array(&v)
            .then(|| Array::from(&v).iter().map(|p| p.as_string()).collect())
            .flatten();
        match names {
            Some(names) if names.iter().all(|n| crate::attribution::is_valid_tag(n)) => {
                o.params = names;
            }
            _ => bad(
                "params",
                "must be a list of URL parameter names, e.g. [\"ref\", \"aff\", \"via\"]".into(),
            ),
        }
    }
    if let Some(v) = get("model") {
        match v.as_string().as_deref().and_then(Model::parse) {
            Some(m) => o.model = m,
            None => bad("model", "must be \"last_click\" or \"first_click\"".into()),
        }
    }
    if let Some(v) = get("windowDays") {
        match v.as_f64() {
            Some(n)
                if n.fract() == 0.0
                    && n >= f64::from(MIN_WINDOW_DAYS)
                    && n <= f64::from(MAX_WINDOW_DAYS) =>
            {
                o.window_days = n as u32;
            }
            _ => bad(
                "windowDays",
                "must be a whole number of days from 1 to 365".into(),
            ),
        }
    }
    if let Some(v) = get("cookieDomain") {
        match v.as_string() {
            Some(s) if s == "auto" => o.cookie_domain = CookieDomain::Auto,
            Some(s)
                if !s.is_empty()
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-') =>
            {
                o.cookie_domain = CookieDomain::Fixed(s.trim_start_matches('.').to_owned());
            }
            _ => bad(
                "cookieDomain",
                "must be \"auto\" or a domain name like \"example.com\"".into(),
            ),
        }
    }
    if let Some(v) = get("consent") {
        match v.as_string().as_deref().and_then(Consent::parse) {
            Some(c) => o.consent = c,
            None => bad(
                "consent",
                "must be \"granted\", \"pending\" or \"denied\"".into(),
            ),
        }
    }
    for (name, slot) in [
        ("respectGpc", &mut o.respect_gpc),
        ("cleanUrl", &mut o.clean_url),
    ] {
        if let Some(v) = get(name) {
            match v.as_bool() {
                Some(b) => *slot = b,
                None => bad(name, concat(&["must be true or false, not ", &kind(&v)])),
            }
        }
    }
    if issues.is_empty() {
        Ok(o)
    } else {
        Err(issues)
    }
}
