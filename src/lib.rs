//! salebeacon: conversion tracking for Growi creator campaigns.
//!
//! This crate is two things with one definition of a valid sale:
//!
//! - **The core** (every module but `web`): pure Rust rules shared by the browser tracker and the
//!   merchant proxy. [`sale`] validates what a shop hands us into Growi's create body, [`update`]
//!   does the same for corrections, [`money`] holds ISO 4217 and exact decimal conversion,
//!   [`attribution`] knows which URL parameters credit which creator and how that is stored,
//!   [`visitor`] makes visitor uids, [`retry`] is the delivery retry policy, [`time`] parses and
//!   prints timestamps, [`contract`] names what the browser and the proxy share (cookies, storage
//!   keys, endpoints, error codes) and parses a `Cookie` header. No browser or HTTP types appear here, so the proxy links it natively.
//! - **The browser tracker** (`web`, compiled only for `wasm32`): the wasm-bindgen layer that
//!   exports `init`, `trackSale`, `consent`, `attribution`, `visitorId` and `toMinorUnits` to
//!   JavaScript. It is the only module that touches web APIs; that one cfg boundary keeps the core
//!   testable with plain `cargo test`.

// The no-panic rule, enforced: nothing a user, a config or the network controls may unwrap.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod attribution;
pub mod contract;
pub mod issue;
pub mod json;
pub mod money;
pub mod retry;
pub mod sale;
pub mod text;
pub mod time;
pub mod update;
pub mod value;
pub mod visitor;

#[cfg(target_arch = "wasm32")]
pub mod web;

pub use attribution::{Attribution, Model, Referral};
pub use issue::Issue;
pub use sale::{Origin, Sale, SaleError, SaleInput};
pub use update::{SaleUpdate, SaleUpdateInput};

// The browser module's allocator: much smaller than the default dlmalloc (DESIGN.md size budget).
// A real free-list allocator (boundary tags, coalescing), not a leak-forever bump allocator: a
// page can live for hours.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOC: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();
