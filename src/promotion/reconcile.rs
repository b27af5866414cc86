//! `reconcile`: every due auto-promotion and scheduled promotion, repeated until nothing is
//! due; and rollback, a forward promotion of a previously verified revision.

use serde::Serialize;

use super::PromotionError;
use super::engine::{Engine, PromoteRequest, RollbackRequest};
use super::outcome::Outcome;
use super::record::{Promotion, PromotionState, Trigger, keys};
use super::revision::Revision;
use super::store::txn_stage;
use crate::pipeline::{Config, Requires, Stage};
use crate::policy::Blocker;
use crate::state::txn_put_json;

/// The most passes one reconcile makes before it stops (a safety net; a pass that does
/// nothing ends it first).
const MAX_PASSES: usize = 50;

/// What one reconcile did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReconcileReport {
    pub actions: Vec<ReconcileAction>,
    /// Stages whose newest promotion is blocked, and what blocks it now.
    pub waiting: Vec<Waiting>,
}

impl ReconcileReport {
    /// Whether a promotion this run drove failed, or something went wrong.
    pub fn failed(&self) -> bool {
        self.actions.iter().any(|a| {
            matches!(
                a.result,
                ActionResult::Failed { .. } | ActionResult::Error { .. }
            )
        })
    }
}

/// One thing reconcile did or tried.
#[derive(Debug, Clone, Serialize)]
pub struct ReconcileAction {
    pub stage: String,
    pub revision: String,
    pub trigger: Trigger,
    pub promotion: Option<String>,
    #[serde(flatten)]
    pub result: ActionResult,
}

/// How one of reconcile's promotions stands after it.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "lowercase")]
pub enum ActionResult {
    /// Verified.
    Succeeded,
    /// Written; its gates run on a later reconcile.
    Verifying,
    /// Blocked by policy.
    Blocked { blockers: Vec<Blocker> },
    /// A gate or applying failed.
    Failed { reason: String },
    /// Ended without being verified (its stage's branch moved on).
    Aborted { reason: String },
    /// Another process moved it on first: the state it found it in. Not a failure.
    Elsewhere { state: PromotionState },
    /// Another promotion holds the stage, or a live process drives this one.
    Busy { detail: String },
    /// Something went wrong.
    Error { error: String },
}

/// A stage whose newest promotion is blocked.
#[derive(Debug, Clone, Serialize)]
pub struct Waiting {
    pub stage: String,
    pub promotion: String,
    pub revision: String,
    pub blockers: Vec<Blocker>,
}

/// Something reconcile may do in a stage.
pub(super) enum Due {
    /// Drive an unfinished promotion on.
    Resume(Box<Promotion>),
    /// Request a promotion of a revision.
    Promote(Revision, Trigger),
}

impl Due {
    /// The revision and trigger of the promotion this is about.
    pub(super) fn what(&self) -> (String, Trigger) {
        match self {
            Due::Resume(p) => (p.revision.clone(), p.trigger),
            Due::Promote(r, t) => (r.id.clone(), *t),
        }
    }
}

impl Engine {
    /// Runs every due promotion until nothing is due: unfinished promotions (rollbacks
    /// included) are resumed, auto stages take the newest revision they may, and due
    /// schedule occurrences act.
    pub fn reconcile(&self, config: &Config) -> Result<ReconcileReport, PromotionError> {
        let mut report = ReconcileReport::default();
        let mut attempted: Vec<(String, String, Trigger)> = Vec::new();
        for _ in 0..MAX_PASSES {
            let mut progressed = false;
            for stage in config.pipeline.topological() {
                for due in self.due(config, stage)? {
                    let (revision, trigger) = due.what();
                    let key = (stage.name.clone(), revision.clone(), trigger);
                    if attempted.contains(&key) {
                        continue;
                    }
                    attempted.push(key);
                    let action = self.run_due(stage, revision, trigger, due);
                    progressed |= matches!(action.result, ActionResult::Succeeded);
                    report.actions.push(action);
                }
            }
            if !progressed {
                break;
            }
        }
        report.waiting = self.waiting(config, &report.actions)?;
        Ok(report)
    }

