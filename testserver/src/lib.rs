//! salebeacon-testserver: the one front server of the end-to-end tests, in every browser engine.
//!
//! In production a shop's web server serves its pages and routes `/salebeacon/` to the proxy
//! (README: nginx / Caddy). The e2e tests need that shape, plus what no browser driver gives in
//! all three engines (Chromium, Firefox, WebKit): a record of what reached the server (WebKit's
//! driver has no network events, Firefox's has no POST bodies), an instrumentation script in every
//! page (WebKit's driver has no init scripts and no console events), and a way to make the
//! network fail for the page (WebKit's driver cannot emulate offline). So this server:
//!
//! - serves a site folder at `/` ([`site`]), injecting a script first in every HTML page's
//!   `<head>` and its CSP hash into the page's policy ([`inject`]);
//! - forwards every `/salebeacon/...` request unchanged to the real proxy ([`forward`]), so the
//!   proxy's file serving, cookies and same-origin checks run exactly as in production;
//! - records every request it handles ([`log`]) and answers the tests' control API under
//!   `/__test/` ([`control`]): the log, a reset, an offline switch, a hold switch, and a switch
//!   that strips the requests' Fetch Metadata (as from a browser that sends none);
//! - runs its own accept loop ([`server`]): while offline, API calls under `/salebeacon/` get no
//!   answer at all, the connection is reset, which the page sees as a network failure; while held,
//!   they wait unanswered until the hold is lifted, and are then reset the same way (a request
//!   still in flight when its page goes away, and failing after).
//!
//! [`app`] builds the router (testable with `tower::ServiceExt::oneshot`); [`serve`] runs it on a
//! listener; the binary is a thin shell around them.

// The no-panic rule, as in the proxy and the sandbox: nothing a request controls may unwrap.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod control;
pub mod forward;
pub mod inject;
pub mod log;
pub mod server;
pub mod site;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;

pub use inject::Injection;
pub use log::{LogEntry, RequestLog};
pub use server::{serve, DropConnection, SHUTDOWN_GRACE};

/// Where the proxy's routes start, as in the proxy's default `base_path`.
pub const DEFAULT_BASE_PATH: &str = "/salebeacon";

/// What the server serves and where it forwards.
#[derive(Debug, Clone)]
pub struct Options {
    /// The site folder served at `/`.
    pub site: PathBuf,
    /// The proxy's origin (`http://127.0.0.1:8080`); `None` answers `502` under the base path.
    pub proxy: Option<String>,
    /// The script put first in every HTML page's `<head>`.
    pub inject: Option<Injection>,
    /// The path the proxy's routes live under (`/salebeacon`).
    pub base_path: String,
}

impl Options {
    /// A site folder, no proxy, no injection, the default base path.
    pub fn new(site: impl Into<PathBuf>) -> Options {
        Options {
            site: site.into(),
            proxy: None,
            inject: None,
            base_path: DEFAULT_BASE_PATH.to_owned(),
        }
    }
}

/// The shared state: options, the request log, the offline switch, the forwarding client.
#[derive(Clone)]
pub struct TestServer {
    inner: Arc<Inner>,
}

struct Inner {
    options: Options,
    site: site::Site,
    log: RequestLog,
    offline: AtomicBool,
    held: AtomicBool,
    no_fetch_metadata: AtomicBool,
    forwarder: forward::Forwarder,
}

impl TestServer {
    /// A server for `options` (no I/O: the site folder is read per request).
    pub fn new(options: Options) -> TestServer {
        let forwarder = forward::Forwarder::new(options.proxy.clone());
        TestServer {
            inner: Arc::new(Inner {
                site: site::Site::new(options.site.clone()),
                options,
                log: RequestLog::default(),
                offline: AtomicBool::new(false),
                held: AtomicBool::new(false),
                no_fetch_metadata: AtomicBool::new(false),
                forwarder,
            }),
        }
    }

    pub fn options(&self) -> &Options {
        &self.inner.options
    }

