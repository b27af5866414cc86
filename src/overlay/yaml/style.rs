//! What a scalar's characters allow when it is written: which quoting styles are possible, whether
//! a YAML 1.1 reader would misread it unquoted, and how numbers read after kustomize's JSON round
//! trip — the decisions of the encoder kustomize prints with.

use serde_json::Number;

use super::scalar::{Resolved, Schema, format_go_float, resolve};

/// What the scalar's characters allow, as the encoder's analysis decides it, and what the
/// writers need to know about them: found in one pass, so that no writer scans the text again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Analysis {
    pub multiline: bool,
    pub flow_plain_allowed: bool,
    pub block_plain_allowed: bool,
    pub single_quoted_allowed: bool,
    pub block_allowed: bool,
    /// How many characters the text has (the writers count columns in characters).
    pub chars: usize,
    /// Whether the text holds a line feed (such strings are written as literal blocks).
    pub line_feed: bool,
    /// Whether the text holds a NEL, which the JSON round trip folds first.
    pub next_line: bool,
    /// Whether the text holds a space (only then can a plain scalar be folded).
    pub space: bool,
    /// Whether the text holds a `'`, which single quoting doubles.
    pub single_quote: bool,
    /// Whether double quoting escapes any of the characters.
    pub escapes: bool,
}

impl Analysis {
    pub fn of(text: &str) -> Analysis {
        if text.is_empty() {
            return Analysis {
                multiline: false,
                flow_plain_allowed: false,
                block_plain_allowed: true,
                single_quoted_allowed: true,
                block_allowed: false,
                chars: 0,
                line_feed: false,
                next_line: false,
                space: false,
                single_quote: false,
                escapes: false,
            };
        }
        // Most strings of a manifest are words (`app`, `apps/v1`, `web-1.2`): nothing in them
        // limits the styles.
        let bytes = text.as_bytes();
        if bytes[0].is_ascii_alphanumeric()
            && bytes[1..]
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'/' | b'_'))
        {
            return Analysis {
                multiline: false,
                flow_plain_allowed: true,
                block_plain_allowed: true,
                single_quoted_allowed: true,
                block_allowed: true,
                chars: bytes.len(),
                line_feed: false,
                next_line: false,
                space: false,
                single_quote: false,
                escapes: false,
            };
        }
        Analysis::scanned(text)
    }

    /// The analysis of a text that is not empty, character by character.
    fn scanned(text: &str) -> Analysis {
        let f = Flags::scan(text);
        let edges = f.leading_space || f.leading_break || f.trailing_space || f.trailing_break;
        let mut a = Analysis {
            multiline: f.line_breaks,
            flow_plain_allowed: true,
            block_plain_allowed: true,
            single_quoted_allowed: true,
            block_allowed: true,
            chars: f.chars,
            line_feed: f.line_feed,
            next_line: f.next_line,
            space: f.space,
            single_quote: f.single_quote,
            escapes: f.special || f.line_breaks || f.quote_or_backslash,
        };
        if edges || f.break_space || f.space_break || f.special || f.line_breaks {
            a.flow_plain_allowed = false;
            a.block_plain_allowed = false;
        }
        if f.trailing_space || f.space_break || f.special {
            a.block_allowed = false;
        }
        if f.break_space || f.space_break || f.special {
            a.single_quoted_allowed = false;
        }
        if f.flow_indicators {
            a.flow_plain_allowed = false;
        }
        if f.block_indicators {
            a.block_plain_allowed = false;
        }
        a
    }
}

#[derive(Default)]
struct Flags {
    block_indicators: bool,
    flow_indicators: bool,
    line_breaks: bool,
    special: bool,
    leading_space: bool,
    leading_break: bool,
    trailing_space: bool,
    trailing_break: bool,
    break_space: bool,
    space_break: bool,
    chars: usize,
    line_feed: bool,
    next_line: bool,
    space: bool,
    single_quote: bool,
    quote_or_backslash: bool,
}

impl Flags {
    fn scan(text: &str) -> Flags {
        let mut f = Flags::default();
        if text.starts_with("---") || text.starts_with("...") {
            f.block_indicators = true;
            f.flow_indicators = true;
        }
        let bytes = text.as_bytes();
        let (mut preceded_by_ws, mut previous_space, mut previous_break) = (true, false, false);
        let mut i = 0;
        while i < bytes.len() {
            let first = i == 0;
            f.chars += 1;
            // Most characters of a manifest's strings are printable, neither space nor break,
            // and no indicator where they stand: they change nothing but the neighbours' view.
            let b = bytes[i];
            if b.is_ascii_alphanumeric() || (!first && matches!(b, b'-' | b'.' | b'/' | b'_')) {
                preceded_by_ws = false;
                previous_space = false;
                previous_break = false;
                i += 1;
                continue;
            }
            let Some(c) = text[i..].chars().next() else {
                break;
            };
            i += c.len_utf8();
            // A space or tab is one byte, never part of another character's encoding.
            let last = i == bytes.len();
            let followed_by_ws = matches!(bytes.get(i), None | Some(b' ' | b'\t'));
            f.indicators(c, first, preceded_by_ws, followed_by_ws);
            if !is_printable(c) {
                f.special = true;
            }
            match c {
                '\'' => f.single_quote = true,
                '"' | '\\' => f.quote_or_backslash = true,
                _ => {}
            }
            if c == ' ' {
                f.space = true;
                f.leading_space |= first;
                f.trailing_space |= last;
                f.break_space |= previous_break;
                previous_space = true;
                previous_break = false;
            } else if is_break(c) {
                f.line_breaks = true;
                f.line_feed |= c == '\n';
                f.next_line |= c == '\u{85}';
                f.leading_break |= first;
                f.trailing_break |= last;
                f.space_break |= previous_space;
                previous_space = false;
                previous_break = true;
            } else {
                previous_space = false;
                previous_break = false;
            }
            preceded_by_ws = matches!(c, ' ' | '\t' | '\0') || is_break(c);
        }
        f
    }

