//! Pushing an output branch to a remote and fetching it back with `git` (as the cache of remote
//! bases does), which brings the user's transports, credentials and hooks along.

use std::process::{Command, Output};

use super::{GitStore, GitStoreError, branch_ref, parse_commit_id, remote_ref, validate_remote};

/// What [`GitStore::fast_forward`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FastForward {
    /// The local branch already was at the remote's tip (or either does not exist).
    UpToDate,
    /// The local branch moved forward.
    Moved { from: String, to: String },
    /// The local branch has commits the remote lacks: it was left where it is.
    Diverged { local: String, remote: String },
}

/// What [`GitStore::push`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    /// The remote branch now points at the local branch's tip.
    Pushed,
    /// The remote refused: its branch is not where the lease expected it (someone else pushed
    /// first), or a hook or rule declined. Fetch, rebuild and push again.
    Rejected { reason: String },
}

impl GitStore {
    /// Pushes the tip of the local `branch` to `refs/heads/<branch>` on `remote`, atomically and
    /// only if the remote branch is at `expected_remote_tip` (`None`: it must not exist):
    /// `git push --atomic --force-with-lease=refs/heads/<branch>:<expected> <remote>
    /// <commit>:refs/heads/<branch>`. Never a plain force push.
    pub fn push(
        &self,
        remote: &str,
        branch: &str,
        expected_remote_tip: Option<&str>,
    ) -> Result<PushOutcome, GitStoreError> {
        validate_remote(remote)?;
        let target = branch_ref(branch)?;
        let expected = expected_remote_tip.map(parse_commit_id).transpose()?;
        let Some(commit) = self.branch_tip(branch)? else {
            return Err(GitStoreError::NothingToPush {
                remote: remote.into(),
                branch: branch.into(),
            });
        };
        let lease = format!(
            "--force-with-lease={target}:{}",
            expected.map(|id| id.to_string()).unwrap_or_default()
        );
        let refspec = format!("{commit}:{target}");
        let args = ["push", "--porcelain", "--atomic", &lease, remote, &refspec];
        let output = self.git("push", remote, &args)?;
        if output.status.success() {
            // git updates the tracking ref itself only for remotes with a matching fetch refspec.
            let commit = parse_commit_id(&commit)?;
            self.set_tracking_ref(&remote_ref(remote, branch)?, Some(commit))?;
            return Ok(PushOutcome::Pushed);
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        match rejection(&stdout) {
            Some(reason) => Ok(PushOutcome::Rejected { reason }),
            None => Err(remote_error("push", remote, branch, &output)),
        }
    }

    /// Fetches `refs/heads/<branch>` of `remote` into `refs/remotes/<remote>/<branch>` and
    /// returns its tip; `None` (and no tracking ref) when the remote has no such branch.
    pub fn fetch_branch(
        &self,
        remote: &str,
        branch: &str,
    ) -> Result<Option<String>, GitStoreError> {
        let tracking = remote_ref(remote, branch)?;
        let refspec = format!("+refs/heads/{branch}:{tracking}");
        let args = [
            "fetch",
            "--no-tags",
            "--no-write-fetch-head",
            "--quiet",
            remote,
            &refspec,
        ];
        let output = self.git("fetch", remote, &args)?;
        if output.status.success() {
            return self.remote_tip(remote, branch);
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !stderr.contains("couldn't find remote ref") {
            return Err(remote_error("fetch", remote, branch, &output));
        }
        self.set_tracking_ref(&tracking, None)?;
        Ok(None)
    }

    /// Moves the local `branch` forward to its remote-tracking tip
    /// (`refs/remotes/<remote>/<branch>`, as of the last fetch) when that is a fast-forward:
    /// with `git merge --ff-only` when the branch is checked out (so the checkout follows;
    /// local changes it would overwrite make it fail), else as a compare-and-swap of the ref.
    /// A branch with commits of its own is left alone.
    pub fn fast_forward(&self, remote: &str, branch: &str) -> Result<FastForward, GitStoreError> {
        let Some(target) = self.remote_tip(remote, branch)? else {
            return Ok(FastForward::UpToDate);
        };
        let name = branch_ref(branch)?;
        let Some(tip) = self.branch_tip(branch)? else {
            return Ok(FastForward::UpToDate);
        };
        if tip == target {
            return Ok(FastForward::UpToDate);
        }
        let ancestor = self.git(
            "fast-forward",
            remote,
            &["merge-base", "--is-ancestor", &tip, &target],
        )?;
        if !ancestor.status.success() {
            return Ok(FastForward::Diverged {
                local: tip,
                remote: target,
            });
        }
        let checked_out = self.current_branch()?.as_deref() == Some(branch);
        let output = match (&self.workdir, checked_out) {
            (Some(workdir), true) => Command::new("git")
                .arg("--git-dir")
                .arg(&self.git_dir)
                .arg("--work-tree")
                .arg(workdir)
                .current_dir(workdir)
                .args(["merge", "--ff-only", "--quiet", "--no-stat", &target])
                .env("GIT_TERMINAL_PROMPT", "0")
                .env("LC_ALL", "C")
                .output()
                .map_err(|source| GitStoreError::Spawn {
                    action: "fast-forward",
                    remote: remote.to_string(),
                    source,
                })?,
            _ => self.git(
                "fast-forward",
                remote,
                &["update-ref", &name.as_bstr().to_string(), &target, &tip],
            )?,
        };
        if !output.status.success() {
            return Err(remote_error("fast-forward", remote, branch, &output));
        }
        Ok(FastForward::Moved {
            from: tip,
            to: target,
        })
    }

    /// Runs `git` on this repository with `args`, without prompts, in the C locale.
    /// The names of the repository's remotes.
    pub fn remotes(&self) -> Result<Vec<String>, GitStoreError> {
        let output = self.git("list remotes", "", &["remote"])?;
        if !output.status.success() {
            return Err(remote_error("list remotes", "", "", &output));
        }
        Ok(String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect())
    }

    fn git(
        &self,
        action: &'static str,
        remote: &str,
        args: &[&str],
    ) -> Result<Output, GitStoreError> {
        Command::new("git")
            .arg("--git-dir")
            .arg(&self.git_dir)
            .args(args)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("LC_ALL", "C")
            .output()
            .map_err(|source| GitStoreError::Spawn {
                action,
                remote: remote.to_string(),
                source,
            })
    }
}

/// The reason of a rejected ref in `git push --porcelain` output: a line
/// `!<TAB><from>:<to><TAB><summary> (<reason>)`.
fn rejection(porcelain: &str) -> Option<String> {
    porcelain.lines().find_map(|line| {
        let rest = line.strip_prefix("!\t")?;
        let summary = rest.split_once('\t').map_or(rest, |(_, summary)| summary);
        Some(summary.trim().to_string())
    })
}

fn remote_error(
    action: &'static str,
    remote: &str,
    branch: &str,
    output: &Output,
) -> GitStoreError {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stderr = stderr.trim();
    let stderr = if stderr.is_empty() {
        format!("git exited with {}", output.status)
    } else {
        stderr.to_string()
    };
    GitStoreError::Remote {
        action,
        remote: remote.into(),
        branch: branch.into(),
        stderr,
    }
}

#[cfg(test)]
mod tests;
