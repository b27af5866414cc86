//! `ferry status`: what every stage has now.

use clap::Args;

use super::client::Client;
use super::engine::engine_error;
use super::output::{emit, table};
use super::{CliError, Context};
use crate::promotion::StageStatus;

/// Show every stage: its revision, whether it is verified, its newest promotion's state, and
/// what it waits for
#[derive(Debug, Args)]
pub struct StatusArgs {}

pub fn run(ctx: &Context, _args: StatusArgs) -> Result<(), CliError> {
    if let Some(client) = ctx.client()? {
        return run_remote(ctx, &client);
    }
    let engine = ctx.engine()?;
    let branch = engine.source_branch().map_err(engine_error)?;
    let config = engine.config_at_branch(&branch).map_err(engine_error)?;
    let stages = engine.status(&config).map_err(engine_error)?;
    let paused = engine.pauses().map_err(engine_error)?;
    let value = serde_json::json!({
        "pipeline": config.pipeline.name,
        "stages": stages,
        "paused": paused,
    });
    emit(ctx.format(), &value, |out| {
        out.write_all(render(&stages).as_bytes())
    })
}

/// `GET /api/v1/status`: the same body, shown the same way.
fn run_remote(ctx: &Context, client: &Client) -> Result<(), CliError> {
    let mut value: serde_json::Value = client.get("/api/v1/status", &[])?;
    let stages: Vec<StageStatus> =
        serde_json::from_value(value["stages"].take()).map_err(|err| {
            CliError::failed(format!(
                "{} answered with an unexpected status: {err}",
                client.server()
            ))
        })?;
    value["stages"] = serde_json::to_value(&stages).expect("stage status encodes as JSON");
    emit(ctx.format(), &value, |out| {
        out.write_all(render(&stages).as_bytes())
    })
}

pub(crate) fn render(stages: &[StageStatus]) -> String {
    let rows: Vec<Vec<String>> = stages
        .iter()
        .map(|s| {
            vec![
                s.name.clone(),
                s.revision.clone().unwrap_or_else(|| "-".into()),
                if s.revision.is_none() {
                    "-".into()
                } else if s.verified {
                    "yes".into()
                } else {
                    "no".into()
                },
                s.state.as_str().to_string(),
                s.since
                    .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                    .unwrap_or_else(|| "-".into()),
                s.images.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let mut text = table(
        &["STAGE", "REVISION", "VERIFIED", "STATE", "SINCE", "IMAGES"],
        &rows,
    );
    for s in stages {
        for blocker in &s.blockers {
            text.push_str(&format!("{}: waiting: {blocker}\n", s.name));
        }
        for review in &s.reviews {
            text.push_str(&format!(
                "{}: {} by {} ({})\n",
                s.name,
                crate::promotion::review_noun(review.verdict),
                review.user,
                s.promotion_revision.as_deref().unwrap_or("-")
            ));
        }
        for gate in s
            .gates
            .iter()
            .filter(|g| g.status != crate::gates::GateStatus::Passed)
        {
            text.push_str(&format!(
                "{}: gate {} {}: {}\n",
                s.name,
                gate.name,
                gate.status.as_str(),
                gate.reason
            ));
        }
        if let Some(lock) = &s.lock {
            text.push_str(&format!(
                "{}: locked by {} ({}) since {}\n",
                s.name,
                lock.promotion,
                lock.user,
                lock.acquired_at.format("%H:%M:%S")
            ));
        }
    }
    text
}
