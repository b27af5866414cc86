//! Writing one commit to an output branch (tree from a file map, compare-and-swap ref update)
//! and reading commits back.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset, TimeZone};
use gix::ObjectId;
use gix::objs::tree::EntryKind;

use super::branch::expected_tip;
use super::{GitStore, GitStoreError, branch_ref, message, parse_commit_id, ref_target};

/// Who a commit is by: author and committer alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub name: String,
    pub email: String,
}

/// The fallback identity when none is given and git has none configured.
const FALLBACK_NAME: &str = "ferry";
const FALLBACK_EMAIL: &str = "ferry@localhost";

/// One commit to write to an output branch.
#[derive(Debug, Clone)]
pub struct CommitRequest<'a> {
    /// The branch to write, without `refs/heads/` (`env/qa`).
    pub branch: &'a str,
    /// The stage's output: file contents by `/`-separated path relative to `path_prefix`. Every
    /// file gets mode 100644.
    pub files: &'a BTreeMap<String, Vec<u8>>,
    /// `""`: the files are the whole tree. Otherwise the files replace everything under this
    /// directory and the rest of the parent commit's tree is kept.
    pub path_prefix: &'a str,
    /// The message, without trailers.
    pub message: &'a str,
    /// `Key: value` trailers appended after a blank line, in this order.
    pub trailers: &'a [(&'a str, &'a str)],
    /// `None`: git's configured `user.name`/`user.email`, else `ferry <ferry@localhost>`.
    pub author: Option<Signature>,
    /// `Some(None)`: the branch must not exist; `Some(Some(c))`: it must point at commit `c`
    /// (full hex); `None`: build on whatever it points at now.
    pub expected_tip: Option<Option<&'a str>>,
}

/// What [`GitStore::write_commit`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    /// A new commit is the branch's tip; `parent` is the previous tip.
    Committed {
        commit: String,
        parent: Option<String>,
    },
    /// The tree equals the tip's tree: no commit was written.
    Unchanged { tip: String },
    /// The branch is not where the request expected it (or moved while writing); `actual` is
    /// where it is now. Nothing was changed.
    Conflict { actual: Option<String> },
}

/// A commit as [`GitStore::commit_info`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitInfo {
    /// The full hex id.
    pub id: String,
    /// The full hex id of its tree.
    pub tree: String,
    /// Full hex ids of its parents, first parent first.
    pub parents: Vec<String>,
    /// The message without its trailer block and without trailing newlines.
    pub message: String,
    /// The `Key: value` trailers of the message's last paragraph, in order.
    pub trailers: Vec<(String, String)>,
    pub author: Signature,
    /// When it was committed, in the committer's time zone.
    pub time: DateTime<FixedOffset>,
}

impl CommitInfo {
    /// The value of the first trailer named `key` (compared case-insensitively, like git).
    pub fn trailer(&self, key: &str) -> Option<&str> {
        self.trailers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }
}

impl GitStore {
    /// Writes `req.files` as one commit on `req.branch`, whose parent is the branch's tip,
    /// and moves the branch with a compare-and-swap. Touches no other ref, no index and no
    /// working tree; refuses to write a branch that is checked out.
    pub fn write_commit(&self, req: &CommitRequest) -> Result<WriteOutcome, GitStoreError> {
        let ref_name = branch_ref(req.branch)?;
        let message = message::compose(req.message, req.trailers)?;
        let prefix = normalize_prefix(req.path_prefix)?;
        validate_files(req.files)?;
        let repo = self.repo();
        let parent = match expected_tip(&repo, &ref_name, req.expected_tip)? {
            Ok(parent) => parent,
            Err(conflict) => return Ok(conflict),
        };
        let write_error = |source| GitStoreError::WriteObjects {
            branch: req.branch.into(),
            source,
        };
        let parent_tree = parent.map(|id| commit_tree(&repo, id)).transpose()?;
        let tree = build_tree(&repo, parent_tree, &prefix, req.files).map_err(write_error)?;
        if let Some(tip) = parent.filter(|_| parent_tree == Some(tree)) {
            return Ok(WriteOutcome::Unchanged {
                tip: tip.to_string(),
            });
        }
        let signature = signature(&repo, req.author.as_ref());
        let commit = gix::objs::Commit {
            tree,
            parents: parent.into_iter().collect(),
            author: signature.clone(),
            committer: signature.clone(),
            encoding: None,
            message: message.into(),
            extra_headers: Vec::new(),
        };
        let id = repo.write_object(&commit).map_err(write_error)?.detach();
        let summary = req.message.lines().next().unwrap_or_default();
        self.move_branch(&repo, ref_name, parent, id, summary, &signature)
    }

    /// Walks first parents from the tip of `branch`, at most `depth` commits, for one whose
    /// trailer `key` (case-insensitive) has `value`: a promotion that was already written.
    pub fn find_commit_with_trailer(
        &self,
        branch: &str,
        key: &str,
        value: &str,
        depth: usize,
    ) -> Result<Option<String>, GitStoreError> {
        let repo = self.repo();
        let mut next = ref_target(&repo, branch_ref(branch)?.as_bstr())?;
        for _ in 0..depth {
            let Some(id) = next else { break };
            let info = read_commit(&repo, id)?;
            if info
                .trailers
                .iter()
                .any(|(k, v)| k.eq_ignore_ascii_case(key) && v == value)
            {
                return Ok(Some(info.id));
            }
            next = info
                .parents
                .first()
                .map(|p| parse_commit_id(p))
                .transpose()?;
        }
        Ok(None)
    }

