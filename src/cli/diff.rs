//! `ferry diff`: the rendered difference between two environments.

use clap::Args;

use super::engine::engine_error;
use super::{CliError, Context};

/// Show the difference between what two stages have on their output branches
#[derive(Debug, Args)]
pub struct DiffArgs {
    pub stage_a: String,
    pub stage_b: String,
}

pub fn run(ctx: &Context, args: DiffArgs) -> Result<(), CliError> {
    let engine = ctx.engine()?;
    let branch = engine.source_branch().map_err(engine_error)?;
    let config = engine.config_at_branch(&branch).map_err(engine_error)?;
    let diff = engine
        .diff_stages(&config, &args.stage_a, &args.stage_b)
        .map_err(engine_error)?;
    if diff.is_empty() {
        println!(
            "{} and {} have the same manifests",
            args.stage_a, args.stage_b
        );
    } else {
        print!("{diff}");
    }
    Ok(())
}
