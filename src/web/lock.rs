//! Cross-tab mutual exclusion for one order's delivery.
//!
//! Two tabs of the same shop share localStorage, so both can see the same waiting sale (a
//! thank-you page open twice, a resend on a page view while another tab is sending). Delivery of
//! one order therefore runs under a lock named after it: the Web Locks API where the browser has
//! it (`navigator.locks`, all current engines), otherwise a lease in localStorage
//! (`salebeacon:lease:{order}` = `{tab}:{expiry}`, re-read after writing so the loser of a race
//! sees the winner). Whoever gets the lock second finds the order in the ledger and does not
//! send it again.

use super::{browser, storage};
use js_sys::{Function, Promise, Reflect};
use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{future_to_promise, JsFuture};

/// How long a storage lease holds without renewal.
const LEASE_MS: i64 = 15_000;

thread_local! {
    static TAB_ID: String = crate::visitor::uuid_v4(browser::random_bytes());
}

fn web_locks() -> Option<(JsValue, Function)> {
    let nav = browser::global("navigator")?;
    let locks = Reflect::get(&nav, &"locks".into()).ok()?;
    let request = Reflect::get(&locks, &"request".into())
        .ok()?
        .dyn_into()
        .ok()?;
    Some((locks, request))
}

/// Runs `f` while holding the lock `name`, waiting for it if another tab holds it. `None` when
/// the lock could not be had (a storage lease held by a live tab).
pub async fn with_lock<F, Fut, T>(name: &str, f: F) -> Option<T>
where
    F: FnOnce() -> Fut + 'static,
    Fut: Future<Output = T> + 'static,
    T: 'static,
{
    let slot: Rc<RefCell<Option<T>>> = Rc::new(RefCell::new(None));
    if let Some((locks, request)) = web_locks() {
        let out = slot.clone();
        let callback = Closure::once_into_js(move |_lock: JsValue| -> Promise {
            future_to_promise(async move {
                let v = f().await;
                *out.borrow_mut() = Some(v);
                Ok(JsValue::UNDEFINED)
            })
        });
        let lock_name = crate::text::concat(&["salebeacon:", name]);
        let pending = request.call2(&locks, &lock_name.into(), &callback).ok()?;
        JsFuture::from(Promise::resolve(&pending)).await.ok()?;
        let v = slot.borrow_mut().take();
        return v;
    }
    let key = crate::text::concat(&["lease:", name]);
    if !take_lease(&key) {
        return None;
    }
    let v = f().await;
    storage::remove(&key);
    Some(v)
}

fn take_lease(key: &str) -> bool {
    let me = TAB_ID.with(Clone::clone);
    let now = browser::now_ms();
    let held_by_other = storage::get(key).ok().flatten().is_some_and(|v| {
        let (tab, expiry) = v.split_once(':').unwrap_or(("", "0"));
        tab != me && expiry.parse::<i64>().unwrap_or(0) > now
    });
    if held_by_other {
        return false;
    }
    let mut lease = crate::text::concat(&[&me, ":"]);
    crate::text::push_int(&mut lease, now + LEASE_MS);
    if storage::set(key, &lease).is_err() {
        // No storage means no other tab can see this sale either.
        return true;
    }
    storage::get(key)
        .ok()
        .flatten()
        .is_some_and(|v| v.starts_with(&me))
}
