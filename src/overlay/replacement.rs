//! The `replacements:` transformer: copies a value from one object's field into fields of
//! other objects, with kustomize's semantics — exact id selection over current and earlier
//! names, label and annotation selectors, list elements picked by `[field=regex]`, delimiter
//! splitting and joining, creation of missing fields, and scalar targets keeping their type.

use serde_json::{Map, Value};

use super::kustomization::{FieldOptions, IdSelector, Replacement, Target, TargetSelector};
use super::pattern;
use super::resid::ResId;
use super::resmap::{LabelSelector, ResMap, string_map};
use super::resource::{Resource, scalar_text};
use super::yaml::scalar::{Schema, resolve};

const DEFAULT_FIELD_PATH: &str = "metadata.name";

/// Applies each replacement in order; `label` names a replacement in messages.
pub fn apply(resources: &mut ResMap, replacements: &[(String, Replacement)]) -> Result<(), String> {
    for (label, replacement) in replacements {
        apply_one(resources, replacement).map_err(|err| format!("{label}: {err}"))?;
    }
    Ok(())
}

fn apply_one(resources: &mut ResMap, replacement: &Replacement) -> Result<(), String> {
    let (Some(source), Some(targets)) = (&replacement.source, &replacement.targets) else {
        return Err("replacements must specify a source and at least one target".into());
    };
    let from = select_source(resources, &source.id)?;
    let field_path = if source.field_path.is_empty() {
        DEFAULT_FIELD_PATH
    } else {
        &source.field_path
    };
    let found = lookup(&resources[from].value, &split_path(field_path))
        .map_err(|err| format!("error looking up replacement source: {err}"))?;
    let value = match found {
        Some(value) if !is_nil_or_empty(value) => value.clone(),
        _ => {
            return Err(format!(
                "fieldPath `{field_path}` is missing for replacement source {}",
                resources[from].cur_id()
            ));
        }
    };
    let value = refine(&source.options, value)?;
    for target in targets {
        apply_target(resources, &value, target)?;
    }
    Ok(())
}

/// The one object `selector` picks by any of its identities.
fn select_source(resources: &ResMap, selector: &IdSelector) -> Result<usize, String> {
    let mut matches = resources
        .iter()
        .enumerate()
        .filter(|(_, r)| r.all_ids().iter().any(|id| selects(selector, id)))
        .map(|(i, _)| i);
    let Some(first) = matches.next() else {
        return Err(format!("nothing selected by {}", describe(selector)));
    };
    if matches.next().is_some() {
        return Err(format!(
            "multiple matches for selector {}",
            describe(selector)
        ));
    }
    Ok(first)
}

fn selects(selector: &IdSelector, id: &ResId) -> bool {
    let wanted = ResId {
        gvk: selector.gvk.clone(),
        name: selector.name.clone(),
        namespace: selector.namespace.clone(),
    };
    (selector.name.is_empty() || selector.name == id.name)
        && (selector.namespace.is_empty() || wanted.same_namespace(id))
        && id.gvk.is_selected_by(&selector.gvk)
}

fn describe(selector: &IdSelector) -> String {
    let parts = [
        ("group", &*selector.gvk.group),
        ("version", &*selector.gvk.version),
        ("kind", &*selector.gvk.kind),
        ("name", selector.name.as_str()),
        ("namespace", selector.namespace.as_str()),
    ];
    let named: Vec<String> = parts
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k} {v:?}"))
        .collect();
    if named.is_empty() {
        "an empty selector".to_string()
    } else {
        format!("{{{}}}", named.join(", "))
    }
}

/// The source value narrowed to one part of a delimited string.
fn refine(options: &FieldOptions, value: Value) -> Result<Value, String> {
    if options.delimiter.is_empty() {
        return Ok(value);
    }
    if !is_scalar(&value) {
        return Err("delimiter option can only be used with scalar nodes".into());
    }
    let text = scalar_text(Some(&value));
    let parts: Vec<&str> = text.split(options.delimiter.as_str()).collect();
    let part = usize::try_from(options.index)
        .ok()
        .and_then(|i| parts.get(i))
        .ok_or_else(|| {
            format!(
                "options.index {} is out of bounds for value {text}",
                options.index
            )
        })?;
    Ok(retyped(&value, part))
}

