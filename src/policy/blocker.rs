//! Why a promotion may not happen yet: one [`Blocker`] per unmet requirement, each shown as
//! one short line a person can act on, times in the policy's time zone.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::clock;
use super::windows::HORIZON;
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

impl fmt::Display for Blocker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Blocker::Upstream { missing, requires } => {
                let stages = match (requires, missing.len()) {
                    (Requires::Any, 2..) => format!("one of: {}", missing.join(", ")),
                    _ => and_list(missing),
                };
                write!(f, "needs verification in {stages}")
            }
            Blocker::Soak {
                upstream,
                remaining_seconds,
                ..
            } => write!(
                f,
                "soaking in {upstream}: ready in {}",
                human(Duration::from_secs(*remaining_seconds))
            ),
            Blocker::Approvals {
                needed,
                from,
                stale,
                ..
            } => approvals(f, *needed, from, *stale),
            Blocker::Rejected { by, comment, .. } => match comment {
                Some(comment) => write!(f, "rejected by {by}: {comment}"),
                None => write!(f, "rejected by {by}"),
            },
            Blocker::Window { opens_at, timezone } => match opens_at {
                Some(t) => write!(f, "window opens {}", local(t, timezone)),
                None => write!(f, "window closed: {}", never()),
            },
            Blocker::Freeze {
                reason,
                until,
                opens_at,
                timezone,
            } => denied(f, reason, until.as_ref(), opens_at.as_ref(), timezone),
            Blocker::Paused { by, reason } => write!(f, "paused by {by}: {reason}"),
            Blocker::Recorded { text, .. } => f.write_str(text),
        }
    }
}

/// `t` as people read it in the time zone named `timezone`.
fn local(t: &DateTime<FixedOffset>, timezone: &str) -> String {
    match timezone.parse::<Tz>() {
        Ok(tz) => clock::display(&t.with_timezone(&tz)),
        Err(_) => format!("{} {timezone}", t.format("%a %-d %b %H:%M")),
    }
}

fn approvals(f: &mut fmt::Formatter<'_>, more: u32, from: &[String], stale: u32) -> fmt::Result {
    let plural = if more == 1 { "" } else { "s" };
    write!(
        f,
        "needs {more} more approval{plural} from {}",
        from.join(", ")
    )?;
    match stale {
        0 => Ok(()),
        1 => write!(
            f,
            " (1 approval no longer counts: the rendered content changed)"
        ),
        n => write!(
            f,
            " ({n} approvals no longer count: the rendered content changed)"
        ),
    }
}

fn denied(
    f: &mut fmt::Formatter<'_>,
    reason: &str,
    until: Option<&DateTime<FixedOffset>>,
    opens_at: Option<&DateTime<FixedOffset>>,
    timezone: &str,
) -> fmt::Result {
    let Some(until) = until else {
        return write!(f, "{reason}: no end {}", within());
    };
    write!(f, "{reason} until {}", local(until, timezone))?;
    match opens_at {
        Some(opens) if opens != until => write!(f, "; window opens {}", local(opens, timezone)),
        _ => Ok(()),
    }
}

fn never() -> String {
    format!("no open minute {}", within())
}

fn within() -> String {
    format!("within the next {} days", HORIZON.num_days())
}

