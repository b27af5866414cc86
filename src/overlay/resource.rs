//! One rendered Kubernetes object, and the bookkeeping kustomize keeps on it while building:
//! previous names (for name references), applied prefixes and suffixes, generator options.
//! Like kustomize, that bookkeeping lives in `internal.config.kubernetes.io/…` annotations
//! during the build, so patches affect it exactly as they affect kustomize's; it is removed
//! before the resource leaves the renderer.

use serde_json::{Map, Value};

use super::lookup::{self, field};
use super::resid::{Gvk, ResId, effective_namespace, split_api_version};

/// Origin and transformer tracking, which kustomize removes unless asked to keep it.
const TRACKING_ANNOTATIONS: &[&str] = &[
    "config.kubernetes.io/origin",
    "alpha.config.kubernetes.io/transformations",
];
pub(crate) const PREVIOUS_NAMES: &str = "internal.config.kubernetes.io/previousNames";
pub(crate) const PREVIOUS_NAMESPACES: &str = "internal.config.kubernetes.io/previousNamespaces";
pub(crate) const PREVIOUS_KINDS: &str = "internal.config.kubernetes.io/previousKinds";
pub(crate) const PREFIXES: &str = "internal.config.kubernetes.io/prefixes";
pub(crate) const SUFFIXES: &str = "internal.config.kubernetes.io/suffixes";
pub(crate) const BEHAVIOR: &str = "internal.config.kubernetes.io/generatorBehavior";
pub(crate) const NEEDS_HASH: &str = "internal.config.kubernetes.io/needsHashSuffix";
pub(crate) const ALLOW_NAME_CHANGE: &str = "internal.config.kubernetes.io/allowNameChange";
pub(crate) const ALLOW_KIND_CHANGE: &str = "internal.config.kubernetes.io/allowKindChange";
const LOCAL_CONFIG: &str = "config.kubernetes.io/local-config";

/// The annotations kustomize uses for bookkeeping during a build.
pub(crate) const BUILD_ANNOTATIONS: &[&str] = &[
    PREVIOUS_KINDS,
    PREVIOUS_NAMES,
    PREFIXES,
    SUFFIXES,
    PREVIOUS_NAMESPACES,
    ALLOW_NAME_CHANGE,
    ALLOW_KIND_CHANGE,
    "internal.config.kubernetes.io/refBy",
    BEHAVIOR,
    NEEDS_HASH,
    "internal.config.kubernetes.io/path",
    "internal.config.kubernetes.io/index",
    "internal.config.kubernetes.io/seqindent",
    "internal.config.kubernetes.io/id",
    "internal.config.kubernetes.io/annotations-migration-resource-id",
    "config.kubernetes.io/path",
    "config.kubernetes.io/index",
    "config.k8s.io/id",
];

/// A rendered Kubernetes object.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    pub(crate) value: Value,
    pub(crate) file_name: String,
    /// The `vars:` that take their value from this object (kept off the object itself, as
    /// kustomize keeps them, so patches cannot touch them).
    pub(crate) ref_vars: Vec<String>,
}

impl Resource {
    /// Wraps a JSON object read from a manifest.
    pub(crate) fn new(value: Value) -> Resource {
        Resource {
            value,
            file_name: String::new(),
            ref_vars: Vec::new(),
        }
    }

    /// `apiVersion`, e.g. `apps/v1`.
    pub fn api_version(&self) -> &str {
        self.str_at(&["apiVersion"])
    }

    /// `kind`, e.g. `Deployment`.
    pub fn kind(&self) -> &str {
        self.str_at(&["kind"])
    }

    /// `metadata.name`.
    pub fn name(&self) -> &str {
        self.str_at(&["metadata", "name"])
    }

    /// `metadata.namespace`, when set.
    pub fn namespace(&self) -> Option<&str> {
        Some(self.str_at(&["metadata", "namespace"])).filter(|ns| !ns.is_empty())
    }