    fn indicators(&mut self, c: char, first: bool, preceded_by_ws: bool, followed_by_ws: bool) {
        let (flow, block) = if first {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"'
                | '%' | '@' | '`' => (true, true),
                '?' | ':' => (true, followed_by_ws),
                '-' => (followed_by_ws, followed_by_ws),
                _ => (false, false),
            }
        } else {
            match c {
                ',' | '?' | '[' | ']' | '{' | '}' => (true, false),
                ':' => (true, followed_by_ws),
                '#' => (preceded_by_ws, preceded_by_ws),
                _ => (false, false),
            }
        };
        self.flow_indicators |= flow;
        self.block_indicators |= block;
    }
}

pub(super) fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

pub(super) fn is_printable(c: char) -> bool {
    matches!(c as u32, 0x0A | 0x20..=0x7E | 0xA0..=0xD7FF | 0xE000..=0xFFFD) && c != '\u{feff}'
}

/// Whether `key`, analysed as `a`, is written in the simple `key: value` form.
pub(super) fn is_simple_key(key: &str, a: &Analysis) -> bool {
    key.len() <= 128 && !a.multiline
}

/// Whether a YAML 1.1 reader would read `s` back as the same string when written plain.
pub(super) fn plain_is_unambiguous(s: &str) -> bool {
    resolve(s, Schema::Yaml11) == Resolved::Str && !is_base60_float(s)
}

/// `^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`
fn is_base60_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    if !b.get(i).is_some_and(u8::is_ascii_digit) || !b.contains(&b':') {
        return false;
    }
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
        i += 1;
    }
    let mut groups = 0;
    while b.get(i) == Some(&b':') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() && i - start < 2 {
            i += 1;
        }
        let group = &b[start..i];
        let valid = match group {
            [d] => d.is_ascii_digit(),
            [d, e] => (b'0'..=b'5').contains(d) && e.is_ascii_digit(),
            _ => false,
        };
        if !valid {
            return false;
        }
        groups += 1;
    }
    if groups == 0 {
        return false;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
            i += 1;
        }
    }
    i == b.len()
}

/// How a number reads after the JSON round trip: integral values as integers.
pub(super) fn number_text(n: &Number) -> String {
    if n.is_i64() || n.is_u64() {
        return n.to_string();
    }
    let f = n.as_f64().unwrap_or(0.0);
    if f.fract() == 0.0 && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&f) {
        return (f as i64).to_string();
    }
    if f.fract() == 0.0 && (0.0..1.844_674_407_370_955_2e19).contains(&f) {
        return (f as u64).to_string();
    }
    format_go_float(f, 64)
}

/// A raw NEL inside the intermediate JSON text is a line break to the YAML reader, which
/// folds it with the spaces around it.
pub(super) fn fold_next_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut pending_spaces = String::new();
    let mut breaks = 0usize;
    for c in s.chars() {
        match c {
            '\u{85}' => {
                pending_spaces.clear();
                breaks += 1;
            }
            ' ' => {
                if breaks == 0 {
                    pending_spaces.push(' ');
                }
            }
            _ => {
                if breaks > 0 {
                    if breaks == 1 {
                        out.push(' ');
                    } else {
                        out.extend(std::iter::repeat_n('\n', breaks - 1));
                    }
                    breaks = 0;
                }
                out.push_str(&pending_spaces);
                pending_spaces.clear();
                out.push(c);
            }
        }
    }
    if breaks > 0 {
        out.push_str(if breaks == 1 { " " } else { "\n" });
    }
    out.push_str(&pending_spaces);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_analysed_as_a_scan_of_their_characters_finds() {
        let words = [
            "a",
            "app",
            "apps/v1",
            "web-1.2",
            "x_y",
            "LOG_LEVEL",
            "0",
            "1.0",
            "true",
            "a//b",
            "a-",
            "a.",
            "9e3",
            "k8s.io/name",
        ];
        for word in words {
            assert_eq!(Analysis::of(word), Analysis::scanned(word), "{word:?}");
        }
        // Texts the shortcut leaves to the scan: an indicator or a space inside, or first.
        for text in ["-a", ".a", "a b", "a:b", "a#b", "_a", "/a", "---", "é"] {
            assert_eq!(Analysis::of(text), Analysis::scanned(text), "{text:?}");
        }
    }
}
