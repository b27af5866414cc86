//! The command line: global options, one file per subcommand, output formatting and the
//! mapping of errors to exit codes. Only this module prints.

mod abort;
mod audit;
mod build;
mod client;
mod completions;
mod credentials;
mod demo;
mod diff;
mod engine;
mod error;
mod follow;
mod graph;
mod history;
mod login;
mod metrics;
mod notifications;
pub mod output;
mod pause;
mod plan;
pub mod progress;
mod promote;
mod reconcile;
mod release;
mod render;
mod review;
mod rollback;
mod serve;
mod status;
mod token;
mod validate;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

pub use error::{CliError, ErrorKind};
pub use output::Format;

/// ferry moves releases through a pipeline of GitOps environments: it renders each stage's
/// overlay with a revision, commits the manifests to the stage's branch, waits for its health
/// gates and promotes further only when the next stage's policy allows.
#[derive(Debug, Parser)]
#[command(
    name = "ferry",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand accepts, before or after its name.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// The config repository [default: the git repository containing the working directory]
    #[arg(long, global = true, value_name = "DIR")]
    pub repo: Option<PathBuf>,
    /// Where ferry keeps its state [default: <repo>/.ferry]
    #[arg(long, global = true, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// Act as this user [default: $FERRY_USER, else the OS user]; not with --server, which
    /// takes your identity from your token
    #[arg(long = "as", global = true, value_name = "USER")]
    pub as_user: Option<String>,
    /// Work against a running `ferry serve` instead of the local state, with the token from
    /// $FERRY_TOKEN or `ferry login URL`
    #[arg(long, global = true, env = "FERRY_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// Output format of read commands
    #[arg(short = 'o', long = "output", global = true, value_enum, default_value_t = Format::Table)]
    pub output: Format,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Demo(demo::DemoArgs),
    Build(build::BuildArgs),
    Render(render::RenderArgs),
    Validate(validate::ValidateArgs),
    Graph(graph::GraphArgs),
    Release(release::ReleaseArgs),
    Plan(plan::PlanArgs),
    Promote(promote::PromoteArgs),
    /// Approve the revision waiting in a stage (or --revision REV)
    Approve(review::ReviewArgs),
    /// Reject the revision waiting in a stage (or --revision REV); blocks it until withdrawn
    /// or the content changes
    Reject(review::ReviewArgs),
    Status(status::StatusArgs),
    History(history::HistoryArgs),
    Rollback(rollback::RollbackArgs),
    Abort(abort::AbortArgs),
    Diff(diff::DiffArgs),
    Reconcile(reconcile::ReconcileArgs),
    Serve(serve::ServeArgs),
    Pause(pause::PauseArgs),
    Resume(pause::ResumeArgs),
    Audit(audit::AuditArgs),
    Token(token::TokenArgs),
    Login(login::LoginArgs),
    Notifications(notifications::NotificationsArgs),
    Metrics(metrics::MetricsArgs),
    Completions(completions::CompletionsArgs),
}

impl Command {
    /// For a command that works only on the local state and repository: its name and why, so
    /// that `--server` is refused rather than ignored. `None` for commands that either go to
    /// the server or never touch state (build, validate, graph, render, demo, login, …).
    fn local_only(&self) -> Option<(&'static str, &'static str)> {
        match self {
            Command::Token(_) => Some((
                "token",
                "tokens are managed on the server's host, against its state directory",
            )),
            Command::Reconcile(_) => Some(("reconcile", "a running server reconciles by itself")),
            Command::Diff(_) => Some(("diff", "it compares output branches of a local clone")),
            Command::Notifications(args) if args.command.is_some() => Some((
                "notifications deliver",
                "a running server delivers by itself",
            )),
            Command::Serve(_) => Some(("serve", "it runs the service itself, on a local state")),
            Command::Demo(_)
            | Command::Build(_)
            | Command::Render(_)
            | Command::Validate(_)
            | Command::Graph(_)
            | Command::Login(_)
            | Command::Release(_)
            | Command::Approve(_)
            | Command::Reject(_)
            | Command::Status(_)
            | Command::History(_)
            | Command::Plan(_)
            | Command::Promote(_)
            | Command::Rollback(_)
            | Command::Abort(_)
            | Command::Audit(_)
            | Command::Pause(_)
            | Command::Resume(_)
            | Command::Metrics(_)
            | Command::Notifications(_)
            | Command::Completions(_) => None,
        }
    }
}

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = match parse(std::env::args_os().collect()) {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return if err.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    // The renderer logs nothing, and `build` (run once per overlay by scripts, a couple of
    // milliseconds a run) would spend a tenth of a millisecond setting up the logger.
    if !matches!(cli.command, Command::Build(_)) {
        init_tracing();
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{err}");
            err.exit_code()
        }
    }
}

