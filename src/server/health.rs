//! `/healthz` (the reconcile loop goes round) and `/readyz` (the state is open and the
//! pipeline loaded): the two routes that need no token.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::app::AppState;

/// 200 while the reconcile loop's heartbeat is younger than twice its period, else 503.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "the reconcile loop makes progress"), (status = 503, description = "the loop is wedged")))]
pub async fn healthz(State(state): State<Arc<AppState>>) -> (StatusCode, Json<Value>) {
    let now = chrono::Utc::now();
    let last = chrono::DateTime::from_timestamp_millis(state.heartbeat.load(Ordering::SeqCst));
    let body = json!({"heartbeat": last, "period_seconds": state.period.as_secs_f64()});
    if state.healthy(now) {
        (StatusCode::OK, Json(body))
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(body))
    }
}

/// 200 once the state is open and the pipeline loaded, else 503.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses((status = 200, description = "ready"), (status = 503, description = "starting or stopping")))]
pub async fn readyz(State(state): State<Arc<AppState>>) -> (StatusCode, Json<Value>) {
    if state.ready.load(Ordering::SeqCst) && !state.cancel.is_cancelled() {
        (StatusCode::OK, Json(json!({"ready": true})))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"ready": false})),
        )
    }
}
