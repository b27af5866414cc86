//! kustomize's transformer configuration: which fields hold names, labels, selectors,
//! annotations, namespaces, images, replicas and `$(VAR)` references for the built-in kinds,
//! and which fields refer to other objects by name (so renamed ConfigMaps, Secrets,
//! ServiceAccounts, … are followed) — the defaults, and how `configurations` and `crds` add
//! to them.

use std::sync::{Arc, OnceLock};

use super::fieldspec::FieldSpec;
use super::resid::Gvk;

/// The field specs of every built-in transformer.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// `namePrefix`: the fields a prefix is added to.
    pub name_prefix: Vec<FieldSpec>,
    /// `nameSuffix`: the fields a suffix is added to.
    pub name_suffix: Vec<FieldSpec>,
    /// `commonLabels` and `labels` with `includeSelectors`: metadata, templates and selectors.
    pub common_labels: Vec<FieldSpec>,
    /// Added to the fields of every `labels:` entry (none by default).
    pub labels: Vec<FieldSpec>,
    /// `labels` with `includeTemplates`: metadata and pod templates.
    pub template_labels: Vec<FieldSpec>,
    pub common_annotations: Vec<FieldSpec>,
    pub namespace: Vec<FieldSpec>,
    pub images: Vec<FieldSpec>,
    pub replicas: Vec<FieldSpec>,
    /// Where `$(VAR)` references are substituted.
    pub var_reference: Vec<FieldSpec>,
    pub name_references: Vec<NameReference>,
}

/// Objects of kind `referral` are referred to by name from each of `referrers`.
#[derive(Debug, Clone)]
pub struct NameReference {
    pub referral: Gvk,
    pub referrers: Vec<FieldSpec>,
}

/// The default configuration, built once.
pub fn defaults() -> &'static Config {
    default_arc()
}

/// The default configuration, shared.
pub fn default_arc() -> &'static Arc<Config> {
    static CONFIG: OnceLock<Arc<Config>> = OnceLock::new();
    CONFIG.get_or_init(|| Arc::new(build()))
}

impl Config {
    /// This configuration with `other`'s field specs added, as kustomize merges transformer
    /// configurations: a spec already present (same path, kind selecting the other's) is
    /// not added again, and the two may not disagree on `create`.
    pub fn merged(&self, other: &Config) -> Result<Config, String> {
        let lists = |name: &str, a: &[FieldSpec], b: &[FieldSpec]| {
            merge_specs(a, b).map_err(|err| format!("failed to merge {name} fieldSpec: {err}"))
        };
        let mut name_references = self.name_references.clone();
        for incoming in &other.name_references {
            match name_references
                .iter_mut()
                .find(|r| r.referral == incoming.referral)
            {
                Some(known) => {
                    known.referrers = lists("NameReference", &known.referrers, &incoming.referrers)?
                }
                None => name_references.push(incoming.clone()),
            }
        }
        Ok(Config {
            name_prefix: lists("NamePrefix", &self.name_prefix, &other.name_prefix)?,
            name_suffix: lists("NameSuffix", &self.name_suffix, &other.name_suffix)?,
            common_labels: lists("CommonLabels", &self.common_labels, &other.common_labels)?,
            labels: lists("Labels", &self.labels, &other.labels)?,
            template_labels: lists(
                "TemplateLabels",
                &self.template_labels,
                &other.template_labels,
            )?,
            common_annotations: lists(
                "CommonAnnotations",
                &self.common_annotations,
                &other.common_annotations,
            )?,
            namespace: lists("NameSpace", &self.namespace, &other.namespace)?,
            images: lists("Images", &self.images, &other.images)?,
            replicas: lists("Replicas", &self.replicas, &other.replicas)?,
            var_reference: lists("VarReference", &self.var_reference, &other.var_reference)?,
            name_references,
        })
    }
}