/// Parses the command line. `build` and `render`, which scripts run once per overlay, are
/// first parsed against a command line that defines only them: defining all the subcommands
/// is most of the parsing, and parsing a third of such a run's start-up. Anything that does
/// not parse that way (`--help`, a mistake) is parsed again against the whole command line,
/// so its message is exactly the usual one.
fn parse(args: Vec<std::ffi::OsString>) -> Result<Cli, clap::Error> {
    use clap::FromArgMatches;
    let only = match args.get(1).and_then(|arg| arg.to_str()) {
        Some("build") => Some(build::BuildArgs::augment_args(clap::Command::new("build"))),
        Some("render") => Some(render::RenderArgs::augment_args(clap::Command::new(
            "render",
        ))),
        _ => None,
    };
    if let Some(subcommand) = only {
        let command = GlobalArgs::augment_args(clap::Command::new("ferry")).subcommand(subcommand);
        if let Ok(cli) = command
            .try_get_matches_from(&args)
            .and_then(|matches| Cli::from_arg_matches(&matches))
        {
            return Ok(cli);
        }
    }
    Cli::try_parse_from(args)
}

/// Logs warnings and errors on stderr; `FERRY_LOG` (an env-filter directive) chooses more.
/// Without it no filter is parsed, which keeps short commands' start-up short.
fn init_tracing() {
    let log = tracing_subscriber::fmt().with_writer(std::io::stderr);
    let _ = match std::env::var_os("FERRY_LOG") {
        Some(_) => log
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_env("FERRY_LOG")
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
            )
            .try_init(),
        None => log.with_max_level(tracing::Level::WARN).try_init(),
    };
}

fn run(cli: Cli) -> Result<(), CliError> {
    let ctx = Context::new(cli.global);
    ctx.refuse_as_with_server()?;
    if let Some((name, why)) = cli.command.local_only() {
        ctx.local_only(name, why)?;
    }
    match cli.command {
        Command::Demo(args) => demo::run(&ctx, args),
        Command::Build(args) => build::run(args),
        Command::Render(args) => render::run(&ctx, args),
        Command::Validate(args) => validate::run(&ctx, args),
        Command::Graph(args) => graph::run(&ctx, args),
        Command::Release(args) => release::run(&ctx, args),
        Command::Plan(args) => plan::run(&ctx, args),
        Command::Promote(args) => promote::run(&ctx, args),
        Command::Approve(args) => review::run(&ctx, args, crate::policy::Verdict::Approve),
        Command::Reject(args) => review::run(&ctx, args, crate::policy::Verdict::Reject),
        Command::Status(args) => status::run(&ctx, args),
        Command::History(args) => history::run(&ctx, args),
        Command::Rollback(args) => rollback::run(&ctx, args),
        Command::Abort(args) => abort::run(&ctx, args),
        Command::Diff(args) => diff::run(&ctx, args),
        Command::Reconcile(args) => reconcile::run(&ctx, args),
        Command::Serve(args) => serve::run(&ctx, args),
        Command::Pause(args) => pause::pause(&ctx, args),
        Command::Resume(args) => pause::resume(&ctx, args),
        Command::Audit(args) => audit::run(&ctx, args),
        Command::Token(args) => token::run(&ctx, args),
        Command::Login(args) => login::run(&ctx, args),
        Command::Notifications(args) => notifications::run(&ctx, args),
        Command::Metrics(args) => metrics::run(&ctx, args),
        Command::Completions(args) => completions::run(args),
    }
}

