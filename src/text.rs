//! Small string builders: decimal integers, zero-padded numbers and joins, without `core::fmt`.
//!
//! The browser module is size-budgeted (DESIGN.md, "Budgets"): every `format!("{n}")` of an
//! integer and every `[..].join(sep)` links a few hundred bytes of generic machinery each. These
//! helpers do the same job in a loop; the texts they build are exactly those of `format!`.

#[allow(unused_imports)]
use crate::prelude::*;

/// Appends `v` in decimal, e.g. `-42`.
pub fn push_int(out: &mut String, v: i64) {
    if v < 0 {
        out.push('-');
    }
    push_uint(out, v.unsigned_abs(), 1);
}

/// Appends `v` in decimal with at least `width` digits, zero-padded (`{v:0width$}`).
pub fn push_uint(out: &mut String, mut v: u64, width: usize) {
    let mut digits = [0u8; 20];
    let mut n = 0;
    while let Some(d) = digits.get_mut(n) {
        *d = b'0' + (v % 10) as u8;
        n += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for _ in n..width {
        out.push('0');
    }
    for d in digits.iter().take(n).rev() {
        out.push(char::from(*d));
    }
}

/// Appends `v` in decimal with at least `width` characters, zero-padded after the sign
/// (`{v:0width$}`: -1 at width 4 is `-001`).
pub fn push_int_padded(out: &mut String, v: i64, width: usize) {
    if v < 0 {
        out.push('-');
        push_uint(out, v.unsigned_abs(), width.saturating_sub(1));
    } else {
        push_uint(out, v.unsigned_abs(), width);
    }
}

/// The value of `s` when it is 1 to 19 ASCII digits and nothing else (no sign, no space): one
/// small parser for every integer the rules read, instead of `str::parse`'s generic machinery.
pub fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 19 {
        return None;
    }
    let mut v: u64 = 0;
    for b in s.bytes() {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u64::from(b - b'0');
    }
    Some(v)
}

/// `v` in decimal.
pub fn int(v: i64) -> String {
    let mut s = String::new();
    push_int(&mut s, v);
    s
}

/// `v` in decimal.
pub fn uint(v: u64) -> String {
    let mut s = String::new();
    push_uint(&mut s, v, 1);
    s
}

/// The parts with `sep` between them, like `[..].join(sep)`.
pub fn join<'a>(parts: impl IntoIterator<Item = &'a str>, sep: &str) -> String {
    let mut out = String::new();
    for (i, part) in parts.into_iter().enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        out.push_str(part);
    }
    out
}

/// Concatenates the parts.
pub fn concat(parts: &[&str]) -> String {
    let mut out = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for part in parts {
        out.push_str(part);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_print_as_format_does() {
        for v in [
            0,
            1,
            -1,
            9,
            10,
            99,
            100,
            12345,
            i64::MAX,
            i64::MIN,
            -9_007_199_254_740_991,
        ] {
            assert_eq!(int(v), format!("{v}"));
        }
        for v in [0, 7, 10, 255, u64::MAX] {
            assert_eq!(uint(v), format!("{v}"));
        }
        for (v, w) in [
            (0, 4),
            (7, 2),
            (12, 2),
            (123, 2),
            (2025, 4),
            (5, 3),
            (999, 3),
        ] {
            let mut s = String::new();
            push_uint(&mut s, v, w);
            assert_eq!(s, format!("{v:0w$}"));
        }
        for (v, w) in [(-1, 4), (-12345, 4), (0, 4), (-5, 2), (2025, 4)] {
            let mut s = String::new();
            push_int_padded(&mut s, v, w);
            assert_eq!(s, format!("{v:0w$}"));
        }
    }

    #[test]
    fn digits_parse_as_str_parse_does() {
        for s in ["0", "7", "0012", "9007199254740991", "9999999999999999999"] {
            assert_eq!(digits(s), s.parse::<u64>().ok(), "{s}");
        }
        for s in [
            "",
            "+1",
            "-1",
            " 1",
            "1 ",
            "1.0",
            "१",
            "12345678901234567890",
        ] {
            assert_eq!(digits(s), None, "{s}");
        }
    }

    #[test]
    fn joins_as_join_does() {
        assert_eq!(join([], ", "), "");
        assert_eq!(join(["a"], ", "), "a");
        assert_eq!(join(["a", "b", "c"], "; "), ["a", "b", "c"].join("; "));
        assert_eq!(concat(&["a", "", "bc"]), "abc");
    }
}
