//! The configurations of kustomize's built-in plugins (`apiVersion: builtin`), as listed under
//! `generators:`, `transformers:` and `validators:`: each is read into a validated
//! [`PluginConfig`]. Like kustomize, keys a plugin does not know are ignored; external (exec or
//! container) plugins are refused, as kustomize refuses them without its alpha flags.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::fields::{
    Field, Warnings, boolean, field_spec, generator, generator_fields, image, list, object, patch,
    replica, selector, string, string_map, strings,
};
use super::replacements::{self, ReplacementEntry};
use super::{GeneratorArgs, ImageSpec, PatchSpec, Replica, Selector};
use crate::overlay::error::RenderError;
use crate::overlay::fieldspec::FieldSpec;

/// The `apiVersion` of kustomize's built-in plugins.
pub const BUILTIN: &str = "builtin";

/// Which RoleBinding subjects a NamespaceTransformer gives the namespace.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SubjectMode {
    /// Subjects named `default` (kustomize's default).
    #[default]
    DefaultOnly,
    /// Every ServiceAccount subject.
    AllServiceAccounts,
    /// None.
    None,
}

/// A NamespaceTransformer's settings.
#[derive(Debug, Clone, Default)]
pub struct NamespaceConfig {
    pub namespace: String,
    pub specs: Vec<FieldSpec>,
    pub unset_only: bool,
    pub subjects: SubjectMode,
}

/// An IAMPolicyGenerator's settings (only `cloud: gke` exists in kustomize).
#[derive(Debug, Clone, Default)]
pub struct IamPolicy {
    /// The Kubernetes ServiceAccount to generate.
    pub name: String,
    pub namespace: String,
    /// The cloud service account it is bound to, and its project.
    pub service_account: String,
    pub project_id: String,
}

/// One built-in plugin and its configuration.
#[derive(Debug, Clone)]
pub enum PluginConfig {
    ConfigMapGenerator(GeneratorArgs),
    SecretGenerator(GeneratorArgs),
    Annotations {
        pairs: BTreeMap<String, String>,
        specs: Vec<FieldSpec>,
    },
    Labels {
        pairs: BTreeMap<String, String>,
        specs: Vec<FieldSpec>,
    },
    Hash,
    ImageTag {
        image: ImageSpec,
        specs: Vec<FieldSpec>,
    },
    Namespace(NamespaceConfig),
    Patch(PatchSpec),
    PatchJson6902 {
        target: Selector,
        path: String,
        json_op: String,
    },
    PatchStrategicMerge {
        paths: Vec<String>,
        patches: String,
    },
    /// PrefixTransformer, SuffixTransformer and PrefixSuffixTransformer (both, prefix first).
    PrefixSuffix {
        prefix: Option<String>,
        suffix: Option<String>,
        specs: Vec<FieldSpec>,
    },
    ReplicaCount {
        replica: Replica,
        specs: Vec<FieldSpec>,
    },
    /// An IAMPolicyGenerator: a GKE workload-identity ServiceAccount.
    IamPolicy(IamPolicy),
    /// A ReplacementTransformer: its `replacements:`, inline or by path.
    Replacement(Vec<ReplacementEntry>),
    /// A ValueAddTransformer: `value` (empty: the kustomization directory's name) into the
    /// fields of `targets` and of the targets listed in `target_file`.
    ValueAdd {
        value: String,
        targets: Vec<ValueTarget>,
        target_file: String,
    },
}

/// Where a ValueAddTransformer writes its value.
#[derive(Debug, Clone, Default)]
pub struct ValueTarget {
    /// Which objects; `None`: all.
    pub selector: Option<Selector>,
    /// `/`-separated, `\/` for a slash in a key.
    pub field_path: String,
    /// When positive, the value is inserted into the field's file path before its part
    /// number `file_path_position` (1 first).
    pub file_path_position: i64,
}

/// Why a plugin configuration could not be used, before the file and line are added.
#[derive(Debug)]
pub enum PluginProblem {
    /// Not an `apiVersion: builtin` plugin.
    External(String),
    /// A built-in kind kustomize does not have.
    UnknownBuiltin(String),
    /// A built-in the renderer does not support.
    Unsupported(String),
}

