//! Forwarding `/salebeacon/...` to the real proxy, as a shop's reverse proxy does.
//!
//! The point of the e2e tests is the proxy's real behaviour behind a front server: its own file
//! serving (ETags, a year's caching for hashed names), its cookies (`Set-Cookie` for `sb_aff_h`
//! and `sb_vid_h`, domain taken from the Host), and its same-origin check (the page's `Origin`
//! against the `Host` it was asked for). So the request goes on with its method, its path and
//! query, its body, and every header as it came — `Host` and `Cookie` included — minus the
//! hop-by-hop ones; the answer comes back streamed, with every header (repeated `Set-Cookie`
//! included). No connection is pooled: the tests stop and start the proxy on the same port, and a
//! pooled connection to the old process would turn into a spurious error.
//!
//! When the proxy cannot be reached the answer is `502`, as nginx gives: the tracker treats it
//! like a network error (it retries 5xx).

use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderName, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// Headers that belong to one connection, never forwarded (RFC 9110 §7.6.1).
const HOP_BY_HOP: &[HeaderName] = &[
    header::CONNECTION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::PROXY_AUTHORIZATION,
    header::PROXY_AUTHENTICATE,
];

/// The tracker's own files under the base path, which stay reachable while offline (the pages
/// already loaded them; the switch is about API calls): a GET or HEAD of a name with one of these
/// extensions. Everything else (`/sales`, `/touch`, `/pixel.gif`, `/healthz`, `/admin/...`) is an
/// API call.
pub const FILE_EXTENSIONS: &[&str] = &["js", "mjs", "wasm", "map", "ts", "json", "md"];

/// Whether a request under the base path is for one of the tracker's files.
pub fn is_file_request(method: &Method, path: &str) -> bool {
    if !(method == Method::GET || method == Method::HEAD) {
        return false;
    }
    let name = path.rsplit('/').next().unwrap_or_default();
    name.rsplit_once('.')
        .is_some_and(|(stem, ext)| !stem.is_empty() && FILE_EXTENSIONS.contains(&ext))
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Headers named by `Connection` are hop-by-hop too.
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for name in HOP_BY_HOP.iter().chain(&named) {
        headers.remove(name);
    }
    headers.remove("keep-alive");
    headers.remove("proxy-connection");
}

/// The client that forwards to the proxy.
#[derive(Clone)]
pub struct Forwarder {
    origin: Option<String>,
    client: Client<HttpConnector, Body>,
}

impl Forwarder {
    /// Forwards to `origin` (`http://host:port`, no path); `None` answers `502`.
    pub fn new(origin: Option<String>) -> Forwarder {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .build(connector);
        Forwarder {
            origin: origin.map(|o| o.trim_end_matches('/').to_owned()),
            client,
        }
    }

    /// Sends `req` to the proxy and streams its answer back.
    pub async fn forward(&self, req: Request) -> Response {
        let Some(origin) = &self.origin else {
            return bad_gateway("no --proxy given");
        };
        let (mut parts, body) = req.into_parts();
        let path = parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned());
        let uri: Uri = match format!("{origin}{path}").parse() {
            Ok(uri) => uri,
            Err(e) => return bad_gateway(&format!("cannot forward {path}: {e}")),
        };
        parts.uri = uri;
        strip_hop_by_hop(&mut parts.headers);
        // `Host` is kept as the browser sent it (hyper only adds one when it is missing).
        let upstream = Request::from_parts(parts, body);
        match self.client.request(upstream).await {
            Ok(answer) => {
                let (mut parts, body) = answer.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                Response::from_parts(parts, Body::new(body))
            }
            Err(e) => {
                tracing::debug!(error = %e, %path, "proxy unreachable");
                bad_gateway(&format!("proxy unreachable: {e}"))
            }
        }
    }
}

fn bad_gateway(why: &str) -> Response {
    (
        StatusCode::BAD_GATEWAY,
        [(header::CACHE_CONTROL, "no-store")],
        format!("salebeacon-testserver: {why}\n"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_and_api_calls() {
        assert!(is_file_request(&Method::GET, "/salebeacon/salebeacon.js"));
        assert!(is_file_request(
            &Method::HEAD,
            "/salebeacon/salebeacon_order_bg.0123456789.wasm"
        ));
        assert!(!is_file_request(&Method::POST, "/salebeacon/x.js"));
        assert!(!is_file_request(&Method::GET, "/salebeacon/sales"));
        assert!(!is_file_request(&Method::GET, "/salebeacon/touch"));
        assert!(!is_file_request(&Method::GET, "/salebeacon/pixel.gif"));
        assert!(!is_file_request(&Method::GET, "/salebeacon/healthz"));
        assert!(!is_file_request(&Method::GET, "/salebeacon/.js"));
    }

    #[test]
    fn hop_by_hop_headers_go() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, "keep-alive, x-secret".parse().unwrap());
        h.insert("x-secret", "1".parse().unwrap());
        h.insert("keep-alive", "timeout=5".parse().unwrap());
        h.insert(header::TRANSFER_ENCODING, "chunked".parse().unwrap());
        h.insert(header::HOST, "shop.test:1".parse().unwrap());
        h.append(header::SET_COOKIE, "a=1".parse().unwrap());
        h.append(header::SET_COOKIE, "b=2".parse().unwrap());
        strip_hop_by_hop(&mut h);
        let mut left: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        left.sort_unstable();
        assert_eq!(left, ["host", "set-cookie"]);
        assert_eq!(h.get_all(header::SET_COOKIE).iter().count(), 2);
    }
}
