//! What a person should know about a decision even when nothing blocks it: approvals or
//! rejections that no longer count and why, an override, a rollback's skipped requirements.
//! As data, like [`Blocker`](super::Blocker); how each reads to a person is `crate::words`.

use serde::{Deserialize, Serialize};

use super::Blocker;

/// One note on a policy decision or a plan, tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Note {
    /// A rollback: the upstream requirement and the soak do not apply to it.
    Rollback,
    /// A rollback whose policy skips approvals (`rollback.skipApprovals`).
    ApprovalsSkipped,
    /// `user` approved, but is not among the reviewers `from`.
    NotReviewer { user: String, from: Vec<String> },
    /// `user` approved the promotion they requested, which the policy does not count.
    SelfApproval { user: String },
    /// `count` approvals are older than the policy lets approvals count (`valid_seconds`).
    Expired { count: u32, valid_seconds: u64 },
    /// `count` approvals were given for other rendered content.
    Stale { count: u32 },
    /// `by` rejected earlier rendered content; the rejection does not apply to this content.
    RejectionStale { by: String },
    /// The windows were overridden by `user` for `reason`; `instead` is what they held back.
    WindowOverridden {
        user: String,
        reason: String,
        instead: Box<Blocker>,
    },
    /// The windows were open, so `user`'s override was not needed.
    OverrideUnneeded { user: String },
    /// The server-side dry run of a plan could not be done.
    DryRunFailed { error: String },
    /// A note an earlier ferry recorded as a sentence (state layouts 1 and 2), kept as it was.
    Recorded { text: String },
}

impl Note {
    /// A stable name of the kind of note, as serialized.
    pub fn kind(&self) -> &'static str {
        match self {
            Note::Rollback => "rollback",
            Note::ApprovalsSkipped => "approvals_skipped",
            Note::NotReviewer { .. } => "not_reviewer",
            Note::SelfApproval { .. } => "self_approval",
            Note::Expired { .. } => "expired",
            Note::Stale { .. } => "stale",
            Note::RejectionStale { .. } => "rejection_stale",
            Note::WindowOverridden { .. } => "window_overridden",
            Note::OverrideUnneeded { .. } => "override_unneeded",
            Note::DryRunFailed { .. } => "dry_run_failed",
            Note::Recorded { .. } => "recorded",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_serialize_with_their_kind_and_read_back() {
        let cases = [
            (Note::Rollback, serde_json::json!({"kind": "rollback"})),
            (
                Note::NotReviewer {
                    user: "eve".into(),
                    from: vec!["group:release-managers".into()],
                },
                serde_json::json!({"kind": "not_reviewer", "user": "eve", "from": ["group:release-managers"]}),
            ),
            (
                Note::Expired {
                    count: 2,
                    valid_seconds: 86_400,
                },
                serde_json::json!({"kind": "expired", "count": 2, "valid_seconds": 86400}),
            ),
            (
                Note::WindowOverridden {
                    user: "dana".into(),
                    reason: "hotfix".into(),
                    instead: Box::new(Blocker::Paused {
                        by: "sam".into(),
                        reason: "x".into(),
                    }),
                },
                serde_json::json!({"kind": "window_overridden", "user": "dana", "reason": "hotfix",
                    "instead": {"kind": "paused", "by": "sam", "reason": "x"}}),
            ),
        ];
        for (note, json) in cases {
            assert_eq!(serde_json::to_value(&note).expect("serializable"), json);
            let back: Note = serde_json::from_value(json).expect("deserializable");
            assert_eq!(back, note);
            assert_eq!(
                serde_json::to_value(&note).expect("serializable")["kind"],
                note.kind()
            );
        }
    }

    #[test]
    fn an_unknown_kind_is_an_error() {
        let err = serde_json::from_value::<Note>(serde_json::json!({"kind": "bogus"}));
        assert!(err.is_err(), "{err:?}");
    }
}
