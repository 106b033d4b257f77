//! The `salebeacon-proxy` binary: parse flags, set up logging, run the proxy until SIGINT/SIGTERM,
//! then shut down gracefully (requests in flight finish, the outbox is flushed). Also
//! `sign-token`, which mints an order token the way a merchant's backend must, to show the format,
//! and `reconcile`, which asks a running proxy to compare its outbox with Growi
//! ([`reconcile_cli`]).
//!
//! Everything of substance lives in the library (`salebeacon_proxy`), so tests, the demo and the
//! benchmark run exactly what this binary runs.

// The no-panic rule, enforced: nothing a user, a config or the network controls may unwrap.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod reconcile_cli;

use clap::{Parser, Subcommand, ValueEnum};
use salebeacon_proxy::config::{RunArgs, ENV_ORDER_TOKEN_SECRET};
use salebeacon_proxy::{sign_order_token, ProxyConfig};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "salebeacon-proxy",
    version,
    about = "The salebeacon merchant proxy: browser endpoints, durable outbox, paced Growi sender, admin API.\n\nSecrets come from the environment only: GROWI_API_KEY (required), SALEBEACON_ADMIN_TOKEN (enables the admin API), SALEBEACON_ORDER_TOKEN_SECRET (order tokens)."
)]
struct Cli {
    #[command(flatten)]
    run: RunArgs,
    /// Log format.
    #[arg(
        long,
        env = "SALEBEACON_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the proxy (the default).
    Run,
    /// Mint an order token with SALEBEACON_ORDER_TOKEN_SECRET, as the merchant's backend would.
    SignToken {
        #[arg(long)]
        order_id: String,
        /// Integer total in minor units (leave out if the sale has none).
        #[arg(long)]
        total: Option<u64>,
        #[arg(long)]
        currency: String,
        /// Lifetime of the token, seconds.
        #[arg(long, default_value_t = 3600)]
        ttl_secs: u64,
    },
    /// Compare the outbox with Growi's sales, through a running proxy (it paces the requests):
    /// prints the orders that differ. Exit 0: all agree; 1: something differs; 2: could not run.
    /// The admin token comes from SALEBEACON_ADMIN_TOKEN.
    Reconcile(reconcile_cli::Args),
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // The PostgreSQL driver logs every statement's parameters at debug: sales (names, emails)
    // in a log file. It stays at info whatever RUST_LOG asks for the proxy itself.
    let filter = match "tokio_postgres=info".parse() {
        Ok(quiet) => filter.add_directive(quiet),
        Err(_) => filter,
    };
    // Colour only on a terminal, and never with NO_COLOR (https://no-color.org): a log file or a
    // journal must not fill up with escape codes.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::SignToken {
            order_id,
            total,
            currency,
            ttl_secs,
        }) => {
            let Some(secret) = std::env::var(ENV_ORDER_TOKEN_SECRET)
                .ok()
                .filter(|s| !s.is_empty())
            else {
                eprintln!("error: {ENV_ORDER_TOKEN_SECRET} is not set");
                return ExitCode::from(2);
            };
            let now = salebeacon_proxy::now_ms() / 1000;
            let expiry = u64::try_from(now).unwrap_or(0).saturating_add(ttl_secs);
            println!(
                "{}",
                sign_order_token(secret.as_bytes(), order_id.trim(), total, &currency, expiry)
            );
            ExitCode::SUCCESS
        }
        Some(Command::Reconcile(args)) => reconcile_cli::main(args).await,
        Some(Command::Run) | None => {
            init_logging(cli.log_format);
            let config = match ProxyConfig::load(&cli.run, |k| std::env::var(k).ok()) {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!("configuration: {e}");
                    eprintln!("salebeacon-proxy: configuration error: {e}");
                    return ExitCode::from(2);
                }
            };
            if config.admin_token.is_none() {
                tracing::warn!("SALEBEACON_ADMIN_TOKEN is not set: the admin API is disabled");
            }
            let proxy = match salebeacon_proxy::spawn(config).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!("cannot start: {e}");
                    eprintln!("salebeacon-proxy: cannot start: {e}");
                    return ExitCode::from(1);
                }
            };
            eprintln!("salebeacon-proxy listening on {}", proxy.base_url());
            shutdown_signal().await;
            tracing::info!("shutting down: finishing requests in flight and flushing the outbox");
            proxy.shutdown().await;
            ExitCode::SUCCESS
        }
    }
}
