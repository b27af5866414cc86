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
    let mut fields: Vec<(&str, String)> = vec![("data", field(value.get("data")))];
    match resource.kind() {
        "Secret" => {
            fields.push(("kind", go_string("Secret")));
            fields.push(("name", go_string(&name)));
            if let Some(Value::Object(string_data)) = value.get("stringData") {
                fields.push(("stringData", go_object(string_data)));
            }
            fields.push(("type", field(value.get("type"))));
        }
        _ => {
            if let Some(Value::Object(binary)) = value.get("binaryData") {
                fields.insert(0, ("binaryData", go_object(binary)));
            }
            fields.push(("kind", go_string("ConfigMap")));
            fields.push(("name", go_string(&name)));
        }
    }
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}:{v}", go_string(k)))
        .collect();
    encode(&hex(&format!("{{{}}}", body.join(","))))
}

/// A top-level field: missing is `""`, a scalar its text, a collection its JSON.
fn field(value: Option<&Value>) -> String {
    match value {
        None => go_string(""),
        Some(Value::Object(map)) => go_object(map),
        Some(Value::Array(items)) => go_array(items),
        Some(Value::Null) => go_string(""),
        Some(other) => go_string(&scalar_text(Some(other))),
    }
}

fn hex(data: &str) -> String {
    let digest = Sha256::digest(data.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn encode(hex: &str) -> String {
    hex.chars()
        .take(10)
        .map(|c| match c {
            '0' => 'g',
            '1' => 'h',
            '3' => 'k',
            'a' => 'm',
            'e' => 't',
            c => c,
        })
        .collect()
}

/// A value as Go's `encoding/json` writes a decoded `interface{}`: keys sorted bytewise,
/// numbers as float64.
fn go_json(value: &Value) -> String {
    match value {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => go_number(n.as_f64().unwrap_or(0.0)),
        Value::String(s) => go_string(s),
        Value::Array(items) => go_array(items),
        Value::Object(map) => go_object(map),
    }
}

fn go_array(items: &[Value]) -> String {
    let parts: Vec<String> = items.iter().map(go_json).collect();
    format!("[{}]", parts.join(","))
}

fn go_object(map: &Map<String, Value>) -> String {
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    let parts: Vec<String> = keys
        .iter()
        .map(|k| format!("{}:{}", go_string(k), go_json(&map[k.as_str()])))
        .collect();
    format!("{{{}}}", parts.join(","))
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
fn go_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
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
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn escapes_like_go() {
        assert_eq!(go_string("a<b>&\"\n"), r#""a\u003cb\u003e\u0026\"\n""#);
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
