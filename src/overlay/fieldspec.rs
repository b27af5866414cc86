//! Field specs: "this path in objects of this kind", the way kustomize's transformers name the
//! fields they touch. A path walks through every element of a list it meets, `name[]` marks a
//! list explicitly, `\/` escapes a slash inside a key, and `create` makes missing fields.

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::lookup::{self, field};
use super::resid::{Gvk, split_api_version};

/// A path in objects selected by group/version/kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSpec {
    pub gvk: Gvk,
    pub path: Cow<'static, str>,
    pub create: bool,
}

impl FieldSpec {
    /// A spec of these parts, copied.
    pub fn new(group: &str, version: &str, kind: &str, path: &str, create: bool) -> FieldSpec {
        FieldSpec {
            gvk: Gvk::new_parts(group, version, kind),
            path: Cow::Owned(path.to_string()),
            create,
        }
    }

    /// A spec from static configuration, held without copies (the default configuration
    /// has hundreds, made in every process).
    pub fn fixed(
        group: &'static str,
        version: &'static str,
        kind: &'static str,
        path: &'static str,
        create: bool,
    ) -> FieldSpec {
        FieldSpec {
            gvk: Gvk::fixed(group, version, kind),
            path: Cow::Borrowed(path),
            create,
        }
    }

    /// Whether `object`'s current apiVersion and kind match this spec.
    pub fn matches(&self, object: &Value) -> bool {
        let gvk = &self.gvk;
        if gvk.group.is_empty() && gvk.version.is_empty() && gvk.kind.is_empty() {
            return true;
        }
        self.selects(&ObjectKind::of(object))
    }

    /// Whether an object of this apiVersion and kind is selected by the spec.
    pub fn selects(&self, object: &ObjectKind) -> bool {
        let selected = |wanted: &str, actual: &str| wanted.is_empty() || wanted == actual;
        selected(&self.gvk.kind, &object.kind)
            && selected(&self.gvk.group, &object.group)
            && selected(&self.gvk.version, &object.version)
    }

    /// Whether applying the spec may change the apiVersion or kind it is selected by: only
    /// a path that starts at one of those two fields can.
    pub fn may_change_kind(&self) -> bool {
        let first = first_field(&self.path);
        let first = first.strip_suffix("[]").unwrap_or(&first);
        first == "apiVersion" || first == "kind"
    }
}

/// An object's group, version and kind as field specs select by, read once to test many
/// specs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectKind {
    group: String,
    version: String,
    kind: String,
}

impl ObjectKind {
    /// What `object`'s apiVersion and kind are now (empty where missing or not text).
    pub fn of(object: &Value) -> ObjectKind {
        let text = |key: &str| field(object, key).and_then(Value::as_str).unwrap_or("");
        let (group, version) = split_api_version(text("apiVersion"));
        ObjectKind {
            group: group.to_string(),
            version: version.to_string(),
            kind: text("kind").to_string(),
        }
    }
}

/// What to create when a field on the path is missing (and the spec allows creating).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Create {
    /// Never create.
    Nothing,
    /// Create the last field as an empty mapping (labels, annotations).
    Mapping,
    /// Create the last field as an empty scalar (names, namespaces, replicas).
    Scalar,
}

/// Calls `set` on every field `spec` names in `object` (when the object's kind matches).
pub fn apply(
    object: &mut Value,
    spec: &FieldSpec,
    create: Create,
    set: &mut dyn FnMut(&mut Value) -> Result<(), String>,
) -> Result<(), String> {
    if !spec.matches(object) {
        return Ok(());
    }
    apply_selected(object, spec, create, set)
}

/// Calls `set` on every field each of `specs` names in `object`, in order, for the specs
/// that select the object's kind. The kind is read once, and again only after a spec whose
/// path could have changed it.
pub fn apply_all<'s>(
    object: &mut Value,
    specs: impl IntoIterator<Item = &'s FieldSpec>,
    create: Create,
    set: &mut dyn FnMut(&mut Value) -> Result<(), String>,
) -> Result<(), String> {
    let mut kind = ObjectKind::of(object);
    for spec in specs {
        if spec.selects(&kind) {
            apply_selected(object, spec, create, set)?;
            if spec.may_change_kind() {
                kind = ObjectKind::of(object);
            }
        }
    }
    Ok(())
}

/// Calls `set` on every field `spec` names in `object`, whatever the object's kind: for
/// callers that have checked the kind already (with [`FieldSpec::selects`]).
pub fn apply_selected(
    object: &mut Value,
    spec: &FieldSpec,
    create: Create,
    set: &mut dyn FnMut(&mut Value) -> Result<(), String>,
) -> Result<(), String> {
    let walker = Walker {
        create: if spec.create { create } else { Create::Nothing },
    };
    walker
        .walk(object, Some(without_root(&spec.path)), set)
        .map_err(|err| format!("considering field '{}': {err}", spec.path))
}

