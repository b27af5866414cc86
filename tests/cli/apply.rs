//! `sync: apply` through `ferry plan` and `ferry promote`, against a server replaying real
//! Kubernetes API answers.

use crate::gates::support::replay::{Replay, get, patch};
use crate::support::TestRepo;

const NAMESPACE: &str = "/api/v1/namespaces/shop";
const DEPLOYMENT: &str = "/apis/apps/v1/namespaces/shop/deployments/web";

fn applying_repo(kubeconfig: &std::path::Path) -> TestRepo {
    let repo = TestRepo::empty();
    repo.write(
        "environments/pipeline.yaml",
        &format!(
            "apiVersion: ferry/v1\nkind: Pipeline\nmetadata: {{name: shop}}\nspec:\n  images: [acme/helloworld]\n  stages:\n  - name: shop\n    overlay: environments/shop\n    sync: apply\n    cluster: {{kubeconfig: {}}}\n",
            kubeconfig.display()
        ),
    );
    repo.write(
        "environments/shop/kustomization.yaml",
        "namespace: shop\nresources: [namespace.yaml, deployment.yaml]\n",
    );
    repo.write(
        "environments/shop/namespace.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n",
    );
    repo.write(
        "environments/shop/deployment.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n      - name: web\n        image: acme/helloworld:latest\n",
    );
    repo.commit("A shop applied by ferry");
    repo
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_apply_stage_is_applied_server_side_as_ferry() {
    let routes = vec![
        get("/api/v1", &["api-v1-resources.json"]),
        get("/apis/apps/v1", &["apis-apps-v1-resources.json"]),
        get(NAMESPACE, &["status-404-namespace.json"]),
        patch(NAMESPACE, &["namespace-shop.json"]),
        get(DEPLOYMENT, &["deployment-previous-complete.json"]),
        patch(DEPLOYMENT, &["deployment-unobserved.json"]),
    ];
    let replay = Replay::start(routes).await;
    let repo = applying_repo(&replay.kubeconfig());
    let (repo, plan, promote) = tokio::task::spawn_blocking(move || {
        let rev = repo.release("1.4.2");
        let plan = repo.ferry(&["plan", &rev, "--to", "shop"]);
        let promote = repo.ferry(&["promote", &rev, "--to", "shop", "--wait"]);
        (repo, plan, promote)
    })
    .await
    .expect("ferry ran");
    let plan = plan.expect_code(0).stdout;
    assert!(
        plan.contains("server-side dry run: Namespace shop: created")
            && plan.contains("server-side dry run: Deployment shop/web:"),
        "{plan}"
    );
    promote.expect_code(0);
    let requests = replay.requests();
    let applies: Vec<&String> = requests.iter().filter(|r| r.starts_with("PATCH")).collect();
    assert!(
        applies.iter().any(|r| r.contains("dryRun=All")),
        "the plan was a dry run: {applies:?}"
    );
    assert!(
        applies
            .iter()
            .any(|r| r.starts_with(&format!("PATCH {DEPLOYMENT}?"))
                && r.contains("fieldManager=ferry")
                && !r.contains("dryRun")),
        "{applies:?}"
    );
    let bodies = replay.bodies("PATCH", DEPLOYMENT);
    assert!(
        bodies
            .iter()
            .any(|b| b.to_string().contains("acme/helloworld:1.4.2")),
        "the revision's image was applied: {bodies:?}"
    );
    assert_eq!(
        repo.log("env/shop").len(),
        1,
        "the output branch is written too"
    );
}
