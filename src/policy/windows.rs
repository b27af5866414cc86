//! Time windows: whether a stage may be entered at an instant, and when it next may.
//!
//! Every cron expression is matched against the local minute of the policy's time zone
//! that contains the instant. No `windows` block means always open; with one, a minute is
//! open when it matches an allow expression (or there are none) and no deny window holds.
//! Deny beats allow. A deny period holds from `from` (inclusive) to `until` (exclusive);
//! a recurring deny holds in every minute its expression matches.

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use super::clock;
use crate::pipeline::{DenyWindow, Policy, Windows};

/// How far ahead the next open minute is searched.
pub const HORIZON: TimeDelta = TimeDelta::days(366);

/// Upper bound on search steps, so a pathological policy cannot make a search slow.
const MAX_STEPS: usize = 100_000;

/// The state of a policy's windows at one instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum WindowState {
    /// The stage may be entered now.
    Open,
    /// No allow window matches now; `opens_at` is the next open minute, if there is one
    /// within [`HORIZON`].
    Closed { opens_at: Option<DateTime<Tz>> },
    /// A deny window holds now. `until` is when it ends (`None`: not within [`HORIZON`]);
    /// `opens_at` is the next open minute, which also respects the allow windows and
    /// every other deny window.
    Denied {
        reason: String,
        until: Option<DateTime<Tz>>,
        opens_at: Option<DateTime<Tz>>,
    },
}

impl WindowState {
    /// Whether the stage may be entered.
    pub fn is_open(&self) -> bool {
        matches!(self, WindowState::Open)
    }
}

/// The window state of `policy` at `now`.
pub fn window_at(policy: &Policy, now: DateTime<Utc>) -> WindowState {
    let Some(windows) = &policy.windows else {
        return WindowState::Open;
    };
    let tz = policy.timezone;
    let limit = horizon(now);
    let local = |t: Option<DateTime<Utc>>| t.map(|t| t.with_timezone(&tz));
    if let Some((reason, until)) = holding_deny(windows, tz, now, limit) {
        let opens_at = next_open(windows, tz, now, limit);
        return WindowState::Denied {
            reason: reason.to_string(),
            until: local(until),
            opens_at: local(opens_at),
        };
    }
    if allows(windows, tz, now) {
        return WindowState::Open;
    }
    WindowState::Closed {
        opens_at: local(next_open(windows, tz, now, limit)),
    }
}

/// The first open instant at or after `now` (within [`HORIZON`]), in the policy's zone.
pub fn next_open_at(policy: &Policy, now: DateTime<Utc>) -> Option<DateTime<Tz>> {
    match &policy.windows {
        None => Some(now.with_timezone(&policy.timezone)),
        Some(windows) => next_open(windows, policy.timezone, now, horizon(now))
            .map(|t| t.with_timezone(&policy.timezone)),
    }
}

/// The end of the search from `now`.
fn horizon(now: DateTime<Utc>) -> DateTime<Utc> {
    now.checked_add_signed(HORIZON)
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Whether an allow expression matches the minute of `t` (or there are none).
fn allows(windows: &Windows, tz: Tz, t: DateTime<Utc>) -> bool {
    windows.allow.is_empty() || windows.allow.iter().any(|a| clock::matches(&a.cron, tz, t))
}

/// The allowed instants, searched forward: remembers each allow expression's next match,
/// so that one which never matches within the horizon is searched only once.
struct Allowed<'w> {
    windows: &'w Windows,
    tz: Tz,
    limit: DateTime<Utc>,
    /// Per allow expression: not searched yet, or its first match at or after the last
    /// instant asked for (`None`: none before `limit`).
    next: Vec<Option<Option<DateTime<Utc>>>>,
}

impl<'w> Allowed<'w> {
    fn new(windows: &'w Windows, tz: Tz, limit: DateTime<Utc>) -> Self {
        let next = vec![None; windows.allow.len()];
        Allowed {
            windows,
            tz,
            limit,
            next,
        }
    }

