//! Read-only views: stage status, plans (what a promotion would change and what blocks it),
//! and the rendered difference between two stages.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::PromotionError;
use super::engine::Engine;
use super::record::{Lock, Promotion, PromotionState, keys};
use super::render::{Rendered, render};
use super::store::{txn_promotion, txn_reviews, txn_revision, txn_stage};
use crate::pipeline::{Config, Stage, SyncMode};
use crate::policy::{Blocker, Note, Review};
use crate::state::{Txn, txn_get_json};

/// The state of a stage: that of its newest promotion, or idle when it never had one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageState {
    Idle,
    Promotion(PromotionState),
}

impl StageState {
    /// `idle` or the promotion state's name.
    pub fn as_str(self) -> &'static str {
        match self {
            StageState::Idle => "idle",
            StageState::Promotion(state) => state.as_str(),
        }
    }
}

impl Serialize for StageState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for StageState {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        if text == "idle" {
            return Ok(StageState::Idle);
        }
        PromotionState::deserialize(serde::de::value::StrDeserializer::<D::Error>::new(&text))
            .map(StageState::Promotion)
    }
}

/// What one stage has now.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageStatus {
    pub name: String,
    /// The revision last written to the stage.
    pub revision: Option<String>,
    pub verified: bool,
    /// The state of the stage's newest promotion, or `idle` when it never had one.
    pub state: StageState,
    pub since: Option<DateTime<Utc>>,
    pub commit: Option<String>,
    pub images: Option<String>,
    pub promotion: Option<String>,
    /// The revision of the newest promotion (what `reviews` are about).
    pub promotion_revision: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blockers: Vec<Blocker>,
    /// Approvals and rejections (not withdrawn) of the unfinished newest promotion's revision.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reviews: Vec<Review>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<Lock>,
    /// The gate results of the newest promotion.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gates: Vec<crate::gates::GateResult>,
    pub upstream: Vec<String>,
}

/// What a promotion would do.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    pub stage: String,
    pub revision: String,
    pub branch: String,
    /// What the stage has now, if anything.
    pub current: Option<String>,
    pub digest: String,
    /// Files added, changed and removed.
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
    /// A unified diff of the rendered manifests against the stage's branch.
    pub diff: String,
    pub blockers: Vec<Blocker>,
    pub notes: Vec<Note>,
    /// For `sync: apply` stages: what a server-side dry run says each object would do.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dry_run: Vec<String>,
}

impl Engine {
    /// Every stage of the pipeline at the source branch, in pipeline order.
    pub fn status(&self, config: &Config) -> Result<Vec<StageStatus>, PromotionError> {
        let (mut out, blocked) = self.recorded_status(config)?;
        for (index, promotion) in blocked {
            if let Some(blockers) = self.current_blockers(config, &promotion) {
                out[index].blockers = blockers;
            }
        }
        Ok(out)
    }

    /// What blocks `promotion` now (time passes, approvals arrive), or `None` when that
    /// cannot be worked out and the recorded reasons have to do.
    pub(crate) fn current_blockers(
        &self,
        config: &Config,
        promotion: &Promotion,
    ) -> Option<Vec<Blocker>> {
        let stage = config.pipeline.stage(&promotion.stage)?;
        let revision = self
            .store()
            .and_then(|s| s.revision(&promotion.revision))
            .ok()?;
        let rendered = render(&self.git, stage, &revision).ok()?;
        let evaluation = self
            .evaluate(config, stage, &revision, promotion, &rendered.digest)
            .ok()?;
        Some(evaluation.blockers)
    }

    /// Every stage as the store records it, and the blocked promotions by index.
    #[allow(clippy::type_complexity, reason = "a private pair of results")]
    fn recorded_status(
        &self,
        config: &Config,
    ) -> Result<(Vec<StageStatus>, Vec<(usize, Promotion)>), PromotionError> {
        // One snapshot for every stage: consistent, and one read instead of several per stage.
        self.store()?.read(|txn| {
            let mut out = Vec::new();
            let mut blocked = Vec::new();
            for stage in config.pipeline.topological() {
                let (status, last) = self.stage_status(txn, stage)?;
                out.push(status);
                if let Some(p) = last.filter(|p| p.state == PromotionState::Blocked) {
                    blocked.push((out.len() - 1, p));
                }
            }
            Ok((out, blocked))
        })
    }

