//! `buildMetadata:`: where each object came from (`config.kubernetes.io/origin`), which
//! transformers changed it (`alpha.config.kubernetes.io/transformations`) and the
//! `app.kubernetes.io/managed-by` label, recorded as kustomize records them. Only the outermost
//! kustomization's `buildMetadata` counts; while any option is set, origins and transformations
//! are tracked through every layer and the ones not asked for are removed at the end.

use std::collections::BTreeMap;

use serde_json::Value;

use super::kustomization::Kustomization;
use super::resmap::ResMap;
use super::resource::Resource;
use super::transform;

/// The annotation holding an object's origin.
pub const ORIGIN: &str = "config.kubernetes.io/origin";
/// The annotation listing the transformers that changed an object.
pub const TRANSFORMATIONS: &str = "alpha.config.kubernetes.io/transformations";
/// The label `managedByLabel` sets.
const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// Its value: what `kubectl kustomize` (kustomize built into kubectl) writes.
const MANAGED_BY_VALUE: &str = "kustomize-(devel)";

/// The options of `buildMetadata:`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    pub origin_annotations: bool,
    pub transformer_annotations: bool,
    pub managed_by_label: bool,
}

impl Options {
    /// The options of the outermost kustomization (unknown names are ignored, as in kustomize).
    pub fn of(k: &Kustomization) -> Options {
        let has = |name: &str| k.build_metadata.iter().any(|option| option == name);
        Options {
            origin_annotations: has("originAnnotations"),
            transformer_annotations: has("transformerAnnotations"),
            managed_by_label: has("managedByLabel"),
        }
    }

    /// Whether origins are tracked during the build (any option at all, as in kustomize).
    pub fn tracks(&self) -> bool {
        self.origin_annotations || self.transformer_annotations || self.managed_by_label
    }
}

/// Where a file or kustomization is, relative to the outermost kustomization's directory (and,
/// for remote bases, in which repository at which ref).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    pub path: String,
    pub repo: String,
    pub reference: String,
}

impl Origin {
    /// The origin of `entry`, a path relative to this one.
    pub fn join(&self, entry: &str) -> Origin {
        Origin {
            path: join_clean(&self.path, entry),
            ..self.clone()
        }
    }

    /// The origin recorded in an object's origin annotation (as written by this module).
    pub fn of_resource(resource: &Resource) -> Option<Origin> {
        let text = resource.annotation(ORIGIN)?;
        let mut origin = Origin::default();
        for line in text.lines() {
            let Some((key, value)) = line.split_once(": ") else {
                continue;
            };
            let value = serde_json::from_str::<String>(value).unwrap_or_else(|_| value.to_string());
            match key {
                "path" => origin.path = value,
                "repo" => origin.repo = value,
                "ref" => origin.reference = value,
                _ => {}
            }
        }
        Some(origin)
    }

    /// The annotation text for an object read from this file.
    fn file_annotation(&self) -> String {
        let mut fields = Vec::new();
        push_field(&mut fields, "path", &self.path);
        push_field(&mut fields, "repo", &self.repo);
        push_field(&mut fields, "ref", &self.reference);
        yaml_fields(&fields, "")
    }
}

/// A generator or transformer: the kustomization (or plugin configuration file) that
/// configured it, and what it is.
#[derive(Debug, Clone, Default)]
pub struct Configured {
    pub configured_in: Origin,
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub namespace: String,
}

impl Configured {
    /// A built-in generator or transformer configured by the kustomization `file` at `at`.
    pub fn builtin(at: &Origin, file: &str, kind: &str) -> Configured {
        Configured {
            configured_in: at.join(file),
            api_version: "builtin".to_string(),
            kind: kind.to_string(),
            ..Configured::default()
        }
    }

    /// A plugin configured by the object `config`, whose own origin is `at`.
    pub fn plugin(at: &Origin, config: &Value) -> Configured {
        let text = |value: Option<&Value>| value.and_then(Value::as_str).unwrap_or("").to_string();
        let metadata = config.get("metadata");
        Configured {
            configured_in: at.clone(),
            api_version: text(config.get("apiVersion")),
            kind: text(config.get("kind")),
            name: text(metadata.and_then(|m| m.get("name"))),
            namespace: text(metadata.and_then(|m| m.get("namespace"))),
        }
    }

    /// The YAML mapping kustomize writes for this origin, each line after the first indented
    /// by `indent`.
    fn yaml(&self, indent: &str) -> String {
        let mut fields = Vec::new();
        push_field(&mut fields, "repo", &self.configured_in.repo);
        push_field(&mut fields, "ref", &self.configured_in.reference);
        push_field(&mut fields, "configuredIn", &self.configured_in.path);
        let mut text = yaml_fields(&fields, indent);
        text.push_str(&format!("{indent}configuredBy:\n"));
        let mut by = Vec::new();
        push_field(&mut by, "apiVersion", &self.api_version);
        push_field(&mut by, "kind", &self.kind);
        push_field(&mut by, "name", &self.name);
        push_field(&mut by, "namespace", &self.namespace);
        text.push_str(&yaml_fields(&by, &format!("{indent}  ")));
        text
    }
}

