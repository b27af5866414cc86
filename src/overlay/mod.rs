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
mod lookup;
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

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering as AtomicOrdering};
use std::sync::{Mutex, PoisonError};

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

/// The texts of `field` in each mapping of the sequence reached from the root of the YAML
/// document `text` through the keys `path`, found by the renderer's fast reader without
/// loading the document; `None` when the text is outside that reader's subset or not shaped
/// so. For a quick look at a file that is loaded and checked fully elsewhere.
pub fn yaml_field_of_each(text: &str, path: &[&str], field: &str) -> Option<Vec<String>> {
    let found = yaml::fast::field_of_each(text, path, field)?;
    Some(
        found
            .into_iter()
            .map(std::borrow::Cow::into_owned)
            .collect(),
    )
}

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
    build_shared(source, dir, options, &target::Shared::none())
}

/// The stack of each thread of [`build_all`]: the main thread's.
pub const WORKER_STACK: usize = 8 * 1024 * 1024;

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
///
/// The calling thread is one of the workers (so it needs the stack of one: the main thread's
/// 8 MiB, as [`WORKER_STACK`]), and whichever worker finishes the result whose turn it is
/// hands it (and any after it already done) to `sink`: no thread waits to be woken for each
/// result.
pub fn build_each<T: Send>(
    source: &dyn FileSource,
    dirs: &[&str],
    options: BuildOptions<'_>,
    map: impl Fn(usize, Result<Build, RenderError>) -> T + Sync,
    sink: impl FnMut(usize, T) -> bool + Send,
) {
    let shared = target::Shared::default();
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let delivery = Mutex::new(Delivery {
        waiting: BTreeMap::new(),
        turn: 0,
        sink,
    });
    let units = work_units(dirs);
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .clamp(1, units.len().max(1));
    let work = || loop {
        let unit = next.fetch_add(1, AtomicOrdering::Relaxed);
        let Some(unit) = units.get(unit) else {
            return;
        };
        for index in unit.clone() {
            if stop.load(AtomicOrdering::Relaxed) {
                return;
            }
            let built = map(index, build_shared(source, dirs[index], options, &shared));
            let mut delivery = delivery.lock().unwrap_or_else(PoisonError::into_inner);
            if !delivery.deliver(index, built) {
                stop.store(true, AtomicOrdering::Relaxed);
                return;
            }
        }
    };
    std::thread::scope(|scope| {
        for _ in 1..threads {
            // As much stack as the main thread has, for the deepest inputs the bounds allow.
            let spawned = std::thread::Builder::new()
                .stack_size(WORKER_STACK)
                .spawn_scoped(scope, work);
            if spawned.is_err() {
                break;
            }
        }
        work();
    });
    // Up to `SHARED_CAPACITY` builds: the caller has every result without waiting for them
    // to be freed.
    free_in_background(shared);
}

/// Drops `cache` (the paths a [`DirSource`] has looked up, the builds [`build_each`] shared)
/// on a thread of its own, or here when no thread can be started: freeing the many small
/// values of a big cache takes milliseconds that the caller, done with it, need not wait
/// for. A process that ends meanwhile leaves the rest to the system.
pub fn free_in_background<T: Send + 'static>(cache: T) {
    // A thread that cannot be started drops its closure, and the cache with it.
    let _ = std::thread::Builder::new()
        .name("free".to_string())
        .spawn(move || drop(cache));
}

/// How many directories one work unit of [`build_each`] holds at most.
const UNIT: usize = 8;

/// The directories of [`build_each`] cut into units of work, each built by one worker: runs
/// of neighbouring directories (`app/dev`, `app/qa`, `app/prod`), which are usually variants
/// of one base. Two workers that started such neighbours at once would both build the base
/// before either could share it; within a unit the second finds it built.
fn work_units(dirs: &[&str]) -> Vec<std::ops::Range<usize>> {
    fn parent(dir: &str) -> Option<&str> {
        dir.trim_end_matches('/').rsplit_once('/').map(|(p, _)| p)
    }
    let mut units: Vec<std::ops::Range<usize>> = Vec::new();
    for (index, dir) in dirs.iter().enumerate() {
        match units.last_mut() {
            Some(unit) if unit.len() < UNIT && parent(dirs[unit.start]) == parent(dir) => {
                unit.end = index + 1;
            }
            _ => units.push(index..index + 1),
        }
    }
    units
}

/// The results of [`build_each`] waiting for their turn, and where they go.
struct Delivery<T, S> {
    waiting: BTreeMap<usize, T>,
    /// The index of the next result for `sink`.
    turn: usize,
    sink: S,
}

impl<T, S: FnMut(usize, T) -> bool> Delivery<T, S> {
    /// Takes result `index` and hands `sink` every result whose turn has come; `false` once
    /// `sink` wants no more. The result `sink` refused is gone, so its turn never comes again
    /// and `sink` is not called after.
    fn deliver(&mut self, index: usize, built: T) -> bool {
        self.waiting.insert(index, built);
        while let Some(built) = self.waiting.remove(&self.turn) {
            if !(self.sink)(self.turn, built) {
                return false;
            }
            self.turn += 1;
        }
        true
    }
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
    let (resources, read) = target::build(loader, &real, shared, options.remotes)?;
    // A kustomization included twice, and not shared, was read (and warned about) twice.
    let mut warnings: Vec<Warning> = Vec::with_capacity(read.len());
    for warning in read {
        if !warnings.contains(&warning) {
            warnings.push(warning);
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_units_are_runs_of_neighbouring_directories() {
        let dirs = [
            "environments/web/dev",
            "environments/web/qa",
            "environments/web/prod/",
            "environments/api/dev",
            "top",
            "other",
            "environments/web/prod",
        ];
        assert_eq!(work_units(&dirs), [0..3, 3..4, 4..6, 6..7]);
        let many: Vec<String> = (0..20).map(|i| format!("apps/a/{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(work_units(&many), [0..UNIT, UNIT..2 * UNIT, 2 * UNIT..20]);
        assert!(work_units(&[]).is_empty());
    }
}
