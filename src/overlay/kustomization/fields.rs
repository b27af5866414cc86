//! Readers for the values of kustomization fields: each converts scalars the way kustomize's
//! YAML-to-JSON step converts them and refuses keys kustomize does not know, naming the field.

use std::cell::RefCell;
use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::{
    Behavior, GeneratorArgs, GeneratorOptions, ImageSpec, Label, PatchSpec, Replica, Selector,
    SortOptions, Warning,
};
use crate::overlay::error::RenderError;
use crate::overlay::fieldspec::FieldSpec;
use crate::overlay::yaml::scalar::format_go_float;

/// The error context while reading one field, and where its warnings go.
pub(super) struct Field<'a> {
    pub path: &'a str,
    pub line: usize,
    pub name: String,
    pub warnings: &'a Warnings,
}

/// Warnings collected while reading a kustomization.
pub(super) type Warnings = RefCell<Vec<Warning>>;

impl Field<'_> {
    pub fn invalid(&self, message: impl Into<String>) -> RenderError {
        RenderError::InvalidField {
            path: self.path.to_string(),
            line: self.line,
            field: self.name.clone(),
            message: message.into(),
        }
    }

    pub fn nested(&self, name: impl std::fmt::Display) -> Field<'_> {
        Field {
            path: self.path,
            line: self.line,
            name: format!("{}{name}", self.name),
            warnings: self.warnings,
        }
    }

    /// Records a warning about this field.
    pub fn warn(&self, message: impl Into<String>) {
        self.warnings.borrow_mut().push(Warning {
            path: self.path.to_string(),
            line: self.line,
            message: message.into(),
        });
    }
}

/// A string field: scalars convert as kustomize's YAML-to-JSON step converts them.
pub(super) fn string(f: &Field<'_>, v: &Value) -> Result<String, RenderError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Null => Ok(String::new()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Ok(n.to_string()),
        Value::Number(n) => Ok(format_go_float(n.as_f64().unwrap_or(0.0), 32)),
        _ => Err(f.invalid("expected a string")),
    }
}

pub(super) fn strings(f: &Field<'_>, v: &Value) -> Result<Vec<String>, RenderError> {
    list(f, v, string)
}

pub(super) fn list<T>(
    f: &Field<'_>,
    v: &Value,
    item: impl Fn(&Field<'_>, &Value) -> Result<T, RenderError>,
) -> Result<Vec<T>, RenderError> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| item(&f.nested(format_args!("[{i}]")), v))
            .collect(),
        _ => Err(f.invalid("expected a list")),
    }
}

pub(super) fn object<'v>(
    f: &Field<'_>,
    v: &'v Value,
) -> Result<Option<&'v Map<String, Value>>, RenderError> {
    match v {
        Value::Null => Ok(None),
        Value::Object(map) => Ok(Some(map)),
        _ => Err(f.invalid("expected a mapping")),
    }
}

pub(super) fn string_map(
    f: &Field<'_>,
    v: &Value,
) -> Result<BTreeMap<String, String>, RenderError> {
    let mut out = BTreeMap::new();
    for (key, value) in object(f, v)?.into_iter().flatten() {
        out.insert(
            key.clone(),
            string(&f.nested(format_args!(".{key}")), value)?,
        );
    }
    Ok(out)
}

pub(super) fn boolean(f: &Field<'_>, v: &Value) -> Result<bool, RenderError> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::Null => Ok(false),
        _ => Err(f.invalid("expected true or false")),
    }
}

/// The fields of a nested mapping, refusing keys kustomize does not know. Like kustomize's
/// JSON decoding, a key matches a field in any letter case (with a warning).
pub(super) fn fields<'v, 'k>(
    f: &Field<'_>,
    v: &'v Value,
    known: &[&'k str],
) -> Result<Vec<(&'k str, &'v Value)>, RenderError> {
    let mut out = Vec::new();
    for (key, value) in object(f, v)?.into_iter().flatten() {
        let Some(canonical) = canonical_name(key, known) else {
            return Err(f.invalid(format!("unknown field `{key}`")));
        };
        if canonical != key {
            f.warn(case_warning(&format!("{}.{key}", f.name), canonical));
        }
        out.push((canonical, value));
    }
    Ok(out)
}

/// The field `key` names: the exact one, else one equal in any letter case.
pub(super) fn canonical_name<'k>(key: &str, known: &[&'k str]) -> Option<&'k str> {
    known
        .iter()
        .find(|k| **k == key)
        .or_else(|| known.iter().find(|k| k.eq_ignore_ascii_case(key)))
        .copied()
}

