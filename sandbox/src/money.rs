//! Money rules of the sandbox: currency exponents, commission rules and major-unit sums.
//!
//! Sales carry integer minor units (cents) exactly as Growi's API does; only the list endpoint's
//! aggregates are decimal major units. Commission rules are not published by Growi, so the
//! sandbox takes a per-campaign rule (basis points of the sale, or a fixed amount) and rounds
//! half-up to the minor unit (growi-api.md, open point 5). All arithmetic is integer; the one
//! conversion to `f64` happens at the very end, on a value that is exact to 1/1000.

use serde::{Deserialize, Serialize};

/// How a campaign pays its affiliates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum CommissionRule {
    /// A share of the sale's `total` (or `subtotal` when there is no total), in basis points:
    /// `1000` is 10 %.
    Percent {
        /// Basis points, 0..=10000.
        bps: u32,
    },
    /// A fixed commission per sale, in the sale currency's minor units.
    Fixed {
        /// Minor units.
        amount: i64,
    },
}

impl CommissionRule {
    /// The commission for a sale whose commission base (total, or subtotal) is `base` minor units.
    /// Percentages round half-up to the minor unit: 10 % of 1995 is 200.
    pub fn commission_for(&self, base: i64) -> i64 {
        match *self {
            CommissionRule::Fixed { amount } => amount,
            CommissionRule::Percent { bps } => {
                let scaled = i128::from(base) * i128::from(bps);
                // Half-up for non-negative bases (the only ones the API accepts); symmetric
                // (half away from zero) otherwise.
                let rounded = if scaled >= 0 {
                    (scaled + 5_000) / 10_000
                } else {
                    (scaled - 5_000) / 10_000
                };
                i64::try_from(rounded).unwrap_or(if rounded > 0 { i64::MAX } else { i64::MIN })
            }
        }
    }
}

/// The ISO 4217 exponent (number of minor-unit digits) of a lowercase currency code.
/// Unknown codes are assumed to have 2. `tests/core_parity.rs` holds this table against the
/// tracker core's for every active code.
pub fn currency_exponent(code: &str) -> u32 {
    match code {
        "bif" | "clp" | "djf" | "gnf" | "isk" | "jpy" | "kmf" | "krw" | "pyg" | "rwf" | "ugx"
        | "uyi" | "vnd" | "vuv" | "xaf" | "xof" | "xpf" => 0,
        "bhd" | "iqd" | "jod" | "kwd" | "lyd" | "omr" | "tnd" => 3,
        "clf" | "uyw" => 4,
        _ => 2,
    }
}

/// Whether `code` looks like a currency code as Growi wants it: three lowercase ASCII letters.
pub fn is_currency_code(code: &str) -> bool {
    code.len() == 3 && code.bytes().all(|b| b.is_ascii_lowercase())
}

/// The largest exponent of any currency (CLF and UYW have 4).
const MAX_EXPONENT: u32 = 4;

/// A sum of amounts in major units, kept exact in ten-thousandths of a major unit (enough for
/// every ISO 4217 exponent, up to CLF's and UYW's 4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MajorSum {
    units: i128,
}

impl MajorSum {
    /// Adds `minor` minor units of `currency`.
    pub fn add(&mut self, minor: i64, currency: &str) {
        let exp = currency_exponent(currency).min(MAX_EXPONENT);
        let factor = 10_i128.pow(MAX_EXPONENT - exp);
        self.units += i128::from(minor) * factor;
    }

    /// The sum as a decimal number of major units (e.g. `129.99`). IEEE division is correctly
    /// rounded, so this is the nearest `f64` to the exact decimal (below 2^53 units), which
    /// serde_json prints in its shortest form.
    #[allow(clippy::cast_precision_loss)]
    pub fn to_f64(self) -> f64 {
        self.units as f64 / 10_000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_rounds_half_up() {
        let ten = CommissionRule::Percent { bps: 1000 };
        assert_eq!(ten.commission_for(1995), 200);
        assert_eq!(ten.commission_for(1994), 199);
        assert_eq!(ten.commission_for(9999), 1000);
        assert_eq!(ten.commission_for(0), 0);
        let five = CommissionRule::Percent { bps: 500 };
        assert_eq!(five.commission_for(10), 1); // 0.5 -> 1
        assert_eq!(five.commission_for(9), 0); // 0.45 -> 0
    }

    #[test]
    fn fixed_is_fixed() {
        assert_eq!(CommissionRule::Fixed { amount: 500 }.commission_for(1), 500);
    }

    #[test]
    fn exponents() {
        assert_eq!(currency_exponent("usd"), 2);
        assert_eq!(currency_exponent("jpy"), 0);
        assert_eq!(currency_exponent("kwd"), 3);
        assert_eq!(currency_exponent("clf"), 4);
    }

    #[test]
    fn major_sums() {
        let mut s = MajorSum::default();
        s.add(12999, "usd");
        assert_eq!(s.to_f64(), 129.99);
        s.add(1500, "jpy");
        assert_eq!(s.to_f64(), 1629.99);
        s.add(1234, "kwd");
        assert_eq!(s.to_f64(), 1631.224);
        s.add(5, "clf");
        assert_eq!(s.to_f64(), 1631.2245);
        let mut n = MajorSum::default();
        n.add(-5, "usd");
        assert_eq!(n.to_f64(), -0.05);
    }
}