    /// What the store records for `stage`, and its newest promotion.
    fn stage_status(
        &self,
        txn: &mut dyn Txn,
        stage: &Stage,
    ) -> Result<(StageStatus, Option<Promotion>), PromotionError> {
        let record = txn_stage(txn, &stage.name)?;
        let last: Option<Promotion> = record
            .last_promotion
            .as_deref()
            .map(|id| txn_promotion(txn, id))
            .transpose()?;
        let revision = record.current.as_ref().map(|c| c.revision.clone());
        let images = revision
            .as_deref()
            .map(|id| txn_revision(txn, id))
            .transpose()?
            .map(|r| r.images_summary());
        let mut reviews = Vec::new();
        if let Some(p) = last.as_ref().filter(|p| !p.state.is_terminal()) {
            reviews = txn_reviews(txn, &stage.name, &p.revision)?;
            reviews.retain(|r| !r.withdrawn);
        }
        let lock = txn_get_json::<Lock>(txn, &keys::lock(&stage.name))?
            .filter(|l| !super::lock::is_stale(l, self.now(), &self.holder));
        let status = StageStatus {
            name: stage.name.clone(),
            revision,
            verified: record.verified,
            state: last
                .as_ref()
                .map_or(StageState::Idle, |p| StageState::Promotion(p.state)),
            since: last.as_ref().map(Promotion::updated_at),
            commit: record.current.as_ref().map(|c| c.commit.clone()),
            images,
            promotion: last.as_ref().map(|p| p.id.clone()),
            promotion_revision: last.as_ref().map(|p| p.revision.clone()),
            blockers: last
                .as_ref()
                .filter(|p| p.state == PromotionState::Blocked)
                .map(|p| p.blockers.clone())
                .unwrap_or_default(),
            reviews,
            lock,
            gates: last.as_ref().map(|p| p.gates.clone()).unwrap_or_default(),
            upstream: stage.upstream.clone(),
        };
        Ok((status, last))
    }

