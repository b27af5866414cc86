//! `ferry render`: render one stage's overlay, or every stage's, from the working tree or
//! with a revision.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::thread::ScopedJoinHandle;

use clap::Args;

use super::build::write_stdout;
use super::engine::engine_error;
use super::{CliError, Context, ErrorKind};
use crate::gitstore::RemoteBases;
use crate::overlay::{self, BuildOptions, DirSource, Resource, Unpinned};
use crate::pipeline::{self, Config, PipelineError, Stage};
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
    if args.all
        && args.out.is_none()
        && let Some(overlays) = pipeline::listed_overlays(&source)
    {
        let rendered = render_all_while_loading(&source, &overlays, &args);
        overlay::free_in_background(source);
        return rendered;
    }
    let config = Config::load(&source).map_err(config_error)?;
    let stages = selected_stages(&config, args.stage.as_deref())?;
    let rendered = render_streaming(&source, &stages, &args);
    overlay::free_in_background(source);
    rendered
}

fn config_error(err: PipelineError) -> CliError {
    CliError::from_error(ErrorKind::BadInput, err)
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
        let build = result.map_err(|err| render_error(stage, err))?;
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

/// `render --all`, printing: the overlays the pipeline file lists (read quickly, see
/// [`pipeline::listed_overlays`]) are built while the configuration loads on a thread of its
/// own, instead of after it: on a pipeline of 3,000 stages, loading and checking it takes
/// a tenth of the whole render. Nothing is printed before the configuration has loaded and
/// is found to list exactly these overlays, so the output and the errors are those of loading
/// first: a configuration that does not load fails as it always has, and one whose stages
/// differ from the quick read (which never happens with a file the fast reader reads
/// right) is rendered again from its own stages.
fn render_all_while_loading(
    source: &DirSource,
    overlays: &[String],
    args: &RenderArgs,
) -> Result<(), CliError> {
    let dirs: Vec<&str> = overlays.iter().map(String::as_str).collect();
    let cache = super::build::remote_cache().map(RemoteBases::new);
    let options = BuildOptions {
        remotes: super::build::remotes(cache.as_ref(), Unpinned::Warn),
        ..BuildOptions::default()
    };
    // The stage names come with the configuration: the workers print only documents.
    let finish = |_: usize, result: Result<overlay::Build, overlay::RenderError>| {
        result.map(|build| (build.warnings, overlay::to_yaml(&build.resources)))
    };
    std::thread::scope(|scope| {
        // With the stack of the main thread, where the configuration loads otherwise.
        let loading = std::thread::Builder::new()
            .stack_size(overlay::WORKER_STACK)
            .spawn_scoped(scope, || Config::load(source));
        let Ok(loading) = loading else {
            let config = Config::load(source).map_err(config_error)?;
            let stages: Vec<&Stage> = config.pipeline.stages().iter().collect();
            return render_streaming(source, &stages, args);
        };
        let mut printer = Printer::new(loading);
        overlay::build_each(source, &dirs, options, finish, |index, built| {
            printer.waiting.push((index, built));
            match printer.loaded(overlays, false) {
                None => true,
                Some(true) => printer.print_waiting(),
                Some(false) => false,
            }
        });
        if printer.loaded(overlays, true) == Some(true) {
            printer.print_waiting();
        }
        printer.flush();
        if let Some(err) = printer.failure {
            return Err(err);
        }
        match printer.config {
            Some(config) if printer.differs => {
                let stages: Vec<&Stage> = config.pipeline.stages().iter().collect();
                render_streaming(source, &stages, args)
            }
            _ => Ok(()),
        }
    })
}

/// What a worker of [`render_all_while_loading`] made of one stage: its warnings and
/// documents.
type Built = Result<(Vec<overlay::Warning>, String), overlay::RenderError>;

/// Where [`render_all_while_loading`] puts what was built: it waits, in order, for the
/// configuration to load, and is printed once it has (and lists the overlays built).
struct Printer<'scope> {
    loading: Option<ScopedJoinHandle<'scope, Result<Config, PipelineError>>>,
    config: Option<Config>,
    /// Whether the configuration's stages have other overlays than those built.
    differs: bool,
    /// Why nothing more is printed: the configuration does not load, a stage does not
    /// render, or printing failed.
    failure: Option<CliError>,
    /// The stages built, in order, not printed yet.
    waiting: Vec<(usize, Built)>,
    /// Printed stages not written yet: written a few dozen kilobytes at a time, in far fewer
    /// system calls than one a stage (and by a worker holding the turn to deliver results).
    out: String,
    /// Whether writing failed (nothing more is written then).
    unwritable: bool,
}

/// How much printed text [`Printer`] keeps before writing it.
const WRITE_AT: usize = 64 * 1024;

