//! Driving a promotion through its states. Every transition is persisted (and audited) in a
//! transaction that first checks nobody else moved the promotion, before the next step starts.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::engine::Engine;
use super::record::{Promotion, PromotionState, Transition, Verification, keys};
use super::render::{Rendered, render};
use super::revision::Revision;
use super::store::{txn_save_promotion, txn_stage};
use super::{PromotionError, lock};
use crate::gates::{GateContext, GateResult, GateStatus};
use crate::gitstore::{CommitRequest, PushOutcome, WriteOutcome};
use crate::pipeline::{Config, Stage, SyncMode};
use crate::policy::{self, Facts, WindowOverride};
use crate::state::{Txn, txn_get_json, txn_put_json};

/// How often a conflicting ref update or rejected push is retried.
const WRITE_ATTEMPTS: u32 = 6;

impl Engine {
    /// Drives `promotion` until it ends, blocks, or (without `wait`) starts verifying.
    pub(crate) fn drive(
        &self,
        config: &Config,
        mut promotion: Promotion,
        wait: bool,
    ) -> Result<Promotion, PromotionError> {
        let revision = self.store()?.revision(&promotion.revision)?;
        let stage = self.stage(config, &promotion.stage)?;
        let mut rendered: Option<Rendered> = None;
        loop {
            if matches!(
                promotion.state,
                PromotionState::Writing | PromotionState::Syncing | PromotionState::Verifying
            ) {
                self.claim(stage, &promotion, config)?;
            }
            let step = match promotion.state {
                PromotionState::Requested | PromotionState::Checking | PromotionState::Blocked => {
                    self.check(config, stage, &revision, promotion.clone(), &mut rendered)
                }
                PromotionState::Writing => {
                    self.write(config, stage, &revision, promotion.clone(), &mut rendered)
                }
                PromotionState::Syncing => {
                    self.sync(stage, promotion.clone(), &mut rendered, &revision)
                }
                PromotionState::Verifying if wait => {
                    self.verify(config, stage, &revision, promotion.clone(), &mut rendered)
                }
                _ => return Ok(promotion),
            };
            promotion = match step {
                Ok(next) => next,
                Err(err) if err.ends_promotion() => {
                    return Err(self.abandon(&stage.name, &promotion.id, err));
                }
                Err(err) => return Err(err),
            };
        }
    }