    /// The whole object.
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// A file name for this resource that is unique within its build, like
    /// `apps_v1_deployment_web.yaml` (the namespace is prepended when two would collide).
    pub fn file_name(&self) -> String {
        if self.file_name.is_empty() {
            base_file_name(self)
        } else {
            self.file_name.clone()
        }
    }

    fn str_at(&self, path: &[&str]) -> &str {
        let mut v = &self.value;
        for key in path {
            match field(v, key) {
                Some(next) => v = next,
                None => return "",
            }
        }
        v.as_str().unwrap_or("")
    }

    pub(crate) fn gvk(&self) -> Gvk {
        Gvk::new(self.api_version(), self.kind())
    }

    pub(crate) fn cur_id(&self) -> ResId {
        let metadata = field(&self.value, "metadata");
        let of_metadata = |key: &str| metadata.and_then(|m| field(m, key));
        ResId {
            gvk: self.gvk(),
            name: scalar_text(of_metadata("name")),
            namespace: scalar_text(of_metadata("namespace")),
        }
    }

    /// The identities this resource had before it was renamed, oldest first.
    pub(crate) fn prev_ids(&self) -> Vec<ResId> {
        let Some(names) = self.annotation(PREVIOUS_NAMES) else {
            return Vec::new();
        };
        let namespaces: Vec<&str> = self
            .annotation(PREVIOUS_NAMESPACES)
            .unwrap_or("")
            .split(',')
            .collect();
        let kinds: Vec<&str> = self
            .annotation(PREVIOUS_KINDS)
            .unwrap_or("")
            .split(',')
            .collect();
        let (group, version) = split_api_version(self.api_version());
        names
            .split(',')
            .enumerate()
            .map(|(i, name)| ResId {
                gvk: Gvk {
                    group: group.to_string().into(),
                    version: version.to_string().into(),
                    kind: kinds.get(i).unwrap_or(&"").to_string().into(),
                },
                name: name.to_string(),
                namespace: namespaces.get(i).unwrap_or(&"").to_string(),
            })
            .collect()
    }

    /// The identity the resource was first read or generated with: the first of
    /// [`Resource::prev_ids`], read without building the others.
    pub(crate) fn org_id(&self) -> ResId {
        let Some(names) = self.annotation(PREVIOUS_NAMES) else {
            return self.cur_id();
        };
        let first = |list: &str| list.split(',').next().unwrap_or("").to_string();
        let (group, version) = split_api_version(self.api_version());
        ResId {
            gvk: Gvk {
                group: group.to_string().into(),
                version: version.to_string().into(),
                kind: first(self.annotation(PREVIOUS_KINDS).unwrap_or("")).into(),
            },
            name: first(names),
            namespace: first(self.annotation(PREVIOUS_NAMESPACES).unwrap_or("")),
        }
    }

    /// Whether the resource has, or once had, an identity equal to `id` (see
    /// [`ResId::equals`]): [`Resource::all_ids`] compared one by one, read in place.
    pub(crate) fn has_id(&self, id: &ResId) -> bool {
        let (group, version) = split_api_version(self.api_version());
        if group != id.gvk.group || version != id.gvk.version {
            // Previous identities keep the current group and version.
            return false;
        }
        let wanted_namespace = id.effective_namespace();
        let same = |kind: &str, name: &str, namespace: &str| {
            kind == id.gvk.kind
                && name == id.name
                && effective_namespace(group, version, kind, namespace) == wanted_namespace
        };
        let metadata = field(&self.value, "metadata");
        let text = |key: &str| scalar_text(metadata.and_then(|m| field(m, key)));
        if same(self.kind(), &text("name"), &text("namespace")) {
            return true;
        }
        let Some(names) = self.annotation(PREVIOUS_NAMES) else {
            return false;
        };
        let mut namespaces = self
            .annotation(PREVIOUS_NAMESPACES)
            .unwrap_or("")
            .split(',');
        let mut kinds = self.annotation(PREVIOUS_KINDS).unwrap_or("").split(',');
        names.split(',').any(|name| {
            let kind = kinds.next().unwrap_or("");
            let namespace = namespaces.next().unwrap_or("");
            same(kind, name, namespace)
        })
    }