    /// The first instant at or after `t` that an allow expression matches.
    fn at_or_after(&mut self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.windows.allow.is_empty() {
            return Some(t);
        }
        let (tz, limit) = (self.tz, self.limit);
        let allow = self.windows.allow.iter().zip(&mut self.next);
        allow
            .filter_map(|(allow, next)| {
                let found = match *next {
                    Some(None) => None,
                    Some(Some(at)) if at >= t => Some(at),
                    _ => clock::next_match(&allow.cron, tz, t, limit),
                };
                *next = Some(found);
                found
            })
            .min()
    }
}

/// When `deny` holds at `t`, the instant it ends (`None`: not before `limit`).
fn deny_end(
    deny: &DenyWindow,
    tz: Tz,
    t: DateTime<Utc>,
    limit: DateTime<Utc>,
) -> Option<Option<DateTime<Utc>>> {
    match deny {
        DenyWindow::Period { from, until, .. } => {
            (*from <= t && t < *until).then(|| Some(until.with_timezone(&Utc)))
        }
        DenyWindow::Recurring { cron, .. } => {
            clock::matches(&cron.cron, tz, t).then(|| clock::end_of_match(&cron.cron, tz, t, limit))
        }
    }
}

fn reason(deny: &DenyWindow) -> &str {
    match deny {
        DenyWindow::Period { reason, .. } | DenyWindow::Recurring { reason, .. } => reason,
    }
}

/// The deny window holding at `t` that lasts longest (the first listed among equals),
/// with its end.
fn holding_deny(
    windows: &Windows,
    tz: Tz,
    t: DateTime<Utc>,
    limit: DateTime<Utc>,
) -> Option<(&str, Option<DateTime<Utc>>)> {
    let mut found: Option<(&str, Option<DateTime<Utc>>)> = None;
    for deny in &windows.deny {
        let Some(end) = deny_end(deny, tz, t, limit) else {
            continue;
        };
        let lasts_longer = match found {
            None => true,
            Some((_, Some(current))) => end.is_none_or(|end| end > current),
            Some((_, None)) => false,
        };
        if lasts_longer {
            found = Some((reason(deny), end));
        }
    }
    found
}

