//! Driving a promotion through its states. Every transition is persisted (and audited) in a
//! transaction that first checks nobody else moved the promotion, before the next step starts.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::engine::Engine;
use super::outcome::Outcome;
use super::record::{Promotion, PromotionState, Transition, Verification, keys};
use super::render::{Rendered, render};
use super::revision::Revision;
use super::store::{txn_save_promotion, txn_stage};
use super::{PromotionError, lock, notices};
use crate::gates::{GateContext, GateResult, GateStatus};
use crate::pipeline::{Config, Stage, SyncMode};
use crate::policy::{self, Blocker, Facts};
use crate::state::{Txn, txn_get_json, txn_put_json};

impl Engine {
    /// Drives `promotion` until it ends, blocks, or (without `wait`) starts verifying.
    pub(crate) fn drive(
        &self,
        config: &Config,
        mut promotion: Promotion,
        wait: bool,
    ) -> Result<Outcome, PromotionError> {
        let revision = self.store()?.revision(&promotion.revision)?;
        let stage = self.stage(config, &promotion.stage)?;
        let mut rendered: Option<Rendered> = None;
        // A promotion found holding its stage is claimed first (taking over a stale lock when
        // resuming); every later step into a holding state takes the lock in its own
        // transaction (see `hold`).
        let mut resumed = true;
        loop {
            let holds = matches!(
                promotion.state,
                PromotionState::Writing | PromotionState::Syncing | PromotionState::Verifying
            );
            let claimed = if holds && resumed {
                self.claim(stage, &promotion, config)
            } else {
                Ok(())
            };
            resumed = false;
            let step = match promotion.state {
                _ if claimed.is_err() => claimed.map(|()| promotion.clone()),
                PromotionState::Requested | PromotionState::Checking | PromotionState::Blocked => {
                    self.check(config, stage, &revision, promotion.clone(), &mut rendered)
                }
                PromotionState::Writing => {
                    self.write(config, stage, &revision, promotion.clone(), &mut rendered)
                }
                PromotionState::Syncing => {
                    self.sync(config, stage, promotion.clone(), &mut rendered, &revision)
                }
                PromotionState::Verifying if wait => {
                    self.verify(config, stage, &revision, promotion.clone(), &mut rendered)
                }
                _ => return Ok(Outcome::of(promotion)),
            };
            promotion = match step {
                Ok(next) if next.state.is_terminal() || next.state == PromotionState::Blocked => {
                    return Ok(Outcome::of(next));
                }
                Ok(next) => next,
                Err(PromotionError::Concurrent { promotion: id }) => {
                    return Ok(Outcome::Elsewhere(self.store()?.promotion(&id)?));
                }
                Err(err) if err.ends_promotion() => {
                    return Err(self.abandon(config, &stage.name, &promotion.id, err));
                }
                Err(err) => return Err(err),
            };
        }
    }

    /// Records that `promotion` failed with `err` (a render or git error, say), releasing the
    /// stage's lock, and returns `err`.
    fn abandon(
        &self,
        config: &Config,
        stage: &str,
        promotion: &str,
        err: PromotionError,
    ) -> PromotionError {
        let reason = super::reconcile::error_chain(&err);
        let now = self.now();
        let recorded = self.commit(|txn, events| {
            let Some(mut p) = txn_get_json::<Promotion>(txn, &keys::promotion(promotion))? else {
                return Ok(());
            };
            if p.state.is_terminal() {
                return Ok(());
            }
            p.state = PromotionState::Failed;
            p.error = Some(reason.clone());
            p.transitions.push(Transition {
                state: PromotionState::Failed,
                at: now,
                note: Some(reason.clone()),
            });
            let detail = serde_json::json!({"error": reason});
            txn_save_promotion(txn, events, &p, &self.actor, now, detail)?;
            if let Some(notice) = notices::ended(&p, &self.actor.name, now) {
                crate::notify::enqueue(txn, &config.notifications, &notice)?;
            }
            lock::release(txn, stage, promotion)
        });
        if let Err(record_err) = recorded {
            tracing::warn!("failed to record the failure of {promotion}: {record_err}");
        }
        err
    }

