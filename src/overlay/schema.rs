//! Which lists of the built-in kinds a strategic merge merges element by element, and by which
//! keys (containers by `name`, container ports by `containerPort` and `protocol`, …). The data
//! in `schema.txt` is the part of the Kubernetes API schema kustomize consults for this.

use std::collections::HashMap;
use std::sync::OnceLock;

const DATA: &str = include_str!("schema.txt");

/// The schema of one value in an object: a type, a list, or a map of values.
#[derive(Debug, Clone, Copy)]
pub enum Schema {
    Type(&'static Type),
    List(&'static Field),
    MapOf(&'static Type),
}

/// The fields of a type that lead to merged lists.
#[derive(Debug, Default)]
pub struct Type {
    fields: HashMap<&'static str, Field>,
}

/// One such field.
#[derive(Debug)]
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

struct Tables {
    types: HashMap<&'static str, Type>,
    roots: HashMap<(&'static str, &'static str), &'static str>,
}

fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(load)
}

fn load() -> Tables {
    let mut tables = Tables {
        types: HashMap::new(),
        roots: HashMap::new(),
    };
    for line in DATA
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let parts: Vec<&'static str> = line.split(' ').collect();
        match parts.as_slice() {
            ["root", api_version, kind, ty] => {
                tables.roots.insert((api_version, kind), ty);
            }
            [ty, field, shape, target, keys] => {
                let shape = match *shape {
                    "obj" => Shape::Object,
                    "map" => Shape::Map,
                    _ => Shape::List,
                };
                let target = (*target != "-").then_some(*target);
                let keys = match *keys {
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
            _ => {}
        }
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