/// A scalar of the same kind as `like` with the text `text`.
fn retyped(like: &Value, text: &str) -> Value {
    match like {
        Value::String(_) => Value::String(text.to_string()),
        _ => resolved(text),
    }
}

/// How an untagged plain scalar with this text reads back.
fn resolved(text: &str) -> Value {
    resolve(text, Schema::Core)
        .into_value(text)
        .unwrap_or_else(|| Value::String(text.to_string()))
}

fn is_scalar(value: &Value) -> bool {
    !matches!(value, Value::Object(_) | Value::Array(_))
}

fn is_nil_or_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(map) => map.is_empty(),
        Value::Array(items) => items.is_empty(),
        _ => false,
    }
}

fn apply_target(resources: &mut ResMap, value: &Value, target: &Target) -> Result<(), String> {
    let Some(select) = &target.select else {
        return Err("target must specify resources to select".into());
    };
    let default_paths = [DEFAULT_FIELD_PATH.to_string()];
    let field_paths = if target.field_paths.is_empty() {
        &default_paths[..]
    } else {
        &target.field_paths[..]
    };
    for resource in resources.iter_mut() {
        if !selected_by_labels(resource, select, &target.reject)? {
            continue;
        }
        let ids = resource.all_ids();
        let rejected = target
            .reject
            .iter()
            .filter(|r| !r.id.is_empty())
            .any(|r| ids.iter().any(|id| selects(&r.id, id)));
        if rejected || !ids.iter().any(|id| selects(&select.id, id)) {
            continue;
        }
        for path in field_paths {
            copy_to_target(resource, value, path, &target.options)?;
        }
    }
    Ok(())
}

/// Whether the labels and annotations of `resource` pass `select` and no `reject` with label
/// or annotation selectors picks it.
fn selected_by_labels(
    resource: &Resource,
    select: &TargetSelector,
    rejects: &[TargetSelector],
) -> Result<bool, String> {
    if !matches_labels(resource, select)? {
        return Ok(false);
    }
    for reject in rejects {
        if reject.label_selector.is_empty() && reject.annotation_selector.is_empty() {
            continue;
        }
        if matches_labels(resource, reject)? {
            return Ok(false);
        }
    }
    Ok(true)
}

fn matches_labels(resource: &Resource, selector: &TargetSelector) -> Result<bool, String> {
    let annotations = LabelSelector::parse(&selector.annotation_selector)?;
    let labels = LabelSelector::parse(&selector.label_selector)?;
    Ok(annotations.matches(&string_map(resource.annotations()))
        && labels.matches(&string_map(resource.labels())))
}

fn copy_to_target(
    resource: &mut Resource,
    value: &Value,
    path: &str,
    options: &FieldOptions,
) -> Result<(), String> {
    let create = options.create.then(|| Kind::of(value));
    let failure = || {
        if create.is_some() {
            format!("unable to find or create field {path:?} in replacement target")
        } else {
            format!("unable to find field {path:?} in replacement target")
        }
    };
    let parts = split_path(path);
    let id = resource.cur_id();
    let mut count = 0;
    let mut refused = None;
    let matcher = Matcher { create };
    let walked = matcher.walk(&mut resource.value, &parts, false, &mut |node, created| {
        count += 1;
        set_field(options, node, created, value).map_err(|err| {
            refused = Some(err);
            String::new()
        })
    });
    if let Some(err) = refused {
        return Err(format!("cannot set field {path:?} of {id}: {err}"));
    }
    walked.map_err(|err| format!("{}: {err}", failure()))?;
    if count == 0 {
        return Err(format!("{} {id}", failure()));
    }
    Ok(())
}

