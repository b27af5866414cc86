//! `ferry approve` and `ferry reject`: reviews of the content a promotion would deploy.

use clap::Args;

use super::client::{Client, segment};
use super::engine::engine_error;
use super::output::emit;
use super::{CliError, Context};
use crate::policy::Verdict;
use crate::promotion::ReviewOutcome;

/// Review the revision waiting in a stage (or --revision REV)
///
/// A review is bound to the rendered content it reviews: if that content changes, earlier
/// approvals and rejections stop counting. Only users allowed by the stage's policy may
/// review; with `selfApproval: false` the requester may not.
#[derive(Debug, Args)]
pub struct ReviewArgs {
    /// The stage
    pub stage: String,
    /// The revision [default: the one waiting in the stage]
    #[arg(long, value_name = "REV")]
    pub revision: Option<String>,
    /// A comment recorded with the review
    #[arg(long)]
    pub comment: Option<String>,
    /// Take your earlier review back
    #[arg(long)]
    pub withdraw: bool,
}

pub fn run(ctx: &Context, args: ReviewArgs, verdict: Verdict) -> Result<(), CliError> {
    if let Some(client) = ctx.client()? {
        let outcome = run_remote(&client, &args, verdict)?;
        let user = outcome.review.user.clone();
        return report(ctx, &args, verdict, &user, &outcome);
    }
    let engine = ctx.writing_engine()?;
    let outcome = engine
        .review(
            &args.stage,
            args.revision.as_deref(),
            verdict,
            args.comment.as_deref(),
            args.withdraw,
        )
        .map_err(engine_error)?;
    report(ctx, &args, verdict, engine.user(), &outcome)
}

/// `POST /api/v1/stages/{stage}/approvals` (or `rejections`) as the token's identity; without
/// `--revision`, the revision the stage's newest promotion is about.
fn run_remote(
    client: &Client,
    args: &ReviewArgs,
    verdict: Verdict,
) -> Result<ReviewOutcome, CliError> {
    let revision = match &args.revision {
        Some(revision) => revision.clone(),
        None => waiting_revision(client, &args.stage)?,
    };
    let kind = match verdict {
        Verdict::Approve => "approvals",
        Verdict::Reject => "rejections",
    };
    let body = serde_json::json!({
        "revision": revision,
        "comment": args.comment,
        "withdraw": args.withdraw,
    });
    client
        .post(
            &format!("/api/v1/stages/{}/{kind}", segment(&args.stage)),
            &body,
        )?
        .parse(client.server())
}

/// The revision the newest promotion of `stage` is about, from the server's status.
fn waiting_revision(client: &Client, stage: &str) -> Result<String, CliError> {
    let status: serde_json::Value = client.get("/api/v1/status", &[])?;
    let stages = status["stages"].as_array().cloned().unwrap_or_default();
    let Some(entry) = stages.iter().find(|s| s["name"] == stage) else {
        return Err(CliError::bad_input(format!(
            "{} has no stage `{stage}`",
            client.server()
        )));
    };
    entry["promotion_revision"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| {
            CliError::bad_input(format!("no promotion waits in {stage}"))
                .with_hint("name the revision with --revision REV")
        })
}

fn report(
    ctx: &Context,
    args: &ReviewArgs,
    verdict: Verdict,
    user: &str,
    outcome: &ReviewOutcome,
) -> Result<(), CliError> {
    emit(ctx.format(), outcome, |out| {
        let what = match (args.withdraw, verdict) {
            (true, _) => format!("withdrew the {} of", crate::promotion::review_noun(verdict)),
            (false, Verdict::Approve) => "approved".to_string(),
            (false, Verdict::Reject) => "rejected".to_string(),
        };
        writeln!(
            out,
            "{} {what} {} in {}",
            user, outcome.revision, outcome.stage
        )?;
        if outcome.blockers.is_empty() {
            writeln!(
                out,
                "  nothing blocks it now: `ferry reconcile` or `ferry promote {} --to {}` proceeds",
                outcome.revision, outcome.stage
            )
        } else {
            outcome
                .blockers
                .iter()
                .try_for_each(|b| writeln!(out, "  still waiting: {b}"))
        }
    })
}
