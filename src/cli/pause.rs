//! `ferry pause` and `ferry resume`: stop the line in some stages (or all), and let it go.

use clap::Args;

use super::client::Client;
use super::engine::engine_error;
use super::output::emit;
use super::{CliError, Context};
use crate::promotion::Pauses;

/// Stop the line: no promotion starts in the stages (default: all) until `ferry resume`
///
/// A promotion already writing or verifying finishes; waiting ones show who paused and why.
/// The pause is audited.
#[derive(Debug, Args)]
pub struct PauseArgs {
    /// Only this stage; repeatable [default: the whole pipeline]
    #[arg(long = "stage", value_name = "STAGE")]
    pub stages: Vec<String>,
    /// Why (shown to everyone waiting, recorded in the audit log)
    #[arg(long, required = true)]
    pub reason: String,
}

/// Let the line go again: resume the stages (default: everything paused)
#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// Only this stage; repeatable [default: everything paused]
    #[arg(long = "stage", value_name = "STAGE")]
    pub stages: Vec<String>,
    /// A note for the audit log
    #[arg(long, default_value = "")]
    pub reason: String,
}

pub fn pause(ctx: &Context, args: PauseArgs) -> Result<(), CliError> {
    if let Some(client) = ctx.client()? {
        return remote(ctx, &client, "/api/v1/pause", &args.stages, &args.reason);
    }
    let engine = ctx.writing_engine()?;
    let branch = engine.source_branch().map_err(engine_error)?;
    let config = engine.config_at_branch(&branch).map_err(engine_error)?;
    let pauses = engine
        .pause(&config, &args.stages, &args.reason)
        .map_err(engine_error)?;
    emit(ctx.format(), &pauses, |out| write_pauses(out, &pauses))
}

pub fn resume(ctx: &Context, args: ResumeArgs) -> Result<(), CliError> {
    if let Some(client) = ctx.client()? {
        return remote(ctx, &client, "/api/v1/resume", &args.stages, &args.reason);
    }
    let engine = ctx.writing_engine()?;
    let branch = engine.source_branch().map_err(engine_error)?;
    let config = engine.config_at_branch(&branch).map_err(engine_error)?;
    for stage in &args.stages {
        engine.stage(&config, stage).map_err(engine_error)?;
    }
    let pauses = engine
        .resume(&config, &args.stages, &args.reason)
        .map_err(engine_error)?;
    emit(ctx.format(), &pauses, |out| write_pauses(out, &pauses))
}

/// `POST /api/v1/pause` or `/api/v1/resume`: what is paused afterwards.
fn remote(
    ctx: &Context,
    client: &Client,
    path: &str,
    stages: &[String],
    reason: &str,
) -> Result<(), CliError> {
    let body = serde_json::json!({"stages": stages, "reason": reason});
    let pauses: Pauses = client.post(path, &body)?.parse(client.server())?;
    emit(ctx.format(), &pauses, |out| write_pauses(out, &pauses))
}

fn write_pauses(out: &mut dyn std::io::Write, pauses: &Pauses) -> std::io::Result<()> {
    if pauses.all.is_none() && pauses.stages.is_empty() {
        return writeln!(out, "nothing is paused");
    }
    if let Some(p) = &pauses.all {
        writeln!(out, "every stage: paused by {}: {}", p.by, p.reason)?;
    }
    for (stage, p) in &pauses.stages {
        writeln!(out, "{stage}: paused by {}: {}", p.by, p.reason)?;
    }
    Ok(())
}
