//! The engine: what every operation shares (repository, state store, caller, clock, event
//! hook), creating revisions, and requesting, resuming and aborting promotions.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use super::actor::Actor;
use super::event::{EngineEvent, EventHook};
use super::lock::Holder;
use super::outcome::Outcome;
use super::record::{Promotion, PromotionState, Transition, Trigger, keys};
use super::revision::{Revision, parse_images};
use super::store::{Store, txn_save_promotion, txn_stage};
use super::{PromotionError, lock};
use crate::gates::ProgressSink;
use crate::gitstore::GitStore;
use crate::pipeline::{Config, Stage};
use crate::policy::WindowOverride;
use crate::state::{StateStore, Txn, next_seq, txn_get_json, txn_put_json};

/// Starts the progress display of one promotion's gates; the sink is dropped when they end.
pub trait GateReporter: Send + Sync {
    fn start(&self, stage: &str, gates: &[crate::pipeline::GateSpec]) -> Box<dyn ProgressSink>;
}

/// What tells the engine the time (tests and the demo use their own).
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// Called at each step boundary with the step's name (tests use it to stop the process there).
pub type StepHook = Arc<dyn Fn(&str) + Send + Sync>;

/// What the engine needs from its caller besides the repository and the store.
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
    /// Called after every persisted change (see [`EngineEvent`]).
    pub events: Option<EventHook>,
    /// Where the remote bases of kustomizations are cached; `None`: they are refused.
    pub remote_cache: Option<PathBuf>,
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
    /// Abort the promotion that holds the stage instead of refusing with `Busy`.
    pub abort_active: bool,
}

impl PromoteRequest {
    /// A manual promotion of `revision` into `stage`.
    pub fn new(revision: &str, stage: &str) -> PromoteRequest {
        PromoteRequest {
            revision: revision.to_string(),
            stage: stage.to_string(),
            trigger: Trigger::Manual,
            wait: false,
            window_override: None,
            abort_active: false,
        }
    }
}

/// A request to roll a stage back: a forward promotion of a revision it verified before.
#[derive(Debug, Clone)]
pub struct RollbackRequest {
    pub stage: String,
    /// The revision to go back to; `None`: the one verified before the current one.
    pub to: Option<String>,
    /// Run the gates and wait for the verdict.
    pub wait: bool,
    /// Abort the promotion that holds the stage instead of refusing with `Busy`.
    pub abort_active: bool,
}

/// Where the engine's state lives.
#[derive(Clone)]
enum StateSource {
    /// A state directory, opened on first use and kept open from then on by the engine and
    /// its clones (other processes share the directory all the while).
    Dir {
        dir: PathBuf,
        opened: Arc<Mutex<Option<Store>>>,
    },
    /// A store the host keeps open.
    Shared(Store),
}

/// The promotion engine of one config repository, acting for one [`Actor`].
///
/// Cheap to clone; [`Engine::acting_as`] gives the same engine acting for another caller.
#[derive(Clone)]
pub struct Engine {
    pub(crate) git: GitStore,
    pub(crate) repo: PathBuf,
    state: StateSource,
    pub(crate) actor: Actor,
    pub(crate) holder: Holder,
    pub(crate) options: EngineOptions,
    /// The pipeline and policies last loaded, and the commit they were read at (a commit's
    /// tree never changes, so they stay right for it); shared by the engine's clones.
    config: Arc<Mutex<Option<LoadedConfig>>>,
}

/// A commit and the pipeline and policies read at it.
type LoadedConfig = (String, Arc<Config>);

impl Engine {
    /// An engine for the repository at `repo` over `store`, which the caller keeps open (a
    /// long-running server). Brings the store's records to the current layout, or fails
    /// with [`PromotionError::LayoutTooNew`].
    pub fn new(
        repo: &Path,
        store: Arc<dyn StateStore>,
        actor: Actor,
        options: EngineOptions,
    ) -> Result<Engine, PromotionError> {
        super::layout::ensure(store.as_ref())?;
        Engine::build(
            repo,
            StateSource::Shared(Store::shared(store)),
            actor,
            options,
        )
    }

    /// An engine for the repository at `repo` with its state in `state_dir` (the command
    /// line). The directory is opened when an operation first needs it, and kept open by this
    /// engine and its clones; other processes use it at the same time.
    pub fn open(
        repo: &Path,
        state_dir: &Path,
        actor: Actor,
        options: EngineOptions,
    ) -> Result<Engine, PromotionError> {
        Engine::build(
            repo,
            StateSource::Dir {
                dir: state_dir.to_path_buf(),
                opened: Arc::default(),
            },
            actor,
            options,
        )
    }

