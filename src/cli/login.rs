//! `ferry login URL`: check a token against a server and keep it for `--server URL`.

use std::io::{BufRead, IsTerminal};

use clap::Args;

use super::client::{Client, normalize_server};
use super::{CliError, Context, credentials};

/// Keep a token for a server, so that `ferry --server URL …` (or FERRY_SERVER=URL) uses it
///
/// Reads the token (made with `ferry token create` on the server's host) from standard input
/// — it prompts without echo on a terminal — checks it against the server, and keeps it in
/// $XDG_CONFIG_HOME/ferry/credentials (else ~/.config/ferry/credentials), readable only by
/// you.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The server's URL, e.g. https://ferry.example.com
    pub url: String,
}

pub fn run(_ctx: &Context, args: LoginArgs) -> Result<(), CliError> {
    let server = normalize_server(&args.url)?;
    let token = read_token(&server)?;
    let client = Client::new(&server, token.clone())?;
    client.get::<serde_json::Value>("/api/v1/status", &[])?;
    let path = credentials::save(&server, &token)?;
    eprintln!(
        "the token works on {server}; kept in {} for `--server {server}`",
        path.display()
    );
    Ok(())
}

/// The token from standard input: prompted for without echo on a terminal, else its first
/// line.
fn read_token(server: &str) -> Result<String, CliError> {
    let stdin = std::io::stdin();
    let interactive = stdin.is_terminal();
    if interactive {
        eprint!("token for {server}: ");
        set_echo(false);
    }
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if interactive {
        set_echo(true);
        eprintln!();
    }
    read.map_err(|err| CliError::bad_input(format!("failed to read the token: {err}")))?;
    let token = line.trim();
    if token.is_empty() {
        return Err(CliError::bad_input("no token given on standard input")
            .with_hint("`ferry token create --user NAME` on the server's host makes one"));
    }
    Ok(token.to_string())
}

/// Turns the terminal's echo off or on (through `stty`, which reads the terminal on stdin).
fn set_echo(on: bool) {
    let _ = std::process::Command::new("stty")
        .arg(if on { "echo" } else { "-echo" })
        .stdin(std::process::Stdio::inherit())
        .status();
}
