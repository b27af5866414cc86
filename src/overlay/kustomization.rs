//! The kustomization file: read with the YAML 1.1 rules kustomize reads it with (so `newTag:
//! 1.10` is the string `1.1`, as with kustomize), checked for unknown and not-yet-supported
//! fields, and turned into validated types the build works from.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::error::RenderError;
use super::fieldspec::FieldSpec;
use super::resid::Gvk;
use super::yaml::{Schema, parse_documents, scalar::format_go_float};

/// File names kustomize recognises, in the order it looks for them.
pub const FILE_NAMES: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

const UNSUPPORTED: &[&str] = &[
    "openapi",
    "replacements",
    "vars",
    "crds",
    "helmCharts",
    "helmGlobals",
    "helmChartInflationGenerator",
    "configurations",
    "generators",
    "transformers",
    "validators",
    "buildMetadata",
];

/// A parsed, validated kustomization (or component).
#[derive(Debug, Clone, Default)]
pub struct Kustomization {
    /// The kustomization file, relative to the source root.
    pub path: String,
    pub is_component: bool,
    pub resources: Vec<String>,
    pub components: Vec<String>,
    pub namespace: String,
    pub name_prefix: String,
    pub name_suffix: String,
    pub common_labels: BTreeMap<String, String>,
    pub labels: Vec<Label>,
    pub common_annotations: BTreeMap<String, String>,
    pub patches: Vec<PatchSpec>,
    pub patches_strategic_merge: Vec<String>,
    pub patches_json6902: Vec<PatchSpec>,
    pub images: Vec<ImageSpec>,
    pub replicas: Vec<Replica>,
    pub config_map_generator: Vec<GeneratorArgs>,
    pub secret_generator: Vec<GeneratorArgs>,
    pub generator_options: Option<GeneratorOptions>,
    pub sort_options: Option<SortOptions>,
}

/// A `labels:` entry.
#[derive(Debug, Clone, Default)]
pub struct Label {
    pub pairs: BTreeMap<String, String>,
    pub include_selectors: bool,
    pub include_templates: bool,
    pub fields: Vec<FieldSpec>,
}

/// Which resources a patch applies to; every field is a regular expression, empty means any.
#[derive(Debug, Clone, Default)]
pub struct Selector {
    pub gvk: Gvk,
    pub name: String,
    pub namespace: String,
    pub label_selector: String,
    pub annotation_selector: String,
}

/// A `patches:` or `patchesJson6902:` entry.
#[derive(Debug, Clone, Default)]
pub struct PatchSpec {
    pub path: String,
    pub patch: String,
    pub target: Option<Selector>,
    pub allow_name_change: bool,
    pub allow_kind_change: bool,
}

/// An `images:` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageSpec {
    pub name: String,
    pub new_name: String,
    pub new_tag: String,
    pub digest: String,
    pub tag_suffix: String,
}

/// A `replicas:` entry.
#[derive(Debug, Clone)]
pub struct Replica {
    pub name: String,
    pub count: i64,
}

/// How a generated object combines with one of the same name from an earlier layer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Behavior {
    #[default]
    Create,
    Merge,
    Replace,
}

impl Behavior {
    pub fn as_str(self) -> &'static str {
        match self {
            Behavior::Create => "create",
            Behavior::Merge => "merge",
            Behavior::Replace => "replace",
        }
    }
}

/// A `configMapGenerator:` or `secretGenerator:` entry.
#[derive(Debug, Clone, Default)]
pub struct GeneratorArgs {
    pub name: String,
    pub namespace: String,
    pub behavior: Behavior,
    pub literals: Vec<String>,
    pub files: Vec<String>,
    pub envs: Vec<String>,
    pub options: Option<GeneratorOptions>,
    /// The `type` of a generated Secret.
    pub secret_type: String,
}

/// `generatorOptions:` or a generator's `options:`.
#[derive(Debug, Clone, Default)]
pub struct GeneratorOptions {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub disable_name_suffix_hash: bool,
    pub immutable: bool,
}

