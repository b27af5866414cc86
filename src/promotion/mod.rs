//! Revisions and the promotion engine: the promotion state machine over the git store, the
//! renderer, the policy decisions, the gates and the state store.
//!
//! # Using the engine
//!
//! An [`Engine`] works for one config repository over one state store, acting for one
//! [`Actor`] (a name, and how it was authenticated: [`Auth`]):
//!
//! - [`Engine::new`] takes a store the host keeps open (`Arc<dyn StateStore>`, e.g. a
//!   server's; [`MemStore`](crate::state::MemStore) in tests) and migrates its records to the
//!   current layout; [`Engine::open`] takes a state directory instead (the command line),
//!   opens it when an operation first needs it and keeps it open for the engine's lifetime
//!   (other processes share the directory all the while).
//! - [`Engine::acting_as`] is the same engine for another caller (cheap: a clone).
//! - [`EngineOptions::events`] is called with an [`EngineEvent`] after every persisted
//!   change: a promotion recorded or moved to a new state, a release created, a review.
//!
//! Operations (all blocking; a server calls them from a blocking thread):
//!
//! - [`Engine::create_release`] → the revision and whether it is new;
//! - [`Engine::promote`] ([`PromoteRequest`]), [`Engine::rollback`] ([`RollbackRequest`]) and
//!   [`Engine::resume_promotion`] → an [`Outcome`]: succeeded, verifying, blocked (typed
//!   [`Blocker`](crate::policy::Blocker)s in the promotion), failed, aborted, or moved on by
//!   another process. Refusals are errors: [`PromotionError::Busy`] while another promotion
//!   holds the stage (unless `abort_active`), bad input, unknown ids;
//! - [`Engine::abort`] ends an unfinished promotion and frees its stage;
//! - [`Engine::review`] approves or rejects (or withdraws) for the caller;
//! - [`Engine::reconcile`] runs everything due and reports each [`ActionResult`];
//! - [`Engine::status`], [`Engine::history`], [`Engine::plan`], [`Engine::diff_stages`],
//!   [`verify_audit`] and [`audit_entries`] read.
//!
//! A promotion that has written (writing, syncing, verifying) holds its stage until it
//! succeeds, fails or is aborted, whether or not the process driving it is alive; a dead
//! driver only lets another process resume it. A promotion succeeds only while its stage's
//! branch runs its commit (or the same content); otherwise it ends aborted, superseded.

mod actor;
mod audit;
mod drive;
mod engine;
mod event;
mod layout;
mod lock;
pub mod metrics;
mod notices;
mod outcome;
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

pub use actor::{Actor, Auth};
pub use audit::{AuditEntry, AuditReport};
pub use engine::{
    Clock, Engine, EngineOptions, GateReporter, PromoteRequest, RollbackRequest, StepHook,
};
pub use event::{EngineEvent, EventHook};
pub use layout::LAYOUT_VERSION;
pub use lock::Holder;
pub use outcome::Outcome;
pub use pause::Pauses;
pub use query::{Plan, StageState, StageStatus};
pub use reconcile::error_chain;
pub use reconcile::{ActionResult, ReconcileAction, ReconcileReport, Waiting};
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
    /// Another promotion holds the stage (it has written and not ended), or a live process
    /// drives the promotion this call would resume.
    #[error("{}", busy_message(stage, active, driver.as_deref()))]
    Busy {
        stage: String,
        active: Box<Promotion>,
        /// The live process driving `active`, if one does.
        driver: Option<Box<Lock>>,
    },
    #[error("promotion {promotion} was changed by another process")]
    Concurrent { promotion: String },
    #[error(
        "branch {branch} kept moving while ferry wrote it; run the promotion again (or `ferry reconcile`) to retry"
    )]
    Contended { branch: String },
    #[error(
        "the state was written by a newer ferry (records layout {found}; this ferry understands up to {expected}): use a newer ferry"
    )]
    LayoutTooNew { found: u64, expected: u64 },
    #[error("failed to migrate state record {key} to the current layout")]
    Migrate {
        key: String,
        #[source]
        source: serde_json::Error,
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

fn busy_message(stage: &str, active: &Promotion, driver: Option<&Lock>) -> String {
    let what = if active.rollback {
        "rollback"
    } else {
        "promotion"
    };
    let by = match driver {
        Some(lock) => format!(
            "driven by {} (pid {} on {}) since {}, until {}",
            lock.user,
            lock.pid,
            lock.host,
            lock.acquired_at.format("%Y-%m-%d %H:%M:%S UTC"),
            lock.expires_at.format("%H:%M:%S UTC")
        ),
        None => "and no live process drives it".to_string(),
    };
    format!(
        "stage {stage} is busy: {what} {} of {} by {} is {}, {by}",
        active.id, active.revision, active.requested_by, active.state
    )
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

#[cfg(test)]
mod tests;
