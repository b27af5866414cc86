//! Building the promotion engine for a command: identity, environment, clock, progress, and
//! the mapping of engine errors to exit codes.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use super::{CliError, Context, ErrorKind};
use crate::gates::ProgressSink;
use crate::pipeline::GateSpec;
use crate::promotion::Promotion;
use crate::promotion::{Actor, Engine, EngineOptions, GateReporter, PromotionError};

impl Context {
    /// The engine for the repository, acting as the current user.
    pub fn engine(&self) -> Result<Engine, CliError> {
        let repo = self.repo()?;
        let state = self.state_dir()?;
        let actor = Actor::local(&self.user());
        Engine::open(&repo, &state, actor, self.engine_options()).map_err(engine_error)
    }

    /// The engine for a command that writes the state: refused (exit 3) while a running
    /// `ferry serve` holds it, with the server's URL as the hint.
    pub fn writing_engine(&self) -> Result<Engine, CliError> {
        let engine = self.engine()?;
        self.refuse_if_served(&engine)?;
        Ok(engine)
    }

    /// Refuses a local write while a live `ferry serve` holds the state (read through the
    /// command's engine, so the command opens its state once).
    pub fn refuse_if_served(&self, engine: &Engine) -> Result<(), CliError> {
        let state = self.state_dir()?;
        if !state.exists() {
            return Ok(());
        }
        let store = engine.store().map_err(engine_error)?;
        let Some(record) = store.server_record().map_err(engine_error)? else {
            return Ok(());
        };
        if record.pid == std::process::id() || !record.is_live() {
            return Ok(());
        }
        Err(CliError::blocked(format!(
            "the state in {} is held by a running `ferry serve` at {} (pid {} on {})",
            state.display(),
            record.url,
            record.pid,
            record.host
        ))
        .with_hint(format!(
            "send the command to the service: ferry --server {} …",
            record.url
        )))
    }

    /// Engine options for the service: as for a command, without progress on stderr.
    pub fn service_engine_options(&self) -> EngineOptions {
        EngineOptions {
            progress: None,
            ..self.engine_options()
        }
    }

    /// What the engine gets from the process: environment, kubeconfig, progress, test hooks.
    pub fn engine_options(&self) -> EngineOptions {
        EngineOptions {
            gate_env: std::env::vars().collect::<BTreeMap<_, _>>(),
            kubeconfig: default_kubeconfig(),
            progress: Some(Arc::new(ProgressReporter)),
            step_hook: test_hooks::step_hook(),
            clock: test_hooks::clock(),
            events: None,
            remote_cache: super::build::remote_cache(),
        }
    }
}

/// What `ferry serve` calls at the start of each reconcile round: in debug builds, with
/// `FERRY_TEST_WEDGE_FILE` set, it waits while that file exists — a wedged loop, for the tests
/// of `/healthz`.
pub fn reconcile_round_hook() -> Option<crate::server::RoundHook> {
    test_hooks::round_hook()
}

/// Gate progress on stderr.
struct ProgressReporter;

impl GateReporter for ProgressReporter {
    fn start(&self, stage: &str, gates: &[GateSpec]) -> Box<dyn ProgressSink> {
        Box::new(super::progress::GateProgress::new(stage, gates))
    }
}

/// `KUBECONFIG` (its first entry), else `~/.kube/config` when it exists.
fn default_kubeconfig() -> Option<PathBuf> {
    if let Some(paths) = std::env::var_os("KUBECONFIG") {
        return std::env::split_paths(&paths).find(|p| !p.as_os_str().is_empty());
    }
    let home = std::env::var_os("HOME")?;
    let path = PathBuf::from(home).join(".kube").join("config");
    path.exists().then_some(path)
}

