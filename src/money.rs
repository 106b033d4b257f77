//! Money: ISO 4217 currencies with their minor-unit exponents, and exact decimal conversion.
//!
//! Growi takes amounts as integers in the currency's minor unit (cents for `usd`, yen for `jpy`,
//! fils for `kwd`). Shops often hold prices as decimal strings or JavaScript numbers, and the
//! classic bug is `Math.round(0.29 * 100)`-style float arithmetic. [`to_minor_units`] never
//! multiplies floats: it parses the decimal text digit by digit.
//!
//! The table lists the currencies active in ISO 4217 as of 2026 (BGN, HRK, SLL, ZWL and ANG are
//! withdrawn; their successors EUR, SLE, ZWG and XCG are listed). Precious metals, testing and
//! special drawing codes are not currencies a shop sells in and are left out.

#[allow(unused_imports)]
use crate::prelude::*;

/// Every accepted currency, upper case, sorted, with its exponent (digits after the point).
const CURRENCIES: &[(&str, u8)] = &[
    ("AED", 2),
    ("AFN", 2),
    ("ALL", 2),
    ("AMD", 2),
    ("AOA", 2),
    ("ARS", 2),
    ("AUD", 2),
    ("AWG", 2),
    ("AZN", 2),
    ("BAM", 2),
    ("BBD", 2),
    ("BDT", 2),
    ("BHD", 3),
    ("BIF", 0),
    ("BMD", 2),
    ("BND", 2),
    ("BOB", 2),
    ("BOV", 2),
    ("BRL", 2),
    ("BSD", 2),
    ("BTN", 2),
    ("BWP", 2),
    ("BYN", 2),
    ("BZD", 2),
    ("CAD", 2),
    ("CDF", 2),
    ("CHE", 2),
    ("CHF", 2),
    ("CHW", 2),
    ("CLF", 4),
    ("CLP", 0),
    ("CNY", 2),
    ("COP", 2),
    ("COU", 2),
    ("CRC", 2),
    ("CUC", 2),
    ("CUP", 2),
    ("CVE", 2),
    ("CZK", 2),
    ("DJF", 0),
    ("DKK", 2),
    ("DOP", 2),
    ("DZD", 2),
    ("EGP", 2),
    ("ERN", 2),
    ("ETB", 2),
    ("EUR", 2),
    ("FJD", 2),
    ("FKP", 2),
    ("GBP", 2),
    ("GEL", 2),
    ("GHS", 2),
    ("GIP", 2),
    ("GMD", 2),
    ("GNF", 0),
    ("GTQ", 2),
    ("GYD", 2),
    ("HKD", 2),
    ("HNL", 2),
    ("HTG", 2),
    ("HUF", 2),
    ("IDR", 2),
    ("ILS", 2),
    ("INR", 2),
    ("IQD", 3),
    ("IRR", 2),
    ("ISK", 0),
    ("JMD", 2),
    ("JOD", 3),
    ("JPY", 0),
    ("KES", 2),
    ("KGS", 2),
    ("KHR", 2),
    ("KMF", 0),
    ("KPW", 2),
    ("KRW", 0),
    ("KWD", 3),
    ("KYD", 2),
    ("KZT", 2),
    ("LAK", 2),
    ("LBP", 2),
    ("LKR", 2),
    ("LRD", 2),
    ("LSL", 2),
    ("LYD", 3),
    ("MAD", 2),
    ("MDL", 2),
    ("MGA", 2),
    ("MKD", 2),
    ("MMK", 2),
    ("MNT", 2),
    ("MOP", 2),
    ("MRU", 2),
    ("MUR", 2),
    ("MVR", 2),
    ("MWK", 2),
    ("MXN", 2),
    ("MXV", 2),
    ("MYR", 2),
    ("MZN", 2),
    ("NAD", 2),
    ("NGN", 2),
    ("NIO", 2),
    ("NOK", 2),
    ("NPR", 2),
    ("NZD", 2),
    ("OMR", 3),
    ("PAB", 2),
    ("PEN", 2),
    ("PGK", 2),
    ("PHP", 2),
    ("PKR", 2),
    ("PLN", 2),
    ("PYG", 0),
    ("QAR", 2),
    ("RON", 2),
    ("RSD", 2),
    ("RUB", 2),
    ("RWF", 0),
    ("SAR", 2),
    ("SBD", 2),
    ("SCR", 2),
    ("SDG", 2),
    ("SEK", 2),
    ("SGD", 2),
    ("SHP", 2),
    ("SLE", 2),
    ("SOS", 2),
    ("SRD", 2),
    ("SSP", 2),
    ("STN", 2),
    ("SVC", 2),
    ("SYP", 2),
    ("SZL", 2),
    ("THB", 2),
    ("TJS", 2),
    ("TMT", 2),
    ("TND", 3),
    ("TOP", 2),
    ("TRY", 2),
    ("TTD", 2),
    ("TWD", 2),
    ("TZS", 2),
    ("UAH", 2),
    ("UGX", 0),
    ("USD", 2),
    ("USN", 2),
    ("UYI", 0),
    ("UYU", 2),
    ("UYW", 4),
    ("UZS", 2),
    ("VED", 2),
    ("VES", 2),
    ("VND", 0),
    ("VUV", 0),
    ("WST", 2),
    ("XAF", 0),
    ("XCD", 2),
    ("XCG", 2),
    ("XOF", 0),
    ("XPF", 0),
    ("YER", 2),
    ("ZAR", 2),
    ("ZMW", 2),
    ("ZWG", 2),
];

