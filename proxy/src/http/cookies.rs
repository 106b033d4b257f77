//! The browser's first-party cookies, read and written by the proxy.
//!
//! Reading uses the core's one `Cookie` parser and its names ([`salebeacon::contract`]), so the
//! proxy and the tracker cannot disagree on either. Writing the proxy's HttpOnly copies
//! (`sb_aff_h`, `sb_vid_h`) uses the `cookie` crate, which formats `Expires`, `Max-Age` and the
//! attributes correctly.
//!
//! `Domain=`: an operator's `cookie_domain` wins. Otherwise the proxy uses the domain the tracker
//! found with `cookieDomain: "auto"` (it sends it with `/touch`), but only when that domain is the
//! request's own host or a parent of it ([`cookie_domain_for`]): a page can never make the proxy
//! set a cookie for a foreign site. Without either, the cookies are host-only.

use crate::verdict::Cookies;
use axum::http::{header, HeaderMap, HeaderValue};
use cookie::time::{Duration, OffsetDateTime};
use cookie::{Cookie, SameSite};
use salebeacon::attribution::Attribution;
use salebeacon::contract::{cookie_value, AFF_COOKIES, VID_COOKIES};
use salebeacon::time::Timestamp;
use salebeacon::visitor::is_uuid_v4;

/// The value of cookie `name` in the request, if any.
pub fn get<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|h| cookie_value(h, name))
}

/// What the request's cookies hold: the live attribution (the script's cookie first, then the
/// proxy's copy) and the visitor id.
pub fn read(headers: &HeaderMap, window_days: u32, now: Timestamp) -> Cookies {
    let attribution = AFF_COOKIES
        .into_iter()
        .filter_map(|name| get(headers, name))
        .find_map(|raw| match Attribution::decode(raw) {
            Some(a) if !a.is_expired(now.millis(), window_days) => Some(a),
            Some(_) => {
                tracing::debug!("ignored an expired attribution cookie");
                None
            }
            None => {
                tracing::debug!("ignored an attribution cookie that does not decode");
                None
            }
        });
    let visitor_id = VID_COOKIES
        .into_iter()
        .filter_map(|name| get(headers, name))
        .find(|v| is_uuid_v4(v))
        .map(str::to_owned);
    Cookies {
        attribution,
        visitor_id,
    }
}

/// A `Set-Cookie` value for an HttpOnly, `SameSite=Lax`, `Path=/` cookie that expires at
/// `expires`.
pub fn http_only(
    name: &'static str,
    value: String,
    expires: Timestamp,
    now: Timestamp,
    secure: bool,
    domain: Option<&str>,
) -> Option<HeaderValue> {
    set_cookie(name, value, expires, now, secure, domain, true)
}

/// A `Set-Cookie` value for a `SameSite=Lax`, `Path=/` cookie that expires at `expires`;
/// `http_only: false` for the tracker's own cookies (`sb_aff`, `sb_vid`), which its script reads.
pub fn set_cookie(
    name: &'static str,
    value: String,
    expires: Timestamp,
    now: Timestamp,
    secure: bool,
    domain: Option<&str>,
    http_only: bool,
) -> Option<HeaderValue> {
    let secs = (expires.millis().saturating_sub(now.millis())).max(0) / 1000;
    let at = OffsetDateTime::from_unix_timestamp(expires.millis().div_euclid(1000)).ok()?;
    let mut c = Cookie::build((name, value))
        .path("/")
        .http_only(http_only)
        .same_site(SameSite::Lax)
        .secure(secure)
        .max_age(Duration::seconds(secs))
        .expires(at);
    if let Some(d) = domain {
        c = c.domain(d.to_owned());
    }
    HeaderValue::from_str(&c.build().to_string()).ok()
}

/// The `Domain=` for a server-set cookie on a request to `host`: the operator's `configured`
/// domain if any; else the `asked` one (the tracker's `cookieDomain: "auto"` result) when it is
/// `host` itself or a parent domain of it with at least two labels; else none (host-only).
pub fn cookie_domain_for(
    configured: Option<&str>,
    asked: Option<&str>,
    host: &str,
) -> Option<String> {
    if let Some(d) = configured {
        return Some(d.to_owned());
    }
    let host = host_name(host)?;
    let asked = asked?.trim().trim_start_matches('.').to_ascii_lowercase();
    let plain = !asked.is_empty()
        && asked.contains('.')
        && asked
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && !asked.split('.').any(str::is_empty)
        && !asked.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    let within = host == asked || host.ends_with(&format!(".{asked}"));
    (plain && within).then_some(asked)
}

