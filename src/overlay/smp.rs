//! Strategic merge, as kustomize applies it: maps merge key by key, `null` deletes a key,
//! `$patch: delete|replace|merge` directives on maps and lists, lists of the built-in kinds
//! merged element by element by their merge keys (new patch elements first), every other list
//! replaced by the patch's.

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::lookup;
use super::resource::scalar_text;
use super::schema::{self, Schema};
use super::yaml::scalar::{Schema as Rules, resolve};

const DIRECTIVE: &str = "$patch";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Directive {
    Merge,
    Replace,
    Delete,
}

/// Merges `patch` into `target`; `None` when the patch deletes the whole object.
pub fn merge(target: Value, patch: &Value) -> Result<Option<Value>, String> {
    walk(Some(target), Some(patch), None)
}

/// The result of walking one value: `None` removes the field.
type Merged = Option<Value>;

fn walk(
    dest: Option<Value>,
    origin: Option<&Value>,
    schema: Option<Schema>,
) -> Result<Merged, String> {
    let schema = schema.or_else(|| embedded(dest.as_ref()).or_else(|| embedded(origin)));
    match kind(dest.as_ref(), origin)? {
        Kind::Map => walk_map(dest, origin, schema),
        Kind::List => match schema.and_then(Schema::merge_keys) {
            Some(keys) => walk_list(dest, origin, keys, schema.and_then(Schema::elements)),
            None => Ok(replace_with(dest, origin)),
        },
        Kind::Scalar => Ok(replace_with(dest, origin)),
    }
}

/// Scalars and plain lists: the patch's value wins, and a patch `null` removes the field.
fn replace_with(dest: Option<Value>, origin: Option<&Value>) -> Merged {
    match origin {
        Some(Value::Null) => None,
        Some(value) => Some(value.clone()),
        None => dest,
    }
}

/// The schema of an object that names its own apiVersion and kind.
fn embedded(value: Option<&Value>) -> Option<Schema> {
    let object = value?.as_object()?;
    let api_version = lookup::get(object, "apiVersion")?.as_str()?;
    let kind = lookup::get(object, "kind")?.as_str()?;
    schema::for_kind(api_version, kind)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Map,
    List,
    Scalar,
}

fn kind_of(value: &Value) -> Option<Kind> {
    match value {
        Value::Null => None,
        Value::Object(_) => Some(Kind::Map),
        Value::Array(_) => Some(Kind::List),
        _ => Some(Kind::Scalar),
    }
}

fn kind(dest: Option<&Value>, origin: Option<&Value>) -> Result<Kind, String> {
    match (dest.and_then(kind_of), origin.and_then(kind_of)) {
        (None, None) => Ok(Kind::Map),
        (Some(kind), None) | (None, Some(kind)) => Ok(kind),
        (Some(target), Some(patch)) if target == patch => Ok(target),
        (Some(target), Some(patch)) => {
            let name = |k: Kind| match k {
                Kind::Map => "a mapping",
                Kind::List => "a list",
                Kind::Scalar => "a scalar",
            };
            Err(format!(
                "wrong node kind: expected {} but the patch has {}",
                name(target),
                name(patch)
            ))
        }
    }
}

fn map_directive(origin: Option<&Map<String, Value>>) -> Result<Option<Directive>, String> {
    let Some(value) = origin.and_then(|o| lookup::get(o, DIRECTIVE)) else {
        return Ok(None);
    };
    parse_directive(value).map(Some)
}

fn parse_directive(value: &Value) -> Result<Directive, String> {
    match value.as_str() {
        Some("merge") => Ok(Directive::Merge),
        Some("replace") => Ok(Directive::Replace),
        Some("delete") => Ok(Directive::Delete),
        _ => Err(format!(
            "unknown patch strategy '{}'",
            scalar_text(Some(value))
        )),
    }
}

/// The patch map without a directive the merge has acted on.
fn without_directive(map: &Map<String, Value>, directive: Option<Directive>) -> Map<String, Value> {
    let mut map = map.clone();
    if directive.is_some() {
        map.remove(DIRECTIVE);
    }
    map
}

