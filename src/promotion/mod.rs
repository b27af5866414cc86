//! Revisions and the promotion engine: the state machine of DESIGN §4 over the git store,
//! the renderer, the policy decisions, the gates and the state store.

mod audit;
mod drive;
mod engine;
mod lock;
mod pause;
mod query;
mod reconcile;
mod record;
mod render;
mod review;
mod revision;
mod service;
mod store;
mod write;

pub use audit::{AuditEntry, AuditReport};
pub use engine::{Clock, Engine, EngineOptions, GateReporter, PromoteRequest, StepHook};
pub use lock::Holder;
pub use pause::Pauses;
pub use query::{Plan, StageStatus};
pub use reconcile::{ReconcileAction, ReconcileReport};
pub use record::{Lock, Promotion, PromotionState, StageRecord, Transition, Trigger, Verification};
pub use render::{Rendered, digest, render_resources};
pub use review::{ReviewOutcome, noun as review_noun};
pub use revision::{ImagePin, Revision, parse_images};
pub use service::ServerRecord;
pub use store::Store;

use crate::gitstore::GitStoreError;
use crate::overlay::RenderError;
use crate::pipeline::PipelineError;
use crate::state::StateError;

/// What can go wrong while creating revisions and promoting them.
#[derive(Debug, thiserror::Error)]
pub enum PromotionError {
    /// Bad input a person can fix (a malformed flag value, an unknown image).
    #[error("{0}")]
    BadInput(String),
    #[error("unknown revision `{id}`")]
    UnknownRevision { id: String },
    #[error("unknown stage `{name}`; the pipeline has: {known}")]
    UnknownStage { name: String, known: String },
    #[error("unknown promotion `{id}`")]
    UnknownPromotion { id: String },
    #[error("refused: {0}")]
    Refused(String),
    #[error("promotion {promotion} of {revision} to {stage} is blocked: {}", blockers.join("; "))]
    Blocked {
        stage: String,
        revision: String,
        promotion: String,
        blockers: Vec<String>,
    },
    #[error("stage {stage} is busy: promotion {} by {} holds it since {} (pid {} on {}, until {})", lock.promotion, lock.user, lock.acquired_at.format("%Y-%m-%d %H:%M:%S UTC"), lock.pid, lock.host, lock.expires_at.format("%H:%M:%S UTC"))]
    Busy { stage: String, lock: Box<Lock> },
    #[error("promotion {promotion} was changed by another process")]
    Concurrent { promotion: String },
    #[error("promotion {promotion} of {revision} to {stage} failed: {reason}")]
    Failed {
        stage: String,
        revision: String,
        promotion: String,
        reason: String,
    },
    #[error(
        "failed to push {branch} to {remote}: {reason}; run the promotion again (or `ferry reconcile`) to retry"
    )]
    Push {
        branch: String,
        remote: String,
        reason: String,
    },
    #[error("failed to load the pipeline")]
    Config(#[source] PipelineError),
    #[error("failed to render stage {stage}")]
    Render {
        stage: String,
        #[source]
        source: RenderError,
    },
    #[error("git")]
    Git(#[from] GitStoreError),
    #[error("state store")]
    State(#[from] StateError),
    #[error("failed to start the gate runtime")]
    Runtime(#[source] std::io::Error),
    #[error("failed to write the rendered manifests for the gates to {path}")]
    Manifests {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl PromotionError {
    /// Whether this error ends the promotion it happened in (as opposed to leaving it blocked,
    /// busy, or for another process, or having recorded the failure already).
    pub(crate) fn ends_promotion(&self) -> bool {
        matches!(
            self,
            PromotionError::Render { .. }
                | PromotionError::Git(_)
                | PromotionError::BadInput(_)
                | PromotionError::Manifests { .. }
                | PromotionError::Runtime(_)
        )
    }
}

/// Recomputes the audit chain of `store`.
pub fn verify_audit(store: &Store) -> Result<AuditReport, PromotionError> {
    Ok(audit::verify(store.backend())?)
}

/// Audit entries, oldest first, optionally only those about `stage`.
pub fn audit_entries(
    store: &Store,
    stage: Option<&str>,
) -> Result<Vec<AuditEntry>, PromotionError> {
    Ok(audit::entries(store.backend(), stage)?)
}