    /// Every identity the resource has had, the current one last.
    pub(crate) fn all_ids(&self) -> Vec<ResId> {
        let mut ids = self.prev_ids();
        ids.push(self.cur_id());
        ids
    }

    pub(crate) fn metadata_mut(&mut self) -> &mut Map<String, Value> {
        let object = object_mut(&mut self.value);
        if lookup::get(object, "metadata").is_none() {
            object.insert("metadata".to_string(), Value::Object(Map::new()));
        }
        let metadata = lookup::get_mut(object, "metadata").expect("inserted above");
        object_mut(metadata)
    }

    pub(crate) fn annotations(&self) -> Option<&Map<String, Value>> {
        field(field(&self.value, "metadata")?, "annotations")?.as_object()
    }

    pub(crate) fn annotation(&self, key: &str) -> Option<&str> {
        lookup::get(self.annotations()?, key)?.as_str()
    }

    pub(crate) fn labels(&self) -> Option<&Map<String, Value>> {
        field(field(&self.value, "metadata")?, "labels")?.as_object()
    }

    /// Removes the label `key`, if set.
    pub(crate) fn remove_label(&mut self, key: &str) {
        if let Some(Value::Object(labels)) = self.metadata_mut().get_mut("labels") {
            labels.remove(key);
        }
    }

    pub(crate) fn set_annotation(&mut self, key: &str, value: &str) {
        let metadata = self.metadata_mut();
        let annotations = metadata
            .entry("annotations")
            .or_insert_with(|| Value::Object(Map::new()));
        if !annotations.is_object() {
            *annotations = Value::Object(Map::new());
        }
        object_mut(annotations).insert(key.to_string(), Value::String(value.to_string()));
    }

    fn append_csv_annotation(&mut self, key: &str, value: &str) {
        if value.is_empty() {
            return;
        }
        let current = lookup::field_mut(&mut self.value, "metadata")
            .and_then(|metadata| lookup::field_mut(metadata, "annotations"))
            .and_then(|annotations| lookup::field_mut(annotations, key));
        match current {
            Some(Value::String(current)) => {
                current.push(',');
                current.push_str(value);
            }
            _ => self.set_annotation(key, value),
        }
    }

    /// Records the current identity as a previous one, before a rename.
    pub(crate) fn store_previous_id(&mut self) {
        let id = self.cur_id();
        let namespace = id.effective_namespace();
        let entries = [
            (PREVIOUS_NAMES, id.name.as_str()),
            (PREVIOUS_NAMESPACES, namespace),
            (PREVIOUS_KINDS, &*id.gvk.kind),
        ];
        if entries.iter().all(|(_, value)| value.is_empty()) {
            return;
        }
        // The annotations are looked up once for the three lists.
        let metadata = self.metadata_mut();
        let annotations = metadata
            .entry("annotations")
            .or_insert_with(|| Value::Object(Map::new()));
        let annotations = object_mut(annotations);
        for (key, value) in entries {
            if value.is_empty() {
                continue;
            }
            match lookup::get_mut(annotations, key) {
                Some(Value::String(current)) => {
                    current.push(',');
                    current.push_str(value);
                }
                _ => {
                    annotations.insert(key.to_string(), Value::String(value.to_string()));
                }
            }
        }
    }

    pub(crate) fn add_name_prefix(&mut self, prefix: &str) {
        self.append_csv_annotation(PREFIXES, prefix);
    }

    pub(crate) fn add_name_suffix(&mut self, suffix: &str) {
        self.append_csv_annotation(SUFFIXES, suffix);
    }

