//! `ferry validate`: the pipeline, the policies, the access rules, and every stage renders.

use clap::Args;

use super::{CliError, Context, ErrorKind};
use crate::gitstore::RemoteBases;
use crate::overlay::{self, BuildOptions, DirSource, Unpinned};
use crate::pipeline::Config;

/// Check the pipeline, the policies, groups and access rules, and that every stage's overlay
/// renders
///
/// Exits 0 when everything is valid, 2 with the file, line and field of the first problem
/// otherwise.
#[derive(Debug, Args)]
pub struct ValidateArgs {}

pub fn run(ctx: &Context, _args: ValidateArgs) -> Result<(), CliError> {
    let repo = ctx.repo()?;
    let source = DirSource::new(&repo);
    let config =
        Config::load(&source).map_err(|err| CliError::from_error(ErrorKind::BadInput, err))?;
    let pipeline = &config.pipeline;
    let dirs: Vec<&str> = pipeline
        .stages()
        .iter()
        .map(|s| s.overlay.as_str())
        .collect();
    // A stage renders only if a promotion could render it: remote bases must be pinned.
    let cache = super::build::remote_cache().map(RemoteBases::new);
    let options = BuildOptions {
        remotes: super::build::remotes(cache.as_ref(), Unpinned::Refuse),
        ..BuildOptions::default()
    };
    let mut resources = 0;
    for (stage, rendered) in pipeline
        .stages()
        .iter()
        .zip(overlay::build_all_options(&source, &dirs, options))
    {
        let rendered = rendered.map(|build| build.resources).map_err(|err| {
            CliError::bad_input(format!("stage {} does not render", stage.name))
                .with_source(err)
                .with_hint(format!(
                    "`ferry build {}` shows the same error",
                    stage.overlay
                ))
        })?;
        resources += rendered.len();
    }
    let access = match &config.access.path {
        Some(path) => format!(
            "; {path}: {} role bindings, {} OIDC issuers",
            config.access.roles.len(),
            config.access.oidc.len()
        ),
        None => String::new(),
    };
    println!(
        "ok: pipeline {} with {} stages ({}), {} policies{access}; every stage renders ({resources} resources)",
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
