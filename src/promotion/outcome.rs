//! The result of driving a promotion: where it stands now, as a value.

use serde::Serialize;

use super::record::{Promotion, PromotionState};

/// Where a promotion stands after [`Engine::promote`](super::Engine::promote),
/// [`Engine::rollback`](super::Engine::rollback) or [`Engine::resume_promotion`](super::Engine::resume).
/// A blocked or failed promotion is a normal result, not an error.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", content = "promotion", rename_all = "lowercase")]
pub enum Outcome {
    /// Its gates passed: the revision is verified in the stage.
    Succeeded(Promotion),
    /// Written to the stage; its gates run when it is driven again with `wait`.
    Verifying(Promotion),
    /// The policy does not allow it yet: `blockers` of the promotion say why (as of now).
    Blocked(Promotion),
    /// A gate failed, or applying it failed: `gates` and `error` of the promotion say which.
    Failed(Promotion),
    /// It ended without being verified: aborted, or superseded because its stage's branch
    /// moved on.
    Aborted(Promotion),
    /// Another process moved it on while this one was about to: its state as found then.
    Elsewhere(Promotion),
}

impl Outcome {
    /// The promotion, in the state it was left in.
    pub fn promotion(&self) -> &Promotion {
        match self {
            Outcome::Succeeded(p)
            | Outcome::Verifying(p)
            | Outcome::Blocked(p)
            | Outcome::Failed(p)
            | Outcome::Aborted(p)
            | Outcome::Elsewhere(p) => p,
        }
    }

    /// The promotion, in the state it was left in.
    pub fn into_promotion(self) -> Promotion {
        match self {
            Outcome::Succeeded(p)
            | Outcome::Verifying(p)
            | Outcome::Blocked(p)
            | Outcome::Failed(p)
            | Outcome::Aborted(p)
            | Outcome::Elsewhere(p) => p,
        }
    }

    /// The outcome for a promotion that stopped in `promotion.state` in this process.
    pub(crate) fn of(promotion: Promotion) -> Outcome {
        match promotion.state {
            PromotionState::Succeeded => Outcome::Succeeded(promotion),
            PromotionState::Failed => Outcome::Failed(promotion),
            PromotionState::Aborted => Outcome::Aborted(promotion),
            PromotionState::Blocked => Outcome::Blocked(promotion),
            PromotionState::Requested
            | PromotionState::Checking
            | PromotionState::Writing
            | PromotionState::Syncing
            | PromotionState::Verifying => Outcome::Verifying(promotion),
        }
    }
}