    /// Every request handled so far (since the last reset).
    pub fn log(&self) -> &RequestLog {
        &self.inner.log
    }

    pub fn offline(&self) -> bool {
        self.inner.offline.load(Ordering::SeqCst)
    }

    pub fn set_offline(&self, offline: bool) {
        self.inner.offline.store(offline, Ordering::SeqCst);
    }

    pub fn held(&self) -> bool {
        self.inner.held.load(Ordering::SeqCst)
    }

    pub fn set_held(&self, held: bool) {
        self.inner.held.store(held, Ordering::SeqCst);
    }

    pub fn no_fetch_metadata(&self) -> bool {
        self.inner.no_fetch_metadata.load(Ordering::SeqCst)
    }

    pub fn set_no_fetch_metadata(&self, on: bool) {
        self.inner.no_fetch_metadata.store(on, Ordering::SeqCst);
    }

    /// Waits while the hold switch is on (at most [`HOLD_MAX`]).
    async fn hold(&self) {
        let until = tokio::time::Instant::now() + HOLD_MAX;
        while self.held() && tokio::time::Instant::now() < until {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Whether `path` belongs to the proxy (the base path itself or anything under it).
    pub fn is_proxy_path(&self, path: &str) -> bool {
        let base = self.inner.options.base_path.trim_end_matches('/');
        path == base
            || path
                .strip_prefix(base)
                .is_some_and(|rest| rest.starts_with('/'))
    }
}

/// The longest an API call waits while held, so a test that forgets the switch cannot hang it.
pub const HOLD_MAX: std::time::Duration = std::time::Duration::from_secs(60);

/// The router: the control API under `/__test/`, then everything else through [`front`].
pub fn app(state: TestServer) -> Router {
    Router::new()
        .route(control::REQUESTS, get(control::requests))
        .route(control::RESET, post(control::reset))
        .route(
            control::OFFLINE,
            get(control::get_offline).put(control::put_offline),
        )
        .route(control::HOLD, put(control::put_hold))
        .route(
            control::NO_FETCH_METADATA,
            put(control::put_no_fetch_metadata),
        )
        .fallback(front)
        .with_state(state)
}

/// Every request that is not for the control API: recorded, then sent to the proxy or the site.
async fn front(State(state): State<TestServer>, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    let to_proxy = state.is_proxy_path(&path);
    // Bodies are recorded for POSTs to the proxy only (the sales, /touch): small by design.
    let (req, body) = if to_proxy && req.method() == Method::POST {
        let (parts, body) = req.into_parts();
        match axum::body::to_bytes(body, log::MAX_RECORDED_BODY).await {
            Ok(bytes) => (
                Request::from_parts(parts, Body::from(bytes.clone())),
                Some(bytes),
            ),
            Err(_) => {
                let seq = state
                    .log()
                    .record(&parts.method, &parts.uri, &parts.headers, None);
                let r = (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "salebeacon-testserver: body too large to record",
                )
                    .into_response();
                state.log().finish(seq, &r);
                return r;
            }
        }
    } else {
        (req, None)
    };
    let seq = state
        .log()
        .record(req.method(), req.uri(), req.headers(), body.as_deref());
    let response = if to_proxy {
        let api = !forward::is_file_request(req.method(), &path);
        let held = api && state.held();
        if held {
            state.hold().await;
        }
        if held || (api && state.offline()) {
            let mut r = Response::new(Body::empty());
            r.extensions_mut().insert(DropConnection);
            r
        } else {
            let mut req = req;
            if state.no_fetch_metadata() {
                for name in [
                    "sec-fetch-site",
                    "sec-fetch-mode",
                    "sec-fetch-dest",
                    "sec-fetch-user",
                ] {
                    req.headers_mut().remove(name);
                }
            }
            state.inner.forwarder.forward(req).await
        }
    } else {
        state
            .inner
            .site
            .respond(req.method(), req.uri(), state.inner.options.inject.as_ref())
            .await
    };
    state.log().finish(seq, &response);
    response
}
