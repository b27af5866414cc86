//! What a long-running service asks of the engine: which stages have work, one stage's due
//! work at a time (so stages proceed in parallel), the next instant something becomes due by
//! time alone, and the record that a service holds the state.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::PromotionError;
use super::engine::Engine;
use super::lock::process_alive;
use super::reconcile::ReconcileAction;
use super::record::Promotion;
use super::store::Store;
use crate::pipeline::{Config, Stage};
use crate::state::{StateStoreExt, get_json, txn_put_json};

const SERVER_KEY: &[u8] = b"v1/server";

/// The record a running `ferry serve` keeps in the state it holds: local writes against that
/// state are refused while the process lives, with its URL as the hint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerRecord {
    pub url: String,
    pub pid: u32,
    pub host: String,
    pub started_at: DateTime<Utc>,
}

impl ServerRecord {
    /// Whether the process that wrote the record still runs (a record from another host is
    /// taken as live: its process cannot be checked from here).
    pub fn is_live(&self) -> bool {
        let here = super::lock::Holder::current("");
        self.host != here.host || process_alive(self.pid)
    }
}

impl Store {
    /// The record of the service holding this state, if one was written.
    pub fn server_record(&self) -> Result<Option<ServerRecord>, PromotionError> {
        Ok(get_json(self.backend(), SERVER_KEY)?)
    }

    /// Records that a service holds this state.
    pub fn set_server_record(&self, record: &ServerRecord) -> Result<(), PromotionError> {
        Ok(self
            .backend()
            .transaction(|txn| txn_put_json(txn, SERVER_KEY, record))?)
    }

    /// Removes the record, when it is this process's own.
    pub fn clear_server_record(&self, pid: u32) -> Result<(), PromotionError> {
        Ok(self.backend().transaction(|txn| {
            let current: Option<ServerRecord> = crate::state::txn_get_json(txn, SERVER_KEY)?;
            if current.is_some_and(|r| r.pid == pid) {
                txn.delete(SERVER_KEY)?;
            }
            Ok(())
        })?)
    }
}

impl Engine {
    /// The stages that have something to do now: an unfinished promotion, a newer revision
    /// for an auto stage, or a due schedule occurrence. Reads only, with one store open.
    pub fn stages_with_work<'c>(
        &self,
        config: &'c Config,
    ) -> Result<Vec<&'c Stage>, PromotionError> {
        let store = self.store()?;
        let revisions = store.revisions()?;
        let now = self.now();
        let mut out = Vec::new();
        for stage in config.pipeline.topological() {
            if has_work(&store, &revisions, config, stage, now)? {
                out.push(stage);
            }
        }
        Ok(out)
    }

    /// Runs what is due in `stage` once, each due promotion as far as it can go (gates
    /// included).
    pub fn reconcile_stage(
        &self,
        config: &Config,
        stage: &Stage,
    ) -> Result<Vec<ReconcileAction>, PromotionError> {
        let mut actions = Vec::new();
        for due in self.due(config, stage)? {
            let (revision, trigger) = due.what();
            actions.push(self.run_due(stage, revision, trigger, due));
        }
        Ok(actions)
    }

    /// The earliest instant after now at which time alone may change a decision somewhere in
    /// the pipeline (see [`crate::policy::next_due`]).
    pub fn next_due(&self, config: &Config) -> Result<Option<DateTime<Utc>>, PromotionError> {
        let now = self.now();
        let mut waiting: Vec<(&Stage, Promotion, Vec<crate::policy::Review>)> = Vec::new();
        let mut earliest: Option<DateTime<Utc>> = None;
        let mut consider = |at: Option<DateTime<Utc>>| {
            if let Some(at) = at {
                earliest = Some(earliest.map_or(at, |e: DateTime<Utc>| e.min(at)));
            }
        };
        let store = self.store()?;
        for stage in config.pipeline.stages() {
            let Some(policy) = config.policy_of(stage) else {
                continue;
            };
            let newest = store.promotions(Some(&stage.name), 1)?.into_iter().next();
            match newest.filter(|p| !p.state.is_terminal()) {
                Some(p) => {
                    let reviews = store.reviews(&stage.name, &p.revision)?;
                    waiting.push((stage, p, reviews));
                }
                None => consider(crate::policy::next_due(Some(policy), &[], &[], now)),
            }
        }
        let revisions: Vec<_> = waiting
            .iter()
            .map(|(_, p, _)| store.revision(&p.revision))
            .collect::<Result<_, _>>()?;
        drop(store);
        for ((stage, p, reviews), revision) in waiting.iter().zip(revisions) {
            let blockers = match &p.digest {
                Some(digest) => self.evaluate(config, stage, &revision, p, digest)?.blockers,
                None => Vec::new(),
            };
            consider(crate::policy::next_due(
                config.policy_of(stage),
                &blockers,
                reviews,
                now,
            ));
        }
        Ok(earliest)
    }
}

