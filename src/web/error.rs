//! The one error type of the browser API, and its conversion into a JavaScript `Error`.
//!
//! Every rejection and throw of the JS surface is an `Error` whose `name` is `"SaleBeaconError"`,
//! with a machine-readable `code` and the list of `issues` (`{ field, message }`), so a developer
//! can `catch (e) { if (e.code === 'invalid_sale') showIssues(e.issues) }`. Errors are typed in
//! Rust and converted once, here, at the edge.

use crate::issue::{summarize, Issue};
use js_sys::{Array, Object, Reflect};
use wasm_bindgen::JsValue;

/// What went wrong, by kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackerError {
    /// The sale breaks a rule (ours, or the proxy's 422).
    InvalidSale(Vec<Issue>),
    /// `init` options are wrong.
    InvalidConfig(Vec<Issue>),
    /// `trackSale` / `consent` before `init`.
    NotInitialized,
    /// `toMinorUnits` could not convert exactly.
    InvalidAmount(Vec<Issue>),
    /// The proxy refused the sale for good with a status other than 422.
    Rejected { status: u16, message: String },
}

impl TrackerError {
    pub fn code(&self) -> &'static str {
        match self {
            TrackerError::InvalidSale(_) => "invalid_sale",
            TrackerError::InvalidConfig(_) => "invalid_config",
            TrackerError::NotInitialized => "not_initialized",
            TrackerError::InvalidAmount(_) => "invalid_amount",
            TrackerError::Rejected { .. } => "rejected",
        }
    }

    pub fn issues(&self) -> Vec<Issue> {
        match self {
            TrackerError::InvalidSale(i)
            | TrackerError::InvalidConfig(i)
            | TrackerError::InvalidAmount(i) => i.clone(),
            TrackerError::NotInitialized => vec![Issue::new(
                "init",
                "call init() (or salebeacon('init')) before this",
            )],
            TrackerError::Rejected { status, message } => vec![Issue::new(
                "sale",
                crate::text::concat(&[
                    "the proxy refused the sale (",
                    &crate::text::uint(u64::from(*status)),
                    "): ",
                    message,
                ]),
            )],
        }
    }

    fn message(&self) -> String {
        let what = match self {
            TrackerError::InvalidSale(_) => "invalid sale",
            TrackerError::InvalidConfig(_) => "invalid init options",
            TrackerError::NotInitialized => "salebeacon is not initialized",
            TrackerError::InvalidAmount(_) => "invalid amount",
            TrackerError::Rejected { .. } => "sale rejected",
        };
        crate::text::concat(&["salebeacon: ", what, ": ", &summarize(&self.issues())])
    }
}

/// Builds a plain `{ field, message }` object.
pub(crate) fn issue_object(issue: &Issue) -> Object {
    let o = Object::new();
    let _ = Reflect::set(&o, &"field".into(), &issue.field.as_str().into());
    let _ = Reflect::set(&o, &"message".into(), &issue.message.as_str().into());
    o
}

impl From<TrackerError> for JsValue {
    fn from(e: TrackerError) -> JsValue {
        let err = js_sys::Error::new(&e.message());
        let _ = Reflect::set(&err, &"name".into(), &"SaleBeaconError".into());
        let issues: Array = e.issues().iter().map(issue_object).collect();
        let _ = Reflect::set(&err, &"code".into(), &e.code().into());
        let _ = Reflect::set(&err, &"issues".into(), &issues);
        err.into()
    }
}
