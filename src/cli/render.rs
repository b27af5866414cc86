//! `ferry render`: render one stage's overlay, or every stage's, from the working tree or
//! with a revision.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::Args;

use super::build::write_stdout;
use super::engine::engine_error;
use super::{CliError, Context, ErrorKind};
use crate::gitstore::RemoteBases;
use crate::overlay::{self, BuildOptions, DirSource, Resource, Unpinned};
use crate::pipeline::{Config, Stage};
use crate::promotion::render_resources;

/// Render a stage's overlay from the working tree, like `kustomize build` of its directory
///
/// Prints the manifests, or with --out writes them to OUT/<stage>/, one file per resource
/// (`.yaml` files already there are replaced). With --all, every stage of the pipeline is
/// rendered in one process; printed, each stage's documents follow a `# stage: NAME` line.
/// With --revision, renders what a promotion of that revision would write: stage-owned files
/// from the source branch tip, the rest from the revision's config commit, then its images.
#[derive(Debug, Args)]
pub struct RenderArgs {
    /// The stage to render
    #[arg(
        value_name = "STAGE",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    pub stage: Option<String>,
    /// Render every stage of the pipeline
    #[arg(long)]
    pub all: bool,
    /// Write files to this directory instead of printing
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Render with this revision (from git) instead of the working tree
    #[arg(long, value_name = "REV")]
    pub revision: Option<String>,
}

pub fn run(ctx: &Context, args: RenderArgs) -> Result<(), CliError> {
    if let Some(revision) = &args.revision {
        return run_revision(ctx, &args, revision);
    }
    let repo = ctx.repo()?;
    let source = DirSource::new(&repo);
    let config =
        Config::load(&source).map_err(|err| CliError::from_error(ErrorKind::BadInput, err))?;
    let stages = selected_stages(&config, args.stage.as_deref())?;
    render_streaming(&source, &stages, &args)
}

/// Renders the selected stages with `revision`, reading git trees as a promotion does.
fn run_revision(ctx: &Context, args: &RenderArgs, revision: &str) -> Result<(), CliError> {
    let engine = ctx.engine()?;
    let revision = engine
        .store()
        .and_then(|s| s.revision(revision))
        .map_err(engine_error)?;
    let config = engine.config_for(&revision).map_err(engine_error)?;
    let stages = selected_stages(&config, args.stage.as_deref())?;
    let mut rendered = Vec::new();
    for stage in stages {
        let (resources, _) =
            render_resources(engine.git(), stage, &revision).map_err(engine_error)?;
        rendered.push((stage, resources));
    }
    output(args, &rendered)
}

fn output(args: &RenderArgs, rendered: &[(&Stage, Vec<Resource>)]) -> Result<(), CliError> {
    match &args.out {
        Some(out) => rendered
            .iter()
            .try_for_each(|(stage, resources)| write_stage(out, &stage.name, resources)),
        None => write_stdout(&printed(rendered, args.all)),
    }
}

fn selected_stages<'c>(config: &'c Config, name: Option<&str>) -> Result<Vec<&'c Stage>, CliError> {
    let Some(name) = name else {
        return Ok(config.pipeline.stages().iter().collect());
    };
    match config.pipeline.stage(name) {
        Some(stage) => Ok(vec![stage]),
        None => {
            let known: Vec<&str> = config
                .pipeline
                .stages()
                .iter()
                .map(|s| s.name.as_str())
                .collect();
            Err(CliError::bad_input(format!("unknown stage {name:?}"))
                .with_hint(format!("the pipeline's stages are: {}", known.join(", "))))
        }
    }
}

/// Renders the stages (in one process, on all cores) and prints or writes each as soon as it
/// and the stages before it are done, so that only a few stages are held at a time; stops at
/// the first stage that does not render.
fn render_streaming(
    source: &DirSource,
    stages: &[&Stage],
    args: &RenderArgs,
) -> Result<(), CliError> {
    let dirs: Vec<&str> = stages.iter().map(|s| s.overlay.as_str()).collect();
    let cache = super::build::remote_cache().map(RemoteBases::new);
    let options = BuildOptions {
        remotes: super::build::remotes(cache.as_ref(), Unpinned::Warn),
        ..BuildOptions::default()
    };
    let finish = |index: usize, result: Result<overlay::Build, overlay::RenderError>| {
        let stage = stages[index];
        let build = result.map_err(|err| {
            CliError::from_error(ErrorKind::BadInput, err).with_hint(format!(
                "while rendering stage {} ({})",
                stage.name, stage.overlay
            ))
        })?;
        let text = match &args.out {
            Some(out) => {
                write_stage(out, &stage.name, &build.resources)?;
                String::new()
            }
            None => stage_text(index, stage, &build.resources, args.all),
        };
        Ok((build.warnings, text))
    };
    let mut failure = None;
    overlay::build_each(source, &dirs, options, finish, |_, done| match done {
        Ok((warnings, text)) => {
            super::build::warn(&warnings, "");
            match write_stdout(&text) {
                Ok(()) => true,
                Err(err) => {
                    failure = Some(err);
                    false
                }
            }
        }
        Err(err) => {
            failure = Some(err);
            false
        }
    });
    failure.map_or(Ok(()), Err)
}

/// One stage's documents as printed, after a `# stage: NAME` header when `headers`.
fn stage_text(index: usize, stage: &Stage, resources: &[Resource], headers: bool) -> String {
    let mut text = String::new();
    if headers {
        if index > 0 {
            text.push_str("---\n");
        }
        let _ = writeln!(text, "# stage: {}", stage.name);
    }
    text.push_str(&overlay::to_yaml(resources));
    text
}

fn printed(rendered: &[(&Stage, Vec<Resource>)], headers: bool) -> String {
    rendered
        .iter()
        .enumerate()
        .map(|(i, (stage, resources))| stage_text(i, stage, resources, headers))
        .collect()
}

/// Writes `resources` to `out/<stage>/`, one file each, replacing earlier `.yaml` files.
fn write_stage(out: &Path, stage: &str, resources: &[Resource]) -> Result<(), CliError> {
    let dir = out.join(stage);
    let failed = |what: &str, path: &Path, err: std::io::Error| {
        CliError::failed(format!("failed to {what} {}: {err}", path.display()))
    };
    std::fs::create_dir_all(&dir).map_err(|err| failed("create", &dir, err))?;
    for entry in std::fs::read_dir(&dir).map_err(|err| failed("read", &dir, err))? {
        let path = entry.map_err(|err| failed("read", &dir, err))?.path();
        if path.is_file() && path.extension().is_some_and(|e| e == "yaml") {
            std::fs::remove_file(&path).map_err(|err| failed("remove", &path, err))?;
        }
    }
    for resource in resources {
        let path = dir.join(resource.file_name());
        std::fs::write(&path, overlay::resource_yaml(resource))
            .map_err(|err| failed("write", &path, err))?;
    }
    Ok(())
}