fn walk_map(
    dest: Option<Value>,
    origin: Option<&Value>,
    schema: Option<Schema>,
) -> Result<Merged, String> {
    let origin_map = origin.and_then(Value::as_object);
    let dest_missing = matches!(dest, None | Some(Value::Null));
    let directive;
    let result = if dest_missing {
        directive = map_directive(origin_map).ok().flatten();
        if directive == Some(Directive::Delete) {
            return Ok(None);
        }
        match origin_map {
            Some(map) => without_directive(map, directive),
            None if origin.is_none() && dest.is_some() => return Ok(Some(Value::Null)),
            None => return Ok(None),
        }
    } else {
        if matches!(origin, Some(Value::Null)) {
            return Ok(None);
        }
        directive = map_directive(origin_map)?;
        match (directive, origin_map) {
            (Some(Directive::Delete), _) => return Ok(None),
            (Some(Directive::Replace), Some(map)) => without_directive(map, directive),
            _ => match dest {
                Some(Value::Object(map)) => map,
                _ => Map::new(),
            },
        }
    };
    let acted_on = |key: &str| key == DIRECTIVE && directive.is_some();
    let patch_value = |key: &str| {
        origin_map
            .and_then(|m| lookup::get(m, key))
            .filter(|_| !acted_on(key))
    };
    let added: Vec<&String> = origin_map
        .into_iter()
        .flat_map(|m| m.keys())
        .filter(|key| !acted_on(key) && lookup::get(&result, key).is_none())
        .collect();
    let mut kept = Vec::with_capacity(result.len());
    for (key, current) in result {
        let child = schema.and_then(|s| s.field(&key));
        let merged =
            walk(Some(current), patch_value(&key), child).map_err(|err| format!("{key}: {err}"))?;
        kept.push(merged.map(|value| (key, value)));
    }
    let mut merged = Map::with_capacity(kept.len() + added.len());
    for index in merge_order(&kept) {
        if let Some((key, value)) = kept[index].take() {
            merged.insert(key, value);
        }
    }
    for key in added {
        let child = schema.and_then(|s| s.field(key));
        if let Some(value) =
            walk(None, patch_value(key), child).map_err(|err| format!("{key}: {err}"))?
        {
            merged.insert(key.clone(), value);
        }
    }
    Ok(Some(Value::Object(merged)))
}

/// The order a map's fields end up in when each field, in turn, is removed (swapping the last
/// field into its place) and put back at the end if it is kept: the order merged maps have
/// always had, computed on positions instead of by editing the map field by field.
fn merge_order<T>(fields: &[Option<T>]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..fields.len()).collect();
    let mut position: Vec<usize> = (0..fields.len()).collect();
    for (field, value) in fields.iter().enumerate() {
        let at = position[field];
        order.swap_remove(at);
        if let Some(&moved) = order.get(at) {
            position[moved] = at;
        }
        if value.is_some() {
            position[field] = order.len();
            order.push(field);
        }
    }
    order
}

/// A list merged element by element by `keys` (a set of scalars when `keys` is empty).
fn walk_list(
    dest: Option<Value>,
    origin: Option<&Value>,
    keys: &[&str],
    elements: Option<Schema>,
) -> Result<Merged, String> {
    let mut patch: Option<Cow<'_, [Value]>> = origin
        .and_then(Value::as_array)
        .map(|list| Cow::Borrowed(&list[..]));
    let base = match dest {
        None | Some(Value::Null) => match &patch {
            Some(list) => list.to_vec(),
            None => return Ok(None),
        },
        Some(Value::Array(list)) => {
            if matches!(origin, Some(Value::Null)) {
                return Ok(None);
            }
            match patch
                .as_mut()
                .map(take_list_directive)
                .transpose()?
                .flatten()
            {
                Some(Directive::Delete) => return Ok(None),
                Some(Directive::Replace) => patch.as_deref().unwrap_or_default().to_vec(),
                _ => list,
            }
        }
        Some(_) => return Ok(None),
    };
    let patch = patch.unwrap_or_default();
    let merged = if keys.is_empty() {
        merge_scalars(base, &patch, elements)?
    } else {
        Keyed { keys, elements }.merge(base, &patch)?
    };
    Ok(Some(Value::Array(merged)))
}

/// Finds and removes a `{$patch: …}` element of a patch list (copying the list only then).
fn take_list_directive(list: &mut Cow<'_, [Value]>) -> Result<Option<Directive>, String> {
    let found = list
        .iter()
        .find_map(|e| e.as_object().filter(|m| m.contains_key(DIRECTIVE)));
    let Some(element) = found else {
        return Ok(None);
    };
    if element.len() > 1 {
        return Ok(None);
    }
    let value = element[DIRECTIVE].clone();
    let directive = parse_directive(&value)?;
    let text = scalar_text(Some(&value));
    list.to_mut().retain(|e| match e {
        Value::Object(m) if m.is_empty() => false,
        Value::Null => false,
        Value::Object(m) => lookup::get(m, DIRECTIVE).is_none_or(|v| !text_is(v, &text)),
        _ => true,
    });
    Ok(Some(directive))
}

