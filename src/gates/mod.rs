//! Health gates: the checks that decide whether a stage is healthy *with the promoted
//! commit* — Kubernetes rollout, Argo CD Application, Flux Kustomization, HTTP, Prometheus
//! and command gates.
//!
//! Every gate polls at its interval until it passes, fails definitively, or its timeout ends.
//! Only observations made for this promotion count: a workload must carry the rendered pod
//! template and have its generation observed, an Argo CD Application must be synced to the
//! output commit, a Flux Kustomization must have applied it, and no observation made before
//! [`GateContext::applied_at`] is taken. A gate that cannot observe (an unreachable URL or
//! cluster, an answer that is not JSON, …) is retried until its timeout.

mod argocd;
mod command;
mod error;
mod flux;
mod http;
mod poll;
mod prometheus;
mod rollout;
mod template;
mod workload;

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::pipeline::{ClusterRef, GateKind, GateSpec};

pub use error::GateError;

/// What a gate run knows about the promotion it verifies.
#[derive(Debug, Clone)]
pub struct GateContext {
    /// The stage being verified.
    pub stage: String,
    /// The revision id (`r-…`).
    pub revision: String,
    /// The output commit ferry wrote for this promotion (full hex).
    pub commit: String,
    /// The working directory of command gates.
    pub repo_root: PathBuf,
    /// The directory holding the rendered files (`FERRY_MANIFESTS` of command gates).
    pub manifests_dir: PathBuf,
    /// The rendered objects; the rollout gate checks their Deployments, StatefulSets and
    /// DaemonSets.
    pub resources: Vec<serde_json::Value>,
    /// The stage's cluster block; a relative kubeconfig path is relative to `repo_root`.
    pub cluster: Option<ClusterRef>,
    /// The default kubeconfig, used when the cluster block names none.
    pub kubeconfig: Option<PathBuf>,
    /// Values for headers read `fromEnv` (the library reads no environment variables).
    pub env: BTreeMap<String, String>,
    /// When the commit was written or applied: observations older than this never count.
    pub applied_at: DateTime<Utc>,
}

/// How a gate ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GateStatus {
    /// The check held for this commit.
    Passed,
    /// The gate observed the stage unhealthy, or not healthy before its timeout.
    Failed,
    /// The gate never made a valid observation before its timeout (the last error is in
    /// the reason), or it cannot run at all.
    Errored,
    /// Stopped before it ended because another gate of the promotion did not pass.
    Cancelled,
}

impl GateStatus {
    /// `passed`, `failed` or `errored`.
    pub fn as_str(self) -> &'static str {
        match self {
            GateStatus::Passed => "passed",
            GateStatus::Failed => "failed",
            GateStatus::Errored => "errored",
            GateStatus::Cancelled => "cancelled",
        }
    }
}

/// The outcome of one gate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateResult {
    /// The gate's name from the policy.
    pub name: String,
    /// The gate type as written in policies: `http`, `kubernetes-rollout`, …
    pub kind: String,
    /// How it ended.
    pub status: GateStatus,
    /// Why, in words a person can act on.
    pub reason: String,
    /// How many observations were made.
    pub observations: u32,
    /// When the gate started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: DateTime<Utc>,
}

/// What one observation showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObservationState {
    /// The change has not arrived yet (not synced, rolling out, not yet observed).
    Pending,
    /// The check holds.
    Passing,
    /// The check does not hold.
    Failing,
    /// The gate could not observe (unreachable, bad answer).
    Error,
}

/// One observation of a gate, as reported while it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    /// 1 for the first observation.
    pub attempt: u32,
    /// What it showed.
    pub state: ObservationState,
    /// What it showed, in words.
    pub detail: String,
}

/// Receives progress while gates run (the CLI draws it; the daemon may log it).
pub trait ProgressSink: Send + Sync {
    /// `gate` made an observation.
    fn observed(&self, gate: &str, observation: &Observation);
    /// `result.name` finished.
    fn finished(&self, result: &GateResult);
}

/// A [`ProgressSink`] that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl ProgressSink for NoProgress {
    fn observed(&self, _gate: &str, _observation: &Observation) {}
    fn finished(&self, _result: &GateResult) {}
}

/// The gate type as written in policies.
pub fn kind_name(kind: &GateKind) -> &'static str {
    match kind {
        GateKind::KubernetesRollout => "kubernetes-rollout",
        GateKind::ArgoCd { .. } => "argocd",
        GateKind::Flux { .. } => "flux",
        GateKind::Http(_) => "http",
        GateKind::Prometheus(_) => "prometheus",
        GateKind::Command { .. } => "command",
    }
}