/// The path without the leading `/` that is ignored (a lone `/` stays).
fn without_root(path: &str) -> &str {
    if path.len() > 1 {
        path.strip_prefix('/').unwrap_or(path)
    } else {
        path
    }
}

/// The first field of a path (a leading `/` ignored).
fn first_field(path: &str) -> Cow<'_, str> {
    next_field(without_root(path)).0
}

/// The first field of `path` and the path after it, if any. A `/` right after a `\` is part
/// of the field (without the `\`).
fn next_field(path: &str) -> (Cow<'_, str>, Option<&str>) {
    let bytes = path.as_bytes();
    let mut escaped = false;
    for (at, &byte) in bytes.iter().enumerate() {
        if byte != b'/' {
            continue;
        }
        if at > 0 && bytes[at - 1] == b'\\' {
            escaped = true;
            continue;
        }
        return (unescape(&path[..at], escaped), Some(&path[at + 1..]));
    }
    (unescape(path, escaped), None)
}

fn unescape(field: &str, escaped: bool) -> Cow<'_, str> {
    if escaped {
        Cow::Owned(field.replace("\\/", "/"))
    } else {
        Cow::Borrowed(field)
    }
}

/// Walks a path, splitting off one field at a time: no list of fields is built per use.
struct Walker {
    create: Create,
}

impl Walker {
    /// Walks `value` along `path` (`None` once every field is consumed).
    fn walk(
        &self,
        value: &mut Value,
        path: Option<&str>,
        set: &mut dyn FnMut(&mut Value) -> Result<(), String>,
    ) -> Result<(), String> {
        let Some(path) = path else {
            return set(value);
        };
        match value {
            Value::Null => Ok(()),
            Value::Array(items) => {
                for item in items {
                    self.walk(item, Some(path), set)?;
                }
                Ok(())
            }
            Value::Object(map) => self.walk_map(map, path, set),
            _ => Err("expected sequence or mapping node".to_string()),
        }
    }

    fn walk_map(
        &self,
        map: &mut Map<String, Value>,
        path: &str,
        set: &mut dyn FnMut(&mut Value) -> Result<(), String>,
    ) -> Result<(), String> {
        let (element, rest) = next_field(path);
        let element: &str = &element;
        let (name, is_list) = match element.strip_suffix("[]") {
            Some(name) => (name, true),
            None => (element, false),
        };
        if name.is_empty() {
            return Err("cannot set or create an empty field name".to_string());
        }
        let last = rest.is_none();
        let create = self.create;
        let kind = || match (create, is_list, last) {
            (_, true, _) => Some(Value::Array(Vec::new())),
            (Create::Nothing, ..) => None,
            (Create::Scalar, false, true) => Some(Value::String(String::new())),
            (Create::Mapping, false, true) | (_, false, false) => Some(Value::Object(Map::new())),
        };
        let creates = create != Create::Nothing && !is_list;
        let field = match lookup::get_mut(map, name) {
            Some(field) => field,
            None if creates => map
                .entry(name.to_string())
                .or_insert(kind().unwrap_or(Value::Null)),
            None => return Ok(()),
        };
        if field.is_null()
            && let Some(kind) = kind()
        {
            *field = kind;
        }
        self.walk(field, rest, set)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn set_all(object: &mut Value, path: &str, create: Create) {
        let spec = FieldSpec::new("", "", "", path, true);
        apply(object, &spec, create, &mut |v| {
            *v = json!("x");
            Ok(())
        })
        .expect("applies");
    }

    #[test]
    fn walks_lists_and_creates_missing_fields() {
        let mut o = json!({"spec": {"containers": [{"name": "a"}, {"name": "b", "image": "i"}]}});
        set_all(&mut o, "spec/containers/image", Create::Scalar);
        assert_eq!(
            o["spec"]["containers"],
            json!([{"name": "a", "image": "x"}, {"name": "b", "image": "x"}])
        );
        let mut o = json!({"metadata": {}});
        set_all(&mut o, "metadata/labels/app", Create::Mapping);
        assert_eq!(o, json!({"metadata": {"labels": {"app": "x"}}}));
    }

    #[test]
    fn explicit_lists_are_never_created() {
        let mut o = json!({"spec": {}});
        set_all(&mut o, "spec/containers[]/image", Create::Scalar);
        assert_eq!(o, json!({"spec": {}}));
    }

    fn split_path(path: &str) -> Vec<Cow<'_, str>> {
        let mut parts = Vec::new();
        let mut rest = Some(without_root(path));
        while let Some(path) = rest {
            let (field, next) = next_field(path);
            parts.push(field);
            rest = next;
        }
        parts
    }

    #[test]
    fn splits_escaped_slashes() {
        assert_eq!(
            split_path(r"metadata/annotations/a.io\/b"),
            ["metadata", "annotations", "a.io/b"]
        );
        assert_eq!(split_path(r"/a\//b\\/c"), ["a/", r"b\/c"]);
        assert_eq!(split_path("/"), ["", ""]);
    }
}