    /// Takes (or keeps) the stage's lock for `promotion`: resuming after a crash takes over a
    /// stale lock; a live holder makes this fail with `Busy`.
    fn claim(
        &self,
        stage: &Stage,
        promotion: &Promotion,
        config: &Config,
    ) -> Result<(), PromotionError> {
        let hold = lock_hold(config, stage);
        let now = self.now();
        self.store()?.transaction(|txn| {
            lock::acquire(txn, &stage.name, &promotion.id, &self.holder, now, hold)
        })
    }

    /// Moves `promotion` to `state`, applying `change` to it and the store in one transaction.
    pub(crate) fn advance(
        &self,
        promotion: &Promotion,
        state: PromotionState,
        note: Option<String>,
        change: impl FnMut(&mut Promotion, &mut dyn Txn) -> Result<(), PromotionError>,
    ) -> Result<Promotion, PromotionError> {
        self.advance_through(promotion, &[], state, note, change)
    }

    /// Moves `promotion` through the states `passing` to `state` in one transaction, applying
    /// `change` to it and the store. Each state passed is recorded and audited as a transition
    /// of its own; only states with no side effect between them may be passed this way (the
    /// decision of Checking, the nothing-to-do of a GitOps Syncing), so a process killed
    /// after the transaction resumes exactly where one transaction per state would have left
    /// it.
    pub(crate) fn advance_through(
        &self,
        promotion: &Promotion,
        passing: &[PromotionState],
        state: PromotionState,
        note: Option<String>,
        mut change: impl FnMut(&mut Promotion, &mut dyn Txn) -> Result<(), PromotionError>,
    ) -> Result<Promotion, PromotionError> {
        let now = self.now();
        let updated = self.commit(|txn, events| {
            let mut current: Promotion = txn_get_json(txn, &keys::promotion(&promotion.id))?
                .ok_or_else(|| PromotionError::UnknownPromotion { id: promotion.id.clone() })?;
            if current.state != promotion.state || current.transitions.len() != promotion.transitions.len() {
                return Err(PromotionError::Concurrent { promotion: promotion.id.clone() });
            }
            for &through in passing {
                current.state = through;
                current.transitions.push(Transition { state: through, at: now, note: None });
                let detail = serde_json::json!({"note": null, "blockers": current.blockers, "commit": current.commit});
                txn_save_promotion(txn, events, &current, &self.actor, now, detail)?;
            }
            current.state = state;
            current.transitions.push(Transition { state, at: now, note: note.clone() });
            change(&mut current, txn)?;
            let detail = serde_json::json!({"note": note, "blockers": current.blockers, "commit": current.commit});
            txn_save_promotion(txn, events, &current, &self.actor, now, detail)?;
            Ok(current)
        })?;
        for through in passing {
            self.step(through.as_str());
        }
        self.step(state.as_str());
        Ok(updated)
    }

    /// Takes (or keeps, renewing it) the stage's lock for `promotion` inside the transaction
    /// that moves it into a state that holds the stage.
    pub(crate) fn hold(
        &self,
        txn: &mut dyn Txn,
        config: &Config,
        stage: &Stage,
        promotion: &str,
    ) -> Result<(), PromotionError> {
        let hold = lock_hold(config, stage);
        lock::acquire(txn, &stage.name, promotion, &self.holder, self.now(), hold)
    }