impl GeneratorOptions {
    /// A generator's own options with the kustomization-wide ones folded in (own keys win).
    pub fn merged(
        local: Option<&GeneratorOptions>,
        global: Option<&GeneratorOptions>,
    ) -> Option<GeneratorOptions> {
        let Some(global) = global else {
            return local.cloned();
        };
        let mut merged = local.cloned().unwrap_or_default();
        for (k, v) in &global.labels {
            merged.labels.entry(k.clone()).or_insert_with(|| v.clone());
        }
        for (k, v) in &global.annotations {
            merged
                .annotations
                .entry(k.clone())
                .or_insert_with(|| v.clone());
        }
        merged.disable_name_suffix_hash |= global.disable_name_suffix_hash;
        merged.immutable |= global.immutable;
        Some(merged)
    }
}

/// `sortOptions:`.
#[derive(Debug, Clone, Default)]
pub struct SortOptions {
    pub fifo: bool,
    pub order_first: Option<Vec<String>>,
    pub order_last: Option<Vec<String>>,
}

/// The error context while reading one field.
struct Field<'a> {
    path: &'a str,
    line: usize,
    name: String,
}

impl Field<'_> {
    fn invalid(&self, message: impl Into<String>) -> RenderError {
        RenderError::InvalidField {
            path: self.path.to_string(),
            line: self.line,
            field: self.name.clone(),
            message: message.into(),
        }
    }

    fn nested(&self, name: impl std::fmt::Display) -> Field<'_> {
        Field {
            path: self.path,
            line: self.line,
            name: format!("{}{name}", self.name),
        }
    }
}

/// Parses the kustomization file at `path` (relative to the source root).
pub fn parse(path: &str, text: &str) -> Result<Kustomization, RenderError> {
    let documents = parse_documents(text, Schema::Yaml11).map_err(|err| RenderError::Yaml {
        path: path.to_string(),
        position: super::error::Position {
            line: err.line,
            column: err.column,
        },
        message: err.message,
    })?;
    let document = documents.into_iter().find(|d| !d.value.is_null());
    let Some(document) = document else {
        return Err(RenderError::Kustomization {
            dir: path.to_string(),
            problem: "kustomization is empty".into(),
        });
    };
    let Value::Object(map) = document.value else {
        return Err(RenderError::Kustomization {
            dir: path.to_string(),
            problem: "a kustomization must be a mapping".into(),
        });
    };
    let line_of = |key: &str| {
        document
            .key_lines
            .iter()
            .find(|(k, _)| k == key)
            .map_or(document.line, |(_, l)| *l)
    };
    let mut k = Kustomization {
        path: path.to_string(),
        ..Kustomization::default()
    };
    for (key, value) in &map {
        let field = Field {
            path,
            line: line_of(key),
            name: key.clone(),
        };
        read_field(&mut k, &field, value)?;
    }
    check_kind(
        &mut k,
        &map,
        &Field {
            path,
            line: line_of("kind"),
            name: "kind".into(),
        },
    )?;
    Ok(k)
}