/// The largest amount Growi can take without loss: JavaScript's `Number.MAX_SAFE_INTEGER`.
pub const MAX_AMOUNT: u64 = (1 << 53) - 1;

/// Why an amount could not be converted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MoneyError {
    /// `"{0}" is not an ISO 4217 currency code`
    UnknownCurrency(String),
    /// `"{0}" is not a decimal amount like "19.99"`
    NotAnAmount(String),
    /// `amounts cannot be negative`
    Negative,
    /// `{currency} has {exponent} decimal places, "{given}" has more`
    TooManyDecimals {
        currency: String,
        exponent: u8,
        given: String,
    },
    /// `the amount is larger than 2^53-1 minor units`
    TooLarge,
}

impl MoneyError {
    /// The error's text (its `Display`), built without `core::fmt` for the browser module.
    pub fn message(&self) -> String {
        use crate::text::concat;
        match self {
            MoneyError::UnknownCurrency(c) => {
                concat(&["\"", c, "\" is not an ISO 4217 currency code"])
            }
            MoneyError::NotAnAmount(a) => {
                concat(&["\"", a, "\" is not a decimal amount like \"19.99\""])
            }
            MoneyError::Negative => "amounts cannot be negative".into(),
            MoneyError::TooManyDecimals {
                currency,
                exponent,
                given,
            } => {
                let mut s = concat(&[currency, " has "]);
                crate::text::push_uint(&mut s, u64::from(*exponent), 1);
                s.push_str(" decimal places, \"");
                s.push_str(given);
                s.push_str("\" has more");
                s
            }
            MoneyError::TooLarge => "the amount is larger than 2^53-1 minor units".into(),
        }
    }
}

impl core::fmt::Display for MoneyError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.message())
    }
}

impl core::error::Error for MoneyError {}

/// Every accepted currency code (upper case) with its exponent, in code order.
pub fn currencies() -> impl Iterator<Item = (&'static str, u8)> {
    CURRENCIES.iter().copied()
}

/// The exponent of `code` (any case), or `None` when it is not an active ISO 4217 code.
pub fn exponent(code: &str) -> Option<u8> {
    if code.len() != 3 || !code.is_ascii() {
        return None;
    }
    let upper = code.to_ascii_uppercase();
    CURRENCIES
        .binary_search_by(|(c, _)| (*c).cmp(upper.as_str()))
        .ok()
        .map(|i| CURRENCIES[i].1)
}

