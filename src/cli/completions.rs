//! `ferry completions`: shell completion scripts.

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::{Cli, CliError};

/// Print a shell completion script to stdout
///
/// For example: `ferry completions bash > /etc/bash_completion.d/ferry`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to write completions for
    #[arg(value_enum)]
    pub shell: Shell,
}

pub fn run(args: CompletionsArgs) -> Result<(), CliError> {
    let mut command = Cli::command();
    clap_complete::generate(args.shell, &mut command, "ferry", &mut std::io::stdout());
    Ok(())
}
