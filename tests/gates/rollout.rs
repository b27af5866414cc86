//! The `kubernetes-rollout` gate against a server replaying real API answers.

use ferry::gates::{GateContext, GateStatus, ObservationState, run_gate};
use ferry::pipeline::{ClusterRef, GateKind};
use serde_json::{Value, json};

use super::support::replay::{Replay, get, get_raw, kubeconfig_for};
use super::support::server::{Response, closed_port};
use super::support::{Recorder, context, gate, timing_out_after};

const DEPLOYMENT: &str = "/apis/apps/v1/namespaces/shop/deployments/web";
const STATEFUL_SET: &str = "/apis/apps/v1/namespaces/shop/statefulsets/db";
const DAEMON_SET: &str = "/apis/apps/v1/namespaces/shop/daemonsets/log-shipper";

/// The Deployment as the renderer writes it: no namespace (the cluster block gives it), and
/// a CPU request the API server will store as `250m`.
fn rendered_deployment() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app.kubernetes.io/name": "web"}},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app.kubernetes.io/name": "web"}},
            "template": {"metadata": {"labels": {"app.kubernetes.io/name": "web"}},
                "spec": {"containers": [{"name": "web", "image": "registry.example.com/acme/web:1.4.2",
                    "ports": [{"name": "http", "containerPort": 8080}],
                    "resources": {"requests": {"cpu": "0.25", "memory": "128Mi"}}}]}}}
    })
}

fn rendered(kind: &str, name: &str, container: &str, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name, "namespace": "shop"},
        "spec": {"template": {"metadata": {"labels": {"app.kubernetes.io/name": name}},
            "spec": {"containers": [{"name": container, "image": image}]}}}
    })
}

fn rollout_context(replay: &Replay, resources: Vec<Value>) -> GateContext {
    let mut ctx = context();
    ctx.kubeconfig = Some(replay.kubeconfig());
    ctx.cluster = Some(ClusterRef {
        kubeconfig: None,
        context: None,
        namespace: Some("shop".into()),
    });
    ctx.resources = resources;
    ctx
}

#[tokio::test]
async fn waits_for_the_rendered_template_and_the_rollout_before_passing() {
    let answers = [
        "status-404-deployment.json",
        "deployment-previous-complete.json",
        "deployment-unobserved.json",
        "deployment-rolling.json",
        "deployment-complete.json",
    ];
    let replay = Replay::start(vec![get(DEPLOYMENT, &answers)]).await;
    let recorder = Recorder::default();
    let ctx = rollout_context(&replay, vec![rendered_deployment()]);
    let result = run_gate(
        &gate("rollout", GateKind::KubernetesRollout),
        &ctx,
        &recorder,
    )
    .await;
    assert_eq!(result.status, GateStatus::Passed, "{}", result.reason);
    assert_eq!(
        result.reason,
        "1 of 1 workloads rolled out: Deployment shop/web"
    );
    assert_eq!(
        recorder.states("rollout"),
        [ObservationState::Pending, ObservationState::Passing]
    );
    let details = recorder.details("rollout");
    let expected = [
        "0 of 1 workloads rolled out; Deployment shop/web does not exist yet",
        "0 of 1 workloads rolled out; Deployment shop/web is not synced yet: spec.template.spec.containers[web].image is registry.example.com/acme/web:1.4.1 in the cluster, registry.example.com/acme/web:1.4.2 in the commit",
        "0 of 1 workloads rolled out; Deployment shop/web: waiting for the controller to observe generation 2 (observed: 1)",
        "0 of 1 workloads rolled out; Deployment shop/web: 1 of 3 new replicas have been updated",
        "1 of 1 workloads rolled out: Deployment shop/web",
    ];
    assert_eq!(details, expected);
    assert!(
        replay
            .requests()
            .iter()
            .all(|r| r == &format!("GET {DEPLOYMENT}"))
    );
}

#[tokio::test]
async fn a_stuck_rollout_fails_fast() {
    let replay = Replay::start(vec![get(
        DEPLOYMENT,
        &["deployment-rolling.json", "deployment-stuck.json"],
    )])
    .await;
    let ctx = rollout_context(&replay, vec![rendered_deployment()]);
    let result = run_gate(
        &gate("rollout", GateKind::KubernetesRollout),
        &ctx,
        &Recorder::default(),
    )
    .await;
    assert_eq!(result.status, GateStatus::Failed);
    assert_eq!(
        result.reason,
        "Deployment shop/web exceeded its progress deadline: ReplicaSet \"web-7c5d8f9b6d\" has timed out progressing."
    );
    assert_eq!(result.observations, 2);
}

#[tokio::test]
async fn every_deployment_stateful_set_and_daemon_set_must_finish() {
    let replay = Replay::start(vec![
        get(DEPLOYMENT, &["deployment-complete.json"]),
        get(
            STATEFUL_SET,
            &[
                "statefulset-rolling.json",
                "statefulset-rolling.json",
                "statefulset-complete.json",
            ],
        ),
        get(
            DAEMON_SET,
            &["daemonset-rolling.json", "daemonset-complete.json"],
        ),
    ])
    .await;
    let service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}});
    let resources = vec![
        rendered_deployment(),
        service,
        rendered(
            "StatefulSet",
            "db",
            "postgres",
            "docker.io/library/postgres:16.4",
        ),
        rendered(
            "DaemonSet",
            "log-shipper",
            "log-shipper",
            "registry.example.com/acme/log-shipper:2.0.1",
        ),
    ];
    let recorder = Recorder::default();
    let result = run_gate(
        &gate("rollout", GateKind::KubernetesRollout),
        &rollout_context(&replay, resources),
        &recorder,
    )
    .await;
    assert_eq!(result.status, GateStatus::Passed, "{}", result.reason);
    assert_eq!(
        result.reason,
        "3 of 3 workloads rolled out: Deployment shop/web, StatefulSet shop/db, DaemonSet shop/log-shipper"
    );
    let first = &recorder.details("rollout")[0];
    assert_eq!(
        first,
        "1 of 3 workloads rolled out; StatefulSet shop/db: 2 of 3 pods are ready (and 1 more waiting)"
    );
}

