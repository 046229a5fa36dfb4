//! Resource quantities as the API server reads and writes them
//! (`k8s.io/apimachinery/pkg/api/resource.Quantity`).
//!
//! The server parses a quantity (`2000m`, `0.5`, `1Gi`, `1e3`) into an exact decimal value and
//! serves it back in *canonical form*: the largest suffix of the same family (decimal SI,
//! binary SI or decimal exponent) that needs no fractional digits. So `cpu: 2000m` comes back
//! as `"2"`, `0.5` as `"500m"`, `1024Mi` as `"1Gi"`, while `1536Mi`, `100m` and `1073741824` come
//! back unchanged. Two spellings are the same quantity when their values are equal; that is
//! how the planner compares quantity fields.
//!
//! The rules mirrored here, from upstream's `quantity.go`:
//! - grammar: `[+-]` digits with an optional `.` and fraction, then a suffix: `n u m "" k M G T P
//!   E` (powers of 1000), `Ki Mi Gi Ti Pi Ei` (powers of 1024) or `e`/`E` and a signed integer;
//!   JSON numbers are read from their decimal rendering, and surrounding white space is ignored
//!   (as the server's JSON decoder does);
//! - precision: values are kept to the nano (10⁻⁹); a finer non-zero value is rounded away from
//!   zero (`0.9n` is `1n`, `3.001n` is `4n`);
//! - binary-suffixed values are capped, silently, at 2⁶³−1 (`9Ei` is `9223372036854775807`);
//! - canonical form: binary values below 1024 or with a fraction are written with decimal
//!   suffixes; zero is `0`; decimal-SI values that would need a suffix above `E` (`1000E`) are
//!   served differently by different server versions and count as out of range here;
//! - a value parsed from a string that is already canonical keeps that exact string (so the
//!   server serves `+1Gi` or `01Gi` back as written) — see [`served`].
//!
//! Values are held as an `i128` count of nano-units; magnitudes above 10²⁸ (far beyond any
//! resource) are [`QuantityError::OutOfRange`], which the planner treats as "cannot decide
//! without the server".

use std::fmt;

use serde_json::Value;

/// The suffix family a quantity was written in; it decides the canonical spelling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// `n u m "" k M G T P E`: powers of 1000.
    DecimalSi,
    /// `Ki Mi Gi Ti Pi Ei`: powers of 1024.
    BinarySi,
    /// `e<n>` / `E<n>`: powers of 10.
    DecimalExponent,
}

/// Why a string is not a quantity this module can represent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// Not of the form `<signedNumber><suffix>` (the server rejects it too).
    #[error("quantities must look like <number><suffix>, e.g. 100m, 1.5, 512Mi, 1e3")]
    Format,
    /// An unknown suffix (the server rejects it too).
    #[error("unknown quantity suffix")]
    Suffix,
    /// A valid quantity, but too large (or too precise) for this module; only the server can
    /// compare it.
    #[error("quantity out of the range compared without the API server")]
    OutOfRange,
}

/// A parsed quantity: an exact value (to the nano) and the family it was written in.
///
/// Equality is by value, as `Quantity.Cmp` in Go: `2000m == 2`, `1Gi == 1024Mi`,
/// `0.5 == 500m`; the format does not take part.
#[derive(Clone, Copy, Debug)]
pub struct Quantity {
    nanos: i128,
    format: Format,
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.nanos == other.nanos
    }
}

impl Eq for Quantity {}

/// The largest magnitude held, in nano-units (10²⁸ units): the canonical form can then be
/// computed without overflow.
const MAX_NANOS: u128 = 10u128.pow(37);
const NANOS_PER_UNIT: u128 = 1_000_000_000;
/// 2⁶³−1 units: where binary-suffixed values are capped.
const BINARY_CAP_NANOS: u128 = (i64::MAX as u128) * NANOS_PER_UNIT;

