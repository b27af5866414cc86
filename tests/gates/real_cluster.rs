//! The Kubernetes cases against a real cluster. Ignored by default; run them with
//!
//! ```text
//! FERRY_TEST_KUBECONFIG=~/.kube/kind-config cargo test --test main real_cluster -- --ignored
//! ```
//!
//! Each test creates its own namespace `ferry-test-…` and deletes it at the end. The Argo CD
//! and Flux cases run only when their CRDs are installed.

use std::path::PathBuf;
use std::time::Duration;

use ferry::cluster::{ApplyAction, Cluster, ObjectRef, apply, client_for};
use ferry::gates::{GateContext, GateStatus, run_gate};
use ferry::pipeline::{ClusterRef, GateKind, GateSpec};
use serde_json::{Value, json};

use super::support::{Recorder, context, gate, timing_out_after};

fn kubeconfig() -> PathBuf {
    match std::env::var_os("FERRY_TEST_KUBECONFIG") {
        Some(path) => PathBuf::from(path),
        None => panic!(
            "set FERRY_TEST_KUBECONFIG to the kubeconfig of a test cluster to run these tests"
        ),
    }
}

fn unique_namespace() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("ferry-test-{}-{nanos}", std::process::id())
}

fn deployment(name: &str, image: &str, progress_deadline_seconds: u32) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": 2, "progressDeadlineSeconds": progress_deadline_seconds,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": image, "resources": {"requests": {"cpu": "0.01", "memory": "8Mi"}}}]}}}
    })
}

/// Runs `body` with a fresh namespace in the test cluster, then deletes the namespace.
async fn in_namespace<F, Fut>(body: F)
where
    F: FnOnce(GateContext) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let namespace = unique_namespace();
    let mut ctx = context();
    ctx.kubeconfig = Some(kubeconfig());
    ctx.cluster = Some(ClusterRef {
        kubeconfig: None,
        context: None,
        namespace: Some(namespace.clone()),
    });
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}});
    apply(&[ns], None, ctx.kubeconfig.as_deref(), false)
        .await
        .expect("create the test namespace");
    let outcome = tokio::spawn(body(ctx)).await;
    delete_namespace(&namespace).await;
    if let Err(err) = outcome {
        std::panic::resume_unwind(err.into_panic());
    }
}

async fn delete_namespace(name: &str) {
    let client = client_for(None, Some(&kubeconfig())).await.expect("client");
    let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(client);
    let _ = namespaces.delete(name, &Default::default()).await;
}

#[tokio::test]
#[ignore = "needs a cluster: set FERRY_TEST_KUBECONFIG"]
async fn a_deployment_applied_by_ferry_rolls_out_and_passes_the_rollout_gate() {
    in_namespace(|mut ctx| async move {
        ctx.resources = vec![deployment("web", "registry.k8s.io/pause:3.10", 120)];
        let applied = apply(
            &ctx.resources,
            ctx.cluster.as_ref(),
            ctx.kubeconfig.as_deref(),
            false,
        )
        .await
        .expect("apply");
        assert_eq!(applied[0].action, ApplyAction::Created);
        let result = run_gate(&rollout_gate(), &ctx, &Recorder::default()).await;
        assert_eq!(result.status, GateStatus::Passed, "{}", result.reason);
        let again = apply(
            &ctx.resources,
            ctx.cluster.as_ref(),
            ctx.kubeconfig.as_deref(),
            true,
        )
        .await
        .expect("dry run");
        assert_eq!(again[0].action, ApplyAction::Unchanged);
    })
    .await;
}

#[tokio::test]
#[ignore = "needs a cluster: set FERRY_TEST_KUBECONFIG"]
async fn an_image_that_cannot_be_pulled_fails_at_the_progress_deadline() {
    in_namespace(|mut ctx| async move {
        ctx.resources = vec![deployment(
            "stuck",
            "registry.k8s.io/pause:ferry-does-not-exist",
            10,
        )];
        apply(
            &ctx.resources,
            ctx.cluster.as_ref(),
            ctx.kubeconfig.as_deref(),
            false,
        )
        .await
        .expect("apply");
        let result = run_gate(&rollout_gate(), &ctx, &Recorder::default()).await;
        assert_eq!(result.status, GateStatus::Failed, "{}", result.reason);
        assert!(
            result.reason.contains("exceeded its progress deadline"),
            "{}",
            result.reason
        );
    })
    .await;
}

#[tokio::test]
#[ignore = "needs a cluster: set FERRY_TEST_KUBECONFIG"]
async fn argo_cd_and_flux_gates_read_their_objects_when_installed() {
    let cluster = Cluster::connect(None, Some(&kubeconfig()))
        .await
        .expect("connect");
    let crd = |name: &str| ObjectRef {
        api_version: "apiextensions.k8s.io/v1".into(),
        kind: "CustomResourceDefinition".into(),
        namespace: None,
        name: name.into(),
    };
    let mut ctx = context();
    ctx.kubeconfig = Some(kubeconfig());
    let cases = [
        (
            "applications.argoproj.io",
            GateKind::ArgoCd {
                application: "ferry-test-missing".into(),
                namespace: "argocd".into(),
            },
        ),
        (
            "kustomizations.kustomize.toolkit.fluxcd.io",
            GateKind::Flux {
                kustomization: "ferry-test-missing".into(),
                namespace: "flux-system".into(),
            },
        ),
    ];
    for (name, kind) in cases {
        if cluster.get(&crd(name)).await.expect("read CRDs").is_none() {
            continue;
        }
        let result = run_gate(
            &timing_out_after(2_000, gate("operator", kind)),
            &ctx,
            &Recorder::default(),
        )
        .await;
        assert_eq!(result.status, GateStatus::Failed, "{}", result.reason);
        assert!(
            result
                .reason
                .ends_with("/ferry-test-missing does not exist"),
            "{}",
            result.reason
        );
    }
}

/// A rollout gate with room for a real cluster.
fn rollout_gate() -> GateSpec {
    GateSpec {
        timeout: Duration::from_secs(180),
        interval: Duration::from_secs(1),
        ..gate("rollout", GateKind::KubernetesRollout)
    }
}
