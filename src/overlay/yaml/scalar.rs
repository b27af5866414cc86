//! Scalar resolution and formatting with the exact rules of the YAML libraries kustomize is
//! built on: how a plain scalar becomes a bool, number, null or timestamp when a manifest is
//! read (YAML 1.2 core rules with the usual compatibility quirks), when a kustomization file is
//! read (YAML 1.1 rules), and how numbers and timestamps are printed again.

use std::borrow::Cow;

use serde_json::{Number, Value};

/// Which resolution rules apply to plain scalars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// Manifests: `true`/`false` only, `0o17` octals, timestamps become RFC 3339 strings.
    Core,
    /// Kustomization files and JSON patches: YAML 1.1 booleans (`yes`, `on`, `y`, …) too.
    Yaml11,
}

/// What a plain scalar resolves to.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolved {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    /// A timestamp, already formatted as RFC 3339 with nanoseconds.
    Timestamp(String),
    /// The merge key `<<`.
    Merge,
    Str,
}

impl Resolved {
    /// The JSON value of a resolved scalar whose source text is `text`; `None` for values JSON
    /// cannot hold (infinities and NaN).
    pub fn into_value(self, text: &str) -> Option<Value> {
        Some(match self {
            Resolved::Null => Value::Null,
            Resolved::Bool(b) => Value::Bool(b),
            Resolved::Int(i) => Value::Number(i.into()),
            Resolved::Uint(u) => Value::Number(u.into()),
            Resolved::Float(f) => Value::Number(Number::from_f64(f)?),
            Resolved::Timestamp(t) => Value::String(t),
            Resolved::Merge | Resolved::Str => Value::String(text.to_string()),
        })
    }
}

/// Resolves the text of a plain, untagged scalar.
pub fn resolve(text: &str, schema: Schema) -> Resolved {
    let Some(&first) = text.as_bytes().first() else {
        return Resolved::Null;
    };
    if !may_be_typed(first) {
        return Resolved::Str;
    }
    if let Some(known) = resolve_word(text, schema) {
        return known;
    }
    match first {
        b'.' => text
            .parse::<f64>()
            .map(Resolved::Float)
            .unwrap_or(Resolved::Str),
        b'0'..=b'9' | b'+' | b'-' => resolve_number(text),
        _ => Resolved::Str,
    }
}

/// Whether a plain scalar beginning with `first` can resolve to anything but a string: the
/// first bytes of the words below and of numbers. Most strings are told apart by this alone.
fn may_be_typed(first: u8) -> bool {
    matches!(
        first,
        b'0'..=b'9'
            | b'+'
            | b'-'
            | b'.'
            | b'~'
            | b'<'
            | b't'
            | b'T'
            | b'f'
            | b'F'
            | b'n'
            | b'N'
            | b'y'
            | b'Y'
            | b'o'
            | b'O'
    )
}

fn resolve_word(text: &str, schema: Schema) -> Option<Resolved> {
    // No word below is longer than five bytes.
    if text.len() > 5 {
        return None;
    }
    let resolved = match text {
        "true" | "True" | "TRUE" => Resolved::Bool(true),
        "false" | "False" | "FALSE" => Resolved::Bool(false),
        "~" | "null" | "Null" | "NULL" => Resolved::Null,
        ".nan" | ".NaN" | ".NAN" => Resolved::Float(f64::NAN),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => Resolved::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => Resolved::Float(f64::NEG_INFINITY),
        "<<" => Resolved::Merge,
        _ if schema == Schema::Yaml11 => return resolve_yaml11_bool(text),
        _ => return None,
    };
    Some(resolved)
}

fn resolve_yaml11_bool(text: &str) -> Option<Resolved> {
    match text {
        "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => Some(Resolved::Bool(true)),
        "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => Some(Resolved::Bool(false)),
        _ => None,
    }
}

fn resolve_number(text: &str) -> Resolved {
    if let Some(timestamp) = parse_timestamp(text) {
        return Resolved::Timestamp(timestamp);
    }
    let plain = if text.contains('_') {
        Cow::Owned(text.replace('_', ""))
    } else {
        Cow::Borrowed(text)
    };
    if let Some(i) = parse_go_int(&plain) {
        return Resolved::Int(i);
    }
    if let Some(u) = parse_go_uint(&plain) {
        return Resolved::Uint(u);
    }
    if is_yaml_float(&plain)
        && let Ok(f) = plain.parse::<f64>()
    {
        return Resolved::Float(f);
    }
    let (negative, digits) = match plain.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, &*plain),
    };
    if let Some(bits) = digits.strip_prefix("0b")
        && let Some(n) = signed_radix(bits, 2, negative)
    {
        return n;
    }
    Resolved::Str
}

