//! `GET /api/v1/events`: every state change as a server-sent event, from the engine's hook
//! through the broadcast channel, and the progress of running gates (what `promote --wait`
//! shows). The stream ends when the service shuts down.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream, StreamExt};
use tokio::sync::broadcast::error::RecvError;

use serde::Serialize;

use super::api::read;
use super::app::{AppState, ServerEvent};
use super::caller::Caller;
use super::error::{ApiError, ErrorBody};
use crate::gates::{GateResult, Observation, ProgressSink, kind_name};
use crate::pipeline::GateSpec;
use crate::promotion::GateReporter;

/// Server-sent events: one per state change, the event name its kind, the data JSON.
#[utoipa::path(get, path = "/api/v1/events", tag = "read",
    responses((status = 200, description = "`text/event-stream`: events named by kind (`promotion.succeeded`, `release.created`, …) with JSON data `{kind, stage?, revision?, by?, at}`"),
        (status = 401, body = ErrorBody)), security(("bearer" = [])))]
pub async fn stream(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    read(&state, caller, |_, _| Ok(())).await?;
    let receiver = state.events.subscribe();
    let events = stream::unfold(receiver, |mut receiver| async move {
        let sse = match receiver.recv().await {
            Ok(event) => Event::default()
                .event(event.kind.clone())
                .json_data(&event)
                .unwrap_or_else(|_| Event::default().event("error")),
            Err(RecvError::Lagged(missed)) => Event::default()
                .event("lagged")
                .data(format!("{{\"missed\":{missed}}}")),
            Err(RecvError::Closed) => return None,
        };
        Some((Ok(sse), receiver))
    });
    let opening = stream::once(async { Ok(Event::default().event("ready").data("{}")) });
    let stream = opening
        .chain(events)
        .take_until(state.cancel.clone().cancelled_owned());
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// A gate's progress as the event stream carries it: the gates of a stage as they start
/// (`gate.started`), one observation (`gate.observed`) or one result (`gate.finished`).
#[derive(Debug, Clone, Serialize)]
pub struct GateUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gates: Option<Vec<GateRow>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observation: Option<Observation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<GateResult>,
}

/// One gate of a stage: its name and type.
#[derive(Debug, Clone, Serialize)]
pub struct GateRow {
    pub name: String,
    pub kind: String,
}

/// Publishes the progress of every stage's gates on the event stream.
pub struct GateEvents {
    state: std::sync::Weak<AppState>,
}

impl GateEvents {
    pub fn new(state: std::sync::Weak<AppState>) -> GateEvents {
        GateEvents { state }
    }
}

impl GateReporter for GateEvents {
    fn start(&self, stage: &str, gates: &[GateSpec]) -> Box<dyn ProgressSink> {
        let rows = gates
            .iter()
            .map(|g| GateRow {
                name: g.name.clone(),
                kind: kind_name(&g.kind).to_string(),
            })
            .collect();
        let sink = GateEventSink {
            state: self.state.clone(),
            stage: stage.to_string(),
        };
        sink.publish(
            "gate.started",
            GateUpdate {
                gates: Some(rows),
                gate: None,
                observation: None,
                result: None,
            },
        );
        Box::new(sink)
    }
}

/// The gates of one stage while they run.
struct GateEventSink {
    state: std::sync::Weak<AppState>,
    stage: String,
}

impl GateEventSink {
    /// Sends `update` to the stream's subscribers. Progress is no state change: it neither
    /// wakes the reconcile loop nor counts as one.
    fn publish(&self, kind: &str, update: GateUpdate) {
        if let Some(state) = self.state.upgrade() {
            let mut event = ServerEvent::new(kind).stage(&self.stage);
            event.gate = Some(update);
            // No subscribers is fine: nobody watches the stream right now.
            let _ = state.events.send(event);
        }
    }
}

impl ProgressSink for GateEventSink {
    fn observed(&self, gate: &str, observation: &Observation) {
        self.publish(
            "gate.observed",
            GateUpdate {
                gates: None,
                gate: Some(gate.to_string()),
                observation: Some(observation.clone()),
                result: None,
            },
        );
    }

    fn finished(&self, result: &GateResult) {
        self.publish(
            "gate.finished",
            GateUpdate {
                gates: None,
                gate: Some(result.name.clone()),
                observation: None,
                result: Some(result.clone()),
            },
        );
    }
}