/// What every subcommand knows: the global options, resolved lazily.
#[derive(Debug, Clone)]
pub struct Context {
    pub global: GlobalArgs,
}

impl Context {
    pub fn new(global: GlobalArgs) -> Self {
        Self { global }
    }

    /// `--as` with `--server` is a usage error: the server takes identity only from the token.
    fn refuse_as_with_server(&self) -> Result<(), CliError> {
        let server = self
            .global
            .server
            .as_deref()
            .filter(|s| !s.trim().is_empty());
        match (server, &self.global.as_user) {
            (Some(server), Some(user)) => Err(CliError::bad_input(format!(
                "--as {user} cannot be used with --server {server}: the server takes your identity from your token"
            ))
            .with_hint("leave out --as; `ferry login` with that user's token acts as them")),
            _ => Ok(()),
        }
    }

    /// The output format chosen with `-o`.
    pub fn format(&self) -> Format {
        self.global.output
    }

    /// The config repository: `--repo`, else the git repository containing the working
    /// directory.
    pub fn repo(&self) -> Result<PathBuf, CliError> {
        if let Some(repo) = &self.global.repo {
            if !repo.is_dir() {
                return Err(CliError::bad_input(format!(
                    "--repo {}: no such directory",
                    repo.display()
                )));
            }
            return Ok(repo.clone());
        }
        let cwd = std::env::current_dir().map_err(|err| {
            CliError::bad_input(format!("failed to read the working directory: {err}"))
        })?;
        find_repo_root(&cwd).ok_or_else(|| {
            CliError::bad_input(format!("{} is not inside a git repository", cwd.display()))
                .with_hint("run ferry inside the config repository, or pass --repo DIR")
        })
    }

    /// The state directory: `--state`, else `<repo>/.ferry`.
    pub fn state_dir(&self) -> Result<PathBuf, CliError> {
        match &self.global.state {
            Some(dir) => Ok(dir.clone()),
            None => Ok(self.repo()?.join(".ferry")),
        }
    }

    /// Who acts: `--as`, else `FERRY_USER`, else the OS user.
    pub fn user(&self) -> String {
        if let Some(user) = self
            .global
            .as_user
            .as_ref()
            .filter(|u| !u.trim().is_empty())
        {
            return user.trim().to_string();
        }
        ["FERRY_USER", "USER", "LOGNAME"]
            .iter()
            .filter_map(|var| std::env::var(var).ok())
            .find(|value| !value.trim().is_empty())
            .map(|value| value.trim().to_string())
            .or_else(os_user)
            .unwrap_or_else(|| "unknown".to_string())
    }
}

/// The name of the user running the process, from the OS when no variable names it.
fn os_user() -> Option<String> {
    let output = std::process::Command::new("id").arg("-un").output().ok()?;
    let name = String::from_utf8(output.stdout).ok()?.trim().to_string();
    (output.status.success() && !name.is_empty()).then_some(name)
}

/// The nearest directory at or above `start` that holds a `.git` entry.
fn find_repo_root(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find(|dir| dir.join(".git").exists())
        .map(Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<std::ffi::OsString> {
        line.split(' ').map(Into::into).collect()
    }

    /// The short parse of `build` and `render` gives what the whole command line gives.
    #[test]
    fn build_and_render_parse_as_the_whole_command_line_does() {
        for line in [
            "ferry build envs/dev",
            "ferry build envs/dev -o json --repo r",
            "ferry render --all --repo r",
            "ferry render qa --out o --revision abc",
        ] {
            let short = format!("{:?}", parse(args(line)).unwrap());
            let whole = format!("{:?}", Cli::try_parse_from(args(line)).unwrap());
            assert_eq!(short, whole, "{line}");
        }
    }

    /// Help and mistakes get the whole command line's own messages.
    #[test]
    fn help_and_mistakes_fall_back_to_the_whole_command_line() {
        for line in [
            "ferry build --help",
            "ferry build",
            "ferry render --bogus",
            "ferry build a b",
        ] {
            let short = parse(args(line)).unwrap_err().to_string();
            let whole = Cli::try_parse_from(args(line)).unwrap_err().to_string();
            assert_eq!(short, whole, "{line}");
        }
    }
}