/// Converts a decimal amount in major units into integer minor units of `currency`.
///
/// `"19.99"` usd is 1999, `"1500"` jpy is 1500, `"1.234"` kwd is 1234, `"0.29"` usd is 29.
/// Surrounding white space is ignored; a leading `+`, digit grouping and exponents are not
/// accepted. More decimals than the currency has is an error, never a silent rounding.
pub fn to_minor_units(amount: &str, currency: &str) -> Result<u64, MoneyError> {
    let exp = exponent(currency).ok_or_else(|| MoneyError::UnknownCurrency(currency.into()))?;
    let text = amount.trim();
    if let Some(rest) = text.strip_prefix('-') {
        if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return Err(MoneyError::Negative);
        }
    }
    let (whole, frac) = match text.split_once('.') {
        Some((w, f)) => (w, f),
        None => (text, ""),
    };
    let digits_ok = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && frac.is_empty()) || !digits_ok(whole) || !digits_ok(frac) {
        return Err(MoneyError::NotAnAmount(amount.into()));
    }
    if text.ends_with('.') && frac.is_empty() && whole.is_empty() {
        return Err(MoneyError::NotAnAmount(amount.into()));
    }
    // Trailing zeros carry no value: "19.990" usd is fine.
    let frac = frac.trim_end_matches('0');
    if frac.len() > usize::from(exp) {
        return Err(MoneyError::TooManyDecimals {
            currency: currency.to_ascii_lowercase(),
            exponent: exp,
            given: amount.trim().into(),
        });
    }
    let mut value: u64 = 0;
    let padded = frac
        .bytes()
        .chain(core::iter::repeat(b'0'))
        .take(usize::from(exp));
    for b in whole.bytes().chain(padded) {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(b - b'0')))
            .ok_or(MoneyError::TooLarge)?;
    }
    if value > MAX_AMOUNT {
        return Err(MoneyError::TooLarge);
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_upper_case() {
        assert!(CURRENCIES.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(CURRENCIES
            .iter()
            .all(|(c, _)| c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase())));
    }

    #[test]
    fn messages() {
        let cases = [
            (
                MoneyError::UnknownCurrency("zzz".into()),
                "\"zzz\" is not an ISO 4217 currency code",
            ),
            (
                MoneyError::NotAnAmount("1e3".into()),
                "\"1e3\" is not a decimal amount like \"19.99\"",
            ),
            (MoneyError::Negative, "amounts cannot be negative"),
            (
                MoneyError::TooManyDecimals {
                    currency: "usd".into(),
                    exponent: 2,
                    given: "1.234".into(),
                },
                "usd has 2 decimal places, \"1.234\" has more",
            ),
            (
                MoneyError::TooLarge,
                "the amount is larger than 2^53-1 minor units",
            ),
        ];
        for (e, text) in cases {
            assert_eq!(e.to_string(), text);
        }
    }

    #[test]
    fn exponents() {
        assert_eq!(exponent("usd"), Some(2));
        assert_eq!(exponent("JPY"), Some(0));
        assert_eq!(exponent("Kwd"), Some(3));
        assert_eq!(exponent("CLF"), Some(4));
        assert_eq!(exponent("xxx"), None);
        assert_eq!(exponent("bgn"), None, "Bulgaria adopted the euro in 2026");
        assert_eq!(exponent("usdd"), None);
        assert_eq!(exponent("ü"), None);
    }

    #[test]
    fn conversions_are_exact() {
        assert_eq!(to_minor_units("19.99", "usd"), Ok(1999));
        assert_eq!(to_minor_units("0.29", "usd"), Ok(29));
        assert_eq!(to_minor_units("1.1", "eur"), Ok(110));
        assert_eq!(to_minor_units(" 20 ", "gbp"), Ok(2000));
        assert_eq!(to_minor_units("1500", "jpy"), Ok(1500));
        assert_eq!(to_minor_units("1.234", "kwd"), Ok(1234));
        assert_eq!(to_minor_units(".5", "usd"), Ok(50));
        assert_eq!(to_minor_units("7.", "usd"), Ok(700));
        assert_eq!(to_minor_units("19.990", "usd"), Ok(1999));
        assert_eq!(to_minor_units("0", "usd"), Ok(0));
    }

    #[test]
    fn conversions_refuse_what_they_cannot_do_exactly() {
        assert!(matches!(
            to_minor_units("1.234", "usd"),
            Err(MoneyError::TooManyDecimals { exponent: 2, .. })
        ));
        assert!(matches!(
            to_minor_units("1.5", "jpy"),
            Err(MoneyError::TooManyDecimals { exponent: 0, .. })
        ));
        assert_eq!(to_minor_units("-1", "usd"), Err(MoneyError::Negative));
        for bad in ["", ".", "1,000.00", "1e3", "+1", "abc", "1.2.3", " - 1"] {
            assert!(
                matches!(to_minor_units(bad, "usd"), Err(MoneyError::NotAnAmount(_))),
                "{bad:?}"
            );
        }
        assert_eq!(
            to_minor_units("1", "zzz"),
            Err(MoneyError::UnknownCurrency("zzz".into()))
        );
        assert_eq!(
            to_minor_units("90071992547409.92", "usd"),
            Err(MoneyError::TooLarge)
        );
        assert_eq!(
            to_minor_units("99999999999999999999999", "usd"),
            Err(MoneyError::TooLarge)
        );
    }
}