    fn build(
        repo: &Path,
        state: StateSource,
        actor: Actor,
        options: EngineOptions,
    ) -> Result<Engine, PromotionError> {
        Ok(Engine {
            git: GitStore::open(repo)?.with_remote_cache(options.remote_cache.clone()),
            repo: repo.to_path_buf(),
            state,
            holder: Holder::current(&actor.name),
            actor,
            options,
            config: Arc::default(),
        })
    }

    /// The same engine acting for `actor`.
    pub fn acting_as(&self, actor: Actor) -> Engine {
        let mut engine = self.clone();
        engine.holder = Holder::current(&actor.name);
        engine.actor = actor;
        engine
    }

    /// The same engine with other options (a host wrapping the hooks it was built with).
    pub fn with_options(&self, options: EngineOptions) -> Engine {
        let mut engine = self.clone();
        engine.options = options;
        engine
    }

    /// The options the engine was built with.
    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    /// Who acts.
    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// The current time.
    pub fn now(&self) -> DateTime<Utc> {
        self.options
            .clock
            .as_ref()
            .map_or_else(Utc::now, |clock| clock())
    }

    /// The clock the engine was given, if not the system clock.
    pub fn clock(&self) -> Option<Clock> {
        self.options.clock.clone()
    }

    /// The name of who acts.
    pub fn user(&self) -> &str {
        &self.actor.name
    }

    /// The git store of the repository.
    pub fn git(&self) -> &GitStore {
        &self.git
    }

    /// The state store: opened on the first call for a state directory, then the same one.
    pub fn store(&self) -> Result<Store, PromotionError> {
        match &self.state {
            StateSource::Dir { dir, opened } => {
                let mut opened = opened.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(store) = opened.as_ref() {
                    return Ok(store.clone());
                }
                let store = Store::open(dir)?;
                *opened = Some(store.clone());
                Ok(store)
            }
            StateSource::Shared(store) => Ok(store.clone()),
        }
    }

    /// Runs `f` in one transaction, then reports the changes it noted to the event hook.
    pub(crate) fn commit<T>(
        &self,
        mut f: impl FnMut(&mut dyn Txn, &mut Vec<EngineEvent>) -> Result<T, PromotionError>,
    ) -> Result<T, PromotionError> {
        let mut events = Vec::new();
        let value = self.store()?.transaction(|txn| {
            events.clear();
            f(txn, &mut events)
        })?;
        self.emit(&events);
        Ok(value)
    }

