//! Slack incoming-webhook messages: one readable line per event, with a link to the web UI.

use serde_json::{Value, json};

use super::event::Payload;

/// The Slack message for `payload`; `ui_url` is the web UI's base URL, if known.
pub fn message(payload: &Payload, ui_url: Option<&str>) -> Value {
    let text = sentence(payload);
    let link = ui_url.map(|base| {
        let base = base.trim_end_matches('/');
        match (&payload.stage, &payload.revision) {
            (Some(stage), _) => format!("{base}/stages/{stage}"),
            (None, Some(revision)) => format!("{base}/releases/{revision}"),
            (None, None) => base.to_string(),
        }
    });
    let text = match link {
        Some(link) => format!("{text} <{link}|Open in ferry>"),
        None => text,
    };
    json!({"text": text})
}

fn sentence(p: &Payload) -> String {
    let stage = p.stage.as_deref().unwrap_or("?");
    let revision = p.revision.as_deref().unwrap_or("?");
    let promotion = p.promotion.as_deref().unwrap_or("?");
    let detail = |field: &str| p.details.get(field).and_then(Value::as_str);
    match p.event.as_str() {
        "release.created" => {
            let images = p
                .details
                .get("images")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(name, r)| format!("{name} {}", r.as_str().unwrap_or("?")))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            format!("Release {revision} created by {}: {images}.", p.actor)
        }
        "promotion.blocked" => {
            let reasons = strings(p, "reasons").join("; ");
            let approvers = strings(p, "approvers");
            let waiting = if approvers.is_empty() {
                String::new()
            } else {
                format!(" Waiting for approval from {}.", approvers.join(", "))
            };
            format!("{revision} is blocked from {stage} ({promotion}): {reasons}.{waiting}")
        }
        "approval.granted" => match detail("comment") {
            Some(comment) => format!("{} approved {revision} for {stage}: {comment}", p.actor),
            None => format!("{} approved {revision} for {stage}.", p.actor),
        },
        "promotion.succeeded" => {
            format!("{revision} is verified in {stage} ({promotion}).")
        }
        "promotion.failed" => format!(
            "Promotion {promotion} of {revision} to {stage} failed: {}",
            detail("error").unwrap_or("no reason recorded")
        ),
        "stage.paused" => format!(
            "{} paused {}: {}",
            p.actor,
            scope(p),
            detail("reason").unwrap_or("")
        ),
        "stage.resumed" => format!("{} resumed {}.", p.actor, scope(p)),
        other => format!("{other} in {stage}"),
    }
}

/// `stage prod` or `the whole pipeline`.
fn scope(p: &Payload) -> String {
    match &p.stage {
        Some(stage) => format!("stage {stage}"),
        None => "the whole pipeline".to_string(),
    }
}

fn strings(p: &Payload, field: &str) -> Vec<String> {
    p.details
        .get(field)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::Event;

    #[test]
    fn a_blocked_prod_names_the_approvers_and_links_the_stage() {
        let at = "2026-12-01T10:00:00Z".parse().expect("a time");
        let blocker = json!({"kind": "approvals", "message": "needs 1 more approval from group:release-managers"});
        let event = Event::promotion_blocked(
            at,
            "ci",
            "prod",
            "r-abc",
            "p-000007",
            vec![blocker],
            vec!["carol".into(), "dave".into()],
        );
        let message = message(&event.payload("d-1"), Some("https://ferry.example.com/"));
        assert_eq!(
            message,
            json!({"text": "r-abc is blocked from prod (p-000007): needs 1 more approval from group:release-managers. Waiting for approval from carol, dave. <https://ferry.example.com/stages/prod|Open in ferry>"})
        );
    }
}
