//! Typed access to the state store: revisions, promotions, stage records, locks, reviews.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::PromotionError;
use super::actor::Actor;
use super::audit::{self, Event};
use super::event::EngineEvent;
use super::record::{Lock, Promotion, StageRecord, keys};
use super::revision::Revision;
use crate::pipeline::Notifications;
use crate::policy::Review;
use crate::state::{
    DEFAULT_OPEN_WAIT, SqliteStore, StateError, StateStore, StateStoreExt, Txn, get_json, next_seq,
    scan_json, txn_get_json, txn_put_json, txn_scan_json_rev,
};

/// The typed view of one repository's state store.
#[derive(Clone)]
pub struct Store {
    db: Arc<dyn StateStore>,
}

impl Store {
    /// Opens the state in `dir`, waiting while another ferry process holds it, and brings
    /// its records to the current layout.
    pub fn open(dir: &Path) -> Result<Store, PromotionError> {
        let db: Arc<dyn StateStore> = Arc::new(SqliteStore::open(dir, DEFAULT_OPEN_WAIT)?);
        super::layout::ensure(db.as_ref())?;
        Ok(Store { db })
    }

    /// A view of a store that is already open; its layout must have been checked
    /// ([`Engine::new`](super::Engine::new) does).
    pub(crate) fn shared(db: Arc<dyn StateStore>) -> Store {
        Store { db }
    }

    /// The backend itself, for work that outlives one operation (delivering notifications).
    pub fn into_backend(self) -> Arc<dyn StateStore> {
        self.db
    }

    /// The backend, for audit verification.
    pub fn backend(&self) -> &dyn StateStore {
        self.db.as_ref()
    }

    /// Runs `f` atomically.
    pub fn transaction<T>(
        &self,
        f: impl FnMut(&mut dyn Txn) -> Result<T, PromotionError>,
    ) -> Result<T, PromotionError> {
        self.db.try_transaction(f)
    }

    /// Runs `f` over one consistent view of the store (it may read, not write): many reads
    /// for the price of one snapshot.
    pub fn read<T>(
        &self,
        f: impl FnMut(&mut dyn Txn) -> Result<T, PromotionError>,
    ) -> Result<T, PromotionError> {
        self.db.read(f)
    }

    /// The revision `id`; a unique prefix of an id (`r-1a2b`) is accepted too.
    pub fn revision(&self, id: &str) -> Result<Revision, PromotionError> {
        if let Some(rev) = get_json::<Revision>(self.db.as_ref(), &keys::revision(id))? {
            return Ok(rev);
        }
        let prefix = keys::revision(id);
        let matches: Vec<(Vec<u8>, Revision)> = scan_json(self.db.as_ref(), &prefix)?;
        match matches.len() {
            1 => Ok(matches
                .into_iter()
                .map(|(_, r)| r)
                .next()
                .expect("one match")),
            0 => Err(PromotionError::UnknownRevision { id: id.to_string() }),
            n => Err(PromotionError::BadInput(format!(
                "`{id}` matches {n} revisions: give more of the id"
            ))),
        }
    }

    /// All revisions, newest first.
    pub fn revisions(&self) -> Result<Vec<Revision>, PromotionError> {
        self.read(|txn| {
            let order: Vec<(Vec<u8>, String)> =
                txn_scan_json_rev(txn, keys::REVISION_ORDER_PREFIX, usize::MAX)?;
            let mut out = Vec::with_capacity(order.len());
            for (_, id) in order {
                if let Some(rev) = txn_get_json(txn, &keys::revision(&id))? {
                    out.push(rev);
                }
            }
            Ok(out)
        })
    }

    /// Records `rev` unless a revision with its id exists; returns the stored one and whether it
    /// is new. A new one is announced to the webhooks of `notifications`.
    pub(crate) fn create_revision(
        &self,
        rev: &Revision,
        actor: &Actor,
        notifications: &Notifications,
    ) -> Result<(Revision, bool), PromotionError> {
        self.transaction(|txn| {
            if let Some(existing) = txn_get_json::<Revision>(txn, &keys::revision(&rev.id))? {
                return Ok((existing, false));
            }
            let seq = next_seq(txn, keys::REVISION_SEQ)?;
            txn_put_json(txn, &keys::revision(&rev.id), rev)?;
            txn_put_json(txn, &keys::revision_order(seq), &rev.id)?;
            let detail = serde_json::json!({"images": rev.images_summary(), "configCommit": rev.config_commit});
            let event = Event { actor: actor.name.clone(), auth: Some(actor.auth.clone()), action: "release.create".into(), revision: Some(rev.id.clone()), detail, ..Event::default() };
            audit::append(txn, event, rev.created_at)?;
            let images: Vec<(String, String)> = rev.images.iter().map(|(name, pin)| (name.clone(), pin.reference())).collect();
            let event = crate::notify::Event::release_created(rev.created_at, &rev.created_by, &rev.id, &images, &rev.config_commit, rev.message.as_deref());
            crate::notify::enqueue(txn, notifications, &event)?;
            Ok((rev.clone(), true))
        })
    }

