//! One problem with one field of an input: the unit in which every layer reports bad input.
//!
//! Validation in salebeacon never stops at the first problem. Each rule that fails adds an
//! [`Issue`] naming the field (Growi's snake_case name, so merchants can look it up in Growi's
//! reference) and saying what is wrong in words a web developer can act on. The browser turns a
//! list of them into the `issues` of a `SaleBeaconError`; the proxy into a 422 body.

#[allow(unused_imports)]
use crate::prelude::*;

use serde::{Deserialize, Serialize};

/// A problem with one field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issue {
    /// The field's wire name, e.g. `order_id`, or `sale` for the input as a whole.
    pub field: String,
    /// What is wrong, in a sentence.
    pub message: String,
}

impl Issue {
    /// An issue for `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Issue {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl core::fmt::Display for Issue {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Joins issues into one line, for an error's `message`.
pub fn summarize(issues: &[Issue]) -> String {
    // `field: message` joined by "; ", as Display and `join` would, without core::fmt.
    let mut out = String::new();
    for (i, issue) in issues.iter().enumerate() {
        if i > 0 {
            out.push_str("; ");
        }
        out.push_str(&issue.field);
        out.push_str(": ");
        out.push_str(&issue.message);
    }
    out
}
