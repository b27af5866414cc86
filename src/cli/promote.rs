//! `ferry promote`: move a revision into a stage.

use std::io::Write;

use clap::Args;

use super::engine::engine_error;
use super::output::emit;
use super::{CliError, Context};
use crate::policy::WindowOverride;
use crate::promotion::{Plan, PromoteRequest, Promotion, PromotionState, Trigger};

/// Promote a revision into a stage
///
/// Checks the stage's policy (upstream verification, soak, windows, approvals), writes the
/// rendered manifests as one commit on the stage's output branch and, with --wait, runs the
/// stage's gates and waits for the verdict. Without --wait it returns once the commit is
/// written; `ferry reconcile` (or `promote --wait` again) finishes the verification.
/// Exit codes: 0 done, 1 a gate failed, 2 bad input, 3 blocked by policy or busy.
#[derive(Debug, Args)]
pub struct PromoteArgs {
    /// The revision id (or a unique prefix)
    pub revision: String,
    /// The stage to promote into
    #[arg(long = "to", value_name = "STAGE")]
    pub stage: String,
    /// Run the gates and wait until the revision is verified or fails
    #[arg(long)]
    pub wait: bool,
    /// Render and report what would happen; write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Promote outside the stage's windows (only for users in the policy's overrideBy)
    #[arg(long, requires = "reason")]
    pub override_window: bool,
    /// Why the windows are overridden (recorded in the audit log)
    #[arg(long)]
    pub reason: Option<String>,
}

pub fn run(ctx: &Context, args: PromoteArgs) -> Result<(), CliError> {
    let engine = if args.dry_run {
        ctx.engine()?
    } else {
        ctx.writing_engine()?
    };
    if args.dry_run {
        let plan = engine
            .plan(&args.revision, &args.stage)
            .map_err(engine_error)?;
        emit(ctx.format(), &plan, |out| write_plan(out, &plan))?;
        return if plan.blockers.is_empty() {
            Ok(())
        } else {
            Err(CliError::blocked(format!(
                "promotion of {} to {} would be blocked",
                plan.revision, plan.stage
            )))
        };
    }
    let window_override = args.override_window.then(|| WindowOverride {
        user: engine.user().to_string(),
        reason: args.reason.clone().unwrap_or_default(),
    });
    let request = PromoteRequest {
        revision: args.revision,
        stage: args.stage,
        trigger: Trigger::Manual,
        wait: args.wait,
        window_override,
    };
    let promotion = engine.promote(&request).map_err(engine_error)?;
    emit(ctx.format(), &promotion, |out| {
        write_promotion(out, &promotion)
    })
}

/// A promotion's outcome for people.
pub fn write_promotion(out: &mut dyn Write, p: &Promotion) -> std::io::Result<()> {
    let commit = p
        .commit
        .as_deref()
        .map(|c| &c[..c.len().min(12)])
        .unwrap_or("-");
    match p.state {
        PromotionState::Succeeded => writeln!(
            out,
            "{}: {} verified in {} (commit {commit})",
            p.id, p.revision, p.stage
        )?,
        PromotionState::Verifying => {
            writeln!(
                out,
                "{}: {} written to {} (commit {commit}); verifying",
                p.id, p.revision, p.stage
            )?;
            writeln!(
                out,
                "  run `ferry reconcile` or `ferry promote {} --to {} --wait` to run its gates",
                p.revision, p.stage
            )?;
        }
        state => writeln!(out, "{}: {} → {}: {state}", p.id, p.revision, p.stage)?,
    }
    for gate in &p.gates {
        writeln!(
            out,
            "  gate {}: {} ({})",
            gate.name,
            gate.status.as_str(),
            gate.reason
        )?;
    }
    for note in &p.notes {
        writeln!(out, "  note: {note}")?;
    }
    Ok(())
}

/// A plan for people.
pub fn write_plan(out: &mut dyn Write, plan: &Plan) -> std::io::Result<()> {
    let current = plan.current.as_deref().unwrap_or("nothing yet");
    writeln!(
        out,
        "plan: {} → {} (now: {current}), branch {}",
        plan.revision, plan.stage, plan.branch
    )?;
    writeln!(
        out,
        "  {} added, {} changed, {} removed; content {}",
        plan.added.len(),
        plan.changed.len(),
        plan.removed.len(),
        plan.digest
    )?;
    if plan.blockers.is_empty() {
        writeln!(out, "  policy: allowed")?;
    }
    for blocker in &plan.blockers {
        writeln!(out, "  blocked: {blocker}")?;
    }
    for note in &plan.notes {
        writeln!(out, "  note: {note}")?;
    }
    for line in &plan.dry_run {
        writeln!(out, "  server-side dry run: {line}")?;
    }
    if !plan.diff.is_empty() {
        writeln!(out)?;
        out.write_all(plan.diff.as_bytes())?;
    }
    Ok(())
}