/// Writes `value` into one target field. A scalar target keeps its type (a number field gets
/// a number); a field the replacement created reads its value as a plain scalar would read.
fn set_field(
    options: &FieldOptions,
    target: &mut Value,
    created: bool,
    value: &Value,
) -> Result<(), String> {
    let mut value = value.clone();
    if !options.delimiter.is_empty() {
        if !is_scalar(target) {
            return Err("delimiter option can only be used with scalar nodes".into());
        }
        let current = scalar_text(Some(target));
        let mut parts: Vec<&str> = current.split(options.delimiter.as_str()).collect();
        let text = scalar_text(Some(&value));
        match usize::try_from(options.index) {
            Err(_) => parts.insert(0, &text),
            Ok(i) if i >= parts.len() => parts.push(&text),
            Ok(i) => parts[i] = &text,
        }
        let joined = parts.join(&options.delimiter);
        value = if is_scalar(&value) {
            retyped(&value, &joined)
        } else {
            Value::String(joined)
        };
    }
    if !is_scalar(target) {
        *target = value;
        return Ok(());
    }
    let text = if is_scalar(&value) {
        scalar_text(Some(&value))
    } else {
        String::new()
    };
    *target = if created {
        resolved(&text)
    } else {
        keep_type(target, &text)?
    };
    Ok(())
}

/// `text` as a value of the type `target` holds.
fn keep_type(target: &Value, text: &str) -> Result<Value, String> {
    let wanted = match target {
        Value::String(_) => return Ok(Value::String(text.to_string())),
        Value::Number(n) if n.is_f64() => "a float",
        Value::Number(_) => "an integer",
        Value::Bool(_) => "a boolean",
        _ => "null",
    };
    let new = resolved(text);
    let fits = match (target, &new) {
        (Value::Number(n), Value::Number(m)) => n.is_f64() || !m.is_f64(),
        (Value::Bool(_), Value::Bool(_)) | (Value::Null, Value::Null) => true,
        _ => false,
    };
    if fits {
        Ok(new)
    } else {
        Err(format!("the field holds {wanted}, which {text:?} is not"))
    }
}

/// Walks a target field path, creating what is missing when `create` says which kind of
/// node the last field becomes.
struct Matcher {
    create: Option<Kind>,
}

type Found<'f> = dyn FnMut(&mut Value, bool) -> Result<(), String> + 'f;

impl Matcher {
    fn walk(
        &self,
        node: &mut Value,
        parts: &[String],
        created: bool,
        found: &mut Found<'_>,
    ) -> Result<(), String> {
        let Some(part) = parts.first() else {
            return found(node, created);
        };
        let rest = &parts[1..];
        if let Ok(index) = part.parse::<usize>() {
            return self.index(node, index, rest, found);
        }
        if let Some(selector) = list_selector(part) {
            let (field, pattern) = selector?;
            return self.elements(node, field, pattern, rest, found);
        }
        if part == "*" {
            for item in items_mut(node, false)?.into_iter().flatten() {
                self.walk(item, rest, false, found)?;
            }
            return Ok(());
        }
        self.field(node, part, rest, found)
    }

    /// The kind of node to create for a part followed by `next`.
    fn kind_before(&self, next: Option<&String>, create: Kind) -> Kind {
        match next {
            None => create,
            Some(next) if list_selector(next).is_some() || next.parse::<usize>().is_ok() => {
                Kind::Sequence
            }
            Some(_) => Kind::Mapping,
        }
    }

    fn field(
        &self,
        node: &mut Value,
        name: &str,
        rest: &[String],
        found: &mut Found<'_>,
    ) -> Result<(), String> {
        if node.is_null() {
            if self.create.is_none() {
                return Ok(());
            }
            *node = Value::Object(Map::new());
        }
        let Value::Object(map) = node else {
            return Err(wrong_kind("MappingNode", node));
        };
        if let Some(child) = map.get_mut(name) {
            return self.walk(child, rest, false, found);
        }
        let Some(create) = self.create else {
            return Ok(());
        };
        let kind = self.kind_before(rest.first(), create);
        let child = map.entry(name.to_string()).or_insert(kind.empty());
        self.walk(child, rest, true, found)
    }

    fn index(
        &self,
        node: &mut Value,
        index: usize,
        rest: &[String],
        found: &mut Found<'_>,
    ) -> Result<(), String> {
        let Some(items) = items_mut(node, self.create.is_some())? else {
            return Err(format!("index {index} specified but only 0 elements found"));
        };
        let mut created = false;
        if let (true, Some(create)) = (items.len() == index, self.create) {
            items.push(self.kind_before(rest.first(), create).empty());
            created = true;
        }
        let count = items.len();
        let Some(item) = items.get_mut(index) else {
            return Err(format!(
                "index {index} specified but only {count} elements found"
            ));
        };
        self.walk(item, rest, created, found)
    }

