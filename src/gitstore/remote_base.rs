//! Remote bases of kustomizations: git repositories fetched with the `git` program (so the
//! user's transports and credentials work) into a cache on disk, once per repository and
//! commit, and read from there by later builds.
//!
//! The cache holds one checkout per repository URL and commit (`checkouts/<name>-<hash>`),
//! and, for tags, which commit a tag named when it was fetched (`tags/<hash>`): a build with a
//! pinned ref that was fetched before needs no network at all. A branch (or no ref) is asked
//! for with `git ls-remote` once per process and fetched only when it points to a commit not
//! in the cache yet. Concurrent processes are safe: a checkout is made in a temporary
//! directory of the cache and renamed into place, and the first one renamed wins.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::GitStoreError;
use crate::overlay::{Checkout, FetchError, RefKind, RemoteFetcher, RemoteRepo, Resolved};

/// The cache of remote bases in a directory (created when first needed).
#[derive(Debug)]
pub struct RemoteBases {
    cache: PathBuf,
    /// Refs already resolved by this process, by URL and ref.
    resolved: Mutex<HashMap<(String, String), Resolved>>,
}

impl RemoteBases {
    /// A cache in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> RemoteBases {
        RemoteBases {
            cache: dir.into(),
            resolved: Mutex::new(HashMap::new()),
        }
    }

    /// The directory of the cache.
    pub fn dir(&self) -> &Path {
        &self.cache
    }

    fn checkout_dir(&self, url: &str, commit: &str) -> PathBuf {
        let name: String = url
            .trim_end_matches('/')
            .trim_end_matches(".git")
            .rsplit(['/', ':'])
            .next()
            .unwrap_or("")
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            .take(40)
            .collect();
        let name = name.trim_start_matches('.');
        self.cache
            .join("checkouts")
            .join(format!("{name}-{}", key(&[url, commit])))
    }

    fn tag_file(&self, url: &str, tag: &str) -> PathBuf {
        self.cache.join("tags").join(key(&[url, tag]))
    }

    /// The commit a tag named when this cache fetched it.
    fn cached_tag(&self, repo: &RemoteRepo<'_>) -> Option<String> {
        let text = std::fs::read_to_string(self.tag_file(repo.url, repo.reference)).ok()?;
        let commit = text.trim();
        is_commit_id(commit).then(|| commit.to_string())
    }

    fn remember_tag(&self, repo: &RemoteRepo<'_>, commit: &str) -> Result<(), GitStoreError> {
        let path = self.tag_file(repo.url, repo.reference);
        let dir = path.parent().expect("a tag file is inside the cache");
        let failed = |source| GitStoreError::RemoteCache {
            path: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(failed)?;
        let mut file = tempfile::NamedTempFile::new_in(dir).map_err(failed)?;
        std::io::Write::write_all(&mut file, format!("{commit}\n").as_bytes()).map_err(failed)?;
        file.persist(&path).map_err(|err| failed(err.error))?;
        Ok(())
    }

    fn ls_remote(&self, repo: &RemoteRepo<'_>) -> Result<Resolved, GitStoreError> {
        let reference = repo.reference;
        let patterns: Vec<String> = if reference.is_empty() {
            vec!["HEAD".to_string()]
        } else if reference.starts_with("refs/") {
            vec![reference.to_string()]
        } else {
            vec![
                format!("refs/tags/{reference}"),
                format!("refs/heads/{reference}"),
            ]
        };
        let mut args = vec!["ls-remote", "--", repo.url];
        args.extend(patterns.iter().map(String::as_str));
        let deadline = Deadline::after(repo.timeout);
        let listing = run_git(None, &args, repo.url, "list the refs of", deadline)?;
        let refs: HashMap<&str, &str> = listing
            .lines()
            .filter_map(|line| line.split_once('\t'))
            .map(|(id, name)| (name.trim(), id.trim()))
            .collect();
        let found = |name: &str| {
            let peeled = format!("{name}^{{}}");
            refs.get(peeled.as_str())
                .or_else(|| refs.get(name))
                .map(|id| id.to_string())
        };
        let tag = |name: String, commit| Resolved {
            kind: RefKind::Tag,
            commit: Some(commit),
            fetch: name,
        };
        if reference.is_empty() {
            return match found("HEAD") {
                Some(commit) => Ok(Resolved {
                    kind: RefKind::DefaultBranch,
                    commit: Some(commit),
                    fetch: "HEAD".to_string(),
                }),
                None => Err(GitStoreError::UnknownRemoteRef {
                    url: repo.url.to_string(),
                    reference: "HEAD".to_string(),
                    hint: "the repository has no default branch; name a ref with `?ref=`",
                }),
            };
        }
        for name in &patterns {
            if let Some(commit) = found(name) {
                if name.starts_with("refs/tags/") {
                    return Ok(tag(name.clone(), commit));
                }
                return Ok(Resolved {
                    kind: RefKind::Branch,
                    commit: Some(commit),
                    fetch: name.clone(),
                });
            }
        }
        let abbreviated = reference.len() >= 4 && reference.chars().all(|c| c.is_ascii_hexdigit());
        Err(GitStoreError::UnknownRemoteRef {
            url: repo.url.to_string(),
            reference: reference.to_string(),
            hint: if abbreviated {
                "no tag or branch of that name; a commit must be given in full"
            } else {
                "no tag or branch of that name"
            },
        })
    }

    fn fetch(&self, repo: &RemoteRepo<'_>, resolved: &Resolved) -> Result<Checkout, GitStoreError> {
        let deadline = Deadline::after(repo.timeout);
        let failed = |path: &Path| {
            let path = path.to_path_buf();
            move |source| GitStoreError::RemoteCache { path, source }
        };
        std::fs::create_dir_all(self.cache.join("checkouts")).map_err(failed(&self.cache))?;
        let work = tempfile::Builder::new()
            .prefix(".fetch-")
            .tempdir_in(&self.cache)
            .map_err(failed(&self.cache))?;
        let at = Some(work.path());
        let url = repo.url;
        run_git(at, &["init", "--quiet"], url, "fetch", deadline)?;
        let fetch = [
            "fetch",
            "--quiet",
            "--no-tags",
            "--depth=1",
            "--",
            url,
            &resolved.fetch,
        ];
        run_git(at, &fetch, url, "fetch", deadline)?;
        let commit = run_git(
            at,
            &["rev-parse", "--verify", "FETCH_HEAD^{commit}"],
            url,
            "fetch",
            deadline,
        )?
        .trim()
        .to_string();
        let checkout = [
            "-c",
            "advice.detachedHead=false",
            "checkout",
            "--quiet",
            "FETCH_HEAD",
        ];
        run_git(at, &checkout, url, "check out", deadline)?;
        if repo.submodules && work.path().join(".gitmodules").is_file() {
            let update = [
                "submodule",
                "update",
                "--init",
                "--recursive",
                "--depth=1",
                "--quiet",
            ];
            run_git(at, &update, url, "fetch the submodules of", deadline)?;
        }
        let dir = self.checkout_dir(url, &commit);
        match std::fs::rename(work.path(), &dir) {
            Ok(()) => {
                // Renamed into place: nothing left to remove.
                let _ = work.keep();
            }
            // Another process put the same checkout there first; this one is removed.
            Err(_) if dir.is_dir() => {}
            Err(err) => return Err(failed(&dir)(err)),
        }
        if resolved.kind == RefKind::Tag {
            self.remember_tag(repo, &commit)?;
        }
        Ok(Checkout { dir, commit })
    }
}