impl<'scope> Printer<'scope> {
    fn new(loading: ScopedJoinHandle<'scope, Result<Config, PipelineError>>) -> Self {
        Printer {
            loading: Some(loading),
            config: None,
            differs: false,
            failure: None,
            waiting: Vec::new(),
            out: String::new(),
            unwritable: false,
        }
    }

    /// Whether what was built can be printed: `None` while the configuration is still loading
    /// (without `block`, which waits for it), then whether it loaded, lists exactly
    /// `overlays`, and nothing failed.
    fn loaded(&mut self, overlays: &[String], block: bool) -> Option<bool> {
        if let Some(thread) = self.loading.take_if(|thread| block || thread.is_finished()) {
            match joined(thread) {
                Ok(config) => {
                    let stages = config.pipeline.stages();
                    self.differs = stages.len() != overlays.len()
                        || stages.iter().zip(overlays).any(|(s, o)| s.overlay != *o);
                    self.config = Some(config);
                }
                Err(err) => self.failure = Some(config_error(err)),
            }
        }
        if self.loading.is_some() {
            return None;
        }
        Some(self.config.is_some() && !self.differs && self.failure.is_none())
    }

    /// Prints the stages waiting, each after its `# stage:` line; `false` at the first that
    /// did not render or could not be printed.
    fn print_waiting(&mut self) -> bool {
        let Some(config) = self.config.take() else {
            return false;
        };
        let mut printed = true;
        for (index, built) in std::mem::take(&mut self.waiting) {
            let stage = &config.pipeline.stages()[index];
            let (warnings, documents) = match built {
                Ok(built) => built,
                Err(err) => {
                    self.failure = Some(render_error(stage, err));
                    printed = false;
                    break;
                }
            };
            if !warnings.is_empty() {
                // Warnings come after the stages before theirs, as when each is written.
                self.flush();
                super::build::warn(&warnings, "");
            }
            self.out.push_str(&stage_header(index, stage, true));
            self.out.push_str(&documents);
            if self.out.len() >= WRITE_AT {
                self.flush();
            }
            if self.failure.is_some() {
                printed = false;
                break;
            }
        }
        self.config = Some(config);
        printed
    }

    /// Writes the stages printed so far (those before a stage that failed to render too),
    /// unless writing already failed.
    fn flush(&mut self) {
        if !self.unwritable
            && !self.out.is_empty()
            && let Err(err) = write_stdout(&self.out)
        {
            self.unwritable = true;
            self.failure.get_or_insert(err);
        }
        self.out.clear();
    }
}

/// The result of a thread, its panic passed on.
fn joined<T>(handle: ScopedJoinHandle<'_, T>) -> T {
    handle
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

fn render_error(stage: &Stage, err: overlay::RenderError) -> CliError {
    CliError::from_error(ErrorKind::BadInput, err).with_hint(format!(
        "while rendering stage {} ({})",
        stage.name, stage.overlay
    ))
}

/// The `# stage: NAME` line before a stage's documents when `headers` (after a `---` but for
/// the first stage); empty otherwise.
fn stage_header(index: usize, stage: &Stage, headers: bool) -> String {
    let mut text = String::new();
    if headers {
        if index > 0 {
            text.push_str("---\n");
        }
        let _ = writeln!(text, "# stage: {}", stage.name);
    }
    text
}

/// One stage's documents as printed, after a `# stage: NAME` header when `headers`.
fn stage_text(index: usize, stage: &Stage, resources: &[Resource], headers: bool) -> String {
    let mut text = stage_header(index, stage, headers);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The example repository's configuration, loading on a thread as
    /// [`render_all_while_loading`] loads it, seen by a printer of builds of `overlays`.
    fn loaded_for(overlays: &[&str]) -> (Option<bool>, bool) {
        let source = DirSource::new(env!("CARGO_MANIFEST_DIR"));
        let overlays: Vec<String> = overlays.iter().map(|o| o.to_string()).collect();
        std::thread::scope(|scope| {
            let mut printer = Printer::new(scope.spawn(|| Config::load(&source)));
            (printer.loaded(&overlays, true), printer.differs)
        })
    }

    #[test]
    fn builds_are_printed_only_for_the_overlays_the_configuration_has() {
        let all = ["environments/dev", "environments/qa", "environments/prod"];
        assert_eq!(loaded_for(&all), (Some(true), false));
        // Other overlays, fewer, or the same in another order: built for nothing.
        for other in [
            &["environments/dev", "environments/qa", "environments/qa"][..],
            &["environments/dev", "environments/qa"],
            &["environments/qa", "environments/dev", "environments/prod"],
        ] {
            assert_eq!(loaded_for(other), (Some(false), true), "{other:?}");
        }
    }
}