    pub(crate) fn rendered<'r>(
        &self,
        stage: &Stage,
        revision: &Revision,
        cache: &'r mut Option<Rendered>,
    ) -> Result<&'r Rendered, PromotionError> {
        if cache.is_none() {
            *cache = Some(render(&self.git, stage, revision)?);
        }
        Ok(cache.as_ref().expect("rendered just above"))
    }

    /// Checking: the upstream requirement, soak, windows and approvals.
    fn check(
        &self,
        config: &Config,
        stage: &Stage,
        revision: &Revision,
        promotion: Promotion,
        cache: &mut Option<Rendered>,
    ) -> Result<Promotion, PromotionError> {
        let digest = self.rendered(stage, revision, cache)?.digest.clone();
        // The decision reads the store only; Checking is recorded once it changes something.
        let evaluation = self.evaluate(config, stage, revision, &promotion, &digest)?;
        if unchanged_block(&promotion, &digest, &evaluation) {
            let mut blocked = promotion;
            blocked.blockers = evaluation.blockers;
            return Ok(blocked);
        }
        // Checking has no side effect: it is recorded in the transaction of its verdict.
        let passing: &[PromotionState] = if promotion.state == PromotionState::Checking {
            &[]
        } else {
            &[PromotionState::Checking]
        };
        if !evaluation.allowed() {
            let blockers = evaluation.blockers.clone();
            let notes = evaluation.notes.clone();
            let note = blockers
                .iter()
                .map(|b| b.kind())
                .collect::<Vec<_>>()
                .join(", ");
            let now = self.now();
            return self.advance_through(
                &promotion,
                passing,
                PromotionState::Blocked,
                Some(format!("blocked: {note}")),
                |p, txn| {
                    p.blockers = blockers.clone();
                    p.notes = notes.clone();
                    p.digest = Some(digest.clone());
                    let notice = notices::blocked(config, p, &blockers, &self.actor.name, now);
                    crate::notify::enqueue(txn, &config.notifications, &notice)?;
                    Ok(())
                },
            );
        }
        let notes = evaluation.notes.clone();
        let approved_by = self.approvers(stage, revision, &digest)?;
        let writing = self.advance_through(
            &promotion,
            passing,
            PromotionState::Writing,
            None,
            |p, txn| {
                self.hold(txn, config, stage, &p.id)?;
                p.approved_by = approved_by.clone();
                p.blockers.clear();
                p.notes = notes.clone();
                p.digest = Some(digest.clone());
                Ok(())
            },
        );
        match writing {
            Err(busy @ PromotionError::Busy { .. }) => {
                let note = busy.to_string();
                self.advance_through(
                    &promotion,
                    passing,
                    PromotionState::Aborted,
                    Some(note),
                    |_, _| Ok(()),
                )?;
                Err(busy)
            }
            other => other,
        }
    }

    /// Who approved exactly this content (and has not withdrawn it).
    fn approvers(
        &self,
        stage: &Stage,
        revision: &Revision,
        digest: &str,
    ) -> Result<Vec<String>, PromotionError> {
        let reviews = self.store()?.reviews(&stage.name, &revision.id)?;
        Ok(reviews
            .into_iter()
            .filter(|r| r.verdict == policy::Verdict::Approve && !r.withdrawn && r.digest == digest)
            .map(|r| r.user)
            .collect())
    }

    /// The policy decision for `promotion` with rendered output `digest`.
    pub(crate) fn evaluate(
        &self,
        config: &Config,
        stage: &Stage,
        revision: &Revision,
        promotion: &Promotion,
        digest: &str,
    ) -> Result<policy::Evaluation, PromotionError> {
        let store = self.store()?;
        let mut upstream_verified = BTreeMap::new();
        for up in &stage.upstream {
            if let Some(at) = store.stage(up)?.verified_at(&revision.id) {
                upstream_verified.insert(up.clone(), at);
            }
        }
        let reviews = store.reviews(&stage.name, &revision.id)?;
        let pause = super::pause::stage_pause(&store, &stage.name)?;
        drop(store);
        let facts = Facts {
            stage,
            policy: config.policy_of(stage),
            groups: &config.groups,
            revision: &revision.id,
            requested_by: &promotion.requested_by,
            upstream_verified: &upstream_verified,
            reviews: &reviews,
            digest,
            rollback: promotion.rollback,
            window_override: promotion.window_override.as_ref(),
            now: self.now(),
        };
        let mut evaluation = policy::evaluate(&facts);
        if let Some(pause) = &pause {
            evaluation.blockers.insert(0, policy::paused_blocker(pause));
        }
        Ok(evaluation)
    }

    /// Syncing: GitOps picks the commit up; `sync: apply` applies it server-side.
    fn sync(
        &self,
        config: &Config,
        stage: &Stage,
        promotion: Promotion,
        cache: &mut Option<Rendered>,
        revision: &Revision,
    ) -> Result<Promotion, PromotionError> {
        if stage.sync == SyncMode::Apply {
            let resources = self.rendered(stage, revision, cache)?.resources.clone();
            let kubeconfig = self.options.kubeconfig.clone();
            let cluster = stage
                .cluster
                .as_ref()
                .map(|c| crate::cluster::resolve_paths(c, &self.repo))
                .transpose();
            let result = match cluster {
                Ok(cluster) => self.runtime()?.block_on(crate::cluster::apply(
                    &resources,
                    cluster.as_ref(),
                    kubeconfig.as_deref(),
                    false,
                )),
                Err(err) => Err(err),
            };
            if let Err(err) = result {
                let reason = format!("server-side apply failed: {err}");
                return self.finish(
                    config,
                    stage,
                    &promotion,
                    PromotionState::Failed,
                    Vec::new(),
                    Some(reason),
                );
            }
        }
        self.advance(&promotion, PromotionState::Verifying, None, |p, txn| {
            self.hold(txn, config, stage, &p.id)
        })
    }

    pub(crate) fn runtime(&self) -> Result<tokio::runtime::Runtime, PromotionError> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(PromotionError::Runtime)
    }

    /// Verifying: the stage's gates, against what was written.
    fn verify(
        &self,
        config: &Config,
        stage: &Stage,
        revision: &Revision,
        promotion: Promotion,
        cache: &mut Option<Rendered>,
    ) -> Result<Promotion, PromotionError> {
        let rendered = self.rendered(stage, revision, cache)?.clone();
        let specs = config
            .policy_of(stage)
            .map(|p| p.gates.clone())
            .unwrap_or_default();
        let manifests = tempfile::Builder::new()
            .prefix("ferry-manifests-")
            .tempdir()
            .map_err(|source| PromotionError::Manifests {
                path: std::env::temp_dir().display().to_string(),
                source,
            })?;
        for (name, content) in &rendered.files {
            std::fs::write(manifests.path().join(name), content).map_err(|source| {
                PromotionError::Manifests {
                    path: manifests.path().display().to_string(),
                    source,
                }
            })?;
        }
        let context = GateContext {
            stage: stage.name.clone(),
            revision: revision.id.clone(),
            commit: promotion.commit.clone().unwrap_or_default(),
            repo_root: self.repo.clone(),
            manifests_dir: manifests.path().to_path_buf(),
            resources: rendered.resources.clone(),
            cluster: stage.cluster.clone(),
            kubeconfig: self.options.kubeconfig.clone(),
            env: self.options.gate_env.clone(),
            applied_at: applied_at(&promotion),
        };
        let results = if specs.is_empty() {
            Vec::new()
        } else {
            let sink: Box<dyn crate::gates::ProgressSink> = match &self.options.progress {
                Some(reporter) => reporter.start(&stage.name, &specs),
                None => Box::new(crate::gates::NoProgress),
            };
            self.runtime()?
                .block_on(crate::gates::run_gates(&specs, &context, sink.as_ref()))
        };
        self.step("gates-done");
        let failed: Vec<&GateResult> = results
            .iter()
            .filter(|r| r.status != GateStatus::Passed)
            .collect();
        if failed.is_empty() {
            return self.finish(
                config,
                stage,
                &promotion,
                PromotionState::Succeeded,
                results,
                None,
            );
        }
        let reason = failed
            .iter()
            .map(|r| format!("gate {} {}: {}", r.name, r.status.as_str(), r.reason))
            .collect::<Vec<_>>()
            .join("; ");
        self.finish(
            config,
            stage,
            &promotion,
            PromotionState::Failed,
            results,
            Some(reason),
        )
    }

    /// Ends a promotion: records gate results, updates the stage, releases the lock. A
    /// promotion whose commit is no longer what its stage's branch holds ends aborted
    /// (superseded) instead of succeeded: a stage is never verified at a revision it does
    /// not run.
    fn finish(
        &self,
        config: &Config,
        stage: &Stage,
        promotion: &Promotion,
        state: PromotionState,
        results: Vec<GateResult>,
        error: Option<String>,
    ) -> Result<Promotion, PromotionError> {
        let now = self.now();
        let output = &config.pipeline.output;
        let config_branch = (output.branch_for(&stage.name), output.path_for(&stage.name));
        let runs = self.branch_runs(&config_branch, promotion)?;
        let (state, error) = match (&runs, state) {
            (Some(tip), PromotionState::Succeeded) => (
                PromotionState::Aborted,
                Some(format!(
                    "superseded: {} moved on to {} ({})",
                    config_branch.0,
                    short(&tip.commit),
                    tip.promotion.as_deref().unwrap_or("not written by ferry")
                )),
            ),
            (_, state) => (state, error),
        };
        self.advance(promotion, state, error.clone(), |p, txn| {
            p.gates = results.clone();
            p.error = error.clone();
            for result in &results {
                let event = super::audit::Event {
                    actor: self.actor.name.clone(),
                    auth: Some(self.actor.auth.clone()),
                    action: format!("gate.{}", result.status.as_str()),
                    stage: Some(stage.name.clone()),
                    revision: Some(p.revision.clone()),
                    promotion: Some(p.id.clone()),
                    detail: serde_json::json!({"gate": result.name, "reason": result.reason, "commit": p.commit}),
                };
                super::audit::append(txn, event, now)?;
            }
            let mut record = txn_stage(txn, &stage.name)?;
            let commit = p.commit.clone().unwrap_or_default();
            let written = Verification { revision: p.revision.clone(), promotion: p.id.clone(), commit, at: now };
            if state == PromotionState::Succeeded {
                record.verified_revisions.retain(|v| v.revision != p.revision);
                record.verified_revisions.push(written.clone());
            }
            match &runs {
                Some(tip) => {
                    // What the branch runs now, as its commit's trailers say.
                    record.current = tip.revision.clone().map(|rev| Verification {
                        revision: rev,
                        promotion: tip.promotion.clone().unwrap_or_default(),
                        commit: tip.commit.clone(),
                        at: now,
                    });
                    record.verified = record.verified_revisions.iter().any(|v| v.commit == tip.commit);
                }
                None if p.commit.is_some() => {
                    if state != PromotionState::Succeeded {
                        record.verified_revisions.retain(|v| v.revision != p.revision);
                    }
                    record.current = Some(written);
                    record.verified = state == PromotionState::Succeeded;
                }
                None => {}
            }
            txn_put_json(txn, &keys::stage(&stage.name), &record)?;
            lock::release(txn, &stage.name, &p.id)?;
            if let Some(notice) = notices::ended(p, &self.actor.name, now) {
                crate::notify::enqueue(txn, &config.notifications, &notice)?;
            }
            Ok(())
        })
    }

    /// What the branch runs instead of `promotion`'s commit, when its tip is neither that
    /// commit nor the same content; `None` when it runs the promotion (or it wrote nothing).
    fn branch_runs(
        &self,
        (branch, prefix): &(String, String),
        promotion: &Promotion,
    ) -> Result<Option<BranchTip>, PromotionError> {
        let Some(commit) = &promotion.commit else {
            return Ok(None);
        };
        let Some(tip) = self.git.branch_tip(branch)? else {
            return Ok(None);
        };
        if &tip == commit
            || self.git.read_tree_files(&tip, prefix)?
                == self.git.read_tree_files(commit, prefix)?
        {
            return Ok(None);
        }
        let info = self.git.commit_info(&tip)?;
        Ok(Some(BranchTip {
            revision: info.trailer("Ferry-Revision").map(str::to_string),
            promotion: info.trailer("Ferry-Promotion").map(str::to_string),
            commit: tip,
        }))
    }
}

