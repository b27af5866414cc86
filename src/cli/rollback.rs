//! `ferry rollback`: a forward promotion of the stage's previously verified revision.

use clap::Args;

use super::client::segment;
use super::engine::engine_error;
use super::promote::{report, start_remote};
use super::{CliError, Context};
use crate::promotion::RollbackRequest;

/// Roll a stage back to its previously verified revision (or --to REV)
///
/// A rollback is a new commit on the stage's branch with the earlier revision's manifests —
/// never a branch reset. It skips the upstream requirement and soak, but not approvals
/// unless the policy says `rollback: {skipApprovals: true}`. Like a promotion, it is refused
/// as busy while another promotion holds the stage, unless --abort-active aborts that one; a
/// rollback that did not finish is resumed by `ferry reconcile` or by this command again.
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
    /// Abort the promotion that holds the stage instead of refusing (audited)
    #[arg(long)]
    pub abort_active: bool,
}

pub fn run(ctx: &Context, args: RollbackArgs) -> Result<(), CliError> {
    if let Some(client) = ctx.client()? {
        if args.abort_active {
            return Err(CliError::bad_input(
                "--abort-active does not work against a server: abort the promotion that holds the stage with `ferry abort ID` first",
            ));
        }
        return start_remote(
            ctx,
            &client,
            &format!("/api/v1/stages/{}/rollback", segment(&args.stage)),
            &serde_json::json!({"to": args.to}),
            !args.no_wait,
        );
    }
    let engine = ctx.writing_engine()?;
    let request = RollbackRequest {
        stage: args.stage,
        to: args.to,
        wait: !args.no_wait,
        abort_active: args.abort_active,
    };
    let outcome = engine.rollback(&request).map_err(engine_error)?;
    report(ctx.format(), &outcome)
}
