//! Server-side apply of rendered manifests (`sync: apply`), and its dry run for `plan`.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use kube::discovery::{self, Scope};
use serde_json::Value;

use super::{Cluster, ClusterError, ObjectRef};
use crate::pipeline::ClusterRef;

/// The field manager ferry applies as.
pub const FIELD_MANAGER: &str = "ferry";

/// What applying one object did, or would do in a dry run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApplyAction {
    /// The object did not exist.
    Created,
    /// The object changed.
    Configured,
    /// The apply changed nothing.
    Unchanged,
}

/// The outcome of applying one object.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ApplyResult {
    /// The object, with the namespace it was applied in.
    pub object: ObjectRef,
    /// What the apply did (or would do).
    pub action: ApplyAction,
    /// Whether this was a server-side dry run (nothing was changed).
    pub dry_run: bool,
}

/// Server-side applies `resources` with field manager `ferry`, without forcing conflicts: a
/// field another manager owns is an error naming it. Namespaces and CRDs go first, then the
/// rest in the given order. With `dry_run` the API server validates and reports what would
/// change, but stores nothing (objects in a namespace the same batch would create are
/// reported as created without asking the server, which cannot know that namespace yet).
///
/// Namespaced objects without a namespace go to the cluster block's `namespace`, else the
/// kubeconfig context's. Stops at the first object that fails.
pub async fn apply(
    resources: &[Value],
    cluster: Option<&ClusterRef>,
    kubeconfig: Option<&Path>,
    dry_run: bool,
) -> Result<Vec<ApplyResult>, ClusterError> {
    let objects = resources
        .iter()
        .enumerate()
        .map(|(index, resource)| {
            ObjectRef::of(resource)
                .map_err(|problem| ClusterError::InvalidObject { index, problem })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let connection = Cluster::connect(cluster, kubeconfig).await?;
    let mut applier = Applier {
        cluster: &connection,
        dry_run,
        kinds: HashMap::new(),
        new_namespaces: HashSet::new(),
    };
    let mut results = Vec::with_capacity(objects.len());
    for index in apply_order(&objects) {
        results.push(
            applier
                .apply_one(&objects[index], &resources[index])
                .await?,
        );
    }
    Ok(results)
}

/// The indices of `objects` with namespaces first, then CRDs, then the rest, each group in
/// its given order.
fn apply_order(objects: &[ObjectRef]) -> Vec<usize> {
    let rank = |object: &ObjectRef| match (object.group(), object.kind.as_str()) {
        ("", "Namespace") => 0,
        ("apiextensions.k8s.io", "CustomResourceDefinition") => 1,
        _ => 2,
    };
    let mut order: Vec<usize> = (0..objects.len()).collect();
    order.sort_by_key(|&i| rank(&objects[i]));
    order
}

struct Applier<'a> {
    cluster: &'a Cluster,
    dry_run: bool,
    /// Discovered resources by (apiVersion, kind): the resource and whether it is namespaced.
    kinds: HashMap<(String, String), (ApiResource, bool)>,
    /// Namespaces this (dry) run creates.
    new_namespaces: HashSet<String>,
}

impl Applier<'_> {
    async fn apply_one(
        &mut self,
        object: &ObjectRef,
        manifest: &Value,
    ) -> Result<ApplyResult, ClusterError> {
        let (resource, namespaced) = self.resource_for(object).await?;
        let namespace = namespaced.then(|| {
            let default = || self.cluster.default_namespace().to_string();
            object.namespace.clone().unwrap_or_else(default)
        });
        let target = ObjectRef {
            namespace,
            ..object.clone()
        };
        let in_new_namespace = target
            .namespace
            .as_ref()
            .is_some_and(|ns| self.new_namespaces.contains(ns));
        let action = if self.dry_run && in_new_namespace {
            ApplyAction::Created
        } else {
            self.patch(&resource, &target, manifest).await?
        };
        if action == ApplyAction::Created && object.group().is_empty() && object.kind == "Namespace"
        {
            self.new_namespaces.insert(object.name.clone());
        }
        Ok(ApplyResult {
            object: target,
            action,
            dry_run: self.dry_run,
        })
    }

    /// Server-side applies `manifest` as `target` and tells what that changed.
    async fn patch(
        &self,
        resource: &ApiResource,
        target: &ObjectRef,
        manifest: &Value,
    ) -> Result<ApplyAction, ClusterError> {
        let client = self.cluster.client().clone();
        let api: Api<DynamicObject> = match &target.namespace {
            Some(ns) => Api::namespaced_with(client, ns, resource),
            None => Api::all_with(client, resource),
        };
        let request_error =
            |verb: &str, err| self.cluster.request_error(format!("{verb} {target}"), err);
        let before = api
            .get_opt(&target.name)
            .await
            .map_err(|e| request_error("get", e))?;
        let mut params = PatchParams::apply(FIELD_MANAGER);
        if self.dry_run {
            params = params.dry_run();
        }
        let body = with_namespace(manifest, target.namespace.as_deref());
        let after = api
            .patch(&target.name, &params, &Patch::Apply(&body))
            .await
            .map_err(|e| request_error("apply", e))?;
        Ok(match before {
            None => ApplyAction::Created,
            Some(before) if comparable(&before) == comparable(&after) => ApplyAction::Unchanged,
            Some(_) => ApplyAction::Configured,
        })
    }

    /// The API resource of the object's kind and whether it is namespaced, from discovery.
    async fn resource_for(
        &mut self,
        object: &ObjectRef,
    ) -> Result<(ApiResource, bool), ClusterError> {
        let key = (object.api_version.clone(), object.kind.clone());
        if let Some(found) = self.kinds.get(&key) {
            return Ok(found.clone());
        }
        let not_served = || ClusterError::NotServed {
            api_version: object.api_version.clone(),
            kind: object.kind.clone(),
        };
        let found = match discovery::pinned_kind(self.cluster.client(), &object.gvk()).await {
            Ok((resource, capabilities)) => (resource, capabilities.scope == Scope::Namespaced),
            Err(kube::Error::Discovery(_)) => return Err(not_served()),
            Err(kube::Error::Api(status)) if status.code == 404 => return Err(not_served()),
            Err(err) => {
                return Err(self.cluster.request_error(
                    format!("discover {} {}", object.api_version, object.kind),
                    err,
                ));
            }
        };
        self.kinds.insert(key, found.clone());
        Ok(found)
    }
}