const DECIMAL_SUFFIXES: [(&str, i32); 10] = [
    ("n", -9),
    ("u", -6),
    ("m", -3),
    ("", 0),
    ("k", 3),
    ("M", 6),
    ("G", 9),
    ("T", 12),
    ("P", 15),
    ("E", 18),
];
const BINARY_SUFFIXES: [&str; 7] = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];

/// The parts of a quantity string, as upstream's scanner splits them.
struct Scanned<'s> {
    positive: bool,
    /// Integer digits without leading zeros (`"0"` when there are none).
    num: &'s str,
    /// Fraction digits as written.
    denom: &'s str,
    suffix: &'s str,
}

fn scan(s: &str) -> Result<Scanned<'_>, QuantityError> {
    let b = s.as_bytes();
    let end = b.len();
    let mut pos = 0;
    let mut positive = true;
    match b.first() {
        Some(b'-') => {
            positive = false;
            pos = 1;
        }
        Some(b'+') => pos = 1,
        _ => {}
    }
    let zero = |positive| Scanned {
        positive,
        num: "0",
        denom: "",
        suffix: "",
    };
    while pos < end && b[pos] == b'0' {
        pos += 1;
    }
    if pos >= end {
        return Ok(zero(positive));
    }
    let start = pos;
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    let num = if pos == start { "0" } else { &s[start..pos] };
    let mut denom = "";
    if pos < end && b[pos] == b'.' {
        pos += 1;
        let fraction = pos;
        while pos < end && b[pos].is_ascii_digit() {
            pos += 1;
        }
        denom = &s[fraction..pos];
    }
    let suffix_start = pos;
    while pos < end && b"eEinumkKMGTP".contains(&b[pos]) {
        pos += 1;
    }
    if pos < end && matches!(b[pos], b'-' | b'+') {
        pos += 1;
    }
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    if pos < end {
        return Err(QuantityError::Format);
    }
    Ok(Scanned {
        positive,
        num,
        denom,
        suffix: &s[suffix_start..],
    })
}

/// Base (10 or 2), exponent and format of a suffix.
fn interpret(suffix: &str) -> Option<(u32, i32, Format)> {
    if let Some((_, e)) = DECIMAL_SUFFIXES.iter().find(|(s, _)| *s == suffix) {
        return Some((10, *e, Format::DecimalSi));
    }
    if let Some(i) = BINARY_SUFFIXES[1..].iter().position(|s| *s == suffix) {
        return Some((2, 10 * (i as i32 + 1), Format::BinarySi));
    }
    let rest = suffix
        .strip_prefix('e')
        .or_else(|| suffix.strip_prefix('E'))?;
    // Upstream parses an int64 and truncates it to int32.
    let exponent: i64 = rest.parse().ok()?;
    Some((10, exponent as i32, Format::DecimalExponent))
}

impl Quantity {
    /// Parses a quantity string exactly as the server's `ParseQuantity` (no white space
    /// allowed; see [`Quantity::from_json`] for values read from JSON).
    pub fn parse(s: &str) -> Result<Quantity, QuantityError> {
        Self::parse_inner(s, false).map(|(q, _)| q)
    }

    /// The quantity a JSON value holds, as the server's JSON decoder reads it: a string
    /// (surrounding white space ignored) or a number. `None` for other JSON values.
    pub fn from_json(value: &Value) -> Option<Result<Quantity, QuantityError>> {
        match value {
            Value::String(s) => Some(Quantity::parse(s.trim())),
            Value::Number(n) => Some(Quantity::parse(&n.to_string())),
            _ => None,
        }
    }

    /// The value in nano-units (10⁻⁹), e.g. `1500000000` for `1.5`.
    pub fn nanos(&self) -> i128 {
        self.nanos
    }

