//! Legacy `vars:`: each kustomization marks the object its vars take their values from (by
//! any name the object has had, after its own transformers ran), the vars of every layer are
//! gathered (a name may be defined once in a build), and at the end of the build — after hash
//! suffixes and name references, so names are final — `$(NAME)` is replaced in the fields the
//! `varReference` configuration lists, exactly as kustomize's var transformer replaces it.

use serde_json::Value;

use super::fieldspec::{Create, FieldSpec, apply};
use super::kustomization::Var;
use super::replacement::lookup;
use super::resid::ResId;
use super::resmap::ResMap;
use super::yaml::scalar::format_go_float;

/// Marks the one object each of `vars` refers to; several candidates are an error, none is
/// an error only when the var is resolved.
pub fn record(resources: &mut ResMap, vars: &[Var]) -> Result<(), String> {
    for var in vars {
        let wanted = ResId {
            gvk: var.objref.clone(),
            name: var.objref_name.clone(),
            namespace: var.objref_namespace.clone(),
        };
        let exact_namespace = !wanted.namespace.is_empty() || wanted.gvk.is_cluster_scoped();
        let matches = |id: &ResId| {
            id.name == wanted.name
                && id.gvk == wanted.gvk
                && (!exact_namespace || id.same_namespace(&wanted))
        };
        let found: Vec<usize> = resources
            .iter()
            .enumerate()
            .filter(|(_, r)| r.all_ids().iter().any(matches))
            .map(|(i, _)| i)
            .collect();
        match found.as_slice() {
            [] => {}
            [one] => resources[*one].ref_vars.push(var.name.clone()),
            many => {
                return Err(format!(
                    "found {} resId matches for var {:?} (unable to disambiguate)",
                    many.len(),
                    var.name
                ));
            }
        }
    }
    Ok(())
}

/// Adds `incoming` to `known`; a name already known is an error.
pub fn merge(known: &mut Vec<Var>, incoming: &[Var]) -> Result<(), String> {
    for var in incoming {
        if known.iter().any(|v| v.name == var.name) {
            return Err(format!("var {:?} already encountered", var.name));
        }
        known.push(var.clone());
    }
    Ok(())
}

/// A var's value as kustomize reads it from the object.
#[derive(Debug, Clone, PartialEq)]
enum VarValue {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// A mapping or list: left as `$(NAME)`, as kustomize leaves it.
    Structure,
}

impl VarValue {
    fn of(value: &Value) -> VarValue {
        match value {
            Value::String(s) => VarValue::Text(s.clone()),
            Value::Bool(b) => VarValue::Bool(*b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => VarValue::Int(i),
                None => VarValue::Float(n.as_f64().unwrap_or_default()),
            },
            Value::Null => VarValue::Text(String::new()),
            Value::Object(_) | Value::Array(_) => VarValue::Structure,
        }
    }

    /// The value as it is written into the middle of a string (Go's `%v`).
    fn text(&self, name: &str) -> String {
        match self {
            VarValue::Text(s) => s.clone(),
            VarValue::Int(i) => i.to_string(),
            VarValue::Float(f) => go_v_float(*f),
            VarValue::Bool(b) => b.to_string(),
            VarValue::Structure => format!("$({name})"),
        }
    }

    /// The value as a whole field.
    fn value(&self, name: &str) -> Value {
        match self {
            VarValue::Int(i) => Value::Number((*i).into()),
            VarValue::Float(f) => serde_json::Number::from_f64(*f)
                .map_or_else(|| Value::String(go_v_float(*f)), Value::Number),
            VarValue::Bool(b) => Value::Bool(*b),
            other => Value::String(other.text(name)),
        }
    }
}

