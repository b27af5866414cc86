//! The kustomization file: read with the YAML 1.1 rules kustomize reads it with (so `newTag:
//! 1.10` is the string `1.1`, as with kustomize), checked for unknown and not-yet-supported
//! fields, and turned into validated types the build works from.

mod fields;
pub mod plugins;
mod replacements;
mod vars;

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::{Map, Value};

use self::fields::{
    Field, Warnings, canonical_name, case_warning, generator, generator_options, image, label,
    list, object, patch, replica, sort_options, string, string_map, strings,
};
use super::error::RenderError;
use super::fieldspec::FieldSpec;
use super::resid::Gvk;
use super::yaml::{Schema, parse_last_key_wins};

pub use self::replacements::{
    FieldOptions, IdSelector, Replacement, ReplacementEntry, Target, TargetSelector,
    parse_file as parse_replacement_file,
};
pub use self::vars::Var;

/// File names kustomize recognises, in the order it looks for them.
pub const FILE_NAMES: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

const UNSUPPORTED: &[&str] = &["helmCharts", "helmGlobals", "helmChartInflationGenerator"];

/// The fields the reader knows (besides those it refuses as not supported).
const FIELDS: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "resources",
    "bases",
    "components",
    "namespace",
    "namePrefix",
    "nameSuffix",
    "commonLabels",
    "commonAnnotations",
    "labels",
    "patches",
    "patchesJson6902",
    "patchesStrategicMerge",
    "images",
    "imageTags",
    "replicas",
    "configMapGenerator",
    "secretGenerator",
    "generatorOptions",
    "sortOptions",
    "generators",
    "transformers",
    "validators",
    "buildMetadata",
    "replacements",
    "vars",
    "configurations",
    "crds",
    "openapi",
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
    /// `generators:`, `transformers:` and `validators:` entries: inline plugin configurations
    /// or paths to files or directories holding them.
    pub generators: Vec<String>,
    pub transformers: Vec<String>,
    pub validators: Vec<String>,
    /// `buildMetadata:` options.
    pub build_metadata: Vec<String>,
    /// The line each top-level field is on.
    pub lines: BTreeMap<String, usize>,
    pub replacements: Vec<ReplacementEntry>,
    pub vars: Vec<Var>,
    /// Transformer configuration files.
    pub configurations: Vec<String>,
    /// OpenAPI definition files of custom kinds.
    pub crds: Vec<String>,
    /// What kustomize accepts but should be fixed, in file order.
    pub warnings: Vec<Warning>,
    /// `openapi:` (`path` of a schema file, or a built-in `version`).
    pub openapi: BTreeMap<String, String>,
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

/// A problem kustomize tolerates in a kustomization, which the reader should fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The kustomization file, relative to the source root.
    pub path: String,
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.path, self.line, self.message)
    }
}

/// Parses the kustomization file at `path` (relative to the source root). What kustomize
/// accepts but should be fixed (a field name in another letter case, a key given twice) is
/// read as kustomize reads it and listed in [`Kustomization::warnings`].
pub fn parse(path: &str, text: &str) -> Result<Kustomization, RenderError> {
    let warnings = Warnings::default();
    let (map, key_lines, start) = top_level(path, text, &warnings)?;
    let line_of = |key: &str| {
        key_lines
            .iter()
            .find(|(k, _)| k == key)
            .map_or(start, |(_, l)| *l)
    };
    let mut k = Kustomization {
        path: path.to_string(),
        ..Kustomization::default()
    };
    for (key, value) in canonical_fields(&map) {
        let name = value.canonical.unwrap_or(key);
        let field = Field {
            path,
            line: line_of(key),
            name: name.to_string(),
            warnings: &warnings,
        };
        if value.canonical.is_some() {
            field.warn(case_warning(key, name));
        }
        k.lines.insert(name.to_string(), line_of(key));
        read_field(&mut k, &field, &value.value)?;
    }
    let kind = Field {
        path,
        line: line_of("kind"),
        name: "kind".into(),
        warnings: &warnings,
    };
    check_kind(&mut k, &map, &kind)?;
    k.warnings = warnings.into_inner();
    Ok(k)
}

/// A top-level value and, when its key is written in another letter case, the field it is.
struct FieldValue<'v> {
    value: Cow<'v, Value>,
    canonical: Option<&'static str>,
}

