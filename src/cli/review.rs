//! `ferry approve` and `ferry reject`: reviews of the content a promotion would deploy.

use clap::Args;

use super::engine::engine_error;
use super::output::emit;
use super::{CliError, Context};
use crate::policy::Verdict;

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
    emit(ctx.format(), &outcome, |out| {
        let what = match (args.withdraw, verdict) {
            (true, _) => format!("withdrew the {} of", crate::promotion::review_noun(verdict)),
            (false, Verdict::Approve) => "approved".to_string(),
            (false, Verdict::Reject) => "rejected".to_string(),
        };
        writeln!(
            out,
            "{} {what} {} in {}",
            engine.user(),
            outcome.revision,
            outcome.stage
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
