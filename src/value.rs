//! `Loose`: a JSON-like value as a caller handed it, before any rule has been applied.
//!
//! Inputs arrive as JSON text (the browser hands the sale over as `JSON.stringify` text, read by
//! [`crate::json::read_object`]; the proxy reads bodies with serde_json) and as query strings. Deserializing straight into typed fields would stop at the first wrong type
//! with serde's message; reading each field as a `Loose` first lets validation report every
//! problem, in our words, with the field's name.

#[allow(unused_imports)]
use crate::prelude::*;

use core::fmt;
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Any value a field can hold.
#[derive(Debug, Clone, PartialEq)]
pub enum Loose {
    Null,
    Bool(bool),
    /// An integral number in JavaScript's safe range (`12999`, `12999.0`, `1.2999e4`).
    Int(i64),
    /// Any other number: one with a fraction (`129.99`), or one too large to be exact. No rule
    /// needs its value, only that it is not an exact integer, so none is kept (and the browser
    /// module needs no float parser).
    Fraction,
    Str(String),
    /// A list or an object: never valid for a sale field.
    Composite(&'static str),
}

impl Loose {
    /// How the value is described in messages: "a string", "a number", ...
    pub fn kind(&self) -> &'static str {
        match self {
            Loose::Null => "null",
            Loose::Bool(_) => "a boolean",
            Loose::Int(_) | Loose::Fraction => "a number",
            Loose::Str(_) => "a string",
            Loose::Composite(k) => k,
        }
    }
}

impl Loose {
    /// A number as JavaScript has it: integral values in the safe range are `Int`.
    pub fn from_f64(v: f64) -> Loose {
        const MAX: f64 = 9_007_199_254_740_991.0;
        if (-MAX..=MAX).contains(&v) && (v as i64) as f64 == v {
            Loose::Int(v as i64)
        } else {
            Loose::Fraction
        }
    }
}

impl<'de> Deserialize<'de> for Loose {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LooseVisitor)
    }
}

struct LooseVisitor;

impl<'de> Visitor<'de> for LooseVisitor {
    type Value = Loose;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Loose, E> {
        Ok(Loose::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Loose, E> {
        Ok(Loose::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Loose, E> {
        Ok(i64::try_from(v).map_or(Loose::Fraction, Loose::Int))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Loose, E> {
        // JavaScript has only doubles: 12999 arrives as 12999.0.
        Ok(Loose::from_f64(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Loose, E> {
        Ok(Loose::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Loose, E> {
        Ok(Loose::Str(v))
    }
    fn visit_none<E>(self) -> Result<Loose, E> {
        Ok(Loose::Null)
    }
    fn visit_unit<E>(self) -> Result<Loose, E> {
        Ok(Loose::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Loose, D::Error> {
        d.deserialize_any(LooseVisitor)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Loose, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Loose::Composite("a list"))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Loose, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Loose::Composite("an object"))
    }
}

/// Reads an object's entries as `(name, Loose)` pairs, in order. Used by the input types'
/// `Deserialize` impls; anything but an object is an error naming what it was.
pub(crate) fn read_object<'de, D: Deserializer<'de>>(
    d: D,
    what: &'static str,
) -> Result<Vec<(String, Loose)>, D::Error> {
    struct ObjectVisitor(&'static str);
    impl<'de> Visitor<'de> for ObjectVisitor {
        type Value = Vec<(String, Loose)>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            write!(f, "{} as an object", self.0)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(key) = map.next_key::<String>()? {
                let value = map.next_value::<Loose>()?;
                out.push((key, value));
            }
            Ok(out)
        }
    }
    d.deserialize_map(ObjectVisitor(what))
}

/// Suggests the known field a mistyped or camelCased name most likely meant: the one equal to it
/// once case and separators are ignored (`orderId` → `order_id`), else the closest within two
/// edits (`ordr_id` → `order_id`).
pub(crate) fn suggest(name: &str, known: &[&'static str]) -> Option<&'static str> {
    // ASCII letters and digits only, lower case, at most 32 of them: field names are short, and
    // fixed buffers keep this free of allocations (the browser module's size budget).
    fn norm(s: &str) -> ([u8; 32], usize) {
        let mut out = [0u8; 32];
        let mut n = 0;
        for c in s.bytes().filter(u8::is_ascii_alphanumeric) {
            if let Some(slot) = out.get_mut(n) {
                *slot = c.to_ascii_lowercase();
            }
            n += 1;
        }
        (out, n)
    }
    let (w, wn) = norm(name);
    let wanted = w.get(..wn)?;
    let mut best = None;
    let mut best_d = 3;
    for k in known {
        let (a, an) = norm(k);
        let a = a.get(..an)?;
        let d = edit_distance(a, wanted);
        if d == 0 {
            return Some(k);
        }
        if d < best_d && d < k.len() / 2 {
            best = Some(*k);
            best_d = d;
        }
    }
    best
}

/// Levenshtein distance of two names of at most 32 bytes, one row at a time.
fn edit_distance(a: &[u8], b: &[u8]) -> usize {
    let mut prev = [0usize; 33];
    for (j, p) in prev.iter_mut().enumerate().take(b.len() + 1) {
        *p = j;
    }
    for (i, &ca) in a.iter().enumerate() {
        let mut cur = [0usize; 33];
        cur[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}
