//! Policies through the CLI: approvals, rejections, windows and freezes, soak, reconcile and
//! schedules.

use super::promote::{MON_0900, MON_0911, MON_0945};
use crate::support::TestRepo;

/// A repository where `rev` is verified in dev and qa, waiting for prod (requested by carol).
fn waiting_for_prod() -> (TestRepo, String) {
    let repo = TestRepo::example();
    let rev = repo.release("1.4.2");
    repo.promote(MON_0900, "carol", &rev, "dev").expect_code(0);
    repo.promote(MON_0911, "carol", &rev, "qa").expect_code(0);
    repo.promote(MON_0945, "carol", &rev, "prod").expect_code(3);
    (repo, rev)
}

#[test]
fn the_requester_cannot_approve_and_outsiders_are_refused() {
    let (repo, _) = waiting_for_prod();
    let run = repo
        .ferry_at(MON_0945, "carol", &["approve", "prod"])
        .expect_code(2);
    assert!(
        run.stderr.contains("carol"),
        "self-approval is refused with the reason: {}",
        run.stderr
    );
    let run = repo
        .ferry_at(MON_0945, "mallory", &["approve", "prod"])
        .expect_code(2);
    assert!(
        run.stderr.contains("mallory") && run.stderr.contains("release-managers"),
        "{}",
        run.stderr
    );
    let run = repo
        .ferry_at(MON_0945, "alice", &["approve", "prod", "--comment", "lgtm"])
        .expect_code(0);
    assert!(
        run.stdout.contains("alice approved") && run.stdout.contains("1 more approval"),
        "{}",
        run.stdout
    );
    let status = repo
        .ferry_at(MON_0945, "carol", &["status", "-o", "json"])
        .expect_code(0)
        .json();
    let prod = &status["stages"][2];
    assert_eq!(prod["state"], "blocked");
    assert_eq!(
        (
            prod["reviews"][0]["user"].as_str(),
            prod["reviews"][0]["verdict"].as_str(),
            prod["reviews"].as_array().map(Vec::len)
        ),
        (Some("alice"), Some("approve"), Some(1)),
        "{prod}"
    );
    assert_eq!(
        prod["blockers"],
        serde_json::json!([{"kind": "approvals", "needed": 1, "from": ["group:release-managers"], "have": 1, "required": 2, "stale": 0}]),
        "status says what blocks it now"
    );
    let audit = repo
        .ferry(&["audit", "log", "--stage", "prod", "-o", "json"])
        .expect_code(0)
        .json();
    assert!(
        audit
            .as_array()
            .expect("entries")
            .iter()
            .any(|e| e["actor"] == "alice"
                && e["action"]
                    .as_str()
                    .is_some_and(|a| a.starts_with("approv"))),
        "{audit}"
    );
}

#[test]
fn a_rejection_blocks_until_withdrawn() {
    let (repo, rev) = waiting_for_prod();
    repo.ferry_at(MON_0945, "alice", &["approve", "prod"])
        .expect_code(0);
    repo.ferry_at(
        MON_0945,
        "bob",
        &["reject", "prod", "--comment", "wait for the load test"],
    )
    .expect_code(0);
    let run = repo.promote(MON_0945, "carol", &rev, "prod").expect_code(3);
    assert!(
        run.stderr.contains("bob") && run.stderr.contains("reject"),
        "{}",
        run.stderr
    );
    repo.ferry_at(MON_0945, "bob", &["reject", "prod", "--withdraw"])
        .expect_code(0);
    repo.ferry_at(MON_0945, "bob", &["approve", "prod"])
        .expect_code(0);
    repo.promote(MON_0945, "carol", &rev, "prod").expect_code(0);
}

#[test]
fn a_content_change_invalidates_approvals() {
    let (repo, rev) = waiting_for_prod();
    for user in ["alice", "bob"] {
        repo.ferry_at(MON_0945, user, &["approve", "prod"])
            .expect_code(0);
    }
    repo.edit(
        "environments/prod/kustomization.yaml",
        "count: 3",
        "count: 4",
    );
    repo.commit("Scale prod to 4");
    let plan = repo
        .ferry_at(MON_0945, "carol", &["plan", &rev, "--to", "prod"])
        .expect_code(0)
        .stdout;
    assert!(
        plan.contains("blocked") && plan.contains("approval"),
        "{plan}"
    );
    assert!(
        plan.contains("  note: 2 approvals no longer count: the rendered content changed\n"),
        "plan says why: {plan}"
    );
    let run = repo.promote(MON_0945, "carol", &rev, "prod").expect_code(3);
    assert!(run.stderr.contains("approval"), "{}", run.stderr);
    for user in ["alice", "bob"] {
        repo.ferry_at(MON_0945, user, &["approve", "prod"])
            .expect_code(0);
    }
    repo.promote(MON_0945, "carol", &rev, "prod").expect_code(0);
    let deployment = repo.git(&["show", "env/prod:apps_v1_deployment_helloworld.yaml"]);
    assert!(deployment.contains("replicas: 4"), "{deployment}");
}