    pub(crate) fn csv_annotation(&self, key: &str) -> Vec<&str> {
        self.annotation(key)
            .map(|v| v.split(',').collect())
            .unwrap_or_default()
    }

    pub(crate) fn is_enabled(&self, key: &str) -> bool {
        self.annotation(key) == Some("enabled")
    }

    pub(crate) fn set_name(&mut self, name: &str) {
        self.metadata_mut()
            .insert("name".to_string(), Value::String(name.to_string()));
    }

    /// Sets `metadata.namespace`, or removes it for the empty namespace.
    pub(crate) fn set_namespace(&mut self, namespace: &str) {
        let metadata = self.metadata_mut();
        if namespace.is_empty() {
            metadata.remove("namespace");
        } else {
            metadata.insert(
                "namespace".to_string(),
                Value::String(namespace.to_string()),
            );
        }
    }

    pub(crate) fn set_kind(&mut self, kind: &str) {
        object_mut(&mut self.value).insert("kind".to_string(), Value::String(kind.to_string()));
    }

    pub(crate) fn set_api_version(&mut self, api_version: &str) {
        object_mut(&mut self.value).insert(
            "apiVersion".to_string(),
            Value::String(api_version.to_string()),
        );
    }

    /// Whether the object is gone (deleted by a patch) or empty.
    pub(crate) fn is_empty(&self) -> bool {
        match &self.value {
            Value::Object(map) => map.is_empty(),
            _ => true,
        }
    }

    /// Marked `config.kubernetes.io/local-config` (anything but `"false"`): not rendered.
    pub(crate) fn is_local_config(&self) -> bool {
        self.annotations()
            .and_then(|a| lookup::get(a, LOCAL_CONFIG))
            .is_some_and(|v| scalar_text(Some(v)) != "false")
    }

    /// Drops the build bookkeeping and normalises annotations the way kustomize's final
    /// clean-up leaves them: values as strings, an empty map removed.
    pub(crate) fn finish(&mut self) {
        self.clean_up(false);
    }

    /// As [`Resource::finish`], keeping the origin and transformation annotations (which
    /// `buildMetadata` decides about).
    pub(crate) fn finish_tracked(&mut self) {
        self.clean_up(true);
    }

    fn clean_up(&mut self, keep_tracking: bool) {
        let Some(Value::Object(metadata)) = lookup::field_mut(&mut self.value, "metadata") else {
            return;
        };
        let Some(annotations) = lookup::get_mut(metadata, "annotations") else {
            return;
        };
        if let Value::Object(map) = annotations {
            map.retain(|key, _| {
                !BUILD_ANNOTATIONS.contains(&key.as_str())
                    && (keep_tracking || !TRACKING_ANNOTATIONS.contains(&key.as_str()))
            });
            for value in map.values_mut() {
                if !value.is_string() {
                    *value = Value::String(scalar_text(Some(value)));
                }
            }
            if !map.is_empty() {
                return;
            }
        }
        metadata.remove("annotations");
    }
}

