//! `ferry rollback`: a forward promotion of the stage's previously verified revision.

use clap::Args;

use super::engine::engine_error;
use super::output::emit;
use super::promote::write_promotion;
use super::{CliError, Context};

/// Roll a stage back to its previously verified revision (or --to REV)
///
/// A rollback is a new commit on the stage's branch with the earlier revision's manifests —
/// never a branch reset. It skips the upstream requirement and soak, but not approvals
/// unless the policy says `rollback: {skipApprovals: true}`.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The stage to roll back
    pub stage: String,
    /// The revision to go back to [default: the one verified before the current one]
    #[arg(long, value_name = "REV")]
    pub to: Option<String>,
    /// Return once written, without waiting for the gates
    #[arg(long)]
    pub no_wait: bool,
}

pub fn run(ctx: &Context, args: RollbackArgs) -> Result<(), CliError> {
    let engine = ctx.writing_engine()?;
    let promotion = engine
        .rollback(&args.stage, args.to.as_deref(), !args.no_wait)
        .map_err(engine_error)?;
    emit(ctx.format(), &promotion, |out| {
        write_promotion(out, &promotion)
    })
}
