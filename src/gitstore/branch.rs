//! Moving output branches: the compare-and-swap ref update behind every write, and the guard
//! that never moves a branch checked out in a working tree.

use gix::ObjectId;
use gix::refs::transaction::{Change, LogChange, PreviousValue, RefEdit, RefLog};
use gix::refs::{FullName, Target};

use super::commit::signature;
use super::{GitStore, GitStoreError, WriteOutcome, branch_ref, parse_commit_id, ref_target};

impl GitStore {
    /// Points `branch` at the existing commit `commit` with a compare-and-swap against
    /// `expected_tip` (as in [`CommitRequest::expected_tip`](super::CommitRequest)), e.g. to
    /// rebuild on a remote's tip after [`fetch_branch`](GitStore::fetch_branch).
    /// `Committed { commit, parent }` names the new and the previous tip; `Unchanged` when the
    /// branch already points there.
    pub fn reset_branch(
        &self,
        branch: &str,
        commit: &str,
        expected_tip: Option<Option<&str>>,
    ) -> Result<WriteOutcome, GitStoreError> {
        let ref_name = branch_ref(branch)?;
        let repo = self.repo();
        let new = super::resolve_commit(&repo, commit)?;
        let current = match self::expected_tip(&repo, &ref_name, expected_tip)? {
            Ok(current) => current,
            Err(conflict) => return Ok(conflict),
        };
        if current == Some(new) {
            return Ok(WriteOutcome::Unchanged {
                tip: new.to_string(),
            });
        }
        let signature = signature(&repo, None);
        self.move_branch(
            &repo,
            ref_name,
            current,
            new,
            &format!("reset to {new}"),
            &signature,
        )
    }

    /// Points the remote-tracking ref `name` at `commit` (`None`: deletes it), whatever it
    /// pointed at before: it only mirrors what the remote has.
    pub(super) fn set_tracking_ref(
        &self,
        name: &FullName,
        commit: Option<ObjectId>,
    ) -> Result<(), GitStoreError> {
        let repo = self.repo();
        let change = match commit {
            Some(id) => Change::Update {
                log: LogChange {
                    message: "ferry: remote tip".into(),
                    ..LogChange::default()
                },
                expected: PreviousValue::Any,
                new: Target::Object(id),
            },
            None => Change::Delete {
                expected: PreviousValue::Any,
                log: RefLog::AndReference,
            },
        };
        let edit = RefEdit {
            change,
            name: name.clone(),
            deref: false,
        };
        let signature = signature(&repo, None);
        let mut time = gix::date::parse::TimeBuf::default();
        repo.edit_references_as(Some(edit), Some(signature.to_ref(&mut time)))
            .map(drop)
            .map_err(|source| GitStoreError::UpdateRef {
                ref_name: name.to_string(),
                source,
            })
    }

    /// Moves `name` from `expected` (`None`: it must not exist) to `new` in one ref
    /// transaction, with a reflog entry by `signature`.
    pub(super) fn move_branch(
        &self,
        repo: &gix::Repository,
        name: FullName,
        expected: Option<ObjectId>,
        new: ObjectId,
        summary: &str,
        signature: &gix::actor::Signature,
    ) -> Result<WriteOutcome, GitStoreError> {
        refuse_checked_out(repo, &name)?;
        let edit = update_edit(name.clone(), expected, new, summary);
        let mut time = gix::date::parse::TimeBuf::default();
        match repo.edit_references_as(Some(edit), Some(signature.to_ref(&mut time))) {
            Ok(_) => Ok(WriteOutcome::Committed {
                commit: new.to_string(),
                parent: expected.map(|id| id.to_string()),
            }),
            Err(source) => explain_failed_update(repo, name, expected, source),
        }
    }
}

/// The tip the caller expects `name` at: `Ok(tip)` when the branch is there, `Err(conflict)`
/// when it is elsewhere. `None` for `expected_tip` means: wherever it is now.
pub(super) fn expected_tip(
    repo: &gix::Repository,
    name: &FullName,
    expected_tip: Option<Option<&str>>,
) -> Result<Result<Option<ObjectId>, WriteOutcome>, GitStoreError> {
    let current = ref_target(repo, name.as_bstr())?;
    let expected = match expected_tip {
        None => return Ok(Ok(current)),
        Some(expected) => expected.map(parse_commit_id).transpose()?,
    };
    if current != expected {
        return Ok(Err(WriteOutcome::Conflict {
            actual: current.map(|id| id.to_string()),
        }));
    }
    Ok(Ok(expected))
}

/// The ref edit that moves `name` from `expected` (absent: must not exist) to `new`.
pub(super) fn update_edit(
    name: FullName,
    expected: Option<ObjectId>,
    new: ObjectId,
    summary: &str,
) -> RefEdit {
    let expected = match expected {
        Some(old) => PreviousValue::MustExistAndMatch(Target::Object(old)),
        None => PreviousValue::MustNotExist,
    };
    let log = LogChange {
        mode: RefLog::AndReference,
        force_create_reflog: false,
        message: format!("ferry: {summary}").into(),
    };
    let change = Change::Update {
        log,
        expected,
        new: Target::Object(new),
    };
    RefEdit {
        change,
        name,
        deref: false,
    }
}

/// A failed ref update is a conflict when the branch moved meanwhile, an error otherwise.
pub(super) fn explain_failed_update(
    repo: &gix::Repository,
    name: FullName,
    expected: Option<ObjectId>,
    source: gix::Error,
) -> Result<WriteOutcome, GitStoreError> {
    let actual = ref_target(repo, name.as_bstr())?;
    if actual != expected {
        return Ok(WriteOutcome::Conflict {
            actual: actual.map(|id| id.to_string()),
        });
    }
    Err(GitStoreError::UpdateRef {
        ref_name: name.to_string(),
        source,
    })
}

fn refuse_checked_out(repo: &gix::Repository, name: &FullName) -> Result<(), GitStoreError> {
    let name = name.to_string();
    if checked_out_branches(repo).contains(&name) {
        let branch = name
            .strip_prefix("refs/heads/")
            .unwrap_or(&name)
            .to_string();
        return Err(GitStoreError::BranchCheckedOut { branch });
    }
    Ok(())
}

/// The branches (full ref names) checked out in working trees of this repository: its own
/// `HEAD` when it has a working tree, the main working tree's when this is a linked one, and
/// every linked worktree's.
fn checked_out_branches(repo: &gix::Repository) -> Vec<String> {
    let mut heads = Vec::new();
    if repo.workdir().is_some()
        && let Ok(Some(name)) = repo.head_name()
    {
        heads.push(name.to_string());
    }
    let common = repo.common_dir();
    let mut head_files = Vec::new();
    if common != repo.git_dir() {
        head_files.push(common.join("HEAD"));
    }
    if let Ok(entries) = std::fs::read_dir(common.join("worktrees")) {
        head_files.extend(entries.flatten().map(|entry| entry.path().join("HEAD")));
    }
    for file in head_files {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        if let Some(name) = text.trim().strip_prefix("ref: ") {
            heads.push(name.to_string());
        }
    }
    heads
}
