//! `GET /metrics`: the Prometheus text exposition of the facts `promotion::metrics` derives
//! from the state store, and of the notification outbox. Nothing is counted in memory: every
//! scrape reads the store, so the values are the same after a restart and in every process.
//! prometheus-client is used only here.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::app::{AppState, loop_actor};
use super::caller::Caller;
use super::error::{ApiError, ErrorBody};
use crate::access::Action;
use crate::notify::OutboxCounts;
use crate::promotion::metrics::{self, BLOCKER_KINDS, Facts};

/// Bucket bounds of promotion and gate durations: 1 s to 1 h.
const DURATION_BUCKETS: [f64; 11] = [
    1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];

/// Bucket bounds of lead time and time to restore: 1 min to 30 days.
const DORA_BUCKETS: [f64; 13] = [
    60.0,
    300.0,
    900.0,
    1800.0,
    3600.0,
    7200.0,
    14_400.0,
    43_200.0,
    86_400.0,
    172_800.0,
    604_800.0,
    1_209_600.0,
    2_592_000.0,
];

type Labels = Vec<(&'static str, String)>;
type Histograms = Family<Labels, Histogram, fn() -> Histogram>;

fn durations() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

fn dora_times() -> Histogram {
    Histogram::new(DORA_BUCKETS)
}

/// The metrics on the main listener: the caller needs the viewer role.
#[utoipa::path(get, path = "/metrics", tag = "read",
    responses((status = 200, description = "the Prometheus text format (0.0.4): promotions, gate and promotion durations, blocked stages, stage info, the DORA keys, the reconcile loop's last success and the outbox", content_type = "text/plain"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)), security(("bearer" = [])))]
pub async fn scrape(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Response, ApiError> {
    let text = state
        .blocking(move |s| {
            let engine = s.engine(caller.actor())?;
            let config = s.config(&engine)?;
            caller.may(&config, Action::Read, None)?;
            exposition(s)
        })
        .await?;
    Ok(text_response(text))
}

/// The routes of the `--metrics-listen` listener: `/metrics` without authentication (the
/// address is where only the scraper reaches it), nothing else.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/metrics", get(open_scrape))
        .fallback(|| async { ApiError::not_found("this listener serves only /metrics") })
        .with_state(state)
}

async fn open_scrape(State(state): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let text = state.blocking(exposition).await?;
    Ok(text_response(text))
}

fn text_response(text: String) -> Response {
    ([(CONTENT_TYPE, prometheus_text::CONTENT_TYPE)], text).into_response()
}

/// Reads the facts of the whole history and the outbox, and encodes them.
fn exposition(state: &AppState) -> Result<String, ApiError> {
    let engine = state.engine(loop_actor())?;
    let config = state.config(&engine)?;
    let stages: Vec<String> = config
        .pipeline
        .topological()
        .map(|s| s.name.clone())
        .collect();
    let store = engine.store()?;
    let facts = metrics::facts(&store, &stages, None)?;
    let mut outbox = crate::notify::counts_by_webhook(store.backend())?;
    // Webhooks with nothing sent yet show zeros rather than no series.
    for webhook in &config.notifications.webhooks {
        outbox.entry(webhook.name.clone()).or_default();
    }
    encode(&facts, &outbox)
        .map_err(|_| ApiError::internal("failed to encode the metrics".to_string()))
}

/// The exposition of `facts` and the outbox counts per webhook.
fn encode(
    facts: &Facts,
    outbox: &BTreeMap<String, OutboxCounts>,
) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::default();
    promotions(&mut registry, facts);
    stages(&mut registry, facts);
    dora(&mut registry, facts);
    let last_success = Gauge::<f64, AtomicU64>::default();
    last_success.set(
        facts
            .reconcile_last_success
            .map_or(0.0, |at| at.timestamp_millis() as f64 / 1000.0),
    );
    registry.register(
        "ferry_reconcile_last_success_timestamp_seconds",
        "When a reconcile pass last finished without an error (Unix time; 0 before the first)",
        last_success,
    );
    notifications(&mut registry, outbox);
    let mut text = String::new();
    prometheus_text::encode(&mut text, &registry)?;
    Ok(text)
}

