//! Timestamps as Growi writes and reads them.
//!
//! Growi answers with ISO 8601 in UTC with millisecond precision and a `Z`
//! (`2025-09-30T23:55:29.000Z`), and accepts ISO 8601 strings or Unix timestamps (integer
//! seconds) on input. Sales keep their timestamps as already-normalised strings, so what the
//! sandbox stores is byte-for-byte what it answers; this module is the only place that parses or
//! formats them.

use std::time::{SystemTime, UNIX_EPOCH};

use jiff::civil::{Date, DateTime};
use jiff::tz::Offset;
use jiff::Timestamp;

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Formats a timestamp the way Growi does: `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn format_ts(ts: Timestamp) -> String {
    let dt = Offset::UTC.to_datetime(ts);
    let ms = dt.subsec_nanosecond() / 1_000_000;
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        ms
    )
}

/// Formats a number of milliseconds since the epoch (see [`format_ts`]).
pub fn format_ms(ms: u64) -> String {
    let ms = i64::try_from(ms).unwrap_or(i64::MAX);
    match Timestamp::from_millisecond(ms) {
        Ok(ts) => format_ts(ts),
        Err(_) => format_ts(Timestamp::MAX),
    }
}

/// The current time, formatted (see [`format_ts`]).
pub fn now_iso() -> String {
    format_ts(Timestamp::now())
}

/// Parses an ISO 8601 date-time: with an offset (`Z`, `+02:00`), without one (taken as UTC), or a
/// bare date (midnight UTC).
pub fn parse_iso(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(ts) = s.parse::<Timestamp>() {
        return Some(ts);
    }
    if let Ok(dt) = s.parse::<DateTime>() {
        return Offset::UTC.to_timestamp(dt).ok();
    }
    if let Ok(d) = s.parse::<Date>() {
        return Offset::UTC
            .to_timestamp(d.to_datetime(jiff::civil::Time::midnight()))
            .ok();
    }
    None
}

/// Parses a Unix timestamp in whole seconds.
pub fn from_unix_seconds(secs: i64) -> Option<Timestamp> {
    Timestamp::from_second(secs).ok()
}

/// Parses `MM/DD/YYYY` (the list endpoint's `start_date` / `end_date`).
pub fn parse_us_date(s: &str) -> Option<Date> {
    let mut parts = s.trim().split('/');
    let month: i8 = parts.next()?.parse().ok()?;
    let day: i8 = parts.next()?.parse().ok()?;
    let year: i16 = parts.next()?.parse().ok()?;
    if parts.next().is_some() {
        return None;
    }
    Date::new(year, month, day).ok()
}

/// The UTC calendar date of a stored (normalised) timestamp string.
pub fn utc_date_of(stored: &str) -> Option<Date> {
    parse_iso(stored).map(|ts| Offset::UTC.to_datetime(ts).date())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_millis_and_z() {
        assert_eq!(format_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_ms(1_759_276_529_123), "2025-09-30T23:55:29.123Z");
    }

    #[test]
    fn parses_iso_variants() {
        let z = parse_iso("2025-09-30T23:55:29.000Z").map(format_ts);
        assert_eq!(z.as_deref(), Some("2025-09-30T23:55:29.000Z"));
        let off = parse_iso("2025-10-01T01:55:29+02:00").map(format_ts);
        assert_eq!(off.as_deref(), Some("2025-09-30T23:55:29.000Z"));
        let naive = parse_iso("2025-09-30T23:55:29").map(format_ts);
        assert_eq!(naive.as_deref(), Some("2025-09-30T23:55:29.000Z"));
        let date = parse_iso("2025-09-30").map(format_ts);
        assert_eq!(date.as_deref(), Some("2025-09-30T00:00:00.000Z"));
        assert!(parse_iso("yesterday").is_none());
        assert!(parse_iso("2025-13-01T00:00:00Z").is_none());
    }

    #[test]
    fn parses_unix_and_us_dates() {
        let ts = from_unix_seconds(1_759_276_529).map(format_ts);
        assert_eq!(ts.as_deref(), Some("2025-09-30T23:55:29.000Z"));
        assert_eq!(parse_us_date("09/30/2025"), Date::new(2025, 9, 30).ok());
        assert!(parse_us_date("2025-09-30").is_none());
        assert!(parse_us_date("02/30/2025").is_none());
    }
}
