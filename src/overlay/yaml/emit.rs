//! Writing one resource as YAML exactly as `kustomize build` prints it.
//!
//! kustomize turns every resource into JSON and back through a YAML 1.1 encoder, so the output
//! has keys in "natural" order (`key2` before `key10`), two-space indentation, sequences not
//! indented under their key, strings quoted only when a YAML 1.1 reader would mistake them
//! for something else, multi-line strings as literal blocks, and long strings folded at column
//! 80. This module reproduces that encoder's decisions for the values a manifest can hold.

use std::cmp::Ordering;

use serde_json::{Map, Number, Value};

use super::scalar::{Resolved, Schema, format_go_float, resolve};

const BEST_WIDTH: usize = 80;
const BEST_INDENT: i32 = 2;

/// One YAML document for `value`, ending with a newline.
pub fn document(value: &Value) -> String {
    let mut emitter = Emitter::new();
    emitter.node(value, Context::ROOT);
    emitter.indent = -1;
    emitter.write_indent();
    emitter.out
}

/// The keys of `map` in the order the encoder writes them.
pub fn sorted_keys(map: &Map<String, Value>) -> Vec<&String> {
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort_by(|a, b| natural_order(a, b));
    keys
}

/// The encoder's key order: letters after other characters, digit runs compared as numbers.
pub fn natural_order(a: &str, b: &str) -> Ordering {
    if natural_less(a, b) {
        Ordering::Less
    } else if natural_less(b, a) {
        Ordering::Greater
    } else {
        a.cmp(b)
    }
}

fn natural_less(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        return natural_less_chars(a.as_bytes(), b.as_bytes(), |c| c as char);
    }
    let ar: Vec<char> = a.chars().collect();
    let br: Vec<char> = b.chars().collect();
    natural_less_chars(&ar, &br, |c| c)
}