fn push_field<'a>(fields: &mut Vec<(&'a str, &'a str)>, key: &'a str, value: &'a str) {
    if !value.is_empty() {
        fields.push((key, value));
    }
}

fn yaml_fields(fields: &[(&str, &str)], indent: &str) -> String {
    fields
        .iter()
        .map(|(key, value)| format!("{indent}{key}: {}\n", yaml_scalar(value)))
        .collect()
}

/// A string as kyaml writes it in a block mapping: plain when that reads back as the same
/// string, else double-quoted.
fn yaml_scalar(value: &str) -> String {
    let plain = !value.is_empty()
        && !value.starts_with(|c: char| "-?:,[]{}#&*!|>'\"%@`~ ".contains(c))
        && !value.ends_with(' ')
        && !value.contains(": ")
        && !value.contains(" #")
        && !matches!(
            value,
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "~"
        )
        && value.parse::<f64>().is_err();
    if plain {
        value.to_string()
    } else {
        serde_json::to_string(value).expect("a string serializes")
    }
}

/// `dir/entry` cleaned as Go's `filepath.Join` cleans it (leading `..` kept).
fn join_clean(dir: &str, entry: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for piece in dir.split('/').chain(entry.split('/')) {
        match piece {
            "" | "." => {}
            ".." if parts.last().is_some_and(|last| *last != "..") => {
                parts.pop();
            }
            piece => parts.push(piece),
        }
    }
    parts.join("/")
}

/// Marks every object read from the file at `origin` with it.
pub fn annotate_file(resources: &mut ResMap, origin: &Origin) {
    let text = origin.file_annotation();
    for resource in resources.iter_mut() {
        resource.set_annotation(ORIGIN, &text);
    }
}

/// Gives generated objects that have no origin yet the generator's.
pub fn annotate_generated(resource: &mut Resource, by: &Configured) {
    if resource.annotation(ORIGIN).is_none() {
        resource.set_annotation(ORIGIN, &by.yaml(""));
    }
}

/// Records that the transformer `by` ran over every object: objects with no origin take it
/// as their origin, the others list it among their transformations.
pub fn record_transformation(resources: &mut ResMap, by: &Configured) {
    for resource in resources.iter_mut() {
        if resource.annotation(ORIGIN).is_none() {
            resource.set_annotation(ORIGIN, &by.yaml(""));
            continue;
        }
        let mut list = resource
            .annotation(TRANSFORMATIONS)
            .unwrap_or("")
            .to_string();
        let entry = by.yaml("  ");
        list.push_str("- ");
        list.push_str(entry.trim_start());
        resource.set_annotation(TRANSFORMATIONS, &list);
    }
}

/// The final steps at the outermost kustomization: the managed-by label, then the annotations
/// kustomize keeps only when asked.
pub fn finish(resources: &mut ResMap, options: Options) -> Result<(), String> {
    if options.managed_by_label {
        let pairs = BTreeMap::from([(MANAGED_BY.to_string(), MANAGED_BY_VALUE.to_string())]);
        let spec = super::fieldspec::FieldSpec::new("", "", "", "metadata/labels", true);
        transform::set_pairs(resources, &pairs, std::slice::from_ref(&spec))?;
    }
    for resource in resources.iter_mut() {
        let Some(Value::Object(metadata)) = resource.value.get_mut("metadata") else {
            continue;
        };
        let Some(Value::Object(annotations)) = metadata.get_mut("annotations") else {
            continue;
        };
        if !options.origin_annotations {
            annotations.remove(ORIGIN);
        }
        if !options.transformer_annotations {
            annotations.remove(TRANSFORMATIONS);
        }
        if annotations.is_empty() {
            metadata.remove("annotations");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_origins_like_filepath_join() {
        let top = Origin::default();
        assert_eq!(top.join("overlay").join("../base").path, "base");
        assert_eq!(
            top.join("../base").join("deploy.yaml").path,
            "../base/deploy.yaml"
        );
        assert_eq!(top.join("./a/./b.yaml").path, "a/b.yaml");
    }

    #[test]
    fn writes_origins_as_kustomize_does() {
        let origin = Origin::default().join("cm.yaml");
        assert_eq!(origin.file_annotation(), "path: cm.yaml\n");
        let by = Configured::builtin(&Origin::default().join("base"), "kustomization.yaml", "X");
        assert_eq!(
            by.yaml(""),
            "configuredIn: base/kustomization.yaml\nconfiguredBy:\n  apiVersion: builtin\n  kind: X\n"
        );
    }
}
