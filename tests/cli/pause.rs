//! Stopping the line from the CLI: `ferry pause` and `ferry resume`.

use super::promote::{MON_0900, MON_0911};
use crate::support::TestRepo;

#[test]
fn a_paused_stage_waits_with_who_and_why_until_resumed() {
    let repo = TestRepo::example();
    let rev = repo.release("1.4.2");
    repo.ferry_at(MON_0900, "alice", &["reconcile"])
        .expect_code(0);
    repo.ferry_at(
        MON_0900,
        "alice",
        &["pause", "--stage", "qa", "--reason", "incident 7"],
    )
    .expect_code(0);
    repo.ferry_at(MON_0911, "alice", &["reconcile"])
        .expect_code(0);
    let blocked = repo
        .ferry_at(
            MON_0911,
            "alice",
            &["promote", &rev, "--to", "qa", "--wait"],
        )
        .expect_code(3);
    assert!(
        blocked.stderr.contains("paused by alice: incident 7"),
        "{}",
        blocked.stderr
    );
    assert_eq!(repo.log_opt("env/qa"), None);
    let unknown = repo
        .ferry_at(
            MON_0911,
            "alice",
            &["pause", "--stage", "nowhere", "--reason", "x"],
        )
        .expect_code(2);
    assert!(unknown.stderr.contains("nowhere"), "{}", unknown.stderr);
    repo.ferry_at(MON_0911, "alice", &["resume", "--stage", "qa"])
        .expect_code(0);
    repo.ferry_at(MON_0911, "alice", &["reconcile"])
        .expect_code(0);
    let status = repo.ferry(&["status", "-o", "json"]).expect_code(0).json();
    assert_eq!(status["stages"][1]["name"], "qa");
    assert_eq!(status["stages"][1]["revision"], rev.as_str());
    assert_eq!(status["stages"][1]["verified"], true);
    let audit = repo.ferry(&["audit", "verify"]).expect_code(0);
    assert!(!audit.stdout.is_empty());
}

#[test]
fn pausing_everything_needs_a_reason_and_resumes_as_a_whole() {
    let repo = TestRepo::example();
    repo.ferry(&["pause", "--reason", " "]).expect_code(2);
    repo.ferry(&["pause", "--reason", "freeze"]).expect_code(0);
    let json = repo
        .ferry(&["pause", "--reason", "again", "-o", "json"])
        .expect_code(0)
        .json();
    assert_eq!(json["all"]["reason"], "again");
    repo.ferry(&["resume", "--stage", "qa"]).expect_code(2);
    let resumed = repo.ferry(&["resume", "-o", "json"]).expect_code(0).json();
    assert_eq!(resumed["all"], serde_json::Value::Null);
}