    /// Records that `promotion` failed with `err` (a render or git error, say), releasing the
    /// stage's lock, and returns `err`.
    fn abandon(&self, stage: &str, promotion: &str, err: PromotionError) -> PromotionError {
        let reason = super::reconcile::error_chain(&err);
        let now = self.now();
        let actor = self.user.clone();
        let recorded = self.store().and_then(|store| {
            store.transaction(|txn| {
                let Some(mut p) = txn_get_json::<Promotion>(txn, &keys::promotion(promotion))?
                else {
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
                txn_save_promotion(txn, &p, &actor, now, serde_json::json!({"error": reason}))?;
                lock::release(txn, stage, promotion)
            })
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
        mut change: impl FnMut(&mut Promotion, &mut dyn Txn) -> Result<(), PromotionError>,
    ) -> Result<Promotion, PromotionError> {
        let now = self.now();
        let actor = self.user.clone();
        let updated = self.store()?.transaction(|txn| {
            let mut current: Promotion = txn_get_json(txn, &keys::promotion(&promotion.id))?
                .ok_or_else(|| PromotionError::UnknownPromotion { id: promotion.id.clone() })?;
            if current.state != promotion.state || current.transitions.len() != promotion.transitions.len() {
                return Err(PromotionError::Concurrent { promotion: promotion.id.clone() });
            }
            current.state = state;
            current.transitions.push(Transition { state, at: now, note: note.clone() });
            change(&mut current, txn)?;
            let detail = serde_json::json!({"note": note, "blockers": current.blockers, "commit": current.commit});
            txn_save_promotion(txn, &current, &actor, now, detail)?;
            Ok(current)
        })?;
        self.step(state.as_str());
        Ok(updated)
    }

    fn rendered<'r>(
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
        let promotion = if promotion.state == PromotionState::Checking {
            promotion
        } else {
            self.advance(&promotion, PromotionState::Checking, None, |_, _| Ok(()))?
        };
        let digest = self.rendered(stage, revision, cache)?.digest.clone();
        let evaluation = self.evaluate(config, stage, revision, &promotion, &digest)?;
        if !evaluation.allowed() {
            let blockers: Vec<String> = evaluation
                .blockers
                .iter()
                .map(ToString::to_string)
                .collect();
            let notes = evaluation.notes.clone();
            let blocked = self.advance(
                &promotion,
                PromotionState::Blocked,
                Some(blockers.join("; ")),
                |p, _| {
                    p.blockers = blockers.clone();
                    p.notes = notes.clone();
                    p.digest = Some(digest.clone());
                    Ok(())
                },
            )?;
            return Err(PromotionError::Blocked {
                stage: stage.name.clone(),
                revision: revision.id.clone(),
                promotion: blocked.id,
                blockers,
            });
        }
        let hold = lock_hold(config, stage);
        let now = self.now();
        let notes = evaluation.notes.clone();
        let approved_by = self.approvers(stage, revision, &digest)?;
        let writing = self.advance(&promotion, PromotionState::Writing, None, |p, txn| {
            lock::acquire(txn, &stage.name, &p.id, &self.holder, now, hold)?;
            p.approved_by = approved_by.clone();
            p.blockers.clear();
            p.notes = notes.clone();
            p.digest = Some(digest.clone());
            Ok(())
        });
        match writing {
            Err(busy @ PromotionError::Busy { .. }) => {
                let note = busy.to_string();
                self.advance(&promotion, PromotionState::Aborted, Some(note), |_, _| {
                    Ok(())
                })?;
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
        drop(store);
        let window_override = promotion.window_override.as_ref().map(|o| WindowOverride {
            user: o.by.clone(),
            reason: o.reason.clone(),
        });
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
            window_override: window_override.as_ref(),
            now: self.now(),
        };
        Ok(policy::evaluate(&facts))
    }

    /// Writing: one commit on the stage's output branch, pushed when a remote is configured.
    fn write(
        &self,
        config: &Config,
        stage: &Stage,
        revision: &Revision,
        promotion: Promotion,
        cache: &mut Option<Rendered>,
    ) -> Result<Promotion, PromotionError> {
        let rendered = self.rendered(stage, revision, cache)?.clone();
        if promotion.digest.as_deref() != Some(rendered.digest.as_str()) {
            let note = "the rendered content changed since it was checked".to_string();
            return self.advance(&promotion, PromotionState::Checking, Some(note), |_, _| {
                Ok(())
            });
        }
        let output = &config.pipeline.output;
        let branch = output.branch_for(&stage.name);
        let prefix = output.path_for(&stage.name);
        let commit = match &output.remote {
            None => self.commit_once(&branch, &prefix, stage, revision, &promotion, &rendered)?,
            Some(remote) => self.commit_and_push(
                remote, &branch, &prefix, stage, revision, &promotion, &rendered,
            )?,
        };
        let now = self.now();
        self.advance(&promotion, PromotionState::Syncing, None, |p, txn| {
            p.commit = Some(commit.clone());
            let mut record = txn_stage(txn, &stage.name)?;
            record.current = Some(Verification {
                revision: revision.id.clone(),
                promotion: p.id.clone(),
                commit: commit.clone(),
                at: now,
            });
            record.verified = false;
            txn_put_json(txn, &keys::stage(&stage.name), &record)?;
            Ok(())
        })
    }

    fn commit_output(
        &self,
        branch: &str,
        prefix: &str,
        stage: &Stage,
        revision: &Revision,
        promotion: &Promotion,
        rendered: &Rendered,
    ) -> Result<String, PromotionError> {
        let verb = if promotion.rollback {
            "Roll back"
        } else {
            "Promote"
        };
        let message = format!(
            "{verb} {} to {}\n\nimages: {}\nconfig commit: {}\nsource commit: {}\nrequested by: {}",
            revision.id,
            stage.name,
            revision.images_summary(),
            revision.config_commit,
            rendered.source_commit,
            promotion.requested_by
        );
        let trailers = [
            ("Ferry-Stage", stage.name.as_str()),
            ("Ferry-Revision", revision.id.as_str()),
            ("Ferry-Promotion", promotion.id.as_str()),
        ];
        for _ in 0..WRITE_ATTEMPTS {
            let request = CommitRequest {
                branch,
                files: &rendered.files,
                path_prefix: prefix,
                message: &message,
                trailers: &trailers,
                author: None,
                expected_tip: None,
            };
            match self.git.write_commit(&request)? {
                WriteOutcome::Committed { commit, .. } => return Ok(commit),
                WriteOutcome::Unchanged { tip } => return Ok(tip),
                WriteOutcome::Conflict { .. } => continue,
            }
        }
        Err(self.failure(
            stage,
            revision,
            promotion,
            format!("branch {branch} kept moving while ferry wrote it"),
        ))
    }

    /// The commit of this promotion on `branch`: found (written before a crash) or written now.
    fn commit_once(
        &self,
        branch: &str,
        prefix: &str,
        stage: &Stage,
        revision: &Revision,
        promotion: &Promotion,
        rendered: &Rendered,
    ) -> Result<String, PromotionError> {
        let commit =
            match self
                .git
                .find_commit_with_trailer(branch, "Ferry-Promotion", &promotion.id, 50)?
            {
                Some(commit) => commit,
                None => self.commit_output(branch, prefix, stage, revision, promotion, rendered)?,
            };
        self.step("committed");
        Ok(commit)
    }

    /// Writes the commit on top of the remote's tip and pushes it with a lease; when someone
    /// else pushed first, fetches, rebuilds on their commit and tries again. Never forces.
    #[allow(
        clippy::too_many_arguments,
        reason = "one promotion's write, spelled out"
    )]
    fn commit_and_push(
        &self,
        remote: &str,
        branch: &str,
        prefix: &str,
        stage: &Stage,
        revision: &Revision,
        promotion: &Promotion,
        rendered: &Rendered,
    ) -> Result<String, PromotionError> {
        let mut delay = Duration::from_millis(100);
        let mut last = String::new();
        let unreachable = |err: crate::gitstore::GitStoreError| PromotionError::Push {
            branch: branch.to_string(),
            remote: remote.to_string(),
            reason: super::reconcile::error_chain(&err),
        };
        for _ in 0..WRITE_ATTEMPTS {
            let remote_tip = self.git.fetch_branch(remote, branch).map_err(unreachable)?;
            self.follow_remote(branch, remote_tip.as_deref(), &promotion.id)?;
            let commit = self.commit_once(branch, prefix, stage, revision, promotion, rendered)?;
            if remote_tip.as_deref() == Some(commit.as_str()) {
                return Ok(commit);
            }
            match self
                .git
                .push(remote, branch, remote_tip.as_deref())
                .map_err(unreachable)?
            {
                PushOutcome::Pushed => return Ok(commit),
                PushOutcome::Rejected { reason } => last = reason,
            }
            std::thread::sleep(delay);
            delay *= 2;
        }
        Err(PromotionError::Push {
            branch: branch.to_string(),
            remote: remote.to_string(),
            reason: last,
        })
    }

    /// Points the local output branch at the remote's tip, unless it holds this promotion's
    /// commit built on exactly that tip (written before a crash, not pushed yet).
    fn follow_remote(
        &self,
        branch: &str,
        remote_tip: Option<&str>,
        promotion: &str,
    ) -> Result<(), PromotionError> {
        let Some(remote_tip) = remote_tip else {
            return Ok(());
        };
        let local = self.git.branch_tip(branch)?;
        if local.as_deref() == Some(remote_tip) {
            return Ok(());
        }
        if let Some(local) = &local {
            let info = self.git.commit_info(local)?;
            if info.trailer("Ferry-Promotion") == Some(promotion)
                && info.parents.iter().any(|p| p == remote_tip)
            {
                return Ok(());
            }
        }
        self.git
            .reset_branch(branch, remote_tip, Some(local.as_deref()))?;
        Ok(())
    }

    fn failure(
        &self,
        stage: &Stage,
        revision: &Revision,
        promotion: &Promotion,
        reason: String,
    ) -> PromotionError {
        PromotionError::Failed {
            stage: stage.name.clone(),
            revision: revision.id.clone(),
            promotion: promotion.id.clone(),
            reason,
        }
    }

    /// Syncing: GitOps picks the commit up; `sync: apply` applies it server-side.
    fn sync(
        &self,
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
                .map(|c| crate::cluster::resolve_paths(c, &self.repo));
            let result = self.runtime()?.block_on(crate::cluster::apply(
                &resources,
                cluster.as_ref(),
                kubeconfig.as_deref(),
                false,
            ));
            if let Err(err) = result {
                let reason = format!("server-side apply failed: {err}");
                let failed = self.finish(
                    stage,
                    revision,
                    &promotion,
                    PromotionState::Failed,
                    Vec::new(),
                    Some(reason.clone()),
                )?;
                return Err(self.failure(stage, revision, &failed, reason));
            }
        }
        self.advance(&promotion, PromotionState::Verifying, None, |_, _| Ok(()))
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
                stage,
                revision,
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
        let done = self.finish(
            stage,
            revision,
            &promotion,
            PromotionState::Failed,
            results,
            Some(reason.clone()),
        )?;
        Err(self.failure(stage, revision, &done, reason))
    }

