//! Whole command-line outputs, where the output is the point: a release's way from dev to
//! prod as a person reads it at each step — progress, blockers, notes, approvals, status and
//! history tables, and `-o json` with typed blockers. Ids that depend on commit times (revision
//! and commit hashes, digests) and gate durations are redacted; everything else is exact.

use crate::support::{Run, TestRepo};

/// Monday 2026-11-30 in Berlin: prod's window is open, the year-end freeze is weeks away.
const T0900: &str = "2026-11-30T09:00:00Z";
const T0911: &str = "2026-11-30T09:11:00Z";
const T0945: &str = "2026-11-30T09:45:00Z";
const T0950: &str = "2026-11-30T09:50:00Z";
const T0955: &str = "2026-11-30T09:55:00Z";

/// A run as one text: its exit code, stdout and stderr.
fn shown(run: &Run) -> String {
    format!(
        "exit: {}\n--- stdout\n{}--- stderr\n{}",
        run.code, run.stdout, run.stderr
    )
}

macro_rules! snapshot {
    ($name:expr, $text:expr) => {
        insta::with_settings!({
            filters => vec![
                (r"r-[0-9a-f]{12}", "r-[revision]"),
                (r"sha256:[0-9a-f]{64}", "sha256:[digest]"),
                (r"\b[0-9a-f]{40}\b", "[commit]"),
                (r"\b[0-9a-f]{12}\b", "[commit]"),
                (r"after \d+s", "after [duration]"),
                (r#""duration_ms": \d+"#, r#""duration_ms": [duration]"#),
            ],
            prepend_module_to_snapshot => false,
            omit_expression => true,
        }, {
            insta::assert_snapshot!($name, $text);
        });
    };
}

#[test]
fn a_release_from_dev_to_prod_as_a_person_reads_it() {
    let repo = TestRepo::example();
    let rev = repo.release("1.4.2");

    let dev = repo.promote(T0900, "alice", &rev, "dev");
    snapshot!("promote_dev", shown(&dev));

    let qa = repo.promote(T0900, "alice", &rev, "qa");
    snapshot!("promote_qa_soaking", shown(&qa));

    let reconcile = repo.ferry_at(T0911, "alice", &["reconcile"]);
    snapshot!("reconcile_after_soak", shown(&reconcile));

    let prod = repo.promote(T0945, "carol", &rev, "prod");
    snapshot!("promote_prod_needs_approvals", shown(&prod));

    let json = repo.ferry_at(
        T0945,
        "carol",
        &["promote", &rev, "--to", "prod", "-o", "json"],
    );
    snapshot!("promote_prod_blocked_json", shown(&json));

    let own = repo.ferry_at(T0950, "carol", &["approve", "prod"]);
    snapshot!("approve_own_request", shown(&own));

    let bob = repo.ferry_at(
        T0950,
        "bob",
        &["approve", "prod", "--comment", "checked the diff"],
    );
    snapshot!("approve_first", shown(&bob));

    let status = repo.ferry_at(T0950, "alice", &["status"]);
    snapshot!("status_waiting_for_one_approval", shown(&status));

    let alice = repo.ferry_at(T0955, "alice", &["approve", "prod"]);
    snapshot!("approve_second", shown(&alice));

    let reconcile = repo.ferry_at(T0955, "alice", &["reconcile"]);
    snapshot!("reconcile_to_prod", shown(&reconcile));

    let status = repo.ferry_at(T0955, "alice", &["status"]);
    snapshot!("status_everywhere", shown(&status));

    let history = repo.ferry_at(T0955, "alice", &["history"]);
    snapshot!("history", shown(&history));
}
