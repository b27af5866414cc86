//! The `flux` gate: a Flux Kustomization is Ready with `lastAppliedRevision` naming the
//! output commit.

use serde_json::Value;

use super::poll::{Outcome, Probe, Run};
use super::rollout::connect;
use super::{GateContext, GateResult, GateStatus, ObservationState, names_commit, short};
use crate::cluster::{Cluster, ObjectRef};

/// The API version of Flux Kustomizations (Flux 2.0 and later).
const API_VERSION: &str = "kustomize.toolkit.fluxcd.io/v1";

/// Runs a `flux` gate.
pub(super) async fn run(
    run: Run<'_>,
    ctx: &GateContext,
    namespace: &str,
    kustomization: &str,
) -> GateResult {
    let cluster = match connect(ctx).await {
        Ok(cluster) => cluster,
        Err(err) => return run.end(ObservationState::Error, GateStatus::Errored, err.reason()),
    };
    let object = ObjectRef::namespaced(API_VERSION, "Kustomization", namespace, kustomization);
    run.poll(&mut FluxProbe {
        cluster,
        object,
        commit: &ctx.commit,
    })
    .await
}

struct FluxProbe<'a> {
    cluster: Cluster,
    object: ObjectRef,
    commit: &'a str,
}

impl Probe for FluxProbe<'_> {
    async fn observe(&mut self) -> Outcome {
        match self.cluster.get(&self.object).await {
            Ok(Some(kustomization)) => judge(&self.object, &kustomization, self.commit),
            Ok(None) => Outcome::Pending(format!("{} does not exist", self.object)),
            Err(err) => Outcome::Error(err.into()),
        }
    }
}

/// Judges a Kustomization against the output commit.
fn judge(object: &ObjectRef, kustomization: &Value, commit: &str) -> Outcome {
    let status = &kustomization["status"];
    let applied = status["lastAppliedRevision"].as_str().unwrap_or("");
    let attempted = status["lastAttemptedRevision"].as_str().unwrap_or("");
    let generation = kustomization
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let observed = status["observedGeneration"].as_i64().unwrap_or(0);
    if generation > observed {
        return Outcome::Pending(format!(
            "{object}: waiting for generation {generation} to be reconciled (observed: {observed})"
        ));
    }
    let ready = Ready::of(status);
    let commit_short = short(commit);
    if names_commit(applied, commit) {
        return match ready.status {
            "True" => Outcome::Pass(format!("{object} is Ready with {applied} applied")),
            "False" => Outcome::Fail(format!(
                "{object} applied {commit_short} but is not Ready {ready}"
            )),
            other => Outcome::Pending(format!(
                "{object} applied {commit_short}, Ready is {other} {ready}"
            )),
        };
    }
    if names_commit(attempted, commit) && ready.status == "False" {
        return Outcome::Fail(format!("{object} failed to apply {commit_short} {ready}"));
    }
    let at = if applied.is_empty() {
        "nothing applied".to_string()
    } else {
        format!("at {applied}")
    };
    Outcome::Pending(format!("{object} is {at}, waiting for {commit_short}"))
}

/// The `Ready` condition: its status, and its reason and message as `(Reason): message`.
struct Ready<'a> {
    status: &'a str,
    reason: &'a str,
    message: &'a str,
}

impl<'a> Ready<'a> {
    fn of(status: &'a Value) -> Ready<'a> {
        let condition = status["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == "Ready");
        let field = |name: &str| {
            condition
                .and_then(|c| c[name].as_str())
                .filter(|s| !s.is_empty())
        };
        Ready {
            status: field("status").unwrap_or("Unknown"),
            reason: field("reason").unwrap_or("no reason"),
            message: field("message").unwrap_or(""),
        }
    }
}

impl std::fmt::Display for Ready<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "({}): {}", self.reason, self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const COMMIT: &str = "9f2c1e7d4b3a5f6e8d7c9b0a1f2e3d4c5b6a7f8e";
    const OLD: &str = "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b";

    fn kustomization(applied: &str, attempted: &str, ready: &str, reason: &str) -> Value {
        json!({"metadata": {"generation": 2}, "status": {"observedGeneration": 2, "lastAppliedRevision": applied, "lastAttemptedRevision": attempted,
               "conditions": [{"type": "Ready", "status": ready, "reason": reason, "message": "msg"}]}})
    }

    fn object() -> ObjectRef {
        ObjectRef::namespaced(API_VERSION, "Kustomization", "flux-system", "apps")
    }

    #[test]
    fn ready_with_the_commit_applied_passes_in_both_revision_formats() {
        let v2 = kustomization(
            &format!("env/prod@sha1:{COMMIT}"),
            "",
            "True",
            "ReconciliationSucceeded",
        );
        assert!(matches!(judge(&object(), &v2, COMMIT), Outcome::Pass(_)));
        let v1 = kustomization(
            &format!("env/prod/{COMMIT}"),
            "",
            "True",
            "ReconciliationSucceeded",
        );
        assert!(matches!(judge(&object(), &v1, COMMIT), Outcome::Pass(_)));
    }

    #[test]
    fn ready_at_another_revision_is_pending() {
        let old = kustomization(
            &format!("env/prod@sha1:{OLD}"),
            "",
            "True",
            "ReconciliationSucceeded",
        );
        assert!(
            matches!(judge(&object(), &old, COMMIT), Outcome::Pending(m) if m.contains("waiting for 9f2c1e7d4b3a"))
        );
        let prefix = kustomization(
            &format!("env/prod@sha1:{}", &COMMIT[..12]),
            "",
            "True",
            "ReconciliationSucceeded",
        );
        assert!(
            matches!(judge(&object(), &prefix, COMMIT), Outcome::Pending(_)),
            "only the exact hash counts"
        );
    }

    #[test]
    fn not_ready_for_the_commit_fails() {
        let failed = kustomization(
            &format!("env/prod@sha1:{OLD}"),
            &format!("env/prod@sha1:{COMMIT}"),
            "False",
            "HealthCheckFailed",
        );
        assert!(
            matches!(judge(&object(), &failed, COMMIT), Outcome::Fail(m) if m.contains("failed to apply 9f2c1e7d4b3a (HealthCheckFailed)"))
        );
        let progressing = kustomization(
            &format!("env/prod@sha1:{OLD}"),
            &format!("env/prod@sha1:{COMMIT}"),
            "Unknown",
            "Progressing",
        );
        assert!(matches!(
            judge(&object(), &progressing, COMMIT),
            Outcome::Pending(_)
        ));
    }

    #[test]
    fn an_unreconciled_spec_change_is_pending() {
        let mut stale = kustomization(
            &format!("env/prod@sha1:{COMMIT}"),
            "",
            "True",
            "ReconciliationSucceeded",
        );
        stale["metadata"]["generation"] = json!(3);
        assert!(matches!(
            judge(&object(), &stale, COMMIT),
            Outcome::Pending(_)
        ));
    }
}