    /// Ends a promotion: records gate results, updates the stage, releases the lock.
    fn finish(
        &self,
        stage: &Stage,
        revision: &Revision,
        promotion: &Promotion,
        state: PromotionState,
        results: Vec<GateResult>,
        error: Option<String>,
    ) -> Result<Promotion, PromotionError> {
        let now = self.now();
        let actor = self.user.clone();
        self.advance(promotion, state, error.clone(), |p, txn| {
            p.gates = results.clone();
            p.error = error.clone();
            for result in &results {
                let event = super::audit::Event {
                    actor: actor.clone(),
                    action: format!("gate.{}", result.status.as_str()),
                    stage: Some(stage.name.clone()),
                    revision: Some(revision.id.clone()),
                    promotion: Some(p.id.clone()),
                    detail: serde_json::json!({"gate": result.name, "reason": result.reason, "commit": p.commit}),
                };
                super::audit::append(txn, event, now)?;
            }
            let mut record = txn_stage(txn, &stage.name)?;
            record.verified_revisions.retain(|v| v.revision != revision.id);
            let commit = p.commit.clone().unwrap_or_default();
            let written = Verification { revision: revision.id.clone(), promotion: p.id.clone(), commit, at: now };
            if state == PromotionState::Succeeded {
                record.verified_revisions.push(written.clone());
            }
            if p.commit.is_some() {
                record.current = Some(written);
                record.verified = state == PromotionState::Succeeded;
            }
            txn_put_json(txn, &keys::stage(&stage.name), &record)?;
            lock::release(txn, &stage.name, &p.id)?;
            Ok(())
        })
    }
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
