//! kustomize's ValueAddTransformer: one value written into fields of the selected objects,
//! creating what is missing on the way, or inserted into a file path held by such a field
//! (`filePathPosition`). `metadata/namespace` is set as a namespace transformer with no field
//! specs of its own sets it (namespaced kinds only, RoleBinding subjects named `default`).

use serde_json::{Map, Value};

use super::kustomization::Selector;
use super::kustomization::plugins::{NamespaceConfig, ValueTarget};
use super::resmap::{Matcher, ResMap};
use super::resource::scalar_text;
use super::transform;
use super::yaml::Schema;
use super::yaml::scalar::resolve;

/// Writes `value` into each target's field of the objects its selector picks (all without a
/// selector).
pub fn apply(resources: &mut ResMap, value: &str, targets: &[ValueTarget]) -> Result<(), String> {
    let namespace = NamespaceConfig {
        namespace: value.to_string(),
        ..NamespaceConfig::default()
    };
    for target in targets {
        let matcher = target
            .selector
            .as_ref()
            .map(|selector: &Selector| Matcher::new(selector))
            .transpose()?;
        let path = segments(&target.field_path);
        for resource in resources.iter_mut() {
            if resource.is_empty() || matcher.as_ref().is_some_and(|m| !m.matches(resource)) {
                continue;
            }
            if target.field_path == "metadata/namespace" {
                transform::set_namespace(resource, &namespace)?;
                continue;
            }
            let field = lookup_create(&mut resource.value, &path)
                .map_err(|err| format!("fieldPath {}: {err}", target.field_path))?;
            let text = if target.file_path_position > 0 {
                let position = usize::try_from(target.file_path_position - 1).unwrap_or(usize::MAX);
                insert_path_part(&scalar_text(Some(field)), position, value)
            } else {
                value.to_string()
            };
            // kustomize writes the value as an untagged scalar: `"123"` reads back as a number.
            *field = resolve(&text, Schema::Core)
                .into_value(&text)
                .unwrap_or(Value::String(text));
        }
    }
    Ok(())
}

/// The parts of a field path: `/`-separated, `\/` keeping a slash in a key.
fn segments(path: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for piece in path.split('/') {
        match out.last_mut() {
            Some(last) if last.ends_with('\\') => {
                last.pop();
                last.push('/');
                last.push_str(piece);
            }
            _ => out.push(piece.to_string()),
        }
    }
    out
}

/// A list element selector `[key=value]`.
fn element_selector(segment: &str) -> Option<(&str, &str)> {
    segment
        .strip_prefix('[')?
        .strip_suffix(']')?
        .split_once('=')
}

/// The scalar field at `path`, created (with the maps and list elements leading to it) when
/// missing; an error when something on the way, or the field itself, is of another kind.
fn lookup_create<'v>(value: &'v mut Value, path: &[String]) -> Result<&'v mut Value, String> {
    let mut current = value;
    for (i, segment) in path.iter().enumerate() {
        let next_is_list = path
            .get(i + 1)
            .is_some_and(|next| element_selector(next).is_some());
        current = step(current, segment, next_is_list)?;
    }
    match current {
        Value::Object(_) => Err("expected a scalar, found a mapping".to_string()),
        Value::Array(_) => Err("expected a scalar, found a list".to_string()),
        scalar => Ok(scalar),
    }
}

/// One step down from `current` along `segment`, creating the child when missing (a list
/// when the next segment selects list elements, else a mapping, or a scalar at the end).
fn step<'v>(
    current: &'v mut Value,
    segment: &str,
    next_is_list: bool,
) -> Result<&'v mut Value, String> {
    match current {
        Value::Array(items) => {
            if let Some((key, wanted)) = element_selector(segment) {
                let found = items.iter().position(|item| {
                    item.get(key)
                        .is_some_and(|v| scalar_text(Some(v)) == wanted)
                });
                let index = match found {
                    Some(index) => index,
                    None => {
                        let mut element = Map::new();
                        element.insert(key.to_string(), Value::String(wanted.to_string()));
                        items.push(Value::Object(element));
                        items.len() - 1
                    }
                };
                return Ok(&mut items[index]);
            }
            let index: usize = segment
                .parse()
                .map_err(|_| format!("`{segment}` does not select an element of a list"))?;
            let len = items.len();
            items
                .get_mut(index)
                .ok_or_else(|| format!("index {index} is out of range (the list has {len})"))
        }
        Value::Object(map) => {
            if element_selector(segment).is_some() {
                return Err(format!("`{segment}` selects list elements of a mapping"));
            }
            let child = map.entry(segment.to_string()).or_insert(Value::Null);
            if child.is_null() && next_is_list {
                *child = Value::Array(Vec::new());
            }
            Ok(child)
        }
        Value::Null => {
            *current = if element_selector(segment).is_some() {
                Value::Array(Vec::new())
            } else {
                Value::Object(Map::new())
            };
            step(current, segment, next_is_list)
        }
        _ => Err(format!("`{segment}` is below a scalar")),
    }
}