/// `manifest` with `metadata.namespace` set to `namespace` when it has none.
fn with_namespace(manifest: &Value, namespace: Option<&str>) -> Value {
    let mut body = manifest.clone();
    if let (Some(namespace), Some(metadata)) = (
        namespace,
        body.get_mut("metadata").and_then(Value::as_object_mut),
    ) {
        metadata
            .entry("namespace")
            .or_insert_with(|| Value::String(namespace.to_string()));
    }
    body
}

/// An object without the fields every write changes, to tell whether an apply changed it.
fn comparable(object: &DynamicObject) -> Value {
    let mut value = serde_json::to_value(object).unwrap_or(Value::Null);
    if let Some(map) = value.as_object_mut() {
        map.remove("status");
    }
    if let Some(metadata) = value.get_mut("metadata").and_then(Value::as_object_mut) {
        for field in ["resourceVersion", "managedFields", "generation"] {
            metadata.remove(field);
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(api_version: &str, kind: &str, name: &str) -> ObjectRef {
        ObjectRef {
            api_version: api_version.into(),
            kind: kind.into(),
            namespace: None,
            name: name.into(),
        }
    }

    #[test]
    fn namespaces_and_crds_go_first_in_their_given_order() {
        let objects = [
            object("apps/v1", "Deployment", "web"),
            object(
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                "widgets.acme.io",
            ),
            object("v1", "Namespace", "prod"),
            object("v1", "Service", "web"),
            object("v1", "Namespace", "monitoring"),
        ];
        assert_eq!(apply_order(&objects), vec![2, 4, 1, 0, 3]);
    }

    #[test]
    fn the_namespace_is_added_only_where_missing() {
        let bare = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}});
        assert_eq!(
            with_namespace(&bare, Some("prod"))["metadata"]["namespace"],
            "prod"
        );
        let placed = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "qa"}});
        assert_eq!(
            with_namespace(&placed, Some("prod"))["metadata"]["namespace"],
            "qa"
        );
        assert_eq!(with_namespace(&bare, None), bare);
    }
}
