//! `ferry validate`: the pipeline, the policies, and every stage renders.

use clap::Args;

use super::{CliError, Context, ErrorKind};
use crate::overlay::DirSource;
use crate::pipeline::Config;

/// Check the pipeline, the policies and groups, and that every stage's overlay is in place
///
/// Exits 0 when everything is valid, 2 with the file, line and field of the first problem
/// otherwise.
#[derive(Debug, Args)]
pub struct ValidateArgs {}

pub fn run(ctx: &Context, _args: ValidateArgs) -> Result<(), CliError> {
    let config = load_config(ctx)?;
    let pipeline = &config.pipeline;
    println!(
        "ok: pipeline {} with {} stages ({}), {} policies",
        pipeline.name,
        pipeline.stages().len(),
        pipeline
            .topological()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        config.policies.len(),
    );
    Ok(())
}

/// Loads the config of the working tree of the repository.
pub(crate) fn load_config(ctx: &Context) -> Result<Config, CliError> {
    let repo = ctx.repo()?;
    Config::load(&DirSource::new(&repo))
        .map_err(|err| CliError::from_error(ErrorKind::BadInput, err))
}