    pub(crate) fn emit(&self, events: &[EngineEvent]) {
        if let Some(hook) = &self.options.events {
            events.iter().for_each(|e| hook(e));
        }
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
    pub fn config_at_branch(&self, branch: &str) -> Result<Arc<Config>, PromotionError> {
        let tip = self
            .git
            .branch_tip(branch)?
            .ok_or_else(|| PromotionError::BadInput(format!("branch `{branch}` does not exist")))?;
        self.config_at(&tip)
    }

    /// The pipeline and policies at `commit`: loaded again only when `commit` is not the one
    /// they were last loaded at.
    pub fn config_at(&self, commit: &str) -> Result<Arc<Config>, PromotionError> {
        let mut cached = self.config.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, config)) = cached.as_ref()
            && at == commit
        {
            return Ok(Arc::clone(config));
        }
        let config =
            Arc::new(Config::load(&self.git.tree_source(commit)?).map_err(PromotionError::Config)?);
        *cached = Some((commit.to_string(), Arc::clone(&config)));
        Ok(config)
    }

    /// The pipeline and policies a revision is promoted under: its source branch tip.
    pub fn config_for(&self, revision: &Revision) -> Result<Arc<Config>, PromotionError> {
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
            created_by: self.actor.name.clone(),
            created_at: self.now(),
        };
        let (revision, created) =
            self.store()?
                .create_revision(&revision, &self.actor, &config.notifications)?;
        if created {
            self.emit(&[EngineEvent::ReleaseCreated {
                id: revision.id.clone(),
            }]);
        }
        Ok((revision, created))
    }

    /// Requests a promotion and drives it as far as it can go now: to its end with
    /// `request.wait`, else until it verifies (or blocks, or fails).
    pub fn promote(&self, request: &PromoteRequest) -> Result<Outcome, PromotionError> {
        let revision = self.store()?.revision(&request.revision)?;
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
            request.abort_active,
        )?;
        if promotion.state.is_terminal() {
            // Another process verified this revision in the stage meanwhile.
            return Ok(Outcome::Elsewhere(promotion));
        }
        self.drive(&config, promotion, request.wait)
    }

    /// Drives the unfinished promotion `id` on (after a crash, or one started without
    /// waiting), to its end with `wait`. One that has ended meanwhile is reported as
    /// [`Outcome::Elsewhere`].
    pub fn resume_promotion(&self, id: &str, wait: bool) -> Result<Outcome, PromotionError> {
        let store = self.store()?;
        let promotion = store.promotion(id)?;
        if promotion.state.is_terminal() {
            // Someone else drove it to its end since the caller saw it unfinished.
            return Ok(Outcome::Elsewhere(promotion));
        }
        let revision = store.revision(&promotion.revision)?;
        drop(store);
        let config = self.config_for(&revision)?;
        self.drive(&config, promotion, wait)
    }

    /// Aborts the unfinished promotion `id`: it ends without being verified and frees its
    /// stage. Refused while a live process is writing or applying it (wait until it
    /// verifies), and for a promotion that has ended.
    pub fn abort(&self, id: &str, reason: Option<&str>) -> Result<Promotion, PromotionError> {
        let now = self.now();
        let note = match reason {
            Some(reason) => format!("aborted by {}: {reason}", self.actor.name),
            None => format!("aborted by {}", self.actor.name),
        };
        self.commit(|txn, events| {
            let promotion: Promotion = txn_get_json(txn, &keys::promotion(id))?
                .ok_or_else(|| PromotionError::UnknownPromotion { id: id.to_string() })?;
            self.abort_in(txn, events, promotion, &note, now)
        })
    }

    /// Marks `promotion` aborted with `note` and releases its stage, unless it ended or a live
    /// process is writing or applying it.
    fn abort_in(
        &self,
        txn: &mut dyn Txn,
        events: &mut Vec<EngineEvent>,
        mut promotion: Promotion,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<Promotion, PromotionError> {
        if promotion.state.is_terminal() {
            return Err(PromotionError::Refused(format!(
                "promotion {} has already ended: it {}",
                promotion.id, promotion.state
            )));
        }
        let mid_write = matches!(
            promotion.state,
            PromotionState::Writing | PromotionState::Syncing
        );
        if mid_write
            && let Some((lock, active)) = lock::holding(txn, &promotion.stage)?
            && active.id == promotion.id
            && !lock::is_stale(&lock, now, &self.holder)
        {
            return Err(PromotionError::Refused(format!(
                "promotion {} is {} by {} (pid {} on {}): abort it once it is verifying",
                promotion.id, promotion.state, lock.user, lock.pid, lock.host
            )));
        }
        promotion.state = PromotionState::Aborted;
        promotion.transitions.push(Transition {
            state: PromotionState::Aborted,
            at: now,
            note: Some(note.to_string()),
        });
        let detail = serde_json::json!({"reason": note});
        txn_save_promotion(txn, events, &promotion, &self.actor, now, detail)?;
        lock::release(txn, &promotion.stage, &promotion.id)?;
        let mut record = txn_stage(txn, &promotion.stage)?;
        if record
            .current
            .as_ref()
            .is_some_and(|c| c.promotion == promotion.id)
        {
            record.verified = false;
            txn_put_json(txn, &keys::stage(&promotion.stage), &record)?;
        }
        Ok(promotion)
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
        if !crate::policy::may_override(policy, &config.groups, &self.actor.name) {
            let allowed: Vec<String> = policy.override_by.iter().map(ToString::to_string).collect();
            return Err(PromotionError::Refused(format!(
                "{} may not override the windows of {}: only {} (policy {}, overrideBy)",
                self.actor.name,
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

    /// Finds the unfinished promotion of `revision` to `stage`, or records a new one
    /// (superseding older blocked requests for the stage). Refuses with `Busy` while another
    /// promotion holds the stage, unless `abort_active` aborts it.
    pub(crate) fn request(
        &self,
        stage: &Stage,
        revision: &Revision,
        trigger: Trigger,
        window_override: Option<WindowOverride>,
        abort_active: bool,
    ) -> Result<Promotion, PromotionError> {
        let now = self.now();
        let rollback = trigger == Trigger::Rollback;
        let unfinished = self
            .store()?
            .promotions(Some(&stage.name), 20)?
            .into_iter()
            .find(|p| {
                !p.state.is_terminal() && p.revision == revision.id && p.rollback == rollback
            });
        if let Some(existing) = unfinished {
            if window_override.is_some() && existing.window_override != window_override {
                return self.set_override(existing, window_override);
            }
            return Ok(existing);
        }
        let actor = self.actor.clone();
        let promotion = self.commit(|txn, events| {
            // Another process may have asked for the same since the look above.
            if let Some(found) = same_request(txn, &stage.name, &revision.id, trigger)? {
                return Ok(found);
            }
            let seq = next_seq(txn, keys::PROMOTION_SEQ)?;
            let id = format!("p-{seq:06}");
            if let Some((lock, active)) = lock::holding(txn, &stage.name)? {
                if !abort_active {
                    return Err(lock::busy(&stage.name, lock, active, now, &self.holder));
                }
                let note = format!("aborted by {}: superseded by {id}", actor.name);
                self.abort_in(txn, events, active, &note, now)?;
            }
            supersede_blocked(txn, events, &stage.name, &id, &actor, now)?;
            let mut promotion = Promotion::new(
                id.clone(),
                &stage.name,
                &revision.id,
                trigger,
                &actor.name,
                now,
            );
            promotion.requested_auth = Some(actor.auth.clone());
            promotion.window_override = window_override.clone();
            txn_put_json(txn, &keys::promotion_order(seq), &id)?;
            txn_put_json(txn, &keys::stage_promotion(&stage.name, seq), &id)?;
            let mut record = txn_stage(txn, &stage.name)?;
            record.last_promotion = Some(id.clone());
            txn_put_json(txn, &keys::stage(&stage.name), &record)?;
            let detail = serde_json::json!({"trigger": trigger, "override": window_override});
            txn_save_promotion(txn, events, &promotion, &actor, now, detail)?;
            Ok(promotion)
        })?;
        self.step("requested");
        Ok(promotion)
    }

    fn set_override(
        &self,
        promotion: Promotion,
        window_override: Option<WindowOverride>,
    ) -> Result<Promotion, PromotionError> {
        let now = self.now();
        self.commit(|txn, events| {
            let mut current: Promotion = txn_get_json(txn, &keys::promotion(&promotion.id))?
                .ok_or_else(|| PromotionError::UnknownPromotion {
                    id: promotion.id.clone(),
                })?;
            current.window_override = window_override.clone();
            let detail = serde_json::json!({"override": window_override});
            txn_save_promotion(txn, events, &current, &self.actor, now, detail)?;
            Ok(current)
        })
    }
}

/// What answers a request of `revision` for `stage` without a new promotion: an unfinished
/// promotion of it (of the same kind, rollback or not), or for an auto or scheduled request,
/// the promotion that already verified it in the stage.
fn same_request(
    txn: &mut dyn Txn,
    stage: &str,
    revision: &str,
    trigger: Trigger,
) -> Result<Option<Promotion>, PromotionError> {
    let rollback = trigger == Trigger::Rollback;
    let ids: Vec<(Vec<u8>, String)> =
        crate::state::txn_scan_json(txn, &keys::stage_promotion_prefix(stage))?;
    for (_, id) in ids.iter().rev().take(20) {
        if let Some(p) = txn_get_json::<Promotion>(txn, &keys::promotion(id))?
            && !p.state.is_terminal()
            && p.revision == revision
            && p.rollback == rollback
        {
            return Ok(Some(p));
        }
    }
    if !matches!(trigger, Trigger::Auto | Trigger::Schedule) {
        return Ok(None);
    }
    let record = txn_stage(txn, stage)?;
    match record.current {
        Some(current) if record.verified && current.revision == revision => {
            Ok(txn_get_json(txn, &keys::promotion(&current.promotion))?)
        }
        _ => Ok(None),
    }
}

/// Aborts blocked promotions of `stage`: a newer request supersedes them.
fn supersede_blocked(
    txn: &mut dyn Txn,
    events: &mut Vec<EngineEvent>,
    stage: &str,
    by: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(), PromotionError> {
    let ids: Vec<(Vec<u8>, String)> =
        crate::state::txn_scan_json(txn, &keys::stage_promotion_prefix(stage))?;
    for (_, id) in ids.iter().rev().take(20) {
        let Some(mut p) = txn_get_json::<Promotion>(txn, &keys::promotion(id))? else {
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
            txn_save_promotion(
                txn,
                events,
                &p,
                actor,
                now,
                serde_json::json!({"reason": note}),
            )?;
        }
    }
    Ok(())
}
