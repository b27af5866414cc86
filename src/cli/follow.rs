//! Following a promotion that runs in a server: its state changes and its gates' progress
//! come from the event stream and are shown as a local `promote --wait` shows them.

use std::time::Duration;

use serde_json::Value;

use super::CliError;
use super::client::{Client, Event, EventStream, segment};
use super::progress::GateProgress;
use crate::gates::{GateResult, Observation};
use crate::promotion::{Promotion, PromotionState};

/// How long to wait for the events of a promotion that had settled when the service answered.
const CATCH_UP: Duration = Duration::from_secs(2);

/// Whether a local promote would have returned with the promotion in `state`: once it is
/// blocked or has ended — or, without `wait`, once it has been written.
fn settled(state: PromotionState, wait: bool) -> bool {
    state.is_terminal()
        || state == PromotionState::Blocked
        || (!wait && state == PromotionState::Verifying)
}

/// The promotion once it settled, its gates' progress on stderr with `wait`. `events` was
/// opened before the promotion was requested, so no change of it is missed.
pub fn follow(
    client: &Client,
    mut events: EventStream<'_>,
    promotion: Promotion,
    wait: bool,
) -> Result<Promotion, CliError> {
    // Already settled: without --wait that is all; with it, the service may have run the
    // promotion to its end before it answered, and its gates' progress is in the stream
    // already (the stream was open before the request): show it, unless none comes at once
    // (an earlier promotion the request found).
    let catch_up = settled(promotion.state, wait).then_some(CATCH_UP);
    if catch_up.is_some() && !wait {
        return Ok(promotion);
    }
    let path = format!("/api/v1/promotions/{}", segment(&promotion.id));
    let mut progress: Option<GateProgress> = None;
    loop {
        let Some(event) = events.next_within(catch_up)? else {
            return Ok(finish(progress, promotion));
        };
        let Some(event) = event else {
            drop(progress.take());
            let now: Promotion = client.get(&path, &[])?;
            if settled(now.state, wait) {
                return Ok(now);
            }
            return Err(CliError::failed(format!(
                "{} ended its event stream while {} was {}",
                client.server(),
                now.id,
                now.state
            ))
            .with_hint(format!(
                "the promotion goes on in the server: `ferry --server {} history {}` shows where it is",
                client.server(),
                now.stage
            )));
        };
        let ours = event.data["stage"].as_str() == Some(promotion.stage.as_str());
        match event.name.as_str() {
            "gate.started" if wait && ours => {
                progress = Some(GateProgress::for_rows(&promotion.stage, gate_rows(&event)));
            }
            "gate.observed" if ours => {
                if let (Some(progress), Some(gate), Ok(observation)) = (
                    &progress,
                    event.data["gate"].as_str(),
                    serde_json::from_value::<Observation>(event.data["observation"].clone()),
                ) {
                    use crate::gates::ProgressSink;
                    progress.observed(gate, &observation);
                }
            }
            "gate.finished" if ours => {
                if let (Some(progress), Ok(result)) = (
                    &progress,
                    serde_json::from_value::<GateResult>(event.data["result"].clone()),
                ) {
                    use crate::gates::ProgressSink;
                    progress.finished(&result);
                }
            }
            "lagged" => {
                let now: Promotion = client.get(&path, &[])?;
                if settled(now.state, wait) {
                    return Ok(finish(progress, now));
                }
            }
            name if event.data["promotion"].as_str() == Some(promotion.id.as_str()) => {
                let state = name
                    .strip_prefix("promotion.")
                    .and_then(|s| serde_json::from_value(Value::String(s.to_string())).ok());
                if state.is_some_and(|s| settled(s, wait)) {
                    let now: Promotion = client.get(&path, &[])?;
                    return Ok(finish(progress, now));
                }
            }
            _ => {}
        }
    }
}

/// Leaves the gates' final lines on screen (dropping the progress stops its redrawing).
fn finish(progress: Option<GateProgress>, promotion: Promotion) -> Promotion {
    drop(progress);
    promotion
}

/// The `gates` of a `gate.started` event: name and type of each.
fn gate_rows(event: &Event) -> Vec<(String, String)> {
    event.data["gates"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|g| {
            Some((
                g["name"].as_str()?.to_string(),
                g["kind"].as_str()?.to_string(),
            ))
        })
        .collect()
}