    /// Promotions, newest first.
    pub fn history(
        &self,
        stage: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Promotion>, PromotionError> {
        self.store()?.promotions(stage, limit)
    }

    /// What promoting `revision` to `stage` would change, and what would block it.
    pub fn plan(&self, revision: &str, stage: &str) -> Result<Plan, PromotionError> {
        let revision = self.store()?.revision(revision)?;
        let config = self.config_for(&revision)?;
        let stage = self.stage(&config, stage)?;
        let rendered = render(&self.git, stage, &revision)?;
        let branch = config.pipeline.output.branch_for(&stage.name);
        let prefix = config.pipeline.output.path_for(&stage.name);
        let current = match self.git.branch_tip(&branch)? {
            Some(tip) => self.git.read_tree_files(&tip, &prefix)?,
            None => Default::default(),
        };
        let record = self.store()?.stage(&stage.name)?;
        let probe =
            super::review::probe_promotion(&stage.name, &revision.id, self.user(), self.now());
        let evaluation = self.evaluate(&config, stage, &revision, &probe, &rendered.digest)?;
        let mut notes = evaluation.notes;
        let dry_run = if stage.sync == SyncMode::Apply {
            self.server_dry_run(stage, &rendered, &mut notes)?
        } else {
            Vec::new()
        };
        let (added, changed, removed, diff) = file_diff(&current, &rendered, &branch);
        Ok(Plan {
            stage: stage.name.clone(),
            revision: revision.id.clone(),
            branch,
            current: record.current.map(|c| c.revision),
            digest: rendered.digest,
            added,
            changed,
            removed,
            diff,
            blockers: evaluation.blockers,
            notes,
            dry_run,
        })
    }

    /// A server-side dry run of `rendered` in the stage's cluster; a cluster that cannot be
    /// reached becomes a note, not an error, so the plan still shows the diff.
    fn server_dry_run(
        &self,
        stage: &Stage,
        rendered: &Rendered,
        notes: &mut Vec<Note>,
    ) -> Result<Vec<String>, PromotionError> {
        let kubeconfig = self.options.kubeconfig.clone();
        let cluster = stage
            .cluster
            .as_ref()
            .map(|c| crate::cluster::resolve_paths(c, &self.repo))
            .transpose();
        let outcome = match cluster {
            Ok(cluster) => self.runtime()?.block_on(crate::cluster::apply(
                &rendered.resources,
                cluster.as_ref(),
                kubeconfig.as_deref(),
                true,
            )),
            Err(err) => Err(err),
        };
        match outcome {
            Ok(results) => Ok(results
                .iter()
                .map(|r| format!("{}: {}", r.object, format!("{:?}", r.action).to_lowercase()))
                .collect()),
            Err(err) => {
                notes.push(Note::DryRunFailed {
                    error: super::reconcile::error_chain(&err),
                });
                Ok(Vec::new())
            }
        }
    }

    /// The rendered difference between what two stages have on their output branches.
    pub fn diff_stages(&self, config: &Config, a: &str, b: &str) -> Result<String, PromotionError> {
        let mut sides = Vec::new();
        for name in [a, b] {
            let stage = self.stage(config, name)?;
            let branch = config.pipeline.output.branch_for(&stage.name);
            let tip = self.git.branch_tip(&branch)?.ok_or_else(|| {
                PromotionError::BadInput(format!("stage {name} has no output yet (no branch {branch}): promote a revision to it first"))
            })?;
            sides.push(
                self.git
                    .read_tree_files(&tip, &config.pipeline.output.path_for(&stage.name))?,
            );
        }
        Ok(unified(&sides[0], &sides[1], a, b))
    }
}

type Files = std::collections::BTreeMap<String, Vec<u8>>;

fn file_diff(
    current: &Files,
    rendered: &Rendered,
    branch: &str,
) -> (Vec<String>, Vec<String>, Vec<String>, String) {
    let added = rendered
        .files
        .keys()
        .filter(|k| !current.contains_key(*k))
        .cloned()
        .collect();
    let removed = current
        .keys()
        .filter(|k| !rendered.files.contains_key(*k))
        .cloned()
        .collect();
    let changed = rendered
        .files
        .iter()
        .filter(|(k, v)| current.get(*k).is_some_and(|c| c != *v))
        .map(|(k, _)| k.clone())
        .collect();
    (
        added,
        changed,
        removed,
        unified(current, &rendered.files, branch, "rendered"),
    )
}

/// A unified diff of two file sets, file by file.
pub(crate) fn unified(old: &Files, new: &Files, old_label: &str, new_label: &str) -> String {
    let mut names: Vec<&String> = old.keys().chain(new.keys()).collect();
    names.sort();
    names.dedup();
    let mut out = String::new();
    for name in names {
        let a = old
            .get(name)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        let b = new
            .get(name)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        if a == b {
            continue;
        }
        let diff = similar::TextDiff::from_lines(&a, &b);
        let text = diff
            .unified_diff()
            .context_radius(3)
            .header(
                &format!("{old_label}/{name}"),
                &format!("{new_label}/{name}"),
            )
            .to_string();
        out.push_str(&text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_states_read_back_what_they_write() {
        for state in [
            StageState::Idle,
            StageState::Promotion(PromotionState::Blocked),
            StageState::Promotion(PromotionState::Succeeded),
        ] {
            let json = serde_json::to_string(&state).expect("encodes");
            let back: StageState = serde_json::from_str(&json).expect("decodes");
            assert_eq!(back, state, "{json}");
        }
        assert!(serde_json::from_str::<StageState>("\"sleeping\"").is_err());
    }
}
