//! The state store survives SIGKILL at any instant, of any command, reader or writer.
//!
//! Round after round, readers (`status`, `history`) and writers (`release create`,
//! `reconcile`, `promote --wait`) are started together against one state directory and killed
//! at random instants: in most rounds 0–20 ms after they start (while they open the store and
//! make their first reads and writes), in every fourth 20–300 ms (while they promote). After
//! each round the store must open, every value must decode, the audit chain must verify and
//! only grow, every release whose creation reported success must still be listed, and `status`
//! and `history` must work. The random instants come from a fixed seed: what the test asserts
//! never depends on timing.

use std::collections::BTreeSet;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use ferry::state::{SqliteStore, StateStore};

use crate::support::TestRepo;

/// How many rounds to run (`FERRY_TEST_KILL_ROUNDS` overrides it).
const ROUNDS: usize = 300;

/// What a ferry process prints when the state store itself failed.
const STORE_ERRORS: [&str; 5] = [
    "failed to open state database",
    "failed to read state key",
    "failed to write state",
    "failed to use state directory",
    "failed to decode state value",
];

/// A small deterministic generator (xorshift64*), so every run kills at the same offsets.
struct Offsets(u64);

impl Offsets {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % below
    }

    /// When to kill a process of `round`, after it started.
    fn kill_after(&mut self, round: usize) -> Duration {
        if round % 4 == 3 {
            Duration::from_millis(20 + self.next(280))
        } else {
            Duration::from_micros(self.next(20_000))
        }
    }
}

/// One process of a round: what it runs, the child, and when it is killed.
struct Victim {
    args: Vec<String>,
    child: Child,
    kill_at: Instant,
}

#[test]
fn readers_and_writers_killed_at_random_instants_leave_a_consistent_store() {
    let rounds = std::env::var("FERRY_TEST_KILL_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(ROUNDS);
    let repo = TestRepo::example();
    repo.edit("policies/qa.yaml", "soak: 10m", "soak: 0s");
    repo.commit("No soak in qa");
    let first = repo.release("1.0.0");
    let mut offsets = Offsets(0x9e37_79b9_7f4a_7c15);
    let mut released = BTreeSet::from([first.clone()]);
    let mut audited = 0;
    for round in 0..rounds {
        let commands: [Vec<String>; 5] = [
            args(&["status"]),
            args(&["history", "--limit", "5"]),
            args(&[
                "release",
                "create",
                "--image",
                &format!("acme/helloworld=1.0.{}", round + 1),
                "-o",
                "json",
            ]),
            args(&["reconcile"]),
            args(&["promote", &first, "--to", "dev", "--wait"]),
        ];
        let mut victims: Vec<Victim> = commands
            .into_iter()
            .map(|args| {
                let child = repo
                    .command(&args.iter().map(String::as_str).collect::<Vec<_>>())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("spawn ferry");
                let kill_at = Instant::now() + offsets.kill_after(round);
                Victim {
                    args,
                    child,
                    kill_at,
                }
            })
            .collect();
        victims.sort_by_key(|v| v.kill_at);
        for victim in &mut victims {
            let now = Instant::now();
            if victim.kill_at > now {
                std::thread::sleep(victim.kill_at - now);
            }
            // SIGKILL; a process that already exited is only reaped below.
            let _ = victim.child.kill();
        }
        for victim in victims {
            let output = victim.child.wait_with_output().expect("wait for ferry");
            let stderr = String::from_utf8_lossy(&output.stderr);
            for error in STORE_ERRORS {
                assert!(
                    !stderr.contains(error),
                    "round {round}: `ferry {}` failed in the store:\n{stderr}",
                    victim.args.join(" ")
                );
            }
            if output.status.success() && victim.args[0] == "release" {
                let created: serde_json::Value =
                    serde_json::from_slice(&output.stdout).expect("release create prints JSON");
                released.insert(created["id"].as_str().expect("an id").to_string());
            }
        }
        audited = check_state(&repo, round, &released, audited);
    }
}

fn args(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

/// Checks the state after `round`; returns the audit entry count.
fn check_state(
    repo: &TestRepo,
    round: usize,
    released: &BTreeSet<String>,
    audited_before: u64,
) -> u64 {
    {
        let store = SqliteStore::open(&repo.path().join(".ferry"), Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("round {round}: the store does not open: {e}"));
        let entries = store
            .scan_prefix(b"")
            .unwrap_or_else(|e| panic!("round {round}: the store cannot be read: {e}"));
        for (key, value) in entries {
            let key = String::from_utf8_lossy(&key);
            if key.contains("/seq/") {
                assert_eq!(value.len(), 8, "round {round}: counter {key}");
            } else {
                serde_json::from_slice::<serde_json::Value>(&value)
                    .unwrap_or_else(|e| panic!("round {round}: {key} is not JSON: {e}"));
            }
        }
    }
    let audit = repo
        .ferry(&["audit", "verify", "-o", "json"])
        .expect_code(0)
        .json();
    let audited = audit["entries"].as_u64().expect("an entry count");
    assert!(
        audited >= audited_before,
        "round {round}: the audit log shrank from {audited_before} to {audited} entries"
    );
    let listed = repo
        .ferry(&["release", "list", "-o", "json"])
        .expect_code(0)
        .json();
    let listed: BTreeSet<String> = listed
        .as_array()
        .expect("a list")
        .iter()
        .map(|r| r["id"].as_str().expect("an id").to_string())
        .collect();
    let lost: Vec<&String> = released.difference(&listed).collect();
    assert!(lost.is_empty(), "round {round}: releases lost: {lost:?}");
    repo.ferry(&["status", "-o", "json"]).expect_code(0).json();
    repo.ferry(&["history", "-o", "json"]).expect_code(0).json();
    audited
}