fn read_field(k: &mut Kustomization, f: &Field<'_>, v: &Value) -> Result<(), RenderError> {
    match f.name.as_str() {
        "apiVersion" | "kind" => {
            string(f, v)?;
        }
        "metadata" => {
            object(f, v)?;
        }
        "resources" | "bases" => k.resources.extend(strings(f, v)?),
        "components" => k.components = strings(f, v)?,
        "namespace" => k.namespace = string(f, v)?,
        "namePrefix" => k.name_prefix = string(f, v)?,
        "nameSuffix" => k.name_suffix = string(f, v)?,
        "commonLabels" => k.common_labels = string_map(f, v)?,
        "commonAnnotations" => k.common_annotations = string_map(f, v)?,
        "labels" => k.labels = list(f, v, label)?,
        "patches" => k.patches = list(f, v, |f, v| patch(f, v, false))?,
        "patchesJson6902" => k.patches_json6902 = list(f, v, |f, v| patch(f, v, true))?,
        "patchesStrategicMerge" => k.patches_strategic_merge = strings(f, v)?,
        "images" | "imageTags" => k.images.extend(list(f, v, image)?),
        "replicas" => k.replicas = list(f, v, replica)?,
        "configMapGenerator" => k.config_map_generator = list(f, v, |f, v| generator(f, v, false))?,
        "secretGenerator" => k.secret_generator = list(f, v, |f, v| generator(f, v, true))?,
        "generatorOptions" => k.generator_options = Some(generator_options(f, v)?),
        "sortOptions" => k.sort_options = Some(sort_options(f, v)?),
        name if UNSUPPORTED.contains(&name) => {
            if !is_empty(v) {
                return Err(RenderError::Unsupported {
                    path: f.path.to_string(),
                    line: f.line,
                    field: name.to_string(),
                });
            }
        }
        name => {
            return Err(RenderError::UnknownField {
                path: f.path.to_string(),
                line: f.line,
                field: name.to_string(),
            });
        }
    }
    Ok(())
}

fn check_kind(
    k: &mut Kustomization,
    map: &Map<String, Value>,
    f: &Field<'_>,
) -> Result<(), RenderError> {
    let kind = map
        .get("kind")
        .map(|v| string(f, v))
        .transpose()?
        .unwrap_or_default();
    let api_version = map
        .get("apiVersion")
        .map(|v| string(f, v))
        .transpose()?
        .unwrap_or_default();
    let required = match kind.as_str() {
        "" | "Kustomization" => "kustomize.config.k8s.io/v1beta1",
        "Component" => "kustomize.config.k8s.io/v1alpha1",
        _ => return Err(f.invalid("kind should be Kustomization or Component")),
    };
    if !api_version.is_empty() && api_version != required {
        let kind = if kind.is_empty() {
            "Kustomization"
        } else {
            kind.as_str()
        };
        return Err(f
            .nested("")
            .invalid(format!("apiVersion for {kind} should be {required}")));
    }
    k.is_component = kind == "Component";
    Ok(())
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

/// A string field: scalars convert as kustomize's YAML-to-JSON step converts them.
fn string(f: &Field<'_>, v: &Value) -> Result<String, RenderError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Null => Ok(String::new()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Ok(n.to_string()),
        Value::Number(n) => Ok(format_go_float(n.as_f64().unwrap_or(0.0), 32)),
        _ => Err(f.invalid("expected a string")),
    }
}

fn strings(f: &Field<'_>, v: &Value) -> Result<Vec<String>, RenderError> {
    list(f, v, string)
}

fn list<T>(
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

fn object<'v>(f: &Field<'_>, v: &'v Value) -> Result<Option<&'v Map<String, Value>>, RenderError> {
    match v {
        Value::Null => Ok(None),
        Value::Object(map) => Ok(Some(map)),
        _ => Err(f.invalid("expected a mapping")),
    }
}

fn string_map(f: &Field<'_>, v: &Value) -> Result<BTreeMap<String, String>, RenderError> {
    let mut out = BTreeMap::new();
    for (key, value) in object(f, v)?.into_iter().flatten() {
        out.insert(
            key.clone(),
            string(&f.nested(format_args!(".{key}")), value)?,
        );
    }
    Ok(out)
}

fn boolean(f: &Field<'_>, v: &Value) -> Result<bool, RenderError> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::Null => Ok(false),
        _ => Err(f.invalid("expected true or false")),
    }
}

