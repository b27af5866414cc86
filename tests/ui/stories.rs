//! The UI's stories, each in a real browser.

use serde_json::json;

use super::{Forger, Ui, stage};

#[test]
fn a_viewer_sees_the_pipeline_and_no_approve_button_and_a_forged_approval_is_refused() {
    let ui = Ui::start();
    ui.sign_in(&ui.victor);
    let b = &ui.browser;
    assert_eq!(b.text("#user"), "victor");
    assert_eq!(b.count("#graph a.node[data-stage]"), 3);
    assert_eq!(b.count("#graph path.edge"), 2);
    b.wait_text(
        "tr[data-stage=prod] td.why",
        "needs 2 more approvals from group:release-managers",
    );
    assert!(b.text("tr[data-stage=qa]").contains(&ui.revision));
    ui.shot("pipeline");

    b.click("#graph a.node[data-stage=prod]");
    b.wait_until("the prod page", || b.path() == "/stages/prod");
    b.wait_text(
        "#blockers li",
        "needs 2 more approvals from group:release-managers — you cannot approve: victor may not review",
    );
    assert!(b.text("#diff").contains("acme/helloworld:1.4.2"));
    assert!(!b.has("#approve"));
    assert!(!b.has("#reject"));
    assert!(!b.has("#promote"));
    assert!(!b.has("#pause"));

    // The same form, posted by hand with the right CSRF token, is refused by the API's check.
    let csrf = b.script("return document.querySelector('input[name=csrf]').value");
    let csrf = csrf.as_str().expect("a csrf token");
    let session = b.cookie("ferry_session").expect("a session cookie");
    let forger = Forger::new(&ui.served.url, &session);
    let (status, body) = forger.post(
        "/stages/prod/approve",
        &[("csrf", csrf), ("revision", &ui.revision)],
    );
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("victor may not review this promotion"),
        "{body}"
    );
    let prod = stage(&ui.api, &ui.victor, "prod");
    assert_eq!(prod["reviews"], serde_json::Value::Null, "{prod}");

    // The pipeline page follows the promotion live once two managers approved elsewhere.
    b.open("/");
    b.script("window.ferryStayed = 7; return null;");
    b.wait_until("the event stream to be open", || {
        b.has("#live[data-state=on]")
    });
    for manager in [&ui.bob, &ui.carol] {
        ui.api
            .post(
                "/api/v1/stages/prod/approvals",
                Some(manager),
                &json!({"revision": ui.revision}),
            )
            .expect(200);
    }
    b.wait_text("tr[data-stage=prod] .pill", "succeeded");
    b.wait_until("the prod box to turn green", || {
        b.has("#graph a.node.st-ok[data-stage=prod]")
    });
    assert!(b.text("tr[data-stage=prod]").contains("✓ verified"));
    assert_eq!(b.script("return window.ferryStayed"), json!(7));
}