fn merge_scalars(
    base: Vec<Value>,
    patch: &[Value],
    elements: Option<Schema>,
) -> Result<Vec<Value>, String> {
    let mut values: Vec<String> = Vec::new();
    for item in patch.iter().chain(base.iter()) {
        let text = scalar_text(Some(item));
        if !values.contains(&text) {
            values.push(text);
        }
    }
    if values.is_empty() {
        return Ok(base);
    }
    let find = |list: &[Value], text: &str| list.iter().find(|e| text_is(e, text)).cloned();
    let mut items: Vec<Value> = Vec::new();
    let mut base = base;
    for text in &values {
        let merged = walk(find(&base, text), find(patch, text).as_ref(), elements)?;
        let same = |e: &Value| !e.is_object() && !e.is_array() && text_is(e, text);
        match merged {
            None | Some(Value::Null) => base.retain(|e| !same(e)),
            Some(value) => match items.iter().position(same) {
                Some(i) => items[i] = value,
                None => items.push(value),
            },
        }
    }
    for element in base {
        let text = scalar_text(Some(&element));
        let same = |e: &Value| !e.is_object() && !e.is_array() && text_is(e, &text);
        match items.iter().position(same) {
            Some(i) => items[i] = element,
            None => items.push(element),
        }
    }
    Ok(items)
}

/// Merging a list of objects by merge keys.
struct Keyed<'a> {
    keys: &'a [&'a str],
    elements: Option<Schema>,
}

impl Keyed<'_> {
    fn merge(&self, mut base: Vec<Value>, patch: &[Value]) -> Result<Vec<Value>, String> {
        let mut values_list: Vec<Vec<String>> = Vec::new();
        for element in patch.iter().chain(base.iter()) {
            let values = self.key_values(element);
            if !values_list.contains(&values) {
                values_list.push(values);
            }
        }
        if values_list.is_empty() {
            return Ok(base);
        }
        if self.keys.len() > 1 {
            unify(&mut values_list);
        }
        let mut items: Vec<Value> = Vec::new();
        let mut last_keys: Vec<&str> = self.keys.to_vec();
        for values in &values_list {
            let (keys, values) = valid_keys(&values_list, values, self.keys);
            self.merge_element(&mut base, &mut items, patch, &keys, &values)?;
            last_keys = keys;
        }
        self.append_base(&mut items, base, &last_keys);
        Ok(items)
    }

    /// Merges the target's and the patch's elements with these key values into `items` (or
    /// deletes them from `base`). Merging into a target element edits it in `base` too.
    fn merge_element(
        &self,
        base: &mut Vec<Value>,
        items: &mut Vec<Value>,
        patch: &[Value],
        keys: &[&str],
        values: &[String],
    ) -> Result<(), String> {
        let (source_keys, source_values) =
            valid_keys(std::slice::from_ref(&values.to_vec()), values, keys);
        let found = |e: &&Value| matches_fields(e, &source_keys, &source_values);
        let dest_index = base.iter().position(|e| found(&e));
        let patch_element = patch.iter().find(found);
        let dest_element = dest_index.map(|i| base[i].clone());
        let in_place =
            dest_element.as_ref().is_some_and(Value::is_object) && merges_in_place(patch_element);
        let merged = walk(dest_element, patch_element, self.elements)?;
        let Some(mut merged) = merged.filter(|v| !is_deleted(v)) else {
            set_element(base, None, keys, values);
            return Ok(());
        };
        if let Value::Object(map) = &mut merged {
            for (key, value) in keys.iter().zip(values) {
                if !map.contains_key(*key) && !value.is_empty() {
                    let typed = resolve(value, Rules::Core).into_value(value);
                    map.insert(
                        key.to_string(),
                        typed.unwrap_or(Value::String(value.clone())),
                    );
                }
            }
        }
        if let (true, Some(i)) = (in_place, dest_index) {
            base[i] = merged.clone();
        }
        set_element(items, Some(merged), keys, values);
        Ok(())
    }

    /// The merge-key values of an element, `""` where a key is missing or empty.
    fn key_values(&self, element: &Value) -> Vec<String> {
        self.keys
            .iter()
            .map(|key| match lookup::field(element, key) {
                Some(v) if !is_nil_or_empty(v) => scalar_text(Some(v)),
                _ => String::new(),
            })
            .collect()
    }

    /// Puts the target's own (merged) elements back, in the target's order.
    fn append_base(&self, items: &mut Vec<Value>, base: Vec<Value>, keys: &[&str]) {
        for element in base {
            let mut values = Vec::new();
            for key in keys {
                match lookup::field(&element, key) {
                    Some(v) => values.push(scalar_text(Some(v))),
                    None => items.push(element.clone()),
                }
            }
            if keys.len() > 1 {
                set_element(items, None, keys, &values);
            }
            set_element(items, Some(element), keys, &values);
        }
    }
}