impl RemoteFetcher for RemoteBases {
    fn resolve(&self, repo: &RemoteRepo<'_>) -> Result<Resolved, FetchError> {
        if is_commit_id(repo.reference) {
            return Ok(Resolved {
                kind: RefKind::Commit,
                commit: Some(repo.reference.to_ascii_lowercase()),
                fetch: repo.reference.to_ascii_lowercase(),
            });
        }
        let memo = (repo.url.to_string(), repo.reference.to_string());
        let lock = || self.resolved.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(known) = lock().get(&memo) {
            return Ok(known.clone());
        }
        let resolved = match self.cached_tag(repo) {
            Some(commit) if !repo.reference.is_empty() => Resolved {
                kind: RefKind::Tag,
                commit: Some(commit),
                fetch: format!(
                    "refs/tags/{}",
                    repo.reference.trim_start_matches("refs/tags/")
                ),
            },
            _ => self.ls_remote(repo)?,
        };
        lock().insert(memo, resolved.clone());
        Ok(resolved)
    }

    fn checkout(&self, repo: &RemoteRepo<'_>, resolved: &Resolved) -> Result<Checkout, FetchError> {
        if let Some(commit) = &resolved.commit {
            let dir = self.checkout_dir(repo.url, commit);
            if dir.is_dir() {
                // The commit was fetched under another name: remember the tag for next time.
                if resolved.kind == RefKind::Tag && self.cached_tag(repo).is_none() {
                    self.remember_tag(repo, commit)?;
                }
                return Ok(Checkout {
                    dir,
                    commit: commit.clone(),
                });
            }
        }
        Ok(self.fetch(repo, resolved)?)
    }
}

