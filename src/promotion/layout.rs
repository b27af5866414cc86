//! The layout of the records in the state store, and the migrations between layouts.
//!
//! Layout 1 (ferry 0.1) stored a blocked promotion's blockers as sentences (`blockers`) with
//! their kinds beside them (`blocked_on`), and had no layout key. Layout 2 stores blockers as
//! typed [`Blocker`](crate::policy::Blocker) values; a sentence of layout 1 becomes a
//! `recorded` blocker holding the sentence and its kind, so nothing is lost. Layout 3 stores a
//! promotion's notes as typed [`Note`](crate::policy::Note) values too; a sentence of an
//! earlier layout becomes a `recorded` note. A store of a newer layout is refused, never
//! misread.

use serde_json::Value;

use super::PromotionError;
use super::record::keys;
use crate::state::{StateStore, StateStoreExt, Txn, get_json, txn_get_json, txn_put_json};

/// The layout this ferry writes and understands.
pub const LAYOUT_VERSION: u64 = 3;

/// Brings the records of `db` to [`LAYOUT_VERSION`], or refuses a newer layout.
pub(crate) fn ensure(db: &dyn StateStore) -> Result<(), PromotionError> {
    match get_json::<u64>(db, keys::LAYOUT)? {
        Some(LAYOUT_VERSION) => Ok(()),
        Some(found) if found > LAYOUT_VERSION => Err(too_new(found)),
        _ => db.try_transaction(|txn| match txn_get_json::<u64>(txn, keys::LAYOUT)? {
            // Another process migrated it meanwhile.
            Some(LAYOUT_VERSION) => Ok(()),
            Some(found) if found > LAYOUT_VERSION => Err(too_new(found)),
            found => migrate(txn, found.unwrap_or(1)),
        }),
    }
}

fn too_new(found: u64) -> PromotionError {
    PromotionError::LayoutTooNew {
        found,
        expected: LAYOUT_VERSION,
    }
}

/// Rewrites every record from layout `from` up to [`LAYOUT_VERSION`] in one transaction.
fn migrate(txn: &mut dyn Txn, from: u64) -> Result<(), PromotionError> {
    if from < 3 {
        let prefix = b"v1/promo/";
        for (key, bytes) in txn.scan_prefix(prefix)? {
            let mut value: Value =
                serde_json::from_slice(&bytes).map_err(|source| PromotionError::Migrate {
                    key: String::from_utf8_lossy(&key).into_owned(),
                    source,
                })?;
            let blockers = from < 2 && promotion_1_to_2(&mut value);
            let notes = promotion_2_to_3(&mut value);
            if blockers || notes {
                txn_put_json(txn, &key, &value)?;
            }
        }
    }
    txn_put_json(txn, keys::LAYOUT, &LAYOUT_VERSION)?;
    Ok(())
}

/// Turns the sentences of a layout-1 promotion into `recorded` blockers; whether it changed.
fn promotion_1_to_2(promotion: &mut Value) -> bool {
    let Some(object) = promotion.as_object_mut() else {
        return false;
    };
    let kinds: Vec<Value> = match object.remove("blocked_on") {
        Some(Value::Array(kinds)) => kinds,
        _ => Vec::new(),
    };
    let Some(Value::Array(blockers)) = object.get_mut("blockers") else {
        return !kinds.is_empty();
    };
    for (i, blocker) in blockers.iter_mut().enumerate() {
        if let Value::String(text) = blocker {
            let mut typed = serde_json::json!({"kind": "recorded", "text": text});
            if let Some(kind) = kinds.get(i).filter(|k| k.is_string()) {
                typed["of"] = kind.clone();
            }
            *blocker = typed;
        }
    }
    true
}

