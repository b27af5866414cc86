//! The field-setting transformers of a kustomization: `namespace`, `namePrefix` /
//! `nameSuffix`, `commonLabels` / `labels`, `commonAnnotations` and `replicas`, each with the
//! field specs and quirks of kustomize's built-in transformer of the same name.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use rustc_hash::FxHashMap;
use serde_json::Value;

use super::config::{Config, merge_specs};
use super::fieldspec::{Create, FieldSpec, ObjectKind, apply, apply_all, apply_selected};
use super::kustomization::plugins::{NamespaceConfig, SubjectMode};
use super::kustomization::{Label, Replica};
use super::lookup;
use super::resid::{Gvk, ResId};
use super::resmap::ResMap;
use super::resource::{PREVIOUS_NAMES, Resource, scalar_text};

/// Puts every namespaced object into `namespace` (and renames Namespace objects to it).
pub fn namespace(
    resources: &mut ResMap,
    namespace: &str,
    specs: &[FieldSpec],
) -> Result<(), String> {
    namespace_with(
        resources,
        &NamespaceConfig {
            namespace: namespace.to_string(),
            specs: specs.to_vec(),
            unset_only: false,
            subjects: SubjectMode::DefaultOnly,
        },
    )
}

/// The namespace transformer with explicit field specs and options (a NamespaceTransformer).
pub fn namespace_with(resources: &mut ResMap, config: &NamespaceConfig) -> Result<(), String> {
    if config.namespace.is_empty() {
        return Ok(());
    }
    // How many objects have each identity, the ones already moved with their new one.
    let mut counts: FxHashMap<_, usize> = FxHashMap::default();
    let keys: Vec<_> = resources.iter().map(|r| r.cur_id().into_key()).collect();
    for key in &keys {
        *counts.entry(key.clone()).or_default() += 1;
    }
    for (resource, before) in resources.iter_mut().zip(keys) {
        if resource.is_empty() {
            continue;
        }
        resource.store_previous_id();
        set_namespace(resource, config)?;
        if let Some(count) = counts.get_mut(&before) {
            *count -= 1;
        }
        let id = resource.cur_id();
        let count = counts.entry(id.key()).or_default();
        *count += 1;
        if *count != 1 {
            return Err(format!(
                "namespace transformation produces ID conflict: {id}"
            ));
        }
    }
    Ok(())
}

/// The `metadata/namespace` field every namespaced object gets.
static METADATA_NAMESPACE: LazyLock<FieldSpec> =
    LazyLock::new(|| FieldSpec::new("", "", "", "metadata/namespace", true));

/// Sets the namespace of one object as configured (no ID conflict check).
pub(super) fn set_namespace(
    resource: &mut Resource,
    config: &NamespaceConfig,
) -> Result<(), String> {
    let gvk = resource.gvk();
    let v1 = resource.api_version() == "v1";
    let namespace = config.namespace.as_str();
    let set = &mut |v: &mut Value| {
        if !config.unset_only || scalar_text(Some(v)).is_empty() {
            *v = Value::String(namespace.to_string());
        }
        Ok(())
    };
    if !gvk.is_cluster_scoped() {
        apply_selected(
            &mut resource.value,
            &METADATA_NAMESPACE,
            Create::Scalar,
            set,
        )?;
    }
    let binding = gvk.kind == "RoleBinding" || gvk.kind == "ClusterRoleBinding";
    if binding {
        set_subjects(&mut resource.value, config);
    }
    let specs = config.specs.iter().filter(|spec| {
        let skip = spec.path == "metadata/namespace"
            || (!v1 && spec.path == "metadata/name")
            || (binding
                && spec.path == "subjects/namespace"
                && (spec.gvk.kind == "RoleBinding" || spec.gvk.kind == "ClusterRoleBinding"));
        !skip
    });
    apply_all(&mut resource.value, specs, Create::Scalar, set)
}

/// Binding subjects named `default` (or every ServiceAccount subject, as configured) get the
/// namespace too.
fn set_subjects(binding: &mut Value, config: &NamespaceConfig) {
    let Some(Value::Array(subjects)) = binding.get_mut("subjects") else {
        return;
    };
    for subject in subjects {
        let Value::Object(map) = subject else {
            continue;
        };
        let (key, wanted) = match config.subjects {
            SubjectMode::None => return,
            SubjectMode::DefaultOnly => ("name", "default"),
            SubjectMode::AllServiceAccounts => ("kind", "ServiceAccount"),
        };
        if lookup::get(map, key).and_then(Value::as_str) != Some(wanted) {
            continue;
        }
        let current = scalar_text(lookup::get(map, "namespace"));
        if !config.unset_only || current.is_empty() {
            map.insert(
                "namespace".to_string(),
                Value::String(config.namespace.clone()),
            );
        }
    }
}

