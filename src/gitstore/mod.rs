//! Reading trees and blobs, writing stage commits, compare-and-swap ref updates and pushes.
//! gix is used only here.
//!
//! ferry never touches the source branch, the index or the working tree: it reads trees
//! straight from the object database and writes only the output branches it is asked to
//! (`refs/heads/env/<stage>`-style), through object writes and a compare-and-swap ref update.
//! Only [`GitStore::push`], [`GitStore::fetch_branch`] and the cache of remote bases
//! ([`RemoteBases`]) run the `git` program.
//!
//! Writing a stage's output when the branch is also pushed to a remote, until it succeeds:
//! 1. [`fetch_branch`](GitStore::fetch_branch) gives the remote tip `R` (`None`: no branch yet);
//! 2. when `R` is `Some` and the local branch is elsewhere, [`reset_branch`](GitStore::reset_branch)
//!    it to `R` (a commit with this promotion's trailer may already be there:
//!    [`find_commit_with_trailer`](GitStore::find_commit_with_trailer));
//! 3. [`write_commit`](GitStore::write_commit) on the local tip;
//! 4. [`push`](GitStore::push) with `R` as the expected remote tip; on
//!    [`PushOutcome::Rejected`] start over.

mod branch;
mod commit;
mod error;
mod message;
mod remote;
mod remote_base;
mod tree;

#[cfg(test)]
mod test_repo;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use gix::ObjectId;

pub use commit::{CommitInfo, CommitRequest, Signature, WriteOutcome};
pub use error::GitStoreError;
pub use remote::{FastForward, PushOutcome};
pub use remote_base::RemoteBases;
pub use tree::TreeSource;

/// A git repository (normal or bare) that ferry reads from and writes output branches to.
///
/// Cheap to share between threads: every operation works on a thread-local handle of its own.
#[derive(Clone)]
pub struct GitStore {
    repo: gix::ThreadSafeRepository,
    git_dir: PathBuf,
    workdir: Option<PathBuf>,
    remote_bases: Option<Arc<RemoteBases>>,
}

impl std::fmt::Debug for GitStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitStore")
            .field("git_dir", &self.git_dir)
            .finish_non_exhaustive()
    }
}

impl GitStore {
    /// Opens the repository at `repo_dir`: a working tree, its `.git` directory, or a bare
    /// repository.
    pub fn open(repo_dir: &Path) -> Result<GitStore, GitStoreError> {
        let repo =
            gix::ThreadSafeRepository::open(repo_dir).map_err(|source| GitStoreError::Open {
                path: repo_dir.to_path_buf(),
                source,
            })?;
        Ok(GitStore::from_repo(repo))
    }

    /// Opens the repository containing `dir`: `dir` itself or the nearest parent that is one,
    /// as `git` finds it from a working directory.
    pub fn discover(dir: &Path) -> Result<GitStore, GitStoreError> {
        let repo =
            gix::ThreadSafeRepository::discover(dir).map_err(|source| GitStoreError::Open {
                path: dir.to_path_buf(),
                source,
            })?;
        Ok(GitStore::from_repo(repo))
    }

    fn from_repo(repo: gix::ThreadSafeRepository) -> GitStore {
        let git_dir = repo.git_dir().to_path_buf();
        let workdir = repo.work_dir().map(Path::to_path_buf);
        GitStore {
            repo,
            git_dir,
            workdir,
            remote_bases: None,
        }
    }

    /// The same store, fetching the remote bases of the kustomizations it renders into a cache
    /// in `dir` (without one, remote bases are refused).
    pub fn with_remote_cache(mut self, dir: Option<PathBuf>) -> GitStore {
        self.remote_bases = dir.map(|dir| Arc::new(RemoteBases::new(dir)));
        self
    }

    /// The cache of remote bases, if this store has one.
    pub fn remote_bases(&self) -> Option<&RemoteBases> {
        self.remote_bases.as_deref()
    }

    /// The working tree, or `None` for a bare repository.
    pub fn workdir(&self) -> Option<&Path> {
        self.workdir.as_deref()
    }

    /// The `.git` directory (the repository itself when bare).
    pub fn git_dir(&self) -> &Path {
        &self.git_dir
    }

    /// The short name of the branch `HEAD` points to (also when it has no commit yet), `None`
    /// when `HEAD` is detached.
    pub fn current_branch(&self) -> Result<Option<String>, GitStoreError> {
        let repo = self.repo();
        let head = repo
            .head_name()
            .map_err(|source| read_ref_error("HEAD", source))?;
        Ok(head.and_then(|name| {
            name.as_bstr()
                .strip_prefix(b"refs/heads/")
                .map(|s| String::from_utf8_lossy(s).into())
        }))
    }

