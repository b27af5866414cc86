//! The notification events of promotions, built where the change they report is written so
//! that [`crate::notify::enqueue`] puts them in the same transaction.

use chrono::{DateTime, Utc};

use super::record::{Promotion, PromotionState};
use crate::notify::Event;
use crate::pipeline::{Config, Principal};
use crate::policy::Blocker;

/// `promotion.blocked`: the typed blockers (each with its sentence under `message`) and who
/// could approve, groups resolved to their members (without the requester, unless the
/// policy allows self-approval).
pub(crate) fn blocked(
    config: &Config,
    promotion: &Promotion,
    blockers: &[Blocker],
    actor: &str,
    at: DateTime<Utc>,
) -> Event {
    let typed = blockers
        .iter()
        .map(|b| {
            let mut value = serde_json::to_value(b).unwrap_or_default();
            if let Some(fields) = value.as_object_mut() {
                fields.insert("message".into(), b.to_string().into());
            }
            value
        })
        .collect();
    let mut approvers: Vec<String> = Vec::new();
    for blocker in blockers {
        if let Blocker::Approvals { from, .. } = blocker {
            for principal in from.iter().filter_map(|p| Principal::parse(p)) {
                match principal {
                    Principal::User(user) => approvers.push(user),
                    Principal::Group(group) => {
                        approvers
                            .extend(config.groups.members(&group).unwrap_or_default().to_vec());
                    }
                }
            }
        }
    }
    let self_approval = config
        .pipeline
        .stage(&promotion.stage)
        .and_then(|stage| config.policy_of(stage))
        .and_then(|policy| policy.approvals.as_ref())
        .is_some_and(|rule| rule.self_approval);
    if !self_approval {
        approvers.retain(|user| *user != promotion.requested_by);
    }
    approvers.sort();
    approvers.dedup();
    Event::promotion_blocked(
        at,
        actor,
        &promotion.stage,
        &promotion.revision,
        &promotion.id,
        typed,
        approvers,
    )
}

/// `promotion.succeeded` or `promotion.failed` for a promotion that just ended; `None` for
/// other states (an aborted promotion is superseded, not news).
pub(crate) fn ended(promotion: &Promotion, actor: &str, at: DateTime<Utc>) -> Option<Event> {
    let error = match promotion.state {
        PromotionState::Succeeded => None,
        PromotionState::Failed => Some(promotion.error.as_deref().unwrap_or("failed")),
        _ => return None,
    };
    let trigger = serde_json::to_value(promotion.trigger).unwrap_or_default();
    Some(Event::promotion_ended(
        at,
        actor,
        &promotion.stage,
        &promotion.revision,
        &promotion.id,
        trigger.as_str().unwrap_or("manual"),
        promotion.commit.as_deref(),
        error,
    ))
}