fn promotions(registry: &mut Registry, facts: &Facts) {
    let ended = Family::<Labels, Counter>::default();
    let took: Histograms = Family::new_with_constructor(durations);
    for p in &facts.promotions {
        ended
            .get_or_create(&vec![
                ("stage", p.stage.clone()),
                ("trigger", p.trigger.clone()),
                ("outcome", p.outcome.clone()),
            ])
            .inc();
        took.get_or_create(&vec![("stage", p.stage.clone())])
            .observe(p.seconds);
    }
    let gates: Histograms = Family::new_with_constructor(durations);
    for g in &facts.gates {
        gates
            .get_or_create(&vec![
                ("stage", g.stage.clone()),
                ("gate", g.gate.clone()),
                ("type", g.kind.clone()),
                ("outcome", g.outcome.clone()),
            ])
            .observe(g.seconds);
    }
    registry.register(
        "ferry_promotions",
        "Promotions that ended, by stage, trigger and outcome",
        ended,
    );
    registry.register(
        "ferry_promotion_duration_seconds",
        "How long promotions ran, from the start of writing (or the request) to their end",
        took,
    );
    registry.register(
        "ferry_gate_duration_seconds",
        "How long each gate ran",
        gates,
    );
}

fn stages(registry: &mut Registry, facts: &Facts) {
    let blocked = Family::<Labels, Gauge>::default();
    let info = Family::<Labels, Gauge>::default();
    for s in &facts.stages {
        for kind in BLOCKER_KINDS {
            let on = s.blocked_on.iter().any(|k| k == kind);
            blocked
                .get_or_create(&vec![
                    ("stage", s.stage.clone()),
                    ("kind", kind.to_string()),
                ])
                .set(i64::from(on));
        }
        info.get_or_create(&vec![
            ("stage", s.stage.clone()),
            ("revision", s.revision.clone().unwrap_or_default()),
            ("state", s.state.clone()),
            ("verified", s.verified.to_string()),
        ])
        .set(1);
    }
    registry.register(
        "ferry_stage_blocked",
        "1 while the stage's newest promotion is blocked by this kind of thing, else 0",
        blocked,
    );
    registry.register(
        "ferry_stage_info",
        "What each stage has now: its revision, its newest promotion's state and whether verified",
        info,
    );
}

fn dora(registry: &mut Registry, facts: &Facts) {
    let lead = Histograms::new_with_constructor(dora_times);
    let deployments = Family::<Labels, Counter>::default();
    let failures = Family::<Labels, Counter>::default();
    let restore = Histograms::new_with_constructor(dora_times);
    for (stage, d) in &facts.dora {
        let labels = vec![("stage", stage.clone())];
        deployments.get_or_create(&labels).inc_by(d.deployments);
        failures.get_or_create(&labels).inc_by(d.change_failures);
        let lead = lead.get_or_create(&labels);
        d.lead_times.iter().for_each(|s| lead.observe(*s));
        let restore = restore.get_or_create(&labels);
        d.restore_times.iter().for_each(|s| restore.observe(*s));
    }
    registry.register(
        "ferry_lead_time_seconds",
        "DORA lead time: from a release's creation to its verification in the stage",
        lead,
    );
    registry.register(
        "ferry_deployments",
        "DORA deployments: succeeded promotions",
        deployments,
    );
    registry.register(
        "ferry_change_failures",
        "DORA change failures: failed promotions and deployments a rollback replaced",
        failures,
    );
    registry.register(
        "ferry_time_to_restore_seconds",
        "DORA time to restore: from a change failure to the next deployment, per incident",
        restore,
    );
}

