//! Scheduled promotions: which schedule occurrences are due (see docs/policies.md).
//!
//! An occurrence is due when it is at or before now, was not acted on (it is after the last
//! occurrence acted on for that schedule), and is at most `catchUp` old. Only the newest
//! occurrence of each schedule is ever due, so a reconcile run that was down for a while
//! promotes once, not once per missed occurrence.
//!
//! Occurrences are croner's, in the policy's time zone: a schedule with a fixed time (one
//! minute, one hour) whose local time is skipped in spring runs at the first minute after
//! the change, and in the repeated autumn hour it runs once, at the first pass; a schedule
//! with ranges or steps has no occurrences in the skipped hour and runs in both passes of
//! the repeated one.

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use crate::pipeline::Policy;

/// One occurrence of one of a policy's schedules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Occurrence {
    /// The index of the schedule in the policy's `schedule` list.
    pub schedule: usize,
    pub at: DateTime<Utc>,
}

/// The schedule occurrences of `policy` that are due at `now`: at most one, the newest,
/// per schedule. `last_acted(i)` is the occurrence of schedule `i` last acted on, if any.
pub fn due_occurrences(
    policy: &Policy,
    last_acted: &dyn Fn(usize) -> Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Vec<Occurrence> {
    let local = now.with_timezone(&policy.timezone);
    policy
        .schedules
        .iter()
        .enumerate()
        .filter_map(|(i, schedule)| {
            let at = schedule
                .cron
                .cron
                .find_previous_occurrence(&local, true)
                .ok()?
                .with_timezone(&Utc);
            let catch_up = TimeDelta::from_std(schedule.catch_up).unwrap_or(TimeDelta::MAX);
            let fresh = now.signed_duration_since(at) <= catch_up;
            let acted = last_acted(i).is_some_and(|last| at <= last);
            (fresh && !acted).then_some(Occurrence { schedule: i, at })
        })
        .collect()
}

/// The first occurrence of any of `policy`'s schedules strictly after `now`.
pub fn next_occurrence(policy: &Policy, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let local = now.with_timezone(&policy.timezone);
    policy
        .schedules
        .iter()
        .filter_map(|s| s.cron.cron.find_next_occurrence(&local, false).ok())
        .map(|t| t.with_timezone(&Utc))
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::Groups;
    use crate::policy::clock::tests::at;

    fn policy(timezone: &str, schedule: &str) -> Policy {
        let text = format!(
            "apiVersion: ferry/v1\nkind: Policy\nmetadata: {{name: prod}}\nspec:\n  windows: {{timezone: {timezone}}}\n  schedule:\n{schedule}"
        );
        Policy::from_yaml("policies/prod.yaml", &text, &Groups::default()).expect("test policy")
    }

    /// The occurrence last acted on, per schedule index.
    type Acted = &'static [(usize, &'static str)];
    /// The due occurrences, as (schedule index, instant).
    type Due = Vec<(usize, DateTime<Utc>)>;

    fn due(policy: &Policy, last: &[(usize, &str)], now: &str) -> Due {
        let last: Vec<(usize, DateTime<Utc>)> = last.iter().map(|(i, t)| (*i, at(t))).collect();
        let last_acted = |i: usize| last.iter().find(|(j, _)| *j == i).map(|(_, t)| *t);
        due_occurrences(policy, &last_acted, at(now))
            .into_iter()
            .map(|o| (o.schedule, o.at))
            .collect()
    }

    #[test]
    fn due_not_due_caught_up_and_acted() {
        // Tuesdays at 10:00 Berlin (default catch-up 15m), and every day at 18:00 with 2h catch-up.
        let p = policy(
            "Europe/Berlin",
            "  - {cron: \"0 10 * * Tue\", promote: latest-verified}\n  - {cron: \"0 18 * * *\", catchUp: 2h}\n",
        );
        let tue10 = at("2026-06-09T10:00:00+02:00");
        let mon18 = at("2026-06-08T18:00:00+02:00");
        let tue18 = at("2026-06-09T18:00:00+02:00");
        let cases: [(Acted, &str, Due); 10] = [
            // Not yet: a second before; Monday's 18:00 is long past its catch-up.
            (&[], "2026-06-09T09:59:59+02:00", vec![]),
            // Exactly at the occurrence, and at the last second of the catch-up.
            (&[], "2026-06-09T10:00:00+02:00", vec![(0, tue10)]),
            (&[], "2026-06-09T10:15:00+02:00", vec![(0, tue10)]),
            // Catch-up expired.
            (&[], "2026-06-09T10:15:01+02:00", vec![]),
            // Already acted on; acted on the previous week's only.
            (
                &[(0, "2026-06-09T10:00:00+02:00")],
                "2026-06-09T10:05:00+02:00",
                vec![],
            ),
            (
                &[(0, "2026-06-02T10:00:00+02:00")],
                "2026-06-09T10:05:00+02:00",
                vec![(0, tue10)],
            ),
            // Each schedule on its own; the newest occurrence only.
            (&[], "2026-06-08T19:59:00+02:00", vec![(1, mon18)]),
            (&[], "2026-06-08T20:00:01+02:00", vec![]),
            (
                &[(1, "2026-06-08T18:00:00+02:00")],
                "2026-06-09T18:30:00+02:00",
                vec![(1, tue18)],
            ),
            (
                &[(1, "2026-06-09T18:00:00+02:00")],
                "2026-06-09T18:30:00+02:00",
                vec![],
            ),
        ];
        for (last, now, expected) in cases {
            assert_eq!(due(&p, last, now), expected, "at {now} after {last:?}");
        }
    }

    #[test]
    fn only_the_newest_missed_occurrence_is_due() {
        let p = policy("UTC", "  - {cron: \"*/5 * * * *\", catchUp: 1h}\n");
        let expected = vec![(0, at("2026-06-09T10:55:00Z"))];
        assert_eq!(
            due(&p, &[(0, "2026-06-09T10:00:00Z")], "2026-06-09T10:57:00Z"),
            expected
        );
    }

    #[test]
    fn schedules_across_daylight_saving_changes() {
        let fixed = policy("Europe/Berlin", "  - {cron: \"30 2 * * *\", catchUp: 1h}\n");
        let stepped = policy(
            "Europe/Berlin",
            "  - {cron: \"*/30 2 * * *\", catchUp: 20m}\n",
        );
        let cases: [(&Policy, Acted, &str, Due); 8] = [
            // Spring: 02:30 does not exist on 29 March; the fixed-time schedule runs at 03:00.
            (
                &fixed,
                &[],
                "2026-03-29T03:00:00+02:00",
                vec![(0, at("2026-03-29T03:00:00+02:00"))],
            ),
            (
                &fixed,
                &[(0, "2026-03-29T03:00:00+02:00")],
                "2026-03-29T03:30:00+02:00",
                vec![],
            ),
            // ... and a stepped schedule simply has no occurrence in the skipped hour.
            (&stepped, &[], "2026-03-29T03:10:00+02:00", vec![]),
            // Autumn: a fixed-time schedule runs once, in the first pass of 02:30.
            (
                &fixed,
                &[],
                "2026-10-25T02:40:00+02:00",
                vec![(0, at("2026-10-25T02:30:00+02:00"))],
            ),
            (
                &fixed,
                &[(0, "2026-10-25T02:30:00+02:00")],
                "2026-10-25T02:40:00+01:00",
                vec![],
            ),
            // ... and a stepped schedule runs in both passes.
            (
                &stepped,
                &[],
                "2026-10-25T02:40:00+02:00",
                vec![(0, at("2026-10-25T02:30:00+02:00"))],
            ),
            (
                &stepped,
                &[(0, "2026-10-25T02:30:00+02:00")],
                "2026-10-25T02:10:00+01:00",
                vec![(0, at("2026-10-25T02:00:00+01:00"))],
            ),
            (
                &stepped,
                &[(0, "2026-10-25T02:00:00+01:00")],
                "2026-10-25T02:40:00+01:00",
                vec![(0, at("2026-10-25T02:30:00+01:00"))],
            ),
        ];
        for (p, last, now, expected) in cases {
            assert_eq!(due(p, last, now), expected, "at {now} after {last:?}");
        }
    }

    #[test]
    fn next_occurrence_is_the_earliest_of_all_schedules() {
        let p = policy(
            "America/New_York",
            "  - {cron: \"0 10 * * Tue\"}\n  - {cron: \"0 18 * * *\"}\n",
        );
        let cases = [
            (
                "2026-06-09T09:00:00-04:00",
                Some("2026-06-09T10:00:00-04:00"),
            ),
            (
                "2026-06-09T10:00:00-04:00",
                Some("2026-06-09T18:00:00-04:00"),
            ),
            (
                "2026-06-09T18:00:00-04:00",
                Some("2026-06-10T18:00:00-04:00"),
            ),
            // Across the autumn change in New York: 18:00 is now EST.
            (
                "2026-10-31T19:00:00-04:00",
                Some("2026-11-01T18:00:00-05:00"),
            ),
        ];
        for (now, expected) in cases {
            assert_eq!(
                next_occurrence(&p, at(now)),
                expected.map(at),
                "after {now}"
            );
        }
        let none = policy("UTC", "    []\n");
        assert_eq!(next_occurrence(&none, at("2026-06-09T09:00:00Z")), None);
        assert!(due(&none, &[], "2026-06-09T09:00:00Z").is_empty());
    }
}