#[tokio::test]
async fn the_cluster_block_namespace_replaces_the_contexts() {
    let replay = Replay::start(vec![get(DEPLOYMENT, &["deployment-complete.json"])]).await;
    let mut ctx = rollout_context(&replay, vec![rendered_deployment()]);
    ctx.cluster = Some(ClusterRef {
        kubeconfig: None,
        context: Some("other".into()),
        namespace: Some("shop".into()),
    });
    let result = run_gate(
        &gate("rollout", GateKind::KubernetesRollout),
        &ctx,
        &Recorder::default(),
    )
    .await;
    assert_eq!(result.status, GateStatus::Passed, "{}", result.reason);

    ctx.cluster = Some(ClusterRef {
        kubeconfig: None,
        context: Some("other".into()),
        namespace: None,
    });
    let result = run_gate(
        &timing_out_after(200, gate("rollout", GateKind::KubernetesRollout)),
        &ctx,
        &Recorder::default(),
    )
    .await;
    assert!(
        replay
            .requests()
            .contains(&"GET /apis/apps/v1/namespaces/elsewhere/deployments/web".to_string())
    );
    assert_eq!(
        result.status,
        GateStatus::Errored,
        "the replay server does not serve that path: {}",
        result.reason
    );
}

#[tokio::test]
async fn nothing_to_roll_out_passes() {
    let mut ctx = context();
    ctx.resources =
        vec![json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}})];
    let result = run_gate(
        &gate("rollout", GateKind::KubernetesRollout),
        &ctx,
        &Recorder::default(),
    )
    .await;
    assert_eq!(result.status, GateStatus::Passed);
    assert_eq!(
        result.reason,
        "the rendered output has no Deployment, StatefulSet or DaemonSet to wait for"
    );
}

#[tokio::test]
async fn an_unreachable_cluster_errors_at_the_timeout() {
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = dir.path().join("kubeconfig");
    let server = format!("http://127.0.0.1:{}", closed_port());
    std::fs::write(&kubeconfig, kubeconfig_for(&server)).expect("write kubeconfig");
    let mut ctx = context();
    ctx.kubeconfig = Some(kubeconfig);
    ctx.resources = vec![rendered_deployment()];
    let result = run_gate(
        &timing_out_after(300, gate("rollout", GateKind::KubernetesRollout)),
        &ctx,
        &Recorder::default(),
    )
    .await;
    assert_eq!(result.status, GateStatus::Errored);
    let expected = format!(
        "timed out after 300ms without a valid observation: failed to get Deployment shop/web at {server}/: "
    );
    assert!(result.reason.starts_with(&expected), "{}", result.reason);
}

#[tokio::test]
async fn without_a_kubeconfig_the_gate_errors_at_once() {
    let mut ctx = context();
    ctx.resources = vec![rendered_deployment()];
    let result = run_gate(
        &gate("rollout", GateKind::KubernetesRollout),
        &ctx,
        &Recorder::default(),
    )
    .await;
    assert_eq!(result.status, GateStatus::Errored);
    assert!(
        result.reason.starts_with("no kubeconfig"),
        "{}",
        result.reason
    );
}

#[tokio::test]
async fn a_kubeconfig_that_is_not_one_errors_at_once_naming_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, "clusters: [").expect("write");
    let mut ctx = context();
    ctx.kubeconfig = Some(kubeconfig.clone());
    ctx.resources = vec![rendered_deployment()];
    let result = run_gate(
        &gate("rollout", GateKind::KubernetesRollout),
        &ctx,
        &Recorder::default(),
    )
    .await;
    assert_eq!(result.status, GateStatus::Errored);
    assert!(
        result.reason.starts_with(&format!(
            "failed to load kubeconfig {}",
            kubeconfig.display()
        )),
        "{}",
        result.reason
    );
}

#[tokio::test]
async fn an_answer_that_is_not_json_is_an_error() {
    let html = Response {
        status: 200,
        content_type: "text/html".into(),
        body: b"<html>proxy login</html>".to_vec(),
    };
    let replay = Replay::start(vec![get_raw(DEPLOYMENT, html)]).await;
    let ctx = rollout_context(&replay, vec![rendered_deployment()]);
    let result = run_gate(
        &timing_out_after(200, gate("rollout", GateKind::KubernetesRollout)),
        &ctx,
        &Recorder::default(),
    )
    .await;
    assert_eq!(result.status, GateStatus::Errored);
    assert!(
        result
            .reason
            .contains("failed to get Deployment shop/web at http://127.0.0.1:"),
        "{}",
        result.reason
    );
    assert!(
        result.reason.contains("expected value at line 1 column 1"),
        "{}",
        result.reason
    );
}
