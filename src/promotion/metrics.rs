//! The facts behind ferry's metrics, derived from the state store (so they survive a
//! restart): promotions and gates with their outcomes and durations, what every stage has
//! and what blocks it, lead times, and the DORA keys per stage. Exposition is the server's
//! business; this module only counts.
//!
//! Definitions (docs/observability.md says the same for people):
//! - a *deployment* is a succeeded promotion;
//! - a *change failure* is a failed promotion, or a deployment that a succeeded rollback
//!   replaced;
//! - *time to restore* runs from a change failure (the failed promotion's end, or the
//!   rollback's request) to the end of the next succeeded promotion in that stage; failures
//!   before that success belong to the same incident;
//! - *lead time* runs from a revision's creation to its verification in a stage.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::PromotionError;
use super::record::{Promotion, PromotionState};
use super::store::Store;
use crate::state::{get_json, put_json};

const RECONCILE_KEY: &[u8] = b"v1/meta/reconcile-last-success";

/// The kinds of blockers, for gauges that are 0 or 1 per kind.
pub const BLOCKER_KINDS: [&str; 7] = [
    "upstream",
    "soak",
    "approvals",
    "rejected",
    "window",
    "freeze",
    "paused",
];

/// One ended promotion.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PromotionFact {
    pub stage: String,
    pub trigger: String,
    /// `succeeded`, `failed` or `aborted`.
    pub outcome: String,
    /// From when it started writing (or was requested, if it never wrote) to its end.
    pub seconds: f64,
    pub ended_at: DateTime<Utc>,
}

/// One gate run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateFact {
    pub stage: String,
    pub gate: String,
    pub kind: String,
    pub outcome: String,
    pub seconds: f64,
}

/// What a stage has now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageFact {
    pub stage: String,
    pub revision: Option<String>,
    pub verified: bool,
    /// The state of its newest promotion (`none` without one).
    pub state: String,
    /// The kinds of what blocks its newest promotion, while blocked.
    pub blocked_on: Vec<String>,
}

/// The DORA keys of one stage.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Dora {
    pub deployments: u64,
    pub change_failures: u64,
    /// Failed promotions (a subset of the change failures).
    pub failed_promotions: u64,
    /// Seconds from a revision's creation to its verification here, per deployment that is
    /// not a rollback.
    pub lead_times: Vec<f64>,
    /// Seconds from a change failure to the next deployment, per incident.
    pub restore_times: Vec<f64>,
}

/// Everything the metrics are made of.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Facts {
    pub promotions: Vec<PromotionFact>,
    pub gates: Vec<GateFact>,
    pub stages: Vec<StageFact>,
    /// Per stage, in pipeline order.
    pub dora: Vec<(String, Dora)>,
    pub reconcile_last_success: Option<DateTime<Utc>>,
}

/// Records that a reconcile pass finished without an error at `at`.
pub fn record_reconcile_success(store: &Store, at: DateTime<Utc>) -> Result<(), PromotionError> {
    Ok(put_json(store.backend(), RECONCILE_KEY, &at)?)
}

/// The facts of `store` for `stages` (in pipeline order), counting promotions that ended at
/// or after `since` (all when `None`).
pub fn facts(
    store: &Store,
    stages: &[String],
    since: Option<DateTime<Utc>>,
) -> Result<Facts, PromotionError> {
    let mut all = store.promotions(None, usize::MAX)?;
    all.reverse();
    let created: BTreeMap<String, DateTime<Utc>> = store
        .revisions()?
        .into_iter()
        .map(|r| (r.id, r.created_at))
        .collect();
    let mut facts = Facts {
        reconcile_last_success: get_json(store.backend(), RECONCILE_KEY)?,
        ..Facts::default()
    };
    for stage in stages {
        let mut ended: Vec<&Promotion> = all
            .iter()
            .filter(|p| &p.stage == stage && p.state.is_terminal())
            .collect();
        ended.sort_by_key(|p| (p.updated_at(), p.id.clone()));
        facts
            .dora
            .push((stage.clone(), dora(&ended, &created, since)));
        facts.stages.push(stage_fact(store, stage, &all)?);
    }
    for p in all.iter().filter(|p| p.state.is_terminal()) {
        if since.is_some_and(|s| p.updated_at() < s) {
            continue;
        }
        facts.promotions.push(promotion_fact(p));
        facts.gates.extend(p.gates.iter().map(|g| GateFact {
            stage: p.stage.clone(),
            gate: g.name.clone(),
            kind: g.kind.clone(),
            outcome: g.status.as_str().to_string(),
            seconds: seconds(g.started_at, g.finished_at),
        }));
    }
    Ok(facts)
}