/// The tip of a stage's branch, and what its trailers say it runs.
struct BranchTip {
    commit: String,
    revision: Option<String>,
    promotion: Option<String>,
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}

/// Whether a blocked promotion, re-checked, is blocked by the same kinds of things for the
/// same content: then nothing new is recorded (so `reconcile` from cron every minute does
/// not grow the history or the audit log). Blockers recorded as sentences by an earlier
/// ferry are recorded again, as data.
fn unchanged_block(promotion: &Promotion, digest: &str, evaluation: &policy::Evaluation) -> bool {
    let kinds = |blockers: &[Blocker]| blockers.iter().map(Blocker::kind).collect::<Vec<_>>();
    promotion.state == PromotionState::Blocked
        && promotion.digest.as_deref() == Some(digest)
        && !evaluation.allowed()
        && kinds(&evaluation.blockers) == kinds(&promotion.blockers)
}

/// How long a promotion of `stage` may hold its lock: its gates' timeouts.
fn lock_hold(config: &Config, stage: &Stage) -> Duration {
    config
        .policy_of(stage)
        .map(|p| p.gates.iter().map(|g| g.timeout).sum())
        .unwrap_or_default()
}

/// When the promotion's commit was written: gates count only what they observe after it.
fn applied_at(promotion: &Promotion) -> DateTime<Utc> {
    promotion
        .transitions
        .iter()
        .rev()
        .find(|t| t.state == PromotionState::Syncing)
        .map_or(promotion.requested_at, |t| t.at)
}
