//! Which recorded approvals and rejections count for a promotion.
//!
//! An approval or rejection is bound to the digest of the rendered output it reviewed. For
//! the current digest, each person's latest review that is not withdrawn is their verdict.
//! An approval counts when its author is allowed (`from`, directly or through a group), is
//! not the requester under `selfApproval: false`, and has not expired (`expires` after it
//! was given). Approvals for another digest are stale: they no longer count. A rejection
//! of the current digest blocks until it is withdrawn or the content changes.

use std::collections::{BTreeMap, BTreeSet};

use chrono::TimeDelta;

use super::review::{Review, Verdict, allowed};
use super::{Blocker, Facts, Note};
use crate::pipeline::ApprovalRule;

/// Each person's latest review of `digest` that is not withdrawn.
fn verdicts<'r>(reviews: &'r [Review], digest: &str) -> BTreeMap<&'r str, &'r Review> {
    let mut latest: BTreeMap<&str, &Review> = BTreeMap::new();
    for review in reviews
        .iter()
        .filter(|r| !r.withdrawn && r.digest == digest)
    {
        match latest.get(review.user.as_str()) {
            Some(seen) if seen.at > review.at => {}
            _ => {
                latest.insert(&review.user, review);
            }
        }
    }
    latest
}

/// The rejections of the current content, as blockers, and notes about rejections of
/// earlier content that no longer apply.
pub(crate) fn rejections(facts: &Facts) -> (Vec<Blocker>, Vec<Note>) {
    let current = verdicts(facts.reviews, facts.digest);
    let blockers = current
        .values()
        .filter(|r| r.verdict == Verdict::Reject)
        .map(|r| Blocker::Rejected {
            by: r.user.clone(),
            at: r.at,
            comment: r.comment.clone(),
        })
        .collect();
    let earlier: BTreeSet<&str> = facts
        .reviews
        .iter()
        .filter(|r| !r.withdrawn && r.verdict == Verdict::Reject && r.digest != facts.digest)
        .map(|r| r.user.as_str())
        .filter(|user| !current.contains_key(user))
        .collect();
    let notes = earlier
        .into_iter()
        .map(|user| Note::RejectionStale {
            by: user.to_string(),
        })
        .collect();
    (blockers, notes)
}

