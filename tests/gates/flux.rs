//! The `flux` gate against a server replaying real Kustomization objects.

use ferry::gates::{GateContext, GateStatus, ObservationState, run_gate};
use ferry::pipeline::{GateKind, GateSpec};

use super::support::replay::{Replay, get};
use super::support::{Recorder, context, gate};

const KUSTOMIZATION: &str =
    "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/flux-system/kustomizations/shop";

fn flux_gate() -> GateSpec {
    gate(
        "flux",
        GateKind::Flux {
            kustomization: "shop".into(),
            namespace: "flux-system".into(),
        },
    )
}

fn flux_context(replay: &Replay) -> GateContext {
    let mut ctx = context();
    ctx.kubeconfig = Some(replay.kubeconfig());
    ctx
}

#[tokio::test]
async fn ready_with_the_commit_applied_passes() {
    let answers = [
        "flux-kustomization-previous.json",
        "flux-kustomization-progressing.json",
        "flux-kustomization-ready.json",
    ];
    let replay = Replay::start(vec![get(KUSTOMIZATION, &answers)]).await;
    let recorder = Recorder::default();
    let result = run_gate(&flux_gate(), &flux_context(&replay), &recorder).await;
    assert_eq!(result.status, GateStatus::Passed, "{}", result.reason);
    let expected = "Kustomization flux-system/shop is Ready with env/prod@sha1:3f786850e387550fdab836ed7e6dc881de23001b applied";
    assert_eq!(result.reason, expected);
    assert_eq!(
        recorder.states("flux"),
        [ObservationState::Pending, ObservationState::Passing]
    );
    let first = "Kustomization flux-system/shop is at env/prod@sha1:89e6c98d92887913cadf06b2adb97f26cde4849b, waiting for 3f786850e387";
    assert_eq!(recorder.details("flux")[0], first);
}

#[tokio::test]
async fn a_failed_health_check_of_the_commit_fails() {
    let replay = Replay::start(vec![get(
        KUSTOMIZATION,
        &[
            "flux-kustomization-progressing.json",
            "flux-kustomization-health-failed.json",
        ],
    )])
    .await;
    let result = run_gate(&flux_gate(), &flux_context(&replay), &Recorder::default()).await;
    assert_eq!(result.status, GateStatus::Failed);
    let expected = "Kustomization flux-system/shop failed to apply 3f786850e387 (HealthCheckFailed): health check failed after 5m0.03s: timeout waiting for: [Deployment/shop/web status: 'InProgress']";
    assert_eq!(result.reason, expected);
}