#[test]
fn a_freeze_blocks_and_only_override_users_may_override_it() {
    let repo = TestRepo::example();
    let rev = repo.release("1.4.2");
    let (dev_at, qa_at, prod_at) = (
        "2026-12-21T09:00:00Z",
        "2026-12-21T09:11:00Z",
        "2026-12-21T09:45:00Z",
    );
    repo.promote(dev_at, "carol", &rev, "dev").expect_code(0);
    repo.promote(qa_at, "carol", &rev, "qa").expect_code(0);
    for user in ["alice", "bob"] {
        repo.ferry_at(prod_at, user, &["approve", "prod", "--revision", &rev])
            .expect_code(0);
    }
    let run = repo.promote(prod_at, "carol", &rev, "prod").expect_code(3);
    assert!(run.stderr.contains("year-end freeze"), "{}", run.stderr);
    let run = repo
        .ferry_at(
            prod_at,
            "carol",
            &[
                "promote",
                &rev,
                "--to",
                "prod",
                "--override-window",
                "--reason",
                "hotfix",
            ],
        )
        .expect_code(2);
    assert!(run.stderr.contains("may not override"), "{}", run.stderr);
    repo.ferry_at(
        prod_at,
        "dana",
        &[
            "promote",
            &rev,
            "--to",
            "prod",
            "--wait",
            "--override-window",
            "--reason",
            "hotfix for CVE",
        ],
    )
    .expect_code(0);
    let audit = repo
        .ferry(&["audit", "log", "--stage", "prod", "-o", "json"])
        .expect_code(0)
        .json();
    assert!(
        audit.to_string().contains("hotfix for CVE"),
        "the override is audited: {audit}"
    );
}

#[test]
fn outside_the_window_the_message_says_when_it_opens() {
    let (repo, rev) = waiting_for_prod();
    for user in ["alice", "bob"] {
        repo.ferry_at(MON_0945, user, &["approve", "prod"])
            .expect_code(0);
    }
    // Friday 2026-12-04 18:00 Berlin: closed until Monday 09:00.
    let run = repo
        .promote("2026-12-04T17:00:00Z", "carol", &rev, "prod")
        .expect_code(3);
    assert!(
        run.stderr.contains("window opens")
            && run.stderr.contains("Mon")
            && run.stderr.contains("09:00"),
        "{}",
        run.stderr
    );
}

