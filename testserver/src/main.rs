//! The `salebeacon-testserver` command: the e2e tests' front server as a process.
//!
//! A thin CLI over the library (see `lib.rs` for what the server does and why). It prints one line
//! on stderr, `salebeacon-testserver listening on http://ADDR`, which the e2e harness waits for
//! and parses; it binds `127.0.0.1:0` (a free port) unless told otherwise, logs to stderr, and
//! stops cleanly on SIGTERM or Ctrl-C (requests in flight finish, up to a few seconds).

// The no-panic rule, enforced: nothing a user or a request controls may unwrap.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use salebeacon_testserver::{serve, Injection, Options, TestServer, DEFAULT_BASE_PATH};
use tokio::net::TcpListener;

/// The end-to-end tests' front server: a site folder at /, /salebeacon/ forwarded to the proxy,
/// a script injected into every page, every request recorded (GET /__test/requests), and an
/// offline switch (PUT /__test/offline). For tests only: never expose it.
#[derive(Parser)]
#[command(name = "salebeacon-testserver", version)]
struct Cli {
    /// The site folder served at / (`/` and folders map to index.html).
    #[arg(long)]
    site: PathBuf,
    /// The proxy's origin, e.g. http://127.0.0.1:8080: every request under the base path goes
    /// there (without it they are answered 502).
    #[arg(long)]
    proxy: Option<String>,
    /// A JavaScript file put first in the <head> of every HTML page (its hash is added to the
    /// page's Content-Security-Policy).
    #[arg(long)]
    inject: Option<PathBuf>,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// The path the proxy's routes live under.
    #[arg(long, default_value = DEFAULT_BASE_PATH)]
    base_path: String,
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutting down");
}

async fn run(cli: Cli) -> Result<(), String> {
    if !cli.site.is_dir() {
        return Err(format!("--site {}: not a folder", cli.site.display()));
    }
    if !cli.base_path.starts_with('/') || cli.base_path.len() < 2 {
        return Err(format!(
            "--base-path {:?}: must start with / and name a folder",
            cli.base_path
        ));
    }
    if let Some(proxy) = &cli.proxy {
        let ok = proxy
            .parse::<axum::http::Uri>()
            .is_ok_and(|u| u.scheme_str() == Some("http") && u.authority().is_some());
        if !ok {
            return Err(format!(
                "--proxy {proxy:?}: expected http://HOST:PORT (plain http)"
            ));
        }
    }
    let inject = match &cli.inject {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("--inject {}: {e}", path.display()))?;
            Some(Injection::new(text).map_err(|e| format!("--inject {}: {e}", path.display()))?)
        }
        None => None,
    };
    let state = TestServer::new(Options {
        site: cli.site,
        proxy: cli.proxy,
        inject,
        base_path: cli.base_path.trim_end_matches('/').to_owned(),
    });
    let listener = TcpListener::bind(cli.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", cli.listen))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot read the bound address: {e}"))?;
    // One write for the whole line: a reader that waits for it never sees half an address
    // (`eprintln!` may write the pieces of its format one by one to the unbuffered stderr).
    let ready = format!("salebeacon-testserver listening on http://{addr}\n");
    let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), ready.as_bytes());
    serve(listener, state, shutdown_signal())
        .await
        .map_err(|e| e.to_string())
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        )
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("salebeacon-testserver: {e}");
            ExitCode::FAILURE
        }
    }
}