impl Engine {
    /// What blocks the promotion `id` now, as data.
    pub fn blockers(
        &self,
        config: &Config,
        id: &str,
    ) -> Result<Vec<crate::policy::Blocker>, PromotionError> {
        let store = self.store()?;
        let promotion = store.promotion(id)?;
        let revision = store.revision(&promotion.revision)?;
        drop(store);
        let stage = self.stage(config, &promotion.stage)?;
        let digest = match &promotion.digest {
            Some(digest) => digest.clone(),
            None => super::render::render(&self.git, stage, &revision)?.digest,
        };
        Ok(self
            .evaluate(config, stage, &revision, &promotion, &digest)?
            .blockers)
    }

    /// Drives the unfinished rollbacks of `stage` to their end (reconcile resumes them too).
    pub fn finish_rollbacks(&self, stage: &Stage) -> Result<Vec<Promotion>, PromotionError> {
        let pending: Vec<Promotion> = self
            .store()?
            .promotions(Some(&stage.name), 20)?
            .into_iter()
            .filter(|p| p.rollback && !p.state.is_terminal())
            .collect();
        pending
            .iter()
            .map(|p| {
                self.resume_promotion(&p.id, true)
                    .map(super::outcome::Outcome::into_promotion)
            })
            .collect()
    }
}

/// Whether `stage` has something to do now (see [`Engine::stages_with_work`]).
fn has_work(
    store: &Store,
    revisions: &[super::revision::Revision],
    config: &Config,
    stage: &Stage,
    now: DateTime<Utc>,
) -> Result<bool, PromotionError> {
    let recent = store.promotions(Some(&stage.name), 50)?;
    if recent.iter().any(|p| !p.state.is_terminal()) {
        return Ok(true);
    }
    let record = store.stage(&stage.name)?;
    let scheduled = config.policy_of(stage).is_some_and(|policy| {
        !crate::policy::due_occurrences(policy, &|i| record.schedules_acted.get(&i).copied(), now)
            .is_empty()
    });
    if (!stage.auto && !scheduled) || revisions.is_empty() {
        return Ok(false);
    }
    let upstream: Vec<_> = stage
        .upstream
        .iter()
        .map(|u| store.stage(u))
        .collect::<Result<_, _>>()?;
    let newest = revisions.iter().find(|revision| {
        let verified = upstream
            .iter()
            .filter(|r| r.verified_at(&revision.id).is_some())
            .count();
        match stage.requires {
            _ if stage.upstream.is_empty() => true,
            crate::pipeline::Requires::All => verified == upstream.len(),
            crate::pipeline::Requires::Any => verified > 0,
        }
    });
    let Some(newest) = newest else {
        return Ok(false);
    };
    let has_it = record
        .current
        .as_ref()
        .is_some_and(|c| c.revision == newest.id);
    let tried = recent
        .iter()
        .any(|p| p.revision == newest.id && !p.rollback);
    Ok(!has_it && !tried)
}
