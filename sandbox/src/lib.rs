//! salebeacon-sandbox: a faithful local emulator of the Growi public API.
//!
//! The merchant proxy, the demo and developers need a Growi that behaves like the real one —
//! bearer-key auth, 2-second pacing and an hourly quota, idempotent creates, the PATCH rules, the
//! list endpoint with its major-unit aggregates — and that can also misbehave on demand (latency,
//! 5xx, 429, a dead connection). This crate is that Growi, over real HTTP on a local port.
//!
//! Two ways in:
//! - the binary `salebeacon-sandbox` (see `main.rs` and `sandbox/README.md`);
//! - this library, for other crates' tests: [`spawn`] a sandbox on `127.0.0.1:0`, point the code
//!   under test at [`RunningSandbox::base_url`], steer it with [`RunningSandbox::set_faults`] and
//!   inspect [`RunningSandbox::requests`] / [`RunningSandbox::sales`], and make "Growi" disagree
//!   with the client with [`RunningSandbox::insert_sale`], [`RunningSandbox::edit_sale`] and
//!   [`RunningSandbox::delete_sale`]. [`app`] gives the bare router for
//!   `tower::ServiceExt::oneshot` tests.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use salebeacon_sandbox::{spawn, SandboxConfig};
//! let sandbox = spawn(
//!     SandboxConfig { min_interval: std::time::Duration::ZERO, ..SandboxConfig::default() },
//!     "127.0.0.1:0".parse().map_err(std::io::Error::other)?,
//! )
//! .await?;
//! let url = format!("{}/affiliate_sales", sandbox.base_url());
//! # let _ = url;
//! sandbox.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Module map: `api` (routes, the auth/limit/fault gate), `validate` (request bodies and Growi's
//! 422 messages), `sale` (the sale types), `store` (sales and the state file), `limits` (rate limiting), `faults`
//! (fault injection), `seed` (campaigns and affiliates), `control` (the `/_sandbox` API),
//! `server` (the accept loop that makes `down` a connection reset), `error` (every error answer),
//! `money` and `timefmt` (amounts and timestamps).

// The no-panic rule, enforced: nothing a user, a config or the network controls may unwrap.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod api;
pub mod control;
pub mod edit;
pub mod error;
pub mod faults;
pub mod limits;
pub mod money;
pub mod sale;
pub mod seed;
pub mod server;
pub mod state;
pub mod store;
pub mod timefmt;
pub mod validate;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use api::{app, API_BASE};
pub use edit::{SaleEdit, SaleInsert};
pub use error::{ApiError, SandboxError};
pub use faults::Faults;
pub use money::CommissionRule;
pub use sale::{SaleStatus, SaleType, SandboxSale};
pub use seed::{Affiliate, Campaign, Seed, SeedError};
pub use server::serve;
pub use state::{RecordedRequest, SandboxState};
pub use store::StoreError;

/// The default API key of [`SandboxConfig::default`].
pub const DEFAULT_API_KEY: &str = "sk_test_sandbox";

/// The default minimum interval between requests per key (Growi's documented 2 s).
pub const DEFAULT_MIN_INTERVAL: Duration = Duration::from_millis(2000);

/// How a sandbox behaves.
#[derive(Clone)]
pub struct SandboxConfig {
    /// The read-write key (`Authorization: Bearer <key>`).
    pub api_key: String,
    /// An optional read-only key: reads work, writes get `403`.
    pub read_only_key: Option<String>,
    /// Campaigns, affiliates and pre-existing sales.
    pub seed: Seed,
    /// Minimum time between requests per key; zero disables the rule.
    pub min_interval: Duration,
    /// Requests per key per hour; `None` (or 0) disables the rule.
    pub hourly_limit: Option<u32>,
    /// Faults active from the start.
    pub faults: Faults,
    /// Seed of the PRNG that decides which requests the fault shares hit.
    pub fault_seed: u64,
    /// Where sales are persisted (JSON); `None` keeps them in memory only.
    pub state_file: Option<PathBuf>,
}

