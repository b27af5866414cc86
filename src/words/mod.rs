//! How ferry's values read to people: the one short line of each blocker and note, times in
//! the policy's time zone, durations rounded up. The domain keeps decisions as data
//! ([`Blocker`], [`Note`]); the command line, the web UI and the notification messages all
//! word them here, so a stage reads the same wherever it is shown.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, FixedOffset};
use chrono_tz::Tz;

use crate::pipeline::Requires;
use crate::policy::clock;
use crate::policy::{Blocker, Evaluation, HORIZON, Note};

impl fmt::Display for Evaluation {
    /// `allowed`, or the blockers separated by `; `.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.allowed() {
            return f.write_str("allowed");
        }
        let lines: Vec<String> = self.blockers.iter().map(Blocker::to_string).collect();
        f.write_str(&lines.join("; "))
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
pub fn human(d: Duration) -> String {
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

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Note::Rollback => {
                f.write_str("rollback: the upstream requirement and soak do not apply")
            }
            Note::ApprovalsSkipped => {
                f.write_str("rollback: approvals are not required (rollback.skipApprovals)")
            }
            Note::NotReviewer { user, from } => write!(
                f,
                "the approval by {user} does not count: reviewers are {}",
                from.join(", ")
            ),
            Note::SelfApproval { user } => write!(
                f,
                "the approval by {user} does not count: they requested this promotion"
            ),
            Note::Expired {
                count,
                valid_seconds,
            } => {
                let valid = human(Duration::from_secs(*valid_seconds));
                match count {
                    1 => write!(f, "1 approval expired (approvals count for {valid})"),
                    n => write!(f, "{n} approvals expired (approvals count for {valid})"),
                }
            }
            Note::Stale { count } => match count {
                1 => f.write_str("1 approval no longer counts: the rendered content changed"),
                n => write!(
                    f,
                    "{n} approvals no longer count: the rendered content changed"
                ),
            },
            Note::RejectionStale { by } => write!(
                f,
                "the rejection by {by} no longer applies: the rendered content changed"
            ),
            Note::WindowOverridden {
                user,
                reason,
                instead,
            } => write!(
                f,
                "window overridden by {user}: {reason} (instead of: {instead})"
            ),
            Note::OverrideUnneeded { user } => write!(
                f,
                "the window is open; the override by {user} was not needed"
            ),
            Note::DryRunFailed { error } => write!(f, "server-side dry run failed: {error}"),
            Note::Recorded { text } => f.write_str(text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::Principal;
    use crate::policy::blocker::tests::{berlin, freeze, names, window};
    use crate::policy::clock::tests::at;

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
    fn every_note_reads_as_one_line() {
        let cases = [
            (
                Note::Rollback,
                "rollback: the upstream requirement and soak do not apply",
            ),
            (
                Note::ApprovalsSkipped,
                "rollback: approvals are not required (rollback.skipApprovals)",
            ),
            (
                Note::NotReviewer {
                    user: "eve".into(),
                    from: names(&["group:release-managers", "alice"]),
                },
                "the approval by eve does not count: reviewers are group:release-managers, alice",
            ),
            (
                Note::SelfApproval {
                    user: "alice".into(),
                },
                "the approval by alice does not count: they requested this promotion",
            ),
            (
                Note::Expired {
                    count: 1,
                    valid_seconds: 86_400,
                },
                "1 approval expired (approvals count for 1d)",
            ),
            (
                Note::Expired {
                    count: 3,
                    valid_seconds: 3_600,
                },
                "3 approvals expired (approvals count for 1h)",
            ),
            (
                Note::Stale { count: 1 },
                "1 approval no longer counts: the rendered content changed",
            ),
            (
                Note::Stale { count: 2 },
                "2 approvals no longer count: the rendered content changed",
            ),
            (
                Note::RejectionStale { by: "bob".into() },
                "the rejection by bob no longer applies: the rendered content changed",
            ),
            (
                Note::WindowOverridden {
                    user: "dana".into(),
                    reason: "hotfix".into(),
                    instead: Box::new(window(berlin("2026-06-09T09:00:00+02:00"))),
                },
                "window overridden by dana: hotfix (instead of: window opens Tue 9 Jun 09:00 Europe/Berlin)",
            ),
            (
                Note::OverrideUnneeded {
                    user: "dana".into(),
                },
                "the window is open; the override by dana was not needed",
            ),
            (
                Note::DryRunFailed {
                    error: "connection refused".into(),
                },
                "server-side dry run failed: connection refused",
            ),
            (
                Note::Recorded {
                    text: "as it was".into(),
                },
                "as it was",
            ),
        ];
        for (note, text) in cases {
            assert_eq!(note.to_string(), text);
        }
    }

    #[test]
    fn an_evaluation_reads_as_its_blockers() {
        let mut evaluation = Evaluation::default();
        assert_eq!(evaluation.to_string(), "allowed");
        evaluation.blockers = vec![
            Blocker::Paused {
                by: "dana".into(),
                reason: "incident".into(),
            },
            window(None),
        ];
        assert_eq!(
            evaluation.to_string(),
            "paused by dana: incident; window closed: no open minute within the next 366 days"
        );
    }
}