/// The text of a scalar as kustomize reads it as a string (`""` for non-scalars and null).
pub(crate) fn scalar_text(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// The object inside `value`, turning anything else into an empty object first.
pub(crate) fn object_mut(value: &mut Value) -> &mut Map<String, Value> {
    if !value.is_object() {
        *value = Value::Object(Map::new());
    }
    match value {
        Value::Object(map) => map,
        _ => unreachable!("just made an object"),
    }
}

/// `<group>_<version>_<kind>_<name>.yaml`, lower-cased, without empty parts.
pub(crate) fn base_file_name(resource: &Resource) -> String {
    let gvk = resource.gvk();
    let parts: Vec<&str> = [&*gvk.group, &*gvk.version, &*gvk.kind]
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect();
    format!("{}_{}.yaml", parts.join("_"), resource.name()).to_lowercase()
}

/// Gives every resource a file name unique within `resources`.
pub(crate) fn assign_file_names(resources: &mut [Resource]) {
    let bases: Vec<String> = resources.iter().map(base_file_name).collect();
    let mut counts: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for base in &bases {
        *counts.entry(base).or_default() += 1;
    }
    let mut used = std::collections::HashSet::new();
    for (i, resource) in resources.iter_mut().enumerate() {
        let collides = counts[bases[i].as_str()] > 1;
        let mut name = if collides {
            let ns = resource.namespace().unwrap_or("default").to_lowercase();
            format!("{ns}_{}", bases[i])
        } else {
            bases[i].clone()
        };
        let mut n = 2;
        while !used.insert(name.clone()) {
            name = format!("{}-{n}.yaml", bases[i].trim_end_matches(".yaml"));
            n += 1;
        }
        resource.file_name = name;
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn previous_ids_round_trip_through_annotations() {
        let mut r = Resource::new(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}),
        );
        r.store_previous_id();
        r.set_name("p-a");
        r.store_previous_id();
        let names: Vec<String> = r.prev_ids().into_iter().map(|id| id.name).collect();
        assert_eq!(names, ["a", "p-a"]);
        assert_eq!(r.org_id().name, "a");
        r.finish();
        assert_eq!(
            r.value,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "p-a"}})
        );
    }

    #[test]
    fn has_id_answers_as_comparing_every_identity_does() {
        // A namespaced object renamed, moved and re-kinded; a cluster-scoped one; one whose
        // name is a number.
        let mut moved = Resource::new(json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web"}}));
        moved.store_previous_id();
        moved.set_name("p-web");
        moved.set_namespace("prod");
        moved.store_previous_id();
        moved.set_kind("StatefulSet");
        let cluster = Resource::new(json!({"apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole", "metadata": {"name": "reader", "namespace": "ignored"}}));
        let numbered = Resource::new(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": 7}}));
        let id = |api_version: &str, kind: &str, name: &str, namespace: &str| ResId {
            gvk: Gvk::new(api_version, kind),
            name: name.to_string(),
            namespace: namespace.to_string(),
        };
        let candidates = [
            id("apps/v1", "Deployment", "web", ""),
            id("apps/v1", "Deployment", "web", "default"),
            id("apps/v1", "Deployment", "web", "prod"),
            id("apps/v1", "Deployment", "p-web", "prod"),
            id("apps/v1", "StatefulSet", "p-web", "prod"),
            id("apps/v1", "StatefulSet", "p-web", ""),
            id("apps/v2", "Deployment", "web", ""),
            id("rbac.authorization.k8s.io/v1", "ClusterRole", "reader", ""),
            id(
                "rbac.authorization.k8s.io/v1",
                "ClusterRole",
                "reader",
                "other",
            ),
            id("v1", "ConfigMap", "7", ""),
            id("v1", "ConfigMap", "8", ""),
        ];
        let mut matched = 0;
        for resource in [&moved, &cluster, &numbered] {
            for candidate in &candidates {
                let expected = resource.all_ids().iter().any(|i| i.equals(candidate));
                assert_eq!(resource.has_id(candidate), expected, "{candidate}");
                matched += usize::from(expected);
                assert_eq!(candidate.clone().into_key(), candidate.key());
            }
        }
        assert_eq!(matched, 7);
    }

    #[test]
    fn file_names_are_unique_within_a_build() {
        let res = |ns: &str| {
            Resource::new(json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "Web", "namespace": ns}}))
        };
        let mut list = vec![
            res("a"),
            res("b"),
            Resource::new(
                json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}}),
            ),
        ];
        assign_file_names(&mut list);
        let names: Vec<String> = list.iter().map(Resource::file_name).collect();
        assert_eq!(
            names,
            [
                "a_apps_v1_deployment_web.yaml",
                "b_apps_v1_deployment_web.yaml",
                "v1_service_web.yaml"
            ]
        );
    }
}