/// Runs all gates concurrently until every one passes, or one does not: verification ends
/// there and the gates still running are stopped and reported as cancelled.
/// The results are in the order of `specs`.
pub async fn run_gates(
    specs: &[GateSpec],
    ctx: &GateContext,
    progress: &dyn ProgressSink,
) -> Vec<GateResult> {
    use futures_util::StreamExt;
    use futures_util::stream::FuturesUnordered;

    let started = Utc::now();
    let mut running: FuturesUnordered<_> = specs
        .iter()
        .enumerate()
        .map(|(i, spec)| async move { (i, run_gate(spec, ctx, progress).await) })
        .collect();
    let mut results: Vec<Option<GateResult>> = vec![None; specs.len()];
    let mut failed: Option<String> = None;
    while let Some((i, result)) = running.next().await {
        if result.status != GateStatus::Passed {
            failed = Some(result.name.clone());
        }
        results[i] = Some(result);
        if failed.is_some() {
            break;
        }
    }
    drop(running);
    let failed = failed.unwrap_or_default();
    results
        .into_iter()
        .zip(specs)
        .map(|(result, spec)| result.unwrap_or_else(|| cancelled(spec, &failed, started, progress)))
        .collect()
}

fn cancelled(
    spec: &GateSpec,
    failed: &str,
    started: DateTime<Utc>,
    progress: &dyn ProgressSink,
) -> GateResult {
    let result = GateResult {
        name: spec.name.clone(),
        kind: kind_name(&spec.kind).to_string(),
        status: GateStatus::Cancelled,
        reason: format!("stopped: gate {failed} did not pass"),
        observations: 0,
        started_at: started,
        finished_at: Utc::now(),
    };
    progress.finished(&result);
    result
}

/// Runs one gate until it passes, fails definitively or times out.
pub async fn run_gate(
    spec: &GateSpec,
    ctx: &GateContext,
    progress: &dyn ProgressSink,
) -> GateResult {
    let run = poll::Run::start(spec, ctx, progress);
    let result = match &spec.kind {
        GateKind::KubernetesRollout => rollout::run(run, ctx).await,
        GateKind::ArgoCd {
            application,
            namespace,
        } => argocd::run(run, ctx, namespace, application).await,
        GateKind::Flux {
            kustomization,
            namespace,
        } => flux::run(run, ctx, namespace, kustomization).await,
        GateKind::Http(gate) => http::run(run, ctx, gate).await,
        GateKind::Prometheus(gate) => prometheus::run(run, ctx, gate).await,
        GateKind::Command { run: argv } => command::run(run, ctx, argv).await,
    };
    progress.finished(&result);
    result
}

/// A short form of a commit id for messages.
fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}

/// Whether a revision as Argo CD or Flux reports it names exactly `commit`: a bare hash,
/// `branch@sha1:<hash>` (Flux 2) or `branch/<hash>` (older Flux). Prefixes never match.
fn names_commit(revision: &str, commit: &str) -> bool {
    let hash = match revision.rsplit_once('@') {
        Some((_, digest)) => digest.split_once(':').map_or(digest, |(_, hash)| hash),
        None => revision.rsplit_once('/').map_or(revision, |(_, hash)| hash),
    };
    !commit.is_empty() && hash.eq_ignore_ascii_case(commit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions_name_a_commit_only_exactly() {
        let commit = "9f2c1e7d4b3a5f6e8d7c9b0a1f2e3d4c5b6a7f8e";
        assert!(names_commit(commit, commit));
        assert!(names_commit(&format!("env/prod@sha1:{commit}"), commit));
        assert!(names_commit(&format!("main/{commit}"), commit));
        assert!(names_commit(&commit.to_uppercase(), commit));
        assert!(!names_commit(&commit[..12], commit));
        assert!(!names_commit(
            &format!("main@sha1:{}", &commit[..7]),
            commit
        ));
        assert!(!names_commit("", ""));
    }

    #[test]
    fn gate_runs_can_be_spawned() {
        fn is_send<T: Send>(_: &T) {}
        let ctx = GateContext {
            stage: String::new(),
            revision: String::new(),
            commit: String::new(),
            repo_root: PathBuf::new(),
            manifests_dir: PathBuf::new(),
            resources: Vec::new(),
            cluster: None,
            kubeconfig: None,
            env: BTreeMap::new(),
            applied_at: Utc::now(),
        };
        is_send(&run_gates(&[], &ctx, &NoProgress));
    }

    fn command(name: &str, script: &str) -> GateSpec {
        GateSpec {
            name: name.into(),
            timeout: std::time::Duration::from_secs(120),
            interval: std::time::Duration::from_millis(50),
            kind: GateKind::Command {
                run: vec!["sh".into(), "-c".into(), script.into()],
            },
        }
    }

    #[test]
    fn a_failing_gate_stops_the_others() {
        let dir = tempfile::tempdir().expect("temp dir");
        let ctx = GateContext {
            stage: "dev".into(),
            revision: "r-1".into(),
            commit: "c".into(),
            repo_root: dir.path().to_path_buf(),
            manifests_dir: dir.path().to_path_buf(),
            resources: Vec::new(),
            cluster: None,
            kubeconfig: None,
            env: BTreeMap::new(),
            applied_at: Utc::now(),
        };
        let specs = [command("slow", "sleep 60"), command("broken", "exit 4")];
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let results = runtime.block_on(run_gates(&specs, &ctx, &NoProgress));
        let statuses: Vec<GateStatus> = results.iter().map(|r| r.status).collect();
        assert_eq!(statuses, [GateStatus::Cancelled, GateStatus::Failed]);
        assert!(
            results[0].reason.contains("broken"),
            "{}",
            results[0].reason
        );
    }
}