/// Reads the configuration of the plugin `config` (one document) found in `path` at `line`.
pub fn parse(path: &str, line: usize, config: &Value) -> Result<PluginConfig, RenderError> {
    let kind = config.get("kind").and_then(Value::as_str).unwrap_or("");
    let api_version = config
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let problem = |problem: PluginProblem| plugin_error(path, line, problem);
    if api_version != BUILTIN {
        return Err(problem(PluginProblem::External(kind.to_string())));
    }
    let warnings = Warnings::default();
    let f = Field {
        path,
        line,
        name: kind.to_string(),
        warnings: &warnings,
    };
    let Some(map) = object(&f, config)? else {
        return Err(f.invalid("expected a mapping"));
    };
    let get = |key: &str| map.get(key).unwrap_or(&Value::Null);
    let at = |key: &str| f.nested(format_args!(".{key}"));
    let specs = || list(&at("fieldSpecs"), get("fieldSpecs"), field_spec);
    let config = match kind {
        "ConfigMapGenerator" | "SecretGenerator" => generator_config(&f, map, kind)?,
        "AnnotationsTransformer" => PluginConfig::Annotations {
            pairs: string_map(&at("annotations"), get("annotations"))?,
            specs: specs()?,
        },
        "LabelTransformer" => PluginConfig::Labels {
            pairs: string_map(&at("labels"), get("labels"))?,
            specs: specs()?,
        },
        "HashTransformer" => PluginConfig::Hash,
        "ImageTagTransformer" => PluginConfig::ImageTag {
            image: match get("imageTag") {
                Value::Null => ImageSpec::default(),
                value => image(&at("imageTag"), value)?,
            },
            specs: specs()?,
        },
        "NamespaceTransformer" => PluginConfig::Namespace(namespace_config(&f, map)?),
        "PatchTransformer" => {
            let known = only(map, &["path", "patch", "target", "options"]);
            PluginConfig::Patch(patch(&f, &known, false)?)
        }
        "PatchJson6902Transformer" => json6902_config(&f, map)?,
        "PatchStrategicMergeTransformer" => {
            let config = PluginConfig::PatchStrategicMerge {
                paths: strings(&at("paths"), get("paths"))?,
                patches: string(&at("patches"), get("patches"))?,
            };
            if let PluginConfig::PatchStrategicMerge { paths, patches } = &config
                && paths.is_empty()
                && patches.is_empty()
            {
                return Err(f.invalid("empty file path and empty patch content"));
            }
            config
        }
        "PrefixTransformer" | "SuffixTransformer" | "PrefixSuffixTransformer" => {
            if get("fieldSpecs").is_null() {
                return Err(f.invalid("fieldSpecs is not expected to be nil"));
            }
            let text = |key: &str| string(&at(key), get(key));
            PluginConfig::PrefixSuffix {
                prefix: (kind != "SuffixTransformer")
                    .then(|| text("prefix"))
                    .transpose()?,
                suffix: (kind != "PrefixTransformer")
                    .then(|| text("suffix"))
                    .transpose()?,
                specs: specs()?,
            }
        }
        "ReplicaCountTransformer" => PluginConfig::ReplicaCount {
            replica: match get("replica") {
                Value::Null => Replica {
                    name: String::new(),
                    count: 0,
                },
                value => replica(&at("replica"), value)?,
            },
            specs: specs()?,
        },
        "ReplacementTransformer" => PluginConfig::Replacement(replacements::plugin_entries(
            &at("replacements"),
            get("replacements"),
        )?),
        "IAMPolicyGenerator" => PluginConfig::IamPolicy(iam_policy_config(&f, map)?),
        "ValueAddTransformer" => PluginConfig::ValueAdd {
            value: string(&at("value"), get("value"))?.trim().to_string(),
            targets: value_targets(&at("targets"), get("targets"))?,
            target_file: string(&at("targetFilePath"), get("targetFilePath"))?,
        },
        "HelmChartInflationGenerator" => {
            return Err(problem(PluginProblem::Unsupported(kind.to_string())));
        }
        _ => return Err(problem(PluginProblem::UnknownBuiltin(kind.to_string()))),
    };
    Ok(config)
}

/// The `targets:` of a ValueAddTransformer; keys it does not know are ignored, as kustomize
/// ignores them.
fn value_targets(f: &Field<'_>, v: &Value) -> Result<Vec<ValueTarget>, RenderError> {
    list(f, v, |f, v| {
        let Some(map) = object(f, v)? else {
            return Ok(ValueTarget::default());
        };
        let get = |key: &str| map.get(key).unwrap_or(&Value::Null);
        let at = |key: &str| f.nested(format_args!(".{key}"));
        let selector = match get("selector") {
            Value::Null => None,
            Value::Object(fields) => {
                let known = [
                    "group",
                    "version",
                    "kind",
                    "name",
                    "namespace",
                    "labelSelector",
                    "annotationSelector",
                ];
                Some(selector(&at("selector"), &only(fields, &known))?)
            }
            _ => return Err(at("selector").invalid("expected a mapping")),
        };
        let position = match get("filePathPosition") {
            Value::Null => 0,
            Value::Number(n) if n.is_i64() => n.as_i64().unwrap_or(0),
            _ => return Err(at("filePathPosition").invalid("expected a whole number")),
        };
        Ok(ValueTarget {
            selector,
            field_path: string(&at("fieldPath"), get("fieldPath"))?,
            file_path_position: position,
        })
    })
}

