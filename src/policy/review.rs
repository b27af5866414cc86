//! Reviews (approvals and rejections) and who may give them; and who may override windows.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::pipeline::{ApprovalRule, Groups, Policy, Principal};

/// What a review says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Approve,
    Reject,
}

/// An approval or rejection of one revision for one stage, bound to the digest of the
/// rendered output the reviewer saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    pub user: String,
    pub verdict: Verdict,
    pub digest: String,
    pub at: DateTime<Utc>,
    pub comment: Option<String>,
    pub withdrawn: bool,
}

/// Why someone may not approve or reject a promotion.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReviewRefusal {
    #[error("{user} may not review this promotion: reviewers are {}", list(from))]
    NotAllowed { user: String, from: Vec<Principal> },
    #[error("{user} requested this promotion and may not approve it (selfApproval is false)")]
    SelfApproval { user: String },
}

pub(crate) fn list(principals: &[Principal]) -> String {
    let names: Vec<String> = principals.iter().map(Principal::to_string).collect();
    names.join(", ")
}

/// Whether `user` may approve a promotion requested by `requested_by` under `rule`.
pub fn may_review(
    rule: &ApprovalRule,
    groups: &Groups,
    user: &str,
    requested_by: &str,
) -> Result<(), ReviewRefusal> {
    may_reject(rule, groups, user)?;
    if !rule.self_approval && user == requested_by {
        return Err(ReviewRefusal::SelfApproval {
            user: user.to_string(),
        });
    }
    Ok(())
}

/// Whether `user` may reject a promotion under `rule`: any allowed reviewer may, including
/// the requester.
pub fn may_reject(rule: &ApprovalRule, groups: &Groups, user: &str) -> Result<(), ReviewRefusal> {
    if allowed(&rule.from, groups, user) {
        return Ok(());
    }
    Err(ReviewRefusal::NotAllowed {
        user: user.to_string(),
        from: rule.from.clone(),
    })
}

/// Whether `user` may promote outside the windows of `policy` (listed in `overrideBy`,
/// directly or through a group).
pub fn may_override(policy: &Policy, groups: &Groups, user: &str) -> bool {
    allowed(&policy.override_by, groups, user)
}

pub(crate) fn allowed(principals: &[Principal], groups: &Groups, user: &str) -> bool {
    principals.iter().any(|p| groups.includes(p, user))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::tests::{GROUPS, PROD};

    fn groups() -> Groups {
        Groups::from_yaml("policies/groups.yaml", GROUPS).expect("example groups")
    }

    fn rule(from: &[&str], self_approval: bool) -> ApprovalRule {
        ApprovalRule {
            required: 1,
            from: from
                .iter()
                .map(|p| Principal::parse(p).expect("principal"))
                .collect(),
            self_approval,
            expires: None,
        }
    }

    #[test]
    fn who_may_approve() {
        let groups = groups();
        let not_allowed = |user: &str, from: &[&str]| {
            Err(ReviewRefusal::NotAllowed {
                user: user.into(),
                from: rule(from, false).from,
            })
        };
        let self_approval = |user: &str| Err(ReviewRefusal::SelfApproval { user: user.into() });
        let cases = [
            // (from, selfApproval, user, requested by, expected)
            (
                &["group:release-managers"][..],
                false,
                "bob",
                "dana",
                Ok(()),
            ),
            (
                &["group:release-managers"],
                false,
                "dana",
                "alice",
                not_allowed("dana", &["group:release-managers"]),
            ),
            (
                &["group:release-managers"],
                false,
                "mallory",
                "alice",
                not_allowed("mallory", &["group:release-managers"]),
            ),
            (
                &["group:release-managers"],
                false,
                "alice",
                "alice",
                self_approval("alice"),
            ),
            (&["group:release-managers"], true, "alice", "alice", Ok(())),
            (&["carol", "group:sre"], false, "carol", "alice", Ok(())),
            (&["carol", "group:sre"], false, "dana", "alice", Ok(())),
            (
                &["carol", "group:sre"],
                false,
                "bob",
                "alice",
                not_allowed("bob", &["carol", "group:sre"]),
            ),
            (
                &["carol", "group:sre"],
                false,
                "dana",
                "dana",
                self_approval("dana"),
            ),
        ];
        for (from, self_ok, user, requester, expected) in cases {
            assert_eq!(
                may_review(&rule(from, self_ok), &groups, user, requester),
                expected,
                "{user} for {requester} from {from:?}"
            );
        }
    }

    #[test]
    fn who_may_reject_and_override() {
        let groups = groups();
        let managers = rule(&["group:release-managers"], false);
        assert_eq!(may_reject(&managers, &groups, "alice"), Ok(()));
        assert!(may_reject(&managers, &groups, "dana").is_err());
        let prod =
            Policy::from_yaml("policies/prod.yaml", PROD, &groups).expect("example prod policy");
        let cases = [("dana", true), ("alice", false), ("mallory", false)];
        for (user, expected) in cases {
            assert_eq!(may_override(&prod, &groups, user), expected, "{user}");
        }
        let direct = PROD.replace("overrideBy: [group:sre]", "overrideBy: [alice]");
        let direct = Policy::from_yaml("policies/prod.yaml", &direct, &groups).expect("policy");
        assert!(may_override(&direct, &groups, "alice") && !may_override(&direct, &groups, "dana"));
        let nobody = PROD.replace("overrideBy: [group:sre]", "overrideBy: []");
        let nobody = Policy::from_yaml("policies/prod.yaml", &nobody, &groups).expect("policy");
        assert!(!may_override(&nobody, &groups, "dana"));
    }

    #[test]
    fn refusals_say_why() {
        let refusal = may_review(
            &rule(&["carol", "group:sre"], false),
            &groups(),
            "bob",
            "alice",
        )
        .expect_err("refused");
        assert_eq!(
            refusal.to_string(),
            "bob may not review this promotion: reviewers are carol, group:sre"
        );
        let refusal = may_review(&rule(&["group:sre"], false), &groups(), "dana", "dana")
            .expect_err("refused");
        assert_eq!(
            refusal.to_string(),
            "dana requested this promotion and may not approve it (selfApproval is false)"
        );
    }
}
