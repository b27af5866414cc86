//! `configMapGenerator` and `secretGenerator`: objects built from literals, files and env
//! files, marked for a content-hash name suffix and with their merge behaviour, as kustomize
//! builds them.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::kustomization::{GeneratorArgs, GeneratorOptions};
use super::resource::{BEHAVIOR, NEEDS_HASH, Resource};

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generated {
    ConfigMap,
    Secret,
}

/// One key and value loaded for a generator, in source order.
pub type Pairs = Vec<(String, Vec<u8>)>;

/// Builds the object for `args` from its already loaded key/value pairs.
pub fn generate(
    what: Generated,
    args: &GeneratorArgs,
    options: Option<&GeneratorOptions>,
    pairs: Pairs,
) -> Result<Resource, String> {
    let kind = match what {
        Generated::ConfigMap => "ConfigMap",
        Generated::Secret => "Secret",
    };
    if args.name.is_empty() {
        return Err(format!("a {} must have a name", kind.to_lowercase()));
    }
    let mut metadata = Map::new();
    metadata.insert("name".into(), Value::String(args.name.clone()));
    if !args.namespace.is_empty() {
        metadata.insert("namespace".into(), Value::String(args.namespace.clone()));
    }
    let mut object = Map::new();
    object.insert("apiVersion".into(), json!("v1"));
    object.insert("kind".into(), json!(kind));
    object.insert("metadata".into(), Value::Object(metadata));
    let data = unique(&args.name, pairs)?;
    match what {
        Generated::ConfigMap => config_map_data(&mut object, data),
        Generated::Secret => {
            let secret_type = if args.secret_type.is_empty() {
                "Opaque"
            } else {
                &args.secret_type
            };
            object.insert("type".into(), json!(secret_type));
            let encoded = data
                .into_iter()
                .map(|(k, v)| (k, Value::String(encode_base64(&v))))
                .collect();
            object.insert("data".into(), Value::Object(encoded));
        }
    }
    let mut resource = Resource::new(Value::Object(object));
    apply_options(&mut resource, options);
    if !options.is_some_and(|o| o.disable_name_suffix_hash) {
        resource.set_annotation(NEEDS_HASH, "enabled");
    }
    resource.set_annotation(BEHAVIOR, args.behavior.as_str());
    Ok(resource)
}

fn unique(name: &str, pairs: Pairs) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let mut data = BTreeMap::new();
    for (key, value) in pairs {
        if data.contains_key(&key) {
            return Err(format!(
                "configmap {name} illegally repeats the key `{key}`"
            ));
        }
        data.insert(key, value);
    }
    Ok(data)
}

/// Text values go to `data`; values that are not UTF-8 go base64-encoded to `binaryData`.
fn config_map_data(object: &mut Map<String, Value>, data: BTreeMap<String, Vec<u8>>) {
    for (key, value) in data {
        let (field, text) = match String::from_utf8(value) {
            Ok(text) => ("data", text),
            Err(err) => ("binaryData", encode_base64(err.as_bytes())),
        };
        let entry = object
            .entry(field)
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(map) = entry {
            map.insert(key, Value::String(text));
        }
    }
}

fn apply_options(resource: &mut Resource, options: Option<&GeneratorOptions>) {
    let Some(options) = options else {
        return;
    };
    if !options.labels.is_empty() {
        let labels: Map<String, Value> = options
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        resource
            .metadata_mut()
            .insert("labels".into(), Value::Object(labels));
    }
    for (key, value) in &options.annotations {
        resource.set_annotation(key, value);
    }
    if let (true, Value::Object(object)) = (options.immutable, &mut resource.value) {
        object.insert("immutable".into(), Value::Bool(true));
    }
}

/// Standard base64, broken into 70-character lines (each ending in a newline) once it is that
/// long, as kustomize encodes generated data.
pub fn encode_base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut encoded = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                encoded.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                encoded.push('=');
            }
        }
    }
    const LINE: usize = 70;
    if encoded.len() < LINE {
        return encoded;
    }
    let mut wrapped = String::with_capacity(encoded.len() + encoded.len() / LINE + 1);
    for line in encoded.as_bytes().chunks(LINE) {
        wrapped.push_str(std::str::from_utf8(line).unwrap_or_default());
        wrapped.push('\n');
    }
    wrapped
}

/// `KEY=value` lines of an env file; blank lines and `#` comments are skipped.
pub fn env_pairs(text: &[u8]) -> Result<Pairs, String> {
    let mut pairs = Vec::new();
    for (number, line) in text.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let line = if number == 0 {
            line.strip_prefix("\u{feff}".as_bytes()).unwrap_or(line)
        } else {
            line
        };
        let line = std::str::from_utf8(line)
            .map_err(|_| format!("line {} has invalid utf8 bytes", number + 1))?;
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line.split_once('=').unwrap_or((line, ""));
        pairs.push((key.to_string(), value.as_bytes().to_vec()));
    }
    Ok(pairs)
}

/// `key=value` of a literal source; quotes around the value are removed.
pub fn literal_pair(source: &str) -> Result<(String, Vec<u8>), String> {
    let invalid = || format!("invalid literal source {source}, expected key=value");
    if source.starts_with('=') {
        return Err(invalid());
    }
    let (key, value) = source.split_once('=').ok_or_else(invalid)?;
    let b = value.as_bytes();
    let value = if b.len() >= 2 && b[0] == b[b.len() - 1] && (b[0] == b'"' || b[0] == b'\'') {
        &value[1..value.len() - 1]
    } else {
        value
    };
    Ok((key.to_string(), value.as_bytes().to_vec()))
}

/// `[key=]path` of a file source: the key defaults to the file's base name.
pub fn file_source(source: &str) -> Result<(String, String), String> {
    match source.matches('=').count() {
        0 => {
            let base = source
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or(source);
            Ok((base.to_string(), source.to_string()))
        }
        1 if source.starts_with('=') => Err(format!(
            "missing key name for file path {:?} in source {source:?}",
            source.trim_start_matches('=')
        )),
        1 if source.ends_with('=') => Err(format!(
            "missing file path for key name {:?} in source {source:?}",
            source.trim_end_matches('=')
        )),
        1 => {
            let (key, path) = source.split_once('=').unwrap_or((source, source));
            Ok((key.to_string(), path.to_string()))
        }
        _ => Err(format!(
            "source {source:?} key name or file path contains '='"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_wraps_long_values_like_kustomize() {
        assert_eq!(encode_base64(b"hello"), "aGVsbG8=");
        assert_eq!(encode_base64(b""), "");
        let long = encode_base64(&[b'x'; 60]);
        assert_eq!(long.lines().next().map(str::len), Some(70));
        assert!(long.ends_with('\n'));
    }

    #[test]
    fn reads_env_files_literals_and_file_sources() {
        let pairs = env_pairs(b"# c\nA=1\n  B=x=y\r\nC\n\n").expect("valid");
        let keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["A", "B", "C"]);
        assert_eq!(pairs[1].1, b"x=y");
        assert_eq!(
            literal_pair("k='v w'").expect("valid"),
            ("k".into(), b"v w".to_vec())
        );
        assert_eq!(
            file_source("dir/app.properties").expect("valid").0,
            "app.properties"
        );
        assert_eq!(
            file_source("k=dir/f").expect("valid"),
            ("k".into(), "dir/f".into())
        );
        assert!(file_source("=f").is_err());
    }
}