/// A merged element that removes the element: null or an empty map.
fn is_deleted(value: &Value) -> bool {
    value.is_null() || value.as_object().is_some_and(Map::is_empty)
}

/// Whether merging into an existing element edits it (rather than swapping in the patch's).
fn merges_in_place(patch_element: Option<&Value>) -> bool {
    match patch_element {
        None => true,
        Some(Value::Null) => false,
        Some(Value::Object(map)) => !matches!(
            lookup::get(map, DIRECTIVE).and_then(Value::as_str),
            Some("replace" | "delete")
        ),
        Some(_) => true,
    }
}

fn is_nil_or_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// Merges key-value lists that agree on a key and do not contradict each other on the others.
fn unify(values_list: &mut [Vec<String>]) {
    for i in 0..values_list.len() {
        for j in 0..values_list.len() {
            if let Some(merged) = agree(&values_list[i], &values_list[j]) {
                values_list[i] = merged.clone();
                values_list[j] = merged;
            }
        }
    }
}

fn agree(a: &[String], b: &[String]) -> Option<Vec<String>> {
    if a.len() != b.len() {
        return None;
    }
    let mut common = false;
    let mut merged = Vec::with_capacity(a.len());
    for (x, y) in a.iter().zip(b) {
        if x == y {
            common = true;
            merged.push(x.clone());
        } else if !x.is_empty() && !y.is_empty() {
            return None;
        } else {
            merged.push(if x.is_empty() { y.clone() } else { x.clone() });
        }
    }
    common.then_some(merged)
}

/// The keys (and their values) that are set in at least one element; all keys if none is.
fn valid_keys<'k>(
    values_list: &[Vec<String>],
    values: &[String],
    keys: &[&'k str],
) -> (Vec<&'k str>, Vec<String>) {
    let used: Vec<bool> = (0..keys.len())
        .map(|i| {
            values_list
                .iter()
                .any(|v| v.get(i).is_some_and(|s| !s.is_empty()))
        })
        .collect();
    if !used.contains(&true) {
        return (keys.to_vec(), values.to_vec());
    }
    let valid_keys = keys
        .iter()
        .zip(&used)
        .filter(|(_, u)| **u)
        .map(|(k, _)| *k)
        .collect();
    let valid_values = values
        .iter()
        .zip(&used)
        .filter(|(v, u)| !v.is_empty() || **u)
        .map(|(v, _)| v.clone())
        .collect();
    (valid_keys, valid_values)
}

/// Whether an element has every key with exactly that value.
fn matches_fields(element: &Value, keys: &[&str], values: &[String]) -> bool {
    let Some(map) = element.as_object() else {
        return false;
    };
    keys.iter()
        .zip(values)
        .all(|(key, value)| lookup::get(map, key).is_some_and(|v| field_text_is(v, value)))
}

/// Whether the text a YAML node carries is `text`: the scalar as written, nothing for
/// collections.
fn field_text_is(value: &Value, text: &str) -> bool {
    match value {
        Value::Object(_) | Value::Array(_) => text.is_empty(),
        Value::Null => text == "null",
        v => text_is(v, text),
    }
}

/// Whether a value's scalar text is `text` (without copying a string to compare it).
fn text_is(value: &Value, text: &str) -> bool {
    match value {
        Value::String(s) => s == text,
        other => scalar_text(Some(other)) == text,
    }
}