fn signed_radix(body: &str, radix: u32, negative: bool) -> Option<Resolved> {
    if body.is_empty() || body.starts_with(['+', '-']) {
        return None;
    }
    if negative {
        let magnitude = u64::from_str_radix(body, radix).ok()?;
        let value = 0i128 - i128::from(magnitude);
        return i64::try_from(value).ok().map(Resolved::Int);
    }
    match i64::from_str_radix(body, radix) {
        Ok(i) => Some(Resolved::Int(i)),
        Err(_) => u64::from_str_radix(body, radix).ok().map(Resolved::Uint),
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)` on text without underscores.
pub fn parse_go_int(text: &str) -> Option<i64> {
    let (negative, rest) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let magnitude = parse_go_uint(rest)?;
    let value = if negative {
        -i128::from(magnitude)
    } else {
        i128::from(magnitude)
    };
    i64::try_from(value).ok()
}

/// Go's `strconv.ParseUint(s, 0, 64)` on text without underscores.
pub fn parse_go_uint(text: &str) -> Option<u64> {
    let bytes = text.as_bytes();
    let (digits, radix) = match bytes {
        [b'0', b'x' | b'X', ..] => (&text[2..], 16),
        [b'0', b'o' | b'O', ..] => (&text[2..], 8),
        [b'0', b'b' | b'B', ..] => (&text[2..], 2),
        [b'0', _, ..] => (&text[1..], 8),
        _ => (text, 10),
    };
    if digits.is_empty() || !digits.bytes().all(|b| (b as char).is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`
fn is_yaml_float(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'-' | b'+')));
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            digits(&mut i);
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'-' | b'+')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// A date or date-time as the YAML libraries recognise it (`2001-12-14`,
/// `2001-12-14T21:59:43.10-05:00`, `2001-12-14 21:59:43.10`), formatted as RFC 3339 with
/// nanoseconds.
pub fn parse_timestamp(text: &str) -> Option<String> {
    let b = text.as_bytes();
    if b.len() < 5 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return None;
    }
    let mut cur = Cursor { b, i: 5 };
    let year: i64 = text[..4].parse().ok()?;
    let month = cur.number(2)?;
    cur.expect(b'-')?;
    let day = cur.number(2)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let date = format!("{year:04}-{month:02}-{day:02}");
    if cur.done() {
        return Some(format!("{date}T00:00:00Z"));
    }
    let separator = cur.next()?;
    let zoned = match separator {
        b'T' | b't' => true,
        b' ' => false,
        _ => return None,
    };
    let time = cur.time()?;
    let zone = if zoned { cur.zone()? } else { "Z".to_string() };
    cur.done().then(|| format!("{date}T{time}{zone}"))
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn done(&self) -> bool {
        self.i == self.b.len()
    }

    fn next(&mut self) -> Option<u8> {
        let c = *self.b.get(self.i)?;
        self.i += 1;
        Some(c)
    }

    fn expect(&mut self, c: u8) -> Option<()> {
        (self.next()? == c).then_some(())
    }

    /// One to `max` digits.
    fn number(&mut self, max: usize) -> Option<u32> {
        let start = self.i;
        while self.i < self.b.len() && self.i - start < max && self.b[self.i].is_ascii_digit() {
            self.i += 1;
        }
        if self.i == start {
            return None;
        }
        std::str::from_utf8(&self.b[start..self.i])
            .ok()?
            .parse()
            .ok()
    }

    /// `15:4:5` with an optional fraction, formatted as `15:04:05.999999999`.
    fn time(&mut self) -> Option<String> {
        let hour = self.number(2)?;
        self.expect(b':')?;
        let minute = self.number(2)?;
        self.expect(b':')?;
        let second = self.number(2)?;
        if hour > 23 || minute > 59 || second > 59 {
            return None;
        }
        let mut fraction = String::new();
        if matches!(self.b.get(self.i), Some(b'.' | b',')) {
            self.i += 1;
            while let Some(&c) = self.b.get(self.i).filter(|c| c.is_ascii_digit()) {
                if fraction.len() < 9 {
                    fraction.push(c as char);
                }
                self.i += 1;
            }
            if fraction.is_empty() {
                return None;
            }
        }
        let fraction = fraction.trim_end_matches('0');
        let dot = if fraction.is_empty() { "" } else { "." };
        Some(format!("{hour:02}:{minute:02}:{second:02}{dot}{fraction}"))
    }

    /// `Z` or `±hh:mm`.
    fn zone(&mut self) -> Option<String> {
        match self.next()? {
            b'Z' => Some("Z".to_string()),
            sign @ (b'+' | b'-') => {
                let hours = self.fixed2()?;
                self.expect(b':')?;
                let minutes = self.fixed2()?;
                if hours > 24 || minutes > 59 {
                    return None;
                }
                if hours == 0 && minutes == 0 {
                    return Some("Z".to_string());
                }
                Some(format!("{}{hours:02}:{minutes:02}", sign as char))
            }
            _ => None,
        }
    }

    fn fixed2(&mut self) -> Option<u32> {
        let start = self.i;
        let n = self.number(2)?;
        (self.i - start == 2).then_some(n)
    }
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 64)` (`bits` = 32 formats the nearest `f32`).
pub fn format_go_float(f: f64, bits: u32) -> String {
    if f.is_nan() {
        return ".nan".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 { ".inf" } else { "-.inf" }.to_string();
    }
    // Rust prints the shortest representation that round-trips, like Go's `-1` precision.
    let scientific = if bits == 32 {
        format!("{:e}", f as f32)
    } else {
        format!("{f:e}")
    };
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if negative { "-" } else { "" };
    if !(-4..6).contains(&exponent) {
        let (first, rest) = digits.split_at(1);
        let dot = if rest.is_empty() { "" } else { "." };
        let exp_sign = if exponent < 0 { '-' } else { '+' };
        return format!("{sign}{first}{dot}{rest}e{exp_sign}{:02}", exponent.abs());
    }
    let point = exponent + 1;
    let body = if point <= 0 {
        format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
    } else {
        let point = point as usize;
        if digits.len() <= point {
            format!("{digits}{}", "0".repeat(point - digits.len()))
        } else {
            format!("{}.{}", &digits[..point], &digits[point..])
        }
    };
    format!("{sign}{body}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_core_scalars_like_the_manifest_reader() {
        assert_eq!(resolve("yes", Schema::Core), Resolved::Str);
        assert_eq!(resolve("yes", Schema::Yaml11), Resolved::Bool(true));
        assert_eq!(resolve("0x1F", Schema::Core), Resolved::Int(31));
        assert_eq!(resolve("017", Schema::Core), Resolved::Int(15));
        assert_eq!(resolve("0o17", Schema::Core), Resolved::Int(15));
        assert_eq!(resolve("0o17", Schema::Yaml11), Resolved::Int(15));
        assert_eq!(resolve("1_000", Schema::Core), Resolved::Int(1000));
        assert_eq!(resolve("1.5", Schema::Core), Resolved::Float(1.5));
        assert_eq!(resolve(".5", Schema::Core), Resolved::Float(0.5));
        assert_eq!(resolve("1.2.3", Schema::Core), Resolved::Str);
        assert_eq!(
            resolve("12345678901234567890", Schema::Core),
            Resolved::Uint(12345678901234567890)
        );
        assert_eq!(resolve("~", Schema::Core), Resolved::Null);
        assert_eq!(resolve("", Schema::Core), Resolved::Null);
        assert_eq!(resolve("-0b101", Schema::Core), Resolved::Int(-5));
    }

    #[test]
    fn timestamps_are_normalised_to_rfc3339() {
        assert_eq!(
            parse_timestamp("2001-12-14").as_deref(),
            Some("2001-12-14T00:00:00Z")
        );
        assert_eq!(
            parse_timestamp("2001-12-14T21:59:43.10-05:00").as_deref(),
            Some("2001-12-14T21:59:43.1-05:00")
        );
        assert_eq!(
            parse_timestamp("2001-12-14 21:59:43.10").as_deref(),
            Some("2001-12-14T21:59:43.1Z")
        );
        assert_eq!(
            parse_timestamp("2001-2-3t1:2:3+00:00").as_deref(),
            Some("2001-02-03T01:02:03Z")
        );
        assert_eq!(parse_timestamp("2001-02-30"), None);
        assert_eq!(parse_timestamp("2001-12-14x"), None);
        assert_eq!(parse_timestamp("20011-12-14"), None);
    }

    #[test]
    fn floats_print_like_go() {
        assert_eq!(format_go_float(1.5, 64), "1.5");
        assert_eq!(format_go_float(1234567.5, 64), "1.2345675e+06");
        assert_eq!(format_go_float(0.000001, 64), "1e-06");
        assert_eq!(format_go_float(0.0001, 64), "0.0001");
        assert_eq!(format_go_float(123456.5, 64), "123456.5");
        assert_eq!(
            format_go_float(1.2345678901234568e23, 64),
            "1.2345678901234569e+23"
        );
        assert_eq!(format_go_float(-0.5, 64), "-0.5");
        assert_eq!(format_go_float(1.1, 32), "1.1");
        assert_eq!(format_go_float(100.0, 64), "100");
    }
}
