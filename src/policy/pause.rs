//! Stopping the line: a paused stage starts no promotion until it is resumed. Who paused it
//! and why travel with the pause, so a blocked promotion can say so.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Blocker;

/// One pause: of the whole pipeline or of one stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pause {
    pub by: String,
    pub reason: String,
    pub at: DateTime<Utc>,
}

/// The pause that holds `stage`: its own, else the pipeline-wide one.
pub fn pause_of<'p>(own: Option<&'p Pause>, pipeline: Option<&'p Pause>) -> Option<&'p Pause> {
    own.or(pipeline)
}

/// The blocker a pause puts in front of a promotion.
pub fn paused_blocker(pause: &Pause) -> Blocker {
    Blocker::Paused {
        by: pause.by.clone(),
        reason: pause.reason.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::clock::tests::at;

    fn pause(by: &str) -> Pause {
        Pause {
            by: by.into(),
            reason: "incident 42".into(),
            at: at("2026-03-02T10:00:00Z"),
        }
    }

    #[test]
    fn a_stage_pause_beats_the_pipeline_pause() {
        let own = pause("alice");
        let all = pause("bob");
        assert_eq!(pause_of(Some(&own), Some(&all)), Some(&own));
        assert_eq!(pause_of(None, Some(&all)), Some(&all));
        assert_eq!(pause_of(None, None), None);
    }

    #[test]
    fn the_blocker_names_who_paused_and_why() {
        let blocker = paused_blocker(&pause("alice"));
        assert_eq!(blocker.kind(), "paused");
        assert_eq!(blocker.to_string(), "paused by alice: incident 42");
        assert_eq!(
            serde_json::to_value(&blocker).expect("json"),
            serde_json::json!({"kind": "paused", "by": "alice", "reason": "incident 42"})
        );
    }
}