    pub(super) fn run_due(
        &self,
        stage: &Stage,
        revision: String,
        trigger: Trigger,
        due: Due,
    ) -> ReconcileAction {
        let driven = match due {
            Due::Resume(p) => self.resume_promotion(&p.id, true),
            Due::Promote(revision, trigger) => {
                let mut request = PromoteRequest::new(&revision.id, &stage.name);
                request.trigger = trigger;
                request.wait = true;
                self.promote(&request)
            }
        };
        let (promotion, result) = match driven {
            Ok(outcome) => action_result(outcome),
            Err(err @ PromotionError::Busy { .. }) => {
                let active = match &err {
                    PromotionError::Busy { active, .. } => Some(active.id.clone()),
                    _ => None,
                };
                (
                    active,
                    ActionResult::Busy {
                        detail: err.to_string(),
                    },
                )
            }
            Err(err) => (
                None,
                ActionResult::Error {
                    error: error_chain(&err),
                },
            ),
        };
        ReconcileAction {
            stage: stage.name.clone(),
            revision,
            trigger,
            promotion,
            result,
        }
    }

    /// What is due in `stage`: resumable promotions, a newer revision for an auto stage, and
    /// due schedule occurrences.
    pub(super) fn due(&self, config: &Config, stage: &Stage) -> Result<Vec<Due>, PromotionError> {
        let store = self.store()?;
        let mut due = Vec::new();
        for p in store.promotions(Some(&stage.name), 20)? {
            if !p.state.is_terminal() {
                due.push(Due::Resume(Box::new(p)));
            }
        }
        drop(store);
        let candidate = self.newest_allowed(stage)?;
        if stage.auto
            && let Some(rev) = &candidate
            && self.wants(stage, rev)?
        {
            due.push(Due::Promote(rev.clone(), Trigger::Auto));
        }
        if let Some(policy) = config.policy_of(stage)
            && !policy.schedules.is_empty()
        {
            let record = self.store()?.stage(&stage.name)?;
            let occurrences = crate::policy::due_occurrences(
                policy,
                &|i| record.schedules_acted.get(&i).copied(),
                self.now(),
            );
            if !occurrences.is_empty() {
                self.mark_acted(stage, &occurrences)?;
                if let Some(rev) = &candidate
                    && self.wants(stage, rev)?
                {
                    due.push(Due::Promote(rev.clone(), Trigger::Schedule));
                }
            }
        }
        Ok(due)
    }

    fn mark_acted(
        &self,
        stage: &Stage,
        occurrences: &[crate::policy::Occurrence],
    ) -> Result<(), PromotionError> {
        self.store()?.transaction(|txn| {
            let mut record = txn_stage(txn, &stage.name)?;
            for o in occurrences {
                record.schedules_acted.insert(o.schedule, o.at);
            }
            txn_put_json(txn, &keys::stage(&stage.name), &record)?;
            Ok(())
        })
    }

    /// Whether `stage` should take `revision`: it does not have it, and it did not already fail
    /// there (a failed revision is retried only by hand).
    pub(super) fn wants(&self, stage: &Stage, revision: &Revision) -> Result<bool, PromotionError> {
        let store = self.store()?;
        let record = store.stage(&stage.name)?;
        if record
            .current
            .as_ref()
            .is_some_and(|c| c.revision == revision.id)
        {
            return Ok(false);
        }
        let tried = store
            .promotions(Some(&stage.name), 50)?
            .into_iter()
            .any(|p| p.revision == revision.id && !p.rollback);
        Ok(!tried)
    }

    /// The newest revision the upstream requirement of `stage` allows.
    pub fn newest_allowed(&self, stage: &Stage) -> Result<Option<Revision>, PromotionError> {
        let store = self.store()?;
        let upstream: Vec<_> = stage
            .upstream
            .iter()
            .map(|u| store.stage(u))
            .collect::<Result<_, _>>()?;
        for revision in store.revisions()? {
            let verified = upstream
                .iter()
                .filter(|r| r.verified_at(&revision.id).is_some())
                .count();
            let allowed = match stage.requires {
                _ if stage.upstream.is_empty() => true,
                Requires::All => verified == upstream.len(),
                Requires::Any => verified > 0,
            };
            if allowed {
                return Ok(Some(revision));
            }
        }
        Ok(None)
    }