fn notifications(registry: &mut Registry, outbox: &BTreeMap<String, OutboxCounts>) {
    let deliveries = Family::<Labels, Gauge>::default();
    let attempts = Family::<Labels, Counter>::default();
    for (webhook, counts) in outbox {
        let states = [
            ("pending", counts.pending),
            ("delivered", counts.delivered),
            ("failed", counts.failed),
        ];
        for (state, count) in states {
            deliveries
                .get_or_create(&vec![("webhook", webhook.clone()), ("state", state.into())])
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
        attempts
            .get_or_create(&vec![("webhook", webhook.clone())])
            .inc_by(counts.attempts);
    }
    registry.register(
        "ferry_notifications",
        "Deliveries in the notification outbox, by webhook and state",
        deliveries,
    );
    registry.register(
        "ferry_notification_attempts",
        "Delivery attempts made, by webhook",
        attempts,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::promotion::metrics::{Dora, GateFact, PromotionFact, StageFact};

    fn lines(text: &str) -> Vec<&str> {
        let mut lines: Vec<&str> = text.lines().collect();
        lines.sort_unstable();
        lines
    }

    #[test]
    fn facts_become_counters_gauges_and_histograms_with_the_documented_names() {
        let at = "2026-12-01T10:00:00Z".parse().expect("a time");
        let facts = Facts {
            promotions: vec![PromotionFact {
                stage: "prod".into(),
                trigger: "manual".into(),
                outcome: "succeeded".into(),
                seconds: 42.0,
                ended_at: at,
            }],
            gates: vec![GateFact {
                stage: "prod".into(),
                gate: "smoke".into(),
                kind: "http".into(),
                outcome: "passed".into(),
                seconds: 3.0,
            }],
            stages: vec![StageFact {
                stage: "prod".into(),
                revision: Some("r-1".into()),
                verified: false,
                state: "blocked".into(),
                blocked_on: vec!["approvals".into()],
            }],
            dora: vec![(
                "prod".into(),
                Dora {
                    deployments: 3,
                    change_failures: 1,
                    failed_promotions: 1,
                    lead_times: vec![120.0, 7200.0],
                    restore_times: vec![600.0],
                },
            )],
            reconcile_last_success: Some(at),
        };
        let outbox = BTreeMap::from([(
            "ops".to_string(),
            OutboxCounts {
                pending: 1,
                delivered: 4,
                failed: 0,
                attempts: 7,
            },
        )]);
        let text = encode(&facts, &outbox).expect("encodes");
        let lines = lines(&text);
        let expected = [
            "# TYPE ferry_promotions_total counter",
            "ferry_promotions_total{stage=\"prod\",trigger=\"manual\",outcome=\"succeeded\"} 1",
            "# TYPE ferry_promotion_duration_seconds histogram",
            "ferry_promotion_duration_seconds_sum{stage=\"prod\"} 42.0",
            "ferry_promotion_duration_seconds_count{stage=\"prod\"} 1",
            "ferry_promotion_duration_seconds_bucket{stage=\"prod\",le=\"30\"} 0",
            "ferry_promotion_duration_seconds_bucket{stage=\"prod\",le=\"60\"} 1",
            "ferry_gate_duration_seconds_count{stage=\"prod\",gate=\"smoke\",type=\"http\",outcome=\"passed\"} 1",
            "ferry_stage_blocked{stage=\"prod\",kind=\"approvals\"} 1",
            "ferry_stage_blocked{stage=\"prod\",kind=\"window\"} 0",
            "ferry_stage_info{stage=\"prod\",revision=\"r-1\",state=\"blocked\",verified=\"false\"} 1",
            "ferry_deployments_total{stage=\"prod\"} 3",
            "ferry_change_failures_total{stage=\"prod\"} 1",
            "ferry_lead_time_seconds_sum{stage=\"prod\"} 7320.0",
            "ferry_lead_time_seconds_bucket{stage=\"prod\",le=\"300\"} 1",
            "ferry_lead_time_seconds_bucket{stage=\"prod\",le=\"+Inf\"} 2",
            "ferry_time_to_restore_seconds_count{stage=\"prod\"} 1",
            "ferry_reconcile_last_success_timestamp_seconds 1796119200.0",
            "ferry_notifications{webhook=\"ops\",state=\"pending\"} 1",
            "ferry_notifications{webhook=\"ops\",state=\"delivered\"} 4",
            "ferry_notifications{webhook=\"ops\",state=\"failed\"} 0",
            "ferry_notification_attempts_total{webhook=\"ops\"} 7",
        ];
        for line in expected {
            assert!(
                lines.binary_search(&line).is_ok(),
                "no line {line}:\n{text}"
            );
        }
        let blocked = lines
            .iter()
            .filter(|l| l.starts_with("ferry_stage_blocked{"))
            .count();
        assert_eq!(blocked, BLOCKER_KINDS.len(), "one series per kind:\n{text}");
    }

    #[test]
    fn an_empty_history_still_has_the_reconcile_gauge_at_zero() {
        let text = encode(&Facts::default(), &BTreeMap::new()).expect("encodes");
        assert!(
            text.lines()
                .any(|l| l == "ferry_reconcile_last_success_timestamp_seconds 0.0"),
            "{text}"
        );
    }
}
