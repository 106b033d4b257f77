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
//!   keys, endpoints, error codes) and parses a `Cookie` header. No browser or HTTP types appear
//!   here, so the proxy links it natively.
//! - **The browser tracker's rules** ([`tracker`]): what the browser tracker's JavaScript asks,
//!   as plain functions over text (validate a sale, capture attribution from a URL, convert an
//!   amount, make a visitor uid, schedule a retry). `web` (compiled for `wasm32` only) exports them
//!   to JavaScript through wasm-bindgen and holds no logic, so everything is testable with plain
//!   `cargo test`.

// The no-panic rule, enforced: nothing a user, a config or the network controls may unwrap.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
// `core` + `alloc` only: the shipped browser module (feature `embed`) then links no part of std
// (its runtime, its panic machinery with `core::fmt`), which is a large share of a module this
// small. Everywhere else (natively, wasm tests) std is linked as usual.
#![no_std]

extern crate alloc;
#[cfg(not(feature = "embed"))]
extern crate std;

/// What every module of the crate uses from `alloc` (the part of std's prelude a `no_std` crate
/// lacks).
mod prelude {
    pub use alloc::borrow::ToOwned;
    pub use alloc::string::{String, ToString};
    pub use alloc::vec::Vec;
    pub use alloc::{format, vec};
}

pub mod attribution;
pub mod contract;
pub mod issue;
pub mod json;
pub mod money;
pub mod retry;
pub mod sale;
pub mod text;
pub mod time;
pub mod tracker;
pub mod update;
pub mod value;
pub mod visitor;

#[cfg(target_arch = "wasm32")]
pub mod web;

pub use attribution::{Attribution, Model, Referral};
pub use issue::Issue;
pub use sale::{Origin, Sale, SaleError, SaleInput};
pub use update::{SaleUpdate, SaleUpdateInput};
