//! Why a promotion may not happen yet: one [`Blocker`] per unmet requirement, each shown as
//! one short line a person can act on, times in the policy's time zone.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use super::clock;
use super::windows::HORIZON;
use crate::pipeline::{Principal, Requires};

/// One unmet requirement of a promotion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Blocker {
    /// The revision is not verified in the upstream stage(s) the stage requires.
    Upstream {
        missing: Vec<String>,
        requires: Requires,
    },
    /// The revision has not been verified upstream for the policy's `soak` yet.
    Soak {
        stage: String,
        ready_at: DateTime<Utc>,
        #[serde(rename = "remaining_seconds", serialize_with = "whole_seconds")]
        remaining: Duration,
    },
    /// Fewer approvals count than the policy requires. `stale` counts approvals that
    /// would count but were given for different rendered content.
    Approvals {
        have: u32,
        need: u32,
        from: Vec<Principal>,
        stale: u32,
    },
    /// Someone rejected exactly this rendered content.
    Rejected {
        by: String,
        at: DateTime<Utc>,
        comment: Option<String>,
    },
    /// No allow window is open; `opens_at` is the next open minute, if any within a year.
    #[serde(rename = "window")]
    WindowClosed { opens_at: Option<DateTime<Tz>> },
    /// A deny window (freeze) holds until `until`; the window next opens at `opens_at`.
    #[serde(rename = "freeze")]
    Denied {
        reason: String,
        until: Option<DateTime<Tz>>,
        opens_at: Option<DateTime<Tz>>,
    },
    /// The stage (or the whole pipeline) is paused: no promotion starts until resumed.
    Paused { by: String, reason: String },
}

impl Blocker {
    /// A stable name of the kind of blocker: `upstream`, `soak`, `approvals`, `rejected`,
    /// `window`, `freeze` or `paused`.
    pub fn kind(&self) -> &'static str {
        match self {
            Blocker::Upstream { .. } => "upstream",
            Blocker::Soak { .. } => "soak",
            Blocker::Approvals { .. } => "approvals",
            Blocker::Rejected { .. } => "rejected",
            Blocker::WindowClosed { .. } => "window",
            Blocker::Denied { .. } => "freeze",
            Blocker::Paused { .. } => "paused",
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
                stage, remaining, ..
            } => write!(f, "soaking in {stage}: ready in {}", human(*remaining)),
            Blocker::Approvals {
                have,
                need,
                from,
                stale,
            } => approvals(f, need.saturating_sub(*have), from, *stale),
            Blocker::Rejected { by, comment, .. } => match comment {
                Some(comment) => write!(f, "rejected by {by}: {comment}"),
                None => write!(f, "rejected by {by}"),
            },
            Blocker::WindowClosed { opens_at } => match opens_at {
                Some(t) => write!(f, "window opens {}", clock::display(t)),
                None => write!(f, "window closed: {}", never()),
            },
            Blocker::Denied {
                reason,
                until,
                opens_at,
            } => denied(f, reason, until.as_ref(), opens_at.as_ref()),
            Blocker::Paused { by, reason } => write!(f, "paused by {by}: {reason}"),
        }
    }
}

fn approvals(f: &mut fmt::Formatter<'_>, more: u32, from: &[Principal], stale: u32) -> fmt::Result {
    let from: Vec<String> = from.iter().map(Principal::to_string).collect();
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
    until: Option<&DateTime<Tz>>,
    opens_at: Option<&DateTime<Tz>>,
) -> fmt::Result {
    let Some(until) = until else {
        return write!(f, "{reason}: no end {}", within());
    };
    write!(f, "{reason} until {}", clock::display(until))?;
    match opens_at {
        Some(opens) if opens != until => write!(f, "; window opens {}", clock::display(opens)),
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

fn whole_seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_secs() + u64::from(d.subsec_nanos() > 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::clock::tests::{BERLIN, at};

    fn berlin(t: &str) -> Option<DateTime<Tz>> {
        Some(at(t).with_timezone(&BERLIN))
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
                Blocker::Soak {
                    stage: "qa".into(),
                    ready_at: at("2026-06-09T10:30:00Z"),
                    remaining: Duration::from_secs(11 * 60 + 37),
                },
                "soak",
                "soaking in qa: ready in 12m",
            ),
            (
                Blocker::Approvals {
                    have: 1,
                    need: 2,
                    from: release_managers.clone(),
                    stale: 0,
                },
                "approvals",
                "needs 1 more approval from group:release-managers",
            ),
            (
                Blocker::Approvals {
                    have: 0,
                    need: 2,
                    from: vec![
                        Principal::User("alice".into()),
                        Principal::Group("sre".into()),
                    ],
                    stale: 2,
                },
                "approvals",
                "needs 2 more approvals from alice, group:sre (2 approvals no longer count: the rendered content changed)",
            ),
            (
                Blocker::Approvals {
                    have: 1,
                    need: 2,
                    from: release_managers,
                    stale: 1,
                },
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
                Blocker::WindowClosed {
                    opens_at: berlin("2026-06-09T09:00:00+02:00"),
                },
                "window",
                "window opens Tue 9 Jun 09:00 Europe/Berlin",
            ),
            (
                Blocker::WindowClosed { opens_at: None },
                "window",
                "window closed: no open minute within the next 366 days",
            ),
            (
                Blocker::Denied {
                    reason: "year-end freeze".into(),
                    until: berlin("2027-01-04T00:00:00+01:00"),
                    opens_at: berlin("2027-01-04T00:00:00+01:00"),
                },
                "freeze",
                "year-end freeze until Mon 4 Jan 00:00 Europe/Berlin",
            ),
            (
                Blocker::Denied {
                    reason: "year-end freeze".into(),
                    until: berlin("2027-01-04T00:00:00+01:00"),
                    opens_at: berlin("2027-01-04T09:00:00+01:00"),
                },
                "freeze",
                "year-end freeze until Mon 4 Jan 00:00 Europe/Berlin; window opens Mon 4 Jan 09:00 Europe/Berlin",
            ),
            (
                Blocker::Denied {
                    reason: "read-only".into(),
                    until: None,
                    opens_at: None,
                },
                "freeze",
                "read-only: no end within the next 366 days",
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
    fn blockers_serialize_with_their_kind() {
        let soak = Blocker::Soak {
            stage: "qa".into(),
            ready_at: at("2026-06-09T10:30:00Z"),
            remaining: Duration::from_millis(90_500),
        };
        let json = serde_json::to_value(&soak).expect("serializable");
        assert_eq!(json["kind"], "soak");
        assert_eq!(json["remaining_seconds"], 91);
        assert_eq!(json["ready_at"], "2026-06-09T10:30:00Z");
        let freeze = Blocker::Denied {
            reason: "year-end freeze".into(),
            until: berlin("2027-01-04T00:00:00+01:00"),
            opens_at: None,
        };
        let json = serde_json::to_value(&freeze).expect("serializable");
        assert_eq!(json["kind"], "freeze");
        assert_eq!(json["until"], "2027-01-04T00:00:00+01:00");
    }
}
