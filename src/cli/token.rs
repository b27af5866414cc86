//! `ferry token`: the API tokens of `ferry serve`, on this host's state.

use chrono::{DateTime, SecondsFormat, Utc};
use clap::{Args, Subcommand};

use super::output::{emit, table};
use super::{CliError, Context, ErrorKind};
use crate::access::{self, AccessError, TokenRecord};
use crate::pipeline::Span;
use crate::state::{DEFAULT_OPEN_WAIT, SqliteStore, StateStore};

/// Create, list and revoke the bearer tokens `ferry serve` accepts
///
/// Run on the server's host: tokens live in the state directory (only their SHA-256), and a
/// running server honours a new or revoked token from its next request on.
#[derive(Debug, Args)]
pub struct TokenArgs {
    #[command(subcommand)]
    pub command: TokenCommand,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token for a user and print it; it is shown only this once
    Create {
        /// The identity the token stands for (roles and approvals are matched against it)
        #[arg(long, value_name = "NAME")]
        user: String,
        /// How long the token is valid: 30m, 12h, 90d, … or `never`
        #[arg(long, value_name = "DURATION", default_value = "90d")]
        expires: String,
        /// What the token is for (shown by `token list`)
        #[arg(long, value_name = "TEXT")]
        description: Option<String>,
    },
    /// List tokens (never their secrets)
    List,
    /// Revoke a token: it is refused from the next request on
    Revoke {
        /// The token's id (t-…), as `token list` shows it
        id: String,
    },
}

pub fn run(ctx: &Context, args: TokenArgs) -> Result<(), CliError> {
    let store = SqliteStore::open(&ctx.state_dir()?, DEFAULT_OPEN_WAIT)
        .map_err(|err| CliError::from_error(ErrorKind::Failed, err))?;
    let now = Utc::now();
    match args.command {
        TokenCommand::Create {
            user,
            expires,
            description,
        } => create(ctx, &store, &user, &expires, description.as_deref(), now),
        TokenCommand::List => list(ctx, &store, now),
        TokenCommand::Revoke { id } => {
            let record = access::revoke_token(&store, &id, now).map_err(token_error)?;
            eprintln!(
                "revoked token {} of {} (at {})",
                record.id,
                record.user,
                time(record.revoked_at)
            );
            Ok(())
        }
    }
}

fn create(
    ctx: &Context,
    store: &dyn StateStore,
    user: &str,
    expires: &str,
    description: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), CliError> {
    let expires = match expires.trim() {
        "never" => None,
        text => Some(
            Span::parse(text)
                .map_err(|m| CliError::bad_input(format!("--expires: {m}, or `never`")))?
                .get(),
        ),
    };
    let new = access::create_token(store, user, description, expires, now).map_err(token_error)?;
    let value = serde_json::json!({
        "id": new.record.id,
        "user": new.record.user,
        "token": new.token.expose(),
        "expires_at": new.record.expires_at,
        "created_at": new.record.created_at,
        "description": new.record.description,
    });
    emit(ctx.format(), &value, |out| {
        writeln!(out, "{}", new.token.expose())
    })?;
    eprintln!(
        "created token {} for {} (expires: {}); it is shown only now, keep it safe",
        new.record.id,
        new.record.user,
        new.record
            .expires_at
            .map(|at| at.to_rfc3339_opts(SecondsFormat::Secs, true))
            .unwrap_or_else(|| "never".to_string())
    );
    Ok(())
}

fn list(ctx: &Context, store: &dyn StateStore, now: DateTime<Utc>) -> Result<(), CliError> {
    let records = access::list_tokens(store).map_err(token_error)?;
    let value: Vec<serde_json::Value> = records
        .iter()
        .map(|r| {
            serde_json::json!({
                "id": r.id,
                "user": r.user,
                "description": r.description,
                "created_at": r.created_at,
                "expires_at": r.expires_at,
                "revoked_at": r.revoked_at,
                "state": r.state(now).as_str(),
            })
        })
        .collect();
    emit(ctx.format(), &value, |out| {
        out.write_all(render(&records, now).as_bytes())
    })
}

fn render(records: &[TokenRecord], now: DateTime<Utc>) -> String {
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            vec![
                r.id.clone(),
                r.user.clone(),
                r.state(now).as_str().to_string(),
                time(Some(r.created_at)),
                r.expires_at
                    .map(|at| time(Some(at)))
                    .unwrap_or_else(|| "never".into()),
                r.description.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    table(
        &["ID", "USER", "STATE", "CREATED", "EXPIRES", "DESCRIPTION"],
        &rows,
    )
}

fn time(at: Option<DateTime<Utc>>) -> String {
    at.map(|at| at.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| "-".into())
}

fn token_error(err: AccessError) -> CliError {
    let kind = match err {
        AccessError::UnknownToken { .. } | AccessError::BadUser { .. } => ErrorKind::BadInput,
        AccessError::Store(_) | AccessError::Random { .. } => ErrorKind::Failed,
    };
    let hint = matches!(err, AccessError::UnknownToken { .. })
        .then_some("`ferry token list` shows the tokens");
    let error = CliError::from_error(kind, err);
    match hint {
        Some(hint) => error.with_hint(hint),
        None => error,
    }
}