/// The `targets:` of a ValueAddTransformer's `targetFilePath` file.
pub fn parse_value_targets_file(path: &str, text: &str) -> Result<Vec<ValueTarget>, RenderError> {
    let documents =
        crate::overlay::yaml::parse_documents(text, crate::overlay::yaml::Schema::Yaml11).map_err(
            |err| RenderError::Yaml {
                path: path.to_string(),
                position: crate::overlay::error::Position {
                    line: err.line,
                    column: err.column,
                },
                message: err.message,
            },
        )?;
    let Some(document) = documents.into_iter().next() else {
        return Ok(Vec::new());
    };
    let warnings = Warnings::default();
    let f = Field {
        path,
        line: document.line,
        name: "targets".to_string(),
        warnings: &warnings,
    };
    match document.value {
        Value::Null => Ok(Vec::new()),
        Value::Object(map) => value_targets(&f, map.get("targets").unwrap_or(&Value::Null)),
        _ => Err(f.invalid("expected a mapping with `targets:`")),
    }
}

fn plugin_error(path: &str, line: usize, problem: PluginProblem) -> RenderError {
    match problem {
        PluginProblem::External(kind) => RenderError::InvalidField {
            path: path.to_string(),
            line,
            field: kind,
            message: "external plugins are not supported (only `apiVersion: builtin` \
                      plugins are; kustomize too refuses exec and container plugins \
                      without its alpha flags)"
                .to_string(),
        },
        PluginProblem::UnknownBuiltin(kind) => RenderError::InvalidField {
            path: path.to_string(),
            line,
            field: kind.clone(),
            message: format!("kustomize has no builtin plugin {kind:?}"),
        },
        PluginProblem::Unsupported(kind) => RenderError::Unsupported {
            path: path.to_string(),
            line,
            field: format!("builtin plugin {kind}"),
        },
    }
}

/// The entries of `map` whose keys are in `keys` (kustomize ignores the others).
fn only(map: &Map<String, Value>, keys: &[&str]) -> Value {
    Value::Object(
        map.iter()
            .filter(|(key, _)| keys.contains(&key.as_str()))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect(),
    )
}

