//! The kustomize-compatible renderer: builds a kustomization read from a [`FileSource`] (a
//! directory or a git tree) into the same objects, in the same order and printed the same way,
//! as `kustomize build` (v5). json-patch is used only here.
//!
//! The pipeline of a build follows kustomize's: resources (files and nested kustomizations),
//! generators, components, then the built-in transformers in kustomize's fixed order; at the
//! top, hash suffixes, name references, legacy ordering and clean-up. See
//! `docs/rendering.md` for what is supported.

mod bounds;
mod build_metadata;
mod config;
mod error;
mod fieldspec;
mod generator;
mod hash;
mod images;
mod kustomization;
mod layered;
mod loader;
mod namereference;
mod order;
mod patch;
mod pattern;
mod plugin;
mod remote;
mod replacement;
mod resid;
mod resmap;
mod resource;
mod schema;
mod smp;
mod source;
mod target;
mod transform;
mod transformer_config;
mod value_add;
mod vars;
mod yaml;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering as AtomicOrdering};

pub use error::{PatchFailure, Position, RenderError};
pub use images::{ImageOverride, apply_images};
pub use kustomization::Warning;
pub use layered::LayeredSource;
pub use loader::LoadRestriction;
pub use remote::{
    Checkout, DEFAULT_TIMEOUT, FetchError, RefKind, RemoteFetcher, RemoteRepo, Remotes, Resolved,
    Unpinned,
};
pub use resource::Resource;
pub use source::{DirSource, EntryKind, FileSource, MAX_FILE_BYTES, check_size};

/// What a build made: the objects, and warnings about what kustomize accepts but should be
/// fixed in the kustomizations read (for the caller to show).
#[derive(Debug, Clone)]
pub struct Build {
    pub resources: Vec<Resource>,
    pub warnings: Vec<Warning>,
}

/// Builds the kustomization in `dir` (a normalized path relative to the source root, `""` for
/// the root itself), reading any file inside the source.
pub fn build(source: &dyn FileSource, dir: &str) -> Result<Vec<Resource>, RenderError> {
    build_with(source, dir, LoadRestriction::SourceRoot)
}

/// Builds the kustomization in `dir` under an explicit load restriction.
pub fn build_with(
    source: &dyn FileSource,
    dir: &str,
    restriction: LoadRestriction,
) -> Result<Vec<Resource>, RenderError> {
    build_reporting(source, dir, restriction).map(|build| build.resources)
}

/// [`build_with`], with the warnings about the kustomizations read.
pub fn build_reporting(
    source: &dyn FileSource,
    dir: &str,
    restriction: LoadRestriction,
) -> Result<Build, RenderError> {
    let options = BuildOptions {
        restriction,
        remotes: None,
    };
    build_options(source, dir, options)
}

/// How a build reads: which files a kustomization may read, and whether and how remote bases
/// are fetched (by default they are refused).
#[derive(Debug, Clone, Copy, Default)]
pub struct BuildOptions<'a> {
    pub restriction: LoadRestriction,
    pub remotes: Option<Remotes<'a>>,
}

/// Builds the kustomization in `dir` with `options`, reporting warnings.
pub fn build_options(
    source: &dyn FileSource,
    dir: &str,
    options: BuildOptions<'_>,
) -> Result<Build, RenderError> {
    build_shared(source, dir, options, &target::Shared::default())
}

/// The stack of each thread of [`build_all`].
const WORKER_STACK: usize = 8 * 1024 * 1024;

/// Builds the kustomizations in each of `dirs`, on all cores, sharing the kustomizations they
/// have in common (a base under several overlays is built once). Results keep the order of
/// `dirs`; each is what [`build`] returns for that directory.
pub fn build_all(
    source: &dyn FileSource,
    dirs: &[&str],
) -> Vec<Result<Vec<Resource>, RenderError>> {
    build_all_reporting(source, dirs)
        .into_iter()
        .map(|result| result.map(|build| build.resources))
        .collect()
}

