//! The shared state behind every handler and behind the in-process handle.
//!
//! One [`SandboxState`] (a cheap `Arc` clone) owns the configured keys, the seed, the sales, the
//! limiter, the fault injector and the request log. Each piece has its own `std::sync::Mutex`,
//! held only for short synchronous sections (never across an `.await`), so the control API and
//! Rust tests can read the state while requests are in flight. A poisoned lock is recovered
//! rather than propagated: every section leaves its data consistent before anything can panic.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::http::HeaderValue;
use serde::{Deserialize, Serialize};

use crate::edit::{SaleEdit, SaleInsert};
use crate::error::{ApiError, SandboxError};
use crate::faults::{FaultInjector, Faults};
use crate::limits::{KeyId, RateLimiter};
use crate::sale::SandboxSale;
use crate::seed::Seed;
use crate::store::{Store, StoreError};
use crate::SandboxConfig;

/// The request log keeps at most this many entries (oldest dropped first).
pub const MAX_LOGGED_REQUESTS: usize = 100_000;

/// One API request as the sandbox saw it (`GET /_sandbox/requests`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedRequest {
    /// `POST`, `PATCH`, `GET`, ...
    pub method: String,
    /// The path, without the query string.
    pub path: String,
    /// The order concerned, if any: the body's `order_id` on create, the `order_id` query
    /// parameter on list, the sale's `external_id` on PATCH of a known sale.
    pub order_id: Option<String>,
    /// The status answered; `0` when the connection was dropped without an answer (`down`).
    pub status: u16,
    /// When the request arrived, in milliseconds since the Unix epoch.
    pub received_at_ms: u64,
}

struct Inner {
    api_key: String,
    read_only_key: Option<String>,
    seed: Seed,
    store: Mutex<Store>,
    limiter: Mutex<RateLimiter>,
    injector: Mutex<FaultInjector>,
    log: Mutex<VecDeque<RecordedRequest>>,
}

/// Everything a running sandbox knows; clone freely.
#[derive(Clone)]
pub struct SandboxState {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SandboxState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxState").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Compares without stopping at the first differing byte.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl SandboxState {
    /// Validates the seed, loads the state file if any, and builds the state.
    pub fn new(config: SandboxConfig) -> Result<SandboxState, SandboxError> {
        let SandboxConfig {
            api_key,
            read_only_key,
            mut seed,
            min_interval,
            hourly_limit,
            faults,
            fault_seed,
            state_file,
        } = config;
        seed.validate()?;
        let store = Store::new(&seed, state_file)?;
        Ok(SandboxState {
            inner: Arc::new(Inner {
                api_key,
                read_only_key: read_only_key.filter(|k| !k.is_empty()),
                seed,
                store: Mutex::new(store),
                limiter: Mutex::new(RateLimiter::new(min_interval, hourly_limit)),
                injector: Mutex::new(FaultInjector::new(faults, fault_seed)),
                log: Mutex::new(VecDeque::new()),
            }),
        })
    }

    /// Which key an `Authorization` header carries: exactly `Bearer <key>`.
    pub fn authenticate(&self, header: Option<&HeaderValue>) -> Option<KeyId> {
        let presented = header?.as_bytes().strip_prefix(b"Bearer ")?;
        if presented.is_empty() {
            return None;
        }
        if same_secret(presented, self.inner.api_key.as_bytes()) {
            return Some(KeyId::Main);
        }
        match &self.inner.read_only_key {
            Some(ro) if same_secret(presented, ro.as_bytes()) => Some(KeyId::ReadOnly),
            _ => None,
        }
    }

    /// The seed in use.
    pub fn seed(&self) -> &Seed {
        &self.inner.seed
    }

    /// The current faults.
    pub fn faults(&self) -> Faults {
        lock(&self.inner.injector).faults().clone()
    }

    /// Replaces the faults (shares clamped into 0..=1).
    pub fn set_faults(&self, faults: Faults) {
        lock(&self.inner.injector).set(faults);
    }

    /// Every API request logged since start or the last reset, in the order they were answered.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.inner.log).iter().cloned().collect()
    }

    /// Every sale, by ascending id.
    pub fn sales(&self) -> Vec<SandboxSale> {
        lock(&self.inner.store).all().cloned().collect()
    }

    /// Back to the seed's sales; clears the request log and the rate-limit history.
    /// Faults are left as they are.
    pub fn reset(&self) -> Result<(), StoreError> {
        lock(&self.inner.store).reset(&self.inner.seed)?;
        lock(&self.inner.log).clear();
        lock(&self.inner.limiter).reset();
        Ok(())
    }

    /// Puts a sale straight into the store (see [`SaleInsert`]): no API rule, no rate limit, no
    /// request log entry. A `422` if its order id is taken or a field is wrong.
    pub fn insert_sale(&self, insert: SaleInsert) -> Result<SandboxSale, ApiError> {
        let mut store = self.store();
        if store.by_order_id(insert.external_id.trim()).is_some() {
            return Err(ApiError::unprocessable(
                "A sale with this order_id exists already.",
            ));
        }
        // Built (and so checked) before an id is used up; the store then gives it its id.
        let sale = insert.into_sale(0)?;
        Ok(store.insert_new(|id| SandboxSale { id, ..sale })?)
    }

    /// Changes a held sale as given (see [`SaleEdit`]); `404` if no sale has this order id.
    pub fn edit_sale(&self, order_id: &str, edit: SaleEdit) -> Result<SandboxSale, ApiError> {
        let mut store = self.store();
        let current = store
            .by_order_id(order_id)
            .cloned()
            .ok_or(ApiError::SaleNotFound)?;
        let changed = edit.apply(current)?;
        store.replace(changed.clone())?;
        Ok(changed)
    }

    /// Removes a held sale, as if Growi had lost it; `404` if no sale has this order id.
    pub fn delete_sale(&self, order_id: &str) -> Result<SandboxSale, ApiError> {
        let mut store = self.store();
        let id = store
            .by_order_id(order_id)
            .map(|s| s.id)
            .ok_or(ApiError::SaleNotFound)?;
        store.remove(id)?.ok_or(ApiError::SaleNotFound)
    }

    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        lock(&self.inner.store)
    }

    pub(crate) fn limiter(&self) -> MutexGuard<'_, RateLimiter> {
        lock(&self.inner.limiter)
    }

    pub(crate) fn injector(&self) -> MutexGuard<'_, FaultInjector> {
        lock(&self.inner.injector)
    }

    pub(crate) fn record(&self, request: RecordedRequest) {
        let mut log = lock(&self.inner.log);
        if log.len() >= MAX_LOGGED_REQUESTS {
            log.pop_front();
        }
        log.push_back(request);
    }
}
