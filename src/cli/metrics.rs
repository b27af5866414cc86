//! `ferry metrics`: the DORA keys per stage over a window, for teams without Prometheus.

use clap::Args;

use super::engine::engine_error;
use super::output::{emit, table};
use super::{CliError, Context};
use crate::promotion::metrics::{self, DoraReport};

/// Show the DORA keys per stage: deployments (and per day), change failures and their rate,
/// median lead time (release created → verified) and median time to restore
#[derive(Debug, Args)]
pub struct MetricsArgs {
    /// The window: promotions that ended this long ago or later
    #[arg(long, default_value = "30d", value_name = "DURATION")]
    pub since: String,
}

pub fn run(ctx: &Context, args: MetricsArgs) -> Result<(), CliError> {
    let report = match ctx.client()? {
        // The server checks the window and answers with the same report.
        Some(client) => {
            client.get::<DoraReport>("/api/v1/metrics/dora", &[("since", args.since.clone())])?
        }
        None => local_report(ctx, &args.since)?,
    };
    emit(ctx.format(), &report, |out| {
        out.write_all(render(&report).as_bytes())
    })
}

fn local_report(ctx: &Context, since: &str) -> Result<DoraReport, CliError> {
    let window = metrics::window(since)
        .map_err(|err| CliError::bad_input(format!("--since {since}: {err}")))?;
    let engine = ctx.engine()?;
    let branch = engine.source_branch().map_err(engine_error)?;
    let config = engine.config_at_branch(&branch).map_err(engine_error)?;
    let stages: Vec<String> = config
        .pipeline
        .topological()
        .map(|s| s.name.clone())
        .collect();
    let store = engine.store().map_err(engine_error)?;
    metrics::dora_report(&store, &stages, engine.now(), window).map_err(engine_error)
}

fn render(report: &DoraReport) -> String {
    let rows: Vec<Vec<String>> = report
        .stages
        .iter()
        .map(|s| {
            vec![
                s.stage.clone(),
                s.deployments.to_string(),
                format!("{:.2}", s.deployments_per_day),
                s.change_failures.to_string(),
                s.change_failure_rate
                    .map_or("-".into(), |r| format!("{:.0}%", r * 100.0)),
                s.lead_time_median_seconds.map_or("-".into(), human),
                s.time_to_restore_median_seconds.map_or("-".into(), human),
            ]
        })
        .collect();
    let mut text = format!(
        "from {} to {}\n",
        report.since.format("%Y-%m-%d %H:%M"),
        report.until.format("%Y-%m-%d %H:%M")
    );
    text.push_str(&table(
        &[
            "STAGE",
            "DEPLOYMENTS",
            "PER DAY",
            "CHANGE FAILURES",
            "FAILURE RATE",
            "LEAD TIME (MEDIAN)",
            "TIME TO RESTORE (MEDIAN)",
        ],
        &rows,
    ));
    text
}

/// `45s`, `12m`, `3h20m`, `2d4h`.
fn human(seconds: f64) -> String {
    let s = seconds.round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{}h", s / 86_400, (s % 86_400) / 3600),
    }
}
