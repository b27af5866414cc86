//! `ferry reconcile`: run every due auto and scheduled promotion, then exit.

use clap::Args;

use super::engine::engine_error;
use super::output::emit;
use super::{CliError, Context};
use crate::promotion::ReconcileReport;

/// Run every due auto-promotion and scheduled promotion, repeating until nothing is due
///
/// Safe to run from cron every minute, alongside other reconcile runs: stage locks keep two
/// runs from promoting the same stage. A second run right after the first does nothing.
#[derive(Debug, Args)]
pub struct ReconcileArgs {}

pub fn run(ctx: &Context, _args: ReconcileArgs) -> Result<(), CliError> {
    let engine = ctx.writing_engine()?;
    let branch = engine.source_branch().map_err(engine_error)?;
    let config = engine.config_at_branch(&branch).map_err(engine_error)?;
    let report = engine.reconcile(&config).map_err(engine_error)?;
    emit(ctx.format(), &report, |out| write_report(out, &report))?;
    if report
        .actions
        .iter()
        .any(|a| a.outcome == "failed" || a.outcome == "error")
    {
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
        let detail = if a.detail.is_empty() {
            String::new()
        } else {
            format!(": {}", a.detail)
        };
        writeln!(
            out,
            "{id} {} → {} ({:?}): {}{detail}",
            a.revision, a.stage, a.trigger, a.outcome
        )?;
    }
    for (stage, blockers) in &report.waiting {
        for b in blockers {
            writeln!(out, "{stage} waits: {b}")?;
        }
    }
    Ok(())
}
