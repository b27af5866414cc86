//! Which lists of the built-in kinds a strategic merge merges element by element, and by which
//! keys (containers by `name`, container ports by `containerPort` and `protocol`, …). The data
//! in `schema.txt` is the part of the Kubernetes API schema kustomize consults for this. A
//! kustomization's `openapi:` schema adds custom kinds for the rest of its build (see
//! [`custom`]).

use std::cell::Cell;
use std::collections::HashMap;

use rustc_hash::FxHashMap;
use std::sync::{Mutex, OnceLock, PoisonError};

use serde_json::Value;

const DATA: &str = include_str!("schema.txt");

/// The schema of one value in an object: a type, a list, or a map of values.
#[derive(Debug, Clone, Copy)]
pub enum Schema {
    Type(&'static Type),
    List(&'static Field),
    MapOf(&'static Type),
}

/// The fields of a type that lead to merged lists.
#[derive(Debug, Default, Clone)]
pub struct Type {
    fields: FxHashMap<&'static str, Field>,
}

/// One such field.
#[derive(Debug, Clone)]
pub struct Field {
    shape: Shape,
    target: Option<&'static str>,
    /// Merge keys of a merged list; empty for a merged list of scalars.
    keys: Vec<&'static str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Object,
    Map,
    List,
}

/// The schema tables: the built-in ones, or those with a custom schema added.
#[derive(Debug, Clone)]
pub struct Tables {
    types: FxHashMap<&'static str, Type>,
    roots: FxHashMap<(&'static str, &'static str), &'static str>,
}

fn builtin() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(load)
}

thread_local! {
    /// The tables of the build running on this thread, when it uses a custom schema.
    static CURRENT: Cell<Option<&'static Tables>> = const { Cell::new(None) };
}

fn tables() -> &'static Tables {
    CURRENT.with(Cell::get).unwrap_or_else(builtin)
}

/// Runs `f` (one build) on this thread; a schema it [`set`]s is forgotten afterwards.
pub fn scoped<R>(f: impl FnOnce() -> R) -> R {
    let before = CURRENT.with(|c| c.replace(None));
    let result = f();
    CURRENT.with(|c| c.set(before));
    result
}

/// Makes `tables` the schema of the strategic merges that follow in this [`scoped`] build.
pub fn set(tables: &'static Tables) {
    CURRENT.with(|c| c.set(Some(tables)));
}

fn load() -> Tables {
    let mut tables = Tables {
        types: FxHashMap::default(),
        roots: FxHashMap::default(),
    };
    for line in DATA
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let mut parts = line.split(' ');
        let mut part = || parts.next().unwrap_or("");
        let first = part();
        if first == "root" {
            let (api_version, kind, ty) = (part(), part(), part());
            tables.roots.insert((api_version, kind), ty);
            continue;
        }
        let (ty, field, shape, target, keys) = (first, part(), part(), part(), part());
        let shape = match shape {
            "obj" => Shape::Object,
            "map" => Shape::Map,
            _ => Shape::List,
        };
        let target = (target != "-").then_some(target);
        let keys = match keys {
            "*" | "-" => Vec::new(),
            keys => keys.split(',').collect(),
        };
        let entry = tables.types.entry(ty).or_default();
        entry.fields.insert(
            field,
            Field {
                shape,
                target,
                keys,
            },
        );
    }
    tables
}

/// The schema of a whole object of this apiVersion and kind, when it is a built-in kind.
pub fn for_kind(api_version: &str, kind: &str) -> Option<Schema> {
    let t = tables();
    let ty = t.roots.get(&(api_version, kind))?;
    t.types.get(ty).map(Schema::Type)
}

impl Schema {
    /// The schema of field `name` of an object with this schema.
    pub fn field(self, name: &str) -> Option<Schema> {
        match self {
            Schema::Type(ty) => {
                let field = ty.fields.get(name)?;
                match field.shape {
                    Shape::List => Some(Schema::List(field)),
                    Shape::Object => target(field).map(Schema::Type),
                    Shape::Map => target(field).map(Schema::MapOf),
                }
            }
            Schema::MapOf(ty) => Some(Schema::Type(ty)),
            Schema::List(_) => None,
        }
    }

    /// The schema of the elements of a list.
    pub fn elements(self) -> Option<Schema> {
        match self {
            Schema::List(field) => target(field).map(Schema::Type),
            _ => None,
        }
    }

    /// The merge keys of a list merged element by element (empty for scalar sets), or `None`
    /// when the list is replaced as a whole.
    pub fn merge_keys(self) -> Option<&'static [&'static str]> {
        match self {
            Schema::List(field) => Some(&field.keys),
            _ => None,
        }
    }
}

fn target(field: &Field) -> Option<&'static Type> {
    tables().types.get(field.target?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_the_merge_keys_of_pod_templates() {
        let deployment = for_kind("apps/v1", "Deployment").expect("built-in kind");
        let pod = deployment
            .field("spec")
            .and_then(|s| s.field("template"))
            .and_then(|s| s.field("spec"));
        let containers = pod.and_then(|s| s.field("containers")).expect("containers");
        assert_eq!(containers.merge_keys(), Some(&["name"][..]));
        let ports = containers
            .elements()
            .and_then(|c| c.field("ports"))
            .expect("ports");
        assert_eq!(ports.merge_keys(), Some(&["containerPort", "protocol"][..]));
        assert!(pod.and_then(|s| s.field("tolerations")).is_none());
        assert!(for_kind("example.com/v1", "Widget").is_none());
    }
}