/// The warning for a field name written in another letter case.
pub(super) fn case_warning(written: &str, canonical: &str) -> String {
    format!("`{written}` is read as `{canonical}` (field names should be written `{canonical}`)")
}

pub(super) fn label(f: &Field<'_>, v: &Value) -> Result<Label, RenderError> {
    let mut l = Label::default();
    for (key, value) in fields(
        f,
        v,
        &["pairs", "includeSelectors", "includeTemplates", "fields"],
    )? {
        let sub = f.nested(format_args!(".{}", key));
        match key {
            "pairs" => l.pairs = string_map(&sub, value)?,
            "includeSelectors" => l.include_selectors = boolean(&sub, value)?,
            "includeTemplates" => l.include_templates = boolean(&sub, value)?,
            _ => l.fields = list(&sub, value, field_spec)?,
        }
    }
    Ok(l)
}

pub(super) fn field_spec(f: &Field<'_>, v: &Value) -> Result<FieldSpec, RenderError> {
    let mut spec = FieldSpec::default();
    for (key, value) in fields(f, v, &["path", "create", "group", "version", "kind"])? {
        let sub = f.nested(format_args!(".{}", key));
        match key {
            "path" => spec.path = string(&sub, value)?.into(),
            "create" => spec.create = boolean(&sub, value)?,
            "group" => spec.gvk.group = string(&sub, value)?.into(),
            "version" => spec.gvk.version = string(&sub, value)?.into(),
            _ => spec.gvk.kind = string(&sub, value)?.into(),
        }
    }
    Ok(spec)
}

pub(super) fn selector(f: &Field<'_>, v: &Value) -> Result<Selector, RenderError> {
    let mut s = Selector::default();
    let known = [
        "group",
        "version",
        "kind",
        "name",
        "namespace",
        "labelSelector",
        "annotationSelector",
    ];
    for (key, value) in fields(f, v, &known)? {
        let text = string(&f.nested(format_args!(".{}", key)), value)?;
        match key {
            "group" => s.gvk.group = text.into(),
            "version" => s.gvk.version = text.into(),
            "kind" => s.gvk.kind = text.into(),
            "name" => s.name = text,
            "namespace" => s.namespace = text,
            "labelSelector" => s.label_selector = text,
            _ => s.annotation_selector = text,
        }
    }
    Ok(s)
}

pub(super) fn patch(f: &Field<'_>, v: &Value, legacy: bool) -> Result<PatchSpec, RenderError> {
    let mut p = PatchSpec::default();
    for (key, value) in fields(f, v, &["path", "patch", "target", "options"])? {
        let sub = f.nested(format_args!(".{}", key));
        match key {
            "path" => p.path = string(&sub, value)?,
            "patch" => p.patch = string(&sub, value)?,
            "target" => {
                p.target = object(&sub, value)?
                    .map(|_| selector(&sub, value))
                    .transpose()?
            }
            _ if legacy => return Err(f.invalid("unknown field `options`")),
            _ => {
                for (option, flag) in object(&sub, value)?.into_iter().flatten() {
                    let enabled = boolean(&sub.nested(format_args!(".{option}")), flag)?;
                    match option.as_str() {
                        "allowNameChange" => p.allow_name_change = enabled,
                        "allowKindChange" => p.allow_kind_change = enabled,
                        _ => {}
                    }
                }
            }
        }
    }
    Ok(p)
}

pub(super) fn image(f: &Field<'_>, v: &Value) -> Result<ImageSpec, RenderError> {
    let mut i = ImageSpec::default();
    for (key, value) in fields(f, v, &["name", "newName", "newTag", "digest", "tagSuffix"])? {
        let text = string(&f.nested(format_args!(".{}", key)), value)?;
        match key {
            "name" => i.name = text,
            "newName" => i.new_name = text,
            "newTag" => i.new_tag = text,
            "digest" => i.digest = text,
            _ => i.tag_suffix = text,
        }
    }
    Ok(i)
}

pub(super) fn replica(f: &Field<'_>, v: &Value) -> Result<Replica, RenderError> {
    let mut r = Replica {
        name: String::new(),
        count: 0,
    };
    for (key, value) in fields(f, v, &["name", "count"])? {
        let sub = f.nested(format_args!(".{}", key));
        match key {
            "name" => r.name = string(&sub, value)?,
            _ => {
                r.count = match value.as_f64() {
                    Some(c) if c.fract() == 0.0 => c as i64,
                    _ => return Err(sub.invalid("expected a whole number")),
                }
            }
        }
    }
    Ok(r)
}

