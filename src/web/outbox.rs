//! The browser's persisted outbox and the ledger of delivered orders.
//!
//! A sale is written to the outbox (`salebeacon:outbox` in localStorage) before any network call
//! and leaves it only when the proxy has accepted it, so a closed tab or a failed request loses
//! nothing: the next page view with the tracker sends it again. The ledger
//! (`salebeacon:delivered`) remembers which `order_id`s this browser delivered, so a refreshed
//! thank-you page answers `duplicate` without a request.
//!
//! Both are JSON, written with the core's small writer and read back with `JSON.parse` and
//! `Reflect` (no serde in the browser module: it costs more bytes than this whole file). Each
//! entry keeps the exact request body, so a resend sends byte for byte what was first sent.
//! Anything unreadable is discarded with a console warning, never a crash. When a write fails
//! (no storage, quota, private mode) the page keeps its lists in memory from then on, and the
//! console says durability is reduced.

use super::browser;
use super::storage::{self, StorageError};
use crate::json::{push_string, ObjectWriter};
use crate::text::concat;
use js_sys::{Array, Reflect};
use std::cell::RefCell;
use wasm_bindgen::{JsCast, JsValue};

const OUTBOX_KEY: &str = "outbox";
const LEDGER_KEY: &str = "delivered";
/// The ledger keeps at most this many orders (oldest dropped first).
pub const LEDGER_MAX: usize = 500;

/// A sale waiting for the proxy's confirmation.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub order_id: String,
    /// The request body, JSON text.
    pub body: String,
    /// When `trackSale` took it (ms).
    pub created_at: i64,
    pub attempts: u32,
    /// Not before this time (ms), after a failed attempt.
    pub next_at: i64,
}

impl Entry {
    fn to_json(&self) -> String {
        let mut w = ObjectWriter::new();
        w.str("order_id", &self.order_id);
        w.raw("body", &self.body);
        w.num("created_at", self.created_at.max(0) as u64);
        w.num("attempts", u64::from(self.attempts));
        w.num("next_at", self.next_at.max(0) as u64);
        w.finish()
    }

    fn from_js(v: &JsValue) -> Option<Entry> {
        let get = |k: &str| Reflect::get(v, &k.into()).ok();
        let body = get("body")?;
        if !body.is_object() {
            return None;
        }
        Some(Entry {
            order_id: get("order_id")?.as_string()?,
            body: js_sys::JSON::stringify(&body).ok()?.as_string()?,
            created_at: get("created_at")?.as_f64()? as i64,
            attempts: get("attempts")?.as_f64()? as u32,
            next_at: get("next_at")?.as_f64()? as i64,
        })
    }
}

/// One delivered order and when.
#[derive(Debug, Clone, PartialEq)]
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
            browser::warn(&concat(&[
                e.message(),
                "; sales are kept in memory only and may be lost if this page closes before they are sent (durability reduced)",
            ]));
        }
    });
}

/// Reads a stored list; `None` when this page keeps its lists in memory.
fn load<T>(key: &str, item: impl Fn(&JsValue) -> Option<T>) -> Option<Vec<T>> {
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
        .filter(Array::is_array)
        .and_then(|v| Array::from(&v).iter().map(|x| item(&x)).collect());
    if parsed.is_none() {
        browser::warn(&concat(&[
            "discarded unreadable stored data (",
            storage::PREFIX,
            key,
            ")",
        ]));
        storage::remove(key);
    }
    Some(parsed.unwrap_or_default())
}

/// Writes a list; `false` when storage refused (the caller keeps it in memory).
fn save(key: &str, items: impl Iterator<Item = String>) -> bool {
    let mut text = String::from("[");
    for (i, item) in items.enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str(&item);
    }
    text.push(']');
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
    load(OUTBOX_KEY, Entry::from_js).unwrap_or_else(|| MEMORY.with(|m| m.borrow().0.clone()))
}

fn store_entries(list: Vec<Entry>) {
    if in_memory() || !save(OUTBOX_KEY, list.iter().map(Entry::to_json)) {
        MEMORY.with(|m| m.borrow_mut().0 = list);
    }
}

/// Adds a sale unless its order is already waiting. Returns whether it was added.
pub fn push(entry: Entry) -> bool {
    let mut list = entries();
    if list.iter().any(|e| e.order_id == entry.order_id) {
        return false;
    }
    list.push(entry);
    store_entries(list);
    true
}

/// Removes an order from the outbox.
pub fn remove(order_id: &str) {
    let mut list = entries();
    list.retain(|e| e.order_id != order_id);
    store_entries(list);
}

/// Records a failed attempt.
pub fn retry_later(order_id: &str, next_at: i64) {
    let mut list = entries();
    for e in list.iter_mut().filter(|e| e.order_id == order_id) {
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

fn delivered_from_js(v: &JsValue) -> Option<Delivered> {
    let pair = v.dyn_ref::<Array>()?;
    Some(Delivered(
        pair.get(0).as_string()?,
        pair.get(1).as_f64()? as i64,
    ))
}

fn ledger() -> Vec<Delivered> {
    load(LEDGER_KEY, delivered_from_js).unwrap_or_else(|| MEMORY.with(|m| m.borrow().1.clone()))
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
    let items = list.iter().map(|d| {
        let mut s = String::from("[");
        push_string(&mut s, &d.0);
        s.push(',');
        crate::text::push_int(&mut s, d.1.max(0));
        s.push(']');
        s
    });
    if in_memory() || !save(LEDGER_KEY, items) {
        MEMORY.with(|m| m.borrow_mut().1 = list);
    }
}

/// Forgets every delivered order (consent denied).
pub fn clear_ledger() {
    storage::remove(LEDGER_KEY);
    MEMORY.with(|m| m.borrow_mut().1.clear());
}
