//! Remote bases: kustomizations in git repositories, named by URL in `resources:` (or
//! `bases:`) and `components:`. The renderer does not run git itself: a [`RemoteFetcher`] (the
//! git store's cache) resolves the URL's ref and hands back a checkout, which is then built as
//! kustomize builds a clone — files only from the kustomization's own directory, bases only from
//! inside the repository — under the same load rule as every other file.
//!
//! Whether an unpinned ref (a branch, or none: the default branch) is acceptable is the
//! caller's choice ([`Unpinned`]): a promotion must be reproducible, a local build may follow
//! a branch.

mod url;

use std::path::PathBuf;
use std::time::Duration;

pub use url::{DEFAULT_TIMEOUT, RemoteSpec, parse};

use super::build_metadata::Origin;
use super::error::RenderError;
use super::kustomization::{Kustomization, Warning};
use super::loader::{LoadRestriction, Loader, join};
use super::source::{DirSource, EntryKind};
use super::target::{Accumulated, Builder};

/// A repository to fetch, as a remote base names it.
#[derive(Debug, Clone, Copy)]
pub struct RemoteRepo<'a> {
    /// What `git clone` is given.
    pub url: &'a str,
    /// A tag, branch or commit; empty for the default branch.
    pub reference: &'a str,
    /// How long fetching may take.
    pub timeout: Duration,
    /// Whether submodules are checked out too.
    pub submodules: bool,
}

/// What a remote base's ref names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefKind {
    /// A full commit id.
    Commit,
    /// A tag.
    Tag,
    /// A branch: where it points changes.
    Branch,
    /// No ref: the repository's default branch.
    DefaultBranch,
}

impl RefKind {
    /// Whether the ref names the same files tomorrow: a commit, or a tag.
    pub fn is_pinned(self) -> bool {
        matches!(self, RefKind::Commit | RefKind::Tag)
    }
}

/// A remote ref, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub kind: RefKind,
    /// The commit, when known without fetching.
    pub commit: Option<String>,
    /// What to fetch: a full ref name (`refs/tags/v1`), `HEAD` or a commit id.
    pub fetch: String,
}

/// Files of a remote repository at one commit, on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkout {
    pub dir: PathBuf,
    pub commit: String,
}

/// Why a fetch failed (the fetcher's own error).
pub type FetchError = Box<dyn std::error::Error + Send + Sync>;

/// Fetches remote bases: the git store implements it with a cache on disk.
pub trait RemoteFetcher: Send + Sync {
    /// What `repo.reference` names in the repository.
    fn resolve(&self, repo: &RemoteRepo<'_>) -> Result<Resolved, FetchError>;
    /// A checkout of what `resolved` names.
    fn checkout(&self, repo: &RemoteRepo<'_>, resolved: &Resolved) -> Result<Checkout, FetchError>;
}

/// What to do with a remote base whose ref is not pinned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unpinned {
    /// Refuse the build: it would not be reproducible.
    Refuse,
    /// Build it, with a warning.
    Warn,
}

/// How a build fetches remote bases.
#[derive(Clone, Copy)]
pub struct Remotes<'a> {
    pub fetcher: &'a dyn RemoteFetcher,
    pub unpinned: Unpinned,
}

impl std::fmt::Debug for Remotes<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remotes")
            .field("unpinned", &self.unpinned)
            .finish_non_exhaustive()
    }
}

/// Where a remote base was named: the kustomization file and the line of its field.
struct Named<'k> {
    kustomization: &'k Kustomization,
    line: usize,
}

