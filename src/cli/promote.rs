//! `ferry promote`: move a revision into a stage.

use std::io::Write;

use clap::Args;

use super::client::{Client, segment};
use super::engine::{engine_error, finish_commands};
use super::output::{Format, emit};
use super::{CliError, Context};
use crate::policy::WindowOverride;
use crate::promotion::{Outcome, Plan, PromoteRequest, Promotion, PromotionState};

/// Promote a revision into a stage
///
/// Checks the stage's policy (upstream verification, soak, windows, approvals), writes the
/// rendered manifests as one commit on the stage's output branch and, with --wait, runs the
/// stage's gates and waits for the verdict. Without --wait it returns once the commit is
/// written; `ferry reconcile` (or `promote --wait` again) finishes the verification. While
/// another promotion holds the stage (it has written and not ended) this is refused as busy,
/// unless --abort-active aborts that one.
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
    /// Abort the promotion that holds the stage instead of refusing (audited)
    #[arg(long)]
    pub abort_active: bool,
}

pub fn run(ctx: &Context, args: PromoteArgs) -> Result<(), CliError> {
    if let Some(client) = ctx.client()? {
        return run_remote(ctx, &client, &args);
    }
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
    let mut request = PromoteRequest::new(&args.revision, &args.stage);
    request.wait = args.wait;
    request.window_override = window_override;
    request.abort_active = args.abort_active;
    let outcome = engine.promote(&request).map_err(engine_error)?;
    report(ctx.format(), &outcome)
}

/// Through the API: `GET /api/v1/plan` for --dry-run, else `POST /api/v1/promotions` (the
/// promotion runs in the server) and, with --wait, following it until it ends.
fn run_remote(ctx: &Context, client: &Client, args: &PromoteArgs) -> Result<(), CliError> {
    if args.abort_active {
        return Err(CliError::bad_input(
            "--abort-active does not work against a server: abort the promotion that holds the stage with `ferry abort ID` first",
        ));
    }
    if args.dry_run {
        let plan: Plan = client.get(
            "/api/v1/plan",
            &[
                ("revision", args.revision.clone()),
                ("stage", args.stage.clone()),
            ],
        )?;
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
    let body = serde_json::json!({
        "revision": args.revision,
        "stage": args.stage,
        "override_window": args.override_window,
        "reason": args.reason,
    });
    start_remote(ctx, client, "/api/v1/promotions", &body, args.wait)
}

/// Requests a promotion (or rollback) from the server with `POST path` and reports it as a
/// local run would: followed through the event stream until it settles, its gates' progress
/// on stderr with `wait`; a refused one (blocked, failed) shown as the promotion it is.
pub fn start_remote(
    ctx: &Context,
    client: &Client,
    path: &str,
    body: &serde_json::Value,
    wait: bool,
) -> Result<(), CliError> {
    let events = client.events()?;
    let promotion = match client.post_promotion(path, body)? {
        Ok(reply) => reply.parse::<Promotion>(client.server())?,
        Err(refusal) => {
            let promotion: Promotion = client.get(
                &format!("/api/v1/promotions/{}", segment(&refusal.promotion)),
                &[],
            )?;
            if !matches!(
                promotion.state,
                PromotionState::Blocked | PromotionState::Failed
            ) {
                return Err(refusal.error);
            }
            promotion
        }
    };
    let promotion = super::follow::follow(client, events, promotion, wait)?;
    report_remote(ctx, client, promotion)
}

/// Reports a promotion running in the server that settled: as a local run reports it.
fn report_remote(ctx: &Context, client: &Client, promotion: Promotion) -> Result<(), CliError> {
    let outcome = match promotion.state {
        PromotionState::Succeeded => Outcome::Succeeded(promotion),
        PromotionState::Blocked => Outcome::Blocked(promotion),
        PromotionState::Failed => Outcome::Failed(promotion),
        PromotionState::Aborted => Outcome::Aborted(promotion),
        _ => {
            let commit = promotion.commit.as_deref().unwrap_or("-");
            return emit(ctx.format(), &promotion, |out| {
                writeln!(
                    out,
                    "{}: {} written to {} (commit {}); verifying in {}",
                    promotion.id,
                    promotion.revision,
                    promotion.stage,
                    &commit[..commit.len().min(12)],
                    client.server()
                )
            });
        }
    };
    report_with(ctx.format(), &outcome, super::client::BLOCKED_HINT)
}

/// Prints where a promotion stands and turns the outcome into the exit code: blocked 3,
/// failed or aborted 1. A blocked or failed promotion goes to stdout only as JSON or YAML;
/// for people the error says it.
pub fn report(format: Format, outcome: &Outcome) -> Result<(), CliError> {
    report_with(
        format,
        outcome,
        "`ferry status` shows what each stage waits for; `ferry reconcile` retries when it may proceed",
    )
}

/// [`report`], with the hint a blocked promotion gets.
fn report_with(format: Format, outcome: &Outcome, blocked_hint: &str) -> Result<(), CliError> {
    let p = outcome.promotion();
    let ended_badly = matches!(outcome, Outcome::Blocked(_) | Outcome::Failed(_))
        || matches!(outcome, Outcome::Elsewhere(p) if p.state == PromotionState::Failed);
    if format != Format::Table || !ended_badly {
        emit(format, p, |out| write_promotion(out, outcome))?;
    }
    match p.state {
        PromotionState::Blocked => Err(CliError::blocked(format!(
            "promotion {} of {} to {} is blocked: {}",
            p.id,
            p.revision,
            p.stage,
            p.blockers
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        ))
        .with_hint(blocked_hint)),
        PromotionState::Failed => Err(CliError::failed(format!(
            "promotion {} of {} to {} failed: {}",
            p.id,
            p.revision,
            p.stage,
            p.error.as_deref().unwrap_or("see `ferry history`")
        ))),
        PromotionState::Aborted => Err(CliError::failed(format!(
            "promotion {} of {} to {} ended without being verified: {}",
            p.id,
            p.revision,
            p.stage,
            p.error.as_deref().unwrap_or("aborted")
        ))),
        _ => Ok(()),
    }
}

/// A promotion's outcome for people.
pub fn write_promotion(out: &mut dyn Write, outcome: &Outcome) -> std::io::Result<()> {
    let p = outcome.promotion();
    if let Outcome::Elsewhere(_) = outcome {
        writeln!(
            out,
            "{}: another process moved it on first; it is now {}",
            p.id, p.state
        )?;
    }
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
            writeln!(out, "  run {} to run its gates", finish_commands(p))?;
        }
        PromotionState::Aborted => writeln!(
            out,
            "{}: {} → {}: aborted ({})",
            p.id,
            p.revision,
            p.stage,
            last_note(p).unwrap_or("no reason given")
        )?,
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

/// The note of the promotion's last transition.
fn last_note(p: &Promotion) -> Option<&str> {
    p.transitions.last().and_then(|t| t.note.as_deref())
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
