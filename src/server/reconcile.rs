//! The reconcile loop: one task that looks at the pipeline whenever something changed (a
//! release, a review, a finished step, a moved source branch, a webhook) or when the next
//! due time arrives, and hands each stage with work to a worker of its own — one promotion
//! per stage, stages in parallel. It never polls on a fixed interval for promotions: between
//! events it sleeps until the next due instant, waking at least every period only to beat.
//! A pass that scanned the pipeline without an error is recorded in the state, for
//! `ferry_reconcile_last_success_timestamp_seconds`.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio_util::task::TaskTracker;

use super::app::{AppState, ServerEvent, loop_actor};
use super::error::ApiError;
use crate::promotion::ActionResult;
use crate::promotion::metrics::record_reconcile_success;

/// How often at most a successful pass is written to the state (for
/// `ferry_reconcile_last_success_timestamp_seconds`): the loop may go round many times a
/// second under load.
const RECORD_SUCCESS_EVERY: Duration = Duration::from_secs(1);

/// Runs until the service shuts down.
pub async fn run(state: Arc<AppState>, workers: TaskTracker) {
    let mut recorded: Option<Instant> = None;
    loop {
        state.beat();
        let busy: BTreeSet<String> = state
            .stage_work
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let record = recorded.is_none_or(|at| at.elapsed() >= RECORD_SUCCESS_EVERY);
        let scan = state
            .blocking(move |s| {
                if let Some(hook) = &s.round_hook {
                    hook();
                }
                let engine = s.engine(loop_actor())?;
                let config = s.config(&engine)?;
                let stages: Vec<String> = engine
                    .stages_with_work(&config)?
                    .into_iter()
                    .map(|stage| stage.name.clone())
                    .filter(|name| !busy.contains(name))
                    .collect();
                let next_due = engine.next_due(&config)?;
                if record {
                    record_reconcile_success(&engine.store()?, engine.now())?;
                }
                Ok((stages, next_due))
            })
            .await;
        let next_due = match scan {
            Ok((stages, next_due)) => {
                if record {
                    recorded = Some(Instant::now());
                }
                for stage in stages {
                    start_worker(&state, &workers, stage);
                }
                next_due
            }
            Err(err) => {
                tracing::warn!("reconcile: {}", err_text(&err));
                None
            }
        };
        let now = Utc::now();
        let mut sleep = state.period;
        if let Some(at) = next_due {
            let until = (at - now).to_std().unwrap_or_default();
            sleep = sleep.min(until);
        }
        tokio::select! {
            () = state.cancel.cancelled() => break,
            () = state.wake.notified() => {}
            () = tokio::time::sleep(sleep) => {}
        }
    }
}

fn err_text(err: &ApiError) -> String {
    format!("{err:?}")
}

/// Runs what is due in `stage` on a blocking thread; wakes the loop again when something
/// changed meanwhile (a wake that arrived while the stage was busy was skipped for it).
fn start_worker(state: &Arc<AppState>, workers: &TaskTracker, stage: String) {
    {
        let mut work = state.stage_work.lock().unwrap_or_else(|p| p.into_inner());
        if !work.insert(stage.clone()) {
            // A request drives it now; it wakes the loop when it lets go.
            return;
        }
    }
    let state = Arc::clone(state);
    workers.spawn(async move {
        let before = state.generation.load(Ordering::SeqCst);
        let name = stage.clone();
        let outcome = state
            .blocking(move |s| {
                let engine = s.engine(loop_actor())?;
                let config = s.config(&engine)?;
                let stage = engine.stage(&config, &name)?;
                engine.finish_rollbacks(stage).ok();
                Ok(engine.reconcile_stage(&config, stage)?)
            })
            .await;
        match outcome {
            Ok(actions) => {
                for action in &actions {
                    if let ActionResult::Error { error } = &action.result {
                        tracing::warn!(stage = %action.stage, "reconcile: {error}");
                    }
                }
            }
            Err(err) => tracing::warn!(stage = %stage, "reconcile: {}", err_text(&err)),
        }
        state
            .stage_work
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&stage);
        if state.generation.load(Ordering::SeqCst) != before {
            state.wake.notify_one();
        }
    });
}

/// Fetches the source branch every `fetch_interval` when the repository has a remote, moves
/// the local source branch forward to it, and wakes the loop when it moved.
pub async fn fetch_loop(state: Arc<AppState>) {
    if state.remote.is_none() {
        return;
    }
    loop {
        tokio::select! {
            () = state.cancel.cancelled() => break,
            () = tokio::time::sleep(state.fetch_interval) => {}
        }
        match state.blocking(super::hooks::fetch).await {
            Ok(fetched) => {
                if fetched.moved
                    && let Some(tip) = &fetched.tip
                {
                    state.changed(ServerEvent::new("source.fetched").revision(tip));
                }
            }
            Err(err) => tracing::warn!("fetch: {}", err_text(&err)),
        }
    }
}