/// Which kinds keep their names whatever the prefix or suffix.
fn keeps_its_name(id: &Gvk) -> bool {
    id.kind == "CustomResourceDefinition"
        || id.kind == "Namespace"
        || (id.kind == "APIService" && id.group == "apiregistration.k8s.io")
}

/// Adds a prefix or suffix to the fields `specs` name (a Prefix- or SuffixTransformer); the
/// name's bookkeeping changes only for `metadata/name` specs.
pub fn name_affix_with(
    resources: &mut ResMap,
    affix: &str,
    suffix: bool,
    specs: &[FieldSpec],
) -> Result<(), String> {
    for resource in resources.iter_mut() {
        let id = resource.org_id();
        if keeps_its_name(&id.gvk) {
            continue;
        }
        for spec in specs {
            if !id.gvk.is_selected_by(&spec.gvk) {
                continue;
            }
            if spec.path == "metadata/name" {
                if suffix {
                    resource.add_name_suffix(affix);
                } else {
                    resource.add_name_prefix(affix);
                }
                if !affix.is_empty() {
                    resource.store_previous_id();
                }
            }
            apply(&mut resource.value, spec, Create::Scalar, &mut |v| {
                let name = scalar_text(Some(v));
                *v = Value::String(if suffix {
                    format!("{name}{affix}")
                } else {
                    format!("{affix}{name}")
                });
                Ok(())
            })?;
        }
    }
    Ok(())
}

/// Sets each pair in every field `specs` name, creating label maps where allowed.
pub fn set_pairs(
    resources: &mut ResMap,
    pairs: &BTreeMap<String, String>,
    specs: &[FieldSpec],
) -> Result<(), String> {
    if pairs.is_empty() {
        return Ok(());
    }
    for resource in resources.iter_mut() {
        // Setting pairs never changes an object's kind: the fields the specs walk through and
        // create are mappings and lists, and a pair is only ever set in a mapping.
        let kind = ObjectKind::of(&resource.value);
        let selected: Vec<&FieldSpec> = specs.iter().filter(|s| s.selects(&kind)).collect();
        for (key, value) in pairs {
            for spec in &selected {
                apply_selected(
                    &mut resource.value,
                    spec,
                    Create::Mapping,
                    &mut |node| match node {
                        Value::Object(map) => {
                            map.insert(key.clone(), Value::String(value.clone()));
                            Ok(())
                        }
                        _ => Err("wrong node kind: expected MappingNode".to_string()),
                    },
                )?;
            }
        }
    }
    Ok(())
}

/// The fields a `labels:` entry writes to.
pub fn label_specs(label: &Label, config: &Config) -> Result<Vec<FieldSpec>, String> {
    let mut specs = merge_specs(&label.fields, &config.labels)?;
    if label.include_selectors {
        specs = merge_specs(&specs, &config.common_labels)?;
    } else {
        if label.include_templates {
            specs = merge_specs(&specs, &config.template_labels)?;
        }
        let metadata = FieldSpec::new("", "", "", "metadata/labels", true);
        specs = merge_specs(&specs, std::slice::from_ref(&metadata))?;
    }
    Ok(specs)
}

/// The identities of the object, current and previous, that have the name `name`. Whether
/// any has it is checked first, without reading the identities.
fn named_ids(resource: &Resource, name: &str) -> Vec<ResId> {
    let current = lookup::field(&resource.value, "metadata").and_then(|m| lookup::field(m, "name"));
    let once_named = scalar_text(current) == name
        || resource
            .annotation(PREVIOUS_NAMES)
            .is_some_and(|names| names.split(',').any(|previous| previous == name));
    if !once_named {
        return Vec::new();
    }
    let mut ids = resource.all_ids();
    ids.retain(|id| id.name == name);
    ids
}

/// Sets replica counts in the fields `specs` name (a ReplicaCountTransformer).
pub fn replicas_with(
    resources: &mut ResMap,
    replicas: &[Replica],
    specs: &[FieldSpec],
) -> Result<(), String> {
    for replica in replicas {
        // The identities of each object that have the replica's name (none when the object
        // never had it), read again only after a count was set in the object.
        let mut named: Vec<Option<Vec<ResId>>> = vec![None; resources.len()];
        let mut found = false;
        for spec in specs {
            for (resource, ids) in resources.iter_mut().zip(&mut named) {
                let selected = ids
                    .get_or_insert_with(|| named_ids(resource, &replica.name))
                    .iter()
                    .any(|id| id.gvk.is_selected_by(&spec.gvk));
                if !selected {
                    continue;
                }
                *ids = None;
                found = true;
                apply(&mut resource.value, spec, Create::Scalar, &mut |v| {
                    *v = Value::Number(replica.count.into());
                    Ok(())
                })?;
            }
        }
        if !found {
            let gvks: Vec<String> = specs.iter().map(|s| s.gvk.id_string()).collect();
            return Err(format!(
                "resource with name {} does not match a config with the following GVK [{}]",
                replica.name,
                gvks.join(" ")
            ));
        }
    }
    Ok(())
}
