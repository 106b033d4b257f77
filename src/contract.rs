//! The names the browser tracker and the proxy share: cookies, storage keys, endpoints, outcomes
//! and error codes, and the one parser of a `Cookie` header.
//!
//! Each name is defined here once. The browser module and the proxy both use these constants,
//! and the JavaScript files that need a name (the loader, the npm entry) get it from here through
//! the build, so the two sides can never drift apart. The attribution cookie's value format is
//! [`crate::attribution::Attribution::encode`] / `decode`, next to the rules it carries.

#[allow(unused_imports)]
use crate::prelude::*;

/// The attribution cookie the tracker writes from script (`Attribution::encode`).
pub const AFF_COOKIE: &str = "sb_aff";
/// The visitor-id cookie the tracker writes from script (a UUID v4).
pub const VID_COOKIE: &str = "sb_vid";
/// The proxy's own HttpOnly copy of [`AFF_COOKIE`], set by `/touch`. It needs its own name: a
/// browser lets no script overwrite an HttpOnly cookie, so sharing `sb_aff` would freeze the
/// tracker's cookie at its first server-set value. Server-set cookies also outlive Safari's 7-day
/// cap on script-set ones.
pub const AFF_COOKIE_HTTP: &str = "sb_aff_h";
/// The proxy's own HttpOnly copy of [`VID_COOKIE`].
pub const VID_COOKIE_HTTP: &str = "sb_vid_h";
/// Where attribution is read from, in order: the script's cookie first, then the proxy's.
pub const AFF_COOKIES: [&str; 2] = [AFF_COOKIE, AFF_COOKIE_HTTP];
/// Where the visitor id is read from, in order.
pub const VID_COOKIES: [&str; 2] = [VID_COOKIE, VID_COOKIE_HTTP];

/// Every localStorage key of the tracker starts with this.
pub const STORAGE_PREFIX: &str = "salebeacon:";
/// The mark (after the prefix) that is set while a sale may wait in the browser's outbox: a
/// localStorage key and the name of an empty IndexedDB database (`www/package/src/mark.js`), what
/// the script-tag loader checks to know whether a quiet page has work.
pub const OUTBOX_MARKER: &str = "outbox";
/// The mark's cookie: `sb_wait=1`, set by the browser's script while a sale waits beyond the page
/// that recorded it (with the localStorage key and the database above), removed with them. It is
/// how a proxy on the page's own origin knows, from the loader's request alone, whether a sale
/// waits: it then serves [`LOADER_QUIET`] or [`LOADER_WAITING`] in place of [`LOADER_FILE`], and a
/// quiet page checks nothing. Host-only and `Path=/`, so the loader's request carries it wherever
/// the proxy's base path is; it lives as long as a waiting sale may (`OUTBOX_MAX_AGE_MS`).
pub const WAIT_COOKIE: &str = "sb_wait";
/// The script-tag loader, the one embed file with a stable name: it checks the mark itself.
pub const LOADER_FILE: &str = "salebeacon.js";
/// The loader built knowing that no sale waits: what a same-origin proxy serves for
/// [`LOADER_FILE`] when the request carries no [`WAIT_COOKIE`] (no check on a quiet page).
pub const LOADER_QUIET: &str = "salebeacon.quiet.js";
/// The loader built knowing that a sale waits: served when the request carries [`WAIT_COOKIE`]
/// (it starts the tracker at once).
pub const LOADER_WAITING: &str = "salebeacon.waiting.js";
/// The key (after the prefix, then a unique suffix) of a sale kept as the page handed it, before
/// the rules checked it: written by the tracker while its `order` module loads
/// (`www/package/src/outbox.js`) and by the loader while it hands a sale to the proxy (a sale at
/// the edge); the next tracker checks and sends whatever such a key still holds.
pub const RAW_SALE_KEY: &str = "r:";

/// The consent states of the browser API, the default first.
pub const CONSENT_STATES: [&str; 3] = ["granted", "pending", "denied"];

/// The proxy's browser-facing paths, under its base path (default `/salebeacon`).
pub const SALES_PATH: &str = "/sales";
pub const TOUCH_PATH: &str = "/touch";
pub const PIXEL_PATH: &str = "/pixel.gif";

/// The proxy's answer to an accepted sale: `202 {"status":"queued"}`.
pub const STATUS_QUEUED: &str = "queued";
/// The proxy's answer to a known `order_id`: `200 {"status":"duplicate"}`.
pub const STATUS_DUPLICATE: &str = "duplicate";

/// The `code` of every `SaleBeaconError` the browser API throws or rejects with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The sale breaks a rule (the tracker's, or the proxy's 422).
    InvalidSale,
    /// `init` options are wrong.
    InvalidConfig,
    /// A call that needs `init` first.
    NotInitialized,
    /// `toMinorUnits` could not convert exactly.
    InvalidAmount,
    /// The proxy refused the sale for good with a status other than 422.
    Rejected,
    /// The script-tag form's `salebeacon('<unknown command>', ...)`.
    InvalidCommand,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 6] = [
        ErrorCode::InvalidSale,
        ErrorCode::InvalidConfig,
        ErrorCode::NotInitialized,
        ErrorCode::InvalidAmount,
        ErrorCode::Rejected,
        ErrorCode::InvalidCommand,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidSale => "invalid_sale",
            ErrorCode::InvalidConfig => "invalid_config",
            ErrorCode::NotInitialized => "not_initialized",
            ErrorCode::InvalidAmount => "invalid_amount",
            ErrorCode::Rejected => "rejected",
            ErrorCode::InvalidCommand => "invalid_command",
        }
    }
}