/// The registrable domain of `host` (`shop.example.co.uk` → `example.co.uk`), from the public
/// suffix list (the `psl` crate): the domain the tracker's `cookieDomain: "auto"` finds by
/// probing in the browser, which the proxy cannot do. `None` for an IP address, a single label
/// (`localhost`) or a public suffix itself: host-only cookies, as the tracker does.
pub fn registrable_domain(host: &str) -> Option<String> {
    let name = host_name(host)?;
    if !name.contains('.') {
        return None;
    }
    psl::domain_str(&name).map(str::to_owned)
}

/// The host name of a `Host` header value: lower case, without the port; `None` for an IP
/// address (cookies on an IP are host-only).
fn host_name(host: &str) -> Option<String> {
    let h = host.trim().to_ascii_lowercase();
    if h.starts_with('[') {
        return None;
    }
    let name = h.rsplit_once(':').map_or(h.as_str(), |(n, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            n
        } else {
            h.as_str()
        }
    });
    if name.parse::<std::net::IpAddr>().is_ok() || name.is_empty() {
        return None;
    }
    Some(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_stay_within_the_host() {
        let d = |asked: Option<&str>, host: &str| cookie_domain_for(None, asked, host);
        assert_eq!(
            d(Some("example.com"), "shop.example.com"),
            Some("example.com".into())
        );
        assert_eq!(
            d(Some(".Example.com"), "shop.example.com:8443"),
            Some("example.com".into())
        );
        assert_eq!(
            d(Some("shop.example.com"), "shop.example.com"),
            Some("shop.example.com".into())
        );
        assert_eq!(
            d(Some("evil.com"), "shop.example.com"),
            None,
            "a foreign domain"
        );
        assert_eq!(
            d(Some("ample.com"), "shop.example.com"),
            None,
            "not a label boundary"
        );
        assert_eq!(d(Some("com"), "shop.example.com"), None, "a single label");
        assert_eq!(d(Some("example.com"), "127.0.0.1:8080"), None);
        assert_eq!(d(Some("a..com"), "x.a..com"), None);
        assert_eq!(d(None, "shop.example.com"), None);
        assert_eq!(
            cookie_domain_for(Some("example.org"), Some("example.com"), "shop.example.com"),
            Some("example.org".into()),
            "the operator's setting wins"
        );
    }

    #[test]
    fn registrable_domains_follow_the_public_suffix_list() {
        let r = |h: &str| registrable_domain(h);
        assert_eq!(r("shop.example.com"), Some("example.com".into()));
        assert_eq!(r("Shop.Example.co.uk:8443"), Some("example.co.uk".into()));
        assert_eq!(r("example.com"), Some("example.com".into()));
        assert_eq!(r("co.uk"), None, "a public suffix");
        assert_eq!(r("localhost:8080"), None);
        assert_eq!(r("127.0.0.1:8080"), None);
        assert_eq!(r("[::1]:8080"), None);
    }

    #[test]
    fn script_cookies_are_not_http_only() {
        let now = Timestamp::from_millis(1_759_276_529_000);
        let v = set_cookie(
            "sb_aff",
            "1~l~1~t~x".into(),
            now.plus_days(1),
            now,
            false,
            None,
            false,
        )
        .unwrap();
        let v = v.to_str().unwrap();
        assert!(!v.contains("HttpOnly"), "{v}");
        assert!(!v.contains("Domain"), "{v}");
        for part in [
            "sb_aff=1~l~1~t~x",
            "SameSite=Lax",
            "Path=/",
            "Max-Age=86400",
        ] {
            assert!(v.contains(part), "{part} in {v}");
        }
    }

    #[test]
    fn set_cookie_values() {
        let now = Timestamp::from_millis(1_759_276_529_000);
        let v = http_only(
            "sb_vid_h",
            "x".into(),
            now.plus_days(1),
            now,
            true,
            Some("example.com"),
        )
        .unwrap();
        let v = v.to_str().unwrap();
        for part in [
            "sb_vid_h=x",
            "HttpOnly",
            "SameSite=Lax",
            "Secure",
            "Path=/",
            "Domain=example.com",
            "Max-Age=86400",
            "Expires=Wed, 01 Oct 2025 23:55:29 GMT",
        ] {
            assert!(v.contains(part), "{part} in {v}");
        }
    }
}