    /// The promotion `id`.
    pub fn promotion(&self, id: &str) -> Result<Promotion, PromotionError> {
        get_json(self.db.as_ref(), &keys::promotion(id))?
            .ok_or_else(|| PromotionError::UnknownPromotion { id: id.to_string() })
    }

    /// Promotions, newest first: of `stage`, or of every stage.
    pub fn promotions(
        &self,
        stage: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Promotion>, PromotionError> {
        let prefix = match stage {
            Some(stage) => keys::stage_promotion_prefix(stage),
            None => keys::PROMOTION_ORDER_PREFIX.to_vec(),
        };
        self.read(|txn| {
            let ids: Vec<(Vec<u8>, String)> = txn_scan_json_rev(txn, &prefix, limit)?;
            ids.iter().map(|(_, id)| txn_promotion(txn, id)).collect()
        })
    }

    /// What `stage` has now.
    pub fn stage(&self, stage: &str) -> Result<StageRecord, PromotionError> {
        Ok(get_json(self.db.as_ref(), &keys::stage(stage))?.unwrap_or_default())
    }

    /// The lock of `stage`, if held (expired or not).
    pub fn lock(&self, stage: &str) -> Result<Option<Lock>, PromotionError> {
        Ok(get_json(self.db.as_ref(), &keys::lock(stage))?)
    }

    /// Approvals and rejections of `revision` in `stage`, oldest first.
    pub fn reviews(&self, stage: &str, revision: &str) -> Result<Vec<Review>, PromotionError> {
        let entries: Vec<(Vec<u8>, Review)> =
            scan_json(self.db.as_ref(), &keys::review_prefix(stage, revision))?;
        Ok(entries.into_iter().map(|(_, r)| r).collect())
    }
}

/// The promotion `id` inside a transaction.
pub(crate) fn txn_promotion(txn: &mut dyn Txn, id: &str) -> Result<Promotion, PromotionError> {
    txn_get_json(txn, &keys::promotion(id))?
        .ok_or_else(|| PromotionError::UnknownPromotion { id: id.to_string() })
}

/// The revision with exactly the id `id` inside a transaction.
pub(crate) fn txn_revision(txn: &mut dyn Txn, id: &str) -> Result<Revision, PromotionError> {
    txn_get_json(txn, &keys::revision(id))?
        .ok_or_else(|| PromotionError::UnknownRevision { id: id.to_string() })
}

/// Approvals and rejections of `revision` in `stage` inside a transaction, oldest first.
pub(crate) fn txn_reviews(
    txn: &mut dyn Txn,
    stage: &str,
    revision: &str,
) -> Result<Vec<Review>, PromotionError> {
    let entries: Vec<(Vec<u8>, Review)> =
        crate::state::txn_scan_json(txn, &keys::review_prefix(stage, revision))?;
    Ok(entries.into_iter().map(|(_, r)| r).collect())
}

/// Reads the stage record inside a transaction.
pub(crate) fn txn_stage(txn: &mut dyn Txn, stage: &str) -> Result<StageRecord, StateError> {
    Ok(txn_get_json(txn, &keys::stage(stage))?.unwrap_or_default())
}

/// Stores a promotion, audits its current state and notes the change in `events`.
pub(crate) fn txn_save_promotion(
    txn: &mut dyn Txn,
    events: &mut Vec<EngineEvent>,
    promotion: &Promotion,
    actor: &Actor,
    at: DateTime<Utc>,
    detail: serde_json::Value,
) -> Result<(), StateError> {
    txn_put_json(txn, &keys::promotion(&promotion.id), promotion)?;
    events.push(EngineEvent::Promotion {
        id: promotion.id.clone(),
        stage: promotion.stage.clone(),
        revision: promotion.revision.clone(),
        state: promotion.state,
        rollback: promotion.rollback,
    });
    let event = Event {
        actor: actor.name.clone(),
        auth: Some(actor.auth.clone()),
        action: format!("promotion.{}", promotion.state),
        stage: Some(promotion.stage.clone()),
        revision: Some(promotion.revision.clone()),
        promotion: Some(promotion.id.clone()),
        detail,
    };
    audit::append(txn, event, at)?;
    Ok(())
}