/// These names and the browser API's defaults as a JavaScript module (`www/package/src/
/// contract.js`), so the tracker's JavaScript uses exactly the core's values. The build writes
/// it; a test keeps the committed copy equal to this.
#[cfg(not(feature = "embed"))]
pub fn javascript() -> String {
    use crate::attribution::{
        Model, DEFAULT_PARAMS, DEFAULT_WINDOW_DAYS, GROWI_CAMPAIGN_PARAM, GROWI_USER_PARAM,
        MAX_WINDOW_DAYS, MIN_WINDOW_DAYS,
    };
    let list = |items: &[&str]| {
        let quoted: Vec<String> = items.iter().map(|i| format!("'{i}'")).collect();
        format!("[{}]", quoted.join(", "))
    };
    let codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    let lines = [
        "// Generated from the Rust core (src/contract.rs, `contract::javascript`) by `cargo xtask"
            .to_owned(),
        "// build`: the names and defaults the browser tracker shares with the proxy. Do not edit."
            .to_owned(),
        format!("export const AFF_COOKIE = '{AFF_COOKIE}';"),
        format!("export const VID_COOKIE = '{VID_COOKIE}';"),
        format!("export const PREFIX = '{STORAGE_PREFIX}';"),
        format!("export const OUTBOX_KEY = '{OUTBOX_MARKER}';"),
        format!("export const RAW_KEY = '{RAW_SALE_KEY}';"),
        format!("export const WAIT_COOKIE = '{WAIT_COOKIE}';"),
        format!("export const SALES_PATH = '{SALES_PATH}';"),
        format!("export const TOUCH_PATH = '{TOUCH_PATH}';"),
        format!("export const STATUS_DUPLICATE = '{STATUS_DUPLICATE}';"),
        format!("export const DEFAULT_PARAMS = {};", list(DEFAULT_PARAMS)),
        format!(
            "export const GROWI_PARAMS = {};",
            list(&[GROWI_USER_PARAM, GROWI_CAMPAIGN_PARAM])
        ),
        format!("export const MIN_WINDOW_DAYS = {MIN_WINDOW_DAYS};"),
        format!("export const MAX_WINDOW_DAYS = {MAX_WINDOW_DAYS};"),
        format!("export const DEFAULT_WINDOW_DAYS = {DEFAULT_WINDOW_DAYS};"),
        format!(
            "export const MODELS = {};",
            list(&[Model::LastClick.as_str(), Model::FirstClick.as_str()])
        ),
        format!("export const CONSENTS = {};", list(&CONSENT_STATES)),
        format!(
            "export const OUTBOX_MAX_AGE_MS = {};",
            crate::retry::OUTBOX_MAX_AGE_MS
        ),
        format!("export const ERROR_CODES = {};", list(&codes)),
    ];
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// The value of cookie `name` in a `Cookie` header (`a=1; b="2"`), if present. Surrounding
/// white space and one pair of double quotes (RFC 6265's quoted form) are removed; the first
/// cookie of that name wins (browsers send the most specific path first).
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        if k.trim() != name {
            return None;
        }
        let v = v.trim();
        Some(
            v.strip_prefix('"')
                .and_then(|x| x.strip_suffix('"'))
                .unwrap_or(v),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_parse_one_way() {
        let h = "a=1; sb_aff=1~l~5~t~x; sb_vid=\"v\" ;  spaced = y ; empty=; sb_aff=second";
        assert_eq!(
            cookie_value(h, "sb_aff"),
            Some("1~l~5~t~x"),
            "the first wins"
        );
        assert_eq!(cookie_value(h, "sb_vid"), Some("v"), "quotes are removed");
        assert_eq!(cookie_value(h, "spaced"), Some("y"));
        assert_eq!(cookie_value(h, "empty"), Some(""));
        assert_eq!(cookie_value(h, "b"), None);
        assert_eq!(cookie_value(h, "sb_af"), None, "names match exactly");
        assert_eq!(cookie_value("", "a"), None);
        assert_eq!(cookie_value("noequals", "noequals"), None);
    }

    #[cfg(not(target_arch = "wasm32"))]
    #[test]
    fn the_javascript_copy_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/www/package/src/contract.js");
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == javascript(),
            "{path} is stale: run `cargo xtask build` (it writes the file from src/contract.rs)"
        );
    }

    #[test]
    fn codes_are_snake_case_and_distinct() {
        let codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(
            codes,
            [
                "invalid_sale",
                "invalid_config",
                "not_initialized",
                "invalid_amount",
                "rejected",
                "invalid_command"
            ]
        );
    }
}