    /// List elements whose `field` (or, for `[=pattern]`, whose own value) matches `pattern`.
    fn elements(
        &self,
        node: &mut Value,
        field: &str,
        pattern: &str,
        rest: &[String],
        found: &mut Found<'_>,
    ) -> Result<(), String> {
        let regex = pattern::compiled(pattern).map_err(|err| err.to_string())?;
        let mut matched = false;
        for item in items_mut(node, false)?.into_iter().flatten() {
            if field.is_empty() {
                if is_scalar(item) && regex.is_match(&scalar_text(Some(item))) {
                    matched = true;
                    found(item, false)?;
                }
                continue;
            }
            let hit = item.get(field).is_some_and(|v| {
                is_scalar(v) && !v.is_null() && regex.is_match(&scalar_text(Some(v)))
            });
            if hit {
                matched = true;
                self.walk(item, rest, false, found)?;
            }
        }
        if matched || self.create.is_none() {
            return Ok(());
        }
        let element = if field.is_empty() {
            resolved(pattern)
        } else {
            let mut map = Map::new();
            map.insert(field.to_string(), resolved(pattern));
            Value::Object(map)
        };
        let items = items_mut(node, true)?.expect("created");
        items.push(element);
        let created = items.last_mut().expect("just pushed");
        if field.is_empty() {
            return found(created, false);
        }
        self.walk(created, rest, false, found)
    }
}

/// The elements of a list; null counts as an empty list, made a real one when `create`.
fn items_mut(node: &mut Value, create: bool) -> Result<Option<&mut Vec<Value>>, String> {
    if node.is_null() {
        if !create {
            return Ok(None);
        }
        *node = Value::Array(Vec::new());
    }
    match node {
        Value::Array(items) => Ok(Some(items)),
        other => Err(wrong_kind("SequenceNode", other)),
    }
}

/// Splits a field path at dots: `\.` escapes a dot, a leading dot is dropped, and a
/// bracketed part keeps its dots (`[name=a.b]` stays a list selector, `[a.b]` becomes the
/// key `a.b`).
pub fn split_path(path: &str) -> Vec<String> {
    let mut pieces: Vec<&str> = path.split('.').collect();
    if pieces.len() > 1 && pieces[0].is_empty() {
        pieces.remove(0);
    }
    let mut escaped: Vec<String> = Vec::new();
    for piece in pieces {
        match escaped.last_mut() {
            Some(last) if last.ends_with('\\') => {
                last.pop();
                last.push('.');
                last.push_str(piece);
            }
            _ => escaped.push(piece.to_string()),
        }
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i < escaped.len() {
        let part = &escaped[i];
        if part.starts_with('[') && !part.ends_with(']') {
            let mut joined = vec![part.clone()];
            while i + 1 < escaped.len() {
                i += 1;
                joined.push(escaped[i].clone());
                if escaped[i].ends_with(']') {
                    break;
                }
            }
            let joined = joined.join(".");
            if joined.contains('=') {
                out.push(joined);
            } else {
                out.push(joined.trim_matches(|c| c == '[' || c == ']').to_string());
            }
        } else {
            out.push(part.clone());
        }
        i += 1;
    }
    out
}

/// `[field=value]` → (`field`, `value`).
fn list_selector(part: &str) -> Option<Result<(&str, &str), String>> {
    let inner = part.strip_prefix('[')?.strip_suffix(']')?;
    Some(inner.split_once('=').ok_or_else(|| {
        "list path element must contain fieldName=fieldValue for element to match".to_string()
    }))
}

/// Looks a source field up: map keys, list indexes (`-` is the last element) and list
/// elements by exact `[field=value]`.
pub(super) fn lookup<'v>(value: &'v Value, parts: &[String]) -> Result<Option<&'v Value>, String> {
    let mut node = value;
    for part in parts.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
        let next = if let Ok(index) = part.parse::<i64>() {
            let index = usize::try_from(index)
                .map_err(|_| format!("array index {index} cannot be negative"))?;
            elements(node)?.get(index)
        } else if part == "-" {
            let items = elements(node)?;
            Some(items.last().ok_or("no last element in an empty list")?)
        } else if part == "*" {
            return Err("wildcard is not supported in PathGetter".into());
        } else if let Some(selector) = list_selector(part) {
            let (field, wanted) = selector?;
            elements(node)?.iter().find(|item| {
                if field.is_empty() {
                    is_scalar(item) && scalar_text(Some(item)) == wanted
                } else {
                    item.get(field)
                        .is_some_and(|v| is_scalar(v) && scalar_text(Some(v)) == wanted)
                }
            })
        } else {
            match node {
                Value::Null => None,
                Value::Object(map) => map.get(part),
                other => return Err(wrong_kind("MappingNode", other)),
            }
        };
        match next {
            Some(found) => node = found,
            None => return Ok(None),
        }
    }
    Ok(Some(node))
}

