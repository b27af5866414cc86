//! The HTTP API's routes and its read handlers. Handlers are thin: authenticate (the
//! [`Caller`] extractor), authorize (`access::may`), call the engine, map the result.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::IntoParams;

use super::app::AppState;
use super::body::{MAX_BODY, Query};
use super::caller::Caller;
use super::error::{ApiError, ErrorBody};
use super::{events, health, hooks, metrics, openapi, writes};
use crate::access::Action;
use crate::pipeline::Config;
use crate::promotion::Engine;

/// The default and the largest number of promotions a history answers with.
const HISTORY_DEFAULT: usize = 50;
const HISTORY_MAX: usize = 1000;

/// The default number of deliveries the outbox listing answers with.
const NOTIFICATIONS_DEFAULT: usize = 100;

/// Every route of the service.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::scrape))
        .route("/api/v1/status", get(status))
        .route("/api/v1/stages/{stage}/history", get(history))
        .route(
            "/api/v1/releases",
            get(releases).post(writes::create_release),
        )
        .route("/api/v1/releases/{id}", get(release))
        .route("/api/v1/plan", get(plan))
        .route("/api/v1/promotions", post(writes::promote))
        .route("/api/v1/promotions/{id}", get(promotion))
        .route("/api/v1/promotions/{id}/abort", post(writes::abort))
        .route("/api/v1/stages/{stage}/approvals", post(writes::approve))
        .route("/api/v1/stages/{stage}/rejections", post(writes::reject))
        .route("/api/v1/stages/{stage}/rollback", post(writes::rollback))
        .route("/api/v1/pause", post(writes::pause))
        .route("/api/v1/resume", post(writes::resume))
        .route("/api/v1/audit", get(audit))
        .route("/api/v1/audit/verify", get(audit_verify))
        .route("/api/v1/metrics/dora", get(dora))
        .route("/api/v1/notifications", get(notifications))
        .route("/api/v1/events", get(events::stream))
        .route("/api/v1/hooks/git", post(hooks::git))
        .route("/api/v1/openapi.json", get(openapi::document))
        .merge(super::ui::router())
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route (see /api/v1/openapi.json)")
}

/// Runs `read` with an engine acting as the caller, once the caller may read.
pub(super) async fn read<T: Send + 'static>(
    state: &Arc<AppState>,
    caller: Caller,
    read: impl FnOnce(&Engine, &Config) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    state
        .blocking(move |s| {
            let engine = s.engine(caller.actor())?;
            let config = s.config(&engine)?;
            caller.may(&config, Action::Read, None)?;
            read(&engine, &config)
        })
        .await
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<Value, ApiError> {
    serde_json::to_value(value).map_err(|e| ApiError::internal(format!("failed to encode: {e}")))
}

/// Every stage: its revision, whether verified, its state and what blocks it.
#[utoipa::path(get, path = "/api/v1/status", tag = "read",
    responses((status = 200, description = "`{\"pipeline\", \"stages\": [...], \"paused\": {...}}`, the body of `ferry status -o json`", body = Object),
        (status = 401, body = ErrorBody)), security(("bearer" = [])))]
pub async fn status(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    read(&state, caller, |engine, config| {
        let stages = engine.status(config)?;
        let paused = engine.pauses()?;
        Ok(json!({
            "pipeline": config.pipeline.name,
            "stages": to_json(&stages)?,
            "paused": to_json(&paused)?,
        }))
    })
    .await
    .map(Json)
}

/// How many promotions to answer with.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// At most this many, newest first (default 50, at most 1000).
    limit: Option<usize>,
}

/// The promotions of one stage, newest first.
#[utoipa::path(get, path = "/api/v1/stages/{stage}/history", tag = "read",
    params(("stage" = String, Path, description = "the stage"), HistoryQuery),
    responses((status = 200, description = "the body of `ferry history STAGE -o json`", body = Vec<Object>),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn history(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(stage): Path<String>,
    Query(query): Query<HistoryQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = match query.limit {
        None => HISTORY_DEFAULT,
        Some(n @ 1..=HISTORY_MAX) => n,
        Some(n) => {
            return Err(ApiError::bad_request(
                Some("limit"),
                format!("limit must be between 1 and {HISTORY_MAX}, not {n}"),
            ));
        }
    };
    read(&state, caller, move |engine, config| {
        engine.stage(config, &stage)?;
        to_json(&engine.history(Some(&stage), limit)?)
    })
    .await
    .map(Json)
}

/// Every revision, newest first.
#[utoipa::path(get, path = "/api/v1/releases", tag = "read",
    responses((status = 200, description = "revisions, newest first", body = Vec<Object>)), security(("bearer" = [])))]
pub async fn releases(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    read(&state, caller, |engine, _| {
        to_json(&engine.store()?.revisions()?)
    })
    .await
    .map(Json)
}

/// One revision (a unique prefix of its id will do).
#[utoipa::path(get, path = "/api/v1/releases/{id}", tag = "read",
    params(("id" = String, Path, description = "the revision id, `r-…`")),
    responses((status = 200, description = "the revision", body = Object), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn release(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    read(&state, caller, move |engine, _| {
        to_json(&engine.store()?.revision(&id)?)
    })
    .await
    .map(Json)
}

/// Which promotion to plan.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PlanQuery {
    /// The revision to promote.
    revision: String,
    /// The stage to promote it to.
    stage: String,
}

