//! The repository's file formats exactly as written, before validation. Nothing outside
//! `pipeline` sees these types: they are converted once into the validated domain types.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::duration::Span;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(
    dead_code,
    reason = "labels and annotations are accepted as in Kubernetes objects"
)]
pub(crate) struct Metadata {
    pub name: Spanned<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// Header shared by every ferry file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct Document<S> {
    pub api_version: Spanned<String>,
    pub kind: Spanned<String>,
    pub metadata: Metadata,
    pub spec: S,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct PipelineSpec {
    #[serde(default)]
    pub images: Vec<Spanned<String>>,
    #[serde(default)]
    pub output: Option<Output>,
    pub stages: Vec<Spanned<Stage>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct Output {
    pub branch: Option<String>,
    pub path: Option<String>,
    pub remote: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct Stage {
    pub name: Spanned<String>,
    pub overlay: Spanned<String>,
    #[serde(default)]
    pub upstream: Vec<Spanned<String>>,
    pub requires: Option<Requires>,
    pub policy: Option<Spanned<String>>,
    #[serde(default)]
    pub auto: bool,
    pub sync: Option<Sync>,
    pub cluster: Option<Cluster>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Requires {
    All,
    Any,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Sync {
    Gitops,
    Apply,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct Cluster {
    pub kubeconfig: Option<String>,
    pub context: Option<String>,
    pub namespace: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct PolicySpec {
    pub soak: Option<Span>,
    pub approvals: Option<Approvals>,
    pub windows: Option<Windows>,
    #[serde(default)]
    pub schedule: Vec<Spanned<Schedule>>,
    #[serde(default)]
    pub gates: Vec<Spanned<Gate>>,
    #[serde(default)]
    pub override_by: Vec<Spanned<String>>,
    pub rollback: Option<Rollback>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct Approvals {
    pub required: Spanned<u32>,
    #[serde(default)]
    pub from: Vec<Spanned<String>>,
    #[serde(default)]
    pub self_approval: bool,
    pub expires: Option<Span>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct Windows {
    pub timezone: Option<Spanned<String>>,
    #[serde(default)]
    pub allow: Vec<Spanned<String>>,
    #[serde(default)]
    pub deny: Vec<Spanned<Deny>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct Deny {
    pub from: Option<String>,
    pub until: Option<String>,
    pub cron: Option<String>,
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct Schedule {
    pub cron: String,
    pub promote: Option<String>,
    pub catch_up: Option<Span>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct Rollback {
    #[serde(default)]
    pub skip_approvals: bool,
}

/// A gate: the fields of every gate type in one struct, checked per type on conversion.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct Gate {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub timeout: Option<Span>,
    pub interval: Option<Span>,
    pub run: Option<Vec<String>>,
    pub url: Option<String>,
    pub method: Option<String>,
    pub expect: Option<HttpExpect>,
    pub headers: Option<BTreeMap<String, HeaderValue>>,
    #[serde(rename = "insecureSkipTLSVerify")]
    pub insecure_skip_tls_verify: Option<bool>,
    pub query: Option<String>,
    pub condition: Option<String>,
    #[serde(rename = "for")]
    pub hold: Option<Span>,
    pub on_empty: Option<String>,
    pub application: Option<String>,
    pub kustomization: Option<String>,
    pub namespace: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct HttpExpect {
    pub status: Option<u16>,
    pub body_contains: Option<String>,
    pub json: Option<JsonExpect>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct JsonExpect {
    pub pointer: String,
    pub equals: serde_json::Value,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum HeaderValue {
    Literal(String),
    FromEnv(FromEnv),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct FromEnv {
    pub from_env: String,
}

/// `policies/groups.yaml`: group name → members.
pub(crate) type GroupsSpec = BTreeMap<String, Vec<String>>;

/// `policies/access.yaml`: OIDC issuers and role bindings.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct AccessSpec {
    #[serde(default)]
    pub oidc: Vec<Spanned<OidcIssuer>>,
    #[serde(default)]
    pub roles: Vec<Spanned<RoleBinding>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct OidcIssuer {
    pub issuer: Spanned<String>,
    pub audience: Spanned<String>,
    pub identity: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RoleBinding {
    pub role: Spanned<String>,
    pub subjects: Vec<Spanned<String>>,
    pub stages: Option<Vec<Spanned<String>>>,
}
