//! The tests' control API under `/__test/`: read and clear the request log, switch offline, hold,
//! strip Fetch Metadata.
//!
//! These routes are for the test process, not for pages: they are not recorded, and nothing
//! under `/__test/` is ever forwarded or served from the site.
//!
//! - `GET /__test/requests`: the log as a JSON array (see [`crate::LogEntry`]), oldest first;
//! - `POST /__test/reset`: clears it (`204`);
//! - `PUT /__test/offline` with body `true` or `false`: the offline switch (`204`); `GET` reads it.
//! - `PUT /__test/hold` with body `true` or `false`: the hold switch (`204`): while on, API calls
//!   wait unanswered; when it goes off, the ones waiting are dropped like offline ones.
//! - `PUT /__test/no-fetch-metadata` with body `true` or `false` (`204`): while on, requests reach
//!   the proxy without their `Sec-Fetch-*` headers, as from a browser that sends none (Safari
//!   before 16.4), so the proxy serves what it serves such a browser.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::TestServer;

pub const REQUESTS: &str = "/__test/requests";
pub const RESET: &str = "/__test/reset";
pub const OFFLINE: &str = "/__test/offline";
pub const HOLD: &str = "/__test/hold";
pub const NO_FETCH_METADATA: &str = "/__test/no-fetch-metadata";

pub async fn requests(State(state): State<TestServer>) -> Response {
    ([("cache-control", "no-store")], Json(state.log().entries())).into_response()
}

pub async fn reset(State(state): State<TestServer>) -> StatusCode {
    state.log().clear();
    StatusCode::NO_CONTENT
}

pub async fn get_offline(State(state): State<TestServer>) -> Json<bool> {
    Json(state.offline())
}

pub async fn put_offline(State(state): State<TestServer>, body: Bytes) -> Response {
    put_switch("offline", &body, |on| state.set_offline(on))
}

pub async fn put_hold(State(state): State<TestServer>, body: Bytes) -> Response {
    put_switch("hold", &body, |on| state.set_held(on))
}

pub async fn put_no_fetch_metadata(State(state): State<TestServer>, body: Bytes) -> Response {
    put_switch("no-fetch-metadata", &body, |on| {
        state.set_no_fetch_metadata(on)
    })
}

/// One switch's `PUT`: the body `true` or `false` sets it (`204`), anything else is a `400`.
fn put_switch(name: &str, body: &[u8], set: impl FnOnce(bool)) -> Response {
    let on = match body.trim_ascii() {
        b"true" => true,
        b"false" => false,
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                format!("PUT /__test/{name} takes `true` or `false`"),
            )
                .into_response()
        }
    };
    set(on);
    tracing::info!(switch = name, on, "switch");
    StatusCode::NO_CONTENT.into_response()
}
