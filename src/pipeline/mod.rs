//! The pipeline and policy files (DESIGN §3): their serde types, and their validation into
//! the domain types everything else uses — the pipeline as a DAG, policies, groups.

mod duration;
mod error;
mod gate;
mod graph;
mod policy;
mod raw;
mod stage;
mod yaml;

use std::collections::BTreeMap;

use serde_saphyr::Spanned;

pub use duration::Span;
pub use error::{FileLocation, PipelineError};
pub use gate::{CompareOp, Condition, GateKind, GateSpec, HeaderValue, HttpGate, PrometheusGate, GATE_TYPES};
pub use graph::GraphFormat;
pub use policy::{ApprovalRule, CronSpec, DenyWindow, Groups, Policy, Principal, Schedule, Windows};
pub use stage::{is_stage_name, ClusterRef, OutputSpec, Pipeline, Requires, Stage, SyncMode, PIPELINE_FILE};

use crate::overlay::{EntryKind, FileSource};

/// The directory policies live in.
pub const POLICY_DIR: &str = "policies";
/// The approver groups file.
pub const GROUPS_FILE: &str = "policies/groups.yaml";
/// The API version of every ferry file.
pub const API_VERSION: &str = "ferry/v1";

/// Everything a config repository declares: the pipeline, its policies and groups.
#[derive(Debug, Clone)]
pub struct Config {
    pub pipeline: Pipeline,
    pub policies: BTreeMap<String, Policy>,
    pub groups: Groups,
}

impl Config {
    /// Loads and validates `environments/pipeline.yaml`, `policies/*.yaml` and
    /// `policies/groups.yaml` from the root of `source`.
    pub fn load(source: &dyn FileSource) -> Result<Config, PipelineError> {
        if source.entry(PIPELINE_FILE).map_err(|e| read_error(PIPELINE_FILE, e))?.is_none() {
            return Err(PipelineError::Missing {
                path: PIPELINE_FILE.to_string(),
                hint: "is this a ferry config repository? (see docs/pipeline.md)",
            });
        }
        let pipeline = stage::validate(yaml::load(source, PIPELINE_FILE)?)?;
        let groups = load_groups(source)?;
        let policies = load_policies(source, &groups)?;
        check_stages(source, &pipeline, &policies)?;
        Ok(Config { pipeline, policies, groups })
    }

    /// The policy of `stage`, if it names one.
    pub fn policy_of(&self, stage: &Stage) -> Option<&Policy> {
        stage.policy.as_ref().and_then(|name| self.policies.get(name))
    }
}

fn read_error(path: &str, source: std::io::Error) -> PipelineError {
    PipelineError::Read { path: path.to_string(), source }
}

fn load_groups(source: &dyn FileSource) -> Result<Groups, PipelineError> {
    match source.entry(GROUPS_FILE).map_err(|e| read_error(GROUPS_FILE, e))? {
        Some(EntryKind::File) => policy::validate_groups(GROUPS_FILE, yaml::load(source, GROUPS_FILE)?),
        _ => Ok(Groups::default()),
    }
}

fn load_policies(source: &dyn FileSource, groups: &Groups) -> Result<BTreeMap<String, Policy>, PipelineError> {
    let mut policies = BTreeMap::new();
    if source.entry(POLICY_DIR).map_err(|e| read_error(POLICY_DIR, e))? != Some(EntryKind::Dir) {
        return Ok(policies);
    }
    for name in source.read_dir(POLICY_DIR).map_err(|e| read_error(POLICY_DIR, e))? {
        let path = format!("{POLICY_DIR}/{name}");
        let is_yaml = name.ends_with(".yaml") || name.ends_with(".yml");
        if !is_yaml || path == GROUPS_FILE || source.entry(&path).ok().flatten() != Some(EntryKind::File) {
            continue;
        }
        let policy = policy::validate(&path, yaml::load(source, &path)?, groups)?;
        policies.insert(policy.name.clone(), policy);
    }
    Ok(policies)
}

/// Every stage's overlay exists and is a kustomization; every named policy exists.
fn check_stages(source: &dyn FileSource, pipeline: &Pipeline, policies: &BTreeMap<String, Policy>) -> Result<(), PipelineError> {
    for (i, stage) in pipeline.stages().iter().enumerate() {
        let location = stage.declared_at.clone();
        let entry = source.entry(&stage.overlay).map_err(|e| read_error(&stage.overlay, e))?;
        if entry != Some(EntryKind::Dir) {
            return Err(PipelineError::invalid(
                location,
                format!("spec.stages[{i}].overlay"),
                format!("overlay directory `{}` of stage `{}` does not exist", stage.overlay, stage.name),
            ));
        }
        let has_kustomization = ["kustomization.yaml", "kustomization.yml", "Kustomization"]
            .iter()
            .any(|f| source.entry(&format!("{}/{f}", stage.overlay)).ok().flatten() == Some(EntryKind::File));
        if !has_kustomization {
            return Err(PipelineError::invalid(
                location,
                format!("spec.stages[{i}].overlay"),
                format!("`{}` has no kustomization.yaml", stage.overlay),
            ));
        }
        if let Some(name) = &stage.policy {
            if !policies.contains_key(name) {
                let known: Vec<&str> = policies.keys().map(String::as_str).collect();
                return Err(PipelineError::invalid(
                    location,
                    format!("spec.stages[{i}].policy"),
                    format!("unknown policy `{name}` (no {POLICY_DIR}/{name}.yaml); known: {}", if known.is_empty() { "none".to_string() } else { known.join(", ") }),
                ));
            }
        }
    }
    Ok(())
}

/// Checks `apiVersion` and `kind` of a ferry file.
pub(crate) fn check_header(path: &str, api_version: &Spanned<String>, kind: &Spanned<String>, expected: &str) -> Result<(), PipelineError> {
    if api_version.value != API_VERSION {
        return Err(PipelineError::invalid(yaml::at(path, api_version), "apiVersion", format!("`{}` is not supported, expected `{API_VERSION}`", api_version.value)));
    }
    if kind.value != expected {
        return Err(PipelineError::invalid(yaml::at(path, kind), "kind", format!("`{}` found, expected `{expected}`", kind.value)));
    }
    Ok(())
}

/// Normalizes a repository-relative path: `/`-separated, no `.`, no leading or trailing `/`.
/// `None` for absolute paths and paths that leave the repository.
pub fn normalize_repo_path(path: &str) -> Option<String> {
    if path.starts_with('/') || path.contains('\\') {
        return None;
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            other => parts.push(other),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}