/// The fields of a nested mapping, refusing keys kustomize does not know.
fn fields<'v>(
    f: &Field<'_>,
    v: &'v Value,
    known: &[&str],
) -> Result<Vec<(Field<'static>, &'v Value)>, RenderError> {
    let _ = known;
    let map = object(f, v)?;
    let mut out = Vec::new();
    for (key, value) in map.into_iter().flatten() {
        if !known.contains(&key.as_str()) {
            return Err(f.invalid(format!("unknown field `{key}`")));
        }
        out.push((
            Field {
                path: "",
                line: 0,
                name: key.clone(),
            },
            value,
        ));
    }
    Ok(out)
}

fn label(f: &Field<'_>, v: &Value) -> Result<Label, RenderError> {
    let mut l = Label::default();
    for (key, value) in fields(
        f,
        v,
        &["pairs", "includeSelectors", "includeTemplates", "fields"],
    )? {
        let sub = f.nested(format_args!(".{}", key.name));
        match key.name.as_str() {
            "pairs" => l.pairs = string_map(&sub, value)?,
            "includeSelectors" => l.include_selectors = boolean(&sub, value)?,
            "includeTemplates" => l.include_templates = boolean(&sub, value)?,
            _ => l.fields = list(&sub, value, field_spec)?,
        }
    }
    Ok(l)
}

fn field_spec(f: &Field<'_>, v: &Value) -> Result<FieldSpec, RenderError> {
    let mut spec = FieldSpec::default();
    for (key, value) in fields(f, v, &["path", "create", "group", "version", "kind"])? {
        let sub = f.nested(format_args!(".{}", key.name));
        match key.name.as_str() {
            "path" => spec.path = string(&sub, value)?,
            "create" => spec.create = boolean(&sub, value)?,
            "group" => spec.gvk.group = string(&sub, value)?,
            "version" => spec.gvk.version = string(&sub, value)?,
            _ => spec.gvk.kind = string(&sub, value)?,
        }
    }
    Ok(spec)
}

fn selector(f: &Field<'_>, v: &Value) -> Result<Selector, RenderError> {
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
        let text = string(&f.nested(format_args!(".{}", key.name)), value)?;
        match key.name.as_str() {
            "group" => s.gvk.group = text,
            "version" => s.gvk.version = text,
            "kind" => s.gvk.kind = text,
            "name" => s.name = text,
            "namespace" => s.namespace = text,
            "labelSelector" => s.label_selector = text,
            _ => s.annotation_selector = text,
        }
    }
    Ok(s)
}