impl Default for SandboxConfig {
    /// Key `sk_test_sandbox`, the default seed, 2000 ms between requests, no hourly limit, no
    /// faults, fault seed 0, in memory.
    fn default() -> Self {
        SandboxConfig {
            api_key: DEFAULT_API_KEY.to_owned(),
            read_only_key: None,
            seed: Seed::default(),
            min_interval: DEFAULT_MIN_INTERVAL,
            hourly_limit: None,
            faults: Faults::default(),
            fault_seed: 0,
            state_file: None,
        }
    }
}

impl std::fmt::Debug for SandboxConfig {
    /// Keys are redacted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxConfig")
            .field("api_key", &"<redacted>")
            .field(
                "read_only_key",
                &self.read_only_key.as_ref().map(|_| "<redacted>"),
            )
            .field("seed", &self.seed)
            .field("min_interval", &self.min_interval)
            .field("hourly_limit", &self.hourly_limit)
            .field("faults", &self.faults)
            .field("fault_seed", &self.fault_seed)
            .field("state_file", &self.state_file)
            .finish()
    }
}

/// Binds `addr` (port 0 picks a free port) and serves a sandbox in a tokio task.
///
/// Fails if the seed is invalid, the state file is unreadable, or the address cannot be bound.
/// Dropping the handle stops the server too (without waiting for it).
pub async fn spawn(config: SandboxConfig, addr: SocketAddr) -> std::io::Result<RunningSandbox> {
    let state = SandboxState::new(config)?;
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, state.clone(), async move {
        let _ = stopped.await;
    }));
    Ok(RunningSandbox {
        addr,
        state,
        stop,
        task,
    })
}

/// A sandbox serving in the background (see [`spawn`]).
#[derive(Debug)]
pub struct RunningSandbox {
    addr: SocketAddr,
    state: SandboxState,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl RunningSandbox {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (a loopback address even when bound to `0.0.0.0`).
    pub fn root_url(&self) -> String {
        let ip = match self.addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        format!("http://{}", SocketAddr::new(ip, self.addr.port()))
    }

    /// `http://127.0.0.1:PORT/api/public/v1`, the Growi base URL to give the code under test.
    pub fn base_url(&self) -> String {
        format!("{}{API_BASE}", self.root_url())
    }

    /// The shared state (the same object the handlers use).
    pub fn state(&self) -> &SandboxState {
        &self.state
    }

    /// Replaces the faults (shares are clamped into 0..=1).
    pub fn set_faults(&self, faults: Faults) {
        self.state.set_faults(faults);
    }

    /// The current faults.
    pub fn faults(&self) -> Faults {
        self.state.faults()
    }

    /// Every API request received since start or the last reset.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.requests()
    }

    /// Every sale, by ascending id (seeded ones included).
    pub fn sales(&self) -> Vec<SandboxSale> {
        self.state.sales()
    }

    /// Back to the seed: clears sales, the request log and the rate-limit history.
    pub fn reset(&self) -> Result<(), StoreError> {
        self.state.reset()
    }

    /// Puts a sale straight into the store, of any platform and status, as if Growi had it from
    /// elsewhere (see [`SaleInsert`]); not logged, not rate limited.
    pub fn insert_sale(&self, sale: SaleInsert) -> Result<SandboxSale, ApiError> {
        self.state.insert_sale(sale)
    }

    /// Changes the sale of `order_id` as given, whatever the API's rules (see [`SaleEdit`]).
    pub fn edit_sale(&self, order_id: &str, edit: SaleEdit) -> Result<SandboxSale, ApiError> {
        self.state.edit_sale(order_id, edit)
    }

    /// Removes the sale of `order_id`, as if Growi had lost it.
    pub fn delete_sale(&self, order_id: &str) -> Result<SandboxSale, ApiError> {
        self.state.delete_sale(order_id)
    }

    /// Stops accepting, waits for in-flight requests (bounded), and returns.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        match self.task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "sandbox server ended with an error"),
            Err(e) => tracing::warn!(error = %e, "sandbox server task failed"),
        }
    }
}
