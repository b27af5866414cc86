//! The `kubernetes-rollout` gate: every Deployment, StatefulSet and DaemonSet of the rendered
//! output carries the rendered pod template in the cluster and has rolled it out.

use serde_json::Value;

use super::poll::{Outcome, Probe, Run};
use super::template::first_difference;
use super::workload::{self, KINDS, Rollout};
use super::{GateContext, GateError, GateResult, GateStatus, ObservationState};
use crate::cluster::{self, Cluster, ObjectRef};

/// How many workloads are read from the API server at the same time.
const CONCURRENT_LOOKUPS: usize = 8;

/// Runs a `kubernetes-rollout` gate.
pub(super) async fn run(run: Run<'_>, ctx: &GateContext) -> GateResult {
    let rendered: Vec<(ObjectRef, &Value)> = ctx
        .resources
        .iter()
        .filter_map(|resource| {
            ObjectRef::of(resource)
                .ok()
                .map(|object| (object, resource))
        })
        .filter(|(object, _)| object.group() == "apps" && KINDS.contains(&object.kind.as_str()))
        .collect();
    if rendered.is_empty() {
        let reason = "the rendered output has no Deployment, StatefulSet or DaemonSet to wait for"
            .to_string();
        return run.end(ObservationState::Passing, GateStatus::Passed, reason);
    }
    let cluster = match connect(ctx).await {
        Ok(cluster) => cluster,
        Err(err) => return run.end(ObservationState::Error, GateStatus::Errored, err.reason()),
    };
    let workloads = rendered
        .into_iter()
        .map(|(object, manifest)| {
            let namespace = object
                .namespace
                .clone()
                .unwrap_or_else(|| cluster.default_namespace().to_string());
            (
                ObjectRef {
                    namespace: Some(namespace),
                    ..object
                },
                manifest,
            )
        })
        .collect();
    run.poll(&mut RolloutProbe { cluster, workloads }).await
}

/// A connection to the stage's cluster.
pub(super) async fn connect(ctx: &GateContext) -> Result<Cluster, GateError> {
    let cluster = ctx
        .cluster
        .as_ref()
        .map(|c| cluster::resolve_paths(c, &ctx.repo_root))
        .transpose()?;
    Ok(Cluster::connect(cluster.as_ref(), ctx.kubeconfig.as_deref()).await?)
}

struct RolloutProbe<'a> {
    cluster: Cluster,
    workloads: Vec<(ObjectRef, &'a Value)>,
}

impl Probe for RolloutProbe<'_> {
    async fn observe(&mut self) -> Outcome {
        let mut states = Vec::with_capacity(self.workloads.len());
        for batch in self.workloads.chunks(CONCURRENT_LOOKUPS) {
            let lookups = batch
                .iter()
                .map(|(object, manifest)| self.check(object, manifest));
            states.extend(futures_util::future::join_all(lookups).await);
        }
        let mut waiting = Vec::new();
        for state in states {
            match state {
                Err(err) => return Outcome::Error(err),
                Ok(Rollout::Failed(message)) => return Outcome::Fail(message),
                Ok(Rollout::Waiting(message)) => waiting.push(message),
                Ok(Rollout::Done(_)) => {}
            }
        }
        let total = self.workloads.len();
        match waiting.as_slice() {
            [] => Outcome::Pass(format!(
                "{total} of {total} workloads rolled out: {}",
                self.names()
            )),
            [first, rest @ ..] => {
                let more = if rest.is_empty() {
                    String::new()
                } else {
                    format!(" (and {} more waiting)", rest.len())
                };
                Outcome::Pending(format!(
                    "{} of {total} workloads rolled out; {first}{more}",
                    total - waiting.len()
                ))
            }
        }
    }
}

impl RolloutProbe<'_> {
    /// The rollout state of one workload, its message naming it.
    async fn check(&self, object: &ObjectRef, manifest: &Value) -> Result<Rollout, GateError> {
        let Some(live) = self.cluster.get(object).await? else {
            return Ok(Rollout::Waiting(format!("{object} does not exist yet")));
        };
        if let Some(difference) = first_difference(manifest, &live) {
            return Ok(Rollout::Waiting(format!(
                "{object} is not synced yet: {difference}"
            )));
        }
        Ok(match workload::status(&object.kind, &live) {
            Rollout::Waiting(message) => Rollout::Waiting(format!("{object}: {message}")),
            Rollout::Done(message) => Rollout::Done(format!("{object}: {message}")),
            Rollout::Failed(message) => Rollout::Failed(format!("{object} {message}")),
        })
    }

    fn names(&self) -> String {
        let names: Vec<String> = self
            .workloads
            .iter()
            .map(|(object, _)| object.to_string())
            .collect();
        names.join(", ")
    }
}
