//! The `replacements:` field: each entry is a replacement given inline or the path of a file
//! holding one replacement or a list of them. Inline entries are read strictly, like the rest
//! of the kustomization; replacement files are read the way kustomize reads them, ignoring
//! keys it does not know.

use serde_json::Value;

use super::Selector;
use super::fields::{Field, Warnings, boolean, list, object, string, strings};
use crate::overlay::error::RenderError;
use crate::overlay::resid::Gvk;
use crate::overlay::yaml::{Schema, parse_documents};

/// A `replacements:` entry.
#[derive(Debug, Clone)]
pub enum ReplacementEntry {
    Inline(Replacement),
    /// A file (relative to the kustomization) with one replacement or a list of them.
    Path(String),
}

/// Copies one value from a source object into fields of target objects.
#[derive(Debug, Clone, Default)]
pub struct Replacement {
    /// `None` when the entry names no source (an error when it is applied).
    pub source: Option<Source>,
    /// `None` when the entry names no targets (an error when it is applied).
    pub targets: Option<Vec<Target>>,
}

/// Which object the value comes from, and where in it.
#[derive(Debug, Clone, Default)]
pub struct Source {
    pub id: IdSelector,
    /// Dot-separated; `metadata.name` when empty.
    pub field_path: String,
    pub options: FieldOptions,
}

/// Exact group, version, kind, name and namespace; empty parts match anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdSelector {
    pub gvk: Gvk,
    pub name: String,
    pub namespace: String,
}

impl IdSelector {
    pub fn is_empty(&self) -> bool {
        *self == IdSelector::default()
    }
}

/// The fields to write the value to, in the objects `select` picks and `reject` leaves.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// `None` when the entry has no `select` (an error when it is applied).
    pub select: Option<TargetSelector>,
    pub reject: Vec<TargetSelector>,
    /// Dot-separated paths; `metadata.name` when empty.
    pub field_paths: Vec<String>,
    pub options: FieldOptions,
}

/// An object selector of a replacement target: an exact id plus label and annotation selectors.
#[derive(Debug, Clone, Default)]
pub struct TargetSelector {
    pub id: IdSelector,
    pub label_selector: String,
    pub annotation_selector: String,
}

impl From<&Selector> for TargetSelector {
    fn from(s: &Selector) -> TargetSelector {
        TargetSelector {
            id: IdSelector {
                gvk: s.gvk.clone(),
                name: s.name.clone(),
                namespace: s.namespace.clone(),
            },
            label_selector: s.label_selector.clone(),
            annotation_selector: s.annotation_selector.clone(),
        }
    }
}

/// How a field's value is split and joined, and whether a missing field is created.
#[derive(Debug, Clone, Default)]
pub struct FieldOptions {
    pub delimiter: String,
    pub index: i64,
    pub create: bool,
}

/// Reads one `replacements:` entry of a kustomization.
pub(super) fn entry(f: &Field<'_>, v: &Value) -> Result<ReplacementEntry, RenderError> {
    let map = object(f, v)?.cloned().unwrap_or_default();
    let path = map
        .get("path")
        .map(|p| string(&f.nested(".path"), p))
        .transpose()?
        .unwrap_or_default();
    if path.is_empty() {
        return Ok(ReplacementEntry::Inline(replacement(f, v, true)?));
    }
    if map.keys().any(|k| k == "source" || k == "targets") {
        return Err(f.invalid("cannot specify both path and inline replacement"));
    }
    if let Some(key) = map.keys().find(|k| *k != "path") {
        return Err(f.invalid(format!("unknown field `{key}`")));
    }
    Ok(ReplacementEntry::Path(path))
}

/// Reads the `replacements:` of a ReplacementTransformer plugin configuration: entries as in
/// a kustomization, read leniently as kustomize reads plugin configurations.
pub(super) fn plugin_entries(
    f: &Field<'_>,
    v: &Value,
) -> Result<Vec<ReplacementEntry>, RenderError> {
    list(f, v, |f, v| {
        let path = match v.get("path") {
            Some(p) => string(&f.nested(".path"), p)?,
            None => String::new(),
        };
        if path.is_empty() {
            return Ok(ReplacementEntry::Inline(replacement(f, v, false)?));
        }
        if v.get("source").is_some_and(|s| !s.is_null())
            || v.get("targets").is_some_and(|t| !is_empty_list(t))
        {
            return Err(f.invalid("cannot specify both path and inline replacement"));
        }
        Ok(ReplacementEntry::Path(path))
    })
}

