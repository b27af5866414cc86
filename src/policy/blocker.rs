//! Why a promotion may not happen yet: one [`Blocker`] per unmet requirement, as data. How
//! each reads to a person is `crate::words`.

use std::time::Duration;

use chrono::{DateTime, FixedOffset, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::pipeline::{Principal, Requires};

/// One unmet requirement of a promotion: what the state store keeps, `-o json` prints and
/// the API returns, tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Blocker {
    /// The revision is not verified in the upstream stage(s) the stage requires.
    Upstream {
        missing: Vec<String>,
        requires: Requires,
    },
    /// The revision has not been verified in `upstream` for the policy's `soak` yet.
    Soak {
        upstream: String,
        ready_at: DateTime<Utc>,
        /// Whole seconds from the decision until `ready_at`, rounded up.
        remaining_seconds: u64,
    },
    /// Fewer approvals count than the policy requires: `needed` more from `from`. `stale`
    /// counts approvals that would count but were given for different rendered content.
    Approvals {
        needed: u32,
        from: Vec<String>,
        have: u32,
        required: u32,
        stale: u32,
    },
    /// Someone rejected exactly this rendered content.
    Rejected {
        by: String,
        at: DateTime<Utc>,
        comment: Option<String>,
    },
    /// No allow window is open; `opens_at` is the next open minute (in `timezone`), if any
    /// within a year.
    Window {
        opens_at: Option<DateTime<FixedOffset>>,
        timezone: String,
    },
    /// A deny window (freeze) holds until `until`; the window next opens at `opens_at`.
    Freeze {
        reason: String,
        until: Option<DateTime<FixedOffset>>,
        opens_at: Option<DateTime<FixedOffset>>,
        timezone: String,
    },
    /// The stage (or the whole pipeline) is paused: no promotion starts until resumed.
    Paused { by: String, reason: String },
    /// A blocker an earlier ferry recorded as a sentence (state layout 1), kept as it was;
    /// `of` is the kind it recorded with it.
    Recorded {
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        of: Option<String>,
    },
}

impl Blocker {
    /// `needed` more approvals of `required` from `from` (`have` count already).
    pub fn approvals(have: u32, required: u32, from: &[Principal], stale: u32) -> Blocker {
        Blocker::Approvals {
            needed: required.saturating_sub(have),
            from: from.iter().map(Principal::to_string).collect(),
            have,
            required,
            stale,
        }
    }

    /// The soak in `upstream` that ends at `ready_at`, `remaining` from now.
    pub fn soak(upstream: &str, ready_at: DateTime<Utc>, remaining: Duration) -> Blocker {
        Blocker::Soak {
            upstream: upstream.to_string(),
            ready_at,
            remaining_seconds: whole_seconds(remaining),
        }
    }

    /// A closed window that next opens at `opens_at`.
    pub fn window(opens_at: Option<DateTime<Tz>>, timezone: Tz) -> Blocker {
        Blocker::Window {
            opens_at: opens_at.map(|t| t.fixed_offset()),
            timezone: timezone.name().to_string(),
        }
    }

    /// A freeze for `reason` until `until`, after which the window opens at `opens_at`.
    pub fn freeze(
        reason: &str,
        until: Option<DateTime<Tz>>,
        opens_at: Option<DateTime<Tz>>,
        timezone: Tz,
    ) -> Blocker {
        Blocker::Freeze {
            reason: reason.to_string(),
            until: until.map(|t| t.fixed_offset()),
            opens_at: opens_at.map(|t| t.fixed_offset()),
            timezone: timezone.name().to_string(),
        }
    }

    /// A stable name of the kind of blocker: `upstream`, `soak`, `approvals`, `rejected`,
    /// `window`, `freeze`, `paused` or `recorded`.
    pub fn kind(&self) -> &'static str {
        match self {
            Blocker::Upstream { .. } => "upstream",
            Blocker::Soak { .. } => "soak",
            Blocker::Approvals { .. } => "approvals",
            Blocker::Rejected { .. } => "rejected",
            Blocker::Window { .. } => "window",
            Blocker::Freeze { .. } => "freeze",
            Blocker::Paused { .. } => "paused",
            Blocker::Recorded { .. } => "recorded",
        }
    }
}

/// Whole seconds, rounded up.
fn whole_seconds(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::policy::clock::tests::{BERLIN, at};

    pub(crate) fn berlin(t: &str) -> Option<DateTime<Tz>> {
        Some(at(t).with_timezone(&BERLIN))
    }

    pub(crate) fn window(opens_at: Option<DateTime<Tz>>) -> Blocker {
        Blocker::window(opens_at, BERLIN)
    }

    pub(crate) fn freeze(
        reason: &str,
        until: Option<DateTime<Tz>>,
        opens_at: Option<DateTime<Tz>>,
    ) -> Blocker {
        Blocker::freeze(reason, until, opens_at, BERLIN)
    }

    pub(crate) fn names(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn blockers_serialize_with_their_kind_and_read_back() {
        let cases = [
            (
                Blocker::soak(
                    "qa",
                    at("2026-06-09T10:30:00Z"),
                    Duration::from_millis(90_500),
                ),
                serde_json::json!({"kind": "soak", "upstream": "qa", "ready_at": "2026-06-09T10:30:00Z", "remaining_seconds": 91}),
            ),
            (
                freeze("year-end freeze", berlin("2027-01-04T00:00:00+01:00"), None),
                serde_json::json!({"kind": "freeze", "reason": "year-end freeze", "until": "2027-01-04T00:00:00+01:00", "opens_at": null, "timezone": "Europe/Berlin"}),
            ),
            (
                window(berlin("2026-06-09T09:00:00+02:00")),
                serde_json::json!({"kind": "window", "opens_at": "2026-06-09T09:00:00+02:00", "timezone": "Europe/Berlin"}),
            ),
            (
                Blocker::approvals(0, 2, &[Principal::Group("release-managers".into())], 0),
                serde_json::json!({"kind": "approvals", "needed": 2, "from": ["group:release-managers"], "have": 0, "required": 2, "stale": 0}),
            ),
            (
                Blocker::Upstream {
                    missing: names(&["dev"]),
                    requires: Requires::All,
                },
                serde_json::json!({"kind": "upstream", "missing": ["dev"], "requires": "all"}),
            ),
            (
                Blocker::Rejected {
                    by: "bob".into(),
                    at: at("2026-06-09T10:30:00Z"),
                    comment: Some("no".into()),
                },
                serde_json::json!({"kind": "rejected", "by": "bob", "at": "2026-06-09T10:30:00Z", "comment": "no"}),
            ),
            (
                Blocker::Paused {
                    by: "dana".into(),
                    reason: "incident".into(),
                },
                serde_json::json!({"kind": "paused", "by": "dana", "reason": "incident"}),
            ),
        ];
        for (blocker, json) in cases {
            assert_eq!(serde_json::to_value(&blocker).expect("serializable"), json);
            let back: Blocker = serde_json::from_value(json).expect("deserializable");
            assert_eq!(back, blocker);
        }
    }
}
