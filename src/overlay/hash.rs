//! The content-hash name suffix of generated ConfigMaps and Secrets, computed exactly as
//! kustomize computes it: SHA-256 over a JSON encoding (Go's, with its key order and escapes)
//! of kind, name, type and data, the first ten hex digits spelled without vowel-like digits.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::resource::{Resource, scalar_text};
use super::yaml::scalar::format_go_float;

/// The suffix for `resource` (which must be a ConfigMap or Secret to match kustomize).
pub fn suffix(resource: &Resource) -> String {
    let value = &resource.value;
    // kustomize looks the name up as one field literally called `metadata/name`, which never
    // exists: the name is always empty in the hashed text.
    let name = scalar_text(value.get("metadata/name"));
    // The encoded object, written field by field in Go's (sorted) key order.
    let mut text = String::with_capacity(256);
    text.push('{');
    match resource.kind() {
        "Secret" => {
            key(&mut text, "data");
            field(&mut text, value.get("data"));
            key(&mut text, "kind");
            go_string(&mut text, "Secret");
            key(&mut text, "name");
            go_string(&mut text, &name);
            if let Some(Value::Object(string_data)) = value.get("stringData") {
                key(&mut text, "stringData");
                go_object(&mut text, string_data);
            }
            key(&mut text, "type");
            field(&mut text, value.get("type"));
        }
        _ => {
            if let Some(Value::Object(binary)) = value.get("binaryData") {
                key(&mut text, "binaryData");
                go_object(&mut text, binary);
            }
            key(&mut text, "data");
            field(&mut text, value.get("data"));
            key(&mut text, "kind");
            go_string(&mut text, "ConfigMap");
            key(&mut text, "name");
            go_string(&mut text, &name);
        }
    }
    text.push('}');
    encode(&Sha256::digest(text.as_bytes()))
}

/// Starts the next field of the object being written in `text`.
fn key(text: &mut String, key: &str) {
    if text.len() > 1 {
        text.push(',');
    }
    go_string(text, key);
    text.push(':');
}

/// A top-level field: missing is `""`, a scalar its text, a collection its JSON.
fn field(out: &mut String, value: Option<&Value>) {
    match value {
        None | Some(Value::Null) => go_string(out, ""),
        Some(Value::Object(map)) => go_object(out, map),
        Some(Value::Array(items)) => go_array(out, items),
        Some(other) => go_string(out, &scalar_text(Some(other))),
    }
}

/// The first ten hex digits of `digest`, spelled without vowel-like digits.
fn encode(digest: &[u8]) -> String {
    digest
        .iter()
        .flat_map(|b| [b >> 4, b & 0xf])
        .take(10)
        .map(|nibble| match nibble {
            0 => 'g',
            1 => 'h',
            3 => 'k',
            0xa => 'm',
            0xe => 't',
            n => char::from_digit(u32::from(n), 16).unwrap_or('0'),
        })
        .collect()
}

/// A value as Go's `encoding/json` writes a decoded `interface{}`: keys sorted bytewise,
/// numbers as float64.
fn go_json(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&go_number(n.as_f64().unwrap_or(0.0))),
        Value::String(s) => go_string(out, s),
        Value::Array(items) => go_array(out, items),
        Value::Object(map) => go_object(out, map),
    }
}

fn go_array(out: &mut String, items: &[Value]) {
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        go_json(out, item);
    }
    out.push(']');
}

fn go_object(out: &mut String, map: &Map<String, Value>) {
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    out.push('{');
    for (i, (key, value)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        go_string(out, key);
        out.push(':');
        go_json(out, value);
    }
    out.push('}');
}

/// Go's float64 encoding: plain notation between 1e-6 and 1e21, exponent notation outside.
fn go_number(f: f64) -> String {
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let text = format_go_float(f, 64);
        // Go writes e-07 as e-7 in JSON.
        return match text.split_once('e') {
            Some((m, exp)) => {
                let (sign, digits) = exp.split_at(1);
                format!("{m}e{sign}{}", digits.trim_start_matches('0'))
            }
            None => text,
        };
    }
    if f.fract() == 0.0 && abs < 1e21 {
        return format!("{f:.0}");
    }
    format!("{f}")
}

/// A string as Go's `encoding/json` escapes it (HTML-safe).
fn go_string(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn escapes_like_go() {
        let mut text = String::new();
        go_string(&mut text, "a<b>&\"\n");
        assert_eq!(text, r#""a\u003cb\u003e\u0026\"\n""#);
        assert_eq!(go_number(1.0), "1");
        assert_eq!(go_number(1.5), "1.5");
        assert_eq!(go_number(1e21), "1e+21");
        assert_eq!(go_number(1e-7), "1e-7");
    }

    #[test]
    fn suffixes_match_kustomize() {
        let cases = [
            (
                json!({"kind": "ConfigMap", "metadata": {"name": "app-config"}, "data": {"FOO": "bar"}}),
                "59m54fbgh2",
            ),
            (
                json!({"kind": "ConfigMap", "metadata": {"name": "empty"}}),
                "6ct58987ht",
            ),
            (
                json!({"kind": "Secret", "metadata": {"name": "s"}, "type": "Opaque", "data": {"pw": "PCY+"}}),
                "t6fh5bkm2k",
            ),
            (
                json!({"kind": "Secret", "metadata": {"name": "s2"}, "type": "Opaque", "data": {}}),
                "46f8b28mk5",
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(suffix(&Resource::new(value)), expected);
        }
    }
}
