//! Field lookups in objects. An object's map (serde_json's, an `IndexMap` so that keys keep
//! their order) finds a key by hashing it with SipHash, which costs more than comparing the
//! few keys a manifest's mappings have: identities, annotations and field paths are read
//! many times per object, and hashing was a sixth of a render. Small maps are therefore
//! searched key by key; larger ones by hash.

use serde_json::{Map, Value};

/// Maps of up to this many entries are searched key by key.
const SCAN: usize = 8;

/// The value of `key` in `map`.
pub fn get<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    if map.len() <= SCAN {
        map.iter().find_map(|(k, v)| (k == key).then_some(v))
    } else {
        map.get(key)
    }
}

/// The value of `key` in `map`, to change.
pub fn get_mut<'a>(map: &'a mut Map<String, Value>, key: &str) -> Option<&'a mut Value> {
    if map.len() <= SCAN {
        map.iter_mut().find_map(|(k, v)| (k == key).then_some(v))
    } else {
        map.get_mut(key)
    }
}

/// Field `key` of `value`, when `value` is an object that has it.
pub fn field<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    get(value.as_object()?, key)
}

/// Field `key` of `value`, to change, when `value` is an object that has it.
pub fn field_mut<'a>(value: &'a mut Value, key: &str) -> Option<&'a mut Value> {
    get_mut(value.as_object_mut()?, key)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn finds_what_the_map_finds_in_small_and_large_maps() {
        let small = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}});
        let mut large = Map::new();
        for i in 0..20 {
            large.insert(format!("key{i}"), json!(i));
        }
        let mut large = Value::Object(large);
        for value in [&small, &large] {
            let map = value.as_object().expect("an object");
            for key in map.keys().map(String::as_str).chain(["missing", "", "kin"]) {
                assert_eq!(field(value, key), map.get(key), "{key}");
            }
        }
        *field_mut(&mut large, "key13").expect("present") = json!("changed");
        assert_eq!(large["key13"], json!("changed"));
        assert_eq!(field(&json!(["kind"]), "kind"), None);
        assert_eq!(field(&json!("kind"), "kind"), None);
    }
}
