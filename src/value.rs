//! `Loose`: a JSON-like value as a caller handed it, before any rule has been applied.
//!
//! Inputs arrive from JavaScript objects (through serde-wasm-bindgen), JSON bodies (serde_json)
//! and query strings. Deserializing straight into typed fields would stop at the first wrong type
//! with serde's message; reading each field as a `Loose` first lets validation report every
//! problem, in our words, with the field's name.

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// Any value a field can hold.
#[derive(Debug, Clone, PartialEq)]
pub enum Loose {
    Null,
    Bool(bool),
    /// An integral number (JavaScript numbers with no fraction land here too).
    Int(i64),
    /// A number with a fraction, or one too large for `Int`.
    Float(f64),
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
            Loose::Int(_) | Loose::Float(_) => "a number",
            Loose::Str(_) => "a string",
            Loose::Composite(k) => k,
        }
    }
}

impl Loose {
    /// A number as JavaScript has it: integral values in the safe range are `Int`.
    pub fn from_f64(v: f64) -> Loose {
        if v.is_finite() && v.fract() == 0.0 && v.abs() <= 9_007_199_254_740_991.0 {
            Loose::Int(v as i64)
        } else {
            Loose::Float(v)
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
        Ok(i64::try_from(v).map_or(Loose::Float(v as f64), Loose::Int))
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

/// Suggests the known field a mistyped or camelCased name most likely meant.
pub(crate) fn suggest(name: &str, known: &[&'static str]) -> Option<&'static str> {
    // ASCII letters and digits only, so the distance can count bytes.
    let norm = |s: &str| -> Vec<u8> {
        s.bytes()
            .filter(u8::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .collect()
    };
    let wanted = norm(name);
    if let Some(k) = known.iter().find(|k| norm(k) == wanted) {
        return Some(k);
    }
    known
        .iter()
        .map(|k| (edit_distance(&norm(k), &wanted), *k))
        .filter(|(d, k)| *d <= 2 && *d < k.len() / 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &[u8], b: &[u8]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, &ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}
