//! Policy decisions: upstream verification, soak, approvals, time windows and schedules,
//! as pure functions of the policy, the facts the engine recorded, and `now`. No I/O and
//! no clock reads: the caller passes the time.
//!
//! [`evaluate`] decides whether one revision may enter one stage now and, if not, lists
//! every [`Blocker`]. [`may_review`], [`may_reject`] and [`may_override`] decide who may
//! approve, reject or override windows; [`window_at`] and [`due_occurrences`] answer the
//! questions a status display and the reconcile loop ask. The semantics are documented for
//! users in `docs/policies.md`.

mod approvals;
pub(crate) mod blocker;
pub(crate) mod clock;
mod due;
mod note;
mod pause;
mod review;
mod schedule;
mod soak;
mod windows;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::pipeline::{Groups, Policy, Stage};

pub use blocker::Blocker;
pub use due::next_due;
pub use note::Note;
pub use pause::{Pause, pause_of, paused_blocker};
pub use review::{Review, ReviewRefusal, Verdict, may_override, may_reject, may_review};
pub use schedule::{Occurrence, due_occurrences, next_occurrence};
pub use windows::{HORIZON, WindowState, next_open_at, window_at};

/// Everything a decision about one (stage, revision) needs, gathered by the engine.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// The stage to enter: its upstream stages and whether it requires all or any.
    pub stage: &'a Stage,
    pub policy: Option<&'a Policy>,
    pub groups: &'a Groups,
    pub revision: &'a str,
    /// Who asked for the promotion.
    pub requested_by: &'a str,
    /// When the revision was verified in each upstream stage where it currently is verified.
    pub upstream_verified: &'a BTreeMap<String, DateTime<Utc>>,
    /// Approvals and rejections recorded for this stage and revision, any digest.
    pub reviews: &'a [Review],
    /// Digest of the rendered output that would be written now.
    pub digest: &'a str,
    /// A rollback skips the upstream requirement and soak, and approvals when the policy's
    /// `rollback.skipApprovals` says so.
    pub rollback: bool,
    /// An emergency override of the windows, already checked with [`may_override`].
    pub window_override: Option<&'a WindowOverride>,
    pub now: DateTime<Utc>,
}

/// An emergency promotion outside the windows: who overrode them, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowOverride {
    pub user: String,
    pub reason: String,
}

/// The outcome of [`evaluate`]: allowed when nothing blocks, else every blocker.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Evaluation {
    pub blockers: Vec<Blocker>,
    /// What a person should know even when allowed: stale or expired approvals, an
    /// override, skipped requirements of a rollback.
    pub notes: Vec<Note>,
}

impl Evaluation {
    /// Whether the promotion may go ahead now.
    pub fn allowed(&self) -> bool {
        self.blockers.is_empty()
    }
}

/// Decides whether `facts.revision` may enter `facts.stage` at `facts.now`, listing every
/// blocker in this order: upstream, soak, rejections, approvals, window or freeze.
pub fn evaluate(facts: &Facts) -> Evaluation {
    let mut out = Evaluation::default();
    if facts.rollback {
        out.notes.push(Note::Rollback);
    } else {
        out.blockers
            .extend(soak::upstream(facts.stage, facts.upstream_verified));
        if let Some(duration) = facts.policy.and_then(|p| p.soak) {
            out.blockers.extend(soak::soak(
                facts.stage,
                duration,
                facts.upstream_verified,
                facts.now,
            ));
        }
    }
    let (rejected, notes) = approvals::rejections(facts);
    out.blockers.extend(rejected);
    out.notes.extend(notes);
    check_approvals(facts, &mut out);
    if let Some(policy) = facts.policy {
        check_windows(policy, facts, &mut out);
    }
    out
}

fn check_approvals(facts: &Facts, out: &mut Evaluation) {
    let Some(policy) = facts.policy else { return };
    let Some(rule) = &policy.approvals else {
        return;
    };
    if facts.rollback && policy.rollback_skips_approvals {
        out.notes.push(Note::ApprovalsSkipped);
        return;
    }
    let (blocker, notes) = approvals::approvals(rule, facts);
    out.blockers.extend(blocker);
    out.notes.extend(notes);
}

