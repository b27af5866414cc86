//! `ferry history`: promotions, newest first.

use clap::Args;

use super::client::{Client, segment};
use super::engine::engine_error;
use super::output::{emit, table};
use super::{CliError, Context};
use crate::promotion::{Promotion, PromotionState};

/// List promotions, newest first: of one stage or of all
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Only this stage
    pub stage: Option<String>,
    /// At most this many
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
}

pub fn run(ctx: &Context, args: HistoryArgs) -> Result<(), CliError> {
    if let Some(client) = ctx.client()? {
        let promotions = remote_history(&client, args.stage.as_deref(), args.limit)?;
        return emit(ctx.format(), &promotions, |out| {
            out.write_all(render(&promotions).as_bytes())
        });
    }
    let engine = ctx.engine()?;
    if let Some(stage) = &args.stage {
        let branch = engine.source_branch().map_err(engine_error)?;
        let config = engine.config_at_branch(&branch).map_err(engine_error)?;
        engine.stage(&config, stage).map_err(engine_error)?;
    }
    let promotions = engine
        .history(args.stage.as_deref(), args.limit)
        .map_err(engine_error)?;
    emit(ctx.format(), &promotions, |out| {
        out.write_all(render(&promotions).as_bytes())
    })
}

/// The history of one stage from the server, or of every stage (the server answers per stage:
/// each stage's newest, merged newest first).
fn remote_history(
    client: &Client,
    stage: Option<&str>,
    limit: usize,
) -> Result<Vec<Promotion>, CliError> {
    let stages: Vec<String> = match stage {
        Some(stage) => vec![stage.to_string()],
        None => {
            let status: serde_json::Value = client.get("/api/v1/status", &[])?;
            status["stages"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s["name"].as_str().map(str::to_string))
                .collect()
        }
    };
    let mut promotions: Vec<Promotion> = Vec::new();
    for stage in &stages {
        let some: Vec<Promotion> = client.get(
            &format!("/api/v1/stages/{}/history", segment(stage)),
            &[("limit", limit.to_string())],
        )?;
        promotions.extend(some);
    }
    promotions.sort_by(|a, b| b.id.len().cmp(&a.id.len()).then_with(|| b.id.cmp(&a.id)));
    promotions.truncate(limit);
    Ok(promotions)
}

pub(crate) fn render(promotions: &[Promotion]) -> String {
    let rows: Vec<Vec<String>> = promotions
        .iter()
        .map(|p| {
            let gates = p
                .gates
                .iter()
                .map(|g| format!("{}:{}", g.name, g.status.as_str()))
                .collect::<Vec<_>>()
                .join(",");
            let mut detail = if p.state == PromotionState::Blocked {
                p.blockers
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            } else {
                p.error.clone().unwrap_or(gates)
            };
            if !p.approved_by.is_empty() {
                detail = format!("approved by {}; {detail}", p.approved_by.join(", "));
            }
            vec![
                p.id.clone(),
                p.stage.clone(),
                p.revision.clone(),
                p.state.to_string(),
                if p.rollback {
                    "rollback".into()
                } else {
                    p.trigger.as_str().into()
                },
                p.requested_by.clone(),
                p.requested_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                detail,
            ]
        })
        .collect();
    table(
        &[
            "PROMOTION",
            "STAGE",
            "REVISION",
            "STATE",
            "TRIGGER",
            "BY",
            "REQUESTED",
            "DETAIL",
        ],
        &rows,
    )
}
