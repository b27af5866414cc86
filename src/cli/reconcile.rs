//! `ferry reconcile`: run every due auto and scheduled promotion, then exit.

use clap::Args;

use super::engine::engine_error;
use super::output::emit;
use super::{CliError, Context};
use crate::promotion::{ActionResult, ReconcileReport};

/// Run every due auto-promotion and scheduled promotion, repeating until nothing is due
///
/// Safe to run from cron every minute, alongside other reconcile runs: stage locks keep two
/// runs from promoting the same stage, and a promotion another run moved on first is
/// reported, not failed. Unfinished promotions and rollbacks are resumed. A second run right
/// after the first does nothing. Exit codes: 0 done, 1 a promotion failed.
#[derive(Debug, Args)]
pub struct ReconcileArgs {}

pub fn run(ctx: &Context, _args: ReconcileArgs) -> Result<(), CliError> {
    let engine = ctx.writing_engine()?;
    let branch = engine.source_branch().map_err(engine_error)?;
    let config = engine.config_at_branch(&branch).map_err(engine_error)?;
    let report = engine.reconcile(&config).map_err(engine_error)?;
    let store = engine.store().map_err(engine_error)?;
    crate::promotion::metrics::record_reconcile_success(&store, engine.now())
        .map_err(engine_error)?;
    drop(store);
    emit(ctx.format(), &report, |out| write_report(out, &report))?;
    if report.failed() {
        return Err(CliError::failed("some promotions failed"));
    }
    Ok(())
}

/// What a reconcile did and what still waits, for people.
pub(crate) fn write_report(
    out: &mut dyn std::io::Write,
    report: &ReconcileReport,
) -> std::io::Result<()> {
    if report.actions.is_empty() {
        writeln!(out, "nothing to do")?;
    }
    for a in &report.actions {
        let id = a.promotion.as_deref().unwrap_or("-");
        let result = match &a.result {
            ActionResult::Succeeded => "succeeded".to_string(),
            ActionResult::Verifying => "verifying".to_string(),
            ActionResult::Blocked { blockers } => format!(
                "blocked: {}",
                blockers
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            ActionResult::Failed { reason } => format!("failed: {reason}"),
            ActionResult::Aborted { reason } => format!("aborted: {reason}"),
            ActionResult::Elsewhere { state } => {
                format!("moved on by another process (now {state})")
            }
            ActionResult::Busy { detail } => format!("busy: {detail}"),
            ActionResult::Error { error } => format!("error: {error}"),
        };
        writeln!(
            out,
            "{id} {} → {} ({}): {result}",
            a.revision,
            a.stage,
            a.trigger.as_str()
        )?;
    }
    for waiting in &report.waiting {
        for b in &waiting.blockers {
            writeln!(out, "{} waits: {}: {b}", waiting.stage, waiting.revision)?;
        }
    }
    Ok(())
}