/// [`build_all`], with the warnings about the kustomizations each build read (a kustomization
/// shared by several builds is read, and warned about, once).
pub fn build_all_reporting(
    source: &dyn FileSource,
    dirs: &[&str],
) -> Vec<Result<Build, RenderError>> {
    build_all_options(source, dirs, BuildOptions::default())
}

/// [`build_all_reporting`] with `options`.
pub fn build_all_options(
    source: &dyn FileSource,
    dirs: &[&str],
    options: BuildOptions<'_>,
) -> Vec<Result<Build, RenderError>> {
    let mut results = Vec::with_capacity(dirs.len());
    build_each(
        source,
        dirs,
        options,
        |_, result| result,
        |_, result| {
            results.push(result);
            true
        },
    );
    results
}

/// Builds the kustomizations in each of `dirs` as [`build_all_options`] does, on all cores,
/// and hands each result to `sink` in the order of `dirs` as soon as it and those before it
/// are done, after turning it into what the caller keeps with `map` (on the worker that built
/// it: printing it there keeps only text, not objects, waiting for its turn). Stops early
/// when `sink` returns `false`.
pub fn build_each<T: Send>(
    source: &dyn FileSource,
    dirs: &[&str],
    options: BuildOptions<'_>,
    map: impl Fn(usize, Result<Build, RenderError>) -> T + Sync,
    mut sink: impl FnMut(usize, T) -> bool,
) {
    let shared = target::Shared::default();
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .clamp(1, dirs.len().max(1));
    let (done, finished) = std::sync::mpsc::channel::<(usize, T)>();
    std::thread::scope(|scope| {
        let work = |done: std::sync::mpsc::Sender<(usize, T)>| loop {
            let index = next.fetch_add(1, AtomicOrdering::Relaxed);
            let Some(dir) = dirs.get(index) else {
                return;
            };
            if stop.load(AtomicOrdering::Relaxed) {
                return;
            }
            let built = map(index, build_shared(source, dir, options, &shared));
            if done.send((index, built)).is_err() {
                return;
            }
        };
        for _ in 0..threads {
            let done = done.clone();
            // As much stack as the main thread has, for the deepest inputs the bounds allow.
            let spawned = std::thread::Builder::new()
                .stack_size(WORKER_STACK)
                .spawn_scoped(scope, move || work(done));
            if spawned.is_err() {
                break;
            }
        }
        drop(done);
        let mut waiting = std::collections::BTreeMap::new();
        let mut turn = 0;
        for (index, built) in finished.iter() {
            waiting.insert(index, built);
            while let Some(built) = waiting.remove(&turn) {
                if !sink(turn, built) {
                    stop.store(true, AtomicOrdering::Relaxed);
                    return;
                }
                turn += 1;
            }
        }
        // Every worker is gone: one that stopped early (or could not start) left gaps, which
        // are built here.
        while let Some(dir) = dirs.get(turn) {
            let built = match waiting.remove(&turn) {
                Some(built) => built,
                None => map(turn, build_shared(source, dir, options, &shared)),
            };
            if !sink(turn, built) {
                return;
            }
            turn += 1;
        }
    });
}

fn build_shared(
    source: &dyn FileSource,
    dir: &str,
    options: BuildOptions<'_>,
    shared: &target::Shared,
) -> Result<Build, RenderError> {
    let loader = loader::Loader {
        source,
        restriction: options.restriction,
    };
    let dir = loader::join("", dir).map_err(|reason| RenderError::Restricted {
        path: dir.to_string(),
        referrer: "the build request".to_string(),
        reason,
    })?;
    let real = loader.resolve("", &dir, "the build request")?;
    let (resources, warnings) = target::build(loader, &real, shared, options.remotes)?;
    Ok(Build {
        resources,
        warnings,
    })
}

/// The resources as one multi-document YAML stream, exactly as `kustomize build` prints it.
pub fn to_yaml(resources: &[Resource]) -> String {
    let mut out = String::new();
    for (i, resource) in resources.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        yaml::emit::write_document(resource.value(), &mut out);
    }
    out
}

/// One resource as a YAML document, formatted as in [`to_yaml`] (without a separator).
pub fn resource_yaml(resource: &Resource) -> String {
    yaml::emit::document(resource.value())
}
