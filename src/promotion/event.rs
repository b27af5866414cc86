//! What the engine tells its host after each persisted change: a server publishes these as
//! server-sent events and wakes its reconcile loop on them.

use std::sync::Arc;

use serde::Serialize;

use super::record::PromotionState;
use crate::policy::Verdict;

/// One change the engine has persisted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EngineEvent {
    /// A promotion was recorded or moved to `state`.
    Promotion {
        id: String,
        stage: String,
        revision: String,
        state: PromotionState,
        rollback: bool,
    },
    /// A revision was created.
    ReleaseCreated { id: String },
    /// An approval or rejection was recorded (or withdrawn).
    Review {
        stage: String,
        revision: String,
        verdict: Verdict,
        by: String,
        withdrawn: bool,
    },
}

/// Called after every persisted change, on the thread that made it; it must return quickly.
pub type EventHook = Arc<dyn Fn(&EngineEvent) + Send + Sync>;
