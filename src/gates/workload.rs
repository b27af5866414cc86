//! When a Deployment, StatefulSet or DaemonSet has finished rolling out, judged from its
//! live object with the rules of `kubectl rollout status`.

use serde_json::Value;

/// The rollout state of one workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Rollout {
    Waiting(String),
    Done(String),
    /// The rollout cannot finish (its progress deadline passed).
    Failed(String),
}

/// The workload kinds the rollout gate checks.
pub(crate) const KINDS: &[&str] = &["Deployment", "StatefulSet", "DaemonSet"];

/// The rollout state of a live object of `kind` (one of [`KINDS`]).
pub(crate) fn status(kind: &str, live: &Value) -> Rollout {
    match kind {
        "Deployment" => deployment(live),
        "StatefulSet" => stateful_set(live),
        _ => daemon_set(live),
    }
}

fn int(live: &Value, pointer: &str) -> i64 {
    live.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn text<'a>(live: &'a Value, pointer: &str) -> &'a str {
    live.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// `(generation, observedGeneration)`.
fn generations(live: &Value) -> (i64, i64) {
    (
        int(live, "/metadata/generation"),
        int(live, "/status/observedGeneration"),
    )
}

fn not_observed(live: &Value) -> Rollout {
    let (generation, observed) = generations(live);
    Rollout::Waiting(format!(
        "waiting for the controller to observe generation {generation} (observed: {observed})"
    ))
}

fn deployment(live: &Value) -> Rollout {
    let (generation, observed) = generations(live);
    if generation > observed {
        return not_observed(live);
    }
    let conditions = live
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let progressing = conditions.iter().find(|c| c["type"] == "Progressing");
    if let Some(condition) = progressing.filter(|c| c["reason"] == "ProgressDeadlineExceeded") {
        let message = condition["message"].as_str().unwrap_or_default();
        return Rollout::Failed(format!("exceeded its progress deadline: {message}"));
    }
    let updated = int(live, "/status/updatedReplicas");
    let available = int(live, "/status/availableReplicas");
    if let Some(desired) = live.pointer("/spec/replicas").and_then(Value::as_i64)
        && updated < desired
    {
        return Rollout::Waiting(format!(
            "{updated} of {desired} new replicas have been updated"
        ));
    }
    let replicas = int(live, "/status/replicas");
    if replicas > updated {
        return Rollout::Waiting(format!(
            "{} old replicas are pending termination",
            replicas - updated
        ));
    }
    if available < updated {
        return Rollout::Waiting(format!(
            "{available} of {updated} updated replicas are available"
        ));
    }
    Rollout::Done(format!(
        "{available} of {updated} updated replicas are available"
    ))
}

fn stateful_set(live: &Value) -> Rollout {
    let (generation, observed) = generations(live);
    if observed == 0 || generation > observed {
        return not_observed(live);
    }
    let desired = live.pointer("/spec/replicas").and_then(Value::as_i64);
    let ready = int(live, "/status/readyReplicas");
    if let Some(desired) = desired.filter(|&d| ready < d) {
        return Rollout::Waiting(format!("{ready} of {desired} pods are ready"));
    }
    if text(live, "/spec/updateStrategy/type") == "OnDelete" {
        return Rollout::Done(format!(
            "{ready} pods are ready (OnDelete: pods are replaced only when deleted)"
        ));
    }
    let updated = int(live, "/status/updatedReplicas");
    if live
        .pointer("/spec/updateStrategy/rollingUpdate")
        .is_some_and(|r| !r.is_null())
    {
        return partitioned(live, desired, updated);
    }
    let (update, current) = (
        text(live, "/status/updateRevision"),
        text(live, "/status/currentRevision"),
    );
    if update != current {
        return Rollout::Waiting(format!(
            "{updated} pods are at revision {update}, waiting for the rolling update to complete"
        ));
    }
    Rollout::Done(format!(
        "{} pods are at revision {current}",
        int(live, "/status/currentReplicas")
    ))
}

/// A rolling update with parameters: done when the pods above the partition are updated.
fn partitioned(live: &Value, desired: Option<i64>, updated: i64) -> Rollout {
    let partition = live
        .pointer("/spec/updateStrategy/rollingUpdate/partition")
        .and_then(Value::as_i64);
    if let (Some(desired), Some(partition)) = (desired, partition)
        && updated < desired - partition
    {
        return Rollout::Waiting(format!(
            "partitioned rollout: {updated} of {} new pods have been updated",
            desired - partition
        ));
    }
    Rollout::Done(format!("{updated} new pods have been updated"))
}