fn metadata_text(map: &Map<String, Value>, key: &str) -> String {
    map.get("metadata")
        .and_then(|m| m.get(key))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

fn generator_config(
    f: &Field<'_>,
    map: &Map<String, Value>,
    kind: &str,
) -> Result<PluginConfig, RenderError> {
    let secret = kind == "SecretGenerator";
    let mut args = generator(f, &only(map, generator_fields(secret)), secret)?;
    if args.name.is_empty() {
        args.name = metadata_text(map, "name");
    }
    if args.namespace.is_empty() {
        args.namespace = metadata_text(map, "namespace");
    }
    Ok(if secret {
        PluginConfig::SecretGenerator(args)
    } else {
        PluginConfig::ConfigMapGenerator(args)
    })
}

fn namespace_config(
    f: &Field<'_>,
    map: &Map<String, Value>,
) -> Result<NamespaceConfig, RenderError> {
    let get = |key: &str| map.get(key).unwrap_or(&Value::Null);
    let at = |key: &str| f.nested(format_args!(".{key}"));
    let subjects =
        match string(&at("setRoleBindingSubjects"), get("setRoleBindingSubjects"))?.as_str() {
            "" | "defaultOnly" => SubjectMode::DefaultOnly,
            "allServiceAccounts" => SubjectMode::AllServiceAccounts,
            "none" => SubjectMode::None,
            other => {
                return Err(at("setRoleBindingSubjects").invalid(format!(
                    "invalid value {other:?}: must be one of \"defaultOnly\", \"none\" or \
                 \"allServiceAccounts\""
                )));
            }
        };
    Ok(NamespaceConfig {
        namespace: metadata_text(map, "namespace"),
        specs: list(&at("fieldSpecs"), get("fieldSpecs"), field_spec)?,
        unset_only: boolean(&at("unsetOnly"), get("unsetOnly"))?,
        subjects,
    })
}

fn iam_policy_config(f: &Field<'_>, map: &Map<String, Value>) -> Result<IamPolicy, RenderError> {
    let get = |key: &str| map.get(key).unwrap_or(&Value::Null);
    let cloud = string(&f.nested(".cloud"), get("cloud"))?;
    if cloud != "gke" {
        return Err(f.invalid(format!(
            "cloud provider {cloud:?}: kustomize generates for `gke` only"
        )));
    }
    let text = |parent: &str, key: &str| {
        let value = get(parent).get(key).unwrap_or(&Value::Null);
        string(&f.nested(format_args!(".{parent}.{key}")), value)
    };
    Ok(IamPolicy {
        name: text("kubernetesService", "name")?,
        namespace: text("kubernetesService", "namespace")?,
        service_account: text("serviceAccount", "name")?,
        project_id: text("serviceAccount", "projectId")?,
    })
}

fn json6902_config(f: &Field<'_>, map: &Map<String, Value>) -> Result<PluginConfig, RenderError> {
    let get = |key: &str| map.get(key).unwrap_or(&Value::Null);
    let at = |key: &str| f.nested(format_args!(".{key}"));
    let target = match get("target") {
        Value::Null => Selector::default(),
        value => selector(&at("target"), value)?,
    };
    if target.name.is_empty() {
        return Err(f.invalid("must specify the target name"));
    }
    let path = string(&at("path"), get("path"))?;
    let json_op = string(&at("jsonOp"), get("jsonOp"))?;
    match (path.is_empty(), json_op.is_empty()) {
        (true, true) => Err(f.invalid("empty file path and empty jsonOp")),
        (false, false) => Err(f.invalid("must specify a file path or jsonOp, not both")),
        _ => Ok(PluginConfig::PatchJson6902 {
            target,
            path,
            json_op,
        }),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_a_label_transformer_and_ignores_unknown_keys() {
        let config = parse(
            "t.yaml",
            1,
            &json!({"apiVersion": "builtin", "kind": "LabelTransformer",
                "metadata": {"name": "x"}, "labels": {"app": "web", "n": 1},
                "fieldSpecs": [{"path": "metadata/labels", "create": true}], "bogus": 1}),
        )
        .expect("valid");
        let PluginConfig::Labels { pairs, specs } = config else {
            panic!("not a label transformer: {config:?}");
        };
        assert_eq!(pairs["app"], "web");
        assert_eq!(pairs["n"], "1");
        assert_eq!(specs.len(), 1);
        assert!(specs[0].create);
    }

    #[test]
    fn generators_take_their_name_from_metadata() {
        let config = parse(
            "g.yaml",
            3,
            &json!({"apiVersion": "builtin", "kind": "SecretGenerator",
                "metadata": {"name": "creds", "namespace": "ops"}, "literals": ["a=b"],
                "type": "Opaque"}),
        )
        .expect("valid");
        let PluginConfig::SecretGenerator(args) = config else {
            panic!("not a secret generator: {config:?}");
        };
        assert_eq!(args.name, "creds");
        assert_eq!(args.namespace, "ops");
        assert_eq!(args.secret_type, "Opaque");
    }

    #[test]
    fn refuses_external_and_unknown_plugins_naming_the_file() {
        let external = json!({"apiVersion": "example.com/v1", "kind": "Inflator"});
        let err = parse("t.yaml", 4, &external).expect_err("external");
        assert_eq!(
            err.to_string(),
            "t.yaml:4: invalid `Inflator`: external plugins are not supported (only \
             `apiVersion: builtin` plugins are; kustomize too refuses exec and container \
             plugins without its alpha flags)"
        );
        let unknown = json!({"apiVersion": "builtin", "kind": "Bogus"});
        let err = parse("t.yaml", 1, &unknown).expect_err("unknown");
        assert_eq!(
            err.to_string(),
            "t.yaml:1: invalid `Bogus`: kustomize has no builtin plugin \"Bogus\""
        );
    }

    #[test]
    fn prefix_transformers_need_field_specs() {
        let config = json!({"apiVersion": "builtin", "kind": "PrefixTransformer", "prefix": "a-"});
        let err = parse("t.yaml", 1, &config).expect_err("no field specs");
        assert_eq!(
            err.to_string(),
            "t.yaml:1: invalid `PrefixTransformer`: fieldSpecs is not expected to be nil"
        );
    }
}
