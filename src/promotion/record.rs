//! What the state store holds about promotions and stages, and its key layout. The records'
//! layout version is stored under [`keys::LAYOUT`] (see `layout.rs`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::actor::Auth;
use crate::gates::GateResult;
use crate::policy::{Blocker, Note, WindowOverride};

/// The states of a promotion: requested → checking → blocked ⇄ checking → writing → syncing
/// → verifying → succeeded | failed | aborted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PromotionState {
    Requested,
    Checking,
    Blocked,
    Writing,
    Syncing,
    Verifying,
    Succeeded,
    Failed,
    Aborted,
}

impl PromotionState {
    /// Whether the promotion has ended.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            PromotionState::Succeeded | PromotionState::Failed | PromotionState::Aborted
        )
    }

    /// The lower-case name used in output.
    pub fn as_str(self) -> &'static str {
        match self {
            PromotionState::Requested => "requested",
            PromotionState::Checking => "checking",
            PromotionState::Blocked => "blocked",
            PromotionState::Writing => "writing",
            PromotionState::Syncing => "syncing",
            PromotionState::Verifying => "verifying",
            PromotionState::Succeeded => "succeeded",
            PromotionState::Failed => "failed",
            PromotionState::Aborted => "aborted",
        }
    }
}

impl std::fmt::Display for PromotionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a promotion was requested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    Manual,
    Auto,
    Schedule,
    Rollback,
}

impl Trigger {
    /// The lower-case name used in output and in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Manual => "manual",
            Trigger::Auto => "auto",
            Trigger::Schedule => "schedule",
            Trigger::Rollback => "rollback",
        }
    }
}

/// One recorded state change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub state: PromotionState,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The act of moving one revision into one stage.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Promotion {
    pub id: String,
    pub stage: String,
    pub revision: String,
    pub state: PromotionState,
    pub rollback: bool,
    pub trigger: Trigger,
    pub requested_by: String,
    pub requested_at: DateTime<Utc>,
    /// How the requester was authenticated (absent in promotions of earlier releases).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_auth: Option<Auth>,
    /// What blocks it, while blocked. A re-check that finds the same kinds of blockers for the
    /// same content records nothing new.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blockers: Vec<Blocker>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<Note>,
    /// Digest of the rendered output, once rendered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// The commit written to the stage's output branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gates: Vec<GateResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_override: Option<WindowOverride>,
    /// Who approved the content that was written (reviews bound to its digest).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approved_by: Vec<String>,
    pub transitions: Vec<Transition>,
}

impl Promotion {
    /// A promotion of `revision` into `stage` in state `state`, requested by `by` at `at`.
    pub fn new(
        id: String,
        stage: &str,
        revision: &str,
        trigger: Trigger,
        by: &str,
        at: DateTime<Utc>,
    ) -> Promotion {
        Promotion {
            id,
            stage: stage.to_string(),
            revision: revision.to_string(),
            state: PromotionState::Requested,
            rollback: trigger == Trigger::Rollback,
            trigger,
            requested_by: by.to_string(),
            requested_at: at,
            requested_auth: None,
            blockers: Vec::new(),
            notes: Vec::new(),
            digest: None,
            commit: None,
            gates: Vec::new(),
            error: None,
            window_override: None,
            approved_by: Vec::new(),
            transitions: vec![Transition {
                state: PromotionState::Requested,
                at,
                note: None,
            }],
        }
    }

    /// When the promotion last changed state.
    pub fn updated_at(&self) -> DateTime<Utc> {
        self.transitions.last().map_or(self.requested_at, |t| t.at)
    }
}

/// A revision verified in a stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verification {
    pub revision: String,
    pub promotion: String,
    pub commit: String,
    pub at: DateTime<Utc>,
}

/// What a stage has now: the summary `status` reads without scanning history.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StageRecord {
    /// The revision last written to the stage, and its promotion and commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<Verification>,
    /// Whether `current` passed its gates.
    #[serde(default)]
    pub verified: bool,
    /// Revisions verified in this stage and not revoked since, oldest first.
    #[serde(default)]
    pub verified_revisions: Vec<Verification>,
    /// The newest promotion of the stage, whatever its state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_promotion: Option<String>,
    /// Per schedule index: the last occurrence acted on.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub schedules_acted: BTreeMap<usize, DateTime<Utc>>,
}

impl StageRecord {
    /// When `revision` was verified here, if it is.
    pub fn verified_at(&self, revision: &str) -> Option<DateTime<Utc>> {
        self.verified_revisions
            .iter()
            .rev()
            .find(|v| v.revision == revision)
            .map(|v| v.at)
    }
}

/// Who holds a stage's promotion lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    pub promotion: String,
    pub user: String,
    pub pid: u32,
    pub host: String,
    pub acquired_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Keys of the store. The `v1/` prefix names the key space; the layout of the records under
/// it is versioned by the number stored under [`LAYOUT`].
pub(crate) mod keys {
    /// The records' layout version (a JSON number; absent: layout 1).
    pub const LAYOUT: &[u8] = b"v1/layout";
    pub fn revision(id: &str) -> Vec<u8> {
        format!("v1/rev/{id}").into_bytes()
    }
    pub fn revision_order(seq: u64) -> Vec<u8> {
        format!("v1/revseq/{seq:020}").into_bytes()
    }
    pub const REVISION_ORDER_PREFIX: &[u8] = b"v1/revseq/";
    pub const REVISION_SEQ: &[u8] = b"v1/seq/revision";
    pub fn promotion(id: &str) -> Vec<u8> {
        format!("v1/promo/{id}").into_bytes()
    }
    pub const PROMOTION_SEQ: &[u8] = b"v1/seq/promotion";
    pub fn promotion_order(seq: u64) -> Vec<u8> {
        format!("v1/promoseq/{seq:020}").into_bytes()
    }
    pub const PROMOTION_ORDER_PREFIX: &[u8] = b"v1/promoseq/";
    pub fn stage_promotion(stage: &str, seq: u64) -> Vec<u8> {
        format!("v1/stagepromo/{stage}/{seq:020}").into_bytes()
    }
    pub fn stage_promotion_prefix(stage: &str) -> Vec<u8> {
        format!("v1/stagepromo/{stage}/").into_bytes()
    }
    pub fn stage(stage: &str) -> Vec<u8> {
        format!("v1/stage/{stage}").into_bytes()
    }
    pub fn lock(stage: &str) -> Vec<u8> {
        format!("v1/lock/{stage}").into_bytes()
    }
    pub fn review(stage: &str, revision: &str, seq: u64) -> Vec<u8> {
        format!("v1/review/{stage}/{revision}/{seq:020}").into_bytes()
    }
    pub fn review_prefix(stage: &str, revision: &str) -> Vec<u8> {
        format!("v1/review/{stage}/{revision}/").into_bytes()
    }
    pub const REVIEW_SEQ: &[u8] = b"v1/seq/review";
    pub fn audit(seq: u64) -> Vec<u8> {
        format!("v1/audit/{seq:020}").into_bytes()
    }
    pub const AUDIT_PREFIX: &[u8] = b"v1/audit/";
    pub const AUDIT_HEAD: &[u8] = b"v1/audit-head";
}