fn daemon_set(live: &Value) -> Rollout {
    let (generation, observed) = generations(live);
    if generation > observed {
        return not_observed(live);
    }
    let desired = int(live, "/status/desiredNumberScheduled");
    let updated = int(live, "/status/updatedNumberScheduled");
    let available = int(live, "/status/numberAvailable");
    if text(live, "/spec/updateStrategy/type") == "OnDelete" {
        return Rollout::Done(format!(
            "{available} of {desired} pods are available (OnDelete: pods are replaced only when deleted)"
        ));
    }
    if updated < desired {
        return Rollout::Waiting(format!("{updated} of {desired} new pods have been updated"));
    }
    if available < desired {
        return Rollout::Waiting(format!(
            "{available} of {desired} updated pods are available"
        ));
    }
    Rollout::Done(format!(
        "{available} of {desired} updated pods are available"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deploy(generation: i64, observed: i64, replicas: i64, status: Value) -> Value {
        let mut status = status;
        status["observedGeneration"] = json!(observed);
        json!({"metadata": {"generation": generation}, "spec": {"replicas": replicas}, "status": status})
    }

    #[test]
    fn deployments_follow_kubectl() {
        let unobserved = deploy(
            3,
            2,
            3,
            json!({"replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}),
        );
        assert!(
            matches!(status("Deployment", &unobserved), Rollout::Waiting(m) if m.contains("generation 3"))
        );
        let updating = deploy(
            3,
            3,
            3,
            json!({"replicas": 4, "updatedReplicas": 1, "availableReplicas": 3}),
        );
        assert_eq!(
            status("Deployment", &updating),
            Rollout::Waiting("1 of 3 new replicas have been updated".into())
        );
        let terminating = deploy(
            3,
            3,
            3,
            json!({"replicas": 4, "updatedReplicas": 3, "availableReplicas": 3}),
        );
        assert_eq!(
            status("Deployment", &terminating),
            Rollout::Waiting("1 old replicas are pending termination".into())
        );
        let unavailable = deploy(
            3,
            3,
            3,
            json!({"replicas": 3, "updatedReplicas": 3, "availableReplicas": 2}),
        );
        assert_eq!(
            status("Deployment", &unavailable),
            Rollout::Waiting("2 of 3 updated replicas are available".into())
        );
        let done = deploy(
            3,
            3,
            3,
            json!({"replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}),
        );
        assert!(matches!(status("Deployment", &done), Rollout::Done(_)));
    }

    #[test]
    fn a_passed_progress_deadline_fails_once_observed() {
        let condition = json!({"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "ReplicaSet \"web-5d\" has timed out progressing."});
        let stuck = deploy(
            2,
            2,
            1,
            json!({"replicas": 2, "updatedReplicas": 1, "conditions": [condition]}),
        );
        assert_eq!(
            status("Deployment", &stuck),
            Rollout::Failed(
                "exceeded its progress deadline: ReplicaSet \"web-5d\" has timed out progressing."
                    .into()
            )
        );
    }

    #[test]
    fn stateful_sets_wait_for_ready_pods_and_the_partition() {
        let sts = |observed: i64, ready: i64, updated: i64| {
            json!({"metadata": {"generation": 2}, "spec": {"replicas": 3, "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}},
                   "status": {"observedGeneration": observed, "readyReplicas": ready, "updatedReplicas": updated}})
        };
        assert!(matches!(
            status("StatefulSet", &sts(0, 3, 3)),
            Rollout::Waiting(_)
        ));
        assert_eq!(
            status("StatefulSet", &sts(2, 2, 3)),
            Rollout::Waiting("2 of 3 pods are ready".into())
        );
        assert!(
            matches!(status("StatefulSet", &sts(2, 3, 1)), Rollout::Waiting(m) if m.contains("1 of 2 new pods"))
        );
        assert!(matches!(
            status("StatefulSet", &sts(2, 3, 2)),
            Rollout::Done(_)
        ));
    }

    #[test]
    fn stateful_sets_without_rolling_update_parameters_compare_revisions() {
        let sts = |update: &str| {
            json!({"metadata": {"generation": 1}, "spec": {"replicas": 1, "updateStrategy": {"type": "RollingUpdate"}},
                   "status": {"observedGeneration": 1, "readyReplicas": 1, "currentReplicas": 1, "updatedReplicas": 1, "currentRevision": "web-1", "updateRevision": update}})
        };
        assert!(matches!(
            status("StatefulSet", &sts("web-2")),
            Rollout::Waiting(_)
        ));
        assert!(matches!(
            status("StatefulSet", &sts("web-1")),
            Rollout::Done(_)
        ));
    }

    #[test]
    fn daemon_sets_wait_for_updated_and_available_pods() {
        let ds = |updated: i64, available: i64| {
            json!({"metadata": {"generation": 4}, "spec": {"updateStrategy": {"type": "RollingUpdate"}},
                   "status": {"observedGeneration": 4, "desiredNumberScheduled": 3, "updatedNumberScheduled": updated, "numberAvailable": available}})
        };
        assert_eq!(
            status("DaemonSet", &ds(2, 3)),
            Rollout::Waiting("2 of 3 new pods have been updated".into())
        );
        assert_eq!(
            status("DaemonSet", &ds(3, 2)),
            Rollout::Waiting("2 of 3 updated pods are available".into())
        );
        assert!(matches!(status("DaemonSet", &ds(3, 3)), Rollout::Done(_)));
    }
}
