//! The engine in process, over a `MemStore` it is handed: drive, write, reconcile, query and
//! review, with a clock the tests move and an event hook that records what it hears.

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use super::*;
use crate::policy::{Blocker, Verdict};
use crate::state::{MemStore, StateStore};

/// A temporary repository holding the bundled example, committed on `main`.
struct Example {
    dir: tempfile::TempDir,
}

fn git(dir: &Path, args: &[&str]) {
    let output = Command::new("git")
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
        .args([
            "-c",
            "commit.gpgsign=false",
            "-c",
            "core.hooksPath=/dev/null",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run git");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

impl Example {
    fn new() -> Example {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        for sub in ["environments", "policies"] {
            copy(&root.join(sub), &dir.path().join(sub));
        }
        git(dir.path(), &["init", "-q", "-b", "main"]);
        git(dir.path(), &["add", "-A"]);
        git(dir.path(), &["commit", "-q", "-m", "example"]);
        Example { dir }
    }
}

/// An engine over a fresh `MemStore`, at a time the test sets, recording its events.
struct Harness {
    _repo: Example,
    engine: Engine,
    now: Arc<Mutex<DateTime<Utc>>>,
    events: Arc<Mutex<Vec<EngineEvent>>>,
    store: Arc<MemStore>,
}

/// Monday 30 November 2026, 10:00 in Berlin: inside prod's window.
const MONDAY: &str = "2026-11-30T09:00:00Z";

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("time")
        .with_timezone(&Utc)
}

impl Harness {
    fn new() -> Harness {
        let repo = Example::new();
        let now = Arc::new(Mutex::new(at(MONDAY)));
        let events = Arc::new(Mutex::new(Vec::new()));
        let clock_now = now.clone();
        let heard = events.clone();
        let options = EngineOptions {
            clock: Some(Arc::new(move || *clock_now.lock().expect("clock"))),
            events: Some(Arc::new(move |e: &EngineEvent| {
                heard.lock().expect("events").push(e.clone())
            })),
            ..EngineOptions::default()
        };
        let store = Arc::new(MemStore::new());
        let engine = Engine::new(
            repo.dir.path(),
            store.clone(),
            Actor::local("carol"),
            options,
        )
        .expect("engine");
        Harness {
            _repo: repo,
            engine,
            now,
            events,
            store,
        }
    }

    fn set_time(&self, text: &str) {
        *self.now.lock().expect("clock") = at(text);
    }

    fn release(&self, tag: &str) -> String {
        let (revision, created) = self
            .engine
            .create_release(&[format!("acme/helloworld={tag}")], None, None)
            .expect("release");
        assert!(created);
        revision.id
    }

    fn promote(&self, revision: &str, stage: &str) -> Outcome {
        let mut request = PromoteRequest::new(revision, stage);
        request.wait = true;
        self.engine.promote(&request).expect("promote runs")
    }

    fn config(&self) -> std::sync::Arc<crate::pipeline::Config> {
        self.engine.config_at_branch("main").expect("config")
    }

    fn heard(&self) -> Vec<EngineEvent> {
        std::mem::take(&mut *self.events.lock().expect("events"))
    }
}

fn state(outcome: &Outcome) -> (&'static str, PromotionState) {
    let name = match outcome {
        Outcome::Succeeded(_) => "succeeded",
        Outcome::Verifying(_) => "verifying",
        Outcome::Blocked(_) => "blocked",
        Outcome::Failed(_) => "failed",
        Outcome::Aborted(_) => "aborted",
        Outcome::Elsewhere(_) => "elsewhere",
    };
    (name, outcome.promotion().state)
}

#[test]
fn a_promotion_in_process_reports_each_persisted_step() {
    let h = Harness::new();
    let rev = h.release("1.4.2");
    assert_eq!(h.heard(), [EngineEvent::ReleaseCreated { id: rev.clone() }]);
    let outcome = h.promote(&rev, "dev");
    assert_eq!(state(&outcome), ("succeeded", PromotionState::Succeeded));
    let states: Vec<PromotionState> = h
        .heard()
        .into_iter()
        .map(|e| match e {
            EngineEvent::Promotion {
                id,
                stage,
                revision,
                state,
                rollback,
            } => {
                assert_eq!(
                    (id.as_str(), stage.as_str(), revision.as_str(), rollback),
                    ("p-000001", "dev", rev.as_str(), false)
                );
                state
            }
            other => panic!("unexpected event {other:?}"),
        })
        .collect();
    use PromotionState::*;
    assert_eq!(
        states,
        [Requested, Checking, Writing, Syncing, Verifying, Succeeded]
    );
    let status = h.engine.status(&h.config()).expect("status");
    assert_eq!(
        (
            status[0].revision.as_deref(),
            status[0].verified,
            status[0].state
        ),
        (Some(rev.as_str()), true, StageState::Promotion(Succeeded))
    );
    assert_eq!(status[1].state, StageState::Idle);
}

#[test]
fn blocked_is_an_outcome_with_typed_blockers_and_a_recheck_records_nothing() {
    let h = Harness::new();
    let rev = h.release("1.4.2");
    h.promote(&rev, "dev");
    let outcome = h.promote(&rev, "qa");
    let Outcome::Blocked(blocked) = &outcome else {
        panic!("blocked: {outcome:?}")
    };
    assert_eq!(
        blocked.blockers,
        [Blocker::soak(
            "dev",
            at("2026-11-30T09:10:00Z"),
            std::time::Duration::from_secs(600)
        )]
    );
    h.heard();
    h.set_time("2026-11-30T09:05:00Z");
    let again = h.promote(&rev, "qa");
    assert_eq!(state(&again), ("blocked", PromotionState::Blocked));
    assert_eq!(
        again.promotion().blockers,
        [Blocker::soak(
            "dev",
            at("2026-11-30T09:10:00Z"),
            std::time::Duration::from_secs(300)
        )]
    );
    assert_eq!(h.heard(), [], "the same kinds of blockers record nothing");
    h.set_time("2026-11-30T09:11:00Z");
    let report = h.engine.reconcile(&h.config()).expect("reconcile");
    let results: Vec<(&str, &str)> = report
        .actions
        .iter()
        .map(|a| {
            let outcome = match &a.result {
                ActionResult::Succeeded => "succeeded",
                ActionResult::Blocked { .. } => "blocked",
                other => panic!("unexpected {other:?}"),
            };
            (a.stage.as_str(), outcome)
        })
        .collect();
    assert_eq!(results, [("qa", "succeeded")]);
    assert!(report.waiting.is_empty());
}

#[test]
fn reviews_act_as_the_caller_and_the_audit_log_says_how_they_authenticated() {
    let h = Harness::new();
    let rev = h.release("1.4.2");
    h.promote(&rev, "dev");
    h.set_time("2026-11-30T09:11:00Z");
    h.promote(&rev, "qa");
    h.set_time("2026-11-30T09:45:00Z");
    let outcome = h.promote(&rev, "prod");
    let Outcome::Blocked(p) = &outcome else {
        panic!("blocked: {outcome:?}")
    };
    assert_eq!(
        p.blockers,
        [Blocker::approvals(
            0,
            2,
            &[crate::pipeline::Principal::Group("release-managers".into())],
            0
        )]
    );
    h.heard();
    let bob = h.engine.acting_as(Actor {
        name: "bob".into(),
        auth: Auth::Token { id: "t-7".into() },
    });
    let review = bob
        .review("prod", None, Verdict::Approve, Some("ok"), false)
        .expect("review");
    assert_eq!(review.blockers.len(), 1);
    assert_eq!(
        h.heard(),
        [EngineEvent::Review {
            stage: "prod".into(),
            revision: rev.clone(),
            verdict: Verdict::Approve,
            by: "bob".into(),
            withdrawn: false
        }]
    );
    let err = h
        .engine
        .review("prod", None, Verdict::Approve, None, false)
        .expect_err("the requester may not approve");
    assert!(matches!(err, PromotionError::Refused(_)), "{err}");
    let alice = h.engine.acting_as(Actor::local("alice"));
    alice
        .review("prod", None, Verdict::Approve, None, false)
        .expect("review");
    let outcome = h.promote(&rev, "prod");
    assert_eq!(state(&outcome), ("succeeded", PromotionState::Succeeded));
    assert_eq!(outcome.promotion().approved_by, ["bob", "alice"]);
    let audit = audit_entries(&h.engine.store().expect("store"), Some("prod")).expect("audit");
    let approval = audit
        .iter()
        .find(|e| e.action == "approval")
        .expect("audited");
    assert_eq!(
        (approval.actor.as_str(), approval.auth.clone()),
        ("bob", Some(Auth::Token { id: "t-7".into() }))
    );
    assert_eq!(
        verify_audit(&h.engine.store().expect("store"))
            .expect("verify")
            .broken,
        None
    );
    assert_eq!(
        h.store.as_ref().get(b"v1/layout").expect("read"),
        Some(b"3".to_vec())
    );
}

#[test]
fn an_active_promotion_holds_its_stage_until_aborted() {
    let h = Harness::new();
    let first = h.release("1.0.0");
    let second = h.release("2.0.0");
    let outcome = h
        .engine
        .promote(&PromoteRequest::new(&first, "dev"))
        .expect("promote");
    assert_eq!(state(&outcome), ("verifying", PromotionState::Verifying));
    let err = h
        .engine
        .promote(&PromoteRequest::new(&second, "dev"))
        .expect_err("busy");
    let PromotionError::Busy { active, .. } = &err else {
        panic!("busy: {err}")
    };
    assert_eq!(active.id, "p-000001");
    let mut request = PromoteRequest::new(&second, "dev");
    request.abort_active = true;
    request.wait = true;
    let outcome = h.engine.promote(&request).expect("promote");
    assert_eq!(state(&outcome), ("succeeded", PromotionState::Succeeded));
    let first_now = h.engine.history(Some("dev"), 10).expect("history");
    let states: Vec<(&str, PromotionState)> =
        first_now.iter().map(|p| (p.id.as_str(), p.state)).collect();
    assert_eq!(
        states,
        [
            ("p-000002", PromotionState::Succeeded),
            ("p-000001", PromotionState::Aborted)
        ]
    );
    // Resuming the aborted one reports that it ended elsewhere.
    let resumed = h.engine.resume_promotion("p-000001", true).expect("resume");
    assert_eq!(state(&resumed), ("elsewhere", PromotionState::Aborted));
}
