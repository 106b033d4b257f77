//! The request log: what reached the server, for the tests to assert on.
//!
//! Browser drivers differ in what they can observe (WebKit's WebDriver sees no requests at all,
//! Firefox's BiDi gives no POST bodies), so the tests ask the server instead: every request the
//! front handles is recorded on arrival (method, path with query, a few headers, the body of a
//! POST under the proxy's base path, the time), and its answer's status and caching headers are
//! added when the answer leaves. A request dropped by the offline switch has status 0.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use serde::{Deserialize, Serialize};

use crate::server::DropConnection;

/// The largest request body recorded (and forwarded after recording): well above the proxy's own
/// body limit (16 KiB by default) and the browsers' 64 KiB beacon budget.
pub const MAX_RECORDED_BODY: usize = 1024 * 1024;

/// The most entries kept; older ones are dropped first (a test run makes a few thousand).
pub const MAX_ENTRIES: usize = 50_000;

/// Request headers worth asserting on.
pub const RECORDED_HEADERS: &[&str] = &[
    "host",
    "origin",
    "referer",
    "content-type",
    "cookie",
    "user-agent",
    "sec-fetch-site",
    "sec-fetch-mode",
];

/// One request as the server saw it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LogEntry {
    /// Arrival order, from 1, never reused (not even after a reset).
    pub seq: u64,
    /// Arrival time, milliseconds since the Unix epoch (the machine's clock, as the browser's).
    pub at_ms: u64,
    pub method: String,
    /// Path and query, as requested (not decoded).
    pub path: String,
    /// The [`RECORDED_HEADERS`] present, lower-case names (repeated ones joined with `, `).
    pub headers: BTreeMap<String, String>,
    /// The body of a POST under the base path (UTF-8, invalid bytes replaced), else `None`.
    pub body: Option<String>,
    /// The answer's status; 0 when the connection was dropped, `None` while it is in flight.
    pub status: Option<u16>,
    /// The answer's `Content-Type`.
    pub content_type: Option<String>,
    /// The answer's `Cache-Control`.
    pub cache_control: Option<String>,
}

/// The log, shared by every connection.
#[derive(Debug, Default)]
pub struct RequestLog {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    next_seq: u64,
    entries: Vec<LogEntry>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    let values: Vec<String> = headers
        .get_all(name)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect();
    (!values.is_empty()).then(|| values.join(", "))
}

impl RequestLog {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves a log that is still consistent.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a request on arrival; returns its sequence number for [`RequestLog::finish`].
    pub fn record(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: Option<&[u8]>,
    ) -> u64 {
        let headers = RECORDED_HEADERS
            .iter()
            .filter_map(|name| header_text(headers, name).map(|v| ((*name).to_owned(), v)))
            .collect();
        let path = uri
            .path_and_query()
            .map_or_else(|| uri.path().to_owned(), |pq| pq.as_str().to_owned());
        let mut inner = self.lock();
        inner.next_seq += 1;
        let seq = inner.next_seq;
        inner.entries.push(LogEntry {
            seq,
            at_ms: now_ms(),
            method: method.as_str().to_owned(),
            path,
            headers,
            body: body.map(|b| String::from_utf8_lossy(b).into_owned()),
            status: None,
            content_type: None,
            cache_control: None,
        });
        if inner.entries.len() > MAX_ENTRIES {
            let excess = inner.entries.len() - MAX_ENTRIES;
            inner.entries.drain(..excess);
        }
        seq
    }

    /// Adds the answer to the entry `seq` (if it is still in the log).
    pub fn finish(&self, seq: u64, response: &Response) {
        let dropped = response.extensions().get::<DropConnection>().is_some();
        let headers = response.headers();
        let mut inner = self.lock();
        if let Some(e) = inner.entries.iter_mut().rev().find(|e| e.seq == seq) {
            e.status = Some(if dropped {
                0
            } else {
                response.status().as_u16()
            });
            if !dropped {
                e.content_type = header_text(headers, "content-type");
                e.cache_control = header_text(headers, "cache-control");
            }
        }
    }

    /// Every entry, oldest first.
    pub fn entries(&self) -> Vec<LogEntry> {
        self.lock().entries.clone()
    }

    /// Forgets every entry (sequence numbers go on).
    pub fn clear(&self) {
        self.lock().entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[test]
    fn records_and_finishes() {
        let log = RequestLog::default();
        let mut h = HeaderMap::new();
        h.insert("cookie", "a=1".parse().unwrap());
        h.append("cookie", "b=2".parse().unwrap());
        h.insert("x-other", "no".parse().unwrap());
        let uri: Uri = "/salebeacon/sales?x=1".parse().unwrap();
        let seq = log.record(&Method::POST, &uri, &h, Some(b"{\"a\":1}"));
        let mut r = Response::new(axum::body::Body::empty());
        *r.status_mut() = StatusCode::ACCEPTED;
        r.headers_mut()
            .insert("cache-control", "no-store".parse().unwrap());
        log.finish(seq, &r);
        let e = &log.entries()[0];
        assert_eq!(e.path, "/salebeacon/sales?x=1");
        assert_eq!(e.headers.get("cookie").unwrap(), "a=1, b=2");
        assert!(!e.headers.contains_key("x-other"));
        assert_eq!(e.body.as_deref(), Some("{\"a\":1}"));
        assert_eq!(e.status, Some(202));
        assert_eq!(e.cache_control.as_deref(), Some("no-store"));

        let seq2 = log.record(&Method::GET, &uri, &HeaderMap::new(), None);
        let mut dropped = Response::new(axum::body::Body::empty());
        dropped.extensions_mut().insert(DropConnection);
        log.finish(seq2, &dropped);
        assert_eq!(log.entries()[1].status, Some(0));
        log.clear();
        assert!(log.entries().is_empty());
        let seq3 = log.record(&Method::GET, &uri, &HeaderMap::new(), None);
        assert_eq!(seq3, 3, "sequence numbers survive a reset");
    }
}
