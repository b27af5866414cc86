//! Pausing and resuming stages (stopping the line), recorded in the state store and audited.
//! The check step asks [`stage_pause`] before a promotion may start.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::PromotionError;
use super::audit::{self, Event};
use super::engine::Engine;
use super::store::Store;
use crate::pipeline::Config;
use crate::policy::{Pause, pause_of};
use crate::state::{Txn, get_json, scan_json, txn_get_json, txn_put_json};

const ALL_KEY: &[u8] = b"v1/pause/all";
const STAGE_PREFIX: &str = "v1/pause/stage/";

fn stage_key(stage: &str) -> Vec<u8> {
    format!("{STAGE_PREFIX}{stage}").into_bytes()
}

/// What is paused now.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Pauses {
    /// The pause of the whole pipeline, if any.
    pub all: Option<Pause>,
    /// Pauses of single stages.
    pub stages: BTreeMap<String, Pause>,
}

/// The pause holding `stage`, if any.
pub(crate) fn stage_pause(store: &Store, stage: &str) -> Result<Option<Pause>, PromotionError> {
    let own: Option<Pause> = get_json(store.backend(), &stage_key(stage))?;
    let all: Option<Pause> = get_json(store.backend(), ALL_KEY)?;
    Ok(pause_of(own.as_ref(), all.as_ref()).cloned())
}

impl Engine {
    /// Everything paused now.
    pub fn pauses(&self) -> Result<Pauses, PromotionError> {
        let store = self.store()?;
        let all = get_json(store.backend(), ALL_KEY)?;
        let entries: Vec<(Vec<u8>, Pause)> = scan_json(store.backend(), STAGE_PREFIX.as_bytes())?;
        let stages = entries
            .into_iter()
            .map(|(key, pause)| {
                let name = String::from_utf8_lossy(&key[STAGE_PREFIX.len()..]).into_owned();
                (name, pause)
            })
            .collect();
        Ok(Pauses { all, stages })
    }

    /// Pauses `stages` (every stage when empty) for `reason`: no promotion starts there until
    /// resumed; one in flight finishes.
    pub fn pause(
        &self,
        config: &Config,
        stages: &[String],
        reason: &str,
    ) -> Result<Pauses, PromotionError> {
        if reason.trim().is_empty() {
            return Err(PromotionError::BadInput(
                "a pause needs a reason (it is audited and shown to everyone waiting)".into(),
            ));
        }
        for stage in stages {
            self.stage(config, stage)?;
        }
        let now = self.now();
        let pause = Pause {
            by: self.actor.name.clone(),
            reason: reason.trim().to_string(),
            at: now,
        };
        self.store()?.transaction(|txn| {
            let keys = pause_keys(stages);
            for (key, stage) in &keys {
                txn_put_json(txn, key, &pause)?;
                audit_pause(txn, config, true, stage.as_deref(), &pause, now)?;
            }
            Ok(())
        })?;
        self.step("paused");
        self.pauses()
    }

    /// Resumes `stages` (everything paused when empty).
    pub fn resume(
        &self,
        config: &Config,
        stages: &[String],
        reason: &str,
    ) -> Result<Pauses, PromotionError> {
        let current = self.pauses()?;
        if !stages.is_empty() && current.all.is_some() {
            return Err(PromotionError::BadInput(
                "the whole pipeline is paused: resume it without naming stages".into(),
            ));
        }
        let now = self.now();
        let note = Pause {
            by: self.actor.name.clone(),
            reason: reason.trim().to_string(),
            at: now,
        };
        let targets: Vec<(Vec<u8>, Option<String>)> = if stages.is_empty() {
            let mut all: Vec<_> = current
                .stages
                .keys()
                .map(|s| (stage_key(s), Some(s.clone())))
                .collect();
            if current.all.is_some() {
                all.push((ALL_KEY.to_vec(), None));
            }
            all
        } else {
            pause_keys(stages)
        };
        self.store()?.transaction(|txn| {
            for (key, stage) in &targets {
                if txn_get_json::<Pause>(txn, key)?.is_some() {
                    txn.delete(key)?;
                    audit_pause(txn, config, false, stage.as_deref(), &note, now)?;
                }
            }
            Ok(())
        })?;
        self.step("resumed");
        self.pauses()
    }
}

fn pause_keys(stages: &[String]) -> Vec<(Vec<u8>, Option<String>)> {
    if stages.is_empty() {
        return vec![(ALL_KEY.to_vec(), None)];
    }
    stages
        .iter()
        .map(|s| (stage_key(s), Some(s.clone())))
        .collect()
}

/// Audits a pause (`paused`) or resume and notifies the webhooks that want it.
fn audit_pause(
    txn: &mut dyn Txn,
    config: &Config,
    paused: bool,
    stage: Option<&str>,
    pause: &Pause,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<(), PromotionError> {
    let action = if paused {
        "stage.paused"
    } else {
        "stage.resumed"
    };
    let notice = crate::notify::Event::stage_paused(at, &pause.by, stage, paused, &pause.reason);
    crate::notify::enqueue(txn, &config.notifications, &notice)?;
    let event = Event {
        actor: pause.by.clone(),
        action: action.to_string(),
        stage: stage.map(str::to_string),
        detail: serde_json::json!({"reason": pause.reason, "scope": stage.unwrap_or("all")}),
        ..Event::default()
    };
    audit::append(txn, event, at)?;
    Ok(())
}
