//! Durations as written in ferry files: `30s`, `5m`, `2h`, `1d`, and sums like `1h30m`.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, de};

/// A duration parsed from the `30s / 5m / 2h / 1d` notation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span(pub Duration);

impl Span {
    /// Parses `30s`, `5m`, `2h`, `1d` or a sum of them such as `1h30m`.
    pub fn parse(text: &str) -> Result<Span, String> {
        let text = text.trim();
        let expected = || {
            format!(
                "invalid duration `{text}`: expected a number and a unit s, m, h or d \
                 (for example 30s, 5m, 2h, 1d, 1h30m)"
            )
        };
        if text.is_empty() {
            return Err(expected());
        }
        let mut total: u64 = 0;
        let mut digits = String::new();
        for ch in text.chars() {
            if ch.is_ascii_digit() {
                digits.push(ch);
                continue;
            }
            let unit = match ch {
                's' => 1,
                'm' => 60,
                'h' => 3_600,
                'd' => 86_400,
                _ => return Err(expected()),
            };
            let value: u64 = digits.parse().map_err(|_| expected())?;
            total = value
                .checked_mul(unit)
                .and_then(|secs| total.checked_add(secs))
                .ok_or_else(expected)?;
            digits.clear();
        }
        if !digits.is_empty() {
            return Err(expected());
        }
        Ok(Span(Duration::from_secs(total)))
    }

    /// The duration.
    pub fn get(self) -> Duration {
        self.0
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut secs = self.0.as_secs();
        if secs == 0 {
            return f.write_str("0s");
        }
        for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
            if secs >= size {
                write!(f, "{}{unit}", secs / size)?;
                secs %= size;
            }
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Span::parse(&text).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_unit_and_sums() {
        let cases = [
            ("30s", 30),
            ("5m", 300),
            ("2h", 7_200),
            ("1d", 86_400),
            ("1h30m", 5_400),
        ];
        for (text, secs) in cases {
            assert_eq!(
                Span::parse(text),
                Ok(Span(Duration::from_secs(secs))),
                "{text}"
            );
        }
    }

    #[test]
    fn rejects_bad_notation() {
        for text in [
            "",
            "5",
            "m",
            "5x",
            "1.5h",
            "-5m",
            "5 m",
            "99999999999999999999d",
        ] {
            let err = Span::parse(text).expect_err(text);
            assert!(err.contains("invalid duration"), "{text}: {err}");
        }
    }

    #[test]
    fn displays_in_the_same_notation() {
        assert_eq!(Span(Duration::from_secs(5_430)).to_string(), "1h30m30s");
        assert_eq!(Span(Duration::from_secs(0)).to_string(), "0s");
    }
}
