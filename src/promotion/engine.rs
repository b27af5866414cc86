//! The engine: what every operation shares (repository, state directory, identity, clock),
//! creating revisions, and requesting promotions.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::lock::Holder;
use super::record::{Promotion, PromotionState, Transition, Trigger, keys};
use super::revision::{Revision, parse_images};
use super::store::{Store, txn_save_promotion, txn_stage};
use super::{PromotionError, lock};
use crate::gates::ProgressSink;
use crate::gitstore::GitStore;
use crate::pipeline::{Config, Stage};
use crate::policy::WindowOverride;
use crate::state::{next_seq, txn_put_json};

/// Starts the progress display of one promotion's gates; the sink is dropped when they end.
pub trait GateReporter: Send + Sync {
    fn start(&self, stage: &str, gates: &[crate::pipeline::GateSpec]) -> Box<dyn ProgressSink>;
}

/// What tells the engine the time (tests and the demo use their own).
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// Called at each step boundary with the step's name (tests use it to stop the process there).
pub type StepHook = Arc<dyn Fn(&str) + Send + Sync>;

/// What the engine needs from its caller besides the repository.
#[derive(Clone, Default)]
pub struct EngineOptions {
    /// Environment for gates (header values read `fromEnv`).
    pub gate_env: BTreeMap<String, String>,
    /// The default kubeconfig for gates and `sync: apply`.
    pub kubeconfig: Option<PathBuf>,
    /// Where gate progress goes.
    pub progress: Option<Arc<dyn GateReporter>>,
    /// Called after each persisted step.
    pub step_hook: Option<StepHook>,
    /// The clock; `None` means the system clock.
    pub clock: Option<Clock>,
}

/// A request to move a revision into a stage.
#[derive(Debug, Clone)]
pub struct PromoteRequest {
    pub revision: String,
    pub stage: String,
    pub trigger: Trigger,
    /// Run the gates and wait for the verdict.
    pub wait: bool,
    pub window_override: Option<WindowOverride>,
}

/// The promotion engine of one config repository.
pub struct Engine {
    pub(crate) git: GitStore,
    pub(crate) repo: PathBuf,
    pub(crate) state_dir: PathBuf,
    pub(crate) user: String,
    pub(crate) holder: Holder,
    pub(crate) options: EngineOptions,
}

impl Engine {
    /// An engine for the repository at `repo` with state in `state_dir`, acting as `user`.
    pub fn open(
        repo: &Path,
        state_dir: &Path,
        user: &str,
        options: EngineOptions,
    ) -> Result<Engine, PromotionError> {
        Ok(Engine {
            git: GitStore::open(repo)?,
            repo: repo.to_path_buf(),
            state_dir: state_dir.to_path_buf(),
            user: user.to_string(),
            holder: Holder::current(user),
            options,
        })
    }

    /// The current time.
    pub fn now(&self) -> DateTime<Utc> {
        self.options
            .clock
            .as_ref()
            .map_or_else(Utc::now, |clock| clock())
    }

    /// Who acts.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The git store of the repository.
    pub fn git(&self) -> &GitStore {
        &self.git
    }

    /// Opens the state store for one operation.
    pub fn store(&self) -> Result<Store, PromotionError> {
        Ok(Store::open(&self.state_dir)?)
    }

    pub(crate) fn step(&self, name: &str) {
        if let Some(hook) = &self.options.step_hook {
            hook(name);
        }
    }

    /// The branch checked out in the repository: the default source branch.
    pub fn source_branch(&self) -> Result<String, PromotionError> {
        self.git.current_branch()?.ok_or_else(|| {
            PromotionError::BadInput("HEAD is detached: check out the branch that holds environments/ (a revision reads stage-owned files from that branch's tip)".into())
        })
    }

    /// The pipeline and policies at the tip of `branch`.
    pub fn config_at_branch(&self, branch: &str) -> Result<Config, PromotionError> {
        let tip = self
            .git
            .branch_tip(branch)?
            .ok_or_else(|| PromotionError::BadInput(format!("branch `{branch}` does not exist")))?;
        self.config_at(&tip)
    }

    /// The pipeline and policies at `commit`.
    pub fn config_at(&self, commit: &str) -> Result<Config, PromotionError> {
        Config::load(&self.git.tree_source(commit)?).map_err(PromotionError::Config)
    }

    /// The pipeline and policies a revision is promoted under: its source branch tip.
    pub fn config_for(&self, revision: &Revision) -> Result<Config, PromotionError> {
        self.config_at_branch(&revision.source_branch)
    }

