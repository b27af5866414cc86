//! `ferry notifications`: the outbox — what was sent to which webhook, what waits, what
//! failed and why — and `ferry notifications deliver`, one delivery pass without a server.

use std::sync::Arc;

use clap::{Args, Subcommand, ValueEnum};

use super::engine::engine_error;
use super::output::{emit, table};
use super::{CliError, Context};
use crate::notify::{Delivery, DeliveryState, Targets, Worker, WorkerOptions};

/// List notification deliveries: pending, delivered, and failed with the last error
#[derive(Debug, Args)]
pub struct NotificationsArgs {
    #[command(subcommand)]
    pub command: Option<NotificationsCommand>,
    /// Only deliveries in this state
    #[arg(long, value_enum)]
    pub status: Option<StateFilter>,
    /// At most this many, the newest
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
}

#[derive(Debug, Subcommand)]
pub enum NotificationsCommand {
    /// Attempt every delivery that is due now, once, then exit (`ferry serve` delivers on
    /// its own; this is for repositories driven by `ferry reconcile` from cron)
    Deliver {
        /// The web UI's base URL, for links in Slack messages
        #[arg(long, value_name = "URL")]
        ui_url: Option<String>,
    },
}

/// A delivery state to filter on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StateFilter {
    Pending,
    Delivered,
    Failed,
}

pub fn run(ctx: &Context, args: NotificationsArgs) -> Result<(), CliError> {
    match args.command {
        Some(NotificationsCommand::Deliver { ui_url }) => deliver(ctx, ui_url),
        None => list(ctx, args.status, args.limit),
    }
}

fn list(ctx: &Context, state: Option<StateFilter>, limit: usize) -> Result<(), CliError> {
    let wanted = state.map(|s| match s {
        StateFilter::Pending => DeliveryState::Pending,
        StateFilter::Delivered => DeliveryState::Delivered,
        StateFilter::Failed => DeliveryState::Failed,
    });
    if let Some(client) = ctx.client()? {
        let mut query = vec![("limit", limit.to_string())];
        if let Some(state) = wanted {
            query.push(("status", state.as_str().to_string()));
        }
        // The JSON is printed as the server wrote it; the table is made from the deliveries.
        let body: serde_json::Value = client.get("/api/v1/notifications", &query)?;
        let deliveries: Vec<Delivery> = serde_json::from_value(body.clone()).map_err(|err| {
            CliError::failed(format!(
                "{} answered with an unexpected body: {err}",
                client.server()
            ))
        })?;
        return emit(ctx.format(), &body, |out| {
            out.write_all(render(&deliveries).as_bytes())
        });
    }
    let store = ctx.engine()?.store().map_err(engine_error)?;
    let deliveries = crate::notify::listing(store.backend(), wanted, limit)
        .map_err(|err| CliError::from_error(super::ErrorKind::Failed, err))?;
    emit(ctx.format(), &deliveries, |out| {
        out.write_all(render(&deliveries).as_bytes())
    })
}

fn render(deliveries: &[Delivery]) -> String {
    if deliveries.is_empty() {
        return "no notifications\n".to_string();
    }
    let rows: Vec<Vec<String>> = deliveries
        .iter()
        .map(|d| {
            vec![
                d.id.clone(),
                d.webhook.clone(),
                d.payload.event.clone(),
                d.payload.stage.clone().unwrap_or_else(|| "-".into()),
                d.state.as_str().to_string(),
                d.attempts.to_string(),
                d.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                d.last_error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "WEBHOOK",
            "EVENT",
            "STAGE",
            "STATE",
            "ATTEMPTS",
            "CREATED",
            "LAST ERROR",
        ],
        &rows,
    )
}

fn deliver(ctx: &Context, ui_url: Option<String>) -> Result<(), CliError> {
    let engine = ctx.writing_engine()?;
    let branch = engine.source_branch().map_err(engine_error)?;
    let config = engine.config_at_branch(&branch).map_err(engine_error)?;
    let targets = Targets::resolve(&config.notifications, &|name| std::env::var(name).ok());
    for (webhook, why) in targets.problems() {
        eprintln!("warning: webhook {webhook}: {why}");
    }
    // One pass of one process: the store stays open for it.
    let store = engine.store().map_err(engine_error)?.into_backend();
    let options = WorkerOptions {
        ui_url,
        clock: engine_clock(&engine),
        ..WorkerOptions::default()
    };
    let shared = Arc::clone(&store);
    let worker = Worker::new(Arc::new(move || Ok(Arc::clone(&shared))), targets, options)
        .map_err(|err| CliError::from_error(super::ErrorKind::Failed, err))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| CliError::failed(format!("failed to start the runtime: {err}")))?;
    let before = crate::notify::counts(store.as_ref())
        .map_err(|err| CliError::from_error(super::ErrorKind::Failed, err))?;
    runtime
        .block_on(worker.deliver_due())
        .map_err(|err| CliError::from_error(super::ErrorKind::Failed, err))?;
    let after = crate::notify::counts(store.as_ref())
        .map_err(|err| CliError::from_error(super::ErrorKind::Failed, err))?;
    let delivered = after.delivered - before.delivered;
    emit(ctx.format(), &after, |out| {
        writeln!(
            out,
            "delivered {delivered}; pending {}, failed {}",
            after.pending, after.failed
        )
    })
}

fn engine_clock(
    engine: &crate::promotion::Engine,
) -> Arc<dyn Fn() -> chrono::DateTime<chrono::Utc> + Send + Sync> {
    match engine.clock() {
        Some(clock) => clock,
        None => Arc::new(chrono::Utc::now),
    }
}
