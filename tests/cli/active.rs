//! One active promotion per stage: a promotion that has written holds its stage until it
//! ends, rollbacks are promotions like any other, and a stage is never verified at a
//! revision its branch does not run.

use super::promote::{MON_0900, MON_0911};
use crate::support::TestRepo;

/// The stage entry of `status -o json`.
fn stage(repo: &TestRepo, name: &str) -> serde_json::Value {
    let status = repo.ferry(&["status", "-o", "json"]).expect_code(0).json();
    status["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .find(|s| s["name"] == name)
        .cloned()
        .expect("the stage is in the status")
}

/// The `Ferry-Revision` of every commit on `branch`, newest first.
fn revisions_on(repo: &TestRepo, branch: &str) -> Vec<String> {
    match repo.log_opt(branch) {
        Some(commits) => commits
            .iter()
            .map(|c| repo.trailer(c, "Ferry-Revision"))
            .collect(),
        None => Vec::new(),
    }
}

/// The promotion `id` from `history -o json`.
fn promotion(repo: &TestRepo, id: &str) -> serde_json::Value {
    let history = repo.ferry(&["history", "-o", "json"]).expect_code(0).json();
    history
        .as_array()
        .expect("history")
        .iter()
        .find(|p| p["id"] == id)
        .cloned()
        .expect("the promotion is in the history")
}

#[test]
fn a_rollback_over_an_unfinished_promotion_is_busy_until_it_supersedes_it() {
    let repo = TestRepo::example();
    let r1 = repo.release("1.0.1");
    repo.ferry_at(MON_0900, "ci", &["reconcile"]).expect_code(0);
    let r2 = repo.release("1.0.2");
    let run = repo
        .ferry_at(
            MON_0900,
            "carol",
            &["promote", &r2, "--to", "dev", "-o", "json"],
        )
        .expect_code(0);
    let p2 = run.json()["id"].as_str().expect("an id").to_string();
    assert_eq!(run.json()["state"], "verifying");

    // Its process has exited; the promotion still holds dev.
    let run = repo
        .ferry_at(MON_0900, "carol", &["rollback", "dev"])
        .expect_code(3);
    assert_eq!(
        run.stderr,
        format!(
            "error: stage dev is busy: promotion {p2} of {r2} by carol is verifying, and no live process drives it\n\
             hint: finish it: `ferry reconcile` or `ferry promote {r2} --to dev --wait`; or supersede it: `ferry abort {p2}`, or pass --abort-active\n"
        )
    );
    let run = repo
        .ferry_at(
            MON_0900,
            "carol",
            &["rollback", "dev", "--abort-active", "-o", "json"],
        )
        .expect_code(0);
    let rollback = run.json();
    assert_eq!(
        (
            rollback["state"].as_str(),
            rollback["revision"].as_str(),
            rollback["rollback"].as_bool()
        ),
        (Some("succeeded"), Some(r1.as_str()), Some(true))
    );
    let aborted = promotion(&repo, &p2);
    assert_eq!(aborted["state"], "aborted");
    assert_eq!(
        aborted["transitions"]
            .as_array()
            .expect("transitions")
            .last()
            .expect("one")["note"],
        format!(
            "aborted by carol: superseded by {}",
            rollback["id"].as_str().expect("id")
        )
    );

    let run = repo.ferry_at(MON_0911, "ci", &["reconcile"]).expect_code(0);
    assert!(
        !run.stdout.contains(&r2),
        "R2 is not promoted again: {}",
        run.stdout
    );
    let dev = stage(&repo, "dev");
    assert_eq!(
        (dev["revision"].as_str(), dev["verified"].as_bool()),
        (Some(r1.as_str()), Some(true)),
        "{dev}"
    );
    let tip = &repo.log("env/dev")[0];
    assert_eq!(
        repo.trailer(tip, "Ferry-Revision"),
        r1,
        "status and env/dev agree"
    );
    assert_eq!(
        revisions_on(&repo, "env/dev"),
        [r1.as_str(), r2.as_str(), r1.as_str()]
    );
    assert_eq!(
        revisions_on(&repo, "env/qa"),
        [r1.as_str()],
        "R2 never reaches qa"
    );
    repo.ferry(&["audit", "verify"]).expect_code(0);
}

#[test]
fn a_rollback_left_verifying_is_resumed_by_reconcile() {
    let repo = TestRepo::example();
    let r1 = repo.release("1.0.1");
    let r2 = repo.release("1.0.2");
    repo.promote(MON_0900, "carol", &r1, "dev").expect_code(0);
    repo.promote(MON_0900, "carol", &r2, "dev").expect_code(0);
    let run = repo
        .ferry_at(MON_0900, "carol", &["rollback", "dev", "--no-wait"])
        .expect_code(0);
    let id = format!("p-{:06}", 3);
    let commit = &repo.log("env/dev")[0][..12];
    assert_eq!(
        run.stdout,
        format!(
            "{id}: {r1} written to dev (commit {commit}); verifying\n  run `ferry reconcile` or `ferry rollback dev --to {r1}` to run its gates\n  note: rollback: the upstream requirement and soak do not apply\n"
        )
    );
    let run = repo.ferry_at(MON_0900, "ci", &["reconcile"]).expect_code(0);
    assert_eq!(
        run.stdout.lines().next(),
        Some(format!("{id} {r1} → dev (rollback): succeeded").as_str()),
        "{}",
        run.stdout
    );
    let dev = stage(&repo, "dev");
    assert_eq!(
        (
            dev["revision"].as_str(),
            dev["verified"].as_bool(),
            dev["state"].as_str()
        ),
        (Some(r1.as_str()), Some(true), Some("succeeded"))
    );
    assert_eq!(repo.log("env/dev").len(), 3, "resumed, not written again");
}

#[test]
fn abort_ends_an_unfinished_promotion_and_frees_its_stage() {
    let repo = TestRepo::example();
    let r1 = repo.release("1.0.1");
    let r2 = repo.release("1.0.2");
    let run = repo
        .ferry_at(
            MON_0900,
            "carol",
            &["promote", &r1, "--to", "dev", "-o", "json"],
        )
        .expect_code(0);
    let p1 = run.json()["id"].as_str().expect("id").to_string();
    let run = repo
        .ferry_at(MON_0900, "dana", &["abort", &p1, "--reason", "wrong build"])
        .expect_code(0);
    assert_eq!(
        run.stdout,
        format!("{p1}: {r1} → dev: aborted (aborted by dana: wrong build)\n")
    );
    let dev = stage(&repo, "dev");
    assert_eq!(
        (
            dev["revision"].as_str(),
            dev["verified"].as_bool(),
            dev["state"].as_str()
        ),
        (Some(r1.as_str()), Some(false), Some("aborted")),
        "the branch still runs what was written, unverified: {dev}"
    );
    let run = repo.ferry(&["abort", &p1]).expect_code(2);
    assert_eq!(
        run.stderr,
        format!("error: refused: promotion {p1} has already ended: it aborted\n")
    );
    repo.promote(MON_0900, "carol", &r2, "dev").expect_code(0);
    let audit = repo
        .ferry(&["audit", "log", "--stage", "dev", "-o", "json"])
        .expect_code(0)
        .json();
    let abort = audit
        .as_array()
        .expect("entries")
        .iter()
        .find(|e| e["action"] == "promotion.aborted")
        .cloned()
        .expect("the abort is audited");
    assert_eq!(
        (abort["actor"].as_str(), abort["auth"]["kind"].as_str()),
        (Some("dana"), Some("local"))
    );
}

#[test]
fn a_promotion_whose_branch_moved_on_ends_superseded_not_verified() {
    let repo = TestRepo::example();
    let r1 = repo.release("1.0.1");
    let run = repo
        .ferry_at(
            MON_0900,
            "carol",
            &["promote", &r1, "--to", "dev", "-o", "json"],
        )
        .expect_code(0);
    let p1 = run.json()["id"].as_str().expect("id").to_string();
    // Someone commits other content on top of env/dev by hand.
    let tip = repo.git(&["rev-parse", "env/dev"]);
    repo.git(&["checkout", "-q", "env/dev"]);
    repo.write("extra.yaml", "kind: ConfigMap\n");
    let moved = repo.commit("A change made by hand");
    repo.git(&["checkout", "-q", "main"]);
    assert_ne!(moved, tip);
    let run = repo.ferry_at(MON_0900, "ci", &["reconcile"]).expect_code(0);
    assert_eq!(
        run.stdout.lines().next(),
        Some(
            format!(
                "{p1} {r1} → dev (manual): aborted: superseded: env/dev moved on to {} (not written by ferry)",
                &moved[..12]
            )
            .as_str()
        ),
        "{}",
        run.stdout
    );
    let dev = stage(&repo, "dev");
    assert_eq!(
        (dev["revision"].as_str(), dev["verified"].as_bool()),
        (None, Some(false)),
        "the branch runs no revision ferry wrote: {dev}"
    );
    assert_eq!(promotion(&repo, &p1)["state"], "aborted");
}