/// The top-level fields by the names written, each with the field it is when written in
/// another letter case. When two spellings name one field, kustomize decodes both, in the
/// sorted order of their spellings: the later one replaces a list or a scalar and adds its
/// keys to a mapping.
fn canonical_fields(map: &Map<String, Value>) -> Vec<(&str, FieldValue<'_>)> {
    let known: Vec<&'static str> = FIELDS.iter().chain(UNSUPPORTED).copied().collect();
    let mut out: Vec<(&str, FieldValue<'_>)> = Vec::new();
    for (key, value) in map {
        let canonical = canonical_name(key, &known).filter(|c| *c != key);
        let name = canonical.unwrap_or(key);
        let same = out
            .iter()
            .position(|(k, v)| v.canonical.unwrap_or(k).eq_ignore_ascii_case(name));
        let Some(index) = same else {
            let value = Cow::Borrowed(value);
            out.push((key, FieldValue { value, canonical }));
            continue;
        };
        let (earlier, later) = if out[index].0 < key.as_str() {
            (out[index].1.value.as_ref(), value)
        } else {
            (value, out[index].1.value.as_ref())
        };
        let merged = match (earlier, later) {
            (Value::Object(first), Value::Object(second)) => {
                let mut merged = first.clone();
                merged.extend(second.clone());
                Value::Object(merged)
            }
            (_, later) => later.clone(),
        };
        if out[index].0 < key.as_str() {
            out[index] = (
                key,
                FieldValue {
                    value: Cow::Owned(merged),
                    canonical,
                },
            );
        } else {
            out[index].1.value = Cow::Owned(merged);
        }
    }
    out
}

/// The top-level mapping of the file, the line of each of its keys, and its first line.
type TopLevel = (Map<String, Value>, Vec<(String, usize)>, usize);

fn top_level(path: &str, text: &str, warnings: &Warnings) -> Result<TopLevel, RenderError> {
    let problem = |problem: &str| RenderError::Kustomization {
        dir: path.to_string(),
        problem: problem.to_string(),
    };
    let documents = parse_last_key_wins(text, Schema::Yaml11).map_err(|err| RenderError::Yaml {
        path: path.to_string(),
        position: super::error::Position {
            line: err.line,
            column: err.column,
        },
        message: err.message,
    })?;
    let Some(document) = documents.into_iter().find(|d| !d.value.is_null()) else {
        return Err(problem("kustomization is empty"));
    };
    for (key, line) in &document.duplicate_keys {
        warnings.borrow_mut().push(Warning {
            path: path.to_string(),
            line: *line,
            message: format!("duplicate key `{key}`: the last value is used, as kustomize does"),
        });
    }
    let Value::Object(map) = document.value else {
        return Err(problem("a kustomization must be a mapping"));
    };
    if map.keys().all(|key| key == "apiVersion" || key == "kind") {
        return Err(problem("kustomization is empty"));
    }
    Ok((map, document.key_lines, document.line))
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
        "generators" => k.generators = strings(f, v)?,
        "transformers" => k.transformers = strings(f, v)?,
        "validators" => k.validators = strings(f, v)?,
        "buildMetadata" => k.build_metadata = strings(f, v)?,
        "replacements" => k.replacements = list(f, v, replacements::entry)?,
        "vars" => k.vars = list(f, v, vars::var)?,
        "configurations" => k.configurations = strings(f, v)?,
        "crds" => k.crds = strings(f, v)?,
        "openapi" => k.openapi = string_map(f, v)?,
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
        let err = parse("k.yaml", "helmCharts:\n- name: X\n").expect_err("unsupported");
        assert_eq!(err.to_string(), "k.yaml:1: not supported yet: helmCharts");
        let err = parse("k.yaml", "patches:\n- path: p.yaml\n  bogus: 1\n").expect_err("nested");
        assert_eq!(
            err.to_string(),
            "k.yaml:1: invalid `patches[0]`: unknown field `bogus`"
        );
    }

    #[test]
    fn refuses_an_empty_kustomization() {
        let err = parse(
            "k.yaml",
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n",
        )
        .expect_err("empty");
        assert_eq!(err.to_string(), "k.yaml: kustomization is empty");
        assert!(parse("k.yaml", "resources: []\n").is_ok());
    }

    #[test]
    fn checks_kind_and_api_version() {
        let k = parse(
            "k.yaml",
            "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nresources: []\n",
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
