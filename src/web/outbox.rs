//! The browser's persisted outbox and the ledger of delivered orders.
//!
//! A sale is written to the outbox (`salebeacon:outbox` in localStorage) before any network call
//! and leaves it only when the proxy has accepted it, so a closed tab or a failed request loses
//! nothing: the next page view with the tracker sends it again. The ledger
//! (`salebeacon:delivered`) remembers which `order_id`s this browser delivered, so a refreshed
//! thank-you page answers `duplicate` without a request. Both are JSON; anything unreadable is
//! discarded with a console warning, never a crash. When localStorage cannot be used the lists
//! live in memory for the life of the page, and the console says durability is reduced.

use super::browser;
use super::storage::{self, StorageError};
use crate::sale::Sale;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::cell::RefCell;
use wasm_bindgen::JsValue;

const OUTBOX_KEY: &str = "outbox";
const LEDGER_KEY: &str = "delivered";
/// The ledger keeps at most this many orders (oldest dropped first).
pub const LEDGER_MAX: usize = 500;

/// A sale waiting for the proxy's confirmation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub sale: Sale,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_token: Option<String>,
    /// When `trackSale` took it (ms).
    pub created_at: i64,
    #[serde(default)]
    pub attempts: u32,
    /// Not before this time (ms), after a failed attempt.
    #[serde(default)]
    pub next_at: i64,
}

/// One delivered order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Delivered(String, i64);

thread_local! {
    /// Fallback when localStorage fails: the page's memory.
    static MEMORY: RefCell<(Vec<Entry>, Vec<Delivered>)> = const { RefCell::new((Vec::new(), Vec::new())) };
    static WARNED: RefCell<bool> = const { RefCell::new(false) };
    /// Set once a write failed: from then on this page keeps its lists in memory, because what
    /// storage still holds is no longer the truth.
    static IN_MEMORY: RefCell<bool> = const { RefCell::new(false) };
}

fn in_memory() -> bool {
    IN_MEMORY.with(|m| *m.borrow())
}

/// Forgets the page-memory fallback, as a new page view does. For tests.
pub fn reset_memory() {
    MEMORY.with(|m| *m.borrow_mut() = (Vec::new(), Vec::new()));
    IN_MEMORY.with(|m| *m.borrow_mut() = false);
    WARNED.with(|w| *w.borrow_mut() = false);
}

fn warn_reduced(e: &StorageError) {
    WARNED.with(|w| {
        if !*w.borrow() {
            *w.borrow_mut() = true;
            browser::warn(&format!(
                "{e}; sales are kept in memory only and may be lost if this page closes before they are sent (durability reduced)"
            ));
        }
    });
}

fn load<T: DeserializeOwned>(key: &str) -> Option<Vec<T>> {
    if in_memory() {
        return None;
    }
    let text = match storage::get(key) {
        Ok(Some(t)) => t,
        Ok(None) => return Some(Vec::new()),
        Err(e) => {
            warn_reduced(&e);
            return None;
        }
    };
    let parsed = js_sys::JSON::parse(&text)
        .ok()
        .and_then(|v| serde_wasm_bindgen::from_value::<Vec<T>>(v).ok());
    if parsed.is_none() {
        browser::warn(&format!(
            "discarded unreadable stored data ({})",
            storage::PREFIX.to_owned() + key
        ));
        storage::remove(key);
    }
    Some(parsed.unwrap_or_default())
}

fn save<T: Serialize>(key: &str, items: &[T]) -> bool {
    let text = serde_wasm_bindgen::to_value(items)
        .ok()
        .and_then(|v| js_sys::JSON::stringify(&v).ok())
        .and_then(|s| s.as_string());
    let Some(text) = text else { return false };
    match storage::set(key, &text) {
        Ok(()) => true,
        Err(e) => {
            warn_reduced(&e);
            IN_MEMORY.with(|m| *m.borrow_mut() = true);
            false
        }
    }
}

/// The waiting sales, oldest first.
pub fn entries() -> Vec<Entry> {
    load(OUTBOX_KEY).unwrap_or_else(|| MEMORY.with(|m| m.borrow().0.clone()))
}

fn store_entries(list: Vec<Entry>) {
    if in_memory() || !save(OUTBOX_KEY, &list) {
        MEMORY.with(|m| m.borrow_mut().0 = list);
    }
}

/// Adds a sale unless its order is already waiting. Returns whether it was added.
pub fn push(entry: Entry) -> bool {
    let mut list = entries();
    if list.iter().any(|e| e.sale.order_id == entry.sale.order_id) {
        return false;
    }
    list.push(entry);
    store_entries(list);
    true
}

/// Removes an order from the outbox.
pub fn remove(order_id: &str) {
    let mut list = entries();
    list.retain(|e| e.sale.order_id != order_id);
    store_entries(list);
}

/// Records a failed attempt.
pub fn retry_later(order_id: &str, next_at: i64) {
    let mut list = entries();
    for e in list.iter_mut().filter(|e| e.sale.order_id == order_id) {
        e.attempts += 1;
        e.next_at = next_at;
    }
    store_entries(list);
}

/// Empties the outbox (consent denied).
pub fn clear() {
    storage::remove(OUTBOX_KEY);
    MEMORY.with(|m| m.borrow_mut().0.clear());
}

fn ledger() -> Vec<Delivered> {
    load(LEDGER_KEY).unwrap_or_else(|| MEMORY.with(|m| m.borrow().1.clone()))
}

/// Whether this browser already delivered `order_id`.
pub fn was_delivered(order_id: &str) -> bool {
    ledger().iter().any(|d| d.0 == order_id)
}

/// Remembers a delivered order, dropping entries older than `keep_ms` and the oldest past
/// [`LEDGER_MAX`].
pub fn record_delivered(order_id: &str, keep_ms: i64) {
    let now = browser::now_ms();
    let mut list = ledger();
    list.retain(|d| d.0 != order_id && now - d.1 <= keep_ms);
    list.push(Delivered(order_id.to_owned(), now));
    let excess = list.len().saturating_sub(LEDGER_MAX);
    list.drain(..excess);
    if in_memory() || !save(LEDGER_KEY, &list) {
        MEMORY.with(|m| m.borrow_mut().1 = list);
    }
}

/// Forgets every delivered order (consent denied).
pub fn clear_ledger() {
    storage::remove(LEDGER_KEY);
    MEMORY.with(|m| m.borrow_mut().1.clear());
}

/// The entry's request body: the sale plus its order token.
pub fn body(entry: &Entry) -> Option<String> {
    let v = serde_wasm_bindgen::to_value(&entry.sale).ok()?;
    if let Some(t) = &entry.order_token {
        js_sys::Reflect::set(&v, &"order_token".into(), &JsValue::from_str(t)).ok()?;
    }
    js_sys::JSON::stringify(&v).ok()?.as_string()
}
