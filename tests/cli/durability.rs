//! Crash safety, concurrent promotions and the audit chain.

use std::process::Stdio;
use std::time::{Duration, Instant};

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

/// The example with a dev gate that waits until the file `release-gate` appears in the
/// repository root, then passes as before.
fn with_a_held_dev_gate(repo: &TestRepo) {
    repo.edit(
        "policies/dev.yaml",
        "run: [\"sh\", \"-c\", \"grep",
        "run: [\"sh\", \"-c\", \"while [ ! -f release-gate ]; do sleep 0.05; done; grep",
    );
    repo.commit("A dev gate that waits for the test");
}

/// Lets the gates of [`with_a_held_dev_gate`] pass.
fn release_gate(repo: &TestRepo) {
    std::fs::write(repo.path().join("release-gate"), "").expect("write release-gate");
}

/// Waits (up to a minute) until one of `children` exits; returns its index.
fn first_to_exit(children: &mut [std::process::Child]) -> usize {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        for (i, child) in children.iter_mut().enumerate() {
            if child.try_wait().expect("try_wait").is_some() {
                return i;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("no process exited within a minute");
}

#[test]
fn two_processes_promoting_one_stage_do_not_both_proceed() {
    let repo = TestRepo::example();
    with_a_held_dev_gate(&repo);
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
    let mut children = vec![spawn(&first), spawn(&second)];
    // Whichever takes the stage holds it in its gate: the other is told the stage is busy.
    let exited = first_to_exit(&mut children);
    let loser = children.remove(exited);
    let winner = children.pop().expect("the other process");
    let loser = loser.wait_with_output().expect("wait");
    assert_eq!(
        loser.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&loser.stderr)
    );
    assert!(
        String::from_utf8_lossy(&loser.stderr).contains("busy"),
        "{}",
        String::from_utf8_lossy(&loser.stderr)
    );
    release_gate(&repo);
    let winner = winner.wait_with_output().expect("wait");
    assert_eq!(
        winner.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&winner.stderr)
    );
    assert_eq!(repo.log("env/dev").len(), 1, "exactly one commit");
    repo.ferry(&["status"]).expect_code(0);
    repo.ferry(&["audit", "verify"]).expect_code(0);
}

#[test]
fn a_busy_stage_names_who_holds_it() {
    let repo = TestRepo::example();
    with_a_held_dev_gate(&repo);
    let first = repo.release("1.0.0");
    let second = repo.release("2.0.0");
    let mut held = repo
        .command(&["promote", &first, "--to", "dev", "--wait"])
        .env("FERRY_USER", "carol")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(60);
    while repo.ferry(&["status", "-o", "json"]).json()["stages"][0]["state"] != "verifying" {
        assert!(
            Instant::now() < deadline,
            "the first promotion reached verifying within a minute"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let run = repo
        .ferry(&["promote", &second, "--to", "dev"])
        .expect_code(3);
    assert!(
        run.stderr.contains("busy") && run.stderr.contains("carol") && run.stderr.contains("since"),
        "{}",
        run.stderr
    );
    release_gate(&repo);
    assert!(held.wait().expect("wait").success());
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
