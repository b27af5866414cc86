//! Crash safety, concurrent promotions and the audit chain.

use std::process::Stdio;

use super::promote::MON_0900;
use crate::support::TestRepo;

/// The step boundaries a promotion persists, in order.
const STEPS: [&str; 7] = [
    "requested",
    "checking",
    "writing",
    "committed",
    "syncing",
    "verifying",
    "gates-done",
];

#[test]
fn a_promotion_killed_at_any_step_completes_exactly_once() {
    for step in STEPS {
        let repo = TestRepo::example();
        let rev = repo.release("1.4.2");
        let killed = repo
            .command(&["promote", &rev, "--to", "dev", "--wait"])
            .env("FERRY_TEST_NOW", MON_0900)
            .env("FERRY_TEST_FAILPOINT", step)
            .output()
            .expect("run ferry");
        assert_eq!(
            killed.status.code(),
            None,
            "killed at {step}: {}",
            String::from_utf8_lossy(&killed.stderr)
        );
        repo.promote(MON_0900, "alice", &rev, "dev").expect_code(0);
        let commits = repo.log("env/dev");
        assert_eq!(commits.len(), 1, "one commit after a kill at {step}");
        let history = repo
            .ferry(&["history", "dev", "-o", "json"])
            .expect_code(0)
            .json();
        let promotions = history.as_array().expect("array");
        assert_eq!(
            promotions.len(),
            1,
            "the same promotion resumed after {step}: {history}"
        );
        assert_eq!(promotions[0]["state"], "succeeded");
        assert_eq!(
            repo.trailer(&commits[0], "Ferry-Promotion"),
            promotions[0]["id"].as_str().expect("id")
        );
        repo.ferry(&["audit", "verify"]).expect_code(0);
    }
}

#[test]
fn two_processes_promoting_one_stage_do_not_both_proceed() {
    let repo = TestRepo::example();
    repo.edit(
        "policies/dev.yaml",
        "run: [\"sh\", \"-c\", \"grep",
        "run: [\"sh\", \"-c\", \"sleep 3; grep",
    );
    repo.commit("A slow dev gate");
    let first = repo.release("1.0.0");
    let second = repo.release("2.0.0");
    let spawn = |rev: &str| {
        repo.command(&["promote", rev, "--to", "dev", "--wait"])
            .env("FERRY_TEST_NOW", MON_0900)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn")
    };
    let (a, b) = (spawn(&first), spawn(&second));
    let (a, b) = (
        a.wait_with_output().expect("wait"),
        b.wait_with_output().expect("wait"),
    );
    let mut codes = [a.status.code(), b.status.code()];
    codes.sort();
    assert_eq!(
        codes,
        [Some(0), Some(3)],
        "one proceeds, one is told the stage is busy:\n{}\n{}",
        String::from_utf8_lossy(&a.stderr),
        String::from_utf8_lossy(&b.stderr)
    );
    let loser = if a.status.code() == Some(3) { &a } else { &b };
    assert!(
        String::from_utf8_lossy(&loser.stderr).contains("busy"),
        "{}",
        String::from_utf8_lossy(&loser.stderr)
    );
    assert_eq!(repo.log("env/dev").len(), 1, "exactly one commit");
    repo.ferry(&["status"]).expect_code(0);
    repo.ferry(&["audit", "verify"]).expect_code(0);
}

#[test]
fn a_busy_stage_names_who_holds_it() {
    let repo = TestRepo::example();
    repo.edit(
        "policies/dev.yaml",
        "run: [\"sh\", \"-c\", \"grep",
        "run: [\"sh\", \"-c\", \"sleep 3; grep",
    );
    repo.commit("A slow dev gate");
    let first = repo.release("1.0.0");
    let second = repo.release("2.0.0");
    let mut slow = repo
        .command(&["promote", &first, "--to", "dev", "--wait"])
        .env("FERRY_USER", "carol")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut run = None;
    for _ in 0..100 {
        std::thread::sleep(std::time::Duration::from_millis(50));
        let status = repo.ferry(&["status", "-o", "json"]).json();
        if status["stages"][0]["state"] == "verifying" {
            run = Some(repo.ferry(&["promote", &second, "--to", "dev"]));
            break;
        }
    }
    let run = run
        .expect("the first promotion reached verifying")
        .expect_code(3);
    assert!(
        run.stderr.contains("busy") && run.stderr.contains("carol") && run.stderr.contains("since"),
        "{}",
        run.stderr
    );
    assert!(slow.wait().expect("wait").success());
}

#[test]
fn audit_verify_names_the_first_changed_entry() {
    let repo = TestRepo::example();
    let rev = repo.release("1.4.2");
    repo.promote(MON_0900, "carol", &rev, "dev").expect_code(0);
    repo.ferry(&["audit", "verify"]).expect_code(0);
    {
        use ferry::state::{DEFAULT_OPEN_WAIT, SqliteStore, StateStore, StateStoreExt};
        let store =
            SqliteStore::open(&repo.path().join(".ferry"), DEFAULT_OPEN_WAIT).expect("open state");
        let key = format!("v1/audit/{:020}", 2).into_bytes();
        let entry = store.get(&key).expect("read").expect("entry 2");
        let changed = String::from_utf8(entry)
            .expect("json")
            .replace("\"carol\"", "\"mallory\"");
        store
            .transaction(|txn| txn.put(&key, changed.as_bytes()))
            .expect("tamper");
    }
    let run = repo.ferry(&["audit", "verify"]).expect_code(1);
    assert!(
        run.stdout.contains("entry 2") || run.stderr.contains("entry 2"),
        "{}{}",
        run.stdout,
        run.stderr
    );
}

#[test]
fn the_state_directory_ignores_itself() {
    let repo = TestRepo::example();
    repo.release("1.0.0");
    assert_eq!(
        std::fs::read_to_string(repo.path().join(".ferry/.gitignore"))
            .expect("gitignore")
            .trim(),
        "*"
    );
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
}

#[test]
fn concurrent_reconcile_runs_promote_each_stage_once() {
    let repo = TestRepo::example();
    repo.edit("policies/qa.yaml", "soak: 10m", "soak: 0s");
    repo.commit("No soak in qa");
    let rev = repo.release("1.4.2");
    let spawn = || {
        repo.command(&["reconcile"])
            .env("FERRY_TEST_NOW", MON_0900)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn")
    };
    let runs: Vec<_> = (0..3).map(|_| spawn()).collect();
    for run in runs {
        let output = run.wait_with_output().expect("wait");
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    repo.ferry_at(MON_0900, "ci", &["reconcile"]).expect_code(0);
    assert_eq!(repo.log("env/dev").len(), 1, "dev promoted once");
    assert_eq!(repo.log("env/qa").len(), 1, "qa promoted once");
    let status = repo.ferry(&["status", "-o", "json"]).expect_code(0).json();
    for stage in ["dev", "qa"] {
        let entry = status["stages"]
            .as_array()
            .expect("stages")
            .iter()
            .find(|s| s["name"] == stage)
            .cloned()
            .expect("stage");
        assert_eq!(
            (entry["revision"].as_str(), entry["verified"].as_bool()),
            (Some(rev.as_str()), Some(true)),
            "{entry}"
        );
    }
    repo.ferry(&["audit", "verify"]).expect_code(0);
}
