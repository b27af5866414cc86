//! The `argocd` gate: an Argo CD Application is Synced to exactly the output commit and
//! Healthy. Health reported for another revision never counts: it may be stale.

use serde_json::Value;

use super::poll::{Outcome, Probe, Run};
use super::rollout::connect;
use super::{GateContext, GateResult, GateStatus, ObservationState, names_commit, short};
use crate::cluster::{Cluster, ObjectRef};

/// The API version of Argo CD Applications.
const API_VERSION: &str = "argoproj.io/v1alpha1";

/// Runs an `argocd` gate.
pub(super) async fn run(
    run: Run<'_>,
    ctx: &GateContext,
    namespace: &str,
    application: &str,
) -> GateResult {
    let cluster = match connect(ctx).await {
        Ok(cluster) => cluster,
        Err(err) => return run.end(ObservationState::Error, GateStatus::Errored, err.reason()),
    };
    let object = ObjectRef::namespaced(API_VERSION, "Application", namespace, application);
    run.poll(&mut ArgoProbe {
        cluster,
        object,
        commit: &ctx.commit,
    })
    .await
}

struct ArgoProbe<'a> {
    cluster: Cluster,
    object: ObjectRef,
    commit: &'a str,
}

impl Probe for ArgoProbe<'_> {
    async fn observe(&mut self) -> Outcome {
        match self.cluster.get(&self.object).await {
            Ok(Some(app)) => judge(&self.object, &app, self.commit),
            Ok(None) => Outcome::Pending(format!("{} does not exist", self.object)),
            Err(err) => Outcome::Error(err.into()),
        }
    }
}

/// Judges an Application against the output commit.
fn judge(object: &ObjectRef, app: &Value, commit: &str) -> Outcome {
    if let Some(outcome) = operation(object, app, commit) {
        return outcome;
    }
    let text = |pointer: &str| {
        app.pointer(pointer)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let commit_short = short(commit);
    let sync = text("/status/sync/status").unwrap_or("Unknown");
    let synced = revisions(app, "/status/sync");
    if !synced.iter().any(|r| names_commit(r, commit)) {
        let at = synced.first().map(|r| short(r)).unwrap_or("no revision");
        return Outcome::Pending(format!(
            "{object} is {sync} at {at}, waiting for {commit_short}"
        ));
    }
    if sync != "Synced" {
        return Outcome::Pending(format!("{object} is {sync} at {commit_short}"));
    }
    let health = text("/status/health/status").unwrap_or("Unknown");
    let message = text("/status/health/message")
        .map(|m| format!(": {m}"))
        .unwrap_or_default();
    match health {
        "Healthy" => Outcome::Pass(format!("{object} is Synced to {commit_short} and Healthy")),
        "Degraded" => Outcome::Fail(format!(
            "{object} is Synced to {commit_short} but Degraded{message}"
        )),
        other => Outcome::Pending(format!(
            "{object} is Synced to {commit_short}, health {other}{message}"
        )),
    }
}

/// What a sync operation of the output commit says, if one is running or has failed.
fn operation(object: &ObjectRef, app: &Value, commit: &str) -> Option<Outcome> {
    let state = app.pointer("/status/operationState")?;
    let mut revisions = revisions(state, "/syncResult")
        .into_iter()
        .chain(revisions(state, "/operation/sync"));
    if !revisions.any(|r| names_commit(r, commit)) {
        return None;
    }
    let phase = state["phase"].as_str().unwrap_or("");
    let message = state["message"].as_str().unwrap_or("");
    match phase {
        "Failed" | "Error" => Some(Outcome::Fail(format!(
            "{object}: the sync to {} ended {phase}: {message}",
            short(commit)
        ))),
        "Running" | "Terminating" => Some(Outcome::Pending(format!(
            "{object}: syncing to {}",
            short(commit)
        ))),
        _ => None,
    }
}

/// The revision(s) at `pointer`: `revision`, or `revisions` of a multi-source Application.
fn revisions<'a>(app: &'a Value, pointer: &str) -> Vec<&'a str> {
    let Some(at) = app.pointer(pointer) else {
        return Vec::new();
    };
    let single = at["revision"].as_str().filter(|r| !r.is_empty());
    let many = at["revisions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str);
    single.into_iter().chain(many).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const COMMIT: &str = "9f2c1e7d4b3a5f6e8d7c9b0a1f2e3d4c5b6a7f8e";
    const OLD: &str = "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b";

    fn app(sync: &str, revision: &str, health: &str) -> Value {
        json!({"status": {"sync": {"status": sync, "revision": revision}, "health": {"status": health}}})
    }

    fn object() -> ObjectRef {
        ObjectRef::namespaced(API_VERSION, "Application", "argocd", "web")
    }

    #[test]
    fn healthy_at_another_revision_is_pending() {
        let outcome = judge(&object(), &app("Synced", OLD, "Healthy"), COMMIT);
        assert!(
            matches!(outcome, Outcome::Pending(m) if m == "Application argocd/web is Synced at 1a2b3c4d5e6f, waiting for 9f2c1e7d4b3a")
        );
    }

    #[test]
    fn synced_and_healthy_at_the_commit_passes() {
        assert!(matches!(
            judge(&object(), &app("Synced", COMMIT, "Healthy"), COMMIT),
            Outcome::Pass(_)
        ));
        assert!(matches!(
            judge(&object(), &app("OutOfSync", COMMIT, "Healthy"), COMMIT),
            Outcome::Pending(_)
        ));
        assert!(matches!(
            judge(&object(), &app("Synced", COMMIT, "Progressing"), COMMIT),
            Outcome::Pending(_)
        ));
    }

    #[test]
    fn degraded_fails_only_at_the_commit() {
        assert!(matches!(
            judge(&object(), &app("Synced", COMMIT, "Degraded"), COMMIT),
            Outcome::Fail(_)
        ));
        assert!(matches!(
            judge(&object(), &app("Synced", OLD, "Degraded"), COMMIT),
            Outcome::Pending(_)
        ));
    }

    #[test]
    fn a_failed_sync_of_the_commit_fails() {
        let mut failed = app("OutOfSync", OLD, "Healthy");
        failed["status"]["operationState"] = json!({"phase": "Failed", "message": "one or more objects failed to apply", "syncResult": {"revision": COMMIT}});
        assert!(
            matches!(judge(&object(), &failed, COMMIT), Outcome::Fail(m) if m.ends_with("ended Failed: one or more objects failed to apply"))
        );
    }

    #[test]
    fn multi_source_applications_match_any_source_revision() {
        let app = json!({"status": {"sync": {"status": "Synced", "revisions": [OLD, COMMIT]}, "health": {"status": "Healthy"}}});
        assert!(matches!(judge(&object(), &app, COMMIT), Outcome::Pass(_)));
    }
}
