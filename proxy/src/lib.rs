//! salebeacon-proxy: the merchant's proxy between the browser tracker and Growi's API.
//!
//! A browser must never hold the Growi key, and Growi takes one request per 2 s per key, while a
//! shop can sell far faster than that. So the proxy accepts sales from browsers, re-validates them
//! with the same core rules the tracker used, commits them to a durable outbox, answers at once,
//! and drains the outbox into Growi at the allowed pace, forever retrying what can be retried.
//!
//! Layout, following a sale (page → **intake** → outbox → sender → Growi):
//! - [`config`]: one [`ProxyConfig`] from defaults, TOML, flags and env; secrets only from env, in
//!   a redacting [`Secret`].
//! - [`http`]: the handlers, one module per kind of caller (the tracker, the pixel, operators,
//!   the back office, the tracker's files); they translate requests and answers, nothing more.
//! - [`trust`]: the browser trust policy, one concern per module (origins/CORS, per-IP rate
//!   limit, signed order tokens).
//! - [`intake`]: the one sale pipeline (cookies fill in, the core validates, the order token is
//!   checked, times are made plausible, the outbox commits) that `POST /sales`, the pixel and the
//!   admin API share.
//! - [`outbox`]: the durable queue of jobs: `202` means committed.
//! - [`sender`]: the single paced task per API key that drains the outbox into Growi.
//! - [`reconcile`]: compares the outbox with Growi's list, read through the sender at its pace.
//! - [`retention`]: deletes sent jobs past the retention period, a small batch at a time.
//! - [`state`], [`clock`], [`metrics`], [`error`]: what handlers share, the one clock, counters for
//!   Prometheus, and the one place errors become responses.
//!
//! [`app`] builds the router (testable with `tower::ServiceExt::oneshot`), [`spawn`] runs the
//! whole proxy (server + sender + outbox) and hands back a [`RunningProxy`] for tests, the demo
//! and the benchmark; the binary is a thin shell around it.

// The no-panic rule, enforced: nothing a user, a config or the network controls may unwrap.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod clock;
pub mod config;
pub mod database;
pub mod error;
pub mod http;
pub mod intake;
pub mod metrics;
pub mod openapi;
pub mod outbox;
pub mod reconcile;
pub mod retention;
pub mod sender;
pub mod state;
pub mod trust;
pub mod verdict;

pub use clock::now_ms;
pub use config::{ProxyConfig, Secret};
pub use error::AppError;
pub use state::AppState;
pub use trust::{sign_order_token, verify_order_token};

use axum::extract::DefaultBodyLimit;

use axum::Router;
use outbox::Outbox;
use std::net::SocketAddr;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The HTTP application: every route under `config.base_path`.
pub fn app(state: AppState) -> Router {
    let base = state.config.base_path.clone();
    // Every API route, with its OpenAPI description (http/api.rs); then the files.
    http::api::router(&state, &base)
        .merge(http::files::routes(&state.config))
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
    let outbox = Outbox::open(&config.db, config.db_sync, config.batch_max)
        .await
        .map_err(|error| StartError::Outbox {
            path: config.db.shown(),
            error,
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
                path: config.db.shown(),
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
    let sender = sender::Sender::new(
        outbox.clone(),
        client,
        state.config.clone(),
        state.metrics.clone(),
    );
    let sender = tokio::spawn(sender.serving(state.reconcile.reads()).run(rx.clone()));
    if state.config.retention_days > 0 {
        tokio::spawn(retention::run(
            outbox,
            state.config.retention_days,
            rx.clone(),
        ));
    }
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