/// The fields of a ConfigMap generator, or of a Secret generator (which adds `type`), inline
/// or as a builtin plugin's configuration.
pub(super) fn generator_fields(secret: bool) -> &'static [&'static str] {
    const CONFIG_MAP: &[&str] = &[
        "name",
        "namespace",
        "behavior",
        "literals",
        "files",
        "envs",
        "env",
        "options",
    ];
    const SECRET: &[&str] = &[
        "name",
        "namespace",
        "behavior",
        "literals",
        "files",
        "envs",
        "env",
        "options",
        "type",
    ];
    if secret { SECRET } else { CONFIG_MAP }
}

pub(super) fn generator(
    f: &Field<'_>,
    v: &Value,
    secret: bool,
) -> Result<GeneratorArgs, RenderError> {
    let mut g = GeneratorArgs::default();
    let known = generator_fields(secret);
    let mut env = String::new();
    for (key, value) in fields(f, v, known)? {
        let sub = f.nested(format_args!(".{}", key));
        match key {
            "name" => g.name = string(&sub, value)?,
            "namespace" => g.namespace = string(&sub, value)?,
            "behavior" => g.behavior = behavior(&sub, value)?,
            "literals" => g.literals = strings(&sub, value)?,
            "files" => g.files = strings(&sub, value)?,
            "envs" => g.envs = strings(&sub, value)?,
            "env" => env = string(&sub, value)?,
            "options" => g.options = Some(generator_options(&sub, value)?),
            _ => g.secret_type = string(&sub, value)?,
        }
    }
    if !env.is_empty() {
        g.envs.push(env);
    }
    Ok(g)
}

fn behavior(f: &Field<'_>, v: &Value) -> Result<Behavior, RenderError> {
    match string(f, v)?.as_str() {
        "" | "create" => Ok(Behavior::Create),
        "merge" => Ok(Behavior::Merge),
        "replace" => Ok(Behavior::Replace),
        other => Err(f.invalid(format!(
            "unknown behavior {other:?} (expected create, merge or replace)"
        ))),
    }
}

pub(super) fn generator_options(f: &Field<'_>, v: &Value) -> Result<GeneratorOptions, RenderError> {
    let mut o = GeneratorOptions::default();
    let known = [
        "labels",
        "annotations",
        "disableNameSuffixHash",
        "immutable",
    ];
    for (key, value) in fields(f, v, &known)? {
        let sub = f.nested(format_args!(".{}", key));
        match key {
            "labels" => o.labels = string_map(&sub, value)?,
            "annotations" => o.annotations = string_map(&sub, value)?,
            "disableNameSuffixHash" => o.disable_name_suffix_hash = boolean(&sub, value)?,
            _ => o.immutable = boolean(&sub, value)?,
        }
    }
    Ok(o)
}

pub(super) fn sort_options(f: &Field<'_>, v: &Value) -> Result<SortOptions, RenderError> {
    let mut s = SortOptions::default();
    let mut legacy_options = None;
    let mut order = String::new();
    for (key, value) in fields(f, v, &["order", "legacySortOptions"])? {
        let sub = f.nested(format_args!(".{}", key));
        match key {
            "order" => order = string(&sub, value)?,
            _ => legacy_options = Some((sub.name.clone(), value)),
        }
    }
    match order.as_str() {
        "legacy" => s.fifo = false,
        "fifo" => s.fifo = true,
        _ => return Err(f.nested(".order").invalid("must be one of fifo, legacy")),
    }
    if let Some((name, value)) = legacy_options {
        let sub = Field {
            path: f.path,
            line: f.line,
            name,
            warnings: f.warnings,
        };
        if s.fifo {
            return Err(sub.invalid("is set but the selected sort order is fifo, not legacy"));
        }
        s.order_first = Some(Vec::new());
        s.order_last = Some(Vec::new());
        for (key, value) in fields(&sub, value, &["orderFirst", "orderLast"])? {
            let list = strings(&sub.nested(format_args!(".{}", key)), value)?;
            if key == "orderFirst" {
                s.order_first = Some(list);
            } else {
                s.order_last = Some(list);
            }
        }
    }
    Ok(s)
}
