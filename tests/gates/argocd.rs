//! The `argocd` gate against a server replaying real Application objects.

use ferry::gates::{GateContext, GateStatus, ObservationState, run_gate};
use ferry::pipeline::{GateKind, GateSpec};

use super::support::replay::{Replay, get};
use super::support::{Recorder, context, gate, timing_out_after};

const APPLICATION: &str = "/apis/argoproj.io/v1alpha1/namespaces/argocd/applications/shop";

fn argocd_gate() -> GateSpec {
    gate(
        "argocd",
        GateKind::ArgoCd {
            application: "shop".into(),
            namespace: "argocd".into(),
        },
    )
}

fn argocd_context(replay: &Replay) -> GateContext {
    let mut ctx = context();
    ctx.kubeconfig = Some(replay.kubeconfig());
    ctx
}

#[tokio::test]
async fn healthy_at_the_previous_revision_never_passes_only_the_commit_does() {
    let answers = [
        "argocd-application-previous.json",
        "argocd-application-previous.json",
        "argocd-application-syncing.json",
        "argocd-application-progressing.json",
        "argocd-application-healthy.json",
    ];
    let replay = Replay::start(vec![get(APPLICATION, &answers)]).await;
    let recorder = Recorder::default();
    let result = run_gate(&argocd_gate(), &argocd_context(&replay), &recorder).await;
    assert_eq!(result.status, GateStatus::Passed, "{}", result.reason);
    assert_eq!(
        result.reason,
        "Application argocd/shop is Synced to 3f786850e387 and Healthy"
    );
    assert_eq!(
        recorder.states("argocd"),
        [ObservationState::Pending, ObservationState::Passing]
    );
    let details = recorder.details("argocd");
    assert_eq!(
        details[0],
        "Application argocd/shop is Synced at 89e6c98d9288, waiting for 3f786850e387"
    );
    assert_eq!(
        details[2],
        "Application argocd/shop: syncing to 3f786850e387"
    );
    let progressing = "Application argocd/shop is Synced to 3f786850e387, health Progressing: Waiting for rollout to finish: 1 of 3 updated replicas are available...";
    assert_eq!(details[3], progressing);
}

#[tokio::test]
async fn degraded_at_the_commit_fails() {
    let replay = Replay::start(vec![get(
        APPLICATION,
        &[
            "argocd-application-previous.json",
            "argocd-application-degraded.json",
        ],
    )])
    .await;
    let result = run_gate(
        &argocd_gate(),
        &argocd_context(&replay),
        &Recorder::default(),
    )
    .await;
    assert_eq!(result.status, GateStatus::Failed);
    let expected = "Application argocd/shop is Synced to 3f786850e387 but Degraded: Deployment \"web\" exceeded its progress deadline";
    assert_eq!(result.reason, expected);
}

#[tokio::test]
async fn a_missing_application_fails_at_the_timeout() {
    let replay = Replay::start(vec![get(APPLICATION, &["status-404-application.json"])]).await;
    let result = run_gate(
        &timing_out_after(200, argocd_gate()),
        &argocd_context(&replay),
        &Recorder::default(),
    )
    .await;
    assert_eq!(result.status, GateStatus::Failed);
    assert_eq!(
        result.reason,
        "timed out after 200ms: Application argocd/shop does not exist"
    );
}

#[tokio::test]
async fn a_cluster_without_argo_cd_errors_naming_it() {
    let replay = Replay::start(Vec::new()).await;
    let result = run_gate(
        &timing_out_after(200, argocd_gate()),
        &argocd_context(&replay),
        &Recorder::default(),
    )
    .await;
    assert_eq!(result.status, GateStatus::Errored);
    let expected = "timed out after 200ms without a valid observation: the cluster does not serve argoproj.io/v1alpha1 Application (is Argo CD installed?)";
    assert_eq!(result.reason, expected);
}
