//! `GET /api/v1/events`: every state change as a server-sent event, from the engine's hook
//! through the broadcast channel. The stream ends when the service shuts down.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream, StreamExt};
use tokio::sync::broadcast::error::RecvError;

use super::api::read;
use super::app::AppState;
use super::caller::Caller;
use super::error::{ApiError, ErrorBody};

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