#[test]
fn a_release_manager_approves_prod_and_the_second_approval_promotes_it_live() {
    let ui = Ui::start();
    ui.sign_in(&ui.bob);
    let b = &ui.browser;
    b.open("/stages/prod");
    let diff = b.text("#diff");
    assert!(
        diff.contains("+    - image: acme/helloworld:1.4.2")
            || diff.contains("acme/helloworld:1.4.2"),
        "{diff}"
    );
    b.wait_text(
        "#blockers li",
        "needs 2 more approvals from group:release-managers — you can approve",
    );
    b.fill("#comment", "diff reviewed, go");
    b.click("#approve");
    b.wait_text("#flash", &format!("You approved {} for prod", ui.revision));
    b.wait_text("#reviews li[data-user=bob]", "bob approved");
    assert!(
        b.text("#reviews li[data-user=bob]")
            .contains("diff reviewed, go")
    );
    b.wait_text(
        "#blockers li",
        "needs 1 more approval from group:release-managers — you approved it already",
    );
    assert_eq!(b.text("#state"), "blocked");
    ui.shot("stage-prod");
    b.script("document.getElementById('diff-section').scrollIntoView(); return null;");
    ui.shot("stage-prod-diff");

    // The page stays as it is; the second approval arrives over the API.
    b.script("window.ferryStayed = 42; return null;");
    b.wait_until("the event stream to be open", || {
        b.has("#live[data-state=on]")
    });
    ui.api
        .post(
            "/api/v1/stages/prod/approvals",
            Some(&ui.carol),
            &json!({"revision": ui.revision}),
        )
        .expect(200);
    b.wait_text("#state", "succeeded");
    b.wait_text("#verified", "✓ verified");
    assert_eq!(b.text("#revision"), ui.revision);
    assert!(b.has("#no-blockers"));
    assert_eq!(b.script("return window.ferryStayed"), json!(42));
    ui.shot("stage-prod-promoted");

    // The release page shows where the revision is, with the lead time to prod.
    b.open(&format!("/releases/{}", ui.revision));
    assert_eq!(b.text("tr[data-stage=prod] .pill"), "succeeded");
    assert_ne!(b.text("tr[data-stage=prod] td.lead"), "—");
    assert!(b.text("#config-commit").len() >= 40);
    // The audit log of prod has the approval with its comment, and the chain checks out.
    b.open("/audit?stage=prod");
    assert!(b.text("#chain").starts_with("The hash chain checks out"));
    assert!(b.text("#audit").contains("bob approval"));
}

#[test]
fn forms_without_the_csrf_token_are_refused_and_signing_out_ends_the_session() {
    let ui = Ui::start();
    ui.sign_in(&ui.alice);
    let b = &ui.browser;
    let session = b.cookie("ferry_session").expect("a session cookie");
    let forger = Forger::new(&ui.served.url, &session);

    let (status, body) = forger.post("/stages/prod/pause", &[("reason", "forged")]);
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("CSRF token is missing or wrong"), "{body}");
    let (status, _) = forger.post(
        "/stages/prod/pause",
        &[("csrf", "0000"), ("reason", "forged")],
    );
    assert_eq!(status, 403);
    let paused = ui.api.get("/api/v1/status", Some(&ui.victor)).expect(200);
    assert_eq!(
        paused.body["paused"]["stages"],
        json!({}),
        "{}",
        paused.text
    );

    // The session cookie reads the API (the browser's event stream needs it), but a change
    // through the API still needs the bearer token.
    assert_eq!(forger.get("/api/v1/status").0, 200);
    let (status, _) = forger.post("/api/v1/pause", &[]);
    assert_eq!(status, 401);

    // alice requested prod: she may reject it but not approve it.
    b.open("/stages/prod");
    b.wait_text(
        "#blockers li",
        "you cannot approve: alice requested this promotion and may not approve it",
    );
    assert!(!b.has("#approve"));
    b.fill("#comment", "not on a Friday");
    b.click("#reject");
    b.wait_text("#flash", &format!("You rejected {} for prod", ui.revision));
    b.wait_text("#blockers", "rejected by alice: not on a Friday");

    // The real form pauses, as the admin alice may.
    b.fill("#pause-reason", "incident 42");
    b.click("#pause");
    b.wait_text("#flash", "Paused prod");
    let status = ui.api.get("/api/v1/status", Some(&ui.victor)).expect(200);
    assert_eq!(
        status.body["paused"]["stages"]["prod"]["reason"],
        "incident 42"
    );

    b.click("#logout");
    b.wait_until("the login page", || b.path() == "/login");
    assert_eq!(b.cookie("ferry_session"), None);
    b.open("/stages/prod");
    b.wait_until("the login page again", || b.path() == "/login");
    let (status, location) = forger.get("/");
    assert_eq!((status, location.as_str()), (303, "/login"));
    assert_eq!(forger.get("/api/v1/status").0, 401);
    let (status, _) = forger.post("/stages/prod/resume", &[("reason", "x")]);
    assert_eq!(status, 403);
}

