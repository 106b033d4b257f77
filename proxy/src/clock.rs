//! The proxy's clock: the one place it asks the system for the time.
//!
//! Inside the proxy an instant is a [`Timestamp`] (UTC milliseconds) from the moment it is read
//! until it is written out; it is never formatted and parsed again on the way.

use salebeacon::time::Timestamp;

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Now, as a [`Timestamp`].
pub fn now() -> Timestamp {
    Timestamp::from_millis(now_ms())
}