    /// The stage `name` of `config`.
    pub fn stage<'c>(&self, config: &'c Config, name: &str) -> Result<&'c Stage, PromotionError> {
        config
            .pipeline
            .stage(name)
            .ok_or_else(|| PromotionError::UnknownStage {
                name: name.to_string(),
                known: config
                    .pipeline
                    .stages()
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// Creates (or finds, when the content exists) a revision pinning `images` at the config
    /// commit `commit` (default: the source branch tip).
    pub fn create_release(
        &self,
        images: &[String],
        commit: Option<&str>,
        message: Option<&str>,
    ) -> Result<(Revision, bool), PromotionError> {
        let source_branch = self.source_branch()?;
        let config_commit = match commit {
            Some(rev) => self.git.resolve(rev)?,
            None => self.git.branch_tip(&source_branch)?.ok_or_else(|| {
                PromotionError::BadInput(format!("branch `{source_branch}` has no commits yet"))
            })?,
        };
        let config = self.config_at_branch(&source_branch)?;
        let images = parse_images(images, &config.pipeline.images)?;
        let revision = Revision {
            id: Revision::compute_id(&images, &config_commit, &source_branch),
            images,
            config_commit,
            source_branch,
            message: message.map(str::to_string),
            created_by: self.user.clone(),
            created_at: self.now(),
        };
        self.store()?.create_revision(&revision)
    }

    /// Requests a promotion and drives it as far as it can go now.
    pub fn promote(&self, request: &PromoteRequest) -> Result<Promotion, PromotionError> {
        let store = self.store()?;
        let revision = store.revision(&request.revision)?;
        drop(store);
        let config = self.config_for(&revision)?;
        let stage = self.stage(&config, &request.stage)?;
        if let Some(o) = &request.window_override {
            self.check_override(&config, stage, o)?;
        }
        let promotion = self.request(
            stage,
            &revision,
            request.trigger,
            request.window_override.clone(),
        )?;
        self.drive(&config, promotion, request.wait)
    }

    fn check_override(
        &self,
        config: &Config,
        stage: &Stage,
        o: &WindowOverride,
    ) -> Result<(), PromotionError> {
        let Some(policy) = config.policy_of(stage) else {
            return Err(PromotionError::BadInput(format!(
                "stage {} has no policy, so there are no windows to override",
                stage.name
            )));
        };
        if o.reason.trim().is_empty() {
            return Err(PromotionError::BadInput(
                "--override-window needs --reason \"…\" (it is audited)".into(),
            ));
        }
        if !crate::policy::may_override(policy, &config.groups, &self.user) {
            let allowed: Vec<String> = policy.override_by.iter().map(ToString::to_string).collect();
            return Err(PromotionError::Refused(format!(
                "{} may not override the windows of {}: only {} (policy {}, overrideBy)",
                self.user,
                stage.name,
                if allowed.is_empty() {
                    "nobody".to_string()
                } else {
                    allowed.join(", ")
                },
                policy.path
            )));
        }
        Ok(())
    }

    /// Finds the active promotion of `revision` to `stage`, or records a new one (superseding
    /// older blocked requests for the stage).
    pub(crate) fn request(
        &self,
        stage: &Stage,
        revision: &Revision,
        trigger: Trigger,
        window_override: Option<WindowOverride>,
    ) -> Result<Promotion, PromotionError> {
        let store = self.store()?;
        let now = self.now();
        let rollback = trigger == Trigger::Rollback;
        for existing in store.promotions(Some(&stage.name), 20)? {
            if !existing.state.is_terminal()
                && existing.revision == revision.id
                && existing.rollback == rollback
            {
                if window_override.is_some() && existing.window_override != window_override {
                    return self.set_override(&store, existing, window_override);
                }
                return Ok(existing);
            }
        }
        let actor = self.user.clone();
        let promotion = store.transaction(|txn| {
            lock::ensure_free(txn, &stage.name, "", &self.holder, now)?;
            let seq = next_seq(txn, keys::PROMOTION_SEQ)?;
            let id = format!("p-{seq:06}");
            supersede_blocked(txn, &stage.name, &id, &actor, now)?;
            let mut promotion =
                Promotion::new(id.clone(), &stage.name, &revision.id, trigger, &actor, now);
            promotion.window_override = window_override.clone();
            txn_put_json(txn, &keys::promotion_order(seq), &id)?;
            txn_put_json(txn, &keys::stage_promotion(&stage.name, seq), &id)?;
            let mut record = txn_stage(txn, &stage.name)?;
            record.last_promotion = Some(id.clone());
            txn_put_json(txn, &keys::stage(&stage.name), &record)?;
            let detail = serde_json::json!({"trigger": trigger, "override": window_override});
            txn_save_promotion(txn, &promotion, &actor, now, detail)?;
            Ok(promotion)
        })?;
        self.step("requested");
        Ok(promotion)
    }

    fn set_override(
        &self,
        store: &Store,
        promotion: Promotion,
        window_override: Option<WindowOverride>,
    ) -> Result<Promotion, PromotionError> {
        let now = self.now();
        let actor = self.user.clone();
        store.transaction(|txn| {
            let mut current: Promotion =
                crate::state::txn_get_json(txn, &keys::promotion(&promotion.id))?.ok_or_else(
                    || PromotionError::UnknownPromotion {
                        id: promotion.id.clone(),
                    },
                )?;
            current.window_override = window_override.clone();
            let detail = serde_json::json!({"override": window_override});
            txn_save_promotion(txn, &current, &actor, now, detail)?;
            Ok(current)
        })
    }
}

/// Aborts blocked promotions of `stage`: a newer request supersedes them.
fn supersede_blocked(
    txn: &mut dyn crate::state::Txn,
    stage: &str,
    by: &str,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<(), PromotionError> {
    let ids: Vec<(Vec<u8>, String)> =
        crate::state::txn_scan_json(txn, &keys::stage_promotion_prefix(stage))?;
    for (_, id) in ids.iter().rev().take(20) {
        let Some(mut p) = crate::state::txn_get_json::<Promotion>(txn, &keys::promotion(id))?
        else {
            continue;
        };
        if p.state == PromotionState::Blocked {
            let note = format!("superseded by {by}");
            p.state = PromotionState::Aborted;
            p.transitions.push(Transition {
                state: PromotionState::Aborted,
                at: now,
                note: Some(note.clone()),
            });
            txn_save_promotion(txn, &p, actor, now, serde_json::json!({"reason": note}))?;
        }
    }
    Ok(())
}