fn is_empty_list(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(items) => items.is_empty(),
        _ => false,
    }
}

/// Reads a replacement file: one replacement (a mapping) or a list of them.
pub fn parse_file(path: &str, text: &str) -> Result<Vec<Replacement>, RenderError> {
    let documents = parse_documents(text, Schema::Yaml11).map_err(|err| RenderError::Yaml {
        path: path.to_string(),
        position: crate::overlay::error::Position {
            line: err.line,
            column: err.column,
        },
        message: err.message,
    })?;
    let document = documents.into_iter().next();
    let (value, line) = document.map_or((Value::Null, 1), |d| (d.value, d.line));
    let warnings = Warnings::default();
    let f = Field {
        path,
        line,
        name: "replacements".to_string(),
        warnings: &warnings,
    };
    match &value {
        Value::Array(_) => list(&f, &value, |f, v| replacement(f, v, false)),
        Value::Object(_) => Ok(vec![replacement(&f, &value, false)?]),
        _ => Err(RenderError::InvalidResource {
            path: path.to_string(),
            message: "a replacement file must hold a replacement or a list of replacements"
                .to_string(),
        }),
    }
}

/// The keys of a mapping; unknown ones are refused when `strict`, else skipped.
fn keys<'v>(
    f: &Field<'_>,
    v: &'v Value,
    known: &[&'static str],
    strict: bool,
) -> Result<Vec<(&'static str, &'v Value)>, RenderError> {
    let mut out = Vec::new();
    for (key, value) in object(f, v)?.into_iter().flatten() {
        // Keys match in any letter case, as kustomize's JSON decoding matches them.
        let canonical = known
            .iter()
            .find(|k| **k == key.as_str())
            .or_else(|| known.iter().find(|k| k.eq_ignore_ascii_case(key)));
        if let Some(canonical) = canonical {
            out.push((*canonical, value));
        } else if strict {
            return Err(f.invalid(format!("unknown field `{key}`")));
        }
    }
    Ok(out)
}

fn replacement(f: &Field<'_>, v: &Value, strict: bool) -> Result<Replacement, RenderError> {
    let mut r = Replacement::default();
    for (key, value) in keys(f, v, &["source", "targets", "path"], strict)? {
        let sub = f.nested(format_args!(".{key}"));
        match key {
            "source" if !value.is_null() => r.source = Some(source(&sub, value, strict)?),
            "targets" => {
                let targets = list(&sub, value, |f, v| target(f, v, strict))?;
                // An inline list without entries is dropped on the way to the transformer,
                // as kustomize drops it.
                if !(targets.is_empty() && (strict || value.is_null())) {
                    r.targets = Some(targets);
                }
            }
            _ => {}
        }
    }
    Ok(r)
}

const ID_KEYS: [&str; 5] = ["group", "version", "kind", "name", "namespace"];

fn source(f: &Field<'_>, v: &Value, strict: bool) -> Result<Source, RenderError> {
    let mut s = Source::default();
    let known = [&ID_KEYS[..], &["fieldPath", "options"]].concat();
    for (key, value) in keys(f, v, &known, strict)? {
        let sub = f.nested(format_args!(".{key}"));
        match key {
            "fieldPath" => s.field_path = string(&sub, value)?,
            "options" => s.options = options(&sub, value, strict)?,
            _ => set_id(&mut s.id, key, string(&sub, value)?),
        }
    }
    Ok(s)
}

fn set_id(id: &mut IdSelector, key: &str, text: String) {
    match key {
        "group" => id.gvk.group = text.into(),
        "version" => id.gvk.version = text.into(),
        "kind" => id.gvk.kind = text.into(),
        "name" => id.name = text,
        _ => id.namespace = text,
    }
}

fn target(f: &Field<'_>, v: &Value, strict: bool) -> Result<Target, RenderError> {
    let mut t = Target::default();
    let known = ["select", "reject", "fieldPaths", "options"];
    for (key, value) in keys(f, v, &known, strict)? {
        let sub = f.nested(format_args!(".{key}"));
        match key {
            "select" if !value.is_null() => t.select = Some(selector(&sub, value, strict)?),
            "reject" => t.reject = list(&sub, value, |f, v| selector(f, v, strict))?,
            "fieldPaths" => t.field_paths = strings(&sub, value)?,
            "options" => t.options = options(&sub, value, strict)?,
            _ => {}
        }
    }
    Ok(t)
}

