//! The `salebeacon-sandbox` command: the Growi emulator as a process.
//!
//! A thin CLI over the library: every flag has an environment fallback (`SANDBOX_*`) so secrets
//! need not appear on a command line, the one stdout line `salebeacon-sandbox listening on
//! http://ADDR/api/public/v1` is what the demo waits for and parses, logs go to stderr, and
//! Ctrl-C / SIGTERM shut down gracefully. The API key is never printed or logged.

// The no-panic rule, enforced: nothing a user, a config or the network controls may unwrap.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use salebeacon_sandbox::{serve, Faults, SandboxConfig, SandboxState, Seed, API_BASE};
use tokio::net::TcpListener;

/// A local emulator of the Growi public API, for tests, demos and development.
/// The control API under /_sandbox/ has no authentication: never expose this port.
#[derive(Parser)]
#[command(name = "salebeacon-sandbox", version)]
struct Cli {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "SANDBOX_LISTEN", default_value = "127.0.0.1:4010")]
    listen: SocketAddr,
    /// The API key clients must send as `Authorization: Bearer <key>`.
    #[arg(long, env = "SANDBOX_API_KEY", hide_env_values = true)]
    api_key: String,
    /// An optional read-only key (reads work, writes get 403).
    #[arg(long, env = "SANDBOX_READ_ONLY_KEY", hide_env_values = true)]
    read_only_key: Option<String>,
    /// Seed file (JSON: campaigns, affiliates, sales); the built-in seed otherwise.
    #[arg(long, env = "SANDBOX_SEED")]
    seed: Option<PathBuf>,
    /// Minimum milliseconds between requests per key (0 disables).
    #[arg(long, env = "SANDBOX_MIN_INTERVAL_MS", default_value_t = 2000)]
    min_interval_ms: u64,
    /// Requests per key per hour (0 or absent disables).
    #[arg(long, env = "SANDBOX_HOURLY_LIMIT")]
    hourly_limit: Option<u32>,
    /// Added latency per API request, in milliseconds.
    #[arg(long, env = "SANDBOX_LATENCY_MS", default_value_t = 0)]
    latency_ms: u64,
    /// Share (0..1) of API requests answered 500 or 503.
    #[arg(long, env = "SANDBOX_ERROR_RATE", default_value_t = 0.0, value_parser = parse_share)]
    error_rate: f64,
    /// Share (0..1) of API requests answered 429 (retry_after 1).
    #[arg(long, env = "SANDBOX_RATE_LIMIT_RATE", default_value_t = 0.0, value_parser = parse_share)]
    rate_limit_rate: f64,
    /// Start "down": API connections are reset without an answer (the control API works).
    #[arg(long, env = "SANDBOX_DOWN")]
    down: bool,
    /// Seed for the fault PRNG (random when absent).
    #[arg(long, env = "SANDBOX_FAULT_SEED")]
    fault_seed: Option<u64>,
    /// Persist sales to this JSON file (loaded at start, rewritten atomically on each change).
    #[arg(long, env = "SANDBOX_STATE_FILE")]
    state_file: Option<PathBuf>,
}

fn parse_share(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is not between 0 and 1"))
    }
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
    if cli.api_key.trim().is_empty() {
        return Err("--api-key (or SANDBOX_API_KEY) must not be empty".to_owned());
    }
    let seed = match &cli.seed {
        Some(path) => Seed::load(path).map_err(|e| e.to_string())?,
        None => Seed::default(),
    };
    let config = SandboxConfig {
        api_key: cli.api_key,
        read_only_key: cli.read_only_key,
        seed,
        min_interval: Duration::from_millis(cli.min_interval_ms),
        hourly_limit: cli.hourly_limit.filter(|n| *n > 0),
        faults: Faults {
            latency_ms: cli.latency_ms,
            error_rate: cli.error_rate,
            rate_limit_rate: cli.rate_limit_rate,
            down: cli.down,
        },
        fault_seed: cli.fault_seed.unwrap_or_else(|| fastrand::u64(..)),
        state_file: cli.state_file,
    };
    let state = SandboxState::new(config).map_err(|e| e.to_string())?;
    let listener = TcpListener::bind(cli.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", cli.listen))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot read the bound address: {e}"))?;
    println!("salebeacon-sandbox listening on http://{addr}{API_BASE}");
    tracing::info!(%addr, "control API at /_sandbox/ (unauthenticated: local use only)");
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
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("salebeacon-sandbox: {e}");
            ExitCode::FAILURE
        }
    }
}
