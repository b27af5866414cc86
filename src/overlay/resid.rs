//! Resource identity as kustomize sees it: group/version/kind, name and namespace, which kinds
//! are cluster-scoped, and how identities are compared (an empty namespace is `default`).

use std::borrow::Cow;
use std::fmt;

/// A group, version and kind; empty parts in a selector match anything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Gvk {
    pub group: Cow<'static, str>,
    pub version: Cow<'static, str>,
    pub kind: Cow<'static, str>,
}

/// The namespace kustomize gives cluster-scoped objects when comparing identities.
pub const NOT_NAMESPACED: &str = "_non_namespaceable_";

impl Gvk {
    /// Splits an `apiVersion` (`apps/v1`, `v1`) into group and version.
    pub fn new(api_version: &str, kind: &str) -> Gvk {
        let (group, version) = split_api_version(api_version);
        Gvk::new_parts(group, version, kind)
    }

    /// A group, version and kind of these parts, copied.
    pub fn new_parts(group: &str, version: &str, kind: &str) -> Gvk {
        Gvk {
            group: Cow::Owned(group.to_string()),
            version: Cow::Owned(version.to_string()),
            kind: Cow::Owned(kind.to_string()),
        }
    }

    /// A group, version and kind of static configuration, held without copies.
    pub const fn fixed(group: &'static str, version: &'static str, kind: &'static str) -> Gvk {
        Gvk {
            group: Cow::Borrowed(group),
            version: Cow::Borrowed(version),
            kind: Cow::Borrowed(kind),
        }
    }

    /// Whether every non-empty part of `selector` equals this one's.
    pub fn is_selected_by(&self, selector: &Gvk) -> bool {
        (selector.group.is_empty() || selector.group == self.group)
            && (selector.version.is_empty() || selector.version == self.version)
            && (selector.kind.is_empty() || selector.kind == self.kind)
    }

    /// Whether the kind is one of the built-in cluster-scoped kinds.
    pub fn is_cluster_scoped(&self) -> bool {
        is_cluster_scoped(&self.group, &self.version, &self.kind)
    }

    /// `Kind.version.group` with placeholders for empty parts, as kustomize prints ids.
    pub fn id_string(&self) -> String {
        format!(
            "{}.{}.{}",
            or_placeholder(&self.kind, "[noKind]"),
            or_placeholder(&self.version, "[noVer]"),
            or_placeholder(&self.group, "[noGrp]")
        )
    }
}

/// `apps/v1` → (`apps`, `v1`); `v1` → (``, `v1`).
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((group, version)) => (group, version),
        None => ("", api_version),
    }
}

/// Whether the built-in kind is cluster-scoped (kustomize's table, from the Kubernetes API it
/// embeds). Matched by kind first: it is asked for every identity compared, and most kinds
/// are in no row.
fn is_cluster_scoped(group: &str, version: &str, kind: &str) -> bool {
    let v1 = version == "v1";
    let v1_or_beta1 = v1 || version == "v1beta1";
    match kind {
        "ComponentStatus" | "Namespace" | "Node" | "NodeProxyOptions" | "PersistentVolume" => {
            group.is_empty() && v1
        }
        "MutatingWebhookConfiguration" | "ValidatingWebhookConfiguration" => {
            group == "admissionregistration.k8s.io" && v1_or_beta1
        }
        "CustomResourceDefinition" => group == "apiextensions.k8s.io" && v1_or_beta1,
        "APIService" => group == "apiregistration.k8s.io" && v1_or_beta1,
        "CertificateSigningRequest" => group == "certificates.k8s.io" && v1_or_beta1,
        "FlowSchema" | "PriorityLevelConfiguration" => {
            group == "flowcontrol.apiserver.k8s.io" && version == "v1beta1"
        }
        "IngressClass" => group == "networking.k8s.io" && v1_or_beta1,
        "RuntimeClass" => group == "node.k8s.io" && v1_or_beta1,
        "PodSecurityPolicy" => group == "policy" && version == "v1beta1",
        "ClusterRole" | "ClusterRoleBinding" => group == "rbac.authorization.k8s.io" && v1_or_beta1,
        "PriorityClass" => group == "scheduling.k8s.io" && v1_or_beta1,
        "CSIDriver" | "CSINode" | "StorageClass" | "VolumeAttachment" => {
            group == "storage.k8s.io" && v1_or_beta1
        }
        _ => false,
    }
}