/// Turns the note sentences of a layout-1 or -2 promotion into `recorded` notes; whether it
/// changed.
fn promotion_2_to_3(promotion: &mut Value) -> bool {
    let Some(Value::Array(notes)) = promotion.get_mut("notes") else {
        return false;
    };
    let mut changed = false;
    for note in notes.iter_mut() {
        if let Value::String(text) = note {
            *note = serde_json::json!({"kind": "recorded", "text": text});
            changed = true;
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::promotion::Promotion;
    use crate::state::{MemStore, put_json};

    /// A blocked promotion as ferry 0.1 stored it.
    const LAYOUT_1: &str = r#"{"id":"p-000003","stage":"prod","revision":"r-05a5d27d2e06","state":"blocked","rollback":false,"trigger":"manual","requested_by":"carol","requested_at":"2026-11-30T09:45:00Z","blockers":["needs 2 more approvals from group:release-managers"],"blocked_on":["approvals"],"notes":["1 approval no longer counts: the rendered content changed"],"digest":"sha256:0f","transitions":[{"state":"requested","at":"2026-11-30T09:45:00Z"},{"state":"checking","at":"2026-11-30T09:45:00Z"},{"state":"blocked","at":"2026-11-30T09:45:00Z","note":"needs 2 more approvals from group:release-managers"}]}"#;

    #[test]
    fn a_layout_1_promotion_keeps_its_sentences_as_recorded_blockers_and_notes() {
        let store = MemStore::new();
        store
            .transaction(|txn| txn.put(b"v1/promo/p-000003", LAYOUT_1.as_bytes()))
            .expect("seed");
        ensure(&store).expect("migrates");
        let promotion: Promotion = get_json(&store, b"v1/promo/p-000003")
            .expect("read")
            .expect("present");
        assert_eq!(
            serde_json::to_value(&promotion.blockers).expect("json"),
            serde_json::json!([{"kind": "recorded", "text": "needs 2 more approvals from group:release-managers", "of": "approvals"}])
        );
        assert_eq!(
            promotion.notes,
            [crate::policy::Note::Recorded {
                text: "1 approval no longer counts: the rendered content changed".into()
            }]
        );
        assert_eq!(promotion.transitions.len(), 3);
        assert_eq!(
            get_json::<u64>(&store, keys::LAYOUT).expect("read"),
            Some(LAYOUT_VERSION)
        );
        // A second open changes nothing.
        ensure(&store).expect("already migrated");
    }

    /// A blocked promotion as ferry 0.2 stored it: typed blockers, notes as sentences.
    const LAYOUT_2: &str = r#"{"id":"p-000004","stage":"prod","revision":"r-05a5d27d2e06","state":"blocked","rollback":true,"trigger":"rollback","requested_by":"carol","requested_at":"2026-11-30T09:45:00Z","blockers":[{"kind":"approvals","needed":1,"from":["group:release-managers"],"have":1,"required":2,"stale":0}],"notes":["rollback: the upstream requirement and soak do not apply"],"digest":"sha256:0f","transitions":[{"state":"requested","at":"2026-11-30T09:45:00Z"}]}"#;

    #[test]
    fn a_layout_2_promotion_keeps_its_blockers_and_records_its_notes() {
        let store = MemStore::new();
        store
            .transaction(|txn| {
                txn.put(b"v1/promo/p-000004", LAYOUT_2.as_bytes())?;
                txn.put(keys::LAYOUT, b"2")
            })
            .expect("seed");
        ensure(&store).expect("migrates");
        let promotion: Promotion = get_json(&store, b"v1/promo/p-000004")
            .expect("read")
            .expect("present");
        assert_eq!(
            serde_json::to_value(&promotion.blockers).expect("json"),
            serde_json::json!([{"kind": "approvals", "needed": 1, "from": ["group:release-managers"], "have": 1, "required": 2, "stale": 0}])
        );
        assert_eq!(
            serde_json::to_value(&promotion.notes).expect("json"),
            serde_json::json!([{"kind": "recorded", "text": "rollback: the upstream requirement and soak do not apply"}])
        );
    }

    #[test]
    fn a_newer_layout_is_refused() {
        let store = MemStore::new();
        put_json(&store, keys::LAYOUT, &(LAYOUT_VERSION + 1)).expect("seed");
        let err = ensure(&store).expect_err("refused");
        assert_eq!(
            err.to_string(),
            "the state was written by a newer ferry (records layout 4; this ferry understands up to 3): use a newer ferry"
        );
    }
}
