//! Approvals and rejections: bound to the digest of the rendered output they approve.

use serde::Serialize;

use super::PromotionError;
use super::audit::{self, Event};
use super::engine::Engine;
use super::event::EngineEvent;
use super::record::{Promotion, keys};
use super::render::render;
use crate::pipeline::Notifications;
use crate::policy::{self, Blocker, Review, Verdict};
use crate::state::{next_seq, txn_put_json, txn_scan_json};

/// What a review recorded.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct ReviewOutcome {
    pub stage: String,
    pub revision: String,
    pub promotion: Option<String>,
    pub review: Review,
    /// What still blocks the promotion after this review.
    pub blockers: Vec<Blocker>,
}

impl Engine {
    /// Records `user`'s approval or rejection of `revision` (default: the revision waiting in
    /// `stage`) for the content it renders to now. `withdraw` takes the user's review back.
    pub fn review(
        &self,
        stage_name: &str,
        revision: Option<&str>,
        verdict: Verdict,
        comment: Option<&str>,
        withdraw: bool,
    ) -> Result<ReviewOutcome, PromotionError> {
        let store = self.store()?;
        let waiting = waiting_promotion(&store.promotions(Some(stage_name), 20)?);
        let revision_id = match (revision, &waiting) {
            (Some(id), _) => store.revision(id)?.id,
            (None, Some(p)) => p.revision.clone(),
            (None, None) => {
                return Err(PromotionError::BadInput(format!(
                    "no promotion waits in {stage_name}: pass --revision REV to review one ahead"
                )));
            }
        };
        let revision = store.revision(&revision_id)?;
        drop(store);
        let waiting = waiting.filter(|p| p.revision == revision.id);
        let config = self.config_for(&revision)?;
        let stage = self.stage(&config, stage_name)?;
        let policy = config.policy_of(stage);
        let rule = policy.and_then(|p| p.approvals.as_ref()).ok_or_else(|| {
            PromotionError::BadInput(format!(
                "stage {stage_name} requires no approvals (its policy has no `approvals`)"
            ))
        })?;
        let requested_by = waiting.as_ref().map_or("", |p| p.requested_by.as_str());
        let allowed = match verdict {
            _ if withdraw => Ok(()),
            Verdict::Approve => policy::may_review(rule, &config.groups, self.user(), requested_by),
            Verdict::Reject => policy::may_reject(rule, &config.groups, self.user()),
        };
        allowed.map_err(|refusal| PromotionError::Refused(refusal.to_string()))?;
        let digest = render(&self.git, stage, &revision)?.digest;
        let review = self.record_review(
            stage_name,
            &revision.id,
            verdict,
            comment,
            &digest,
            withdraw,
            &config.notifications,
        )?;
        let probe = waiting
            .clone()
            .unwrap_or_else(|| probe_promotion(stage_name, &revision.id, self.user(), self.now()));
        let blockers = self
            .evaluate(&config, stage, &revision, &probe, &digest)?
            .blockers;
        Ok(ReviewOutcome {
            stage: stage_name.to_string(),
            revision: revision.id,
            promotion: waiting.map(|p| p.id),
            review,
            blockers,
        })
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "one review, written with its notification in one transaction"
    )]
    fn record_review(
        &self,
        stage: &str,
        revision: &str,
        verdict: Verdict,
        comment: Option<&str>,
        digest: &str,
        withdraw: bool,
        notifications: &Notifications,
    ) -> Result<Review, PromotionError> {
        let now = self.now();
        let user = self.actor.name.clone();
        self.commit(|txn, events| {
            let prefix = keys::review_prefix(stage, revision);
            let mut withdrew = false;
            for (key, mut earlier) in txn_scan_json::<Review>(txn, &prefix)? {
                if earlier.user == user
                    && !earlier.withdrawn
                    && (!withdraw || earlier.verdict == verdict)
                {
                    earlier.withdrawn = true;
                    withdrew = true;
                    txn_put_json(txn, &key, &earlier)?;
                }
            }
            let review = Review {
                user: user.clone(),
                verdict,
                digest: digest.to_string(),
                at: now,
                comment: comment.map(str::to_string),
                withdrawn: withdraw,
            };
            if withdraw && !withdrew {
                return Err(PromotionError::BadInput(format!(
                    "{user} has no {} of {revision} in {stage} to withdraw",
                    noun(verdict)
                )));
            }
            if !withdraw {
                let seq = next_seq(txn, keys::REVIEW_SEQ)?;
                txn_put_json(txn, &keys::review(stage, revision, seq), &review)?;
            }
            let action = if withdraw {
                format!("{}.withdrawn", noun(verdict))
            } else {
                noun(verdict).to_string()
            };
            let detail = serde_json::json!({"digest": digest, "comment": comment});
            events.push(EngineEvent::Review {
                stage: stage.to_string(),
                revision: revision.to_string(),
                verdict,
                by: user.clone(),
                withdrawn: withdraw,
            });
            let event = Event {
                actor: user.clone(),
                auth: Some(self.actor.auth.clone()),
                action,
                stage: Some(stage.to_string()),
                revision: Some(revision.to_string()),
                promotion: None,
                detail,
            };
            audit::append(txn, event, now)?;
            if verdict == Verdict::Approve && !withdraw {
                let event =
                    crate::notify::Event::approval_granted(now, &user, stage, revision, comment);
                crate::notify::enqueue(txn, notifications, &event)?;
            }
            Ok(review)
        })
    }
}

/// `approval` or `rejection`.
pub fn noun(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Approve => "approval",
        Verdict::Reject => "rejection",
    }
}

/// The newest promotion of a stage that has not ended.
fn waiting_promotion(promotions: &[Promotion]) -> Option<Promotion> {
    promotions.iter().find(|p| !p.state.is_terminal()).cloned()
}

pub(crate) fn probe_promotion(
    stage: &str,
    revision: &str,
    user: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Promotion {
    let mut probe = Promotion::new(
        "probe".into(),
        stage,
        revision,
        super::record::Trigger::Manual,
        user,
        now,
    );
    probe.state = super::record::PromotionState::Checking;
    probe
}
