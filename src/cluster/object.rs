//! Naming one Kubernetes object: API version, kind, namespace and name.

use std::fmt;

use serde_json::Value;

/// One object in a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ObjectRef {
    /// `apps/v1`, `v1`, `argoproj.io/v1alpha1`, …
    pub api_version: String,
    /// `Deployment`, `Namespace`, …
    pub kind: String,
    /// `None` for cluster-scoped objects.
    pub namespace: Option<String>,
    /// `metadata.name`.
    pub name: String,
}

impl ObjectRef {
    /// A namespaced object.
    pub fn namespaced(api_version: &str, kind: &str, namespace: &str, name: &str) -> ObjectRef {
        ObjectRef {
            api_version: api_version.to_string(),
            kind: kind.to_string(),
            namespace: Some(namespace.to_string()),
            name: name.to_string(),
        }
    }

    /// The reference of a manifest: its `apiVersion`, `kind`, `metadata.name` and
    /// `metadata.namespace` (if any). Errors say which field is missing.
    pub fn of(object: &Value) -> Result<ObjectRef, String> {
        let text = |pointer: &str| {
            object
                .pointer(pointer)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        let api_version = text("/apiVersion").ok_or("it has no apiVersion")?;
        let kind = text("/kind").ok_or("it has no kind")?;
        let name =
            text("/metadata/name").ok_or_else(|| format!("the {kind} has no metadata.name"))?;
        Ok(ObjectRef {
            api_version: api_version.to_string(),
            kind: kind.to_string(),
            namespace: text("/metadata/namespace").map(str::to_string),
            name: name.to_string(),
        })
    }

    /// The API group (`""` for the core group).
    pub fn group(&self) -> &str {
        self.api_version
            .split_once('/')
            .map(|(group, _)| group)
            .unwrap_or("")
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(namespace) => write!(f, "{} {namespace}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_reference_of_a_manifest() {
        let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "prod"}});
        let object = ObjectRef::of(&deployment).expect("valid");
        assert_eq!(
            object,
            ObjectRef::namespaced("apps/v1", "Deployment", "prod", "web")
        );
        assert_eq!(object.group(), "apps");
        assert_eq!(object.to_string(), "Deployment prod/web");
        let namespace = ObjectRef::of(
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "prod"}}),
        )
        .expect("valid");
        assert_eq!(
            (namespace.group(), namespace.to_string().as_str()),
            ("", "Namespace prod")
        );
    }

    #[test]
    fn names_the_missing_field() {
        assert_eq!(
            ObjectRef::of(&json!({"kind": "Deployment"})),
            Err("it has no apiVersion".to_string())
        );
        let unnamed = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {}});
        assert_eq!(
            ObjectRef::of(&unnamed),
            Err("the Deployment has no metadata.name".to_string())
        );
    }
}