/// Replaces every element matching `keys`/`values` with `element` (appending it when none
/// matches), or removes the matches when `element` is `None`. Empty elements are dropped.
fn set_element(list: &mut Vec<Value>, element: Option<Value>, keys: &[&str], values: &[String]) {
    let mapping_setter = keys.first().is_some_and(|k| !k.is_empty())
        && values.first().is_some_and(|v| !v.is_empty());
    let mut kept = Vec::with_capacity(list.len() + 1);
    // The places of the matching items, which the element takes.
    let mut places = Vec::new();
    for item in list.drain(..) {
        if item.is_null() || item.as_object().is_some_and(Map::is_empty) {
            continue;
        }
        if !item.is_object() && mapping_setter {
            kept.push(item);
            continue;
        }
        // Keys beyond the given values are not checked (kustomize reuses the last match).
        let found = !values.is_empty()
            && keys.iter().zip(values).all(|(key, value)| {
                lookup::field(&item, key)
                    .is_some_and(|v| value.is_empty() || field_text_is(v, value))
            });
        if !found {
            if !values.is_empty() {
                kept.push(item);
            }
            continue;
        }
        if element.is_some() {
            places.push(kept.len());
            kept.push(Value::Null);
        }
    }
    *list = kept;
    let Some(element) = element else {
        return;
    };
    match places.split_last() {
        // The element is copied only when more than one item matched.
        Some((&last, others)) => {
            for &place in others {
                list[place] = element.clone();
            }
            list[last] = element;
        }
        None if !element.is_null() => list.push(element),
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn deployment(containers: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"template": {"spec": {"containers": containers}}}})
    }

    fn merged(target: Value, patch: Value) -> Value {
        merge(target, &patch).expect("merges").expect("not deleted")
    }

    #[test]
    fn merges_containers_by_name_and_replaces_other_lists() {
        let target = deployment(json!([
            {"name": "app", "image": "a", "args": ["x"], "env": [{"name": "A", "value": "1"}]},
            {"name": "side", "image": "s"}
        ]));
        let patch = deployment(
            json!([{"name": "app", "args": ["y"], "env": [{"name": "B", "value": "2"}]}]),
        );
        let result = merged(target, patch);
        assert_eq!(
            result["spec"]["template"]["spec"]["containers"],
            json!([
                {"name": "app", "image": "a", "args": ["y"], "env": [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}]},
                {"name": "side", "image": "s"}
            ])
        );
    }

    #[test]
    fn null_deletes_and_directives_apply() {
        let target = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}});
        let result = merged(target.clone(), json!({"data": {"a": null}}));
        assert_eq!(result["data"], json!({"b": "2"}));
        let result = merged(
            target.clone(),
            json!({"data": {"$patch": "replace", "c": "3"}}),
        );
        assert_eq!(result["data"], json!({"c": "3"}));
        assert_eq!(
            merge(target, &json!({"$patch": "delete"})).expect("merges"),
            None
        );
    }

    #[test]
    fn deletes_list_elements_by_key() {
        let target = deployment(json!([{"name": "app"}, {"name": "side"}]));
        let patch = deployment(json!([{"name": "side", "$patch": "delete"}]));
        let result = merged(target, patch);
        assert_eq!(
            result["spec"]["template"]["spec"]["containers"],
            json!([{"name": "app"}])
        );
    }

    #[test]
    fn merged_fields_are_ordered_as_editing_the_map_field_by_field_orders_them() {
        let keys = ["a", "b", "c", "d", "e", "f"];
        for dropped in 0..1 << keys.len() {
            let kept: Vec<Option<()>> = (0..keys.len())
                .map(|i| (dropped & (1 << i) == 0).then_some(()))
                .collect();
            let mut map: Map<String, Value> =
                keys.iter().map(|k| (k.to_string(), Value::Null)).collect();
            for (key, kept) in keys.iter().zip(&kept) {
                let value = map.remove(*key).expect("present");
                if kept.is_some() {
                    map.insert(key.to_string(), value);
                }
            }
            let order: Vec<&str> = merge_order(&kept).into_iter().map(|i| keys[i]).collect();
            assert_eq!(order, map.keys().map(String::as_str).collect::<Vec<_>>());
        }
    }

    #[test]
    fn unknown_kinds_replace_lists() {
        let target =
            json!({"apiVersion": "x.io/v1", "kind": "W", "spec": {"items": [{"name": "a"}]}});
        let result = merged(target, json!({"spec": {"items": [{"name": "b"}]}}));
        assert_eq!(result["spec"]["items"], json!([{"name": "b"}]));
    }
}
