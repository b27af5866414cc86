//! Cron expressions matched against the wall clock of a time zone, minute by minute.
//!
//! croner does the calendar work; this module only fixes the three places where its
//! answers differ from ferry's window semantics (see `docs/policies.md`):
//!
//! - a cron expression has no seconds field, so croner only matches second 0: every
//!   instant is judged by the minute that contains it;
//! - for a fixed-time expression (one minute, one hour) whose local time is skipped by a
//!   spring-forward change, croner's search answers the first instant after the change,
//!   which does not match: such an answer is dropped, because a skipped local minute does
//!   not exist;
//! - for a fixed-time expression, croner's forward search never answers the second
//!   instant of a repeated local time (autumn): the repeated stretch is checked minute by
//!   minute instead, because during the repeated hour both instants are open.

use chrono::{DateTime, LocalResult, TimeDelta, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use croner::Cron;

/// One minute.
pub(crate) const MINUTE: TimeDelta = TimeDelta::minutes(1);

/// The start of the minute that contains `t`.
pub(crate) fn floor_minute(t: DateTime<Utc>) -> DateTime<Utc> {
    let secs = TimeDelta::seconds(i64::from(t.second()))
        + TimeDelta::nanoseconds(i64::from(t.nanosecond()));
    t - secs
}

/// Whether the local minute of `tz` that contains `t` matches `cron`.
pub(crate) fn matches(cron: &Cron, tz: Tz, t: DateTime<Utc>) -> bool {
    cron.is_time_matching(&floor_minute(t).with_timezone(&tz))
        .unwrap_or(false)
}

/// The first instant at or after `from`, and before `limit`, whose local minute matches
/// `cron`. `from` itself is returned when its minute matches.
pub(crate) fn next_match(
    cron: &Cron,
    tz: Tz,
    from: DateTime<Utc>,
    limit: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    if matches(cron, tz, from) {
        return Some(from);
    }
    let mut t = floor_minute(from) + MINUTE;
    while t < limit {
        let local = t.with_timezone(&tz);
        if let Some(later) = later_instant_of_repeated(&local) {
            // `t` is the first pass of a repeated local time: check every minute up to
            // the second pass of the same local time, then let croner go on from there.
            if let Some(found) = scan(t, later.min(limit), |m| matches(cron, tz, m)) {
                return Some(found);
            }
            t = later + MINUTE;
            continue;
        }
        let found = cron
            .find_next_occurrence(&local, true)
            .ok()?
            .with_timezone(&Utc);
        if found >= limit {
            return None;
        }
        if matches(cron, tz, found) {
            return Some(found);
        }
        // A fixed-time expression whose local time was skipped: croner moved it past
        // the change. That local minute does not exist; search on.
        t = floor_minute(found) + MINUTE;
    }
    None
}

/// The first instant at or after `from`, and before `limit`, whose local minute does not
/// match `cron`: the end of a run of matching minutes. `from` itself when it does not match.
pub(crate) fn end_of_match(
    cron: &Cron,
    tz: Tz,
    from: DateTime<Utc>,
    limit: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    if !matches(cron, tz, from) {
        return Some(from);
    }
    scan(floor_minute(from) + MINUTE, limit, |m| {
        !matches(cron, tz, m)
    })
}

/// The first minute in `from..=until` (stepping one minute) where `test` holds.
fn scan(
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    test: impl Fn(DateTime<Utc>) -> bool,
) -> Option<DateTime<Utc>> {
    let mut m = from;
    while m <= until {
        if test(m) {
            return Some(m);
        }
        m += MINUTE;
    }
    None
}

/// When `local` is the first of the two instants of a repeated local time, the second.
fn later_instant_of_repeated(local: &DateTime<Tz>) -> Option<DateTime<Utc>> {
    match local.timezone().from_local_datetime(&local.naive_local()) {
        LocalResult::Ambiguous(earlier, later) if earlier == *local => {
            Some(later.with_timezone(&Utc))
        }
        _ => None,
    }
}

/// Whether the local time of `local` happens twice (the hour repeated in autumn).
fn is_repeated(local: &DateTime<Tz>) -> bool {
    matches!(
        local.timezone().from_local_datetime(&local.naive_local()),
        LocalResult::Ambiguous(..)
    )
}

/// A local time as people read it: `Tue 9 Jun 09:00 Europe/Berlin`, with the zone's
/// abbreviation added when the local time happens twice (`Sun 25 Oct 02:30 CET Europe/Berlin`).
pub(crate) fn display(local: &DateTime<Tz>) -> String {
    let format = if is_repeated(local) {
        "%a %-d %b %H:%M %Z"
    } else {
        "%a %-d %b %H:%M"
    };
    format!("{} {}", local.format(format), local.timezone().name())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::pipeline::CronSpec;

    /// An instant from an RFC 3339 timestamp with offset.
    pub(crate) fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("test timestamp")
            .with_timezone(&Utc)
    }

    pub(crate) fn cron(text: &str) -> Cron {
        CronSpec::parse(text).expect("test cron").cron
    }

    pub(crate) const BERLIN: Tz = chrono_tz::Europe::Berlin;
    pub(crate) const NEW_YORK: Tz = chrono_tz::America::New_York;

    fn year_after(t: DateTime<Utc>) -> DateTime<Utc> {
        t + TimeDelta::days(366)
    }

    /// What croner itself answers around daylight-saving changes: the behaviour this
    /// module corrects. If croner changes, these fail and the corrections are revisited.
    #[test]
    fn croner_behaviour_around_daylight_saving_changes() {
        let next = |expr: &str, tz: Tz, from: &str| {
            cron(expr)
                .find_next_occurrence(&at(from).with_timezone(&tz), false)
                .expect("found")
                .with_timezone(&Utc)
        };
        // Spring, Berlin: 02:30 does not exist on 29 Mar 2026; croner answers 03:00 CEST.
        assert_eq!(
            next("30 2 * * *", BERLIN, "2026-03-29T00:00:00+01:00"),
            at("2026-03-29T03:00:00+02:00")
        );
        // Spring, New York: 02:30 does not exist on 8 Mar 2026; croner answers 03:00 EDT.
        assert_eq!(
            next("30 2 * * *", NEW_YORK, "2026-03-08T00:00:00-05:00"),
            at("2026-03-08T03:00:00-04:00")
        );
        // Autumn, Berlin: from 02:45 CEST croner skips 02:30 CET, 45 minutes later.
        assert_eq!(
            next("30 2 * * *", BERLIN, "2026-10-25T02:45:00+02:00"),
            at("2026-10-26T02:30:00+01:00")
        );
        // Autumn, New York: from 01:45 EDT croner skips 01:30 EST.
        assert_eq!(
            next("30 1 * * *", NEW_YORK, "2026-11-01T01:45:00-04:00"),
            at("2026-11-02T01:30:00-05:00")
        );
        // Expressions with ranges or steps get both passes of the repeated hour.
        assert_eq!(
            next("*/30 2 * * *", BERLIN, "2026-10-25T02:45:00+02:00"),
            at("2026-10-25T02:00:00+01:00")
        );
        // No seconds field means second 0: an instant inside a minute never matches.
        assert!(
            !cron("* * * * *")
                .is_time_matching(&at("2026-01-01T00:00:30Z"))
                .expect("checked")
        );
    }

    #[test]
    fn next_match_follows_the_wall_clock_across_changes() {
        let cases = [
            // (expression, zone, from, expected)
            (
                "30 2 * * *",
                BERLIN,
                "2026-03-29T00:00:00+01:00",
                Some("2026-03-30T02:30:00+02:00"),
            ),
            (
                "30 2 * * *",
                NEW_YORK,
                "2026-03-08T00:00:00-05:00",
                Some("2026-03-09T02:30:00-04:00"),
            ),
            (
                "* 2 * * *",
                BERLIN,
                "2026-03-29T01:59:00+01:00",
                Some("2026-03-30T02:00:00+02:00"),
            ),
            (
                "0 3 * * *",
                BERLIN,
                "2026-03-29T01:59:00+01:00",
                Some("2026-03-29T03:00:00+02:00"),
            ),
            (
                "30 2 * * *",
                BERLIN,
                "2026-10-25T02:00:00+02:00",
                Some("2026-10-25T02:30:00+02:00"),
            ),
            (
                "30 2 * * *",
                BERLIN,
                "2026-10-25T02:45:00+02:00",
                Some("2026-10-25T02:30:00+01:00"),
            ),
            (
                "30 2 * * *",
                BERLIN,
                "2026-10-25T02:31:00+01:00",
                Some("2026-10-26T02:30:00+01:00"),
            ),
            (
                "30 1 * * *",
                NEW_YORK,
                "2026-11-01T01:45:00-04:00",
                Some("2026-11-01T01:30:00-05:00"),
            ),
            (
                "0 9 * * *",
                BERLIN,
                "2026-03-28T17:00:00+01:00",
                Some("2026-03-29T09:00:00+02:00"),
            ),
            (
                "0 9 * * *",
                BERLIN,
                "2026-10-24T17:00:00+02:00",
                Some("2026-10-25T09:00:00+01:00"),
            ),
            (
                "* 9-16 * * Mon-Thu",
                BERLIN,
                "2026-06-08T09:00:30+02:00",
                Some("2026-06-08T09:00:30+02:00"),
            ),
            (
                "* 9-16 * * Mon-Thu",
                BERLIN,
                "2026-06-08T08:59:59+02:00",
                Some("2026-06-08T09:00:00+02:00"),
            ),
            ("0 0 30 2 *", BERLIN, "2026-01-01T00:00:00+01:00", None),
        ];
        for (expr, tz, from, expected) in cases {
            let from = at(from);
            assert_eq!(
                next_match(&cron(expr), tz, from, year_after(from)),
                expected.map(at),
                "{expr} {tz} from {from}"
            );
        }
    }

    #[test]
    fn end_of_match_is_the_first_minute_that_does_not_match() {
        let cases = [
            (
                "* 12 * * *",
                BERLIN,
                "2026-06-08T12:10:00+02:00",
                Some("2026-06-08T13:00:00+02:00"),
            ),
            (
                "* 12 * * *",
                BERLIN,
                "2026-06-08T11:10:00+02:00",
                Some("2026-06-08T11:10:00+02:00"),
            ),
            (
                "* * * * Sat,Sun",
                BERLIN,
                "2026-06-06T10:00:00+02:00",
                Some("2026-06-08T00:00:00+02:00"),
            ),
            (
                "* 1 * * *",
                BERLIN,
                "2026-03-29T01:30:00+01:00",
                Some("2026-03-29T03:00:00+02:00"),
            ),
            (
                "* 2 * * *",
                BERLIN,
                "2026-10-25T02:10:00+02:00",
                Some("2026-10-25T03:00:00+01:00"),
            ),
            (
                "0-29 2 * * *",
                BERLIN,
                "2026-10-25T02:10:00+02:00",
                Some("2026-10-25T02:30:00+02:00"),
            ),
            ("* * * * *", BERLIN, "2026-06-08T12:10:00+02:00", None),
        ];
        for (expr, tz, from, expected) in cases {
            let from = at(from);
            assert_eq!(
                end_of_match(&cron(expr), tz, from, year_after(from)),
                expected.map(at),
                "{expr} from {from}"
            );
        }
    }

    #[test]
    fn instants_are_judged_by_their_minute() {
        assert_eq!(
            floor_minute(at("2026-06-08T09:00:59.9+02:00")),
            at("2026-06-08T09:00:00+02:00")
        );
        assert!(matches(
            &cron("0 9 * * *"),
            BERLIN,
            at("2026-06-08T09:00:59+02:00")
        ));
        assert!(!matches(
            &cron("0 9 * * *"),
            BERLIN,
            at("2026-06-08T09:01:00+02:00")
        ));
    }

    /// The cron dialect `docs/policies.md` promises: names, ranges, lists, steps, `#`, `L`,
    /// day-of-month OR day-of-week as in classic cron, and `+` for AND.
    #[test]
    fn cron_dialect() {
        let cases = [
            ("0 9 1 * Mon", "2026-06-08T09:00:00Z", true),
            ("0 9 1 * Mon", "2026-07-01T09:00:00Z", true),
            ("0 9 1 * Mon", "2026-07-02T09:00:00Z", false),
            ("0 9 1-7 * +Mon", "2026-06-01T09:00:00Z", true),
            ("0 9 1-7 * +Mon", "2026-06-08T09:00:00Z", false),
            ("0 9 * * Mon#2", "2026-06-08T09:00:00Z", true),
            ("0 9 * * Mon#2", "2026-06-15T09:00:00Z", false),
            ("0 9 L * *", "2026-06-30T09:00:00Z", true),
            ("*/15 9-16 * * Mon-Fri", "2026-06-12T16:45:00Z", true),
            ("*/15 9-16 * * Mon-Fri", "2026-06-13T16:45:00Z", false),
            ("0 0,12 * Dec *", "2026-12-24T12:00:00Z", true),
            ("@daily", "2026-12-24T00:00:00Z", true),
            ("@daily", "2026-12-24T00:01:00Z", false),
        ];
        for (expr, t, expected) in cases {
            assert_eq!(
                matches(&cron(expr), Tz::UTC, at(t)),
                expected,
                "{expr} at {t}"
            );
        }
    }

    #[test]
    fn local_times_display_with_weekday_and_zone() {
        let cases = [
            (
                "2026-06-09T09:00:00+02:00",
                BERLIN,
                "Tue 9 Jun 09:00 Europe/Berlin",
            ),
            (
                "2027-01-04T00:00:00+01:00",
                BERLIN,
                "Mon 4 Jan 00:00 Europe/Berlin",
            ),
            (
                "2026-10-25T02:30:00+02:00",
                BERLIN,
                "Sun 25 Oct 02:30 CEST Europe/Berlin",
            ),
            (
                "2026-10-25T02:30:00+01:00",
                BERLIN,
                "Sun 25 Oct 02:30 CET Europe/Berlin",
            ),
            (
                "2026-10-25T03:30:00+01:00",
                BERLIN,
                "Sun 25 Oct 03:30 Europe/Berlin",
            ),
            (
                "2026-11-01T01:30:00-05:00",
                NEW_YORK,
                "Sun 1 Nov 01:30 EST America/New_York",
            ),
            ("2026-06-09T09:00:59Z", Tz::UTC, "Tue 9 Jun 09:00 UTC"),
        ];
        for (t, tz, expected) in cases {
            assert_eq!(display(&at(t).with_timezone(&tz)), expected);
        }
    }
}