fn selector(f: &Field<'_>, v: &Value, strict: bool) -> Result<TargetSelector, RenderError> {
    let mut s = TargetSelector::default();
    let known = [&ID_KEYS[..], &["labelSelector", "annotationSelector"]].concat();
    for (key, value) in keys(f, v, &known, strict)? {
        let text = string(&f.nested(format_args!(".{key}")), value)?;
        match key {
            "labelSelector" => s.label_selector = text,
            "annotationSelector" => s.annotation_selector = text,
            _ => set_id(&mut s.id, key, text),
        }
    }
    Ok(s)
}

fn options(f: &Field<'_>, v: &Value, strict: bool) -> Result<FieldOptions, RenderError> {
    let mut o = FieldOptions::default();
    let known = ["delimiter", "index", "encoding", "create"];
    for (key, value) in keys(f, v, &known, strict)? {
        let sub = f.nested(format_args!(".{key}"));
        match key {
            "delimiter" => o.delimiter = string(&sub, value)?,
            "index" => o.index = integer(&sub, value)?,
            "encoding" => {
                string(&sub, value)?;
            }
            _ => o.create = boolean(&sub, value)?,
        }
    }
    Ok(o)
}

fn integer(f: &Field<'_>, v: &Value) -> Result<i64, RenderError> {
    match v {
        Value::Null => Ok(0),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Ok(i),
            None => match n.as_f64() {
                Some(x) if x.fract() == 0.0 && x.abs() < 1e15 => Ok(x as i64),
                _ => Err(f.invalid("expected a whole number")),
            },
        },
        _ => Err(f.invalid("expected a whole number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field() -> Field<'static> {
        Field {
            path: "k.yaml",
            line: 3,
            name: "replacements[0]".to_string(),
            warnings: Box::leak(Box::default()),
        }
    }

    fn value(text: &str) -> Value {
        parse_documents(text, Schema::Yaml11).expect("yaml")[0]
            .value
            .clone()
    }

    #[test]
    fn reads_inline_entries_strictly() {
        let v = value(
            "source: {kind: ConfigMap, name: cm, fieldPath: data.a, options: {delimiter: '-', index: 1}}\ntargets:\n- select: {kind: Deployment}\n  reject: [{name: x}]\n  fieldPaths: [spec.replicas]\n  options: {create: true}\n",
        );
        let ReplacementEntry::Inline(r) = entry(&field(), &v).expect("valid") else {
            panic!("inline");
        };
        let source = r.source.expect("source");
        assert_eq!(source.id.gvk.kind, "ConfigMap");
        assert_eq!(source.options.index, 1);
        let targets = r.targets.expect("targets");
        assert_eq!(targets[0].reject[0].id.name, "x");
        assert!(targets[0].options.create);
        let err = entry(&field(), &value("source: {kind: A, bogus: 1}\n")).expect_err("strict");
        assert_eq!(
            err.to_string(),
            "k.yaml:3: invalid `replacements[0].source`: unknown field `bogus`"
        );
    }

    #[test]
    fn refuses_a_path_with_an_inline_replacement() {
        let err = entry(&field(), &value("path: r.yaml\nsource: {kind: A}\n")).expect_err("both");
        assert_eq!(
            err.to_string(),
            "k.yaml:3: invalid `replacements[0]`: cannot specify both path and inline replacement"
        );
        let ReplacementEntry::Path(path) = entry(&field(), &value("path: r.yaml\n")).expect("ok")
        else {
            panic!("path");
        };
        assert_eq!(path, "r.yaml");
    }

    #[test]
    fn files_hold_one_replacement_or_a_list_and_may_have_unknown_keys() {
        let one = parse_file("r.yaml", "source: {kind: A, extra: 1}\ntargets: []\n").expect("one");
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].targets.as_ref().map(Vec::len), Some(0));
        let two = parse_file("r.yaml", "- source: {kind: A}\n- source: {kind: B}\n").expect("list");
        assert_eq!(two.len(), 2);
        assert!(parse_file("r.yaml", "just text\n").is_err());
    }
}