/// `a`, `a and b`, `a, b and c`.
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// A duration as people read it, rounded up: `45s`, `12m`, `1h5m`, `2d3h`.
pub(crate) fn human(d: Duration) -> String {
    let mut secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    if secs < 60 {
        return format!("{secs}s");
    }
    secs = secs.div_ceil(60) * 60;
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

/// Whole seconds, rounded up.
fn whole_seconds(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::clock::tests::{BERLIN, at};

    fn berlin(t: &str) -> Option<DateTime<Tz>> {
        Some(at(t).with_timezone(&BERLIN))
    }

    fn window(opens_at: Option<DateTime<Tz>>) -> Blocker {
        Blocker::window(opens_at, BERLIN)
    }

    fn freeze(
        reason: &str,
        until: Option<DateTime<Tz>>,
        opens_at: Option<DateTime<Tz>>,
    ) -> Blocker {
        Blocker::freeze(reason, until, opens_at, BERLIN)
    }

    fn names(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn every_blocker_reads_as_one_actionable_line() {
        let release_managers = vec![Principal::Group("release-managers".into())];
        let cases = [
            (
                Blocker::Upstream {
                    missing: names(&["qa"]),
                    requires: Requires::All,
                },
                "upstream",
                "needs verification in qa",
            ),
            (
                Blocker::Upstream {
                    missing: names(&["eu", "us", "ap"]),
                    requires: Requires::All,
                },
                "upstream",
                "needs verification in eu, us and ap",
            ),
            (
                Blocker::Upstream {
                    missing: names(&["eu", "us"]),
                    requires: Requires::Any,
                },
                "upstream",
                "needs verification in one of: eu, us",
            ),
            (
                Blocker::soak(
                    "qa",
                    at("2026-06-09T10:30:00Z"),
                    Duration::from_secs(11 * 60 + 37),
                ),
                "soak",
                "soaking in qa: ready in 12m",
            ),
            (
                Blocker::approvals(1, 2, &release_managers, 0),
                "approvals",
                "needs 1 more approval from group:release-managers",
            ),
            (
                Blocker::approvals(
                    0,
                    2,
                    &[
                        Principal::User("alice".into()),
                        Principal::Group("sre".into()),
                    ],
                    2,
                ),
                "approvals",
                "needs 2 more approvals from alice, group:sre (2 approvals no longer count: the rendered content changed)",
            ),
            (
                Blocker::approvals(1, 2, &release_managers, 1),
                "approvals",
                "needs 1 more approval from group:release-managers (1 approval no longer counts: the rendered content changed)",
            ),
            (
                Blocker::Rejected {
                    by: "bob".into(),
                    at: at("2026-06-09T10:30:00Z"),
                    comment: Some("breaks checkout".into()),
                },
                "rejected",
                "rejected by bob: breaks checkout",
            ),
            (
                Blocker::Rejected {
                    by: "bob".into(),
                    at: at("2026-06-09T10:30:00Z"),
                    comment: None,
                },
                "rejected",
                "rejected by bob",
            ),
            (
                window(berlin("2026-06-09T09:00:00+02:00")),
                "window",
                "window opens Tue 9 Jun 09:00 Europe/Berlin",
            ),
            (
                window(None),
                "window",
                "window closed: no open minute within the next 366 days",
            ),
            (
                freeze(
                    "year-end freeze",
                    berlin("2027-01-04T00:00:00+01:00"),
                    berlin("2027-01-04T00:00:00+01:00"),
                ),
                "freeze",
                "year-end freeze until Mon 4 Jan 00:00 Europe/Berlin",
            ),
            (
                freeze(
                    "year-end freeze",
                    berlin("2027-01-04T00:00:00+01:00"),
                    berlin("2027-01-04T09:00:00+01:00"),
                ),
                "freeze",
                "year-end freeze until Mon 4 Jan 00:00 Europe/Berlin; window opens Mon 4 Jan 09:00 Europe/Berlin",
            ),
            (
                freeze("read-only", None, None),
                "freeze",
                "read-only: no end within the next 366 days",
            ),
            (
                Blocker::Paused {
                    by: "dana".into(),
                    reason: "incident 42".into(),
                },
                "paused",
                "paused by dana: incident 42",
            ),
            (
                Blocker::Recorded {
                    text: "needs 2 more approvals from group:release-managers".into(),
                    of: Some("approvals".into()),
                },
                "recorded",
                "needs 2 more approvals from group:release-managers",
            ),
        ];
        for (blocker, kind, text) in cases {
            assert_eq!(blocker.kind(), kind);
            assert_eq!(blocker.to_string(), text);
        }
    }

    #[test]
    fn durations_round_up() {
        let cases = [
            (0, "0s"),
            (45, "45s"),
            (60, "1m"),
            (61, "2m"),
            (3_900, "1h5m"),
            (183_600, "2d3h"),
        ];
        for (secs, text) in cases {
            assert_eq!(human(Duration::from_secs(secs)), text, "{secs}s");
        }
        assert_eq!(human(Duration::from_millis(59_001)), "1m");
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