/// A full commit id (SHA-1 or SHA-256), in hex.
fn is_commit_id(text: &str) -> bool {
    matches!(text.len(), 40 | 64) && text.chars().all(|c| c.is_ascii_hexdigit())
}

/// A file name for `parts`: 32 hex digits of their SHA-256.
fn key(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    hasher.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// When the git commands of one fetch must have finished.
#[derive(Debug, Clone, Copy)]
struct Deadline {
    at: Instant,
    timeout: Duration,
}

impl Deadline {
    fn after(timeout: Duration) -> Deadline {
        Deadline {
            at: Instant::now() + timeout,
            timeout,
        }
    }
}

/// Runs `git args` (in `dir`, if given) without prompts, in the C locale, and returns its
/// standard output; killed when `deadline` passes.
fn run_git(
    dir: Option<&Path>,
    args: &[&str],
    url: &str,
    action: &'static str,
    deadline: Deadline,
) -> Result<String, GitStoreError> {
    let spawn_failed = |source| GitStoreError::Spawn {
        action,
        remote: url.to_string(),
        source,
    };
    let mut stdout = tempfile::tempfile().map_err(spawn_failed)?;
    let mut stderr = tempfile::tempfile().map_err(spawn_failed)?;
    let mut command = Command::new("git");
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    let mut child = command
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(stdout.try_clone().map_err(spawn_failed)?)
        .stderr(stderr.try_clone().map_err(spawn_failed)?)
        .spawn()
        .map_err(spawn_failed)?;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(spawn_failed)? {
            break status;
        }
        if Instant::now() >= deadline.at {
            let _ = child.kill();
            let _ = child.wait();
            return Err(GitStoreError::RemoteTimeout {
                action,
                url: url.to_string(),
                timeout: deadline.timeout,
            });
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let output = read_all(&mut stdout).map_err(spawn_failed)?;
    if status.success() {
        return Ok(output);
    }
    let message = read_all(&mut stderr).map_err(spawn_failed)?;
    // git's message on one line: a connection error spans several.
    let message = message
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    Err(GitStoreError::RemoteBase {
        action,
        url: url.to_string(),
        stderr: if message.is_empty() {
            format!("git exited with {status}")
        } else {
            message.to_string()
        },
    })
}

fn read_all(file: &mut File) -> std::io::Result<String> {
    file.seek(SeekFrom::Start(0))?;
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkouts_are_named_by_repository_and_commit() {
        let cache = RemoteBases::new("/cache");
        let commit = "0123456789abcdef0123456789abcdef01234567";
        let dir = cache.checkout_dir("https://example.com/org/app.git", commit);
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("");
        assert!(name.starts_with("app-"), "{name}");
        assert_eq!(name.len(), "app-".len() + 32);
        assert_ne!(
            dir,
            cache.checkout_dir("https://example.com/org/other.git", commit)
        );
        assert!(is_commit_id(commit));
        assert!(!is_commit_id("0123456"));
    }
}