#[test]
fn reconcile_cascades_through_auto_stages_and_is_idempotent() {
    let repo = TestRepo::example();
    let rev = repo.release("1.4.2");
    let run = repo.ferry_at(MON_0900, "ci", &["reconcile"]).expect_code(0);
    assert!(
        run.stdout.contains(&format!("{rev} → dev")) && run.stdout.contains("succeeded"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("qa waits") && run.stdout.contains("soak"),
        "{}",
        run.stdout
    );
    let run = repo.ferry_at(MON_0911, "ci", &["reconcile"]).expect_code(0);
    assert!(
        run.stdout.contains(&format!("{rev} → qa")) && run.stdout.contains("succeeded"),
        "{}",
        run.stdout
    );
    let run = repo.ferry_at(MON_0911, "ci", &["reconcile"]).expect_code(0);
    assert!(
        run.stdout.contains("nothing to do"),
        "a second run does nothing: {}",
        run.stdout
    );
    assert_eq!(repo.log("env/dev").len(), 1);
    assert_eq!(repo.log("env/qa").len(), 1);
    assert!(
        repo.log_opt("env/prod").is_none(),
        "prod is not an auto stage"
    );
}

#[test]
fn reconcile_cascades_in_one_run_without_soak() {
    let repo = TestRepo::example();
    repo.edit("policies/qa.yaml", "soak: 10m", "soak: 0s");
    repo.commit("No soak in qa");
    let rev = repo.release("1.4.2");
    let run = repo
        .ferry_at(MON_0900, "ci", &["reconcile", "-o", "json"])
        .expect_code(0);
    let actions = run.json()["actions"].as_array().expect("actions").clone();
    let stages: Vec<&str> = actions
        .iter()
        .filter(|a| a["outcome"] == "succeeded")
        .filter_map(|a| a["stage"].as_str())
        .collect();
    assert_eq!(stages, ["dev", "qa"], "{actions:?}");
    assert!(actions.iter().all(|a| a["revision"] == rev.as_str()));
}

#[test]
fn a_schedule_promotes_the_latest_verified_revision_once() {
    let repo = TestRepo::example();
    repo.edit(
        "environments/pipeline.yaml",
        "upstream: [dev], auto: true, policy: qa",
        "upstream: [dev], policy: qa",
    );
    repo.edit("policies/qa.yaml", "soak: 10m", "soak: 10m\n  schedule:\n  - {cron: \"0 12 * * *\", promote: latest-verified, catchUp: 15m}");
    repo.commit("Promote qa at noon");
    let old = repo.release("1.0.0");
    let new = repo.release("2.0.0");
    repo.promote("2026-11-30T10:00:00Z", "ci", &old, "dev")
        .expect_code(0);
    repo.promote("2026-11-30T10:01:00Z", "ci", &new, "dev")
        .expect_code(0);
    // qa has no windows, so its schedule runs in UTC. Before noon: nothing for qa.
    let run = repo
        .ferry_at("2026-11-30T11:30:00Z", "ci", &["reconcile"])
        .expect_code(0);
    assert!(run.stdout.contains("nothing to do"), "{}", run.stdout);
    // 12:05: the noon occurrence is due.
    let run = repo
        .ferry_at("2026-11-30T12:05:00Z", "ci", &["reconcile", "-o", "json"])
        .expect_code(0);
    let actions = run.json()["actions"].clone();
    assert_eq!(actions[0]["stage"], "qa", "{actions}");
    assert_eq!(
        actions[0]["revision"],
        new.as_str(),
        "the newest verified revision: {actions}"
    );
    assert_eq!(actions[0]["trigger"], "schedule");
    let run = repo
        .ferry_at("2026-11-30T12:06:00Z", "ci", &["reconcile"])
        .expect_code(0);
    assert!(
        run.stdout.contains("nothing to do"),
        "acted on once: {}",
        run.stdout
    );
}

#[test]
fn a_missed_schedule_occurrence_is_not_caught_up_after_catch_up() {
    let repo = TestRepo::example();
    repo.edit(
        "environments/pipeline.yaml",
        "upstream: [dev], auto: true, policy: qa",
        "upstream: [dev], policy: qa",
    );
    repo.edit(
        "policies/qa.yaml",
        "soak: 10m",
        "schedule:\n  - {cron: \"0 12 * * *\", catchUp: 15m}",
    );
    repo.commit("Promote qa at noon");
    let rev = repo.release("1.0.0");
    repo.promote("2026-11-30T10:00:00Z", "ci", &rev, "dev")
        .expect_code(0);
    let run = repo
        .ferry_at("2026-11-30T12:20:00Z", "ci", &["reconcile"])
        .expect_code(0);
    assert!(
        run.stdout.contains("nothing to do"),
        "20 minutes late is past catchUp: {}",
        run.stdout
    );
}

#[test]
fn re_checking_a_promotion_still_blocked_for_the_same_reasons_records_nothing() {
    let repo = TestRepo::example();
    repo.release("1.4.2");
    repo.ferry_at(MON_0900, "ci", &["reconcile"]).expect_code(0);
    let audit_len = |repo: &TestRepo| {
        repo.ferry(&["audit", "log", "-o", "json"])
            .expect_code(0)
            .json()
            .as_array()
            .map(Vec::len)
    };
    let before = audit_len(&repo);
    for at in ["2026-11-30T09:03:00Z", "2026-11-30T09:06:00Z"] {
        let run = repo.ferry_at(at, "ci", &["reconcile"]).expect_code(0);
        assert!(
            run.stdout.contains("qa waits") && run.stdout.contains("soak"),
            "{}",
            run.stdout
        );
    }
    assert_eq!(
        audit_len(&repo),
        before,
        "no new audit entries while nothing changed"
    );
    let qa = repo
        .ferry(&["history", "qa", "-o", "json"])
        .expect_code(0)
        .json();
    let states: Vec<&str> = qa[0]["transitions"]
        .as_array()
        .expect("transitions")
        .iter()
        .filter_map(|t| t["state"].as_str())
        .collect();
    assert_eq!(states, ["requested", "checking", "blocked"]);
    repo.ferry_at(MON_0911, "ci", &["reconcile"]).expect_code(0);
    let qa = repo
        .ferry(&["history", "qa", "-o", "json"])
        .expect_code(0)
        .json();
    assert_eq!(qa[0]["state"], "succeeded");
}
