//! `sync: apply`: server-side apply and its dry run against a replaying API server.

use ferry::cluster::{ApplyAction, ClusterError, apply};
use ferry::pipeline::ClusterRef;
use serde_json::{Value, json};

use super::support::replay::{Replay, Route, get, patch};

const NAMESPACE: &str = "/api/v1/namespaces/shop";
const DEPLOYMENT: &str = "/apis/apps/v1/namespaces/shop/deployments/web";

fn manifests() -> Vec<Value> {
    vec![
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
               "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "registry.example.com/acme/web:1.4.2"}]}}}}),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}),
    ]
}

fn discovery() -> Vec<Route> {
    vec![
        get("/api/v1", &["api-v1-resources.json"]),
        get("/apis/apps/v1", &["apis-apps-v1-resources.json"]),
    ]
}

fn shop() -> ClusterRef {
    ClusterRef {
        kubeconfig: None,
        context: None,
        namespace: Some("shop".into()),
    }
}

#[tokio::test]
async fn applies_namespaces_first_as_field_manager_ferry_without_force() {
    let mut routes = discovery();
    routes.push(get(NAMESPACE, &["status-404-namespace.json"]));
    routes.push(patch(NAMESPACE, &["namespace-shop.json"]));
    routes.push(get(DEPLOYMENT, &["deployment-previous-complete.json"]));
    routes.push(patch(DEPLOYMENT, &["deployment-unobserved.json"]));
    let replay = Replay::start(routes).await;
    let results = apply(
        &manifests(),
        Some(&shop()),
        Some(&replay.kubeconfig()),
        false,
    )
    .await
    .expect("applied");
    let summary: Vec<(String, ApplyAction)> = results
        .iter()
        .map(|r| (r.object.to_string(), r.action))
        .collect();
    assert_eq!(
        summary,
        [
            ("Namespace shop".to_string(), ApplyAction::Created),
            ("Deployment shop/web".to_string(), ApplyAction::Configured)
        ]
    );
    let patches: Vec<String> = replay
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("PATCH"))
        .collect();
    assert_eq!(
        patches,
        [
            format!("PATCH {NAMESPACE}?&fieldManager=ferry"),
            format!("PATCH {DEPLOYMENT}?&fieldManager=ferry")
        ]
    );
    assert_eq!(
        replay.bodies("PATCH", DEPLOYMENT)[0]["metadata"]["namespace"],
        "shop"
    );
}

#[tokio::test]
async fn a_dry_run_changes_nothing_and_knows_objects_in_a_new_namespace_are_new() {
    let mut routes = discovery();
    routes.push(get(NAMESPACE, &["status-404-namespace.json"]));
    routes.push(patch(NAMESPACE, &["namespace-shop.json"]));
    let replay = Replay::start(routes).await;
    let results = apply(
        &manifests(),
        Some(&shop()),
        Some(&replay.kubeconfig()),
        true,
    )
    .await
    .expect("dry run");
    assert!(
        results
            .iter()
            .all(|r| r.dry_run && r.action == ApplyAction::Created)
    );
    let patches: Vec<String> = replay
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("PATCH"))
        .collect();
    assert_eq!(
        patches,
        [format!("PATCH {NAMESPACE}?&dryRun=All&fieldManager=ferry")]
    );
}

#[tokio::test]
async fn an_unchanged_object_is_reported_unchanged() {
    let mut routes = discovery();
    routes.push(get(DEPLOYMENT, &["deployment-complete.json"]));
    routes.push(patch(DEPLOYMENT, &["deployment-complete.json"]));
    let replay = Replay::start(routes).await;
    let results = apply(
        &manifests()[..1],
        Some(&shop()),
        Some(&replay.kubeconfig()),
        false,
    )
    .await
    .expect("applied");
    assert_eq!(results[0].action, ApplyAction::Unchanged);
}

#[tokio::test]
async fn a_field_owned_by_another_manager_is_a_conflict_naming_it() {
    let mut routes = discovery();
    routes.push(get(DEPLOYMENT, &["deployment-complete.json"]));
    routes.push(patch(DEPLOYMENT, &["status-409-conflict.json"]));
    let replay = Replay::start(routes).await;
    let err = apply(
        &manifests()[..1],
        Some(&shop()),
        Some(&replay.kubeconfig()),
        false,
    )
    .await
    .expect_err("conflict");
    let expected = "failed to apply Deployment shop/web: the API server answered 409 Conflict: Apply failed with 1 conflict: conflict with \"kubectl-edit\" using apps/v1: .spec.replicas";
    assert_eq!(err.to_string(), expected);
}

#[tokio::test]
async fn a_kind_the_cluster_does_not_serve_and_a_nameless_object_are_errors() {
    let replay = Replay::start(discovery()).await;
    let widget = json!({"apiVersion": "acme.io/v1", "kind": "Widget", "metadata": {"name": "w"}});
    let err = apply(&[widget], None, Some(&replay.kubeconfig()), true)
        .await
        .expect_err("not served");
    assert!(
        matches!(&err, ClusterError::NotServed { kind, .. } if kind == "Widget"),
        "{err}"
    );

    let nameless = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}});
    let err = apply(&[nameless], None, Some(&replay.kubeconfig()), true)
        .await
        .expect_err("invalid");
    assert_eq!(
        err.to_string(),
        "resource #0 is not a Kubernetes object: the ConfigMap has no metadata.name"
    );
}