    /// Stages whose newest promotion is blocked, with what blocks them now: as this run
    /// found it, or checked again for stages it did not try.
    fn waiting(
        &self,
        config: &Config,
        actions: &[ReconcileAction],
    ) -> Result<Vec<Waiting>, PromotionError> {
        let store = self.store()?;
        let mut blocked = Vec::new();
        for stage in config.pipeline.topological() {
            if let Some(p) = store.promotions(Some(&stage.name), 1)?.into_iter().next()
                && p.state == PromotionState::Blocked
            {
                blocked.push(p);
            }
        }
        drop(store);
        Ok(blocked
            .into_iter()
            .map(|p| {
                let tried = actions.iter().rev().find_map(|a| match &a.result {
                    ActionResult::Blocked { blockers }
                        if a.promotion.as_deref() == Some(p.id.as_str()) =>
                    {
                        Some(blockers.clone())
                    }
                    _ => None,
                });
                let blockers = match tried {
                    Some(blockers) => blockers,
                    None => self
                        .current_blockers(config, &p)
                        .unwrap_or_else(|| p.blockers.clone()),
                };
                Waiting {
                    stage: p.stage,
                    promotion: p.id,
                    revision: p.revision,
                    blockers,
                }
            })
            .collect())
    }

    /// Promotes the previously verified revision of the stage (or `request.to`) forward
    /// again. A rollback of the same revision that has not ended is resumed.
    pub fn rollback(&self, request: &RollbackRequest) -> Result<Outcome, PromotionError> {
        let stage_name = request.stage.as_str();
        let store = self.store()?;
        let record = store.stage(stage_name)?;
        let current = record.current.as_ref().map(|c| c.revision.clone());
        let target = match request.to.as_deref() {
            Some(id) => {
                let id = store.revision(id)?.id;
                if record.verified_at(&id).is_none() {
                    return Err(PromotionError::BadInput(format!(
                        "{id} was never verified in {stage_name}: a rollback goes back to a revision the stage had verified (see `ferry history {stage_name}`)"
                    )));
                }
                id
            }
            None => record
                .verified_revisions
                .iter()
                .rev()
                .find(|v| Some(&v.revision) != current.as_ref())
                .map(|v| v.revision.clone())
                .ok_or_else(|| {
                    PromotionError::BadInput(format!(
                        "{stage_name} has no earlier verified revision to roll back to"
                    ))
                })?,
        };
        let revision = store.revision(&target)?;
        drop(store);
        let config = self.config_for(&revision)?;
        let stage = self.stage(&config, stage_name)?;
        let promotion = self.request(
            stage,
            &revision,
            Trigger::Rollback,
            None,
            request.abort_active,
        )?;
        self.drive(&config, promotion, request.wait)
    }
}

/// The promotion and the reconcile result of an outcome.
fn action_result(outcome: Outcome) -> (Option<String>, ActionResult) {
    let result = match &outcome {
        Outcome::Succeeded(_) => ActionResult::Succeeded,
        Outcome::Verifying(_) => ActionResult::Verifying,
        Outcome::Blocked(p) => ActionResult::Blocked {
            blockers: p.blockers.clone(),
        },
        Outcome::Failed(p) => ActionResult::Failed {
            reason: p.error.clone().unwrap_or_default(),
        },
        Outcome::Aborted(p) => ActionResult::Aborted {
            reason: p.error.clone().unwrap_or_default(),
        },
        Outcome::Elsewhere(p) => ActionResult::Elsewhere { state: p.state },
    };
    (Some(outcome.into_promotion().id), result)
}

/// An error and its causes on one line.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut parts = vec![err.to_string()];
    let mut cause = err.source();
    while let Some(e) = cause {
        parts.push(e.to_string());
        cause = e.source();
    }
    parts.join(": ")
}