/// `a` with the specs of `b` it does not have yet.
pub fn merge_specs(a: &[FieldSpec], b: &[FieldSpec]) -> Result<Vec<FieldSpec>, String> {
    let mut out = a.to_vec();
    for spec in b {
        let known = out
            .iter()
            .find(|s| s.path == spec.path && s.gvk.is_selected_by(&spec.gvk));
        match known {
            Some(known) if known.create != spec.create => {
                return Err("conflicting fieldspecs".to_string());
            }
            Some(_) => {}
            None => out.push(spec.clone()),
        }
    }
    Ok(out)
}

type Row = (&'static str, &'static str, &'static str, &'static str, bool);

const METADATA_LABELS: &[Row] = &[
    ("", "", "", "metadata/labels", true),
    (
        "",
        "v1",
        "ReplicationController",
        "spec/template/metadata/labels",
        true,
    ),
    ("", "", "Deployment", "spec/template/metadata/labels", true),
    ("", "", "ReplicaSet", "spec/template/metadata/labels", true),
    ("", "", "DaemonSet", "spec/template/metadata/labels", true),
    (
        "apps",
        "",
        "StatefulSet",
        "spec/template/metadata/labels",
        true,
    ),
    (
        "apps",
        "",
        "StatefulSet",
        "spec/volumeClaimTemplates[]/metadata/labels",
        true,
    ),
    ("batch", "", "Job", "spec/template/metadata/labels", true),
    (
        "batch",
        "",
        "CronJob",
        "spec/jobTemplate/metadata/labels",
        true,
    ),
    (
        "batch",
        "",
        "CronJob",
        "spec/jobTemplate/spec/template/metadata/labels",
        true,
    ),
];

const SELECTORS: &[Row] = &[
    ("", "v1", "Service", "spec/selector", true),
    ("", "v1", "ReplicationController", "spec/selector", true),
    ("", "", "Deployment", "spec/selector/matchLabels", true),
    ("", "", "ReplicaSet", "spec/selector/matchLabels", true),
    ("", "", "DaemonSet", "spec/selector/matchLabels", true),
    ("apps", "", "StatefulSet", "spec/selector/matchLabels", true),
    ("batch", "", "Job", "spec/selector/matchLabels", false),
    (
        "batch",
        "",
        "CronJob",
        "spec/jobTemplate/spec/selector/matchLabels",
        false,
    ),
    (
        "policy",
        "",
        "PodDisruptionBudget",
        "spec/selector/matchLabels",
        false,
    ),
    (
        "networking.k8s.io",
        "",
        "NetworkPolicy",
        "spec/podSelector/matchLabels",
        false,
    ),
    (
        "networking.k8s.io",
        "",
        "NetworkPolicy",
        "spec/ingress/from/podSelector/matchLabels",
        false,
    ),
    (
        "networking.k8s.io",
        "",
        "NetworkPolicy",
        "spec/egress/to/podSelector/matchLabels",
        false,
    ),
];

/// Label selectors inside pod templates of Deployments and StatefulSets (never created).
const AFFINITY_SELECTORS: &[&str] = &[
    "spec/template/spec/affinity/podAffinity/preferredDuringSchedulingIgnoredDuringExecution/podAffinityTerm/labelSelector/matchLabels",
    "spec/template/spec/affinity/podAffinity/requiredDuringSchedulingIgnoredDuringExecution/labelSelector/matchLabels",
    "spec/template/spec/affinity/podAntiAffinity/preferredDuringSchedulingIgnoredDuringExecution/podAffinityTerm/labelSelector/matchLabels",
    "spec/template/spec/affinity/podAntiAffinity/requiredDuringSchedulingIgnoredDuringExecution/labelSelector/matchLabels",
    "spec/template/spec/topologySpreadConstraints/labelSelector/matchLabels",
];