    /// The suffix family the quantity was written in.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The parsed quantity and whether the server keeps the input string as its serialized
    /// form (it does when the fast path of `ParseQuantity` sees that the input is canonical).
    /// (`reuse` asks for that answer; computing it is skipped otherwise.)
    fn parse_inner(s: &str, reuse: bool) -> Result<(Quantity, bool), QuantityError> {
        if s.is_empty() {
            return Err(QuantityError::Format);
        }
        if s == "0" {
            let zero = Quantity {
                nanos: 0,
                format: Format::DecimalSi,
            };
            return Ok((zero, true));
        }
        let scanned = scan(s)?;
        let (base, exponent, format) = interpret(scanned.suffix).ok_or(QuantityError::Suffix)?;
        let reused = reuse && reuses_input(&scanned, exponent, format);
        let nanos = value_in_nanos(&scanned, base, exponent)?;
        let nanos = if format == Format::BinarySi {
            nanos.min(BINARY_CAP_NANOS)
        } else {
            nanos
        };
        if nanos > MAX_NANOS || format == Format::DecimalSi && ambiguous_decimal_si(nanos) {
            return Err(QuantityError::OutOfRange);
        }
        let nanos = nanos as i128;
        let nanos = if scanned.positive { nanos } else { -nanos };
        Ok((Quantity { nanos, format }, reused))
    }

    /// The canonical spelling the server serves for this value and format (`"2"` for
    /// `2000m`, `"1Gi"` for `1024Mi`, `"500m"` for `0.5`).
    pub fn canonical(&self) -> String {
        self.to_string()
    }

    /// The value alone, written canonically with decimal suffixes (`"1073741824"` for both
    /// `1Gi` and `1073741824`): equal quantities, and only they, have equal value strings.
    pub fn value_string(&self) -> String {
        Quantity {
            nanos: self.nanos,
            format: Format::DecimalSi,
        }
        .to_string()
    }
}

/// The magnitude in nano-units, rounded away from zero at the nano.
fn value_in_nanos(s: &Scanned<'_>, base: u32, exponent: i32) -> Result<u128, QuantityError> {
    // Trailing zeros of the fraction do not change the value; leaving them out keeps long
    // spellings (`1.000000000000000000000000`) in range.
    let denom = s.denom.trim_end_matches('0');
    let mut digits: u128 = 0;
    for c in s.num.bytes().chain(denom.bytes()) {
        digits = digits
            .checked_mul(10)
            .and_then(|d| d.checked_add(u128::from(c - b'0')))
            .ok_or(QuantityError::OutOfRange)?;
    }
    if digits == 0 {
        return Ok(0);
    }
    let denom_len = i64::try_from(denom.len()).map_err(|_| QuantityError::OutOfRange)?;
    let power = if base == 2 {
        digits = 1u128
            .checked_shl(exponent as u32)
            .and_then(|m| digits.checked_mul(m))
            .ok_or(QuantityError::OutOfRange)?;
        9 - denom_len
    } else {
        9 + i64::from(exponent) - denom_len
    };
    if power >= 0 {
        let scale = u32::try_from(power)
            .ok()
            .and_then(|p| 10u128.checked_pow(p))
            .ok_or(QuantityError::OutOfRange)?;
        digits.checked_mul(scale).ok_or(QuantityError::OutOfRange)
    } else {
        // Finer than a nano: round up to the next nano.
        match u32::try_from(-power)
            .ok()
            .and_then(|p| 10u128.checked_pow(p))
        {
            Some(scale) => Ok(digits / scale + u128::from(!digits.is_multiple_of(scale))),
            None => Ok(1), // 0 < value < 1n
        }
    }
}

/// Decimal-SI values whose canonical exponent is above `E` (10¹⁸), such as `1000E`: API
/// servers up to 1.36 serve them without the exponent (`"1"`, a corruption fixed later in
/// apimachinery), newer ones as `1e21`; only the server itself can say what it stores.
fn ambiguous_decimal_si(nanos: u128) -> bool {
    nanos != 0 && nanos.is_multiple_of(10u128.pow(30))
}