fn natural_less_chars<T: Copy + PartialEq + PartialOrd>(
    ar: &[T],
    br: &[T],
    ch: impl Fn(T) -> char,
) -> bool {
    for i in 0..ar.len().min(br.len()) {
        if ar[i] == br[i] {
            continue;
        }
        let (al, bl) = (ch(ar[i]).is_alphabetic(), ch(br[i]).is_alphabetic());
        if al && bl {
            return ar[i] < br[i];
        }
        if al || bl {
            return bl;
        }
        let (mut an, mut bn) = (0i64, 0i64);
        if ch(ar[i]) == '0' || ch(br[i]) == '0' {
            for j in (0..i).rev() {
                if !ch(ar[j]).is_ascii_digit() {
                    break;
                }
                if ch(ar[j]) != '0' {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let digits = |s: &[T], n: &mut i64| {
            let mut k = i;
            while k < s.len() && ch(s[k]).is_ascii_digit() {
                *n = n
                    .wrapping_mul(10)
                    .wrapping_add(i64::from(ch(s[k]) as u8 - b'0'));
                k += 1;
            }
            k
        };
        let ai = digits(ar, &mut an);
        let bi = digits(br, &mut bn);
        if an != bn {
            return an < bn;
        }
        if ai != bi {
            return ai < bi;
        }
        return ar[i] < br[i];
    }
    ar.len() < br.len()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Plain,
    SingleQuoted,
    DoubleQuoted,
    Literal,
}

#[derive(Debug, Clone, Copy)]
struct Context {
    mapping: bool,
    simple_key: bool,
}

impl Context {
    const ROOT: Context = Context {
        mapping: false,
        simple_key: false,
    };
    const SEQUENCE: Context = Context {
        mapping: false,
        simple_key: false,
    };
    const VALUE: Context = Context {
        mapping: true,
        simple_key: false,
    };
    const KEY: Context = Context {
        mapping: true,
        simple_key: true,
    };
}

struct Emitter {
    out: String,
    column: usize,
    indent: i32,
    indents: Vec<i32>,
    whitespace: bool,
    indention: bool,
    flow_level: usize,
}

impl Emitter {
    fn new() -> Self {
        Emitter {
            out: String::with_capacity(1024),
            column: 0,
            indent: -1,
            indents: Vec::new(),
            whitespace: true,
            indention: true,
            flow_level: 0,
        }
    }

    fn node(&mut self, value: &Value, context: Context) {
        match value {
            Value::Object(map) if map.is_empty() => self.empty_flow("{", "}"),
            Value::Array(items) if items.is_empty() => self.empty_flow("[", "]"),
            Value::Object(map) => self.block_mapping(map),
            Value::Array(items) => self.block_sequence(items, context),
            Value::Null => self.scalar("null", Style::Plain, context),
            Value::Bool(b) => self.scalar(if *b { "true" } else { "false" }, Style::Plain, context),
            Value::Number(n) => self.scalar(&number_text(n), Style::Plain, context),
            Value::String(s) => self.string(s, context),
        }
    }

    fn string(&mut self, s: &str, context: Context) {
        let folded;
        let s = if s.contains('\u{85}') {
            folded = fold_next_line(s);
            folded.as_str()
        } else {
            s
        };
        let style = if s.contains('\n') {
            Style::Literal
        } else if plain_is_unambiguous(s) {
            Style::Plain
        } else {
            Style::DoubleQuoted
        };
        self.scalar(s, style, context);
    }

    fn empty_flow(&mut self, open: &str, close: &str) {
        self.write_indicator(open, true, true, false);
        self.write_indicator(close, false, false, false);
    }

    fn block_mapping(&mut self, map: &Map<String, Value>) {
        self.increase_indent(false, false);
        for key in sorted_keys(map) {
            self.write_indent();
            let value = &map[key.as_str()];
            if is_simple_key(key) {
                self.string(key, Context::KEY);
                self.write_indicator(":", false, false, false);
            } else {
                self.write_indicator("?", true, false, true);
                self.string(key, Context::VALUE);
                self.write_indent();
                self.write_indicator(":", true, false, true);
            }
            self.node(value, Context::VALUE);
        }
        self.pop_indent();
    }

    fn block_sequence(&mut self, items: &[Value], context: Context) {
        self.increase_indent(false, context.mapping && !self.indention);
        for item in items {
            self.write_indent();
            self.write_indicator("-", true, false, true);
            self.node(item, Context::SEQUENCE);
        }
        self.pop_indent();
    }

    fn scalar(&mut self, text: &str, requested: Style, context: Context) {
        let analysis = Analysis::of(text);
        let style = self.select_style(requested, &analysis, context, text.is_empty());
        self.increase_indent(true, false);
        let allow_breaks = !context.simple_key;
        match style {
            Style::Plain => self.write_plain(text, allow_breaks),
            Style::SingleQuoted => self.write_single_quoted(text, allow_breaks),
            Style::DoubleQuoted => self.write_double_quoted(text, allow_breaks),
            Style::Literal => self.write_literal(text),
        }
        self.pop_indent();
    }

    fn select_style(&self, requested: Style, a: &Analysis, context: Context, empty: bool) -> Style {
        let mut style = requested;
        if context.simple_key && a.multiline {
            style = Style::DoubleQuoted;
        }
        if style == Style::Plain {
            let plain_allowed = if self.flow_level > 0 {
                a.flow_plain_allowed
            } else {
                a.block_plain_allowed
            };
            if !plain_allowed || (empty && (self.flow_level > 0 || context.simple_key)) {
                style = Style::SingleQuoted;
            }
        }
        if style == Style::SingleQuoted && !a.single_quoted_allowed {
            style = Style::DoubleQuoted;
        }
        if style == Style::Literal
            && (!a.block_allowed || self.flow_level > 0 || context.simple_key)
        {
            style = Style::DoubleQuoted;
        }
        style
    }

    fn increase_indent(&mut self, flow: bool, indentless: bool) {
        self.indents.push(self.indent);
        if self.indent < 0 {
            self.indent = if flow { BEST_INDENT } else { 0 };
        } else if !indentless {
            self.indent += BEST_INDENT;
        }
    }

    fn pop_indent(&mut self) {
        self.indent = self.indents.pop().unwrap_or(-1);
    }

    fn put(&mut self, c: char) {
        self.out.push(c);
        self.column += 1;
    }

    fn put_break(&mut self) {
        self.out.push('\n');
        self.column = 0;
    }

    fn write_break(&mut self, c: char) {
        if c == '\n' {
            self.put_break();
        } else {
            self.out.push(c);
            self.column = 0;
        }
    }

    fn write_indent(&mut self) {
        let indent = self.indent.max(0) as usize;
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.put_break();
        }
        while self.column < indent {
            self.put(' ');
        }
        self.whitespace = true;
        self.indention = true;
    }

    fn write_indicator(&mut self, indicator: &str, need_ws: bool, is_ws: bool, is_indention: bool) {
        if need_ws && !self.whitespace {
            self.put(' ');
        }
        self.out.push_str(indicator);
        self.column += indicator.chars().count();
        self.whitespace = is_ws;
        self.indention = self.indention && is_indention;
    }

    fn write_plain(&mut self, text: &str, allow_breaks: bool) {
        if !self.whitespace {
            self.put(' ');
        }
        let count = text.chars().count();
        if !allow_breaks || self.column + count <= BEST_WIDTH + 1 || !text.contains(' ') {
            self.out.push_str(text);
            self.column += count;
        } else {
            self.write_folding_plain(text);
        }
        self.whitespace = false;
        self.indention = false;
    }

    fn write_folding_plain(&mut self, text: &str) {
        let chars: Vec<char> = text.chars().collect();
        let mut spaces = false;
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == ' ' {
                let next_is_space = chars.get(i + 1) == Some(&' ');
                if !spaces && self.column > BEST_WIDTH && !next_is_space {
                    self.write_indent();
                } else {
                    self.put(c);
                }
                spaces = true;
            } else {
                self.put(c);
                self.indention = false;
                spaces = false;
            }
            i += 1;
        }
    }

    fn write_single_quoted(&mut self, text: &str, allow_breaks: bool) {
        self.write_indicator("'", true, false, false);
        let chars: Vec<char> = text.chars().collect();
        let (mut spaces, mut breaks) = (false, false);
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                let fold = allow_breaks
                    && !spaces
                    && self.column > BEST_WIDTH
                    && i > 0
                    && i + 1 < chars.len()
                    && chars[i + 1] != ' ';
                if fold {
                    self.write_indent();
                } else {
                    self.put(c);
                }
                spaces = true;
            } else if is_break(c) {
                if !breaks && c == '\n' {
                    self.put_break();
                }
                self.write_break(c);
                self.indention = true;
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                if c == '\'' {
                    self.put('\'');
                }
                self.put(c);
                self.indention = false;
                spaces = false;
                breaks = false;
            }
        }
        self.write_indicator("'", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn write_double_quoted(&mut self, text: &str, allow_breaks: bool) {
        self.write_indicator("\"", true, false, false);
        let chars: Vec<char> = text.chars().collect();
        let starts_with_bom = chars.first() == Some(&'\u{feff}');
        let mut spaces = false;
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if !is_printable(c) || starts_with_bom || is_break(c) || c == '"' || c == '\\' {
                self.write_escape(c);
                spaces = false;
            } else if c == ' ' {
                if allow_breaks
                    && !spaces
                    && self.column > BEST_WIDTH
                    && i > 0
                    && i + 1 < chars.len()
                {
                    self.write_indent();
                    if chars[i + 1] == ' ' {
                        self.put('\\');
                    }
                } else {
                    self.put(c);
                }
                spaces = true;
            } else {
                self.put(c);
                spaces = false;
            }
            i += 1;
        }
        self.write_indicator("\"", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn write_escape(&mut self, c: char) {
        self.put('\\');
        let short = match c {
            '\0' => Some('0'),
            '\u{7}' => Some('a'),
            '\u{8}' => Some('b'),
            '\t' => Some('t'),
            '\n' => Some('n'),
            '\u{b}' => Some('v'),
            '\u{c}' => Some('f'),
            '\r' => Some('r'),
            '\u{1b}' => Some('e'),
            '"' => Some('"'),
            '\\' => Some('\\'),
            '\u{85}' => Some('N'),
            '\u{a0}' => Some('_'),
            '\u{2028}' => Some('L'),
            '\u{2029}' => Some('P'),
            _ => None,
        };
        if let Some(short) = short {
            self.put(short);
            return;
        }
        let v = c as u32;
        let (letter, width) = match v {
            0..=0xFF => ('x', 2),
            0x100..=0xFFFF => ('u', 4),
            _ => ('U', 8),
        };
        self.put(letter);
        for digit in format!("{v:0width$X}").chars() {
            self.put(digit);
        }
    }

    fn write_literal(&mut self, text: &str) {
        self.write_indicator("|", true, false, false);
        self.write_block_hints(text);
        self.put_break();
        self.indention = true;
        self.whitespace = true;
        let mut breaks = true;
        for c in text.chars() {
            if is_break(c) {
                self.write_break(c);
                self.indention = true;
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                self.put(c);
                self.indention = false;
                breaks = false;
            }
        }
    }

    fn write_block_hints(&mut self, text: &str) {
        if text.starts_with(' ') || text.chars().next().is_some_and(is_break) {
            self.write_indicator("2", false, false, false);
        }
        let mut rev = text.chars().rev();
        let chomp = match (rev.next(), rev.next()) {
            (None, _) => Some("-"),
            (Some(last), _) if !is_break(last) => Some("-"),
            (Some(_), None) => Some("+"),
            (Some(_), Some(before)) if is_break(before) => Some("+"),
            _ => None,
        };
        if let Some(chomp) = chomp {
            self.write_indicator(chomp, false, false, false);
        }
    }
}

/// What the scalar's characters allow, as the encoder's analysis decides it.
struct Analysis {
    multiline: bool,
    flow_plain_allowed: bool,
    block_plain_allowed: bool,
    single_quoted_allowed: bool,
    block_allowed: bool,
}

impl Analysis {
    fn of(text: &str) -> Analysis {
        if text.is_empty() {
            return Analysis {
                multiline: false,
                flow_plain_allowed: false,
                block_plain_allowed: true,
                single_quoted_allowed: true,
                block_allowed: false,
            };
        }
        let f = Flags::scan(text);
        let edges = f.leading_space || f.leading_break || f.trailing_space || f.trailing_break;
        let mut a = Analysis {
            multiline: f.line_breaks,
            flow_plain_allowed: true,
            block_plain_allowed: true,
            single_quoted_allowed: true,
            block_allowed: true,
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
}

impl Flags {
    fn scan(text: &str) -> Flags {
        let mut f = Flags::default();
        if text.starts_with("---") || text.starts_with("...") {
            f.block_indicators = true;
            f.flow_indicators = true;
        }
        let chars: Vec<char> = text.chars().collect();
        let (mut preceded_by_ws, mut previous_space, mut previous_break) = (true, false, false);
        for (i, &c) in chars.iter().enumerate() {
            let last = i + 1 == chars.len();
            let followed_by_ws = last || matches!(chars[i + 1], ' ' | '\t');
            f.indicators(c, i == 0, preceded_by_ws, followed_by_ws);
            if !is_printable(c) {
                f.special = true;
            }
            if c == ' ' {
                f.leading_space |= i == 0;
                f.trailing_space |= last;
                f.break_space |= previous_break;
                previous_space = true;
                previous_break = false;
            } else if is_break(c) {
                f.line_breaks = true;
                f.leading_break |= i == 0;
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

fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn is_printable(c: char) -> bool {
    matches!(c as u32, 0x0A | 0x20..=0x7E | 0xA0..=0xD7FF | 0xE000..=0xFFFD) && c != '\u{feff}'
}

fn is_simple_key(key: &str) -> bool {
    key.len() <= 128 && !key.chars().any(is_break)
}

/// Whether a YAML 1.1 reader would read `s` back as the same string when written plain.
fn plain_is_unambiguous(s: &str) -> bool {
    resolve(s, Schema::Yaml11) == Resolved::Str && !is_base60_float(s)
}

/// `^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`
fn is_base60_float(s: &str) -> bool {
    let b = s.as_bytes();
    if !b.contains(&b':') {
        return false;
    }
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    if !b.get(i).is_some_and(u8::is_ascii_digit) {
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
fn number_text(n: &Number) -> String {
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
fn fold_next_line(s: &str) -> String {
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
    use serde_json::json;

    use super::*;

    #[test]
    fn writes_nested_structures_like_kustomize() {
        let value = json!({
            "kind": "ConfigMap",
            "data": {"key10": "a", "key2": "b", "9": "x", "_x": "y"},
            "list": [["a", "b"], [], {}, {"x": 1, "y": [1, 2]}, "multi\nline\n", null],
        });
        let expected = "\
data:
  _x: \"y\"
  \"9\": x
  key2: b
  key10: a
kind: ConfigMap
list:
- - a
  - b
- []
- {}
- x: 1
  \"y\":
  - 1
  - 2
- |
  multi
  line
- null
";
        assert_eq!(document(&value), expected);
    }

    #[test]
    fn quotes_strings_a_yaml_1_1_reader_would_misread() {
        let value = json!({"a": ["true", "yes", "123", "", "a: b", " lead", "1:20", "0o17",
            "2001-12-14T00:00:00Z", "it's", "a\tb", "emoji 😀", "\u{feff}bom", "x\u{85}y"]});
        let expected = "a:\n- \"true\"\n- \"yes\"\n- \"123\"\n- \"\"\n- 'a: b'\n- ' lead'\n- \"1:20\"\n- \"0o17\"\n- \"2001-12-14T00:00:00Z\"\n- it's\n- \"a\\tb\"\n- \"emoji \\U0001F600\"\n- \"\\uFEFF\\x62\\x6F\\x6D\"\n- x y\n";
        assert_eq!(document(&value), expected);
    }

    #[test]
    fn folds_long_strings_at_column_80() {
        let long = "aaaa bbbb cccc dddd eeee ffff gggg hhhh iiii jjjj kkkk llll mmmm nnnn oooo pppp qqqq rrrr ssss tttt uuuu vvvv";
        let value = json!({"data": {"long": long, "longq": format!("x: {long}")}});
        let expected = "data:\n  long: aaaa bbbb cccc dddd eeee ffff gggg hhhh iiii jjjj kkkk llll mmmm nnnn oooo\n    pppp qqqq rrrr ssss tttt uuuu vvvv\n  longq: 'x: aaaa bbbb cccc dddd eeee ffff gggg hhhh iiii jjjj kkkk llll mmmm nnnn\n    oooo pppp qqqq rrrr ssss tttt uuuu vvvv'\n";
        assert_eq!(document(&value), expected);
    }

    #[test]
    fn chooses_block_chomping_and_indentation_hints() {
        let value = json!({"a": "x\ny\n\n", "b": "  x\ny\n", "c": "x \ny\n"});
        let expected = "a: |+\n  x\n  y\n\nb: |2\n    x\n  y\nc: \"x \\ny\\n\"\n";
        assert_eq!(document(&value), expected);
    }

    #[test]
    fn long_keys_use_the_explicit_key_form() {
        let key = "k".repeat(130);
        let value = json!({ key.clone(): "v" });
        assert_eq!(document(&value), format!("? {key}\n: v\n"));
    }

    #[test]
    fn numbers_read_back_as_integers_when_integral() {
        let value = json!({"a": 1.0, "b": 1.5, "c": 1e21, "d": 1e19, "e": 1234567.5});
        assert_eq!(
            document(&value),
            "a: 1\nb: 1.5\nc: 1e+21\nd: 10000000000000000000\ne: 1.2345675e+06\n"
        );
    }
}