fn promotion_fact(p: &Promotion) -> PromotionFact {
    let started = p
        .transitions
        .iter()
        .find(|t| t.state == PromotionState::Writing)
        .map_or(p.requested_at, |t| t.at);
    PromotionFact {
        stage: p.stage.clone(),
        trigger: trigger_name(p),
        outcome: p.state.as_str().to_string(),
        seconds: seconds(started, p.updated_at()),
        ended_at: p.updated_at(),
    }
}

fn trigger_name(p: &Promotion) -> String {
    serde_json::to_value(p.trigger)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "manual".to_string())
}

fn stage_fact(store: &Store, stage: &str, all: &[Promotion]) -> Result<StageFact, PromotionError> {
    let record = store.stage(stage)?;
    let newest = all.iter().rev().find(|p| p.stage == stage);
    let (state, blocked_on) = match newest {
        Some(p) if p.state == PromotionState::Blocked => {
            let kinds = p.blockers.iter().map(|b| b.kind().to_string()).collect();
            ("blocked".to_string(), kinds)
        }
        Some(p) => (p.state.as_str().to_string(), Vec::new()),
        None => ("none".to_string(), Vec::new()),
    };
    Ok(StageFact {
        stage: stage.to_string(),
        revision: record.current.as_ref().map(|c| c.revision.clone()),
        verified: record.verified,
        state,
        blocked_on,
    })
}

/// The DORA keys of one stage's ended promotions (oldest first), counting what ended at or
/// after `since`.
fn dora(
    ended: &[&Promotion],
    created: &BTreeMap<String, DateTime<Utc>>,
    since: Option<DateTime<Utc>>,
) -> Dora {
    let mut dora = Dora::default();
    let mut incident: Option<DateTime<Utc>> = None;
    let mut previous: Option<PromotionState> = None;
    for p in ended {
        let end = p.updated_at();
        let counted = since.is_none_or(|s| end >= s);
        match p.state {
            PromotionState::Failed => {
                dora.change_failures += u64::from(counted);
                dora.failed_promotions += u64::from(counted);
                incident.get_or_insert(end);
            }
            PromotionState::Succeeded => {
                if p.rollback && previous == Some(PromotionState::Succeeded) {
                    dora.change_failures += u64::from(counted);
                    incident.get_or_insert(p.requested_at);
                }
                if let Some(start) = incident.take()
                    && counted
                {
                    dora.restore_times.push(seconds(start, end));
                }
                if counted {
                    dora.deployments += 1;
                    // A rollback brings back an old change: no lead time of its own.
                    if let Some(at) = created.get(&p.revision).filter(|_| !p.rollback) {
                        dora.lead_times.push(seconds(*at, end));
                    }
                }
            }
            _ => continue,
        }
        previous = Some(p.state);
    }
    dora
}

fn seconds(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_milliseconds().max(0) as f64 / 1000.0
}

/// The DORA keys of one stage over a window, for people and `ferry metrics`. Rates and
/// per-day figures are rounded to 4 decimals and times to the millisecond, so the numbers
/// read the same after a trip through JSON (the service answers with this).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DoraSummary {
    pub stage: String,
    pub deployments: u64,
    pub deployments_per_day: f64,
    pub change_failures: u64,
    /// Change failures over the promotions that ended succeeded or failed; `None` without any.
    pub change_failure_rate: Option<f64>,
    pub lead_time_median_seconds: Option<f64>,
    pub time_to_restore_median_seconds: Option<f64>,
    pub restores: u64,
}

/// Summaries of `facts` over a window of `days` days.
pub fn summarize(facts: &Facts, days: f64) -> Vec<DoraSummary> {
    facts
        .dora
        .iter()
        .map(|(stage, d)| {
            let attempts = d.deployments + d.failed_promotions;
            DoraSummary {
                stage: stage.clone(),
                deployments: d.deployments,
                deployments_per_day: if days > 0.0 {
                    rounded(d.deployments as f64 / days, 10_000.0)
                } else {
                    0.0
                },
                change_failures: d.change_failures,
                change_failure_rate: (attempts > 0)
                    .then(|| rounded(d.change_failures as f64 / attempts as f64, 10_000.0)),
                lead_time_median_seconds: median(&d.lead_times).map(|s| rounded(s, 1000.0)),
                time_to_restore_median_seconds: median(&d.restore_times)
                    .map(|s| rounded(s, 1000.0)),
                restores: d.restore_times.len() as u64,
            }
        })
        .collect()
}

