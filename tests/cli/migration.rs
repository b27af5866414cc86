//! A state directory written by an earlier release, which kept its state in sled, opens with
//! nothing lost.
//!
//! `tests/fixtures/sled-state` holds what that release left (its `make.sh` says how it was
//! made): the config repository as a git bundle, the sled database, and what the release printed
//! for `status`, `history`, `release list` and `audit verify`.

use std::path::{Path, PathBuf};

use crate::support::TestRepo;

/// When the fixture's outputs were printed.
const PRINTED_AT: &str = "2026-11-30T10:30:00Z";

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sled-state")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

/// The fixture's repository with the sled database in its state directory.
fn sled_state() -> TestRepo {
    let repo = TestRepo::from_bundle(&fixture().join("repo.bundle"));
    copy_dir(&fixture().join("sled"), &repo.path().join(".ferry/sled"));
    repo
}

fn expected(name: &str) -> String {
    let path = fixture().join("expected").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn expected_json(name: &str) -> serde_json::Value {
    serde_json::from_str(&expected(name)).expect("expected output is JSON")
}

/// Fields whose shape changed since the sled release on purpose: blockers (with their kinds,
/// `blocked_on`) and approvals were sentences and are typed data now (notes too, checked by
/// [`assert_notes_recorded`]). Their content is
/// compared through the table output.
const RESHAPED: [&str; 3] = ["blockers", "blocked_on", "approvals"];

/// Notes were sentences; each is kept as a `recorded` note holding the same sentence.
#[track_caller]
fn assert_notes_recorded(now: Option<&serde_json::Value>, before: &serde_json::Value, path: &str) {
    let recorded: Vec<serde_json::Value> = before
        .as_array()
        .unwrap_or_else(|| panic!("{path} was not a list"))
        .iter()
        .map(|text| serde_json::json!({"kind": "recorded", "text": text}))
        .collect();
    assert_eq!(now, Some(&serde_json::Value::Array(recorded)), "{path}");
}

/// Asserts that `now` holds everything `before` held: the same values under the same keys
/// (new keys are welcome) and arrays of the same length, except the [`RESHAPED`] fields.
#[track_caller]
fn assert_holds(now: &serde_json::Value, before: &serde_json::Value, path: &str) {
    use serde_json::Value;
    match (now, before) {
        (Value::Object(now), Value::Object(before)) => {
            for (key, value) in before {
                if RESHAPED.contains(&key.as_str()) {
                    continue;
                }
                if key == "notes" {
                    assert_notes_recorded(now.get(key), value, &format!("{path}.notes"));
                    continue;
                }
                let here = format!("{path}.{key}");
                let found = now.get(key).unwrap_or_else(|| panic!("{here} is gone"));
                assert_holds(found, value, &here);
            }
        }
        (Value::Array(now), Value::Array(before)) => {
            assert_eq!(now.len(), before.len(), "{path}: {now:?}");
            for (i, (now, before)) in now.iter().zip(before).enumerate() {
                assert_holds(now, before, &format!("{path}[{i}]"));
            }
        }
        _ => assert_eq!(now, before, "{path}"),
    }
}

/// Asserts that the reads print what the sled release printed.
#[track_caller]
fn assert_reads_as_before(repo: &TestRepo) {
    for (args, name) in [
        (&["status"][..], "status"),
        (&["history"], "history"),
        (&["release", "list"], "release-list"),
    ] {
        let json_args = [args, &["-o", "json"]].concat();
        let run = repo
            .ferry_at(PRINTED_AT, "alice", &json_args)
            .expect_code(0);
        assert_holds(&run.json(), &expected_json(&format!("{name}.json")), name);
        let run = repo.ferry_at(PRINTED_AT, "alice", args).expect_code(0);
        assert_eq!(run.stdout, expected(&format!("{name}.txt")), "{args:?}");
    }
    let run = repo.ferry(&["audit", "verify"]).expect_code(0);
    assert_eq!(run.stdout, expected("audit-verify.txt"));
}

#[test]
fn a_sled_state_is_migrated_on_first_open_with_nothing_lost() {
    let repo = sled_state();
    let state = repo.path().join(".ferry");
    assert_reads_as_before(&repo);
    assert!(!state.join("sled").exists(), "sled is moved aside");
    assert!(state.join("sled.migrated").is_dir());
    assert!(state.join("state.db").is_file());
    // Later opens read the migrated state, not sled.
    assert_reads_as_before(&repo);
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
}

#[test]
fn a_migrated_state_carries_on_where_the_sled_one_stopped() {
    let repo = sled_state();
    // The fixture's prod waits for one more approval of its newest revision.
    let history = repo
        .ferry(&["history", "prod", "-o", "json"])
        .expect_code(0)
        .json();
    let waiting = &history[0];
    assert_eq!(waiting["state"], "blocked");
    let revision = waiting["revision"].as_str().expect("a revision");
    repo.ferry_at("2026-11-30T10:40:00Z", "bob", &["approve", "prod"])
        .expect_code(0);
    repo.promote("2026-11-30T10:45:00Z", "carol", revision, "prod")
        .expect_code(0);
    let history = repo
        .ferry(&["history", "prod", "-o", "json"])
        .expect_code(0)
        .json();
    assert_eq!(
        history[0]["id"], waiting["id"],
        "the same promotion went on"
    );
    assert_eq!(history[0]["state"], "succeeded");
    let status = repo.ferry(&["status", "-o", "json"]).expect_code(0).json();
    let prod = &status["stages"][2];
    assert_eq!(
        (
            prod["name"].as_str(),
            prod["revision"].as_str(),
            prod["verified"].as_bool()
        ),
        (Some("prod"), Some(revision), Some(true))
    );
    let audit = repo.ferry(&["audit", "verify"]).expect_code(0);
    assert!(audit.stdout.starts_with("ok: "), "{}", audit.stdout);
    assert_ne!(
        audit.stdout,
        expected("audit-verify.txt"),
        "new entries were chained on"
    );
}

#[test]
fn a_state_of_a_newer_layout_is_refused() {
    let repo = TestRepo::example();
    repo.release("1.0.0");
    {
        use ferry::state::{DEFAULT_OPEN_WAIT, LAYOUT_KEY, SqliteStore, put_json};
        let store =
            SqliteStore::open(&repo.path().join(".ferry"), DEFAULT_OPEN_WAIT).expect("open state");
        put_json(&store, LAYOUT_KEY, &99u64).expect("write layout");
    }
    let run = repo.ferry(&["status"]).expect_code(1);
    assert!(
        run.stderr.contains("its layout version 99 is newer than version 1 this ferry understands; use a newer ferry"),
        "{}",
        run.stderr
    );
}
