//! Revisions and promotions through the CLI: the engine's stories on real git repositories.

use crate::support::TestRepo;

/// Monday 2026-11-30, 10:00 in Berlin: inside prod's window, before the year-end freeze.
pub const MON_0900: &str = "2026-11-30T09:00:00Z";
pub const MON_0911: &str = "2026-11-30T09:11:00Z";
pub const MON_0945: &str = "2026-11-30T09:45:00Z";

#[test]
fn a_release_gets_a_content_derived_id() {
    let repo = TestRepo::example();
    let first = repo.release("1.4.2");
    assert!(first.starts_with("r-") && first.len() == 14, "{first}");
    let again = repo
        .ferry(&[
            "release",
            "create",
            "--image",
            "acme/helloworld=1.4.2",
            "-o",
            "json",
        ])
        .expect_code(0);
    assert_eq!(again.json()["id"], first.as_str());
    assert_eq!(again.json()["created"], false);
    assert_ne!(repo.release("1.4.3"), first);
    let list = repo
        .ferry(&["release", "list", "-o", "json"])
        .expect_code(0)
        .json();
    assert_eq!(list.as_array().map(Vec::len), Some(2));
    let show = repo
        .ferry(&["release", "show", &first])
        .expect_code(0)
        .stdout;
    assert!(
        show.contains("acme/helloworld → acme/helloworld:1.4.2"),
        "{show}"
    );
}

#[test]
fn a_release_refuses_unknown_images_and_bad_references() {
    let repo = TestRepo::example();
    let run = repo
        .ferry(&["release", "create", "--image", "acme/other=1.0"])
        .expect_code(2);
    assert!(
        run.stderr.contains("not one of the pipeline's images"),
        "{}",
        run.stderr
    );
    let run = repo
        .ferry(&[
            "release",
            "create",
            "--image",
            "acme/helloworld=sha256:1234",
        ])
        .expect_code(2);
    assert!(run.stderr.contains("is not a digest"), "{}", run.stderr);
    repo.ferry(&["release", "create", "--image", "acme/helloworld"])
        .expect_code(2);
}

#[test]
fn unknown_revisions_and_stages_exit_2() {
    let repo = TestRepo::example();
    let rev = repo.release("1.0.0");
    let run = repo
        .ferry(&["promote", "r-000000000000", "--to", "dev"])
        .expect_code(2);
    assert!(run.stderr.contains("unknown revision"), "{}", run.stderr);
    let run = repo
        .ferry(&["promote", &rev, "--to", "staging"])
        .expect_code(2);
    assert!(
        run.stderr.contains("unknown stage `staging`") && run.stderr.contains("dev, qa, prod"),
        "{}",
        run.stderr
    );
    repo.ferry(&["history", "staging"]).expect_code(2);
    repo.ferry(&["rollback", "staging"]).expect_code(2);
}