/// The built-in tables with the kinds of an OpenAPI (swagger) document added: definitions
/// that carry `x-kubernetes-group-version-kind` become roots, and their lists merge by
/// `x-kubernetes-patch-merge-key` (or `x-kubernetes-list-map-keys`) where
/// `x-kubernetes-patch-strategy` says `merge`. A document's tables are built once per process
/// and kept, as a process renders the same few schemas again and again.
pub fn custom(document: &Value) -> Result<&'static Tables, String> {
    static INTERNED: OnceLock<Mutex<HashMap<String, &'static Tables>>> = OnceLock::new();
    let key = document.to_string();
    let interned = INTERNED.get_or_init(Mutex::default);
    if let Some(tables) = interned
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&key)
    {
        return Ok(tables);
    }
    let mut tables = builtin().clone();
    let Some(definitions) = document.get("definitions").and_then(Value::as_object) else {
        return Err("the schema has no `definitions`".to_string());
    };
    for (name, definition) in definitions {
        add_type(&mut tables, custom_name(name), definition);
        for gvk in definition
            .get("x-kubernetes-group-version-kind")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let text = |k: &str| gvk.get(k).and_then(Value::as_str).unwrap_or("");
            let api_version = match text("group") {
                "" => text("version").to_string(),
                group => format!("{group}/{}", text("version")),
            };
            tables.roots.insert(
                (leak(api_version), leak(text("kind").to_string())),
                custom_name(name),
            );
        }
    }
    let tables: &'static Tables = Box::leak(Box::new(tables));
    interned
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(key, tables);
    Ok(tables)
}

fn leak(text: String) -> &'static str {
    Box::leak(text.into_boxed_str())
}

/// Custom types live beside the built-in ones under their own names.
fn custom_name(name: &str) -> &'static str {
    leak(format!("openapi:{name}"))
}

/// The definition a `$ref` (`#/definitions/NAME`) points to, by its custom type name.
fn reference(schema: &Value) -> Option<&'static str> {
    let target = schema.get("$ref")?.as_str()?;
    Some(custom_name(
        target.strip_prefix("#/definitions/").unwrap_or(target),
    ))
}

/// Adds the type `name` for `schema`, with a field for every property that is an object,
/// a map or a list (inline schemas become types of their own).
fn add_type(tables: &mut Tables, name: &'static str, schema: &Value) {
    let mut ty = Type::default();
    for (property, value) in schema
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let inner = || leak(format!("{name}/{property}"));
        let target = |tables: &mut Tables, value: &Value| match reference(value) {
            Some(target) => Some(target),
            None if value.get("properties").is_some() || value.get("items").is_some() => {
                let inline = inner();
                add_type(tables, inline, value);
                Some(inline)
            }
            None => None,
        };
        let kind = value.get("type").and_then(Value::as_str).unwrap_or("");
        let field = if kind == "array" {
            let items = value.get("items").cloned().unwrap_or(Value::Null);
            let strategy = value
                .get("x-kubernetes-patch-strategy")
                .and_then(Value::as_str)
                .unwrap_or("");
            if !strategy.split(',').any(|s| s == "merge") {
                continue;
            }
            let keys = match value
                .get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
            {
                Some(keys) => keys
                    .iter()
                    .filter_map(Value::as_str)
                    .map(|k| leak(k.to_string()))
                    .collect(),
                None => value
                    .get("x-kubernetes-patch-merge-key")
                    .and_then(Value::as_str)
                    .map(|k| vec![leak(k.to_string())])
                    .unwrap_or_default(),
            };
            Field {
                shape: Shape::List,
                target: target(tables, &items),
                keys,
            }
        } else if let Some(values) = value.get("additionalProperties").filter(|v| v.is_object()) {
            Field {
                shape: Shape::Map,
                target: target(tables, values),
                keys: Vec::new(),
            }
        } else {
            match target(tables, value) {
                Some(target) => Field {
                    shape: Shape::Object,
                    target: Some(target),
                    keys: Vec::new(),
                },
                None => continue,
            }
        };
        ty.fields.insert(leak(property.clone()), field);
    }
    tables.types.insert(name, ty);
}

#[cfg(test)]
mod custom_tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn custom_kinds_merge_lists_by_their_declared_keys() {
        let document = json!({"definitions": {
            "Widget": {
                "x-kubernetes-group-version-kind": [{"group": "ex.com", "version": "v1", "kind": "Widget"}],
                "properties": {"spec": {"$ref": "#/definitions/WidgetSpec"}}},
            "WidgetSpec": {"properties": {
                "parts": {"type": "array", "items": {"type": "object"},
                          "x-kubernetes-patch-strategy": "merge",
                          "x-kubernetes-patch-merge-key": "id"},
                "tags": {"type": "array", "items": {"type": "string"}}}}}});
        let tables = custom(&document).expect("valid schema");
        let parts = scoped(|| {
            set(tables);
            for_kind("ex.com/v1", "Widget")
                .and_then(|s| s.field("spec"))
                .and_then(|s| s.field("parts"))
                .and_then(Schema::merge_keys)
                .map(<[&str]>::to_vec)
        });
        assert_eq!(parts, Some(vec!["id"]));
        assert!(
            for_kind("ex.com/v1", "Widget").is_none(),
            "only inside the build"
        );
        assert!(for_kind("apps/v1", "Deployment").is_some());
    }
}
