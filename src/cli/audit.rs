//! `ferry audit`: the hash-chained audit log.

use clap::{Args, Subcommand};

use super::client::Client;
use super::engine::engine_error;
use super::output::{emit, table};
use super::{CliError, Context};
use crate::promotion::{AuditEntry, AuditReport, Store};

/// Inspect and verify the audit log
#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: AuditCommand,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute the hash chain and name the first broken entry (exit 1 when broken)
    Verify,
    /// List audit entries, oldest first
    Log {
        /// Only entries about this stage
        #[arg(long)]
        stage: Option<String>,
    },
}

/// Where the audit log is read: the local state, or a server's API.
enum Source {
    Local(Store),
    Server(Client),
}

impl Source {
    fn verify(&self) -> Result<AuditReport, CliError> {
        match self {
            Source::Local(store) => crate::promotion::verify_audit(store).map_err(engine_error),
            Source::Server(client) => client.get("/api/v1/audit/verify", &[]),
        }
    }

    fn entries(&self, stage: Option<String>) -> Result<Vec<AuditEntry>, CliError> {
        match self {
            Source::Local(store) => {
                crate::promotion::audit_entries(store, stage.as_deref()).map_err(engine_error)
            }
            Source::Server(client) => {
                let query: Vec<(&str, String)> = stage.into_iter().map(|s| ("stage", s)).collect();
                client.get("/api/v1/audit", &query)
            }
        }
    }
}

pub fn run(ctx: &Context, args: AuditArgs) -> Result<(), CliError> {
    let source = match ctx.client()? {
        Some(client) => Source::Server(client),
        None => Source::Local(ctx.engine()?.store().map_err(engine_error)?),
    };
    match args.command {
        AuditCommand::Verify => {
            let report = source.verify()?;
            emit(ctx.format(), &report, |out| match &report.broken {
                None => writeln!(out, "ok: {} entries, chain intact", report.entries),
                Some((seq, why)) => writeln!(out, "broken at entry {seq}: {why}"),
            })?;
            match report.broken {
                None => Ok(()),
                Some((seq, _)) => Err(CliError::failed(format!(
                    "the audit log is broken at entry {seq}"
                ))),
            }
        }
        AuditCommand::Log { stage } => {
            let entries = source.entries(stage)?;
            emit(ctx.format(), &entries, |out| {
                let rows: Vec<Vec<String>> = entries
                    .iter()
                    .map(|e| {
                        vec![
                            e.seq.to_string(),
                            e.at.format("%Y-%m-%d %H:%M:%S").to_string(),
                            e.actor.clone(),
                            e.action.clone(),
                            e.stage.clone().unwrap_or_default(),
                            e.revision.clone().unwrap_or_default(),
                            e.promotion.clone().unwrap_or_default(),
                        ]
                    })
                    .collect();
                out.write_all(
                    table(
                        &[
                            "SEQ",
                            "AT",
                            "ACTOR",
                            "ACTION",
                            "STAGE",
                            "REVISION",
                            "PROMOTION",
                        ],
                        &rows,
                    )
                    .as_bytes(),
                )
            })
        }
    }
}
