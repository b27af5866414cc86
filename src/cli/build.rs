//! `ferry build`: a kustomize-compatible build of one directory, printed to stdout.

use std::io::Write;
use std::path::{Component, Path, PathBuf};

use clap::Args;

use crate::gitstore::RemoteBases;
use crate::overlay::{
    self, BuildOptions, DirSource, LoadRestriction, RemoteFetcher, Remotes, Unpinned, Warning,
};

use super::{CliError, ErrorKind, find_repo_root};

/// Build a kustomization directory and print its manifests, like `kustomize build DIR`
///
/// Files may be read from anywhere in the git repository containing DIR; outside a
/// repository, kustomize's default load restriction applies (files in or below each
/// kustomization's own directory). Remote bases (git URLs) are fetched once into
/// $XDG_CACHE_HOME/ferry/remote-bases (~/.cache/ferry/remote-bases); one that names a branch,
/// or no ref, is built with a warning, since a promotion refuses it.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The directory holding the kustomization
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

pub fn run(args: BuildArgs) -> Result<(), CliError> {
    let dir = std::fs::canonicalize(&args.dir)
        .map_err(|err| CliError::bad_input(format!("{}: {err}", args.dir.display())))?;
    if !dir.is_dir() {
        return Err(CliError::bad_input(format!(
            "{}: not a directory",
            args.dir.display()
        )));
    }
    let (root, restriction) = match find_repo_root(&dir) {
        Some(root) => (root, LoadRestriction::SourceRoot),
        None => (PathBuf::from("/"), LoadRestriction::KustomizationDir),
    };
    let relative = relative_path(&dir, &root);
    let outside_repository = restriction == LoadRestriction::KustomizationDir;
    let source = DirSource::new(root);
    let cache = remote_cache().map(RemoteBases::new);
    let options = BuildOptions {
        restriction,
        remotes: remotes(cache.as_ref(), Unpinned::Warn),
    };
    let build = overlay::build_options(&source, &relative, options).map_err(|err| {
        let err = if outside_repository {
            err.with_root("")
        } else {
            err
        };
        CliError::from_error(ErrorKind::BadInput, err)
    })?;
    let root = if outside_repository { "/" } else { "" };
    warn(&build.warnings, root);
    write_stdout(&overlay::to_yaml(&build.resources))
}

/// Where remote bases are cached: `$XDG_CACHE_HOME/ferry/remote-bases`, else
/// `~/.cache/ferry/remote-bases`; `None` (remote bases refused) when neither is set.
pub(super) fn remote_cache() -> Option<PathBuf> {
    let absolute = |var: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .filter(|path| path.is_absolute())
    };
    let base =
        absolute("XDG_CACHE_HOME").or_else(|| absolute("HOME").map(|home| home.join(".cache")))?;
    Some(base.join("ferry").join("remote-bases"))
}

/// How a build fetches remote bases with `cache`.
pub(super) fn remotes(cache: Option<&RemoteBases>, unpinned: Unpinned) -> Option<Remotes<'_>> {
    cache.map(|fetcher| Remotes {
        fetcher: fetcher as &dyn RemoteFetcher,
        unpinned,
    })
}

/// Prints the renderer's warnings on stderr, paths prefixed by `root` (`""` for none).
pub(super) fn warn(warnings: &[Warning], root: &str) {
    for warning in warnings {
        eprintln!("warning: {root}{warning}");
    }
}

/// `dir` relative to `root`, with `/` separators (`""` for the root itself).
pub(super) fn relative_path(dir: &Path, root: &Path) -> String {
    let relative = dir.strip_prefix(root).unwrap_or(dir);
    let parts: Vec<String> = relative
        .components()
        .filter_map(|c| match c {
            Component::Normal(part) => Some(part.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    parts.join("/")
}

/// Writes `text` to stdout; a closed pipe is not an error.
pub(super) fn write_stdout(text: &str) -> Result<(), CliError> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(CliError::failed(format!("failed to write output: {err}")))
        }
        _ => Ok(()),
    }
}