/// A pipeline of `apps` applications, each `dev` → `qa-eu`, `qa-us` → `prod` (`requires: any`).
fn wide_repo(apps: usize) -> crate::support::TestRepo {
    let repo = crate::support::TestRepo::empty();
    repo.write(
        "environments/base/kustomization.yaml",
        "resources: [deployment.yaml]\n",
    );
    repo.write(
        "environments/base/deployment.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n      - name: web\n        image: acme/web:latest\n",
    );
    let mut pipeline = String::from(
        "apiVersion: ferry/v1\nkind: Pipeline\nmetadata: {name: wide}\nspec:\n  images: [acme/web]\n  stages:\n",
    );
    for app in 0..apps {
        let a = format!("app{app}");
        for env in ["dev", "qa-eu", "qa-us", "prod"] {
            repo.write(
                &format!("environments/{a}-{env}/kustomization.yaml"),
                &format!("resources: [../base]\nnamespace: {a}-{env}\n"),
            );
        }
        pipeline.push_str(&format!(
            "  - {{name: {a}-dev, overlay: environments/{a}-dev}}\n  - {{name: {a}-qa-eu, overlay: environments/{a}-qa-eu, upstream: [{a}-dev]}}\n  - {{name: {a}-qa-us, overlay: environments/{a}-qa-us, upstream: [{a}-dev]}}\n  - {{name: {a}-prod, overlay: environments/{a}-prod, upstream: [{a}-qa-eu, {a}-qa-us], requires: any}}\n"
        ));
    }
    repo.write("environments/pipeline.yaml", &pipeline);
    repo.write(
        "policies/access.yaml",
        "apiVersion: ferry/v1\nkind: Access\nmetadata: {name: access}\nspec:\n  roles:\n  - {role: viewer, subjects: [\"*\"]}\n",
    );
    repo.commit("A wide pipeline");
    repo
}

#[test]
fn a_large_pipeline_collapses_into_groups_and_filters_by_name() {
    let repo = wide_repo(30);
    let viewer = super::token(&repo, "victor");
    let served = crate::support::server::Served::start(&repo, &[], &[]);
    let shots = tempfile::tempdir().expect("screenshot dir");
    let b = super::Browser::start(&served.url, shots.path());
    b.open("/login");
    b.fill("#token", &viewer);
    b.click("#signin");
    b.wait_until("the pipeline page", || b.path() == "/");
    // 120 stages: one box per application.
    assert_eq!(b.count("#graph a.node[data-kind=group]"), 30);
    assert_eq!(b.count("#graph a.node[data-kind=stage]"), 0);
    assert!(
        b.text("#summary")
            .contains("120 of 120 stages, groups collapsed")
    );

    // Typing filters at once, without a request.
    b.fill("#q", "app7-");
    b.wait_until("only app7 rows to show", || {
        b.script("return document.querySelectorAll('tr[data-stage]:not([hidden])').length")
            == serde_json::json!(4)
    });
    assert_eq!(
        b.script("return document.querySelectorAll('#graph a.node:not([hidden])').length"),
        serde_json::json!(1)
    );

    // Opening a group draws its stages: fan-out from dev, fan-in into prod marked `any`.
    b.open("/?expand=app7");
    assert_eq!(b.count("#graph a.node[data-kind=stage]"), 4);
    assert_eq!(b.count("#graph a.node[data-kind=group]"), 29);
    assert_eq!(b.count("#graph path.edge.any[data-to=app7-prod]"), 2);
    assert_eq!(b.count("#graph path.edge:not(.any)[data-from=app7-dev]"), 2);

    // Submitting the filter asks the server for the matching stages only.
    b.open("/?q=app12-");
    assert_eq!(b.count("#graph a.node[data-kind=stage]"), 4);
    assert_eq!(b.count("tr[data-stage]"), 4);
    let path = b.screenshot("pipeline-filtered");
    assert!(path.exists());
    if let Ok(dir) = std::env::var("FERRY_UI_SHOTS") {
        b.open("/?expand=app3");
        let shot = b.screenshot("pipeline-groups");
        std::fs::copy(shot, std::path::Path::new(&dir).join("pipeline-groups.png"))
            .expect("copy shot");
    }
}