const ANNOTATIONS: &[Row] = &[
    ("", "", "", "metadata/annotations", true),
    (
        "",
        "v1",
        "ReplicationController",
        "spec/template/metadata/annotations",
        true,
    ),
    (
        "",
        "",
        "Deployment",
        "spec/template/metadata/annotations",
        true,
    ),
    (
        "",
        "",
        "ReplicaSet",
        "spec/template/metadata/annotations",
        true,
    ),
    (
        "",
        "",
        "DaemonSet",
        "spec/template/metadata/annotations",
        true,
    ),
    (
        "",
        "",
        "StatefulSet",
        "spec/template/metadata/annotations",
        true,
    ),
    (
        "batch",
        "",
        "Job",
        "spec/template/metadata/annotations",
        true,
    ),
    (
        "batch",
        "",
        "CronJob",
        "spec/jobTemplate/metadata/annotations",
        true,
    ),
    (
        "batch",
        "",
        "CronJob",
        "spec/jobTemplate/spec/template/metadata/annotations",
        true,
    ),
];

const NAMESPACE: &[Row] = &[
    ("", "", "Namespace", "metadata/name", true),
    (
        "apiregistration.k8s.io",
        "",
        "APIService",
        "spec/service/namespace",
        true,
    ),
    (
        "apiextensions.k8s.io",
        "",
        "CustomResourceDefinition",
        "spec/conversion/webhook/clientConfig/service/namespace",
        false,
    ),
];

const IMAGES: &[Row] = &[
    ("", "", "", "spec/containers[]/image", true),
    ("", "", "", "spec/initContainers[]/image", true),
    ("", "", "", "spec/template/spec/containers[]/image", true),
    (
        "",
        "",
        "",
        "spec/template/spec/initContainers[]/image",
        true,
    ),
];

const REPLICAS: &[Row] = &[
    ("", "", "Deployment", "spec/replicas", true),
    ("", "", "ReplicationController", "spec/replicas", true),
    ("", "", "ReplicaSet", "spec/replicas", true),
    ("", "", "StatefulSet", "spec/replicas", true),
];

fn specs(rows: &[Row]) -> Vec<FieldSpec> {
    rows.iter()
        .map(|&(g, v, k, path, create)| FieldSpec::fixed(g, v, k, path, create))
        .collect()
}

fn build() -> Config {
    let mut common_labels = specs(SELECTORS);
    for kind in ["Deployment", "StatefulSet"] {
        for path in AFFINITY_SELECTORS {
            common_labels.push(FieldSpec::fixed("apps", "", kind, path, false));
        }
    }
    common_labels.extend(specs(METADATA_LABELS));
    let name = || vec![FieldSpec::fixed("", "", "", "metadata/name", false)];
    Config {
        name_prefix: name(),
        name_suffix: name(),
        labels: Vec::new(),
        var_reference: var_references(),
        common_labels,
        template_labels: specs(METADATA_LABELS),
        common_annotations: specs(ANNOTATIONS),
        namespace: specs(NAMESPACE),
        images: specs(IMAGES),
        replicas: specs(REPLICAS),
        name_references: name_references(),
    }
}

/// Where a pod spec sits in each workload kind: (group, version, kind, path prefix).
const POD_SPECS: &[(&str, &str, &str, &str)] = &[
    ("", "v1", "Pod", "spec"),
    ("", "", "PodTemplate", "template/spec"),
    ("", "", "Deployment", "spec/template/spec"),
    ("", "", "ReplicaSet", "spec/template/spec"),
    ("", "", "DaemonSet", "spec/template/spec"),
    ("", "", "StatefulSet", "spec/template/spec"),
    ("", "", "Job", "spec/template/spec"),
    ("", "", "CronJob", "spec/jobTemplate/spec/template/spec"),
];

/// Workloads whose pod template refers to service accounts, claims and priority classes.
const TEMPLATED: &[(&str, &str)] = &[
    ("Pod", "spec"),
    ("StatefulSet", "spec/template/spec"),
    ("Deployment", "spec/template/spec"),
    ("ReplicationController", "spec/template/spec"),
    ("CronJob", "spec/jobTemplate/spec/template/spec"),
    ("Job", "spec/template/spec"),
    ("DaemonSet", "spec/template/spec"),
];