/// Whether `ParseQuantity`'s fast path keeps the input as the serialized string: decimal
/// input with at most 18 digits, a scale that is a multiple of 3 and no redundant zeros;
/// binary input without a fraction whose number is not a multiple of 8.
fn reuses_input(s: &Scanned<'_>, exponent: i32, format: Format) -> bool {
    let digits = s.num.len() + s.denom.len();
    match format {
        Format::DecimalSi | Format::DecimalExponent => {
            let scale = i64::from(exponent) - s.denom.len() as i64;
            digits <= 18
                && scale >= -9
                && scale % 3 == 0
                && !s
                    .num
                    .bytes()
                    .chain(s.denom.bytes())
                    .rev()
                    .take(3)
                    .eq(*b"000")
                && !s.num.starts_with('0')
        }
        Format::BinarySi => {
            // precision = 15 - len(num) - int(float32(exponent)*3/10) - 1 >= 0
            let precision = 15 - s.num.len() as i64 - i64::from(exponent) * 3 / 10 - 1;
            if !s.denom.is_empty() || precision < 0 {
                return false;
            }
            let Ok(value) = s.num.parse::<i64>() else {
                return false;
            };
            let fits = value.checked_mul(1i64 << exponent).is_some();
            fits && value & 7 != 0
        }
    }
}

impl fmt::Display for Quantity {
    /// The canonical form (`CanonicalizeBytes` upstream).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.nanos == 0 {
            return f.write_str("0");
        }
        if self.nanos < 0 {
            f.write_str("-")?;
        }
        let magnitude = self.nanos.unsigned_abs();
        let whole_units = magnitude.is_multiple_of(NANOS_PER_UNIT);
        if self.format == Format::BinarySi && magnitude >= 1024 * NANOS_PER_UNIT && whole_units {
            let mut units = magnitude / NANOS_PER_UNIT;
            let mut times = 0;
            while units >= 1024 && units.is_multiple_of(1024) && times < 6 {
                units /= 1024;
                times += 1;
            }
            return write!(f, "{units}{}", BINARY_SUFFIXES[times]);
        }
        // Decimal: mantissa without trailing zeros, exponent lowered to a multiple of 3.
        let (mut mantissa, mut exponent) = (magnitude, -9i32);
        while mantissa >= 10 && mantissa.is_multiple_of(10) {
            mantissa /= 10;
            exponent += 1;
        }
        let adjust = exponent.rem_euclid(3);
        mantissa *= 10u128.pow(adjust as u32);
        exponent -= adjust;
        let decimal_suffix = DECIMAL_SUFFIXES
            .iter()
            .find(|(_, e)| *e == exponent)
            .map(|(s, _)| *s);
        match (self.format, decimal_suffix) {
            (Format::DecimalExponent, _) if exponent == 0 => write!(f, "{mantissa}"),
            (Format::DecimalSi | Format::BinarySi, Some(suffix)) => {
                write!(f, "{mantissa}{suffix}")
            }
            _ => write!(f, "{mantissa}e{exponent}"),
        }
    }
}

