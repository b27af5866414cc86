//! `ferry render`: render one stage's overlay, or every stage's, from the working tree.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::Args;

use super::build::write_stdout;
use super::{CliError, Context, ErrorKind};
use crate::overlay::{self, DirSource, RenderError, Resource};
use crate::pipeline::{Config, Stage};

/// Render a stage's overlay from the working tree, like `kustomize build` of its directory
///
/// Prints the manifests, or with --out writes them to OUT/<stage>/, one file per resource
/// (`.yaml` files already there are replaced). With --all, every stage of the pipeline is
/// rendered in one process; printed, each stage's documents follow a `# stage: NAME` line.
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
}

pub fn run(ctx: &Context, args: RenderArgs) -> Result<(), CliError> {
    let repo = ctx.repo()?;
    let source = DirSource::new(&repo);
    let config =
        Config::load(&source).map_err(|err| CliError::from_error(ErrorKind::BadInput, err))?;
    let stages = selected_stages(&config, args.stage.as_deref())?;
    let rendered = render_all(&source, &stages)?;
    match &args.out {
        Some(out) => rendered
            .iter()
            .try_for_each(|(stage, resources)| write_stage(out, &stage.name, resources)),
        None => write_stdout(&printed(&rendered, args.all)),
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

/// Renders every stage, spreading the stages over the available cores; results keep the
/// stages' order.
fn render_all<'s>(
    source: &DirSource,
    stages: &[&'s Stage],
) -> Result<Vec<(&'s Stage, Vec<Resource>)>, CliError> {
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(stages.len().max(1));
    let chunk = stages.len().div_ceil(threads).max(1);
    let results: Vec<Result<Vec<Resource>, RenderError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = stages
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|s| overlay::build(source, &s.overlay))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    if results.len() != stages.len() {
        return Err(CliError::failed("rendering stopped unexpectedly"));
    }
    stages
        .iter()
        .zip(results)
        .map(|(stage, result)| match result {
            Ok(resources) => Ok((*stage, resources)),
            Err(err) => Err(
                CliError::from_error(ErrorKind::BadInput, err).with_hint(format!(
                    "while rendering stage {} ({})",
                    stage.name, stage.overlay
                )),
            ),
        })
        .collect()
}

fn printed(rendered: &[(&Stage, Vec<Resource>)], headers: bool) -> String {
    let mut text = String::new();
    for (i, (stage, resources)) in rendered.iter().enumerate() {
        if headers {
            if i > 0 {
                text.push_str("---\n");
            }
            let _ = writeln!(text, "# stage: {}", stage.name);
        }
        text.push_str(&overlay::to_yaml(resources));
    }
    text
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
