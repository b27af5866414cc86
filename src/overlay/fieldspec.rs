//! Field specs: "this path in objects of this kind", the way kustomize's transformers name the
//! fields they touch. A path walks through every element of a list it meets, `name[]` marks a
//! list explicitly, `\/` escapes a slash inside a key, and `create` makes missing fields.

use serde_json::{Map, Value};

use super::resid::Gvk;

/// A path in objects selected by group/version/kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSpec {
    pub gvk: Gvk,
    pub path: String,
    pub create: bool,
}

impl FieldSpec {
    /// A spec from static configuration.
    pub fn new(group: &str, version: &str, kind: &str, path: &str, create: bool) -> FieldSpec {
        FieldSpec {
            gvk: Gvk {
                group: group.into(),
                version: version.into(),
                kind: kind.into(),
            },
            path: path.into(),
            create,
        }
    }

    /// Whether `object`'s current apiVersion and kind match this spec.
    pub fn matches(&self, object: &Value) -> bool {
        let api_version = object
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
        Gvk::new(api_version, kind).is_selected_by(&self.gvk)
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
    let path = split_path(&spec.path);
    let walker = Walker {
        path: &path,
        create: if spec.create { create } else { Create::Nothing },
    };
    walker
        .walk(object, 0, set)
        .map_err(|err| format!("considering field '{}': {err}", spec.path))
}

/// Splits `a/b\/c` into `a`, `b/c`; a leading `/` is ignored.
pub fn split_path(path: &str) -> Vec<String> {
    let path = if path.len() > 1 {
        path.strip_prefix('/').unwrap_or(path)
    } else {
        path
    };
    let mut parts: Vec<String> = Vec::new();
    for piece in path.split('/') {
        match parts.last_mut() {
            Some(last) if last.ends_with('\\') => {
                last.pop();
                last.push('/');
                last.push_str(piece);
            }
            _ => parts.push(piece.to_string()),
        }
    }
    parts
}

struct Walker<'a> {
    path: &'a [String],
    create: Create,
}

impl Walker<'_> {
    fn walk(
        &self,
        value: &mut Value,
        depth: usize,
        set: &mut dyn FnMut(&mut Value) -> Result<(), String>,
    ) -> Result<(), String> {
        if depth == self.path.len() {
            return set(value);
        }
        match value {
            Value::Null => Ok(()),
            Value::Array(items) => {
                for item in items {
                    self.walk(item, depth, set)?;
                }
                Ok(())
            }
            Value::Object(map) => self.walk_map(map, depth, set),
            _ => Err("expected sequence or mapping node".to_string()),
        }
    }

    fn walk_map(
        &self,
        map: &mut Map<String, Value>,
        depth: usize,
        set: &mut dyn FnMut(&mut Value) -> Result<(), String>,
    ) -> Result<(), String> {
        let element = &self.path[depth];
        let (name, is_list) = match element.strip_suffix("[]") {
            Some(name) => (name, true),
            None => (element.as_str(), false),
        };
        if name.is_empty() {
            return Err("cannot set or create an empty field name".to_string());
        }
        let last = depth + 1 == self.path.len();
        let kind = match (self.create, is_list, last) {
            (_, true, _) => Some(Value::Array(Vec::new())),
            (Create::Nothing, ..) => None,
            (Create::Scalar, false, true) => Some(Value::String(String::new())),
            (Create::Mapping, false, true) | (_, false, false) => Some(Value::Object(Map::new())),
        };
        let creates = self.create != Create::Nothing && !is_list;
        let field = match map.get_mut(name) {
            Some(field) => field,
            None if creates => map
                .entry(name.to_string())
                .or_insert(kind.clone().unwrap_or(Value::Null)),
            None => return Ok(()),
        };
        if let (true, Some(kind)) = (field.is_null(), kind) {
            *field = kind;
        }
        self.walk(field, depth + 1, set)
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

    #[test]
    fn splits_escaped_slashes() {
        assert_eq!(
            split_path(r"metadata/annotations/a.io\/b"),
            ["metadata", "annotations", "a.io/b"]
        );
    }
}
