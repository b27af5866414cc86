//! When a decision may change by itself: the next instant at which time alone (a schedule
//! occurrence, a soak that completes, a window that opens or a freeze that ends, an approval
//! that expires) could let a promotion go ahead or change what blocks it.

use chrono::{DateTime, Utc};

use super::{Blocker, Review, Verdict, next_occurrence};
use crate::pipeline::Policy;

/// The earliest instant strictly after `now` at which the policy decision about a stage may
/// change without anyone acting: the next schedule occurrence of `policy`, the instants the
/// time-bound `blockers` lift, and the expiry of each approval in `reviews`. `None` when
/// nothing is due by time alone.
pub fn next_due(
    policy: Option<&Policy>,
    blockers: &[Blocker],
    reviews: &[Review],
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let mut candidates: Vec<DateTime<Utc>> = Vec::new();
    if let Some(policy) = policy {
        candidates.extend(next_occurrence(policy, now));
        if let Some(expires) = policy.approvals.as_ref().and_then(|a| a.expires)
            && let Ok(expires) = chrono::TimeDelta::from_std(expires)
        {
            candidates.extend(
                reviews
                    .iter()
                    .filter(|r| r.verdict == Verdict::Approve && !r.withdrawn)
                    .filter_map(|r| r.at.checked_add_signed(expires)),
            );
        }
    }
    for blocker in blockers {
        match blocker {
            Blocker::Soak { ready_at, .. } => candidates.push(*ready_at),
            Blocker::Window { opens_at, .. } => {
                candidates.extend(opens_at.map(|t| t.with_timezone(&Utc)));
            }
            Blocker::Freeze {
                until, opens_at, ..
            } => {
                candidates.extend(until.map(|t| t.with_timezone(&Utc)));
                candidates.extend(opens_at.map(|t| t.with_timezone(&Utc)));
            }
            _ => {}
        }
    }
    candidates.into_iter().filter(|t| *t > now).min()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::pipeline::Groups;
    use crate::policy::clock::tests::at;

    fn policy(spec: &str) -> Policy {
        let text =
            format!("apiVersion: ferry/v1\nkind: Policy\nmetadata: {{name: prod}}\nspec:\n{spec}");
        let groups = Groups::new([("rm".to_string(), vec!["alice".to_string()])].into());
        Policy::from_yaml("policies/prod.yaml", &text, &groups).expect("test policy")
    }

    fn approval(user: &str, when: &str, withdrawn: bool) -> Review {
        Review {
            user: user.into(),
            verdict: Verdict::Approve,
            digest: "d".into(),
            at: at(when),
            comment: None,
            withdrawn,
        }
    }

    #[test]
    fn nothing_is_due_without_policy_or_time_bound_blockers() {
        let blockers = [Blocker::Rejected {
            by: "bob".into(),
            at: at("2026-03-02T10:00:00Z"),
            comment: None,
        }];
        assert_eq!(
            next_due(None, &blockers, &[], at("2026-03-02T10:00:00Z")),
            None
        );
    }

    #[test]
    fn the_next_schedule_occurrence_is_due() {
        let p = policy("  schedule: [{cron: \"0 10 * * *\", promote: latest-verified}]");
        let now = at("2026-03-02T10:00:00Z");
        assert_eq!(
            next_due(Some(&p), &[], &[], now),
            Some(at("2026-03-03T10:00:00Z"))
        );
    }

    #[test]
    fn the_earliest_of_soak_window_and_freeze_is_due() {
        let now = at("2026-03-02T10:00:00Z");
        let tz = chrono_tz::Tz::UTC;
        let blockers = [
            Blocker::window(Some(at("2026-03-02T12:00:00Z").with_timezone(&tz)), tz),
            Blocker::soak("qa", at("2026-03-02T10:30:00Z"), Duration::from_secs(1800)),
            Blocker::freeze(
                "freeze",
                Some(at("2026-03-02T11:00:00Z").with_timezone(&tz)),
                None,
                tz,
            ),
        ];
        assert_eq!(
            next_due(None, &blockers, &[], now),
            Some(at("2026-03-02T10:30:00Z"))
        );
    }

    #[test]
    fn an_approval_is_due_when_it_expires_unless_withdrawn_or_past() {
        let p = policy("  approvals: {required: 1, from: [group:rm], expires: 2h}");
        let now = at("2026-03-02T10:00:00Z");
        let reviews = [
            approval("alice", "2026-03-02T09:30:00Z", false),
            approval("carol", "2026-03-02T09:00:00Z", true),
            approval("dave", "2026-03-02T07:00:00Z", false),
        ];
        assert_eq!(
            next_due(Some(&p), &[], &reviews, now),
            Some(at("2026-03-02T11:30:00Z"))
        );
    }

    #[test]
    fn instants_at_or_before_now_are_not_due() {
        let now = at("2026-03-02T10:00:00Z");
        let blockers = [Blocker::soak("qa", now, Duration::ZERO)];
        assert_eq!(next_due(None, &blockers, &[], now), None);
    }
}