    /// The message, trailers, parents, author and time of the commit `commit` names.
    pub fn commit_info(&self, commit: &str) -> Result<CommitInfo, GitStoreError> {
        let repo = self.repo();
        read_commit(&repo, super::resolve_commit(&repo, commit)?)
    }
}

/// The author and committer of a new commit, dated now.
pub(super) fn signature(
    repo: &gix::Repository,
    given: Option<&Signature>,
) -> gix::actor::Signature {
    let time = gix::date::Time::now_local_or_utc();
    if let Some(given) = given {
        return gix::actor::Signature {
            name: given.name.as_str().into(),
            email: given.email.as_str().into(),
            time,
        };
    }
    match repo.author() {
        Some(Ok(author)) => gix::actor::Signature {
            name: author.name.into(),
            email: author.email.into(),
            time,
        },
        _ => gix::actor::Signature {
            name: FALLBACK_NAME.into(),
            email: FALLBACK_EMAIL.into(),
            time,
        },
    }
}

/// The tree of `commit`.
pub(super) fn commit_tree(
    repo: &gix::Repository,
    commit: ObjectId,
) -> Result<ObjectId, GitStoreError> {
    let read_error = |source| GitStoreError::ReadCommit {
        commit: commit.to_string(),
        source,
    };
    let commit = repo.find_commit(commit).map_err(read_error)?;
    commit.tree_id().map(|id| id.detach()).map_err(read_error)
}

/// The tree of the new commit: `files` under `prefix` in `parent_tree`, or `files` alone.
fn build_tree(
    repo: &gix::Repository,
    parent_tree: Option<ObjectId>,
    prefix: &str,
    files: &BTreeMap<String, Vec<u8>>,
) -> Result<ObjectId, gix::Error> {
    let empty = ObjectId::empty_tree(repo.object_hash());
    let base = if prefix.is_empty() {
        empty
    } else {
        parent_tree.unwrap_or(empty)
    };
    let mut editor = repo.edit_tree(base)?;
    if !prefix.is_empty() {
        editor.remove(prefix)?;
    }
    for (path, bytes) in files {
        let blob = repo.write_blob(bytes)?;
        if prefix.is_empty() {
            editor.upsert(path.as_str(), EntryKind::Blob, blob)?;
        } else {
            editor.upsert(format!("{prefix}/{path}"), EntryKind::Blob, blob)?;
        }
    }
    Ok(editor.write()?.detach())
}

/// `prefix` without leading or trailing `/`, its components checked like file paths.
fn normalize_prefix(prefix: &str) -> Result<String, GitStoreError> {
    let prefix = prefix.trim_matches('/');
    if !prefix.is_empty() {
        validate_path(prefix)?;
    }
    Ok(prefix.to_string())
}

/// Every path is relative, normalized, and no file is also a directory of another.
fn validate_files(files: &BTreeMap<String, Vec<u8>>) -> Result<(), GitStoreError> {
    for path in files.keys() {
        validate_path(path)?;
        let mut ancestor = path.as_str();
        while let Some((parent, _)) = ancestor.rsplit_once('/') {
            if files.contains_key(parent) {
                let reason = "a file of that name is also a directory of another file";
                return Err(GitStoreError::InvalidPath {
                    path: parent.to_string(),
                    reason,
                });
            }
            ancestor = parent;
        }
    }
    Ok(())
}

fn validate_path(path: &str) -> Result<(), GitStoreError> {
    let invalid = |reason| GitStoreError::InvalidPath {
        path: path.to_string(),
        reason,
    };
    if path.is_empty() {
        return Err(invalid("it is empty"));
    }
    for component in path.split('/') {
        match component {
            "" => return Err(invalid("it has an empty component or a leading '/'")),
            "." | ".." => return Err(invalid("it has a '.' or '..' component")),
            c if c.eq_ignore_ascii_case(".git") => return Err(invalid("it names a .git entry")),
            c if c.contains('\0') => return Err(invalid("it contains a NUL byte")),
            _ => {}
        }
    }
    Ok(())
}

/// Reads and decodes the commit `id`.
fn read_commit(repo: &gix::Repository, id: ObjectId) -> Result<CommitInfo, GitStoreError> {
    let read_error = |source| GitStoreError::ReadCommit {
        commit: id.to_string(),
        source,
    };
    let commit = repo.find_commit(id).map_err(read_error)?;
    let decoded = commit.decode().map_err(read_error)?;
    let author = decoded.author().map_err(read_error)?;
    let committer = decoded.committer().map_err(read_error)?;
    let time = committer.time().map_err(read_error)?;
    let (message, trailers) = message::parse(&String::from_utf8_lossy(decoded.message));
    Ok(CommitInfo {
        id: id.to_string(),
        tree: decoded.tree().to_string(),
        parents: decoded.parents().map(|p| p.to_string()).collect(),
        message,
        trailers,
        author: Signature {
            name: author.name.to_string(),
            email: author.email.to_string(),
        },
        time: to_chrono(time),
    })
}

fn to_chrono(time: gix::date::Time) -> DateTime<FixedOffset> {
    let offset = FixedOffset::east_opt(time.offset)
        .unwrap_or_else(|| FixedOffset::east_opt(0).expect("zero is a valid offset"));
    offset
        .timestamp_opt(time.seconds, 0)
        .single()
        .unwrap_or_else(|| DateTime::UNIX_EPOCH.with_timezone(&offset))
}

#[cfg(test)]
mod tests;