/// Go's `%v` for a float64: the shortest digits, in exponent form below 1e-4 or from 1e6.
fn go_v_float(f: f64) -> String {
    let exponent = if f == 0.0 {
        0
    } else {
        f.abs().log10().floor() as i32
    };
    if f != 0.0 && !(-4..6).contains(&exponent) {
        let text = format!("{f:e}");
        let (mantissa, exp) = text.split_once('e').unwrap_or((&text, "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.abs());
    }
    format_go_float(f, 64)
}

/// Replaces `$(NAME)` for every var in the fields `specs` name, in every object.
pub fn resolve(resources: &mut ResMap, vars: &[Var], specs: &[FieldSpec]) -> Result<(), String> {
    if vars.is_empty() {
        return Ok(());
    }
    let mut sorted: Vec<&Var> = vars.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut values = Vec::new();
    for var in sorted {
        values.push((var.name.clone(), value_of(resources, var)?));
    }
    let mapping = |name: &str| values.iter().find(|(n, _)| n == name).map(|(_, v)| v);
    for resource in resources.iter_mut() {
        for spec in specs {
            apply(&mut resource.value, spec, Create::Nothing, &mut |node| {
                substitute_node(node, &mapping)
            })?;
        }
    }
    Ok(())
}

fn value_of(resources: &ResMap, var: &Var) -> Result<VarValue, String> {
    let Some(resource) = resources.iter().find(|r| r.ref_vars.contains(&var.name)) else {
        let namespace = if var.objref_namespace.is_empty() {
            String::new()
        } else {
            format!(" in namespace {:?}", var.objref_namespace)
        };
        let hint = if var.objref.version.is_empty() {
            "; an objref matches only with the object's apiVersion"
        } else {
            ""
        };
        return Err(format!(
            "var {:?} cannot be mapped to a field in the set of known resources \
             (it refers to {} {:?}{namespace}){hint}",
            var.name,
            var.objref.id_string(),
            var.objref_name,
        ));
    };
    let parts = field_path(&var.field_path);
    let found = lookup(&resource.value, &parts).ok().flatten();
    match found {
        Some(value) => Ok(VarValue::of(value)),
        None => Err(format!(
            "field {:?} of var {:?} not found in {}",
            var.field_path,
            var.name,
            resource.cur_id()
        )),
    }
}

/// A var's field path: dot-separated, `name[2]` indexing a list.
fn field_path(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    for part in path.split('.') {
        match part.strip_suffix(']').and_then(|p| p.split_once('[')) {
            Some((field, index)) => {
                out.push(field.to_string());
                out.push(index.to_string());
            }
            None => out.push(part.to_string()),
        }
    }
    out
}

type Mapping<'m> = dyn Fn(&str) -> Option<&'m VarValue> + 'm;

fn substitute_node(node: &mut Value, mapping: &Mapping<'_>) -> Result<(), String> {
    match node {
        Value::Null => Ok(()),
        Value::String(text) => {
            *node = substitute(text, mapping);
            Ok(())
        }
        Value::Object(map) => {
            for value in map.values_mut() {
                if let Value::String(text) = value {
                    *value = substitute(text, mapping);
                }
            }
            Ok(())
        }
        Value::Array(items) => {
            for item in items {
                let Value::String(text) = item else {
                    return Err("invalid value type expect a string".to_string());
                };
                *item = substitute(text, mapping);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// `text` with every `$(NAME)` of a known var replaced; `$$` is a literal `$`. A text that is
/// exactly one reference takes the var's own type.
fn substitute(text: &str, mapping: &Mapping<'_>) -> Value {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut checkpoint = 0;
    let mut cursor = 0;
    while cursor < bytes.len() {
        if bytes[cursor] == b'$' && cursor + 1 < bytes.len() {
            out.push_str(&text[checkpoint..cursor]);
            let rest = &text[cursor + 1..];
            let advance = match rest.as_bytes()[0] {
                b'$' => {
                    out.push('$');
                    1
                }
                b'(' => match rest.find(')') {
                    Some(close) => {
                        let name = &rest[1..close];
                        let mapped = mapping(name);
                        if cursor == 0 && close + 2 == text.len() {
                            return match mapped {
                                Some(value) => value.value(name),
                                None => Value::String(text.to_string()),
                            };
                        }
                        match mapped {
                            Some(value) => out.push_str(&value.text(name)),
                            None => out.push_str(&format!("$({name})")),
                        }
                        close + 1
                    }
                    None => {
                        out.push_str("$(");
                        1
                    }
                },
                _ => {
                    let c = rest.chars().next().expect("not empty");
                    out.push('$');
                    out.push(c);
                    c.len_utf8()
                }
            };
            cursor += advance + 1;
            checkpoint = cursor;
        } else {
            cursor += 1;
        }
    }
    out.push_str(&text[checkpoint.min(text.len())..]);
    Value::String(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn run(text: &str) -> Value {
        let values = [
            ("HOST".to_string(), VarValue::Text("db.example".into())),
            ("PORT".to_string(), VarValue::Int(5432)),
        ];
        let mapping = |name: &str| values.iter().find(|(n, _)| n == name).map(|(_, v)| v);
        substitute(text, &mapping)
    }

    #[test]
    fn substitutes_references_like_kustomize() {
        assert_eq!(run("$(HOST):$(PORT)"), json!("db.example:5432"));
        assert_eq!(run("$(PORT)"), json!(5432));
        assert_eq!(run("$(OTHER)"), json!("$(OTHER)"));
        assert_eq!(run("a $(OTHER) b"), json!("a $(OTHER) b"));
        assert_eq!(run("$$(HOST)"), json!("$(HOST)"));
        assert_eq!(run("cost: $5 $(HOST"), json!("cost: $5 $(HOST"));
        assert_eq!(run("trailing $"), json!("trailing $"));
    }

    #[test]
    fn floats_print_as_go_prints_them() {
        assert_eq!(go_v_float(1.5), "1.5");
        assert_eq!(go_v_float(123456.0), "123456");
        assert_eq!(go_v_float(1234567.0), "1.234567e+06");
        assert_eq!(go_v_float(0.00001), "1e-05");
    }

    #[test]
    fn field_paths_index_lists_with_brackets() {
        assert_eq!(
            field_path("spec.ports[0].port"),
            ["spec", "ports", "0", "port"]
        );
    }
}
