//! salebeacon-proxy: the merchant's proxy between the browser tracker and Growi's API.
//!
//! A browser must never hold the Growi key, and Growi takes one request per 2 s per key, while a
//! shop can sell far faster than that. So the proxy accepts sales from browsers, re-validates them
//! with the same core rules the tracker used, commits them to a durable outbox, answers at once,
//! and drains the outbox into Growi at the allowed pace, forever retrying what can be retried.
//!
//! Layout, following a request:
//! - [`config`]: one [`ProxyConfig`] from defaults, TOML, flags and env; secrets only from env, in
//!   a redacting [`Secret`].
//! - [`trust`]: the browser trust policy (origin/CORS, per-IP rate limit, signed order tokens).
//! - [`api`]: `POST /sales`, `GET /pixel.gif`, `POST /touch`, `GET /healthz`, `GET /metrics`, and
//!   the one sale pipeline they share.
//! - [`admin`]: the back-office API (delivery state, PATCH by `order_id`, retry of failures).
//! - [`static_files`]: the place for the tracker's loader and wasm (a later issue).
//! - [`outbox`]: SQLite, one writer thread with group commit: `202` means on disk.
//! - [`sender`]: the single paced task per API key that drains the outbox into Growi.
//! - [`metrics`], [`error`]: counters for Prometheus; the one place errors become responses.
//!
//! [`app`] builds the router (testable with `tower::ServiceExt::oneshot`), [`spawn`] runs the
//! whole proxy (server + sender + outbox) and hands back a [`RunningProxy`] for tests, the demo
//! and the benchmark; the binary is a thin shell around it.

pub mod admin;
pub mod api;
pub mod config;
pub mod error;
pub mod metrics;
pub mod outbox;
pub mod sender;
pub mod static_files;
pub mod trust;

pub use config::{ProxyConfig, Secret};
pub use error::AppError;
pub use trust::{sign_order_token, verify_order_token};

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use metrics::Metrics;
use outbox::Outbox;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use trust::RateLimiter;

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<ProxyConfig>,
    pub outbox: Outbox,
    pub metrics: Arc<Metrics>,
    pub limiter: Arc<RateLimiter>,
}

impl AppState {
    pub fn new(config: ProxyConfig, outbox: Outbox) -> Self {
        let limiter = Arc::new(RateLimiter::new(config.rate_limit));
        AppState {
            config: Arc::new(config),
            outbox,
            metrics: Arc::new(Metrics::default()),
            limiter,
        }
    }
}

/// The HTTP application: every route under `config.base_path`.
pub fn app(state: AppState) -> Router {
    let base = state.config.base_path.clone();
    let preflight = || async { StatusCode::NO_CONTENT };
    let browser = Router::new()
        .route(
            &format!("{base}/sales"),
            post(api::post_sale).options(preflight),
        )
        .route(
            &format!("{base}/touch"),
            post(api::touch).get(api::touched).options(preflight),
        )
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            trust::browser_guard,
        ));
    let open = Router::new()
        .route(&format!("{base}/pixel.gif"), get(api::pixel))
        .route(&format!("{base}/healthz"), get(api::healthz))
        .route(&format!("{base}/metrics"), get(api::metrics));
    browser
        .merge(open)
        .merge(admin::routes(&base, state.clone()))
        .merge(static_files::routes(&state.config))
        .layer(DefaultBodyLimit::max(state.config.body_limit))
        .with_state(state)
}

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("cannot open the outbox {path}: {error}")]
    Outbox {
        path: String,
        error: outbox::OutboxError,
    },
    #[error("cannot listen on {addr}: {error}")]
    Listen {
        addr: SocketAddr,
        error: std::io::Error,
    },
    #[error("{0}")]
    Client(String),
}

/// A running proxy: HTTP server, sender and outbox.
pub struct RunningProxy {
    addr: SocketAddr,
    state: AppState,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
    sender: JoinHandle<()>,
}

impl RunningProxy {
    /// The address actually bound (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// `http://ADDR{base}`.
    pub fn base_url(&self) -> String {
        format!("http://{}{}", self.addr, self.state.config.base_path)
    }
    /// The shared state (outbox, metrics, config).
    pub fn state(&self) -> &AppState {
        &self.state
    }
    /// Stops accepting connections, finishes requests in flight, lets the sender finish its
    /// request in flight, then flushes and closes the outbox.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        match self.server.await {
            Ok(Err(e)) => tracing::error!(error = %e, "server error during shutdown"),
            Err(e) => tracing::error!(error = %e, "server task failed"),
            Ok(Ok(())) => {}
        }
        let _ = self.sender.await;
        self.state.outbox.close().await;
        tracing::info!("proxy stopped");
    }
}

/// Starts the proxy on `config.listen` (port 0 picks a free one).
pub async fn spawn(config: ProxyConfig) -> Result<RunningProxy, StartError> {
    let config = config.validate()?;
    let outbox =
        Outbox::open(&config.db_path, config.db_sync, config.batch_max).map_err(|error| {
            StartError::Outbox {
                path: config.db_path.display().to_string(),
                error,
            }
        })?;
    let binding = outbox
        .bind_upstream(config.upstream_fingerprint(), config.forget_upstream_ids)
        .await;
    match binding {
        Ok(outbox::Binding::Forgot(n)) => {
            tracing::warn!(forgotten = n, "--forget-upstream-ids: the outbox is bound to this upstream now; every sale is looked up here before its first update")
        }
        Ok(outbox::Binding::Unverified(n)) => {
            tracing::info!(ids = n, "the outbox predates upstream fingerprints: each recorded Growi id is checked before its first update")
        }
        Ok(outbox::Binding::New | outbox::Binding::Same) => {}
        Err(error) => {
            outbox.close().await;
            return Err(StartError::Outbox {
                path: config.db_path.display().to_string(),
                error,
            });
        }
    }
    let client = sender::client(&config).map_err(StartError::Client)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|error| StartError::Listen {
            addr: config.listen,
            error,
        })?;
    let addr = listener.local_addr().map_err(|error| StartError::Listen {
        addr: config.listen,
        error,
    })?;
    let state = AppState::new(config, outbox.clone());
    let (shutdown, rx) = watch::channel(false);
    let sender = sender::Sender::new(outbox, client, state.config.clone(), state.metrics.clone());
    let sender = tokio::spawn(sender.run(rx.clone()));
    let service = app(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let mut server_rx = rx;
    let server = tokio::spawn(async move {
        axum::serve(listener, service)
            .with_graceful_shutdown(async move {
                let _ = server_rx.wait_for(|stop| *stop).await;
            })
            .await
    });
    tracing::info!(%addr, base_path = %state.config.base_path, upstream = %state.config.upstream, "salebeacon-proxy listening");
    Ok(RunningProxy {
        addr,
        state,
        shutdown,
        server,
        sender,
    })
}