/// What promoting a revision to a stage would change, and what blocks it.
#[utoipa::path(get, path = "/api/v1/plan", tag = "read", params(PlanQuery),
    responses((status = 200, description = "files added/changed/removed, the diff, the blockers", body = Object),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn plan(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(query): Query<PlanQuery>,
) -> Result<Json<Value>, ApiError> {
    read(&state, caller, move |engine, _| {
        to_json(&engine.plan(&query.revision, &query.stage)?)
    })
    .await
    .map(Json)
}

/// One promotion, with its transitions and gate results.
#[utoipa::path(get, path = "/api/v1/promotions/{id}", tag = "read",
    params(("id" = String, Path, description = "the promotion id, `p-…`")),
    responses((status = 200, description = "the promotion", body = Object), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn promotion(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    read(&state, caller, move |engine, _| {
        to_json(&engine.store()?.promotion(&id)?)
    })
    .await
    .map(Json)
}

/// Which audit entries.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only entries about this stage.
    stage: Option<String>,
}

/// The audit log, oldest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "read", params(AuditQuery),
    responses((status = 200, description = "audit entries, oldest first", body = Vec<Object>)), security(("bearer" = [])))]
pub async fn audit(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(query): Query<AuditQuery>,
) -> Result<Json<Value>, ApiError> {
    read(&state, caller, move |engine, config| {
        if let Some(stage) = &query.stage {
            engine.stage(config, stage)?;
        }
        let store = engine.store()?;
        to_json(&crate::promotion::audit_entries(
            &store,
            query.stage.as_deref(),
        )?)
    })
    .await
    .map(Json)
}

/// Recomputes the audit log's hash chain.
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "read",
    responses((status = 200, description = "`{\"entries\", \"broken\"}`", body = Object)), security(("bearer" = [])))]
pub async fn audit_verify(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    read(&state, caller, |engine, _| {
        to_json(&crate::promotion::verify_audit(&engine.store()?)?)
    })
    .await
    .map(Json)
}

/// The window of a DORA report.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DoraQuery {
    /// Promotions that ended this long ago or later: `30d`, `12h`, `1d12h` (default `30d`).
    since: Option<String>,
}

/// The DORA keys per stage over a window, as `ferry metrics -o json` shows them.
#[utoipa::path(get, path = "/api/v1/metrics/dora", tag = "read", params(DoraQuery),
    responses((status = 200, description = "`{\"since\", \"until\", \"stages\": [{\"stage\", \"deployments\", \"deployments_per_day\", \"change_failures\", \"change_failure_rate\", \"lead_time_median_seconds\", \"time_to_restore_median_seconds\", \"restores\"}]}`, the body of `ferry metrics -o json`", body = Object),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)), security(("bearer" = [])))]
pub async fn dora(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(query): Query<DoraQuery>,
) -> Result<Json<Value>, ApiError> {
    let since = query.since.unwrap_or_else(|| "30d".to_string());
    let window = crate::promotion::metrics::window(&since)
        .map_err(|err| ApiError::bad_request(Some("since"), format!("since: {err}")))?;
    read(&state, caller, move |engine, config| {
        let stages: Vec<String> = config
            .pipeline
            .topological()
            .map(|s| s.name.clone())
            .collect();
        let store = engine.store()?;
        let report = crate::promotion::metrics::dora_report(&store, &stages, engine.now(), window)?;
        to_json(&report)
    })
    .await
    .map(Json)
}

/// Which deliveries.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct NotificationsQuery {
    /// Only deliveries in this state: `pending`, `delivered` or `failed`.
    status: Option<String>,
    /// At most this many, the newest (default 100).
    limit: Option<usize>,
}

/// The notification outbox, newest first. Admins only: a delivery's last error quotes the
/// receiver's answer and may name its URL, which is a secret for Slack webhooks.
#[utoipa::path(get, path = "/api/v1/notifications", tag = "read", params(NotificationsQuery),
    responses((status = 200, description = "deliveries, newest first: `[{\"id\", \"seq\", \"webhook\", \"state\", \"created_at\", \"attempts\", \"next_attempt_at\"?, \"last_error\"?, \"delivered_at\"?, \"payload\"}]`, the body of `ferry notifications -o json`", body = Vec<Object>),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn notifications(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(query): Query<NotificationsQuery>,
) -> Result<Json<Value>, ApiError> {
    let wanted = match query.status.as_deref() {
        None => None,
        Some(text) => Some(crate::notify::DeliveryState::parse(text).ok_or_else(|| {
            ApiError::bad_request(
                Some("status"),
                format!("status must be pending, delivered or failed, not `{text}`"),
            )
        })?),
    };
    let limit = query.limit.unwrap_or(NOTIFICATIONS_DEFAULT);
    state
        .blocking(move |s| {
            let engine = s.engine(caller.actor())?;
            let config = s.config(&engine)?;
            caller.may(&config, Action::Admin, None)?;
            let store = engine.store()?;
            to_json(&crate::notify::listing(store.backend(), wanted, limit)?)
        })
        .await
        .map(Json)
}
