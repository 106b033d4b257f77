//! The intake's vocabulary: where a sale came from ([`Source`]), what the browser's cookies held
//! ([`Cookies`]), and how it was taken ([`Accepted`]) or why not ([`Refusal`]).
//!
//! A file of its own so that the parts that speak of outcomes (the metrics that count refusals,
//! the error that answers them, the HTTP layer that reads cookies) need not import the pipeline
//! ([`crate::intake`]), which itself uses the metrics: data flows one way.

use crate::outbox::OutboxError;
use salebeacon::attribution::Attribution;
use salebeacon::{Issue, Origin};

/// Where a sale came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A page: `POST /sales` (the tracker, `sendBeacon`).
    Browser,
    /// `GET /pixel.gif`.
    Pixel,
    /// The merchant's back office: the admin API.
    Server,
}

impl Source {
    pub const RECORDED: [Source; 2] = [Source::Browser, Source::Pixel];

    pub fn as_str(self) -> &'static str {
        match self {
            Source::Browser => "browser",
            Source::Pixel => "pixel",
            Source::Server => "server",
        }
    }

    pub fn origin(self) -> Origin {
        match self {
            Source::Browser | Source::Pixel => Origin::Browser,
            Source::Server => Origin::Server,
        }
    }
}

/// What the browser's first-party cookies hold, read by the HTTP layer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cookies {
    /// A live attribution (decoded, inside the window).
    pub attribution: Option<Attribution>,
    /// A UUID v4.
    pub visitor_id: Option<String>,
}

/// How a sale was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// Committed as a new job.
    Queued,
    /// The outbox already has this `order_id`.
    Duplicate,
}

/// Why a sale was not accepted.
#[derive(Debug, Clone)]
pub enum Refusal {
    /// Fields break rules: every issue.
    Invalid(Vec<Issue>),
    /// Valid, but no creator to credit: Growi cannot take it.
    Unattributed(Vec<Issue>),
    /// The order token is missing, malformed, altered or expired.
    OrderToken(Issue),
    /// A pixel over its client's rate limit (a `POST` gets a `429` before intake).
    RateLimited,
    /// The outbox could not commit it.
    Unavailable(OutboxError),
}

impl Refusal {
    /// Every reason, for the metric's labels.
    pub const REASONS: [&'static str; 5] = [
        "invalid",
        "unattributed",
        "order_token",
        "rate_limited",
        "unavailable",
    ];

    /// The reason, as the refused list and the metric name it.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::Invalid(_) => "invalid",
            Refusal::Unattributed(_) => "unattributed",
            Refusal::OrderToken(_) => "order_token",
            Refusal::RateLimited => "rate_limited",
            Refusal::Unavailable(_) => "unavailable",
        }
    }

    /// The issues to report (empty for a rate limit or an outbox failure).
    pub fn issues(&self) -> Vec<Issue> {
        match self {
            Refusal::Invalid(i) | Refusal::Unattributed(i) => i.clone(),
            Refusal::OrderToken(i) => vec![i.clone()],
            Refusal::RateLimited => vec![Issue::new(
                "pixel",
                "too many requests from this address; the sale was not recorded",
            )],
            Refusal::Unavailable(_) => Vec::new(),
        }
    }
}