/// The namespace an identity of this group, version and kind with `namespace` has in
/// comparisons: `default` for none, a marker for cluster-scoped kinds.
pub fn effective_namespace<'a>(
    group: &str,
    version: &str,
    kind: &str,
    namespace: &'a str,
) -> &'a str {
    if is_cluster_scoped(group, version, kind) {
        NOT_NAMESPACED
    } else if namespace.is_empty() {
        "default"
    } else {
        namespace
    }
}

/// A resource's identity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ResId {
    pub gvk: Gvk,
    pub name: String,
    pub namespace: String,
}

impl ResId {
    /// The namespace used for comparisons: `default` for none, a marker for cluster-scoped kinds.
    pub fn effective_namespace(&self) -> &str {
        effective_namespace(
            &self.gvk.group,
            &self.gvk.version,
            &self.gvk.kind,
            &self.namespace,
        )
    }

    /// [`ResId::key`], taking the id apart instead of copying it.
    pub fn into_key(self) -> (Gvk, String, String) {
        let namespace = if self.gvk.is_cluster_scoped() {
            NOT_NAMESPACED.to_string()
        } else if self.namespace.is_empty() {
            "default".to_string()
        } else {
            self.namespace
        };
        (self.gvk, self.name, namespace)
    }

    /// What [`ResId::equals`] compares, as a value to hash: ids are equal exactly when their
    /// keys are.
    pub fn key(&self) -> (Gvk, String, String) {
        (
            self.gvk.clone(),
            self.name.clone(),
            self.effective_namespace().to_string(),
        )
    }

    /// Same kind, name and effective namespace.
    pub fn equals(&self, other: &ResId) -> bool {
        self.gvk == other.gvk
            && self.name == other.name
            && self.effective_namespace() == other.effective_namespace()
    }

    /// Same effective namespace.
    pub fn same_namespace(&self, other: &ResId) -> bool {
        self.effective_namespace() == other.effective_namespace()
    }
}

impl fmt::Display for ResId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.gvk.kind.is_empty() {
            "object"
        } else {
            &self.gvk.kind
        };
        write!(f, "{kind} {:?}", self.name)?;
        if !self.namespace.is_empty() {
            write!(f, " in namespace {:?}", self.namespace)?;
        }
        Ok(())
    }
}

/// `part`, or `placeholder` when it is empty: how kustomize writes ids with missing parts.
pub(crate) fn or_placeholder<'a>(part: &'a str, placeholder: &'a str) -> &'a str {
    if part.is_empty() { placeholder } else { part }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_scope_follows_the_builtin_table() {
        assert!(Gvk::new("v1", "Namespace").is_cluster_scoped());
        assert!(Gvk::new("rbac.authorization.k8s.io/v1", "ClusterRole").is_cluster_scoped());
        assert!(!Gvk::new("apps/v1", "Deployment").is_cluster_scoped());
        assert!(!Gvk::new("example.com/v1", "Namespace").is_cluster_scoped());
        assert!(Gvk::new("storage.k8s.io/v1beta1", "CSINode").is_cluster_scoped());
        assert!(!Gvk::new("storage.k8s.io/v2", "CSINode").is_cluster_scoped());
        assert!(Gvk::new("policy/v1beta1", "PodSecurityPolicy").is_cluster_scoped());
        assert!(!Gvk::new("policy/v1", "PodSecurityPolicy").is_cluster_scoped());
        assert!(!Gvk::new("v1beta1", "Namespace").is_cluster_scoped());
    }

    #[test]
    fn identities_compare_with_the_effective_namespace() {
        let id = |ns: &str| ResId {
            gvk: Gvk::new("v1", "ConfigMap"),
            name: "a".into(),
            namespace: ns.into(),
        };
        assert!(id("").equals(&id("default")));
        assert!(!id("").equals(&id("other")));
        assert_eq!(id("x").to_string(), "ConfigMap \"a\" in namespace \"x\"");
    }
}