fn elements(node: &Value) -> Result<&[Value], String> {
    match node {
        Value::Null => Ok(&[]),
        Value::Array(items) => Ok(items),
        other => Err(wrong_kind("SequenceNode", other)),
    }
}

fn wrong_kind(expected: &str, actual: &Value) -> String {
    let actual = match actual {
        Value::Object(_) => "MappingNode",
        Value::Array(_) => "SequenceNode",
        _ => "ScalarNode",
    };
    format!("wrong node kind: expected {expected} but got {actual}")
}

/// The kind of node a created field starts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Scalar,
    Mapping,
    Sequence,
}

impl Kind {
    fn of(value: &Value) -> Kind {
        match value {
            Value::Object(_) => Kind::Mapping,
            Value::Array(_) => Kind::Sequence,
            _ => Kind::Scalar,
        }
    }

    fn empty(self) -> Value {
        match self {
            Kind::Scalar => Value::Null,
            Kind::Mapping => Value::Object(Map::new()),
            Kind::Sequence => Value::Array(Vec::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn splits_paths_keeping_bracketed_dots() {
        assert_eq!(
            split_path("spec.containers.[name=a.b].image"),
            ["spec", "containers", "[name=a.b]", "image"]
        );
        assert_eq!(
            split_path("metadata.annotations.[example.com/x]"),
            ["metadata", "annotations", "example.com/x"]
        );
        assert_eq!(split_path(r"a\.b.c"), ["a.b", "c"]);
        assert_eq!(split_path(".a.b"), ["a", "b"]);
    }

    #[test]
    fn source_lookup_takes_indexes_the_last_element_and_exact_matches() {
        let v = json!({"list": [{"name": "web", "port": 1}, {"name": "webhook", "port": 2}]});
        let at = |path: &str| lookup(&v, &split_path(path)).expect("valid").cloned();
        assert_eq!(at("list.0.port"), Some(json!(1)));
        assert_eq!(at("list.-.port"), Some(json!(2)));
        assert_eq!(at("list.[name=webhook].port"), Some(json!(2)));
        assert_eq!(at("list.[name=we].port"), None);
        assert!(lookup(&v, &split_path("list.x")).is_err());
        assert!(lookup(&v, &split_path("list.*")).is_err());
    }

    #[test]
    fn scalar_targets_keep_their_type() {
        assert_eq!(keep_type(&json!("a"), "5"), Ok(json!("5")));
        assert_eq!(keep_type(&json!(1), "5"), Ok(json!(5)));
        assert_eq!(keep_type(&json!(true), "false"), Ok(json!(false)));
        assert!(keep_type(&json!(1), "1.5").is_err());
        assert!(keep_type(&json!(1), "many").is_err());
    }

    #[test]
    fn target_list_selectors_are_unanchored_patterns() {
        let mut v = json!({"env": [{"name": "A", "value": "x"}, {"name": "AB", "value": "y"}]});
        let matcher = Matcher { create: None };
        let mut seen = 0;
        matcher
            .walk(
                &mut v,
                &split_path("env.[name=A].value"),
                false,
                &mut |node, _| {
                    seen += 1;
                    *node = json!("z");
                    Ok(())
                },
            )
            .expect("walks");
        assert_eq!(seen, 2);
        assert_eq!(v["env"][1]["value"], "z");
    }
}
