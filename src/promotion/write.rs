//! Writing: one commit per promotion on the stage's output branch, pushed to the remote
//! with a lease when one is configured.

use std::time::Duration;

use super::PromotionError;
use super::engine::Engine;
use super::record::{Promotion, PromotionState, Verification, keys};
use super::render::Rendered;
use super::revision::Revision;
use super::store::txn_stage;
use crate::gitstore::{CommitRequest, PushOutcome, WriteOutcome};
use crate::pipeline::{Config, Stage, SyncMode};
use crate::state::txn_put_json;

/// How often a conflicting ref update or rejected push is retried.
const WRITE_ATTEMPTS: u32 = 6;

/// What one promotion writes, and where.
struct Output<'a> {
    branch: &'a str,
    /// The output directory inside the branch (`""` = the whole tree).
    prefix: &'a str,
    stage: &'a Stage,
    revision: &'a Revision,
    promotion: &'a Promotion,
    rendered: &'a Rendered,
}

impl Engine {
    /// Writing: one commit on the stage's output branch, pushed when a remote is configured.
    pub(crate) fn write(
        &self,
        config: &Config,
        stage: &Stage,
        revision: &Revision,
        promotion: Promotion,
        cache: &mut Option<Rendered>,
    ) -> Result<Promotion, PromotionError> {
        let rendered = self.rendered(stage, revision, cache)?.clone();
        if promotion.digest.as_deref() != Some(rendered.digest.as_str()) {
            let note = "the rendered content changed since it was checked".to_string();
            return self.advance(&promotion, PromotionState::Checking, Some(note), |_, _| {
                Ok(())
            });
        }
        let output = &config.pipeline.output;
        let branch = output.branch_for(&stage.name);
        let out = Output {
            branch: &branch,
            prefix: &output.path_for(&stage.name),
            stage,
            revision,
            promotion: &promotion,
            rendered: &rendered,
        };
        let commit = match &output.remote {
            None => self.commit_once(&out)?,
            Some(remote) => self.commit_and_push(remote, &out)?,
        };
        let now = self.now();
        // GitOps syncing has nothing to do: it is recorded with Verifying, in one transaction.
        let (passing, state): (&[PromotionState], _) = match stage.sync {
            SyncMode::Gitops => (&[PromotionState::Syncing], PromotionState::Verifying),
            SyncMode::Apply => (&[], PromotionState::Syncing),
        };
        self.advance_through(&promotion, passing, state, None, |p, txn| {
            self.hold(txn, config, stage, &p.id)?;
            p.commit = Some(commit.clone());
            let mut record = txn_stage(txn, &stage.name)?;
            record.current = Some(Verification {
                revision: revision.id.clone(),
                promotion: p.id.clone(),
                commit: commit.clone(),
                at: now,
            });
            record.verified = false;
            txn_put_json(txn, &keys::stage(&stage.name), &record)?;
            Ok(())
        })
    }

    /// Writes the promotion's commit on the output branch (compare-and-swap, retried when the
    /// branch moves).
    fn commit_output(&self, out: &Output) -> Result<String, PromotionError> {
        let (stage, revision, promotion) = (out.stage, out.revision, out.promotion);
        let verb = if promotion.rollback {
            "Roll back"
        } else {
            "Promote"
        };
        let message = format!(
            "{verb} {} to {}\n\nimages: {}\nconfig commit: {}\nsource commit: {}\nrequested by: {}",
            revision.id,
            stage.name,
            revision.images_summary(),
            revision.config_commit,
            out.rendered.source_commit,
            promotion.requested_by
        );
        let trailers = [
            ("Ferry-Stage", stage.name.as_str()),
            ("Ferry-Revision", revision.id.as_str()),
            ("Ferry-Promotion", promotion.id.as_str()),
        ];
        for _ in 0..WRITE_ATTEMPTS {
            let request = CommitRequest {
                branch: out.branch,
                files: &out.rendered.files,
                path_prefix: out.prefix,
                message: &message,
                trailers: &trailers,
                author: None,
                expected_tip: None,
            };
            match self.git.write_commit(&request)? {
                WriteOutcome::Committed { commit, .. } => return Ok(commit),
                WriteOutcome::Unchanged { tip } => return Ok(tip),
                WriteOutcome::Conflict { .. } => continue,
            }
        }
        Err(PromotionError::Contended {
            branch: out.branch.to_string(),
        })
    }

    /// The commit of this promotion on its branch: found (written before a crash) or written
    /// now.
    fn commit_once(&self, out: &Output) -> Result<String, PromotionError> {
        let found = self.git.find_commit_with_trailer(
            out.branch,
            "Ferry-Promotion",
            &out.promotion.id,
            50,
        )?;
        let commit = match found {
            Some(commit) => commit,
            None => self.commit_output(out)?,
        };
        self.step("committed");
        Ok(commit)
    }

    /// Writes the commit on top of the remote's tip and pushes it with a lease; when someone
    /// else pushed first, fetches, rebuilds on their commit and tries again. Never forces.
    fn commit_and_push(&self, remote: &str, out: &Output) -> Result<String, PromotionError> {
        let branch = out.branch;
        let mut delay = Duration::from_millis(100);
        let mut last = String::new();
        let unreachable = |err: crate::gitstore::GitStoreError| PromotionError::Push {
            branch: branch.to_string(),
            remote: remote.to_string(),
            reason: super::reconcile::error_chain(&err),
        };
        for _ in 0..WRITE_ATTEMPTS {
            let remote_tip = self.git.fetch_branch(remote, branch).map_err(unreachable)?;
            self.follow_remote(branch, remote_tip.as_deref(), &out.promotion.id)?;
            let commit = self.commit_once(out)?;
            if remote_tip.as_deref() == Some(commit.as_str()) {
                return Ok(commit);
            }
            match self
                .git
                .push(remote, branch, remote_tip.as_deref())
                .map_err(unreachable)?
            {
                PushOutcome::Pushed => return Ok(commit),
                PushOutcome::Rejected { reason } => last = reason,
            }
            std::thread::sleep(delay);
            delay *= 2;
        }
        Err(PromotionError::Push {
            branch: branch.to_string(),
            remote: remote.to_string(),
            reason: last,
        })
    }
    /// Points the local output branch at the remote's tip, unless it holds this promotion's
    /// commit built on exactly that tip (written before a crash, not pushed yet).
    fn follow_remote(
        &self,
        branch: &str,
        remote_tip: Option<&str>,
        promotion: &str,
    ) -> Result<(), PromotionError> {
        let Some(remote_tip) = remote_tip else {
            return Ok(());
        };
        let local = self.git.branch_tip(branch)?;
        if local.as_deref() == Some(remote_tip) {
            return Ok(());
        }
        if let Some(local) = &local {
            let info = self.git.commit_info(local)?;
            if info.trailer("Ferry-Promotion") == Some(promotion)
                && info.parents.iter().any(|p| p == remote_tip)
            {
                return Ok(());
            }
        }
        self.git
            .reset_branch(branch, remote_tip, Some(local.as_deref()))?;
        Ok(())
    }
}
