//! The upstream requirement and soak: a revision enters a stage only after it was verified
//! in its upstream stage(s) (`requires: all` — every one, `any` — at least one), and has
//! stayed verified there for at least the policy's `soak`.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::Blocker;
use crate::pipeline::{Requires, Stage};

/// The upstream stages where the revision still has to be verified, as a blocker.
pub(crate) fn upstream(
    stage: &Stage,
    verified: &BTreeMap<String, DateTime<Utc>>,
) -> Option<Blocker> {
    let missing: Vec<String> = stage
        .upstream
        .iter()
        .filter(|up| !verified.contains_key(*up))
        .cloned()
        .collect();
    let met = match stage.requires {
        Requires::All => missing.is_empty(),
        Requires::Any => stage.upstream.is_empty() || missing.len() < stage.upstream.len(),
    };
    (!met).then_some(Blocker::Upstream {
        missing,
        requires: stage.requires,
    })
}

/// The soak still to wait, as a blocker. Only upstream stages where the revision is
/// verified count: with `all`, the one that becomes ready last; with `any`, the one that
/// becomes ready first, and nothing when one already is. A stage without upstream stages
/// has nothing to soak in.
pub(crate) fn soak(
    stage: &Stage,
    soak: Duration,
    verified: &BTreeMap<String, DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<Blocker> {
    let soak = chrono::TimeDelta::from_std(soak).unwrap_or(chrono::TimeDelta::MAX);
    let ready: Vec<(&String, DateTime<Utc>)> = stage
        .upstream
        .iter()
        .filter_map(|up| {
            verified.get(up).map(|at| {
                (
                    up,
                    at.checked_add_signed(soak)
                        .unwrap_or(DateTime::<Utc>::MAX_UTC),
                )
            })
        })
        .collect();
    let binding = match stage.requires {
        Requires::All => ready.iter().max_by_key(|(_, at)| *at),
        Requires::Any => ready.iter().min_by_key(|(_, at)| *at),
    };
    let (up, ready_at) = binding?;
    let remaining = (*ready_at - now).to_std().ok().filter(|d| !d.is_zero())?;
    Some(Blocker::soak(up, *ready_at, remaining))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::pipeline::{FileLocation, SyncMode};
    use crate::policy::clock::tests::at;

    pub(crate) fn stage(upstream: &[&str], requires: Requires) -> Stage {
        Stage {
            name: "prod".into(),
            overlay: "environments/prod".into(),
            upstream: upstream.iter().map(|s| s.to_string()).collect(),
            requires,
            policy: Some("prod".into()),
            auto: false,
            sync: SyncMode::Gitops,
            cluster: None,
            declared_at: FileLocation::file("environments/pipeline.yaml"),
        }
    }

    /// (upstream stages, requires, verified (stage, when), expected blocker)
    type Case = (
        &'static [&'static str],
        Requires,
        &'static [(&'static str, &'static str)],
        Option<Blocker>,
    );

    fn verified(entries: &[(&str, &str)]) -> BTreeMap<String, DateTime<Utc>> {
        entries
            .iter()
            .map(|(s, t)| (s.to_string(), at(t)))
            .collect()
    }

    fn upstream_blocker(missing: &[&str], requires: Requires) -> Option<Blocker> {
        let missing = missing.iter().map(|s| s.to_string()).collect();
        Some(Blocker::Upstream { missing, requires })
    }

    #[test]
    fn upstream_requirement_all_and_any() {
        use Requires::{All, Any};
        let cases: [Case; 8] = [
            (&[], All, &[], None),
            (&["qa"], All, &[("qa", "2026-06-09T10:00:00Z")], None),
            (&["qa"], All, &[], upstream_blocker(&["qa"], All)),
            (
                &["eu", "us"],
                All,
                &[("eu", "2026-06-09T10:00:00Z")],
                upstream_blocker(&["us"], All),
            ),
            (
                &["eu", "us"],
                All,
                &[("dev", "2026-06-09T10:00:00Z")],
                upstream_blocker(&["eu", "us"], All),
            ),
            (&["eu", "us"], Any, &[("us", "2026-06-09T10:00:00Z")], None),
            (
                &["eu", "us"],
                Any,
                &[],
                upstream_blocker(&["eu", "us"], Any),
            ),
            (&[], Any, &[], None),
        ];
        for (ups, requires, entries, expected) in cases {
            assert_eq!(
                upstream(&stage(ups, requires), &verified(entries)),
                expected,
                "{ups:?} {requires:?} {entries:?}"
            );
        }
    }

    fn soaking(up: &str, ready_at: &str, minutes: u64) -> Option<Blocker> {
        Some(Blocker::soak(
            up,
            at(ready_at),
            Duration::from_secs(minutes * 60),
        ))
    }

    #[test]
    fn soak_all_waits_for_the_last_any_for_the_first() {
        use Requires::{All, Any};
        let now = "2026-06-09T10:30:00Z";
        let cases: [Case; 9] = [
            // Verified 30m ago: exactly ready; 29m ago: one more minute.
            (&["qa"], All, &[("qa", "2026-06-09T10:00:00Z")], None),
            (
                &["qa"],
                All,
                &[("qa", "2026-06-09T10:01:00Z")],
                soaking("qa", "2026-06-09T10:31:00Z", 1),
            ),
            (
                &["eu", "us"],
                All,
                &[
                    ("eu", "2026-06-09T09:00:00Z"),
                    ("us", "2026-06-09T10:20:00Z"),
                ],
                soaking("us", "2026-06-09T10:50:00Z", 20),
            ),
            (
                &["eu", "us"],
                All,
                &[
                    ("eu", "2026-06-09T09:00:00Z"),
                    ("us", "2026-06-09T09:10:00Z"),
                ],
                None,
            ),
            // An upstream stage not verified at all is the upstream blocker's business.
            (
                &["eu", "us"],
                All,
                &[("eu", "2026-06-09T10:10:00Z")],
                soaking("eu", "2026-06-09T10:40:00Z", 10),
            ),
            (&["eu", "us"], All, &[], None),
            (
                &["eu", "us"],
                Any,
                &[
                    ("eu", "2026-06-09T10:10:00Z"),
                    ("us", "2026-06-09T10:20:00Z"),
                ],
                soaking("eu", "2026-06-09T10:40:00Z", 10),
            ),
            (
                &["eu", "us"],
                Any,
                &[
                    ("eu", "2026-06-09T10:20:00Z"),
                    ("us", "2026-06-09T09:00:00Z"),
                ],
                None,
            ),
            (&[], All, &[], None),
        ];
        for (ups, requires, entries, expected) in cases {
            let got = soak(
                &stage(ups, requires),
                Duration::from_secs(30 * 60),
                &verified(entries),
                at(now),
            );
            assert_eq!(got, expected, "{ups:?} {requires:?} {entries:?}");
        }
    }

    #[test]
    fn an_absurd_soak_does_not_overflow() {
        let got = soak(
            &stage(&["qa"], Requires::All),
            Duration::MAX,
            &verified(&[("qa", "2026-06-09T10:00:00Z")]),
            at("2026-06-09T10:30:00Z"),
        );
        assert!(matches!(got, Some(Blocker::Soak { .. })), "{got:?}");
    }
}