const CONFIG_MAP_REFS: &[&str] = &[
    "volumes/configMap/name",
    "containers/env/valueFrom/configMapKeyRef/name",
    "initContainers/env/valueFrom/configMapKeyRef/name",
    "containers/envFrom/configMapRef/name",
    "initContainers/envFrom/configMapRef/name",
    "volumes/projected/sources/configMap/name",
];

const SECRET_REFS: &[&str] = &[
    "volumes/secret/secretName",
    "containers/env/valueFrom/secretKeyRef/name",
    "initContainers/env/valueFrom/secretKeyRef/name",
    "containers/envFrom/secretRef/name",
    "initContainers/envFrom/secretRef/name",
    "imagePullSecrets/name",
    "volumes/projected/sources/secret/name",
];

fn pod_spec_refs(suffixes: &[&str]) -> Vec<FieldSpec> {
    let mut parts = Vec::with_capacity(POD_SPECS.len() * suffixes.len());
    for &(group, version, kind, prefix) in POD_SPECS {
        for suffix in suffixes {
            parts.push((group, version, kind, prefix, *suffix));
        }
    }
    joined(&parts)
}

fn templated(suffix: &str) -> Vec<FieldSpec> {
    let parts: Vec<_> = TEMPLATED
        .iter()
        .map(|&(kind, prefix)| ("", "", kind, prefix, suffix))
        .collect();
    joined(&parts)
}