/// `part` inserted into the file path `path` before its part number `position` (0 first;
/// beyond the end appends), an absolute path staying absolute; kustomize's `InsertPathPart`.
fn insert_path_part(path: &str, position: usize, part: &str) -> String {
    if part.is_empty() {
        return path.to_string();
    }
    let mut parts = path_split(path);
    let mut position = position.min(parts.len());
    if parts.first().is_some_and(String::is_empty) && position < parts.len() {
        position += 1;
    }
    parts.insert(position, part.to_string());
    path_join(&parts)
}

/// Go's `filesys.PathSplit`: the parts of a path, a leading empty part for an absolute one.
fn path_split(path: &str) -> Vec<String> {
    if path.is_empty() {
        return Vec::new();
    }
    let (dir, file) = match path.rfind('/') {
        Some(i) => (&path[..=i], &path[i + 1..]),
        None => ("", path),
    };
    if dir == "/" {
        return if file.is_empty() {
            vec![String::new()]
        } else {
            vec![String::new(), file.to_string()]
        };
    }
    let dir = dir.strip_suffix('/').unwrap_or(dir);
    if dir.is_empty() {
        return vec![file.to_string()];
    }
    let mut parts = path_split(dir);
    parts.push(file.to_string());
    parts
}

/// Go's `filesys.PathJoin`: parts joined and cleaned, absolute when the first is empty.
fn path_join(parts: &[String]) -> String {
    match parts.split_first() {
        None => String::new(),
        Some((first, rest)) if first.is_empty() => format!("/{}", join_clean(rest)),
        Some(_) => join_clean(parts),
    }
}

/// Go's `filepath.Join`: the non-empty parts joined with `/` and cleaned; `""` when all are
/// empty.
fn join_clean(parts: &[String]) -> String {
    let joined: Vec<&str> = parts
        .iter()
        .map(String::as_str)
        .filter(|p| !p.is_empty())
        .collect();
    if joined.is_empty() {
        return String::new();
    }
    clean(&joined.join("/"))
}

/// Go's `path.Clean`.
fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for piece in path.split('/') {
        match piece {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|last| *last != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            piece => out.push(piece),
        }
    }
    let body = out.join("/");
    match (rooted, body.is_empty()) {
        (true, _) => format!("/{body}"),
        (false, true) => ".".to_string(),
        (false, false) => body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserts_into_file_paths_as_kustomize_does() {
        let cases = [
            ("", 0, "PEACH"),
            ("/", 5, "/PEACH"),
            ("pie", 0, "PEACH/pie"),
            ("/pie", 0, "/PEACH/pie"),
            ("raw", 1, "raw/PEACH"),
            ("/raw", 9, "/raw/PEACH"),
            ("a/nice/warm/pie", 3, "a/nice/warm/PEACH/pie"),
            ("/a/nice/warm/pie", 3, "/a/nice/warm/PEACH/pie"),
        ];
        for (path, position, expected) in cases {
            assert_eq!(
                insert_path_part(path, position, "PEACH"),
                expected,
                "{path}"
            );
        }
    }

    #[test]
    fn splits_field_paths_keeping_escaped_slashes() {
        assert_eq!(
            segments(r"metadata/annotations/example.com\/team"),
            ["metadata", "annotations", "example.com/team"]
        );
    }

    #[test]
    fn creates_missing_fields_and_list_elements() {
        let mut value = serde_json::json!({"spec": {"containers": [{"name": "web"}]}});
        let path = segments("spec/containers/[name=side]/image");
        *lookup_create(&mut value, &path).expect("created") = Value::String("x".into());
        assert_eq!(
            value,
            serde_json::json!({"spec": {"containers": [{"name": "web"}, {"name": "side", "image": "x"}]}})
        );
        let err = lookup_create(&mut value, &segments("spec")).expect_err("a mapping");
        assert_eq!(err, "expected a scalar, found a mapping");
    }
}
