//! `ferry serve`: run the service (the work happens in `crate::server`; this only wires).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::{CliError, Context};
use crate::pipeline::Span;
use crate::server::{ServeOptions, read_webhook_secret};

/// The heartbeat period of the reconcile loop (`/healthz` turns red after two missed beats).
const HEARTBEAT: Duration = Duration::from_secs(5);

/// Run the pipeline as a service: event-driven reconcile, the HTTP API, webhooks
///
/// The service holds the state: local writes against it (promote, approve, reject, rollback,
/// release create, reconcile) are refused while it runs; send them with `--server URL`.
/// Every API route but /healthz and /readyz needs `Authorization: Bearer TOKEN`. The push
/// webhook secret is read at start from the file named by FERRY_WEBHOOK_SECRET_FILE. It
/// delivers the notifications of policies/notifications.yaml itself.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0: any free port; the URL is printed on stderr)
    #[arg(long, default_value = "127.0.0.1:7878", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// PEM certificate chain: serve HTTPS (needs --tls-key)
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// How often to fetch the source branch when the repository has a remote
    #[arg(long, default_value = "1m", value_name = "DURATION", value_parser = parse_span)]
    pub fetch_interval: Duration,
    /// How long running steps get to reach their next persisted state on SIGTERM/SIGINT
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = parse_span)]
    pub grace: Duration,
    /// Also serve /metrics on this address, without a token (bind it where only Prometheus
    /// reaches it); /metrics on --listen always needs a viewer token
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    /// The URL people reach this service at (behind a proxy, or when listening on 0.0.0.0),
    /// for links in Slack notifications; default: the --listen URL
    #[arg(long, value_name = "URL", value_parser = parse_public_url)]
    pub public_url: Option<String>,
}

fn parse_public_url(text: &str) -> Result<String, String> {
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))
        .ok_or_else(|| format!("{text} is not an http:// or https:// URL"))?;
    if rest.is_empty() || rest.starts_with('/') || text.contains(char::is_whitespace) {
        return Err(format!("{text} has no host"));
    }
    Ok(text.to_string())
}

fn parse_span(text: &str) -> Result<Duration, String> {
    Span::parse(text).map(|span| span.0)
}

pub fn run(ctx: &Context, args: ServeArgs) -> Result<(), CliError> {
    let webhook_secret = match std::env::var_os("FERRY_WEBHOOK_SECRET_FILE") {
        Some(path) => Some(
            read_webhook_secret(std::path::Path::new(&path))
                .map_err(|e| CliError::from_error(super::ErrorKind::BadInput, e))?,
        ),
        None => None,
    };
    let options = ServeOptions {
        repo: ctx.repo()?,
        state_dir: ctx.state_dir()?,
        listen: args.listen,
        tls: args.tls_cert.zip(args.tls_key),
        fetch_interval: args.fetch_interval,
        grace: args.grace,
        engine_options: ctx.service_engine_options(),
        webhook_secret,
        period: HEARTBEAT,
        metrics_listen: args.metrics_listen,
        public_url: args.public_url,
        round_hook: super::engine::reconcile_round_hook(),
    };
    crate::server::serve(options, |at| {
        eprintln!("ferry serve: listening on {}", at.url);
        if let Some(metrics) = &at.metrics_url {
            eprintln!("ferry serve: metrics on {metrics}");
        }
    })
    .map_err(serve_error)
}

fn serve_error(err: crate::server::ServerError) -> CliError {
    use crate::server::ServerError;
    match err {
        ServerError::Engine(err) => super::engine::engine_error(err),
        err @ (ServerError::Listen { .. }
        | ServerError::Tls { .. }
        | ServerError::WebhookSecret { .. }
        | ServerError::EmptyWebhookSecret { .. }) => {
            CliError::from_error(super::ErrorKind::BadInput, err)
        }
        err => CliError::from_error(super::ErrorKind::Failed, err),
    }
}
