//! The WebAssembly module's exports: [`crate::tracker`]'s functions, as the browser tracker's
//! JavaScript calls them.
//!
//! This is the only code compiled for `wasm32` alone, and it holds no logic: each export passes
//! strings and numbers through to the plain function of the same name. The JavaScript side
//! (`www/package/src/`, bundled by the build) does the page's plumbing; everything that decides
//! what a value is worth stays in Rust.
//!
//! The build makes two modules of this crate, by cargo feature, so that a page downloads only the
//! rules it uses (the embed's byte budget): `visit` (capture, describe, visitor, minorUnits: a
//! landing page, and the API's synchronous calls) and `order` (sale, nextAttempt: a thank-you
//! page). `put` is in both.

use crate::prelude::*;
use crate::value::Loose;
use core::alloc::{GlobalAlloc, Layout};
use core::cell::{Cell, RefCell};
use wasm_bindgen::prelude::*;

/// A panic cannot be reported anywhere useful from inside the module (and no input reaches one:
/// the rules are total), so it traps, which the JavaScript side sees as an exception. Linking
/// std's panic machinery instead would cost several kilobytes of formatting code.
#[cfg(feature = "embed")]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}

/// The module's allocator: an arena that starts over whenever nothing is allocated.
///
/// Every export allocates only while it runs (its input strings, its answer, which the glue
/// copies out and frees), and the fields handed over by [`put`] live only until the `sale` or
/// `capture` that takes them, so between two calls nothing is live and the whole arena is free
/// again. That makes a bump allocator exact here: no free list, no size classes, no
/// fragmentation, about a hundred bytes of code where a general allocator costs kilobytes. The
/// arena grows the wasm memory in 64 KiB pages as a call needs it and keeps it for later calls.
/// Single-threaded (wasm32 without atomics), hence the `Cell`s.
struct Arena {
    start: Cell<usize>,
    next: Cell<usize>,
    end: Cell<usize>,
    live: Cell<usize>,
}

// SAFETY: the module runs on one thread (no atomics, no shared memory).
unsafe impl Sync for Arena {}

const PAGE: usize = 65_536;

#[global_allocator]
static ARENA: Arena = Arena {
    start: Cell::new(0),
    next: Cell::new(0),
    end: Cell::new(0),
    live: Cell::new(0),
};

/// How many allocations are live (for the module's tests: every export must give back what it
/// takes, or the arena could never start over).
#[doc(hidden)]
pub fn arena_live() -> usize {
    ARENA.live.get()
}

unsafe impl GlobalAlloc for Arena {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let align = layout.align().max(8);
        let at = (self.next.get() + align - 1) & !(align - 1);
        let Some(until) = at.checked_add(layout.size()) else {
            return core::ptr::null_mut();
        };
        if self.start.get() == 0 || until > self.end.get() {
            // Grow the memory (the arena is the only thing that grows it, so the new pages follow
            // the old ones).
            let need = until.saturating_sub(self.end.get()).max(PAGE);
            let pages = need.div_ceil(PAGE);
            let old = core::arch::wasm32::memory_grow(0, pages);
            if old == usize::MAX {
                return core::ptr::null_mut();
            }
            if self.start.get() == 0 {
                self.start.set(old * PAGE);
                self.next.set(old * PAGE);
                self.end.set((old + pages) * PAGE);
                return self.alloc(layout);
            }
            self.end.set((old + pages) * PAGE);
        }
        self.next.set(until);
        self.live.set(self.live.get() + 1);
        at as *mut u8
    }

    unsafe fn dealloc(&self, _ptr: *mut u8, _layout: Layout) {
        let live = self.live.get().saturating_sub(1);
        self.live.set(live);
        if live == 0 {
            self.next.set(self.start.get());
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let old_end = ptr as usize + layout.size();
        // The last block grows in place when the arena has room.
        if old_end == self.next.get() && (ptr as usize).saturating_add(new_size) <= self.end.get() {
            self.next.set(ptr as usize + new_size);
            return ptr;
        }
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return core::ptr::null_mut();
        };
        let new = self.alloc(new_layout);
        if !new.is_null() {
            core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
            self.dealloc(ptr, layout);
        }
        new
    }
}

/// The fields handed over so far by [`put`], for the next [`sale`] or [`capture`].
struct Fields(RefCell<crate::tracker::Fields>);

// SAFETY: the module runs on one thread (no atomics, no shared memory).
unsafe impl Sync for Fields {}

static FIELDS: Fields = Fields(RefCell::new(Vec::new()));

/// Hands over one field of a JavaScript object: its name and its value by type (`0` null or
/// undefined, `1` a boolean in `n`, `2` a number in `n`, `3` a string in `s`, `4` a list, `5`
/// any other object). The JavaScript side reads the object once (a getter runs once); how a
/// value counts (is this number an exact integer?) is decided here.
#[wasm_bindgen]
pub fn put(name: &str, kind: u8, s: &str, n: f64) {
    let value = match kind {
        1 => Loose::Bool(n != 0.0),
        2 => Loose::from_f64(n),
        3 => Loose::Str(s.to_owned()),
        4 => Loose::Composite("a list"),
        5 => Loose::Composite("an object"),
        _ => Loose::Null,
    };
    FIELDS.0.borrow_mut().push((name.to_owned(), value));
}

fn take_fields() -> crate::tracker::Fields {
    core::mem::take(&mut *FIELDS.0.borrow_mut())
}

#[cfg(feature = "order")]
/// `tracker::sale` over the fields handed over: `{order_id, body}`, `{issues}` or
/// `{unattributed}`, as JSON text.
#[wasm_bindgen]
pub fn sale(aff: &str, vid: &str, window_days: u32, now: f64) -> String {
    crate::tracker::sale(take_fields(), aff, vid, window_days, now as i64)
}

#[cfg(feature = "visit")]
/// `tracker::capture` over the fields handed over (the URL's recognised parameters): what they
/// mean for attribution, as JSON text.
#[wasm_bindgen]
pub fn capture(stored: &str, model: &str, window_days: u32, now: f64) -> String {
    crate::tracker::capture(take_fields(), stored, model, window_days, now as i64)
}

#[cfg(feature = "visit")]
/// `tracker::describe`: the public view of a stored attribution, or `null`, as JSON text.
#[wasm_bindgen]
pub fn describe(aff: &str, window_days: u32, now: f64) -> String {
    crate::tracker::describe(aff, window_days, now as i64)
}

#[cfg(feature = "visit")]
/// `tracker::minor_units`: `{value}` or `{issues}`, as JSON text.
#[wasm_bindgen(js_name = minorUnits)]
pub fn minor_units(amount: &str, currency: &str) -> String {
    crate::tracker::minor_units(amount, currency)
}

#[cfg(feature = "visit")]
/// `tracker::visitor`: the stored visitor uid if valid, else a new one from the random bytes.
#[wasm_bindgen]
pub fn visitor(stored: &str, random: &[u8]) -> String {
    crate::tracker::visitor(stored, random)
}

#[cfg(feature = "order")]
/// `tracker::next_attempt`: `0` delivered, `-1` refused for good, else the wait in ms.
#[wasm_bindgen(js_name = nextAttempt)]
pub fn next_attempt(status: u16, attempts: u32, jitter: f64, retry_after: &str) -> f64 {
    crate::tracker::next_attempt(status, attempts, jitter, retry_after)
}