/// Why an approval does not count, if it does not.
fn disqualified(rule: &ApprovalRule, facts: &Facts, review: &Review) -> Option<Disqualified> {
    if !allowed(&rule.from, facts.groups, &review.user) {
        return Some(Disqualified::NotAllowed);
    }
    if !rule.self_approval && review.user == facts.requested_by {
        return Some(Disqualified::SelfApproval);
    }
    let expires = rule.expires.and_then(|e| TimeDelta::from_std(e).ok());
    match expires.and_then(|e| review.at.checked_add_signed(e)) {
        Some(end) if facts.now >= end => Some(Disqualified::Expired),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Disqualified {
    NotAllowed,
    SelfApproval,
    Expired,
}

/// The approvals that count against `rule`, as a blocker when too few do, with notes on
/// those that do not count and why.
pub(crate) fn approvals(rule: &ApprovalRule, facts: &Facts) -> (Option<Blocker>, Vec<Note>) {
    let current = verdicts(facts.reviews, facts.digest);
    let mut have = 0u32;
    let mut notes = Vec::new();
    let mut expired = 0u32;
    for review in current.values().filter(|r| r.verdict == Verdict::Approve) {
        match disqualified(rule, facts, review) {
            None => have += 1,
            Some(Disqualified::Expired) => expired += 1,
            Some(Disqualified::NotAllowed) => notes.push(Note::NotReviewer {
                user: review.user.clone(),
                from: rule.from.iter().map(ToString::to_string).collect(),
            }),
            Some(Disqualified::SelfApproval) => notes.push(Note::SelfApproval {
                user: review.user.clone(),
            }),
        }
    }
    if expired > 0 {
        notes.push(Note::Expired {
            count: expired,
            valid_seconds: rule.expires.map_or(0, |e| e.as_secs()),
        });
    }
    let stale = stale(rule, facts, &current);
    if stale > 0 {
        notes.push(Note::Stale { count: stale });
    }
    let blocker =
        (have < rule.required).then(|| Blocker::approvals(have, rule.required, &rule.from, stale));
    (blocker, notes)
}

/// How many people, without a review of the current content, approved earlier content in a
/// way that would count now.
fn stale(rule: &ApprovalRule, facts: &Facts, current: &BTreeMap<&str, &Review>) -> u32 {
    let users: BTreeSet<&str> = facts
        .reviews
        .iter()
        .filter(|r| !r.withdrawn && r.verdict == Verdict::Approve && r.digest != facts.digest)
        .filter(|r| !current.contains_key(r.user.as_str()))
        .filter(|r| disqualified(rule, facts, r).is_none())
        .map(|r| r.user.as_str())
        .collect();
    u32::try_from(users.len()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Evaluation;
    use crate::policy::clock::tests::at;
    use crate::policy::tests::Scenario;

    const NOW: &str = "2026-06-09T10:00:00Z";

    /// Two release managers, no self-approval, approvals valid for 24h; requested by alice.
    fn scenario() -> Scenario {
        let spec = "  approvals: {required: 2, from: [group:release-managers], selfApproval: false, expires: 24h}\n";
        let mut s = Scenario::with_spec(spec, NOW).verified("qa", "2026-06-09T08:00:00Z");
        s.requested_by = "alice".into();
        s
    }

    /// (user, verdict, digest, when, withdrawn)
    type Row = (&'static str, Verdict, &'static str, &'static str, bool);

    /// (story, reviews, selfApproval, approvals blocker as (have, stale), rejected by, notes)
    type Case = (
        &'static str,
        &'static [Row],
        bool,
        Option<(u32, u32)>,
        &'static [&'static str],
        &'static [&'static str],
    );

    fn evaluate(rows: &[Row], self_approval: bool) -> Evaluation {
        let mut s = scenario();
        if let Some(rule) = s.policy.as_mut().and_then(|p| p.approvals.as_mut()) {
            rule.self_approval = self_approval;
        }
        for (user, verdict, digest, when, withdrawn) in rows {
            s = s.review(user, *verdict, digest, when);
            if let Some(last) = s.reviews.last_mut() {
                last.withdrawn = *withdrawn;
            }
        }
        s.evaluate()
    }

    fn needs(have: u32, stale: u32) -> Option<(u32, u32)> {
        Some((have, stale))
    }

    #[test]
    fn which_approvals_count() {
        use Verdict::{Approve as A, Reject as R};
        const NEW: &str = "sha256:new";
        const OLD: &str = "sha256:old";
        const H1: &str = "2026-06-09T09:00:00Z";
        const H2: &str = "2026-06-09T08:00:00Z";
        const DAY: &str = "2026-06-08T10:00:00Z";
        const DAY_LESS_1M: &str = "2026-06-08T10:01:00Z";
        let cases: Vec<Case> = vec![
            // (story, reviews, selfApproval, approvals blocker (have, stale), rejected by, notes)
            (
                "two managers approve",
                &[("bob", A, NEW, H1, false), ("carol", A, NEW, H1, false)],
                false,
                None,
                &[],
                &[],
            ),
            (
                "one approval",
                &[("bob", A, NEW, H1, false)],
                false,
                needs(1, 0),
                &[],
                &[],
            ),
            (
                "the same person twice",
                &[("bob", A, NEW, H2, false), ("bob", A, NEW, H1, false)],
                false,
                needs(1, 0),
                &[],
                &[],
            ),
            (
                "the requester",
                &[("alice", A, NEW, H1, false), ("bob", A, NEW, H1, false)],
                false,
                needs(1, 0),
                &[],
                &["the approval by alice does not count: they requested this promotion"],
            ),
            (
                "the requester, self-approval allowed",
                &[("alice", A, NEW, H1, false), ("bob", A, NEW, H1, false)],
                true,
                None,
                &[],
                &[],
            ),
            (
                "not a release manager",
                &[("dana", A, NEW, H1, false), ("bob", A, NEW, H1, false)],
                false,
                needs(1, 0),
                &[],
                &["the approval by dana does not count: reviewers are group:release-managers"],
            ),
            (
                "expired exactly now",
                &[("bob", A, NEW, DAY, false), ("carol", A, NEW, H1, false)],
                false,
                needs(1, 0),
                &[],
                &["1 approval expired (approvals count for 1d)"],
            ),
            (
                "a minute before expiry",
                &[
                    ("bob", A, NEW, DAY_LESS_1M, false),
                    ("carol", A, NEW, H1, false),
                ],
                false,
                None,
                &[],
                &[],
            ),
            (
                "content changed",
                &[("bob", A, OLD, H1, false), ("carol", A, OLD, H1, false)],
                false,
                needs(0, 2),
                &[],
                &["2 approvals no longer count: the rendered content changed"],
            ),
            (
                "re-approved after the change",
                &[
                    ("bob", A, OLD, H2, false),
                    ("bob", A, NEW, H1, false),
                    ("carol", A, OLD, H1, false),
                ],
                false,
                needs(1, 1),
                &[],
                &["1 approval no longer counts: the rendered content changed"],
            ),
            (
                "stale and expired is only expired",
                &[("bob", A, OLD, DAY, false)],
                false,
                needs(0, 0),
                &[],
                &[],
            ),
            (
                "withdrawn",
                &[("bob", A, NEW, H1, true), ("carol", A, NEW, H1, false)],
                false,
                needs(1, 0),
                &[],
                &[],
            ),
            (
                "rejected",
                &[("bob", R, NEW, H1, false), ("carol", A, NEW, H1, false)],
                false,
                needs(1, 0),
                &["bob"],
                &[],
            ),
            (
                "rejection withdrawn",
                &[
                    ("bob", R, NEW, H2, true),
                    ("bob", A, NEW, H1, false),
                    ("carol", A, NEW, H1, false),
                ],
                false,
                None,
                &[],
                &[],
            ),
            (
                "rejected earlier content",
                &[
                    ("bob", R, OLD, H1, false),
                    ("carol", A, NEW, H1, false),
                    ("alice", R, OLD, H1, false),
                ],
                false,
                needs(1, 0),
                &[],
                &[
                    "the rejection by alice no longer applies: the rendered content changed",
                    "the rejection by bob no longer applies: the rendered content changed",
                ],
            ),
            (
                "rejected, then approved",
                &[
                    ("bob", R, NEW, H2, false),
                    ("bob", A, NEW, H1, false),
                    ("carol", A, NEW, H1, false),
                ],
                false,
                None,
                &[],
                &[],
            ),
            (
                "approved, then rejected",
                &[
                    ("bob", A, NEW, H2, false),
                    ("bob", R, NEW, H1, false),
                    ("carol", A, NEW, H1, false),
                ],
                false,
                needs(1, 0),
                &["bob"],
                &[],
            ),
            (
                "a rejection by anyone blocks",
                &[
                    ("mallory", R, NEW, H1, false),
                    ("bob", A, NEW, H1, false),
                    ("carol", A, NEW, H1, false),
                ],
                false,
                None,
                &["mallory"],
                &[],
            ),
        ];
        for (story, rows, self_approval, expected, rejected_by, notes) in cases {
            let eval = evaluate(rows, self_approval);
            let approvals = eval.blockers.iter().find_map(|b| match b {
                Blocker::Approvals {
                    have,
                    required,
                    from,
                    stale,
                    needed,
                } => {
                    assert_eq!((*required, from.len()), (2, 1), "{story}");
                    assert_eq!(*needed, 2 - *have, "{story}");
                    Some((*have, *stale))
                }
                _ => None,
            });
            let rejections: Vec<&str> = eval
                .blockers
                .iter()
                .filter_map(|b| match b {
                    Blocker::Rejected { by, .. } => Some(by.as_str()),
                    _ => None,
                })
                .collect();
            assert_eq!(approvals, expected, "{story}");
            assert_eq!(rejections, rejected_by, "{story}");
            assert_eq!(crate::policy::tests::texts(&eval.notes), notes, "{story}");
        }
    }

    #[test]
    fn a_rejection_carries_its_comment_and_time() {
        let mut s = scenario().review("bob", Verdict::Reject, "sha256:new", "2026-06-09T09:00:00Z");
        s.reviews[0].comment = Some("breaks checkout".into());
        let rejected = Blocker::Rejected {
            by: "bob".into(),
            at: at("2026-06-09T09:00:00Z"),
            comment: Some("breaks checkout".into()),
        };
        assert_eq!(s.evaluate().blockers[0], rejected);
    }
}