/// The exit code of an engine error: bad input 2, busy 3, failures 1.
pub fn engine_error(err: PromotionError) -> CliError {
    let kind = match &err {
        PromotionError::BadInput(_)
        | PromotionError::UnknownRevision { .. }
        | PromotionError::UnknownStage { .. }
        | PromotionError::UnknownPromotion { .. }
        | PromotionError::Refused(_)
        | PromotionError::Config(_)
        | PromotionError::Render { .. } => ErrorKind::BadInput,
        PromotionError::Busy { .. } | PromotionError::Concurrent { .. } => ErrorKind::Blocked,
        _ if is_unknown_rev(&err) => ErrorKind::BadInput,
        _ => ErrorKind::Failed,
    };
    let hints = match &err {
        PromotionError::UnknownRevision { .. } => {
            vec!["`ferry release list` shows the revisions".to_string()]
        }
        PromotionError::UnknownPromotion { .. } => {
            vec!["`ferry history` shows the promotions".to_string()]
        }
        PromotionError::Busy { active, driver, .. } => busy_hints(active, driver.is_some()),
        _ => Vec::new(),
    };
    hints
        .into_iter()
        .fold(CliError::from_error(kind, err), CliError::with_hint)
}

/// What finishes or supersedes the promotion `active` that holds its stage.
fn busy_hints(active: &Promotion, driven: bool) -> Vec<String> {
    let mut hints = Vec::new();
    if driven {
        hints.push(format!(
            "wait for it to finish (`ferry status` shows where it is), or supersede it: `ferry abort {}`, or pass --abort-active",
            active.id
        ));
    } else {
        hints.push(format!(
            "finish it: {}; or supersede it: `ferry abort {}`, or pass --abort-active",
            finish_commands(active),
            active.id
        ));
    }
    hints
}

/// The commands that drive `promotion` on to its end, for a hint.
pub fn finish_commands(promotion: &Promotion) -> String {
    let again = if promotion.rollback {
        format!(
            "ferry rollback {} --to {}",
            promotion.stage, promotion.revision
        )
    } else {
        format!(
            "ferry promote {} --to {} --wait",
            promotion.revision, promotion.stage
        )
    };
    format!("`ferry reconcile` or `{again}`")
}

/// Git errors that come from what a person gave: an unknown revision, a directory that is
/// not a repository.
fn is_unknown_rev(err: &PromotionError) -> bool {
    use crate::gitstore::GitStoreError;
    matches!(
        err,
        PromotionError::Git(GitStoreError::UnknownRev { .. } | GitStoreError::Open { .. })
    )
}

/// Hooks the tests use to stop at a step or fix the clock. Debug builds only: release builds
/// ignore these variables, so nobody can move ferry's clock past a freeze.
mod test_hooks {
    #[cfg(debug_assertions)]
    use std::sync::Arc;

    #[cfg(debug_assertions)]
    use chrono::{DateTime, Utc};

    use crate::promotion::{Clock, StepHook};

    #[cfg(debug_assertions)]
    pub fn step_hook() -> Option<StepHook> {
        let point = std::env::var("FERRY_TEST_FAILPOINT").ok()?;
        Some(Arc::new(move |step: &str| {
            if step == point {
                let pid = std::process::id().to_string();
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", &pid])
                    .status();
                std::thread::sleep(std::time::Duration::from_secs(60));
            }
        }))
    }

    #[cfg(not(debug_assertions))]
    pub fn step_hook() -> Option<StepHook> {
        None
    }

    #[cfg(debug_assertions)]
    pub fn round_hook() -> Option<crate::server::RoundHook> {
        let path = std::path::PathBuf::from(std::env::var_os("FERRY_TEST_WEDGE_FILE")?);
        Some(Arc::new(move || {
            while path.exists() {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }))
    }

    #[cfg(not(debug_assertions))]
    pub fn round_hook() -> Option<crate::server::RoundHook> {
        None
    }

    #[cfg(debug_assertions)]
    pub fn clock() -> Option<Clock> {
        let text = std::env::var("FERRY_TEST_NOW").ok()?;
        let at = DateTime::parse_from_rfc3339(&text)
            .ok()?
            .with_timezone(&Utc);
        Some(Arc::new(move || at))
    }

    #[cfg(not(debug_assertions))]
    pub fn clock() -> Option<Clock> {
        None
    }
}
