//! `ferry plan`: what a promotion would change and what blocks it.

use clap::Args;

use super::engine::engine_error;
use super::output::emit;
use super::promote::write_plan;
use super::{CliError, Context};

/// Show what promoting a revision into a stage would change (a diff of the rendered
/// manifests against the stage's branch) and whatever would block it
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The revision id (or a unique prefix)
    pub revision: String,
    /// The stage
    #[arg(long = "to", value_name = "STAGE")]
    pub stage: String,
}

pub fn run(ctx: &Context, args: PlanArgs) -> Result<(), CliError> {
    let plan = match ctx.client()? {
        Some(client) => client.get(
            "/api/v1/plan",
            &[("revision", args.revision), ("stage", args.stage)],
        )?,
        None => ctx
            .engine()?
            .plan(&args.revision, &args.stage)
            .map_err(engine_error)?,
    };
    emit(ctx.format(), &plan, |out| write_plan(out, &plan))
}
