//! Getting the outbox to the proxy: one delivery per order at a time, retries with backoff, and
//! the last-chance beacon when the page goes away.
//!
//! - [`deliver`] sends one order under its cross-tab lock ([`super::lock`]) and settles it from
//!   the proxy's answer: accepted or duplicate leave the outbox for the ledger; a final refusal
//!   leaves it with a console error; anything retryable stays, with its next attempt time.
//! - [`flush`] sends what is due; a timer wakes it when the earliest backoff ends, and the page's
//!   `online` event wakes it at once.
//! - [`beacon_all`] runs on `pagehide` / `visibilitychange: hidden`: whatever is not confirmed
//!   goes with `navigator.sendBeacon`, within the browser's 64 KB budget for such requests. The
//!   outbox keeps it anyway, because a beacon is never confirmed; the next page view resends, and
//!   the proxy answers `duplicate` for what already arrived.

use super::error::TrackerError;
use super::{browser, outbox, transport};
use crate::retry::{Backoff, OUTBOX_MAX_AGE_MS};
use crate::text::concat;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use wasm_bindgen::prelude::*;

/// What `navigator.sendBeacon` and `keepalive` fetches may carry in all, per page.
const BEACON_BUDGET: usize = 60 * 1024;

/// Where and how long: the tracker's settings a delivery needs.
#[derive(Clone, Debug)]
pub struct Target {
    pub endpoint: String,
    /// How long the ledger keeps an order (the attribution window).
    pub keep_ms: i64,
}

pub type Outcome = Option<Result<&'static str, TrackerError>>;