    /// The full hex id of the commit `rev` names: a branch, tag, hex prefix, `HEAD`, or any
    /// other revision git understands (`main~2`, `v1.0^{commit}`, …).
    pub fn resolve(&self, rev: &str) -> Result<String, GitStoreError> {
        resolve_commit(&self.repo(), rev).map(|id| id.to_string())
    }

    /// The commit `refs/heads/<branch>` points to, if the branch exists.
    pub fn branch_tip(&self, branch: &str) -> Result<Option<String>, GitStoreError> {
        let name = branch_ref(branch)?;
        Ok(ref_target(&self.repo(), name.as_bstr())?.map(|id| id.to_string()))
    }

    /// The commit `refs/remotes/<remote>/<branch>` points to, as of the last fetch or push.
    pub fn remote_tip(&self, remote: &str, branch: &str) -> Result<Option<String>, GitStoreError> {
        let name = remote_ref(remote, branch)?;
        Ok(ref_target(&self.repo(), name.as_bstr())?.map(|id| id.to_string()))
    }

    fn repo(&self) -> gix::Repository {
        self.repo.to_thread_local()
    }
}

/// The commit `rev` names, tags peeled.
fn resolve_commit(repo: &gix::Repository, rev: &str) -> Result<ObjectId, GitStoreError> {
    let id = repo.rev_parse_single(rev).map_err(|source| {
        if source.is_not_found() {
            GitStoreError::UnknownRev {
                rev: rev.to_string(),
                source,
            }
        } else {
            GitStoreError::Resolve {
                rev: rev.to_string(),
                source,
            }
        }
    })?;
    let commit = id
        .object()
        .and_then(|object| object.peel_to_commit())
        .map_err(|source| GitStoreError::Resolve {
            rev: rev.to_string(),
            source,
        })?;
    Ok(commit.id)
}

/// The object a reference points to, peeled to a commit id; `None` when it does not exist.
fn ref_target(
    repo: &gix::Repository,
    name: &gix::bstr::BStr,
) -> Result<Option<ObjectId>, GitStoreError> {
    let reference = repo
        .try_find_reference(name)
        .map_err(|source| read_ref_error(name, source))?;
    reference
        .map(|mut reference| {
            reference
                .peel_to_id()
                .map(|id| id.detach())
                .map_err(|source| read_ref_error(name, source))
        })
        .transpose()
}

fn read_ref_error(name: impl std::fmt::Display, source: gix::Error) -> GitStoreError {
    GitStoreError::ReadRef {
        ref_name: name.to_string(),
        source,
    }
}

/// `refs/heads/<branch>`, validated.
fn branch_ref(branch: &str) -> Result<gix::refs::FullName, GitStoreError> {
    full_ref(format!("refs/heads/{branch}"), branch)
}

/// `refs/remotes/<remote>/<branch>`, validated.
fn remote_ref(remote: &str, branch: &str) -> Result<gix::refs::FullName, GitStoreError> {
    validate_remote(remote)?;
    branch_ref(branch)?;
    full_ref(format!("refs/remotes/{remote}/{branch}"), branch)
}

fn full_ref(name: String, branch: &str) -> Result<gix::refs::FullName, GitStoreError> {
    let invalid = |reason: String| GitStoreError::InvalidBranch {
        branch: branch.into(),
        reason,
    };
    if branch.is_empty() || branch.starts_with('-') || branch == "HEAD" {
        return Err(invalid("not a name git accepts for a branch".into()));
    }
    gix::refs::FullName::try_from(name).map_err(|err| invalid(err.to_string()))
}

/// A remote is named like a configured remote (`origin`): it becomes part of ref names and of
/// `git` command lines, so URLs and option-like names are refused.
fn validate_remote(remote: &str) -> Result<(), GitStoreError> {
    let valid = !remote.is_empty()
        && !remote.starts_with('-')
        && !remote.starts_with('.')
        && remote
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(())
    } else {
        Err(GitStoreError::InvalidRemote {
            remote: remote.to_string(),
        })
    }
}

/// A full hex object id, as given to [`CommitRequest::expected_tip`] or [`GitStore::push`].
fn parse_commit_id(commit: &str) -> Result<ObjectId, GitStoreError> {
    ObjectId::from_hex(commit.as_bytes()).map_err(|_| GitStoreError::InvalidCommitId {
        commit: commit.to_string(),
    })
}

#[cfg(test)]
mod tests;