impl Builder<'_> {
    /// `entry` of `k` (in `dir`) as a remote base, or `None` when it is a local path. A file
    /// of that name wins, as kustomize reads an entry as a file first.
    pub(in crate::overlay) fn remote_entry(
        &self,
        k: &Kustomization,
        dir: &str,
        field: &str,
        entry: &str,
    ) -> Result<Option<RemoteSpec>, RenderError> {
        let Some(parsed) = parse(entry) else {
            return Ok(None);
        };
        let local_file = join(dir, entry)
            .ok()
            .and_then(|path| self.loader.source.entry(&path).ok().flatten());
        if local_file == Some(EntryKind::File) {
            return Ok(None);
        }
        parsed
            .map(Some)
            .map_err(|reason| RenderError::InvalidRemote {
                path: k.path.clone(),
                line: line_of(k, field),
                url: entry.to_string(),
                reason,
            })
    }

    /// Builds the remote base `spec`, named in `field` of `k`: a kustomization, or, given the
    /// objects so far (`component`), a component applied to them.
    pub(in crate::overlay) fn remote_base(
        &mut self,
        k: &Kustomization,
        field: &str,
        spec: &RemoteSpec,
        component: Option<Accumulated>,
    ) -> Result<Accumulated, RenderError> {
        let named = Named {
            kustomization: k,
            line: line_of(k, field),
        };
        let checkout = self.fetch(&named, spec)?;
        let key = format!(
            "remote\0{}\0{}\0{}",
            spec.clone_url, checkout.commit, spec.path
        );
        let shareable = component.is_none() && self.origin.is_none() && !self.schema_set;
        if shareable && let Some(built) = self.shared.get(&key) {
            return Ok(built);
        }
        let source = DirSource::new(&checkout.dir);
        let in_remote = |source: RenderError| RenderError::InRemote {
            path: k.path.clone(),
            line: named.line,
            url: spec.raw.clone(),
            source: Box::new(source),
        };
        let mut remote = self.for_repository(
            Loader {
                source: &source,
                // kustomize never lets a clone's files escape the kustomization's directory.
                restriction: LoadRestriction::KustomizationDir,
            },
            spec,
        );
        let built = remote.build_remote(spec, component).map_err(in_remote);
        self.schema_set = remote.schema_set;
        let warnings = std::mem::take(&mut remote.warnings);
        self.warnings.extend(warnings.into_iter().map(|w| Warning {
            path: format!("{} ({})", w.path, spec.raw),
            ..w
        }));
        let built = built?;
        if shareable && !self.schema_set {
            self.shared.insert(&key, &built);
        }
        Ok(built)
    }

    /// Resolves and checks out `spec`, applying the pinning rule.
    fn fetch(&mut self, named: &Named<'_>, spec: &RemoteSpec) -> Result<Checkout, RenderError> {
        let k = named.kustomization;
        let url = || spec.raw.clone();
        let Some(remotes) = self.remotes else {
            return Err(RenderError::RemoteDisabled {
                path: k.path.clone(),
                line: named.line,
                url: url(),
            });
        };
        if self
            .repositories
            .iter()
            .any(|raw| raw.starts_with(&spec.raw))
        {
            let mut chain = self.repositories.clone();
            chain.push(spec.raw.clone());
            return Err(RenderError::Cycle { chain });
        }
        if spec.forced_git {
            self.warn(
                named,
                format!(
                    "remote base `{}`: the `git::` prefix is ignored, as kustomize ignores it; \
                     remove it",
                    spec.raw
                ),
            );
        }
        let repo = RemoteRepo {
            url: &spec.clone_url,
            reference: &spec.reference,
            timeout: spec.timeout,
            submodules: spec.submodules,
        };
        let unpinned = |kind: RefKind| RenderError::Unpinned {
            path: k.path.clone(),
            line: named.line,
            url: url(),
            what: describe(kind, &spec.reference),
        };
        // Without a ref nothing needs asking: refused before any network access.
        if spec.reference.is_empty() && remotes.unpinned == Unpinned::Refuse {
            return Err(unpinned(RefKind::DefaultBranch));
        }
        let failed = |source: FetchError| RenderError::Fetch {
            path: k.path.clone(),
            line: named.line,
            url: url(),
            source,
        };
        let resolved = remotes.fetcher.resolve(&repo).map_err(failed)?;
        if !resolved.kind.is_pinned() {
            if remotes.unpinned == Unpinned::Refuse {
                return Err(unpinned(resolved.kind));
            }
            self.warn(
                named,
                format!(
                    "remote base `{}` is not pinned ({}): a promotion refuses it; pin it with \
                     `?ref=` and a tag or a full commit id",
                    spec.raw,
                    describe(resolved.kind, &spec.reference)
                ),
            );
        }
        remotes.fetcher.checkout(&repo, &resolved).map_err(failed)
    }

    fn warn(&mut self, named: &Named<'_>, message: String) {
        self.warnings.push(Warning {
            path: named.kustomization.path.clone(),
            line: named.line,
            message,
        });
    }

    /// Builds the kustomization (or applies the component) at the spec's path of the
    /// repository this builder reads.
    fn build_remote(
        &mut self,
        spec: &RemoteSpec,
        component: Option<Accumulated>,
    ) -> Result<Accumulated, RenderError> {
        let referrer = "the remote base's URL";
        let dir = self.loader.resolve("", &spec.path, referrer)?;
        if self.loader.entry(&dir)? != Some(EntryKind::Dir) {
            return Err(RenderError::NotFound {
                path: super::loader::display(&dir).to_string(),
                referrer: referrer.to_string(),
            });
        }
        self.start_at(&dir);
        match component {
            None => self.build_dir(&dir).map(|(_, built)| built),
            Some(acc) => {
                let component = self.load(&dir)?;
                self.set_schema(&component, &dir)?;
                if !component.is_component {
                    return Err(RenderError::Kustomization {
                        dir: super::loader::display(&dir).to_string(),
                        problem: "expected kind 'Component'".into(),
                    });
                }
                self.accumulate(&component, &dir, acc)
            }
        }
    }
}

/// Where a remote base's objects come from, for `buildMetadata` origins.
pub(in crate::overlay) fn origin(spec: &RemoteSpec) -> Origin {
    Origin {
        path: spec.path.clone(),
        repo: spec.clone_url.clone(),
        reference: spec.reference.clone(),
    }
}

fn line_of(k: &Kustomization, field: &str) -> usize {
    k.lines.get(field).copied().unwrap_or(1)
}

/// What an unpinned ref is, for messages.
fn describe(kind: RefKind, reference: &str) -> String {
    match kind {
        RefKind::Commit => format!("commit {reference}"),
        RefKind::Tag => format!("tag {reference}"),
        RefKind::Branch => format!("`{reference}` is a branch"),
        RefKind::DefaultBranch => "no `?ref=`: the default branch".to_string(),
    }
}