#[test]
fn a_revision_moves_dev_to_qa_to_prod() {
    let repo = TestRepo::example();
    let source_before = repo.git(&["rev-parse", "main"]);
    let rev = repo.release("1.4.2");
    let run = repo
        .ferry_at(MON_0900, "carol", &["promote", &rev, "--to", "qa"])
        .expect_code(3);
    assert!(
        run.stderr.contains("dev"),
        "qa needs dev first: {}",
        run.stderr
    );
    repo.promote(MON_0900, "carol", &rev, "dev").expect_code(0);
    let run = repo
        .promote("2026-11-30T09:05:00Z", "carol", &rev, "qa")
        .expect_code(3);
    assert!(run.stderr.contains("soak"), "{}", run.stderr);
    repo.promote(MON_0911, "carol", &rev, "qa").expect_code(0);
    let run = repo.promote(MON_0945, "carol", &rev, "prod").expect_code(3);
    assert_eq!(
        run.stderr.lines().next(),
        Some(
            format!(
                "error: promotion p-000003 of {rev} to prod is blocked: needs 2 more approvals from group:release-managers"
            )
            .as_str()
        )
    );
    for user in ["alice", "bob"] {
        repo.ferry_at(MON_0945, user, &["approve", "prod", "--comment", "ok"])
            .expect_code(0);
    }
    repo.promote(MON_0945, "carol", &rev, "prod").expect_code(0);

    for stage in ["dev", "qa", "prod"] {
        let branch = format!("env/{stage}");
        let log = repo.log(&branch);
        assert_eq!(log.len(), 1, "one commit on {branch}");
        assert_eq!(repo.trailer(&log[0], "Ferry-Stage"), stage);
        assert_eq!(repo.trailer(&log[0], "Ferry-Revision"), rev);
        let deployment = repo.git(&[
            "show",
            &format!("{branch}:apps_v1_deployment_helloworld.yaml"),
        ]);
        assert!(
            deployment.contains("image: acme/helloworld:1.4.2"),
            "{deployment}"
        );
        assert!(
            deployment.contains(&format!("namespace: helloworld-{stage}")),
            "{deployment}"
        );
    }
    assert_eq!(
        repo.git(&["rev-parse", "main"]),
        source_before,
        "the source branch is never written"
    );
    assert_eq!(
        repo.git(&["status", "--porcelain"]),
        "",
        "the working tree stays clean (.ferry ignores itself)"
    );

    let status = repo.ferry(&["status", "-o", "json"]).expect_code(0).json();
    let stages = status["stages"].as_array().expect("stages");
    assert_eq!(stages.len(), 3);
    for stage in stages {
        assert_eq!(stage["revision"], rev.as_str(), "{stage}");
        assert_eq!(stage["verified"], true, "{stage}");
        assert_eq!(stage["state"], "succeeded", "{stage}");
    }
    let history = repo.ferry(&["history", "-o", "json"]).expect_code(0).json();
    let entries = history.as_array().expect("an array");
    let last = &entries[0];
    assert_eq!(
        (
            last["stage"].as_str(),
            last["state"].as_str(),
            last["rollback"].as_bool()
        ),
        (Some("prod"), Some("succeeded"), Some(false))
    );
    assert_eq!(last["requested_by"], "carol");
    assert!(last["id"].as_str().is_some_and(|id| id.starts_with("p-")));
    let states: Vec<(&str, &str, &str)> = entries
        .iter()
        .map(|p| {
            (
                p["id"].as_str().expect("id"),
                p["stage"].as_str().expect("stage"),
                p["state"].as_str().expect("state"),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            ("p-000003", "prod", "succeeded"),
            ("p-000002", "dev", "succeeded"),
            ("p-000001", "qa", "succeeded")
        ],
        "a blocked promotion is resumed, not requested again"
    );
    repo.ferry(&["audit", "verify"]).expect_code(0);
}

#[test]
fn a_failing_gate_fails_the_promotion_and_blocks_downstream() {
    let repo = TestRepo::example();
    repo.edit(
        "policies/dev.yaml",
        "run: [\"sh\", \"-c\", \"grep",
        "run: [\"sh\", \"-c\", \"echo smoke test failed >&2; exit 3; grep",
    );
    repo.commit("Break the dev gate");
    let rev = repo.release("2.0.0");
    let run = repo.promote(MON_0900, "carol", &rev, "dev").expect_code(1);
    assert!(
        run.stderr.contains("gate manifests") && run.stderr.contains("smoke test failed"),
        "{}",
        run.stderr
    );
    let status = repo.ferry(&["status", "-o", "json"]).expect_code(0).json();
    assert_eq!(status["stages"][0]["verified"], false);
    assert_eq!(status["stages"][0]["state"], "failed");
    let run = repo.promote(MON_0945, "carol", &rev, "qa").expect_code(3);
    assert!(run.stderr.contains("dev"), "{}", run.stderr);
}

#[test]
fn a_rollback_is_a_forward_commit() {
    let repo = TestRepo::example();
    let first = repo.release("1.0.0");
    let second = repo.release("2.0.0");
    repo.promote(MON_0900, "carol", &first, "dev")
        .expect_code(0);
    repo.promote(MON_0911, "carol", &second, "dev")
        .expect_code(0);
    let before = repo.log("env/dev");
    let run = repo
        .ferry_at(MON_0945, "carol", &["rollback", "dev", "-o", "json"])
        .expect_code(0);
    assert_eq!(run.json()["rollback"], true);
    assert_eq!(run.json()["revision"], first.as_str());
    let after = repo.log("env/dev");
    assert_eq!(after.len(), before.len() + 1, "a new commit, not a reset");
    assert_eq!(after[1], before[0], "its parent is the previous tip");
    let deployment = repo.git(&["show", "env/dev:apps_v1_deployment_helloworld.yaml"]);
    assert!(deployment.contains("acme/helloworld:1.0.0"), "{deployment}");
    let history = repo
        .ferry(&["history", "dev", "-o", "json"])
        .expect_code(0)
        .json();
    assert_eq!(history[0]["rollback"], true);
    let status = repo.ferry(&["status", "-o", "json"]).expect_code(0).json();
    assert_eq!(status["stages"][0]["revision"], first.as_str());
    let run = repo
        .ferry_at(MON_0945, "carol", &["rollback", "qa"])
        .expect_code(2);
    assert!(
        run.stderr.contains("no earlier verified revision"),
        "{}",
        run.stderr
    );
}

#[test]
fn plan_shows_the_diff_and_what_blocks() {
    let repo = TestRepo::example();
    let rev = repo.release("1.4.2");
    let plan = repo
        .ferry_at(MON_0900, "carol", &["plan", &rev, "--to", "dev"])
        .expect_code(0)
        .stdout;
    assert!(
        plan.contains("+++ rendered/apps_v1_deployment_helloworld.yaml")
            && plan.contains("+        image: acme/helloworld:1.4.2"),
        "{plan}"
    );
    assert!(plan.contains("policy: allowed"), "{plan}");
    let plan = repo
        .ferry_at(
            MON_0900,
            "carol",
            &["plan", &rev, "--to", "prod", "-o", "json"],
        )
        .expect_code(0)
        .json();
    let blockers = plan["blockers"].as_array().expect("blockers");
    assert!(
        blockers.len() >= 2,
        "upstream and approvals at least: {plan}"
    );
    repo.ferry_at(
        MON_0900,
        "carol",
        &["promote", &rev, "--to", "dev", "--dry-run"],
    )
    .expect_code(0);
    assert!(
        repo.log_opt("env/dev").is_none(),
        "a dry run writes nothing"
    );
}

#[test]
fn diff_compares_two_environments() {
    let repo = TestRepo::example();
    let rev = repo.release("1.4.2");
    repo.promote(MON_0900, "carol", &rev, "dev").expect_code(0);
    let run = repo.ferry(&["diff", "dev", "qa"]).expect_code(2);
    assert!(
        run.stderr.contains("qa has no output yet"),
        "{}",
        run.stderr
    );
    repo.promote(MON_0911, "carol", &rev, "qa").expect_code(0);
    let diff = repo.ferry(&["diff", "dev", "qa"]).expect_code(0).stdout;
    assert!(
        diff.contains("-  namespace: helloworld-dev")
            && diff.contains("+  namespace: helloworld-qa"),
        "{diff}"
    );
    assert!(
        diff.contains("-  replicas: 1") && diff.contains("+  replicas: 2"),
        "{diff}"
    );
}

/// dev fans out to eu and us; `global` needs both (all), `canary` either (any).
const FAN_PIPELINE: &str = "apiVersion: ferry/v1
kind: Pipeline
metadata: {name: fan}
spec:
  images: [acme/helloworld]
  stages:
  - {name: dev, overlay: environments/dev}
  - {name: eu, overlay: environments/eu, upstream: [dev]}
  - {name: us, overlay: environments/us, upstream: [dev]}
  - {name: global, overlay: environments/prod, upstream: [eu, us], requires: all}
  - {name: canary, overlay: environments/qa, upstream: [eu, us], requires: any}
";

#[test]
fn fan_out_and_fan_in_follow_the_upstream_requirement() {
    let repo = TestRepo::example();
    for region in ["eu", "us"] {
        repo.write(
            &format!("environments/{region}/kustomization.yaml"),
            &format!("resources: [../base]\nnamespace: helloworld-{region}\n"),
        );
    }
    repo.write("environments/pipeline.yaml", FAN_PIPELINE);
    // The example's access rules name qa and prod, which this pipeline does not have.
    repo.remove("policies/access.yaml");
    repo.commit("Fan out to two regions");
    let rev = repo.release("3.0.0");
    let needs = [
        ("eu", "dev"),
        ("us", "dev"),
        ("global", "eu and us"),
        ("canary", "one of: eu, us"),
    ];
    for (i, (stage, upstream)) in needs.into_iter().enumerate() {
        let run = repo.ferry(&["promote", &rev, "--to", stage]).expect_code(3);
        assert_eq!(
            run.stderr.lines().next(),
            Some(
                format!(
                    "error: promotion p-{:06} of {rev} to {stage} is blocked: needs verification in {upstream}",
                    i + 1
                )
                .as_str()
            )
        );
    }
    repo.ferry(&["promote", &rev, "--to", "dev", "--wait"])
        .expect_code(0);
    repo.ferry(&["promote", &rev, "--to", "eu", "--wait"])
        .expect_code(0);
    let run = repo
        .ferry(&["promote", &rev, "--to", "global", "--wait"])
        .expect_code(3);
    assert!(
        run.stderr.contains("us"),
        "global needs us too: {}",
        run.stderr
    );
    repo.ferry(&["promote", &rev, "--to", "canary", "--wait"])
        .expect_code(0);
    repo.ferry(&["promote", &rev, "--to", "us", "--wait"])
        .expect_code(0);
    repo.ferry(&["promote", &rev, "--to", "global", "--wait"])
        .expect_code(0);
    let status = repo.ferry(&["status", "-o", "json"]).expect_code(0).json();
    let verified: Vec<&str> = status["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .filter(|s| s["verified"] == true)
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(verified, ["dev", "eu", "us", "global", "canary"]);
}

#[test]
fn without_wait_the_gates_run_on_the_next_reconcile() {
    let repo = TestRepo::example();
    let rev = repo.release("1.4.2");
    let run = repo
        .ferry_at(MON_0900, "carol", &["promote", &rev, "--to", "dev"])
        .expect_code(0);
    assert!(run.stdout.contains("verifying"), "{}", run.stdout);
    let status = repo.ferry(&["status", "-o", "json"]).expect_code(0).json();
    assert_eq!(
        (
            status["stages"][0]["state"].as_str(),
            status["stages"][0]["verified"].as_bool()
        ),
        (Some("verifying"), Some(false))
    );
    let run = repo.ferry_at(MON_0900, "ci", &["reconcile"]).expect_code(0);
    assert!(
        run.stdout.contains(&format!("{rev} → dev")) && run.stdout.contains("succeeded"),
        "{}",
        run.stdout
    );
    let status = repo.ferry(&["status", "-o", "json"]).expect_code(0).json();
    assert_eq!(status["stages"][0]["verified"], true);
    assert_eq!(repo.log("env/dev").len(), 1);
}

#[test]
fn a_prod_rollback_still_needs_approvals() {
    let repo = TestRepo::example();
    repo.edit("policies/qa.yaml", "soak: 10m", "soak: 0s");
    repo.edit("policies/prod.yaml", "soak: 30m", "soak: 0s");
    repo.edit(
        "policies/prod.yaml",
        "selfApproval: false",
        "selfApproval: true",
    );
    repo.commit("Fast prod for the test");
    let mut previous = String::new();
    for tag in ["1.0.0", "2.0.0"] {
        let rev = repo.release(tag);
        for stage in ["dev", "qa"] {
            repo.promote(MON_0945, "alice", &rev, stage).expect_code(0);
        }
        for user in ["alice", "bob"] {
            repo.ferry_at(MON_0945, user, &["approve", "prod", "--revision", &rev])
                .expect_code(0);
        }
        repo.promote(MON_0945, "alice", &rev, "prod").expect_code(0);
        previous = rev;
    }
    // Two days later the approvals of the earlier revision have expired (24h): a rollback
    // skips upstream and soak, not approvals.
    let wednesday = "2026-12-02T09:45:00Z";
    let run = repo
        .ferry_at(wednesday, "alice", &["rollback", "prod"])
        .expect_code(3);
    assert!(run.stderr.contains("approval"), "{}", run.stderr);
    let first = repo
        .ferry(&["history", "prod", "-o", "json"])
        .expect_code(0)
        .json()[0]["revision"]
        .clone();
    assert_ne!(
        first,
        previous.as_str(),
        "the rollback goes to the earlier revision"
    );
    for user in ["alice", "bob"] {
        repo.ferry_at(wednesday, user, &["approve", "prod"])
            .expect_code(0);
    }
    repo.ferry_at(wednesday, "alice", &["rollback", "prod"])
        .expect_code(0);
    let status = repo.ferry(&["status", "-o", "json"]).expect_code(0).json();
    assert_eq!(status["stages"][2]["revision"], first);
}

#[test]
fn render_with_a_revision_shows_what_a_promotion_would_write() {
    let repo = TestRepo::example();
    let rev = repo.release("1.4.2");
    // A later, uncommitted edit of the working tree is not part of the revision.
    repo.edit(
        "environments/base/deployment.yaml",
        "containerPort: 3000",
        "containerPort: 4000",
    );
    let printed = repo
        .ferry(&["render", "qa", "--revision", &rev])
        .expect_code(0)
        .stdout;
    assert!(
        printed.contains("image: acme/helloworld:1.4.2") && printed.contains("containerPort: 3000"),
        "{printed}"
    );
    let working = repo.ferry(&["render", "qa"]).expect_code(0).stdout;
    assert!(
        working.contains("containerPort: 4000") && working.contains("acme/helloworld:latest"),
        "{working}"
    );
    repo.promote(MON_0900, "carol", &rev, "dev").expect_code(0);
    let out = tempfile::tempdir().expect("temp dir");
    repo.ferry(&[
        "render",
        "dev",
        "--revision",
        &rev,
        "--out",
        out.path().to_str().expect("utf-8"),
    ])
    .expect_code(0);
    let written =
        std::fs::read_to_string(out.path().join("dev/apps_v1_deployment_helloworld.yaml"))
            .expect("rendered file");
    assert_eq!(
        written,
        repo.git(&["show", "env/dev:apps_v1_deployment_helloworld.yaml"]) + "\n"
    );
}

#[test]
fn a_repo_that_is_not_git_or_a_detached_head_is_bad_input() {
    let dir = tempfile::tempdir().expect("temp dir");
    let repo = TestRepo::example();
    let run = repo
        .ferry(&["--repo", dir.path().to_str().expect("utf-8"), "status"])
        .expect_code(2);
    assert!(
        run.stderr.contains("not appear to be a git repository"),
        "{}",
        run.stderr
    );
    repo.git(&["checkout", "-q", "--detach"]);
    let run = repo
        .ferry(&["release", "create", "--image", "acme/helloworld=1.0"])
        .expect_code(2);
    assert!(run.stderr.contains("HEAD is detached"), "{}", run.stderr);
}
