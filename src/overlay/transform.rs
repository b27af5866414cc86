//! The field-setting transformers of a kustomization: `namespace`, `namePrefix` /
//! `nameSuffix`, `commonLabels` / `labels`, `commonAnnotations` and `replicas`, each with the
//! field specs and quirks of kustomize's built-in transformer of the same name.

use std::collections::BTreeMap;

use serde_json::Value;

use super::config::defaults;
use super::fieldspec::{Create, FieldSpec, apply};
use super::kustomization::{Label, Replica};
use super::resid::Gvk;
use super::resmap::ResMap;
use super::resource::{Resource, scalar_text};

/// Puts every namespaced object into `namespace` (and renames Namespace objects to it).
pub fn namespace(resources: &mut ResMap, namespace: &str) -> Result<(), String> {
    let specs = &defaults().namespace;
    for i in 0..resources.len() {
        let resource = &mut resources[i];
        if resource.is_empty() {
            continue;
        }
        resource.store_previous_id();
        set_namespace(resource, namespace, specs)?;
        let id = resources[i].cur_id();
        if resources.iter().filter(|r| r.cur_id().equals(&id)).count() != 1 {
            return Err(format!(
                "namespace transformation produces ID conflict: {id}"
            ));
        }
    }
    Ok(())
}

fn set_namespace(
    resource: &mut Resource,
    namespace: &str,
    specs: &[FieldSpec],
) -> Result<(), String> {
    let gvk = resource.gvk();
    let api_version = resource.api_version().to_string();
    let set = &mut |v: &mut Value| {
        *v = Value::String(namespace.to_string());
        Ok(())
    };
    if !gvk.is_cluster_scoped() {
        let meta = FieldSpec::new("", "", "", "metadata/namespace", true);
        apply(&mut resource.value, &meta, Create::Scalar, set)?;
    }
    if gvk.kind == "RoleBinding" || gvk.kind == "ClusterRoleBinding" {
        set_default_subjects(&mut resource.value, namespace);
    }
    for spec in specs {
        let skip = spec.path == "metadata/namespace"
            || (api_version != "v1" && spec.path == "metadata/name");
        if !skip {
            apply(&mut resource.value, spec, Create::Scalar, set)?;
        }
    }
    Ok(())
}

/// Binding subjects named `default` get the namespace too.
fn set_default_subjects(binding: &mut Value, namespace: &str) {
    let Some(Value::Array(subjects)) = binding.get_mut("subjects") else {
        return;
    };
    for subject in subjects {
        if let Value::Object(map) = subject
            && map.get("name").and_then(Value::as_str) == Some("default")
        {
            map.insert(
                "namespace".to_string(),
                Value::String(namespace.to_string()),
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

/// Adds `prefix` in front of every name (`suffix == false`) or `suffix` behind it.
pub fn name_affix(resources: &mut ResMap, affix: &str, suffix: bool) -> Result<(), String> {
    let spec = FieldSpec::new("", "", "", "metadata/name", false);
    for resource in resources.iter_mut() {
        if keeps_its_name(&resource.org_id().gvk) {
            continue;
        }
        if suffix {
            resource.add_name_suffix(affix);
        } else {
            resource.add_name_prefix(affix);
        }
        resource.store_previous_id();
        apply(&mut resource.value, &spec, Create::Scalar, &mut |v| {
            let name = scalar_text(Some(v));
            *v = Value::String(if suffix {
                format!("{name}{affix}")
            } else {
                format!("{affix}{name}")
            });
            Ok(())
        })?;
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
        for (key, value) in pairs {
            for spec in specs {
                apply(
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
pub fn label_specs(label: &Label) -> Vec<FieldSpec> {
    let config = defaults();
    let mut specs = label.fields.clone();
    if label.include_selectors {
        specs.extend(config.common_labels.iter().cloned());
    } else {
        if label.include_templates {
            specs.extend(config.template_labels.iter().cloned());
        }
        specs.push(FieldSpec::new("", "", "", "metadata/labels", true));
    }
    specs
}

/// Sets the replica count of the workloads each entry names.
pub fn replicas(resources: &mut ResMap, replicas: &[Replica]) -> Result<(), String> {
    let specs = &defaults().replicas;
    for replica in replicas {
        let mut found = false;
        for spec in specs {
            for resource in resources.iter_mut() {
                let selected = resource
                    .all_ids()
                    .iter()
                    .any(|id| id.name == replica.name && id.gvk.is_selected_by(&spec.gvk));
                if !selected {
                    continue;
                }
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