/// Specs (group, version, kind, and a path `prefix/suffix`) of the default configuration.
/// Their paths are written into one buffer that is never freed: the default configuration
/// is built once and kept for the life of the process, and so its hundreds of joined paths
/// cost one allocation instead of one each.
fn joined(parts: &[(&'static str, &'static str, &'static str, &str, &str)]) -> Vec<FieldSpec> {
    let size = parts.iter().map(|(.., p, s)| p.len() + 1 + s.len()).sum();
    let mut buffer = String::with_capacity(size);
    for (.., prefix, suffix) in parts {
        buffer.push_str(prefix);
        buffer.push('/');
        buffer.push_str(suffix);
    }
    let mut paths: &'static str = buffer.leak();
    parts
        .iter()
        .map(|&(group, version, kind, prefix, suffix)| {
            let (path, rest) = paths.split_at(prefix.len() + 1 + suffix.len());
            paths = rest;
            FieldSpec::fixed(group, version, kind, path, false)
        })
        .collect()
}

fn reference(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    referrers: Vec<FieldSpec>,
) -> NameReference {
    let referral = Gvk::fixed(group, version, kind);
    NameReference {
        referral,
        referrers,
    }
}

const RBAC: &str = "rbac.authorization.k8s.io";
const ADMISSION: &str = "admissionregistration.k8s.io";

const SCALE_TARGET: &[Row] = &[(
    "",
    "",
    "HorizontalPodAutoscaler",
    "spec/scaleTargetRef/name",
    false,
)];

const CONFIG_MAP_OTHERS: &[Row] = &[
    ("", "", "Node", "spec/configSource/configMap", false),
    ("", "", "Role", "rules/resourceNames", false),
    ("", "", "ClusterRole", "rules/resourceNames", false),
    (
        "",
        "",
        "Ingress",
        r"metadata/annotations/nginx.ingress.kubernetes.io\/fastcgi-params-configmap",
        false,
    ),
];

const SECRET_OTHERS: &[Row] = &[
    ("", "", "Ingress", "spec/tls/secretName", false),
    (
        "",
        "",
        "Ingress",
        r"metadata/annotations/ingress.kubernetes.io\/auth-secret",
        false,
    ),
    (
        "",
        "",
        "Ingress",
        r"metadata/annotations/nginx.ingress.kubernetes.io\/auth-secret",
        false,
    ),
    (
        "",
        "",
        "Ingress",
        r"metadata/annotations/nginx.ingress.kubernetes.io\/auth-tls-secret",
        false,
    ),
    ("", "", "ServiceAccount", "imagePullSecrets/name", false),
    ("", "", "StorageClass", "parameters/secretName", false),
    ("", "", "StorageClass", "parameters/adminSecretName", false),
    ("", "", "StorageClass", "parameters/userSecretName", false),
    ("", "", "StorageClass", "parameters/secretRef", false),
    ("", "", "Role", "rules/resourceNames", false),
    ("", "", "ClusterRole", "rules/resourceNames", false),
    (
        "serving.knative.dev",
        "v1",
        "Service",
        "spec/template/spec/containers/env/valueFrom/secretKeyRef/name",
        false,
    ),
    (
        "",
        "",
        "PersistentVolume",
        "spec/azureFile/secretName",
        false,
    ),
];

const SERVICE: &[Row] = &[
    ("apps", "", "StatefulSet", "spec/serviceName", false),
    (
        "",
        "",
        "Ingress",
        "spec/rules/http/paths/backend/serviceName",
        false,
    ),
    ("", "", "Ingress", "spec/backend/serviceName", false),
    (
        "",
        "",
        "Ingress",
        "spec/rules/http/paths/backend/service/name",
        false,
    ),
    ("", "", "Ingress", "spec/defaultBackend/service/name", false),
    (
        "apiregistration.k8s.io",
        "",
        "APIService",
        "spec/service/name",
        false,
    ),
    (
        ADMISSION,
        "",
        "ValidatingWebhookConfiguration",
        "webhooks/clientConfig/service",
        false,
    ),
    (
        ADMISSION,
        "",
        "MutatingWebhookConfiguration",
        "webhooks/clientConfig/service",
        false,
    ),
];

const ROLE: &[Row] = &[(RBAC, "", "RoleBinding", "roleRef/name", false)];

const CLUSTER_ROLE: &[Row] = &[
    (RBAC, "", "RoleBinding", "roleRef/name", false),
    (RBAC, "", "ClusterRoleBinding", "roleRef/name", false),
];

const SERVICE_ACCOUNT_BINDINGS: &[Row] = &[
    (RBAC, "", "RoleBinding", "subjects", false),
    (RBAC, "", "ClusterRoleBinding", "subjects", false),
];

const PERSISTENT_VOLUME: &[Row] = &[
    ("", "", "PersistentVolumeClaim", "spec/volumeName", false),
    ("", "", "ClusterRole", "rules/resourceNames", false),
];

const STORAGE_CLASS: &[Row] = &[
    ("", "", "PersistentVolume", "spec/storageClassName", false),
    (
        "",
        "",
        "PersistentVolumeClaim",
        "spec/storageClassName",
        false,
    ),
    (
        "",
        "",
        "StatefulSet",
        "spec/volumeClaimTemplates/spec/storageClassName",
        false,
    ),
];

const ADMISSION_POLICY: &[Row] = &[(
    ADMISSION,
    "",
    "ValidatingAdmissionPolicyBinding",
    "spec/policyName",
    false,
)];

fn name_references() -> Vec<NameReference> {
    let scaled = |kind| reference("", "", kind, specs(SCALE_TARGET));
    vec![
        scaled("Deployment"),
        scaled("ReplicationController"),
        scaled("ReplicaSet"),
        scaled("StatefulSet"),
        reference(
            "",
            "v1",
            "ConfigMap",
            [pod_spec_refs(CONFIG_MAP_REFS), specs(CONFIG_MAP_OTHERS)].concat(),
        ),
        reference(
            "",
            "v1",
            "Secret",
            [pod_spec_refs(SECRET_REFS), specs(SECRET_OTHERS)].concat(),
        ),
        reference("", "v1", "Service", specs(SERVICE)),
        reference(RBAC, "", "Role", specs(ROLE)),
        reference(RBAC, "", "ClusterRole", specs(CLUSTER_ROLE)),
        reference(
            "",
            "v1",
            "ServiceAccount",
            [
                specs(SERVICE_ACCOUNT_BINDINGS),
                templated("serviceAccountName"),
            ]
            .concat(),
        ),
        reference(
            "",
            "v1",
            "PersistentVolumeClaim",
            templated("volumes/persistentVolumeClaim/claimName"),
        ),
        reference("", "v1", "PersistentVolume", specs(PERSISTENT_VOLUME)),
        reference("storage.k8s.io", "v1", "StorageClass", specs(STORAGE_CLASS)),
        reference(
            "scheduling.k8s.io",
            "v1",
            "PriorityClass",
            templated("priorityClassName"),
        ),
        reference(
            ADMISSION,
            "",
            "ValidatingAdmissionPolicy",
            specs(ADMISSION_POLICY),
        ),
    ]
}

/// The `$(VAR)` fields of the pod templates of the workload kinds, after their pod spec.
const VAR_CONTAINER_FIELDS: &[&str] = &[
    "containers/args",
    "containers/command",
    "containers/env/value",
    "containers/volumeMounts/mountPath",
    "initContainers/args",
    "initContainers/command",
    "initContainers/env/value",
    "initContainers/volumeMounts/mountPath",
];

/// Where kustomize substitutes `$(VAR)` by default (its own list, quirks included: a
/// CronJob's NFS server path lacks a `spec`, a StatefulSet's is under its claim templates).
fn var_references() -> Vec<FieldSpec> {
    let workloads: &[(&str, &str, &str)] = &[
        (
            "CronJob",
            "spec/jobTemplate/spec/template/spec",
            "spec/jobTemplate/spec/template/volumes/nfs/server",
        ),
        (
            "DaemonSet",
            "spec/template/spec",
            "spec/template/spec/volumes/nfs/server",
        ),
        (
            "Deployment",
            "spec/template/spec",
            "spec/template/spec/volumes/nfs/server",
        ),
        (
            "Job",
            "spec/template/spec",
            "spec/template/spec/volumes/nfs/server",
        ),
        ("Pod", "spec", "spec/volumes/nfs/server"),
        (
            "ReplicaSet",
            "spec/template/spec",
            "spec/template/spec/volumes/nfs/server",
        ),
        (
            "StatefulSet",
            "spec/template/spec",
            "spec/volumeClaimTemplates/spec/nfs/server",
        ),
    ];
    let containers: Vec<_> = workloads
        .iter()
        .flat_map(|&(kind, prefix, _)| {
            VAR_CONTAINER_FIELDS
                .iter()
                .map(move |field| ("", "", kind, prefix, *field))
        })
        .collect();
    let mut containers = joined(&containers).into_iter();
    let mut out = Vec::new();
    for &(kind, _, nfs) in workloads {
        out.extend(containers.by_ref().take(VAR_CONTAINER_FIELDS.len()));
        out.push(FieldSpec::fixed("", "", kind, nfs, false));
        if kind == "Deployment" {
            out.push(FieldSpec::fixed(
                "",
                "",
                kind,
                "spec/template/metadata/annotations",
                false,
            ));
        }
    }
    let others: &[(&str, &str)] = &[
        ("Ingress", "spec/rules/host"),
        ("Ingress", "spec/tls/hosts"),
        ("Ingress", "spec/tls/secretName"),
        ("Service", "spec/ports/port"),
        ("Service", "spec/ports/targetPort"),
        ("PersistentVolume", "spec/nfs/server"),
        ("", "metadata/labels"),
        ("", "metadata/annotations"),
    ];
    for &(kind, path) in others {
        out.push(FieldSpec::fixed("", "", kind, path, false));
    }
    out
}