thread_local! {
    /// Orders this page is sending right now.
    static IN_FLIGHT: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    /// The pending retry timer, if any.
    static TIMER: Cell<Option<i32>> = const { Cell::new(None) };
    /// The target the timer and page events use: the latest `init`'s.
    static CURRENT: RefCell<Option<Target>> = const { RefCell::new(None) };
    static LISTENING: Cell<bool> = const { Cell::new(false) };
    /// Orders whose keepalive fetch has been issued.
    static SENDING: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// Sends one waiting order and settles it. `None`: not confirmed (it stays in the outbox), or
/// another delivery of it is under way here or in another tab.
pub async fn deliver(entry: outbox::Entry, target: Target) -> Outcome {
    let order_id = entry.order_id.clone();
    let claimed = IN_FLIGHT.with(|f| {
        let mut f = f.borrow_mut();
        let free = !f.contains(&order_id);
        if free {
            f.push(order_id.clone());
        }
        free
    });
    if !claimed {
        return None;
    }
    let lock_name = concat(&["order:", &order_id]);
    let outcome = super::lock::with_lock(&lock_name, move || async move {
        // Another tab may have settled it while this one waited for the lock.
        if outbox::was_delivered(&entry.order_id) {
            outbox::remove(&entry.order_id);
            return Some(Ok("duplicate"));
        }
        if !outbox::entries()
            .iter()
            .any(|e| e.order_id == entry.order_id)
        {
            return None;
        }
        settle(&entry, &target).await
    })
    .await
    .flatten();
    IN_FLIGHT.with(|f| f.borrow_mut().retain(|o| o != &order_id));
    outcome
}

async fn settle(entry: &outbox::Entry, target: &Target) -> Outcome {
    use transport::Answer;
    let order_id = entry.order_id.as_str();
    SENDING.with(|f| f.borrow_mut().push(order_id.to_owned()));
    let answer = transport::post_sale(&target.endpoint, &entry.body).await;
    SENDING.with(|f| f.borrow_mut().retain(|o| o != order_id));
    match answer {
        Answer::Accepted | Answer::Duplicate => {
            outbox::record_delivered(order_id, target.keep_ms);
            outbox::remove(order_id);
            Some(Ok(if answer == Answer::Duplicate {
                "duplicate"
            } else {
                "sent"
            }))
        }
        Answer::Invalid(issues) => {
            outbox::remove(order_id);
            browser::error(&concat(&[
                "the proxy refused order ",
                order_id,
                ": ",
                &crate::issue::summarize(&issues),
            ]));
            Some(Err(TrackerError::InvalidSale(issues)))
        }
        Answer::Rejected { status, message } => {
            outbox::remove(order_id);
            browser::error(&concat(&[
                "the proxy refused order ",
                order_id,
                " (",
                &crate::text::uint(u64::from(status)),
                "): ",
                &message,
            ]));
            Some(Err(TrackerError::Rejected { status, message }))
        }
        Answer::Retry { after_ms } => {
            let wait = after_ms
                .unwrap_or_else(|| Backoff::BROWSER.delay_ms(entry.attempts, browser::jitter()));
            outbox::retry_later(order_id, browser::now_ms() + wait as i64);
            schedule();
            None
        }
    }
}

/// Sends waiting sales, oldest first: all of them on a new page view (`force`), else those whose
/// backoff has passed. Drops sales past the outbox's maximum age. What to send, and where, is
/// decided now, when the flush is asked for, not when the returned future first runs.
pub fn flush(force: bool) -> impl std::future::Future<Output = ()> {
    let target = CURRENT.with(|c| c.borrow().clone());
    let now = browser::now_ms();
    let mut due = Vec::new();
    for entry in outbox::entries() {
        if now - entry.created_at > OUTBOX_MAX_AGE_MS as i64 {
            outbox::remove(&entry.order_id);
            browser::error(&concat(&[
                "gave up on order ",
                &entry.order_id,
                " after ",
                &crate::text::uint(OUTBOX_MAX_AGE_MS / 86_400_000),
                " days without reaching the proxy",
            ]));
        } else if force || entry.next_at <= now {
            due.push(entry);
        }
    }
    async move {
        let Some(target) = target else { return };
        for entry in due {
            let _ = deliver(entry, target.clone()).await;
        }
        schedule();
    }
}

/// Arms one timer for the earliest pending retry.
fn schedule() {
    let Some(window) = browser::window() else {
        return;
    };
    if let Some(id) = TIMER.with(Cell::take) {
        window.clear_timeout_with_handle(id);
    }
    let Some(next) = outbox::entries().iter().map(|e| e.next_at).min() else {
        return;
    };
    let wait = (next - browser::now_ms()).clamp(0, i64::from(i32::MAX)) as i32;
    let callback = Closure::once_into_js(|| {
        TIMER.with(|t| t.set(None));
        wasm_bindgen_futures::spawn_local(flush(false));
    });
    if let Ok(id) =
        window.set_timeout_with_callback_and_timeout_and_arguments_0(callback.unchecked_ref(), wait)
    {
        TIMER.with(|t| t.set(Some(id)));
    }
}

/// Sends every unconfirmed sale with `navigator.sendBeacon`, within the budget.
pub fn beacon_all() {
    let Some(target) = CURRENT.with(|c| c.borrow().clone()) else {
        return;
    };
    let Some(navigator) = browser::global("navigator") else {
        return;
    };
    let navigator: web_sys::Navigator = navigator.unchecked_into();
    let url = concat(&[&target.endpoint, "/sales"]);
    let mut spent = 0;
    for entry in outbox::entries() {
        // An order whose keepalive fetch was issued goes on without the page; one that is only
        // waiting for its lock has not left yet and must go by beacon.
        let sending = SENDING.with(|f| f.borrow().contains(&entry.order_id));
        if sending {
            continue;
        }
        spent += entry.body.len();
        if spent > BEACON_BUDGET {
            break;
        }
        let _ = navigator.send_beacon_with_opt_str(&url, Some(&entry.body));
    }
}

/// Makes `target` the one page events and timers use, and listens to the page once.
pub fn start(target: Target) {
    CURRENT.with(|c| *c.borrow_mut() = Some(target));
    if LISTENING.with(|l| l.replace(true)) {
        return;
    }
    let Some(window) = browser::window() else {
        return;
    };
    let online = Closure::<dyn FnMut()>::new(|| {
        wasm_bindgen_futures::spawn_local(flush(true));
    });
    let hidden = Closure::<dyn FnMut()>::new(move || {
        let state =
            browser::global("document").and_then(|d| browser::prop_str(&d, "visibilityState"));
        if state.as_deref() == Some("hidden") {
            beacon_all();
        }
    });
    let pagehide = Closure::<dyn FnMut()>::new(beacon_all);
    let _ = window.add_event_listener_with_callback("online", online.as_ref().unchecked_ref());
    let _ = window.add_event_listener_with_callback("pagehide", pagehide.as_ref().unchecked_ref());
    if let Some(doc) = browser::global("document") {
        let _ = doc
            .unchecked_into::<web_sys::EventTarget>()
            .add_event_listener_with_callback("visibilitychange", hidden.as_ref().unchecked_ref());
    }
    // The listeners live as long as the page.
    online.forget();
    hidden.forget();
    pagehide.forget();
}

/// Stops using the current target (consent denied, or a test's new page view).
pub fn stop() {
    CURRENT.with(|c| *c.borrow_mut() = None);
    if let (Some(w), Some(id)) = (browser::window(), TIMER.with(Cell::take)) {
        w.clear_timeout_with_handle(id);
    }
}

/// Runs `fut` to completion in the background and waits for it at most `ms`: `None` if it did
/// not finish in time (it still finishes).
pub async fn with_timeout<F>(fut: F, ms: u32) -> Option<F::Output>
where
    F: std::future::Future + 'static,
    F::Output: 'static,
{
    let slot = Rc::new(RefCell::new(None));
    let mut resolver: Option<js_sys::Function> = None;
    let finished = js_sys::Promise::new(&mut |resolve, _| resolver = Some(resolve));
    let out = slot.clone();
    wasm_bindgen_futures::spawn_local(async move {
        let v = fut.await;
        *out.borrow_mut() = Some(v);
        if let Some(r) = resolver {
            let _ = r.call0(&JsValue::UNDEFINED);
        }
    });
    let timer = js_sys::Promise::new(&mut |resolve, _| {
        if let Some(w) = browser::window() {
            let _ = w.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms as i32);
        }
    });
    let race = js_sys::Promise::race(&js_sys::Array::of2(&finished, &timer));
    let _ = wasm_bindgen_futures::JsFuture::from(race).await;
    let v = slot.borrow_mut().take();
    v
}
