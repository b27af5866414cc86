//! The audit log: append-only and hash-chained. Each entry records who did what, when, and
//! the hash of the entry before it; `verify` recomputes the chain.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::actor::Auth;
use super::record::keys;
use crate::state::{StateError, StateStore, Txn, scan_json, txn_get_json, txn_put_json};

/// The hash the first entry chains to.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One audited event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub seq: u64,
    pub at: DateTime<Utc>,
    /// Who acted.
    pub actor: String,
    /// How they were authenticated (absent in entries of earlier releases).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<Auth>,
    /// What happened: `promotion.writing`, `gate.passed`, `approval`, `release.create`, …
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotion: Option<String>,
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub detail: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}

/// What an entry is about, before it is chained.
#[derive(Debug, Clone, Default)]
pub struct Event {
    pub actor: String,
    pub auth: Option<Auth>,
    pub action: String,
    pub stage: Option<String>,
    pub revision: Option<String>,
    pub promotion: Option<String>,
    pub detail: serde_json::Value,
}

#[derive(Debug, Serialize, Deserialize)]
struct Head {
    seq: u64,
    hash: String,
}

impl AuditEntry {
    /// The hash of this entry's content and its predecessor's hash.
    pub fn compute_hash(&self) -> String {
        let mut content = serde_json::json!({
            "seq": self.seq,
            "at": self.at,
            "actor": self.actor,
            "action": self.action,
            "stage": self.stage,
            "revision": self.revision,
            "promotion": self.promotion,
            "detail": self.detail,
            "prev": self.prev_hash,
        });
        // Entries written before `auth` existed hash without it, so they still verify.
        if let Some(auth) = &self.auth {
            content["auth"] = serde_json::json!(auth);
        }
        hex(&Sha256::digest(content.to_string().as_bytes()))
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Appends `event` at `at` inside a transaction.
pub(crate) fn append(
    txn: &mut dyn Txn,
    event: Event,
    at: DateTime<Utc>,
) -> Result<AuditEntry, StateError> {
    let head: Option<Head> = txn_get_json(txn, keys::AUDIT_HEAD)?;
    let (seq, prev_hash) = match head {
        Some(head) => (head.seq + 1, head.hash),
        None => (1, GENESIS.to_string()),
    };
    let mut entry = AuditEntry {
        seq,
        at,
        actor: event.actor,
        auth: event.auth,
        action: event.action,
        stage: event.stage,
        revision: event.revision,
        promotion: event.promotion,
        detail: event.detail,
        prev_hash,
        hash: String::new(),
    };
    entry.hash = entry.compute_hash();
    txn_put_json(txn, &keys::audit(seq), &entry)?;
    txn_put_json(
        txn,
        keys::AUDIT_HEAD,
        &Head {
            seq,
            hash: entry.hash.clone(),
        },
    )?;
    Ok(entry)
}

/// The outcome of verifying the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditReport {
    pub entries: u64,
    /// The first entry that does not check out, and why.
    pub broken: Option<(u64, String)>,
}

/// Recomputes the whole chain.
pub fn verify(store: &dyn StateStore) -> Result<AuditReport, StateError> {
    let entries: Vec<(Vec<u8>, AuditEntry)> = scan_json(store, keys::AUDIT_PREFIX)?;
    let mut prev = GENESIS.to_string();
    let mut expected_seq = 1;
    for (_, entry) in &entries {
        let broken = if entry.seq != expected_seq {
            Some(format!(
                "entry {expected_seq} is missing (found {} next)",
                entry.seq
            ))
        } else if entry.prev_hash != prev {
            Some("its previous-hash does not match the entry before it".to_string())
        } else if entry.compute_hash() != entry.hash {
            Some("its content does not match its hash (it was changed)".to_string())
        } else {
            None
        };
        if let Some(reason) = broken {
            return Ok(AuditReport {
                entries: entries.len() as u64,
                broken: Some((expected_seq.min(entry.seq), reason)),
            });
        }
        prev = entry.hash.clone();
        expected_seq += 1;
    }
    let head: Option<Head> = crate::state::get_json(store, keys::AUDIT_HEAD)?;
    if let Some(head) = head
        && (head.seq != expected_seq - 1 || head.hash != prev)
    {
        return Ok(AuditReport {
            entries: entries.len() as u64,
            broken: Some((
                expected_seq,
                format!("entries {expected_seq} to {} were removed", head.seq),
            )),
        });
    }
    Ok(AuditReport {
        entries: entries.len() as u64,
        broken: None,
    })
}

/// Audit entries, oldest first, optionally only those about `stage`.
pub fn entries(store: &dyn StateStore, stage: Option<&str>) -> Result<Vec<AuditEntry>, StateError> {
    let all: Vec<(Vec<u8>, AuditEntry)> = scan_json(store, keys::AUDIT_PREFIX)?;
    Ok(all
        .into_iter()
        .map(|(_, e)| e)
        .filter(|e| stage.is_none_or(|s| e.stage.as_deref() == Some(s)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{MemStore, StateStoreExt};

    fn event(action: &str) -> Event {
        Event {
            actor: "alice".into(),
            action: action.into(),
            ..Event::default()
        }
    }

    #[test]
    fn a_chain_verifies_and_a_change_is_found() {
        let store = MemStore::default();
        for action in ["a", "b", "c"] {
            store
                .transaction(|txn| append(txn, event(action), Utc::now()))
                .expect("append");
        }
        assert_eq!(
            verify(&store).expect("verify"),
            AuditReport {
                entries: 3,
                broken: None
            }
        );
        let mut second: AuditEntry = crate::state::get_json(&store, &keys::audit(2))
            .expect("read")
            .expect("present");
        second.actor = "mallory".into();
        crate::state::put_json(&store, &keys::audit(2), &second).expect("tamper");
        let report = verify(&store).expect("verify");
        assert_eq!(report.broken.map(|(seq, _)| seq), Some(2));
    }

    #[test]
    fn a_removed_entry_is_found() {
        let store = MemStore::default();
        for action in ["a", "b", "c"] {
            store
                .transaction(|txn| append(txn, event(action), Utc::now()))
                .expect("append");
        }
        store
            .transaction(|txn| txn.delete(&keys::audit(3)))
            .expect("delete");
        assert_eq!(
            verify(&store).expect("verify").broken.map(|(seq, _)| seq),
            Some(3)
        );
        store
            .transaction(|txn| txn.delete(&keys::audit(2)))
            .expect("delete");
        assert_eq!(
            verify(&store).expect("verify").broken.map(|(seq, _)| seq),
            Some(2)
        );
    }
}
