//! The `vars:` field: named values taken from a field of an object, substituted for `$(NAME)`
//! in the fields kustomize's `varReference` configuration lists.

use serde_json::Value;

use super::fields::{Field, object, string};
use crate::overlay::error::RenderError;
use crate::overlay::resid::Gvk;

/// A `vars:` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Var {
    pub name: String,
    /// The object, by its group/version/kind (exactly), name and optional namespace.
    pub objref: Gvk,
    pub objref_name: String,
    pub objref_namespace: String,
    /// Dot-separated; `metadata.name` when not given.
    pub field_path: String,
}

/// Reads one `vars:` entry.
pub(super) fn var(f: &Field<'_>, v: &Value) -> Result<Var, RenderError> {
    let mut var = Var {
        name: String::new(),
        objref: Gvk::default(),
        objref_name: String::new(),
        objref_namespace: String::new(),
        field_path: String::new(),
    };
    let mut api_version = String::new();
    for (key, value) in keys(f, v, &["name", "objref", "fieldref"])? {
        let sub = f.nested(format_args!(".{key}"));
        match key {
            "name" => var.name = string(&sub, value)?,
            "objref" => {
                let known = [
                    "apiVersion",
                    "group",
                    "version",
                    "kind",
                    "name",
                    "namespace",
                ];
                for (key, value) in keys(&sub, value, &known)? {
                    let text = string(&sub.nested(format_args!(".{key}")), value)?;
                    match key {
                        "apiVersion" => api_version = text,
                        "group" => var.objref.group = text.into(),
                        "version" => var.objref.version = text.into(),
                        "kind" => var.objref.kind = text.into(),
                        "name" => var.objref_name = text,
                        _ => var.objref_namespace = text,
                    }
                }
            }
            _ => {
                for (key, value) in keys(&sub, value, &["fieldPath"])? {
                    var.field_path = string(&sub.nested(format_args!(".{key}")), value)?;
                }
            }
        }
    }
    // As in kustomize, an apiVersion overrides group and version.
    match api_version.split_once('/') {
        Some((group, version)) => {
            var.objref.group = group.to_string().into();
            var.objref.version = version.to_string().into();
        }
        None if !api_version.is_empty() => var.objref.version = api_version.into(),
        None => {}
    }
    if var.field_path.is_empty() {
        var.field_path = "metadata.name".to_string();
    }
    Ok(var)
}

/// The keys of a mapping in kustomize's spelling (any letter case), refusing unknown ones.
fn keys<'v>(
    f: &Field<'_>,
    v: &'v Value,
    known: &[&'static str],
) -> Result<Vec<(&'static str, &'v Value)>, RenderError> {
    let mut out = Vec::new();
    for (key, value) in object(f, v)?.into_iter().flatten() {
        let canonical = known
            .iter()
            .find(|k| **k == key.as_str())
            .or_else(|| known.iter().find(|k| k.eq_ignore_ascii_case(key)));
        match canonical {
            Some(canonical) => out.push((*canonical, value)),
            None => return Err(f.invalid(format!("unknown field `{key}`"))),
        }
    }
    Ok(out)
}