fn check_windows(policy: &Policy, facts: &Facts, out: &mut Evaluation) {
    let blocker = match window_at(policy, facts.now) {
        WindowState::Open => None,
        WindowState::Closed { opens_at } => Some(Blocker::window(opens_at, policy.timezone)),
        WindowState::Denied {
            reason,
            until,
            opens_at,
        } => Some(Blocker::freeze(&reason, until, opens_at, policy.timezone)),
    };
    match (blocker, facts.window_override) {
        (None, None) => {}
        (Some(blocker), None) => out.blockers.push(blocker),
        (Some(blocker), Some(o)) => {
            out.notes.push(Note::WindowOverridden {
                user: o.user.clone(),
                reason: o.reason.clone(),
                instead: Box::new(blocker),
            });
        }
        (None, Some(o)) => out.notes.push(Note::OverrideUnneeded {
            user: o.user.clone(),
        }),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::pipeline::Requires;
    use crate::policy::clock::tests::at;

    /// The groups of the bundled example.
    pub(crate) const GROUPS: &str = "apiVersion: ferry/v1
kind: Groups
metadata: {name: groups}
spec:
  release-managers: [alice, bob, carol]
  sre: [dana]
";

    /// The prod policy of the bundled example, without its gates.
    pub(crate) const PROD: &str = r#"apiVersion: ferry/v1
kind: Policy
metadata: {name: prod}
spec:
  soak: 30m
  approvals: {required: 2, from: [group:release-managers], selfApproval: false, expires: 24h}
  windows:
    timezone: Europe/Berlin
    allow: ["* 9-16 * * Mon-Thu"]
    deny:
    - {from: "2026-12-20T00:00:00+01:00", until: "2027-01-04T00:00:00+01:00", reason: year-end freeze}
  overrideBy: [group:sre]
"#;

    /// The owned facts of one decision; [`Scenario::facts`] lends them out.
    pub(crate) struct Scenario {
        pub stage: Stage,
        pub policy: Option<Policy>,
        pub groups: Groups,
        pub requested_by: String,
        pub verified: BTreeMap<String, DateTime<Utc>>,
        pub reviews: Vec<Review>,
        pub digest: String,
        pub rollback: bool,
        pub window_override: Option<WindowOverride>,
        pub now: DateTime<Utc>,
    }

    impl Scenario {
        /// Promoting to `prod` (upstream `qa`) under the policy file `text`, requested by
        /// dana, with the example's groups, at `now`.
        pub(crate) fn new(text: &str, now: &str) -> Scenario {
            let groups = Groups::from_yaml("policies/groups.yaml", GROUPS).expect("example groups");
            let policy =
                Policy::from_yaml("policies/prod.yaml", text, &groups).expect("test policy");
            Scenario {
                stage: crate::policy::soak::tests::stage(&["qa"], Requires::All),
                policy: Some(policy),
                groups,
                requested_by: "dana".into(),
                verified: BTreeMap::new(),
                reviews: Vec::new(),
                digest: "sha256:new".into(),
                rollback: false,
                window_override: None,
                now: at(now),
            }
        }

        /// A policy file named `prod` with `spec` as its body.
        pub(crate) fn with_spec(spec: &str, now: &str) -> Scenario {
            Scenario::new(
                &format!(
                    "apiVersion: ferry/v1\nkind: Policy\nmetadata: {{name: prod}}\nspec:\n{spec}"
                ),
                now,
            )
        }

        pub(crate) fn verified(mut self, stage: &str, at_: &str) -> Scenario {
            self.verified.insert(stage.into(), at(at_));
            self
        }

        pub(crate) fn review(
            mut self,
            user: &str,
            verdict: Verdict,
            digest: &str,
            at_: &str,
        ) -> Scenario {
            self.reviews.push(Review {
                user: user.into(),
                verdict,
                digest: digest.into(),
                at: at(at_),
                comment: None,
                withdrawn: false,
            });
            self
        }

        pub(crate) fn facts(&self) -> Facts<'_> {
            Facts {
                stage: &self.stage,
                policy: self.policy.as_ref(),
                groups: &self.groups,
                revision: "r-0123456789ab",
                requested_by: &self.requested_by,
                upstream_verified: &self.verified,
                reviews: &self.reviews,
                digest: &self.digest,
                rollback: self.rollback,
                window_override: self.window_override.as_ref(),
                now: self.now,
            }
        }

        pub(crate) fn evaluate(&self) -> Evaluation {
            evaluate(&self.facts())
        }
    }

    /// The notes as the command line words them.
    pub(crate) fn texts(notes: &[Note]) -> Vec<String> {
        notes.iter().map(ToString::to_string).collect()
    }

    fn kinds(eval: &Evaluation) -> Vec<&'static str> {
        eval.blockers.iter().map(Blocker::kind).collect()
    }

    fn lines(eval: &Evaluation) -> Vec<String> {
        eval.blockers.iter().map(Blocker::to_string).collect()
    }

    /// Monday 8 June 2026, 10:00 in Berlin: inside the example's prod window.
    const MONDAY_10: &str = "2026-06-08T10:00:00+02:00";

    fn ready_for_prod(now: &str) -> Scenario {
        Scenario::new(PROD, now)
            .verified("qa", "2026-06-08T08:00:00+02:00")
            .review(
                "alice",
                Verdict::Approve,
                "sha256:new",
                "2026-06-08T09:00:00+02:00",
            )
            .review(
                "bob",
                Verdict::Approve,
                "sha256:new",
                "2026-06-08T09:30:00+02:00",
            )
    }

    #[test]
    fn the_example_prod_policy_allows_a_soaked_approved_revision_in_its_window() {
        let eval = ready_for_prod(MONDAY_10).evaluate();
        assert!(eval.allowed(), "{eval}");
        assert_eq!(eval.notes, Vec::<Note>::new());
        assert_eq!(eval.to_string(), "allowed");
    }

    #[test]
    fn every_blocker_is_listed_not_just_the_first() {
        // Monday 21 December: inside the year-end freeze, 10 minutes after qa verified it.
        let s = Scenario::new(PROD, "2026-12-21T10:00:00+01:00")
            .verified("qa", "2026-12-21T09:50:00+01:00")
            .review(
                "bob",
                Verdict::Approve,
                "sha256:new",
                "2026-12-21T09:55:00+01:00",
            )
            .review(
                "carol",
                Verdict::Approve,
                "sha256:old",
                "2026-12-21T09:40:00+01:00",
            )
            .review(
                "alice",
                Verdict::Reject,
                "sha256:new",
                "2026-12-21T09:58:00+01:00",
            );
        let eval = s.evaluate();
        assert_eq!(kinds(&eval), ["soak", "rejected", "approvals", "freeze"]);
        assert_eq!(
            lines(&eval),
            [
                "soaking in qa: ready in 20m",
                "rejected by alice",
                "needs 1 more approval from group:release-managers (1 approval no longer counts: the rendered content changed)",
                "year-end freeze until Mon 4 Jan 00:00 Europe/Berlin; window opens Mon 4 Jan 09:00 Europe/Berlin",
            ]
        );
        assert_eq!(
            texts(&eval.notes),
            ["1 approval no longer counts: the rendered content changed"]
        );
        let eval = Scenario::new(PROD, "2026-06-08T18:00:00+02:00").evaluate();
        assert_eq!(kinds(&eval), ["upstream", "approvals", "window"]);
        assert_eq!(
            eval.to_string(),
            "needs verification in qa; needs 2 more approvals from group:release-managers; window opens Tue 9 Jun 09:00 Europe/Berlin"
        );
    }

    #[test]
    fn a_window_override_turns_window_blockers_into_notes() {
        let mut s = ready_for_prod("2026-12-21T10:00:00+01:00");
        s.verified
            .insert("qa".into(), at("2026-12-21T08:00:00+01:00"));
        for r in &mut s.reviews {
            r.at = at("2026-12-21T09:00:00+01:00");
        }
        assert_eq!(kinds(&s.evaluate()), ["freeze"]);
        s.window_override = Some(WindowOverride {
            user: "dana".into(),
            reason: "hotfix".into(),
        });
        let eval = s.evaluate();
        assert!(eval.allowed(), "{eval}");
        assert_eq!(
            texts(&eval.notes),
            [
                "window overridden by dana: hotfix (instead of: year-end freeze until Mon 4 Jan 00:00 Europe/Berlin; window opens Mon 4 Jan 09:00 Europe/Berlin)"
            ]
        );
        // Outside the window, on a Friday evening.
        let mut s = ready_for_prod("2026-06-12T18:00:00+02:00");
        for r in &mut s.reviews {
            r.at = at("2026-06-12T17:00:00+02:00");
        }
        s.window_override = Some(WindowOverride {
            user: "dana".into(),
            reason: "hotfix".into(),
        });
        let eval = s.evaluate();
        assert!(eval.allowed(), "{eval}");
        assert_eq!(
            texts(&eval.notes),
            [
                "window overridden by dana: hotfix (instead of: window opens Mon 15 Jun 09:00 Europe/Berlin)"
            ]
        );
        // Inside the window the override changes nothing, and says so.
        let mut s = ready_for_prod(MONDAY_10);
        s.window_override = Some(WindowOverride {
            user: "dana".into(),
            reason: "hotfix".into(),
        });
        assert_eq!(
            texts(&s.evaluate().notes),
            ["the window is open; the override by dana was not needed"]
        );
    }

    #[test]
    fn a_rollback_skips_upstream_and_soak_but_not_approvals_windows_or_rejections() {
        let mut s = Scenario::new(PROD, MONDAY_10);
        s.rollback = true;
        let eval = s.evaluate();
        assert_eq!(kinds(&eval), ["approvals"]);
        assert_eq!(
            texts(&eval.notes),
            ["rollback: the upstream requirement and soak do not apply"]
        );
        s.now = at("2026-12-21T10:00:00+01:00");
        assert_eq!(kinds(&s.evaluate()), ["approvals", "freeze"]);

        let skip = PROD.replace(
            "overrideBy:",
            "rollback: {skipApprovals: true}\n  overrideBy:",
        );
        let mut s = Scenario::new(&skip, MONDAY_10);
        s.rollback = true;
        let eval = s.evaluate();
        assert!(eval.allowed(), "{eval}");
        assert_eq!(
            texts(&eval.notes),
            [
                "rollback: the upstream requirement and soak do not apply",
                "rollback: approvals are not required (rollback.skipApprovals)"
            ]
        );
        // A rejection of exactly this content still blocks; without rollback, skipApprovals changes nothing.
        let s = s.review(
            "carol",
            Verdict::Reject,
            "sha256:new",
            "2026-06-08T09:00:00+02:00",
        );
        assert_eq!(kinds(&s.evaluate()), ["rejected"]);
        let mut s = s;
        s.rollback = false;
        assert_eq!(kinds(&s.evaluate()), ["upstream", "rejected", "approvals"]);
    }

    #[test]
    fn without_a_policy_only_the_upstream_requirement_applies() {
        let mut s = Scenario::new(PROD, "2026-12-21T10:00:00+01:00");
        s.policy = None;
        assert_eq!(kinds(&s.evaluate()), ["upstream"]);
        let s = s.verified("qa", "2026-12-21T09:59:00+01:00");
        assert!(s.evaluate().allowed());
    }

    #[test]
    fn facts_and_evaluations_serialize() {
        let eval = Scenario::new(PROD, "2026-06-08T18:00:00+02:00").evaluate();
        let json = serde_json::to_value(&eval).expect("serializable");
        assert_eq!(json["blockers"][0]["kind"], "upstream");
        assert_eq!(json["blockers"][0]["missing"][0], "qa");
        assert_eq!(json["blockers"][1]["from"][0], "group:release-managers");
        assert_eq!(json["blockers"][1]["needed"], 2);
        assert_eq!(json["blockers"][2]["opens_at"], "2026-06-09T09:00:00+02:00");
        let review = Review {
            user: "bob".into(),
            verdict: Verdict::Reject,
            digest: "sha256:new".into(),
            at: at("2026-06-08T09:00:00Z"),
            comment: Some("no".into()),
            withdrawn: false,
        };
        let text = serde_json::to_string(&review).expect("serializable");
        assert!(text.contains("\"verdict\":\"reject\""), "{text}");
        assert_eq!(
            serde_json::from_str::<Review>(&text).expect("round trip"),
            review
        );
    }
}