fn patch(f: &Field<'_>, v: &Value, legacy: bool) -> Result<PatchSpec, RenderError> {
    let mut p = PatchSpec::default();
    for (key, value) in fields(f, v, &["path", "patch", "target", "options"])? {
        let sub = f.nested(format_args!(".{}", key.name));
        match key.name.as_str() {
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

fn image(f: &Field<'_>, v: &Value) -> Result<ImageSpec, RenderError> {
    let mut i = ImageSpec::default();
    for (key, value) in fields(f, v, &["name", "newName", "newTag", "digest", "tagSuffix"])? {
        let text = string(&f.nested(format_args!(".{}", key.name)), value)?;
        match key.name.as_str() {
            "name" => i.name = text,
            "newName" => i.new_name = text,
            "newTag" => i.new_tag = text,
            "digest" => i.digest = text,
            _ => i.tag_suffix = text,
        }
    }
    Ok(i)
}

fn replica(f: &Field<'_>, v: &Value) -> Result<Replica, RenderError> {
    let mut r = Replica {
        name: String::new(),
        count: 0,
    };
    for (key, value) in fields(f, v, &["name", "count"])? {
        let sub = f.nested(format_args!(".{}", key.name));
        match key.name.as_str() {
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

fn generator(f: &Field<'_>, v: &Value, secret: bool) -> Result<GeneratorArgs, RenderError> {
    let mut g = GeneratorArgs::default();
    let known: &[&str] = if secret {
        &[
            "name",
            "namespace",
            "behavior",
            "literals",
            "files",
            "envs",
            "env",
            "options",
            "type",
        ]
    } else {
        &[
            "name",
            "namespace",
            "behavior",
            "literals",
            "files",
            "envs",
            "env",
            "options",
        ]
    };
    let mut env = String::new();
    for (key, value) in fields(f, v, known)? {
        let sub = f.nested(format_args!(".{}", key.name));
        match key.name.as_str() {
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

fn generator_options(f: &Field<'_>, v: &Value) -> Result<GeneratorOptions, RenderError> {
    let mut o = GeneratorOptions::default();
    let known = [
        "labels",
        "annotations",
        "disableNameSuffixHash",
        "immutable",
    ];
    for (key, value) in fields(f, v, &known)? {
        let sub = f.nested(format_args!(".{}", key.name));
        match key.name.as_str() {
            "labels" => o.labels = string_map(&sub, value)?,
            "annotations" => o.annotations = string_map(&sub, value)?,
            "disableNameSuffixHash" => o.disable_name_suffix_hash = boolean(&sub, value)?,
            _ => o.immutable = boolean(&sub, value)?,
        }
    }
    Ok(o)
}

fn sort_options(f: &Field<'_>, v: &Value) -> Result<SortOptions, RenderError> {
    let mut s = SortOptions::default();
    let mut legacy_options = None;
    for (key, value) in fields(f, v, &["order", "legacySortOptions"])? {
        let sub = f.nested(format_args!(".{}", key.name));
        match key.name.as_str() {
            "order" => match string(&sub, value)?.as_str() {
                "legacy" => s.fifo = false,
                "fifo" => s.fifo = true,
                _ => return Err(sub.invalid("must be one of fifo, legacy")),
            },
            _ => legacy_options = Some((sub.name.clone(), value)),
        }
    }
    if let Some((name, value)) = legacy_options {
        let sub = Field {
            path: f.path,
            line: f.line,
            name,
        };
        if s.fifo {
            return Err(sub.invalid("is set but the selected sort order is fifo, not legacy"));
        }
        s.order_first = Some(Vec::new());
        s.order_last = Some(Vec::new());
        for (key, value) in fields(&sub, value, &["orderFirst", "orderLast"])? {
            let list = strings(&sub.nested(format_args!(".{}", key.name)), value)?;
            if key.name == "orderFirst" {
                s.order_first = Some(list);
            } else {
                s.order_last = Some(list);
            }
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_with_kustomize_conversions() {
        let k = parse(
            "k.yaml",
            "namePrefix: p-\ncommonLabels: {env: yes, v: 1.10}\nimages:\n- {name: app, newTag: 1.0}\nbases: [../base]\n",
        )
        .expect("valid kustomization");
        assert_eq!(k.name_prefix, "p-");
        assert_eq!(k.common_labels["env"], "true");
        assert_eq!(k.common_labels["v"], "1.1");
        assert_eq!(k.images[0].new_tag, "1");
        assert_eq!(k.resources, ["../base"]);
    }

    #[test]
    fn refuses_unknown_and_unsupported_fields_with_their_line() {
        let err = parse("k.yaml", "resources: []\nfoo: 1\n").expect_err("unknown");
        assert_eq!(err.to_string(), "k.yaml:2: unknown field `foo`");
        let err = parse("k.yaml", "vars:\n- name: X\n").expect_err("unsupported");
        assert_eq!(err.to_string(), "k.yaml:1: not supported yet: vars");
        let err = parse("k.yaml", "patches:\n- path: p.yaml\n  bogus: 1\n").expect_err("nested");
        assert_eq!(
            err.to_string(),
            "k.yaml:1: invalid `patches[0]`: unknown field `bogus`"
        );
    }

    #[test]
    fn checks_kind_and_api_version() {
        let k = parse(
            "k.yaml",
            "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n",
        )
        .expect("component");
        assert!(k.is_component);
        assert!(
            parse(
                "k.yaml",
                "kind: Component\napiVersion: kustomize.config.k8s.io/v1beta1\n"
            )
            .is_err()
        );
    }
}
