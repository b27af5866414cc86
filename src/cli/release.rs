//! `ferry release`: create, list and show revisions.

use clap::{Args, Subcommand};

use super::client::{Client, segment};
use super::engine::engine_error;
use super::output::{emit, table};
use super::{CliError, Context};
use crate::promotion::Revision;

/// Create and inspect revisions: the images a release pins and its config commit
#[derive(Debug, Args)]
pub struct ReleaseArgs {
    #[command(subcommand)]
    pub command: ReleaseCommand,
}

#[derive(Debug, Subcommand)]
pub enum ReleaseCommand {
    /// Create a revision and print its id (the same content always gets the same id)
    Create {
        /// An image to pin: NAME=TAG, NAME=sha256:DIGEST or NAME=REPO:TAG[@DIGEST]; repeatable
        #[arg(long = "image", value_name = "NAME=REF", required = true)]
        images: Vec<String>,
        /// The config commit shared files are read from [default: the source branch tip]
        #[arg(long, value_name = "REV")]
        commit: Option<String>,
        /// A note about the release
        #[arg(long, short = 'm')]
        message: Option<String>,
    },
    /// List revisions, newest first
    List,
    /// Show one revision
    Show {
        /// The revision id (or a unique prefix of it)
        revision: String,
    },
}

pub fn run(ctx: &Context, args: ReleaseArgs) -> Result<(), CliError> {
    if let Some(client) = ctx.client()? {
        return run_remote(ctx, &client, args);
    }
    let engine = ctx.engine()?;
    match args.command {
        ReleaseCommand::Create {
            images,
            commit,
            message,
        } => {
            ctx.refuse_if_served(&engine)?;
            let (revision, created) = engine
                .create_release(&images, commit.as_deref(), message.as_deref())
                .map_err(engine_error)?;
            let mut value =
                serde_json::to_value(&revision).map_err(|e| CliError::failed(e.to_string()))?;
            value["created"] = created.into();
            emit(ctx.format(), &value, |out| {
                created_line(out, &revision, created)
            })
        }
        ReleaseCommand::List => {
            let revisions = engine
                .store()
                .and_then(|s| s.revisions())
                .map_err(engine_error)?;
            emit(ctx.format(), &revisions, |out| {
                out.write_all(list_table(&revisions).as_bytes())
            })
        }
        ReleaseCommand::Show { revision } => {
            let revision = engine
                .store()
                .and_then(|s| s.revision(&revision))
                .map_err(engine_error)?;
            emit(ctx.format(), &revision, |out| show(out, &revision))
        }
    }
}

/// The same commands through the API: `POST /api/v1/releases`, `GET /api/v1/releases[/{id}]`.
fn run_remote(ctx: &Context, client: &Client, args: ReleaseArgs) -> Result<(), CliError> {
    match args.command {
        ReleaseCommand::Create {
            images,
            commit,
            message,
        } => {
            let mut pins = serde_json::Map::new();
            for image in &images {
                let (name, reference) = image.split_once('=').ok_or_else(|| {
                    CliError::bad_input(format!(
                        "--image {image}: expected NAME=REF, e.g. acme/web=1.4.2"
                    ))
                })?;
                pins.insert(name.trim().to_string(), reference.trim().into());
            }
            let body = serde_json::json!({"images": pins, "commit": commit, "message": message});
            let reply = client.post("/api/v1/releases", &body)?;
            let created = reply.status == reqwest::StatusCode::CREATED;
            let mut value = reply.body;
            let revision: Revision = serde_json::from_value(value.clone()).map_err(|err| {
                CliError::failed(format!(
                    "{} answered with an unexpected revision: {err}",
                    client.server()
                ))
            })?;
            value["created"] = created.into();
            emit(ctx.format(), &value, |out| {
                created_line(out, &revision, created)
            })
        }
        ReleaseCommand::List => {
            let revisions: Vec<Revision> = client.get("/api/v1/releases", &[])?;
            emit(ctx.format(), &revisions, |out| {
                out.write_all(list_table(&revisions).as_bytes())
            })
        }
        ReleaseCommand::Show { revision } => {
            let revision: Revision =
                client.get(&format!("/api/v1/releases/{}", segment(&revision)), &[])?;
            emit(ctx.format(), &revision, |out| show(out, &revision))
        }
    }
}

fn created_line(
    out: &mut dyn std::io::Write,
    revision: &Revision,
    created: bool,
) -> std::io::Result<()> {
    let note = if created { "" } else { " (exists already)" };
    writeln!(out, "{}{note}", revision.id)
}

fn show(out: &mut dyn std::io::Write, revision: &Revision) -> std::io::Result<()> {
    writeln!(out, "revision:      {}", revision.id)?;
    for pin in revision.images.values() {
        writeln!(out, "image:         {} → {}", pin.name, pin.reference())?;
    }
    writeln!(out, "config commit: {}", revision.config_commit)?;
    writeln!(out, "source branch: {}", revision.source_branch)?;
    writeln!(
        out,
        "created:       {} by {}",
        revision.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
        revision.created_by
    )?;
    if let Some(message) = &revision.message {
        writeln!(out, "message:       {message}")?;
    }
    Ok(())
}

fn list_table(revisions: &[Revision]) -> String {
    let rows: Vec<Vec<String>> = revisions
        .iter()
        .map(|r| {
            vec![
                r.id.clone(),
                r.images_summary(),
                r.config_commit.chars().take(12).collect(),
                r.created_at.format("%Y-%m-%d %H:%M").to_string(),
                r.created_by.clone(),
                r.message.clone().unwrap_or_default(),
            ]
        })
        .collect();
    table(
        &["REVISION", "IMAGES", "CONFIG", "CREATED", "BY", "MESSAGE"],
        &rows,
    )
}
