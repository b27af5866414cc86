//! The events ferry notifies about, and their JSON payload (stable: fields are added, never
//! renamed or removed; see docs/notifications.md).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::pipeline::EventKind;

/// One thing that happened, as webhooks receive it.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub kind: EventKind,
    pub at: DateTime<Utc>,
    /// Who caused it.
    pub actor: String,
    pub stage: Option<String>,
    pub revision: Option<String>,
    pub promotion: Option<String>,
    /// The fields particular to the kind (`blockers`, `error`, `commit`, …).
    pub details: Map<String, Value>,
}

/// The payload of one event, as stored in the outbox and sent to `json` webhooks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Payload {
    /// The delivery id (also sent as `X-Ferry-Delivery`).
    pub delivery: String,
    /// The event name: `promotion.blocked`, …
    pub event: String,
    pub at: DateTime<Utc>,
    pub actor: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotion: Option<String>,
    #[serde(flatten)]
    pub details: Map<String, Value>,
}

impl Event {
    fn new(kind: EventKind, at: DateTime<Utc>, actor: &str) -> Event {
        Event {
            kind,
            at,
            actor: actor.to_string(),
            stage: None,
            revision: None,
            promotion: None,
            details: Map::new(),
        }
    }

    /// Sets a kind-specific field.
    pub fn with(mut self, field: &str, value: impl Serialize) -> Event {
        let value = serde_json::to_value(value).unwrap_or(Value::Null);
        self.details.insert(field.to_string(), value);
        self
    }

    /// A new revision: `images` (name → reference), the config commit and the message.
    pub fn release_created(
        at: DateTime<Utc>,
        actor: &str,
        revision: &str,
        images: &[(String, String)],
        config_commit: &str,
        message: Option<&str>,
    ) -> Event {
        let images: Map<String, Value> = images
            .iter()
            .map(|(name, reference)| (name.clone(), Value::String(reference.clone())))
            .collect();
        let mut event = Event::new(EventKind::ReleaseCreated, at, actor)
            .with("images", images)
            .with("config_commit", config_commit)
            .with("message", message);
        event.revision = Some(revision.to_string());
        event
    }

    /// A promotion that became blocked (or blocked for new reasons). `blockers` are the typed
    /// blockers (`{"kind": "approvals", …}`); `approvers` the people who could unblock an
    /// approvals blocker, groups resolved to their members.
    pub fn promotion_blocked(
        at: DateTime<Utc>,
        actor: &str,
        stage: &str,
        revision: &str,
        promotion: &str,
        blockers: Vec<Value>,
        approvers: Vec<String>,
    ) -> Event {
        let reasons: Vec<String> = blockers
            .iter()
            .filter_map(|b| b.get("message").and_then(Value::as_str).map(str::to_string))
            .collect();
        Event::new(EventKind::PromotionBlocked, at, actor)
            .with("blockers", blockers)
            .with("approvers", approvers)
            .with("reasons", reasons)
            .about(stage, revision, Some(promotion))
    }

    /// An approval of `revision` in `stage` by `actor`.
    pub fn approval_granted(
        at: DateTime<Utc>,
        actor: &str,
        stage: &str,
        revision: &str,
        comment: Option<&str>,
    ) -> Event {
        Event::new(EventKind::ApprovalGranted, at, actor)
            .with("comment", comment)
            .about(stage, revision, None)
    }

    /// A promotion that ended: succeeded (`error` none) or failed.
    #[allow(
        clippy::too_many_arguments,
        reason = "each is one field of the payload"
    )]
    pub fn promotion_ended(
        at: DateTime<Utc>,
        actor: &str,
        stage: &str,
        revision: &str,
        promotion: &str,
        trigger: &str,
        commit: Option<&str>,
        error: Option<&str>,
    ) -> Event {
        let kind = match error {
            None => EventKind::PromotionSucceeded,
            Some(_) => EventKind::PromotionFailed,
        };
        Event::new(kind, at, actor)
            .with("trigger", trigger)
            .with("commit", commit)
            .with("error", error)
            .about(stage, revision, Some(promotion))
    }

    /// A stage (`None`: the whole pipeline) paused (`paused`) or resumed by `actor`, with the
    /// reason given. `scope` is the stage's name, or `all`.
    pub fn stage_paused(
        at: DateTime<Utc>,
        actor: &str,
        stage: Option<&str>,
        paused: bool,
        reason: &str,
    ) -> Event {
        let kind = if paused {
            EventKind::StagePaused
        } else {
            EventKind::StageResumed
        };
        let mut event = Event::new(kind, at, actor)
            .with("reason", reason)
            .with("scope", stage.unwrap_or("all"));
        event.stage = stage.map(str::to_string);
        event
    }

    fn about(mut self, stage: &str, revision: &str, promotion: Option<&str>) -> Event {
        self.stage = Some(stage.to_string());
        self.revision = Some(revision.to_string());
        self.promotion = promotion.map(str::to_string);
        self
    }

    /// The payload of this event for the delivery `delivery`.
    pub fn payload(&self, delivery: &str) -> Payload {
        Payload {
            delivery: delivery.to_string(),
            event: self.kind.as_str().to_string(),
            at: self.at,
            actor: self.actor.clone(),
            stage: self.stage.clone(),
            revision: self.revision.clone(),
            promotion: self.promotion.clone(),
            details: self.details.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blocked_promotion_carries_its_blockers_and_approvers() {
        let at = "2026-12-01T10:00:00Z".parse().expect("a time");
        let blocker = serde_json::json!({"kind": "approvals", "have": 0, "need": 1,
            "from": ["group:release-managers"], "message": "needs 1 more approval"});
        let event = Event::promotion_blocked(
            at,
            "ci",
            "prod",
            "r-1",
            "p-000003",
            vec![blocker.clone()],
            vec!["carol".into()],
        );
        let payload = serde_json::to_value(event.payload("d-1")).expect("json");
        assert_eq!(
            payload,
            serde_json::json!({
                "delivery": "d-1", "event": "promotion.blocked", "at": "2026-12-01T10:00:00Z",
                "actor": "ci", "stage": "prod", "revision": "r-1", "promotion": "p-000003",
                "blockers": [blocker], "approvers": ["carol"],
                "reasons": ["needs 1 more approval"],
            })
        );
    }
}