/// The first open instant at or after `now` and before `limit`: alternately the next
/// allowed minute and the end of the deny windows holding then.
fn next_open(
    windows: &Windows,
    tz: Tz,
    now: DateTime<Utc>,
    limit: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let mut allowed = Allowed::new(windows, tz, limit);
    let mut t = now;
    for _ in 0..MAX_STEPS {
        t = allowed.at_or_after(t)?;
        match holding_deny(windows, tz, t, limit) {
            None => return Some(t),
            Some((_, end)) => t = end?,
        }
        if t >= limit {
            return None;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::Groups;
    use crate::policy::clock::tests::at;

    fn policy(windows: &str) -> Policy {
        let text = format!(
            "apiVersion: ferry/v1\nkind: Policy\nmetadata: {{name: prod}}\nspec:\n  windows:\n{windows}"
        );
        Policy::from_yaml("policies/prod.yaml", &text, &Groups::default()).expect("test policy")
    }

    /// Office hours in Berlin, a lunch break and the year-end freeze.
    const OFFICE: &str = r#"
    timezone: Europe/Berlin
    allow: ["* 9-16 * * Mon-Thu"]
    deny:
    - {cron: "* 12 * * *", reason: lunch}
    - {from: "2026-12-20T00:00:00+01:00", until: "2027-01-04T00:00:00+01:00", reason: year-end freeze}
"#;

    fn open() -> WindowState {
        WindowState::Open
    }

    fn closed(opens_at: &str) -> WindowState {
        WindowState::Closed {
            opens_at: Some(at(opens_at).with_timezone(&chrono_tz::Europe::Berlin)),
        }
    }

    fn denied(reason: &str, until: &str, opens_at: &str) -> WindowState {
        let local = |t: &str| Some(at(t).with_timezone(&chrono_tz::Europe::Berlin));
        WindowState::Denied {
            reason: reason.into(),
            until: local(until),
            opens_at: local(opens_at),
        }
    }

    #[test]
    fn office_hours_edges_lunch_and_freeze() {
        let cases = [
            // Monday 8 June 2026: the first open minute, the minute before it, the last one and the one after.
            (
                "2026-06-08T08:59:59+02:00",
                closed("2026-06-08T09:00:00+02:00"),
            ),
            ("2026-06-08T09:00:00+02:00", open()),
            ("2026-06-08T11:59:59+02:00", open()),
            ("2026-06-08T16:59:59+02:00", open()),
            (
                "2026-06-08T17:00:00+02:00",
                closed("2026-06-09T09:00:00+02:00"),
            ),
            // Deny beats allow: lunch inside office hours.
            (
                "2026-06-08T12:00:00+02:00",
                denied(
                    "lunch",
                    "2026-06-08T13:00:00+02:00",
                    "2026-06-08T13:00:00+02:00",
                ),
            ),
            (
                "2026-06-08T12:59:00+02:00",
                denied(
                    "lunch",
                    "2026-06-08T13:00:00+02:00",
                    "2026-06-08T13:00:00+02:00",
                ),
            ),
            ("2026-06-08T13:00:00+02:00", open()),
            // Thursday evening opens on Monday; the weekend lunch is denied but closed anyway.
            (
                "2026-06-11T17:00:00+02:00",
                closed("2026-06-15T09:00:00+02:00"),
            ),
            (
                "2026-06-13T12:30:00+02:00",
                denied(
                    "lunch",
                    "2026-06-13T13:00:00+02:00",
                    "2026-06-15T09:00:00+02:00",
                ),
            ),
            // The freeze: `from` inclusive, `until` exclusive, and the next open minute after it.
            ("2026-12-17T16:59:00+01:00", open()),
            (
                "2026-12-19T23:59:59+01:00",
                closed("2027-01-04T09:00:00+01:00"),
            ),
            (
                "2026-12-20T00:00:00+01:00",
                denied(
                    "year-end freeze",
                    "2027-01-04T00:00:00+01:00",
                    "2027-01-04T09:00:00+01:00",
                ),
            ),
            (
                "2027-01-03T23:59:59+01:00",
                denied(
                    "year-end freeze",
                    "2027-01-04T00:00:00+01:00",
                    "2027-01-04T09:00:00+01:00",
                ),
            ),
            (
                "2027-01-04T00:00:00+01:00",
                closed("2027-01-04T09:00:00+01:00"),
            ),
            ("2027-01-04T09:00:00+01:00", open()),
        ];
        let policy = policy(OFFICE);
        for (now, expected) in cases {
            assert_eq!(window_at(&policy, at(now)), expected, "at {now}");
        }
    }

    #[test]
    fn daylight_saving_changes_in_berlin() {
        let nightly =
            policy("    timezone: Europe/Berlin\n    allow: [\"30 2 * * *\", \"* 2 * * Sun\"]\n");
        let cases = [
            // Spring: 02:00-02:59 does not exist on 29 March; the next 02:30 is on 30 March.
            (
                "2026-03-29T01:59:00+01:00",
                closed("2026-03-30T02:30:00+02:00"),
            ),
            (
                "2026-03-29T03:00:00+02:00",
                closed("2026-03-30T02:30:00+02:00"),
            ),
            ("2026-03-30T02:30:00+02:00", open()),
            // Autumn: 02:00-02:59 happens twice on 25 October and both passes are open.
            (
                "2026-10-25T01:59:00+02:00",
                closed("2026-10-25T02:00:00+02:00"),
            ),
            ("2026-10-25T02:30:00+02:00", open()),
            ("2026-10-25T02:59:59+02:00", open()),
            ("2026-10-25T02:00:00+01:00", open()),
            ("2026-10-25T02:59:00+01:00", open()),
            (
                "2026-10-25T03:00:00+01:00",
                closed("2026-10-26T02:30:00+01:00"),
            ),
        ];
        for (now, expected) in cases {
            assert_eq!(window_at(&nightly, at(now)), expected, "at {now}");
        }
        // A fixed-time window in the repeated hour: the second 02:30 opens 45 minutes after 02:45 CEST.
        let fixed = policy("    timezone: Europe/Berlin\n    allow: [\"30 2 * * *\"]\n");
        assert_eq!(
            window_at(&fixed, at("2026-10-25T02:45:00+02:00")),
            closed("2026-10-25T02:30:00+01:00")
        );
        // Office hours across both changes open at 09:00 local time, whatever the offset.
        let office = policy(OFFICE);
        assert_eq!(
            window_at(&office, at("2026-03-26T17:00:00+01:00")),
            closed("2026-03-30T09:00:00+02:00")
        );
        assert_eq!(
            window_at(&office, at("2026-10-22T17:00:00+02:00")),
            closed("2026-10-26T09:00:00+01:00")
        );
    }

    #[test]
    fn daylight_saving_changes_in_new_york() {
        let p =
            policy("    timezone: America/New_York\n    allow: [\"30 2 * * *\", \"30 1 * * *\"]\n");
        let ny = |t: &str| Some(at(t).with_timezone(&chrono_tz::America::New_York));
        let cases = [
            // Spring, 8 March 2026: 01:30 EST exists, 02:30 does not.
            ("2026-03-08T01:30:00-05:00", WindowState::Open),
            (
                "2026-03-08T01:31:00-05:00",
                WindowState::Closed {
                    opens_at: ny("2026-03-09T01:30:00-04:00"),
                },
            ),
            // Autumn, 1 November 2026: 01:30 happens as EDT and again as EST.
            ("2026-11-01T01:30:00-04:00", WindowState::Open),
            (
                "2026-11-01T01:45:00-04:00",
                WindowState::Closed {
                    opens_at: ny("2026-11-01T01:30:00-05:00"),
                },
            ),
            ("2026-11-01T01:30:00-05:00", WindowState::Open),
            (
                "2026-11-01T01:31:00-05:00",
                WindowState::Closed {
                    opens_at: ny("2026-11-01T02:30:00-05:00"),
                },
            ),
        ];
        for (now, expected) in cases {
            assert_eq!(window_at(&p, at(now)), expected, "at {now}");
        }
    }

    #[test]
    fn without_allow_expressions_only_denies_close() {
        let no_windows = Policy::from_yaml(
            "policies/qa.yaml",
            "apiVersion: ferry/v1\nkind: Policy\nmetadata: {name: qa}\nspec: {}\n",
            &Groups::default(),
        )
        .expect("policy");
        assert_eq!(window_at(&no_windows, at("2026-12-24T12:00:00Z")), open());
        assert_eq!(
            next_open_at(&no_windows, at("2026-12-24T12:00:00Z")),
            Some(at("2026-12-24T12:00:00Z").with_timezone(&Tz::UTC))
        );
        let deny_only = policy(
            r#"
    timezone: Europe/Berlin
    deny:
    - {from: "2026-12-20T00:00:00+01:00", until: "2027-01-04T00:00:00+01:00", reason: year-end freeze}
    - {cron: "* * * * Sat,Sun", reason: weekend}
"#,
        );
        assert_eq!(
            window_at(&deny_only, at("2026-12-18T23:59:00+01:00")),
            open()
        );
        assert_eq!(
            window_at(&deny_only, at("2026-06-13T10:00:00+02:00")),
            denied(
                "weekend",
                "2026-06-15T00:00:00+02:00",
                "2026-06-15T00:00:00+02:00"
            )
        );
        // 4 January 2027 is a Monday: the freeze ends straight into an open minute.
        let end = "2027-01-04T00:00:00+01:00";
        assert_eq!(
            window_at(&deny_only, at("2027-01-02T10:00:00+01:00")),
            denied("year-end freeze", end, end)
        );
        assert_eq!(window_at(&deny_only, at(end)), open());
    }

    #[test]
    fn overlapping_denies_report_the_longest_and_open_after_all() {
        let p = policy(
            r#"
    timezone: UTC
    deny:
    - {from: "2026-06-08T10:00:00Z", until: "2026-06-08T11:00:00Z", reason: migration}
    - {from: "2026-06-08T10:30:00Z", until: "2026-06-08T12:00:00Z", reason: audit}
    - {from: "2026-06-08T12:00:00Z", until: "2026-06-08T12:00:30Z", reason: handover}
"#,
        );
        let utc = |t: &str| Some(at(t).with_timezone(&Tz::UTC));
        let state = |reason: &str, until: &str| WindowState::Denied {
            reason: reason.into(),
            until: utc(until),
            opens_at: utc("2026-06-08T12:00:30Z"),
        };
        assert_eq!(
            window_at(&p, at("2026-06-08T10:00:00Z")),
            state("migration", "2026-06-08T11:00:00Z")
        );
        assert_eq!(
            window_at(&p, at("2026-06-08T10:45:00Z")),
            state("audit", "2026-06-08T12:00:00Z")
        );
        assert_eq!(
            window_at(&p, at("2026-06-08T12:00:29Z")),
            state("handover", "2026-06-08T12:00:30Z")
        );
        assert_eq!(window_at(&p, at("2026-06-08T12:00:30Z")), open());
    }

    #[test]
    fn an_allow_expression_that_never_matches_does_not_hide_the_others() {
        let office = policy(OFFICE);
        let with_never = policy(&OFFICE.replace("allow: [", "allow: [\"0 0 30 2 *\", "));
        for now in [
            "2026-06-08T12:30:00+02:00",
            "2026-06-11T17:00:00+02:00",
            "2026-12-21T10:00:00+01:00",
        ] {
            assert_eq!(
                window_at(&with_never, at(now)),
                window_at(&office, at(now)),
                "at {now}"
            );
        }
    }

    #[test]
    fn a_window_that_never_opens_says_so() {
        let never = policy("    timezone: Europe/Berlin\n    allow: [\"0 0 30 2 *\"]\n");
        assert_eq!(
            window_at(&never, at("2026-06-08T10:00:00Z")),
            WindowState::Closed { opens_at: None }
        );
        let always_denied = policy(
            "    timezone: Europe/Berlin\n    deny: [{cron: \"* * * * *\", reason: read-only}]\n",
        );
        let expected = WindowState::Denied {
            reason: "read-only".into(),
            until: None,
            opens_at: None,
        };
        assert_eq!(
            window_at(&always_denied, at("2026-06-08T10:00:00Z")),
            expected
        );
        let beyond_horizon = policy(
            r#"
    timezone: UTC
    deny: [{from: "2026-01-01T00:00:00Z", until: "2028-01-01T00:00:00Z", reason: sunset}]
"#,
        );
        let expected = WindowState::Denied {
            reason: "sunset".into(),
            until: Some(at("2028-01-01T00:00:00Z").with_timezone(&Tz::UTC)),
            opens_at: None,
        };
        assert_eq!(
            window_at(&beyond_horizon, at("2026-06-08T10:00:00Z")),
            expected
        );
        // Every allowed minute is denied: the search gives up at the horizon.
        let cancelled = policy(
            "    timezone: UTC\n    allow: [\"0 * * * *\"]\n    deny: [{cron: \"0 * * * *\", reason: cancelled}]\n",
        );
        assert_eq!(next_open_at(&cancelled, at("2026-06-08T10:30:00Z")), None);
    }
}