/// `value` to the nearest multiple of `1 / per_unit` (the shortest decimal of the result
/// parses back to the same number).
fn rounded(value: f64, per_unit: f64) -> f64 {
    (value * per_unit).round() / per_unit
}

/// The DORA keys per stage over a window: what `ferry metrics` shows, locally or from the
/// service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DoraReport {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub stages: Vec<DoraSummary>,
}

/// The window of a report as written (`30d`, `12h`, `1d12h`): a duration of at least a
/// second, or why not.
pub fn window(text: &str) -> Result<chrono::Duration, String> {
    let span = crate::pipeline::Span::parse(text)?.get();
    if span.is_zero() {
        return Err(format!("the window `{}` is empty", text.trim()));
    }
    chrono::Duration::from_std(span)
        .map_err(|_| format!("the window `{}` is too long", text.trim()))
}

/// The DORA keys of `stages` (in pipeline order) over the `window` that ends `until`.
pub fn dora_report(
    store: &Store,
    stages: &[String],
    until: DateTime<Utc>,
    window: chrono::Duration,
) -> Result<DoraReport, PromotionError> {
    let since = until
        .checked_sub_signed(window)
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let facts = facts(store, stages, Some(since))?;
    let days = window.num_milliseconds() as f64 / 86_400_000.0;
    Ok(DoraReport {
        since,
        until,
        stages: summarize(&facts, days),
    })
}

fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    Some(if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::promotion::{Promotion, Transition, Trigger};

    fn at(minute: i64) -> DateTime<Utc> {
        "2026-12-01T10:00:00Z"
            .parse::<DateTime<Utc>>()
            .expect("a time")
            + chrono::Duration::minutes(minute)
    }

    fn ended(id: &str, trigger: Trigger, state: PromotionState, from: i64, to: i64) -> Promotion {
        let mut p = Promotion::new(id.into(), "prod", "r-1", trigger, "alice", at(from));
        p.state = state;
        p.transitions.push(Transition {
            state,
            at: at(to),
            note: None,
        });
        p
    }

    #[test]
    fn failures_rollbacks_and_restores_follow_the_documented_definitions() {
        let created = BTreeMap::from([("r-1".to_string(), at(-60))]);
        let ok = PromotionState::Succeeded;
        let promotions = [
            ended("p-1", Trigger::Manual, ok, 0, 5),
            ended("p-2", Trigger::Manual, PromotionState::Failed, 10, 12),
            ended("p-3", Trigger::Manual, PromotionState::Failed, 13, 14),
            ended("p-4", Trigger::Manual, ok, 20, 22),
            ended("p-5", Trigger::Manual, PromotionState::Aborted, 23, 24),
            ended("p-6", Trigger::Rollback, ok, 30, 33),
            ended("p-7", Trigger::Rollback, ok, 40, 41),
        ];
        let refs: Vec<&Promotion> = promotions.iter().collect();
        let d = dora(&refs, &created, None);
        assert_eq!(d.deployments, 4);
        // p-2 and p-3 failed; p-6 rolled back p-4; p-7 rolled back p-6.
        assert_eq!(d.change_failures, 4);
        assert_eq!(d.failed_promotions, 2);
        // 12 → 22, 30 → 33, 40 → 41 (minutes).
        assert_eq!(d.restore_times, vec![600.0, 180.0, 60.0]);
        assert_eq!(d.lead_times, vec![3900.0, 4920.0]);
        let windowed = dora(&refs, &created, Some(at(20)));
        assert_eq!(windowed.deployments, 3);
        assert_eq!(windowed.change_failures, 2);
        assert_eq!(windowed.restore_times, vec![600.0, 180.0, 60.0]);
    }

    #[test]
    fn windows_are_at_least_a_second_and_rounded_figures_survive_json() {
        assert_eq!(window("1d12h"), Ok(chrono::Duration::hours(36)));
        assert_eq!(window("0s"), Err("the window `0s` is empty".to_string()));
        assert!(window("soon").is_err());
        for value in [1.0 / 7.0, 2.0 / 3.0, 1234.5675, 0.1 + 0.2] {
            let r = rounded(value, 10_000.0);
            let text = serde_json::to_string(&r).expect("encode");
            assert_eq!(
                serde_json::from_str::<f64>(&text).expect("decode"),
                r,
                "{text}"
            );
        }
        assert_eq!(rounded(1.0 / 7.0, 10_000.0), 0.1429);
    }

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }
}
