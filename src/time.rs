//! Timestamps: RFC 3339 parsing into UTC milliseconds, and Growi's output form.
//!
//! Growi answers with `2025-09-30T23:55:29.000Z`; we send the same form, always in UTC, so the
//! proxy can compare and log times without a time-zone library. The parser is written out here
//! (days-from-civil arithmetic) because a date crate would cost the browser module more bytes than
//! the whole of this file.

#[allow(unused_imports)]
use crate::prelude::*;

/// Milliseconds since the Unix epoch, UTC.
pub type UnixMillis = i64;

/// An instant, kept as UTC milliseconds from the moment it is parsed until it is written out:
/// a value is parsed once at the edge and formatted once at the edge, never round-tripped
/// through text on the way. On the wire (serde, JSON) it is Growi's `2025-09-30T23:55:29.000Z`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(UnixMillis);

impl Timestamp {
    /// The instant `ms` milliseconds after the Unix epoch.
    pub const fn from_millis(ms: UnixMillis) -> Self {
        Timestamp(ms)
    }
    /// Milliseconds since the Unix epoch.
    pub const fn millis(self) -> UnixMillis {
        self.0
    }
    /// An RFC 3339 date-time with a time zone (see [`parse_rfc3339`]).
    pub fn parse(text: &str) -> Option<Self> {
        parse_rfc3339(text).map(Timestamp)
    }
    /// Growi's form, `2025-09-30T23:55:29.000Z`.
    pub fn format(self) -> String {
        format_utc(self.0)
    }
    /// This instant plus `days` days.
    pub fn plus_days(self, days: u32) -> Self {
        Timestamp(self.0.saturating_add(i64::from(days) * 86_400_000))
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.format())
    }
}

impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <alloc::borrow::Cow<'de, str>>::deserialize(d)?;
        Timestamp::parse(&text).ok_or_else(|| {
            serde::de::Error::custom("expected an RFC 3339 date-time with a time zone")
        })
    }
}

/// Years outside 1970..=9999 are not plausible for a sale.
const MIN_YEAR: i64 = 1970;
const MAX_YEAR: i64 = 9999;

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

fn num(s: &str) -> Option<i64> {
    i64::try_from(crate::text::digits(s)?).ok()
}

/// Parses an RFC 3339 date-time with a time zone (`Z` or `±hh:mm`), e.g.
/// `2025-09-30T23:55:29Z`, `2025-09-30 23:55:29.5+02:00`. A date without a time or a time without
/// a zone is refused: a sale's time must be unambiguous.
pub fn parse_rfc3339(text: &str) -> Option<UnixMillis> {
    let s = text.trim();
    if !s.is_ascii() || s.len() < 20 {
        return None;
    }
    let b = s.as_bytes();
    if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' {
        return None;
    }
    if b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (num(s.get(0..4)?)?, num(s.get(5..7)?)?, num(s.get(8..10)?)?);
    let (h, mi, sec) = (
        num(s.get(11..13)?)?,
        num(s.get(14..16)?)?,
        num(s.get(17..19)?)?,
    );
    if !(MIN_YEAR..=MAX_YEAR).contains(&y) || !(1..=12).contains(&mo) {
        return None;
    }
    if d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    // `get`, not `[..]`: no slicing panic path in the browser module (see Cargo.toml).
    let mut rest = s.get(19..)?;
    let mut millis = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        let digits = frac.get(..n)?;
        millis = digits
            .bytes()
            .chain(core::iter::repeat(b'0'))
            .take(3)
            .fold(0, |acc, c| acc * 10 + i64::from(c - b'0'));
        rest = frac.get(n..)?;
    }
    let offset_minutes = match rest {
        "Z" | "z" => 0,
        _ => {
            let rb = rest.as_bytes();
            if rb.len() != 6 || !matches!(rb[0], b'+' | b'-') || rb[3] != b':' {
                return None;
            }
            let (oh, om) = (num(rest.get(1..3)?)?, num(rest.get(4..6)?)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let sign = if rb[0] == b'-' { -1 } else { 1 };
            sign * (oh * 60 + om)
        }
    };
    // A leap second (:60) is read as the next second, as most systems do.
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset_minutes * 60;
    Some(secs * 1000 + millis)
}

/// Formats as Growi does: `2025-09-30T23:55:29.000Z`.
pub fn format_utc(ms: UnixMillis) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let t = secs.rem_euclid(86_400);
    // `{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{millis:03}Z`, without core::fmt.
    let mut out = String::with_capacity(24);
    crate::text::push_int_padded(&mut out, y, 4);
    for (sep, v, width) in [
        ('-', m, 2),
        ('-', d, 2),
        ('T', t / 3600, 2),
        (':', t / 60 % 60, 2),
        (':', t % 60, 2),
        ('.', millis, 3),
    ] {
        out.push(sep);
        crate::text::push_int_padded(&mut out, v, width);
    }
    out.push('Z');
    out
}

/// The largest Unix timestamp (seconds) we accept: the end of year 9999.
pub const MAX_UNIX_SECONDS: i64 = 253_402_300_799;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats() {
        let t = parse_rfc3339("2025-09-30T23:55:29Z");
        assert_eq!(t, Some(1_759_276_529_000));
        assert_eq!(format_utc(1_759_276_529_000), "2025-09-30T23:55:29.000Z");
        assert_eq!(
            parse_rfc3339("2025-10-01T01:55:29.5+02:00"),
            Some(1_759_276_529_500)
        );
        assert_eq!(
            parse_rfc3339("2025-09-30 18:55:29.123456-05:00"),
            Some(1_759_276_529_123)
        );
        assert_eq!(format_utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            parse_rfc3339("2024-02-29T00:00:00Z").map(format_utc),
            Some("2024-02-29T00:00:00.000Z".into())
        );
        assert_eq!(
            parse_rfc3339("9999-12-31T23:59:59Z"),
            Some(MAX_UNIX_SECONDS * 1000)
        );
    }

    #[test]
    fn refuses_ambiguous_or_impossible() {
        for bad in [
            "2025-09-30",
            "2025-09-30T23:55:29",
            "2025-02-29T00:00:00Z",
            "2025-13-01T00:00:00Z",
            "2025-01-01T24:00:00Z",
            "2025-01-01T00:00:00.Z",
            "2025-01-01T00:00:00+0100",
            "1969-12-31T23:59:59Z",
            "yesterday",
            "2025-01-01T00:00:00Zjunk",
            "２０２５-01-01T00:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
}