/// The string the server serves for a quantity written as `input` (JSON string content;
/// white space around it is ignored): the input itself when it is already canonical,
/// otherwise the canonical form.
pub fn served(input: &str) -> Result<String, QuantityError> {
    let input = input.trim();
    let (q, reused) = Quantity::parse_inner(input, true)?;
    Ok(if reused {
        input.to_owned()
    } else {
        q.canonical()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn value(s: &str) -> i128 {
        Quantity::parse(s)
            .unwrap_or_else(|e| panic!("{s}: {e}"))
            .nanos()
    }

    const N: i128 = 1_000_000_000;

    #[test]
    fn values_from_upstream_parse_table() {
        // (input, value in nanos), from TestQuantityParse in apimachinery.
        let table: &[(&str, i128)] = &[
            ("0", 0),
            ("0n", 0),
            ("0Ki", 0),
            ("1", N),
            ("1Ki", 1024 * N),
            ("7Mi", 7 * 1024 * 1024 * N),
            ("3Ei", 3 * (1 << 60) * N),
            ("5n", 5),
            ("4u", 4000),
            ("3m", 3_000_000),
            ("8k", 8000 * N),
            ("50k", 50_000 * N),
            ("1E", 10i128.pow(27)),
            ("1E-3", 1_000_000),
            ("1e3", 1000 * N),
            ("1E18", 10i128.pow(27)),
            ("100.035k", 100_035 * N),
            ("0.001", 1_000_000),
            ("0.0005k", 500_000_000),
            ("0.5e-1", 50_000_000),
            ("10.035M", 10_035_000 * N),
            ("1.3E+6", 1_300_000 * N),
            ("7.123456M", 7_123_456 * N),
            ("1.01E", 101 * 10i128.pow(25)),
            // Saturate / round.
            ("3.001n", 4),
            ("1.1E-9", 2),
            ("0.0000000001", 1),
            ("0.0000000005", 1),
            ("0.5e-9", 1),
            ("0.9n", 1),
            ("0.00000012345", 124),
            ("0.00000012354", 124),
            ("9Ei", i64::MAX as i128 * N),
            ("9223372036854775807Ki", i64::MAX as i128 * N),
            ("12E", 12 * 10i128.pow(27)),
            // Fractional binary.
            ("100.035Ki", 10_243_584 * N / 100),
            ("0.5Mi", 512 * 1024 * N),
            ("0.05Gi", 53_687_091_200_000_000),
            // Written by trolls.
            ("0.000000000001Ki", 2),
            (".001", 1_000_000),
            (".0001k", 100_000_000),
            ("1.", N),
            ("1.G", N * N),
            (".", 0),
        ];
        for (input, expected) in table {
            assert_eq!(value(input), *expected, "{input}");
            assert_eq!(value(&format!("-{input}")), -expected, "-{input}");
            assert_eq!(value(&format!("+{input}")), *expected, "+{input}");
        }
        assert_eq!(
            Quantity::parse("1e3").unwrap().format(),
            Format::DecimalExponent
        );
        assert_eq!(Quantity::parse("1Ki").unwrap().format(), Format::BinarySi);
        assert_eq!(Quantity::parse("1k").unwrap().format(), Format::DecimalSi);
    }

    #[test]
    fn invalid_like_upstream() {
        for input in [
            "", "1.1.M", "1+1.0M", "0.1mi", "0.1am", "aoeu", ".5i", "1i", "-3.01i", "-3.01e-",
            " 1", "1 ", "1K", "1e", "1Mi5",
        ] {
            assert!(Quantity::parse(input).is_err(), "{input:?} parsed");
        }
        assert_eq!(Quantity::parse("1e").unwrap_err(), QuantityError::Suffix);
        assert_eq!(Quantity::parse("1.1.M").unwrap_err(), QuantityError::Format);
    }

    #[test]
    fn equal_by_value() {
        let eq = |a: &str, b: &str| Quantity::parse(a).unwrap() == Quantity::parse(b).unwrap();
        assert!(eq("2000m", "2"));
        assert!(eq("1Gi", "1024Mi"));
        assert!(eq("0.5", "500m"));
        assert!(eq("1k", "1e3"));
        assert!(eq("1000M", "1G"));
        assert!(eq("0", "0Mi"));
        assert!(eq("-0", "0"));
        assert!(!eq("1G", "1Gi"));
        assert!(!eq("100m", "0.1001"));
        assert!(!eq("1n", "0"));
        let value = |s: &str| Quantity::parse(s).unwrap().value_string();
        assert_eq!(value("1Gi"), value("1073741824"));
        assert_eq!(value("1Gi"), "1073741824");
        assert_eq!(value("2000m"), "2");
        assert_eq!(value("1.5Gi"), "1610612736");
        assert_eq!(value("1e3"), "1k");
    }

    #[test]
    fn canonical_from_upstream_string_table() {
        // (alternate spelling, canonical), from TestQuantityString and TestQuantityParseEmit.
        for (input, canonical) in [
            ("1024Mi", "1Gi"),
            ("307200Ki", "300Mi"),
            ("1025024Mi", "1001Gi"),
            ("1024Gi", "1Ti"),
            ("5000m", "5"),
            ("0.5", "500m"),
            ("1000M", "1G"),
            ("0.001T", "1G"),
            ("1000u", "1m"),
            ("1.08", "1080m"),
            ("1080000000n", "1080m"),
            (".001e12", "1e9"),
            ("0.001e0", "1e-3"),
            ("1000e-12", "1e-9"),
            ("00", "0"),
            (".001Ki", "1024m"),
            (".000001Ki", "1024u"),
            (".000000001Ki", "1024n"),
            (".000000000001Ki", "2n"),
            ("1025", "1025"),
            ("1.5Gi", "1536Mi"),
            ("9Ei", "9223372036854775807"),
            ("2000m", "2"),
        ] {
            assert_eq!(
                Quantity::parse(input).unwrap().canonical(),
                canonical,
                "{input}"
            );
            assert_eq!(served(input).unwrap(), canonical, "{input}");
            if canonical != "0" {
                assert_eq!(
                    Quantity::parse(&format!("-{input}")).unwrap().canonical(),
                    format!("-{canonical}"),
                    "-{input}"
                );
            }
        }
    }

    #[test]
    fn canonical_strings_are_served_as_written() {
        for s in [
            "1Gi",
            "300Mi",
            "6Ki",
            "1001Gi",
            "1Ti",
            "5",
            "500m",
            "1G",
            "1m",
            "80m",
            "1080m",
            "300M",
            "1T",
            "1E",
            "1e21",
            "1234567M",
            "3k",
            "1025",
            "0",
            "1e9",
            "1e-3",
            "80e-3",
            "300e6",
            "1n",
            "1080n",
            "80u",
            "512Mi",
            "100m",
            "1073741824",
        ] {
            assert_eq!(served(s).unwrap(), s);
            // Canonical strings are a fixed point.
            assert_eq!(Quantity::parse(s).unwrap().canonical(), s, "{s}");
        }
        // The fast path keeps what it was given, sign and leading zeros included.
        assert_eq!(served("+1Gi").unwrap(), "+1Gi");
        assert_eq!(served("01Gi").unwrap(), "01Gi");
        assert_eq!(served(" 100m ").unwrap(), "100m");
    }

    #[test]
    fn json_numbers_and_strings() {
        let q = |v: Value| Quantity::from_json(&v).unwrap().unwrap();
        assert_eq!(q(json!(2)), q(json!("2000m")));
        assert_eq!(q(json!(0.5)), q(json!("500m")));
        assert_eq!(q(json!(" 1 ")), q(json!(1)));
        assert!(Quantity::from_json(&json!(true)).is_none());
    }

    #[test]
    fn out_of_range_is_reported() {
        assert_eq!(
            Quantity::parse("1e40").unwrap_err(),
            QuantityError::OutOfRange
        );
        assert_eq!(
            Quantity::parse("123456789012345678901234567890123456789012").unwrap_err(),
            QuantityError::OutOfRange
        );
        // Zero is zero at any exponent; tiny values round up to 1n.
        assert_eq!(value("0e99"), 0);
        for ambiguous in ["1000E", "5000E", "1000000E", "1000000P"] {
            assert_eq!(
                Quantity::parse(ambiguous).unwrap_err(),
                QuantityError::OutOfRange,
                "{ambiguous}"
            );
        }
        assert_eq!(value("1234E"), 1234 * 10i128.pow(27));
        assert_eq!(value("1e-60"), 1);
        assert_eq!(value("1.000000000000000000000000000000000000000000000"), N);
    }
}
