//! The outbox: one entry per (event, webhook), written in the transaction of the change the
//! event reports, and the delivery bookkeeping the worker does on it.
//!
//! Keys: `v1/outbox/<seq>` holds a [`Delivery`]; `v1/outbox-due/<seq>` indexes those still
//! pending, so the worker never scans delivered history.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::event::{Event, Payload};
use crate::pipeline::Notifications;
use crate::state::{
    StateError, StateStore, Txn, get_json, next_seq, scan_json, txn_get_json, txn_put_json,
};

const SEQ: &[u8] = b"v1/seq/outbox";
const PREFIX: &[u8] = b"v1/outbox/";
const DUE_PREFIX: &[u8] = b"v1/outbox-due/";

fn key(seq: u64) -> Vec<u8> {
    format!("v1/outbox/{seq:020}").into_bytes()
}

fn due_key(seq: u64) -> Vec<u8> {
    format!("v1/outbox-due/{seq:020}").into_bytes()
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    Pending,
    Delivered,
    Failed,
}

impl DeliveryState {
    /// The state named `pending`, `delivered` or `failed`.
    pub fn parse(text: &str) -> Option<DeliveryState> {
        match text {
            "pending" => Some(DeliveryState::Pending),
            "delivered" => Some(DeliveryState::Delivered),
            "failed" => Some(DeliveryState::Failed),
            _ => None,
        }
    }

    /// `pending`, `delivered` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }
}

/// One notification to one webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// Stable across retries: the `X-Ferry-Delivery` header.
    pub id: String,
    pub seq: u64,
    pub webhook: String,
    pub state: DeliveryState,
    pub created_at: DateTime<Utc>,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the next attempt is due, while pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<DateTime<Utc>>,
    pub payload: Payload,
}

/// Writes one pending delivery of `event` per webhook of `notifications` that wants it, in
/// `txn` (the transaction of the change the event reports). Returns the delivery ids.
pub fn enqueue(
    txn: &mut dyn Txn,
    notifications: &Notifications,
    event: &Event,
) -> Result<Vec<String>, StateError> {
    let mut ids = Vec::new();
    for webhook in &notifications.webhooks {
        if !webhook.wants(event.kind, event.stage.as_deref()) {
            continue;
        }
        let seq = next_seq(txn, SEQ)?;
        let id = delivery_id(seq);
        let delivery = Delivery {
            id: id.clone(),
            seq,
            webhook: webhook.name.clone(),
            state: DeliveryState::Pending,
            created_at: event.at,
            attempts: 0,
            next_attempt_at: Some(event.at),
            last_error: None,
            delivered_at: None,
            payload: event.payload(&id),
        };
        txn_put_json(txn, &key(seq), &delivery)?;
        txn_put_json(txn, &due_key(seq), &id)?;
        ids.push(id);
    }
    Ok(ids)
}

/// `d-<seq>-<random>`: ordered in a store, and unlikely to repeat across stores (a receiver
/// may see deliveries of several ferry installations).
fn delivery_id(seq: u64) -> String {
    let mut random = [0u8; 4];
    // Without randomness the sequence number alone still identifies the delivery here.
    let _ = getrandom::fill(&mut random);
    let suffix: String = random.iter().map(|b| format!("{b:02x}")).collect();
    format!("d-{seq:06}-{suffix}")
}

/// Every pending delivery, oldest first.
pub fn pending(store: &dyn StateStore) -> Result<Vec<Delivery>, StateError> {
    let due: Vec<(Vec<u8>, String)> = scan_json(store, DUE_PREFIX)?;
    let mut out = Vec::with_capacity(due.len());
    for (due_key, _) in due {
        let seq_text = String::from_utf8_lossy(&due_key[DUE_PREFIX.len()..]).to_string();
        let Ok(seq) = seq_text.parse::<u64>() else {
            continue;
        };
        if let Some(delivery) = get_json::<Delivery>(store, &key(seq))? {
            out.push(delivery);
        }
    }
    Ok(out)
}

/// Every delivery, oldest first.
pub fn all(store: &dyn StateStore) -> Result<Vec<Delivery>, StateError> {
    Ok(scan_json::<Delivery>(store, PREFIX)?
        .into_iter()
        .map(|(_, d)| d)
        .collect())
}

/// At most `limit` deliveries (only those in `state`, when given), newest first: what
/// `ferry notifications` lists, locally or from the service.
pub fn listing(
    store: &dyn StateStore,
    state: Option<DeliveryState>,
    limit: usize,
) -> Result<Vec<Delivery>, StateError> {
    let mut deliveries: Vec<Delivery> = all(store)?
        .into_iter()
        .filter(|d| state.is_none_or(|s| d.state == s))
        .collect();
    deliveries.reverse();
    deliveries.truncate(limit);
    Ok(deliveries)
}

/// What an attempt came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    Delivered {
        at: DateTime<Utc>,
    },
    /// Failed; retry at `retry_at`, or give up when it is `None`.
    Failed {
        error: String,
        retry_at: Option<DateTime<Utc>>,
    },
}

/// Records the outcome of an attempt at `delivery` (by its sequence number).
pub fn record(txn: &mut dyn Txn, seq: u64, attempt: &Attempt) -> Result<(), StateError> {
    let Some(mut delivery) = txn_get_json::<Delivery>(txn, &key(seq))? else {
        return Ok(());
    };
    if delivery.state != DeliveryState::Pending {
        return Ok(());
    }
    delivery.attempts += 1;
    match attempt {
        Attempt::Delivered { at } => {
            delivery.state = DeliveryState::Delivered;
            delivery.delivered_at = Some(*at);
            delivery.next_attempt_at = None;
        }
        Attempt::Failed { error, retry_at } => {
            delivery.last_error = Some(error.clone());
            delivery.next_attempt_at = *retry_at;
            if retry_at.is_none() {
                delivery.state = DeliveryState::Failed;
            }
        }
    }
    if delivery.state != DeliveryState::Pending {
        txn.delete(&due_key(seq))?;
    }
    txn_put_json(txn, &key(seq), &delivery)
}

/// How many deliveries are in each state, and the attempts made in all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct OutboxCounts {
    pub pending: u64,
    pub delivered: u64,
    pub failed: u64,
    pub attempts: u64,
}

impl OutboxCounts {
    fn add(&mut self, delivery: &Delivery) {
        match delivery.state {
            DeliveryState::Pending => self.pending += 1,
            DeliveryState::Delivered => self.delivered += 1,
            DeliveryState::Failed => self.failed += 1,
        }
        self.attempts += u64::from(delivery.attempts);
    }
}

/// Counts of every delivery in the store.
pub fn counts(store: &dyn StateStore) -> Result<OutboxCounts, StateError> {
    let mut counts = OutboxCounts::default();
    for delivery in all(store)? {
        counts.add(&delivery);
    }
    Ok(counts)
}

/// Counts of every delivery in the store, per webhook.
pub fn counts_by_webhook(
    store: &dyn StateStore,
) -> Result<BTreeMap<String, OutboxCounts>, StateError> {
    let mut counts: BTreeMap<String, OutboxCounts> = BTreeMap::new();
    for delivery in all(store)? {
        counts
            .entry(delivery.webhook.clone())
            .or_default()
            .add(&delivery);
    }
    Ok(counts)
}
