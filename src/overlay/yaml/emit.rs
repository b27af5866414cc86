//! Writing one resource as YAML exactly as `kustomize build` prints it.
//!
//! kustomize turns every resource into JSON and back through a YAML 1.1 encoder, so the output
//! has keys in "natural" order (`key2` before `key10`), two-space indentation, sequences not
//! indented under their key, strings quoted only when a YAML 1.1 reader would mistake them
//! for something else, multi-line strings as literal blocks, and long strings folded at column
//! 80. This module reproduces that encoder's decisions for the values a manifest can hold.

use serde_json::{Map, Value};

use super::keys::natural_order;
use super::style::{
    Analysis, fold_next_line, is_break, is_printable, is_simple_key, number_text,
    plain_is_unambiguous,
};

const BEST_WIDTH: usize = 80;
const BEST_INDENT: i32 = 2;

/// Indentation is written from this, a slice at a time.
const SPACES: &str = "                                ";

/// One YAML document for `value`, ending with a newline.
pub fn document(value: &Value) -> String {
    let mut out = String::new();
    write_document(value, &mut out);
    out
}

/// Appends [`document`]`(value)` to `out`, so that a stream of documents is written into one
/// buffer instead of one string per document.
pub fn write_document(value: &Value, out: &mut String) {
    let mut emitter = Emitter::new(out);
    emitter.node(value, Context::ROOT);
    emitter.indent = -1;
    emitter.write_indent();
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

struct Emitter<'o, 'v> {
    out: &'o mut String,
    /// The entries of the mappings being written, each mapping's sorted run above its
    /// enclosing one's: one buffer for the whole document instead of one per mapping.
    entries: Vec<(&'v String, &'v Value)>,
    column: usize,
    indent: i32,
    indents: Vec<i32>,
    whitespace: bool,
    indention: bool,
    flow_level: usize,
}

impl<'o, 'v> Emitter<'o, 'v> {
    fn new(out: &'o mut String) -> Self {
        out.reserve(1024);
        Emitter {
            out,
            entries: Vec::new(),
            column: 0,
            indent: -1,
            indents: Vec::new(),
            whitespace: true,
            indention: true,
            flow_level: 0,
        }
    }

    fn node(&mut self, value: &'v Value, context: Context) {
        match value {
            Value::Object(map) if map.is_empty() => self.empty_flow("{", "}"),
            Value::Array(items) if items.is_empty() => self.empty_flow("[", "]"),
            Value::Object(map) => self.block_mapping(map),
            Value::Array(items) => self.block_sequence(items, context),
            Value::Null => self.write_word("null"),
            Value::Bool(b) => self.write_word(if *b { "true" } else { "false" }),
            Value::Number(n) => self.write_word(&number_text(n)),
            Value::String(s) => self.string(s, &Analysis::of(s), context),
        }
    }

    /// Writes a null, a boolean or a number. Their text has no space, break or indicator, so
    /// the encoder always writes it plain and never folds it.
    fn write_word(&mut self, text: &str) {
        if !self.whitespace {
            self.put(' ');
        }
        self.out.push_str(text);
        self.column += text.len();
        self.whitespace = false;
        self.indention = false;
    }

    /// Writes the string `s`, whose characters `a` describes.
    fn string(&mut self, s: &str, a: &Analysis, context: Context) {
        if a.next_line {
            let folded = fold_next_line(s);
            self.string(&folded, &Analysis::of(&folded), context);
            return;
        }
        let style = if a.line_feed {
            Style::Literal
        } else if plain_is_unambiguous(s) {
            Style::Plain
        } else {
            Style::DoubleQuoted
        };
        self.scalar(s, style, a, context);
    }

    fn empty_flow(&mut self, open: &str, close: &str) {
        self.write_indicator(open, true, true, false);
        self.write_indicator(close, false, false, false);
    }

    fn block_mapping(&mut self, map: &'v Map<String, Value>) {
        self.increase_indent(false, false);
        let start = self.entries.len();
        self.entries.extend(map.iter());
        self.entries[start..].sort_by(|a, b| natural_order(a.0, b.0));
        for i in start..start + map.len() {
            let (key, value) = self.entries[i];
            self.write_indent();
            let analysis = Analysis::of(key);
            if is_simple_key(key, &analysis) {
                self.string(key, &analysis, Context::KEY);
                self.write_indicator(":", false, false, false);
            } else {
                self.write_indicator("?", true, false, true);
                self.string(key, &analysis, Context::VALUE);
                self.write_indent();
                self.write_indicator(":", true, false, true);
            }
            self.node(value, Context::VALUE);
        }
        self.entries.truncate(start);
        self.pop_indent();
    }

    fn block_sequence(&mut self, items: &'v [Value], context: Context) {
        self.increase_indent(false, context.mapping && !self.indention);
        for item in items {
            self.write_indent();
            self.write_indicator("-", true, false, true);
            self.node(item, Context::SEQUENCE);
        }
        self.pop_indent();
    }

    fn scalar(&mut self, text: &str, requested: Style, a: &Analysis, context: Context) {
        let style = self.select_style(requested, a, context, text.is_empty());
        self.increase_indent(true, false);
        let allow_breaks = !context.simple_key;
        match style {
            Style::Plain => self.write_plain(text, a, allow_breaks),
            Style::SingleQuoted => self.write_single_quoted(text, a, allow_breaks),
            Style::DoubleQuoted => self.write_double_quoted(text, a, allow_breaks),
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
            let spaces = (indent - self.column).min(SPACES.len());
            self.out.push_str(&SPACES[..spaces]);
            self.column += spaces;
        }
        self.whitespace = true;
        self.indention = true;
    }

    /// Writes an indicator; all of them are ASCII, one column per byte.
    fn write_indicator(&mut self, indicator: &str, need_ws: bool, is_ws: bool, is_indention: bool) {
        if need_ws && !self.whitespace {
            self.put(' ');
        }
        self.out.push_str(indicator);
        self.column += indicator.len();
        self.whitespace = is_ws;
        self.indention = self.indention && is_indention;
    }

    fn write_plain(&mut self, text: &str, a: &Analysis, allow_breaks: bool) {
        if !self.whitespace {
            self.put(' ');
        }
        if !allow_breaks || self.column + a.chars <= BEST_WIDTH + 1 || !a.space {
            self.out.push_str(text);
            self.column += a.chars;
        } else {
            self.write_folding_plain(text);
        }
        self.whitespace = false;
        self.indention = false;
    }

    fn write_folding_plain(&mut self, text: &str) {
        let mut spaces = false;
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            if c == ' ' {
                let next_is_space = chars.peek() == Some(&' ');
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
        }
    }

    /// Whether a quoted scalar of `a.chars` characters, opened at the current column, ends
    /// before any of its spaces could stand beyond the width: then nothing in it folds.
    fn fits(&self, a: &Analysis) -> bool {
        self.column + a.chars <= BEST_WIDTH + 1
    }

    fn write_single_quoted(&mut self, text: &str, a: &Analysis, allow_breaks: bool) {
        self.write_indicator("'", true, false, false);
        if !a.multiline && !a.single_quote && (!allow_breaks || self.fits(a)) {
            // Nothing to double, break or fold: the text goes out as it is.
            self.out.push_str(text);
            self.column += a.chars;
        } else {
            self.write_single_quoted_chars(text, allow_breaks);
        }
        self.write_indicator("'", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn write_single_quoted_chars(&mut self, text: &str, allow_breaks: bool) {
        let (mut spaces, mut breaks) = (false, false);
        let mut chars = text.chars().peekable();
        let mut first = true;
        while let Some(c) = chars.next() {
            if c == ' ' {
                let fold = allow_breaks
                    && !spaces
                    && self.column > BEST_WIDTH
                    && !first
                    && chars.peek().is_some_and(|&next| next != ' ');
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
            first = false;
        }
    }

    fn write_double_quoted(&mut self, text: &str, a: &Analysis, allow_breaks: bool) {
        self.write_indicator("\"", true, false, false);
        if !a.escapes && (!allow_breaks || self.fits(a)) {
            // Nothing to escape or fold: the text goes out as it is.
            self.out.push_str(text);
            self.column += a.chars;
        } else {
            self.write_double_quoted_chars(text, allow_breaks);
        }
        self.write_indicator("\"", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn write_double_quoted_chars(&mut self, text: &str, allow_breaks: bool) {
        let starts_with_bom = text.starts_with('\u{feff}');
        let mut spaces = false;
        let mut chars = text.chars().peekable();
        let mut first = true;
        while let Some(c) = chars.next() {
            if !is_printable(c) || starts_with_bom || is_break(c) || c == '"' || c == '\\' {
                self.write_escape(c);
                spaces = false;
            } else if c == ' ' {
                let next = chars.peek().copied();
                if allow_breaks && !spaces && self.column > BEST_WIDTH && !first && next.is_some() {
                    self.write_indent();
                    if next == Some(' ') {
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
            first = false;
        }
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
