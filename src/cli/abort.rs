//! `ferry abort`: end an unfinished promotion without verifying it.

use clap::Args;

use super::engine::engine_error;
use super::output::emit;
use super::promote::write_promotion;
use super::{CliError, Context};
use crate::promotion::Outcome;

/// Abort an unfinished promotion: it ends without being verified and frees its stage
///
/// The stage's branch keeps what was written until the next promotion or rollback writes on
/// top. Refused while a live process is writing or applying the promotion (abort it once it
/// verifies). The abort is recorded in the promotion's history and the audit log.
#[derive(Debug, Args)]
pub struct AbortArgs {
    /// The promotion id (`p-…`)
    pub promotion: String,
    /// Why (recorded with the abort)
    #[arg(long)]
    pub reason: Option<String>,
}

pub fn run(ctx: &Context, args: AbortArgs) -> Result<(), CliError> {
    let engine = ctx.engine()?;
    let promotion = engine
        .abort(&args.promotion, args.reason.as_deref())
        .map_err(engine_error)?;
    let outcome = Outcome::Aborted(promotion);
    emit(ctx.format(), outcome.promotion(), |out| {
        write_promotion(out, &outcome)
    })
}
