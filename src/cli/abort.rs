//! `ferry abort`: end an unfinished promotion without verifying it.

use clap::Args;

use super::client::segment;
use super::engine::engine_error;
use super::output::emit;
use super::promote::write_promotion;
use super::{CliError, Context};
use crate::promotion::{Outcome, Promotion};

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
    let promotion = match ctx.client()? {
        Some(client) => client
            .post(
                &format!("/api/v1/promotions/{}/abort", segment(&args.promotion)),
                &serde_json::json!({"reason": args.reason}),
            )?
            .parse::<Promotion>(client.server())?,
        None => ctx
            .writing_engine()?
            .abort(&args.promotion, args.reason.as_deref())
            .map_err(engine_error)?,
    };
    let outcome = Outcome::Aborted(promotion);
    emit(ctx.format(), outcome.promotion(), |out| {
        write_promotion(out, &outcome)
    })
}
