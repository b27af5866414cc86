//! `reconcile`: every due auto-promotion and scheduled promotion, repeated until nothing is
//! due; and rollback, a forward promotion of a previously verified revision.

use serde::Serialize;

use super::PromotionError;
use super::engine::{Engine, PromoteRequest};
use super::record::{Promotion, PromotionState, Trigger, keys};
use super::revision::Revision;
use super::store::txn_stage;
use crate::pipeline::{Config, Requires, Stage};
use crate::state::txn_put_json;

/// The most passes one reconcile makes before it stops (a safety net; a pass that does
/// nothing ends it first).
const MAX_PASSES: usize = 50;

/// What one reconcile did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReconcileReport {
    pub actions: Vec<ReconcileAction>,
    /// Stages that still wait, and why.
    pub waiting: Vec<(String, Vec<String>)>,
}

/// One thing reconcile did or tried.
#[derive(Debug, Clone, Serialize)]
pub struct ReconcileAction {
    pub stage: String,
    pub revision: String,
    pub trigger: Trigger,
    pub promotion: Option<String>,
    /// `succeeded`, `failed`, `blocked`, `busy`, `verifying`, `unchanged`.
    pub outcome: String,
    pub detail: String,
    /// What blocks it, when `outcome` is `blocked`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub blockers: Vec<String>,
}

impl Engine {
    /// Runs every due promotion until nothing is due.
    pub fn reconcile(&self, config: &Config) -> Result<ReconcileReport, PromotionError> {
        let mut report = ReconcileReport::default();
        let mut attempted: Vec<(String, String, Trigger)> = Vec::new();
        for _ in 0..MAX_PASSES {
            let mut progressed = false;
            for stage in config.pipeline.topological() {
                for (revision, trigger) in self.due(config, stage)? {
                    let key = (stage.name.clone(), revision.id.clone(), trigger);
                    if attempted.contains(&key) {
                        continue;
                    }
                    attempted.push(key);
                    let action = self.run_due(stage, &revision, trigger);
                    progressed |= action.outcome == "succeeded";
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
        revision: &Revision,
        trigger: Trigger,
    ) -> ReconcileAction {
        let request = PromoteRequest {
            revision: revision.id.clone(),
            stage: stage.name.clone(),
            trigger,
            wait: true,
            window_override: None,
        };
        let mut blocked_by = Vec::new();
        let (outcome, promotion, detail) = match self.promote(&request) {
            Ok(p) => (p.state.to_string(), Some(p.id), String::new()),
            Err(PromotionError::Blocked {
                promotion,
                blockers,
                ..
            }) => {
                let detail = blockers.join("; ");
                blocked_by = blockers;
                ("blocked".to_string(), Some(promotion), detail)
            }
            Err(PromotionError::Failed {
                promotion, reason, ..
            }) => ("failed".to_string(), Some(promotion), reason),
            Err(err @ PromotionError::Busy { .. }) => ("busy".to_string(), None, err.to_string()),
            Err(err) => ("error".to_string(), None, error_chain(&err)),
        };
        ReconcileAction {
            stage: stage.name.clone(),
            revision: revision.id.clone(),
            trigger,
            promotion,
            outcome,
            detail,
            blockers: blocked_by,
        }
    }

    /// What is due in `stage`: resumable promotions, a newer revision for an auto stage, and
    /// due schedule occurrences.
    pub(super) fn due(
        &self,
        config: &Config,
        stage: &Stage,
    ) -> Result<Vec<(Revision, Trigger)>, PromotionError> {
        let store = self.store()?;
        let mut due = Vec::new();
        for p in store.promotions(Some(&stage.name), 20)? {
            if !p.state.is_terminal() && !p.rollback {
                due.push((store.revision(&p.revision)?, p.trigger));
            }
        }
        drop(store);
        let candidate = self.newest_allowed(stage)?;
        if stage.auto
            && let Some(rev) = &candidate
            && self.wants(stage, rev)?
        {
            due.push((rev.clone(), Trigger::Auto));
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
                    due.push((rev.clone(), Trigger::Schedule));
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
    ) -> Result<Vec<(String, Vec<String>)>, PromotionError> {
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
                let tried = actions.iter().rev().find(|a| {
                    a.outcome == "blocked" && a.promotion.as_deref() == Some(p.id.as_str())
                });
                let blockers = match tried {
                    Some(action) => action.blockers.clone(),
                    None => self
                        .current_blockers(config, &p)
                        .unwrap_or_else(|| p.blockers.clone()),
                };
                let lines = blockers
                    .iter()
                    .map(|b| format!("{}: {b}", p.revision))
                    .collect();
                (p.stage, lines)
            })
            .collect())
    }

    /// Promotes the previously verified revision of `stage` (or `to`) forward again.
    pub fn rollback(
        &self,
        stage_name: &str,
        to: Option<&str>,
        wait: bool,
    ) -> Result<Promotion, PromotionError> {
        let store = self.store()?;
        let record = store.stage(stage_name)?;
        let current = record.current.as_ref().map(|c| c.revision.clone());
        let target = match to {
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
        let promotion = self.request(stage, &revision, Trigger::Rollback, None)?;
        self.drive(&config, promotion, wait)
    }
}

/// An error and its causes on one line.
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut parts = vec![err.to_string()];
    let mut cause = err.source();
    while let Some(e) = cause {
        parts.push(e.to_string());
        cause = e.source();
    }
    parts.join(": ")
}
