//! The `command` gate: runs a program once in the repository root; exit 0 passes. It is
//! killed when the gate's timeout ends.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::poll::{Run, human};
use super::{GateContext, GateError, GateResult, GateStatus, ObservationState};

/// How many lines of output a failure reason quotes.
const TAIL_LINES: usize = 5;

/// Runs a `command` gate.
pub(super) async fn run(run: Run<'_>, ctx: &GateContext, argv: &[String]) -> GateResult {
    let argv: Vec<String> = argv.iter().map(|arg| substitute(arg, ctx)).collect();
    let Some((program, args)) = argv.split_first() else {
        return run.finish(GateStatus::Errored, "the command is empty".to_string());
    };
    let child = match command(ctx, program, args).spawn() {
        Ok(child) => child,
        Err(source) => {
            let dir = ctx.repo_root.clone();
            let err = GateError::Spawn {
                program: program.clone(),
                dir,
                source,
            };
            return run.end(ObservationState::Error, GateStatus::Errored, err.reason());
        }
    };
    let (status, output) = wait(child, run.deadline()).await;
    match status {
        Some(Ok(status)) => judge(run, program, status, &output),
        Some(Err(source)) => {
            let err = GateError::Wait {
                program: program.clone(),
                source,
            };
            run.end(ObservationState::Error, GateStatus::Errored, err.reason())
        }
        None => {
            let timeout = human(run.timeout());
            let reason = format!(
                "{program} was killed at the gate's timeout of {timeout}{}",
                output.tail()
            );
            run.end(ObservationState::Failing, GateStatus::Failed, reason)
        }
    }
}

/// The command in the repository root, with the promotion in its environment.
fn command(ctx: &GateContext, program: &str, args: &[String]) -> Command {
    let mut command = Command::new(resolve(program, &ctx.repo_root));
    command
        .args(args)
        .current_dir(&ctx.repo_root)
        .env("FERRY_STAGE", &ctx.stage)
        .env("FERRY_REVISION", &ctx.revision)
        .env("FERRY_COMMIT", &ctx.commit)
        .env("FERRY_MANIFESTS", &ctx.manifests_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Waits for `child` until `deadline`, killing it then; its exit status (`None` when killed)
/// and its output.
async fn wait(
    mut child: Child,
    deadline: Instant,
) -> (Option<std::io::Result<ExitStatus>>, Output) {
    let stdout = Capture::start(child.stdout.take());
    let stderr = Capture::start(child.stderr.take());
    let status = tokio::select! {
        status = child.wait() => Some(status),
        () = tokio::time::sleep_until(deadline) => None,
    };
    if status.is_none() {
        let _ = child.kill().await;
    }
    let output = Output {
        stdout: stdout.finish().await,
        stderr: stderr.finish().await,
    };
    (status, output)
}

fn judge(run: Run<'_>, program: &str, status: ExitStatus, output: &Output) -> GateResult {
    if status.success() {
        return run.end(
            ObservationState::Passing,
            GateStatus::Passed,
            format!("{program} exited with 0"),
        );
    }
    let how = match status.code() {
        Some(code) => format!("exited with {code}"),
        None => "was killed by a signal".to_string(),
    };
    run.end(
        ObservationState::Failing,
        GateStatus::Failed,
        format!("{program} {how}{}", output.tail()),
    )
}

/// `{stage}`, `{revision}` and `{commit}` replaced by the promotion's values.
fn substitute(arg: &str, ctx: &GateContext) -> String {
    arg.replace("{stage}", &ctx.stage)
        .replace("{revision}", &ctx.revision)
        .replace("{commit}", &ctx.commit)
}

/// A program path with a `/` is relative to the repository root; a bare name is looked up
/// in `PATH`.
fn resolve(program: &str, repo_root: &Path) -> PathBuf {
    let path = Path::new(program);
    if program.contains('/') && path.is_relative() {
        repo_root.join(path)
    } else {
        path.to_path_buf()
    }
}

/// What the program wrote.
struct Output {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl Output {
    /// `: ` and the last lines of stderr (of stdout when stderr is empty), or nothing.
    fn tail(&self) -> String {
        let text = if self.stderr.iter().all(u8::is_ascii_whitespace) {
            &self.stdout
        } else {
            &self.stderr
        };
        let text = String::from_utf8_lossy(text);
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim_end)
            .filter(|l| !l.is_empty())
            .collect();
        let tail = &lines[lines.len().saturating_sub(TAIL_LINES)..];
        if tail.is_empty() {
            String::new()
        } else {
            format!(": {}", tail.join(" | "))
        }
    }
}

/// Reads a pipe into a buffer in the background, so a killed program's output is kept even
/// when a process it started still holds the pipe open.
struct Capture {
    buffer: Arc<Mutex<Vec<u8>>>,
    task: Option<JoinHandle<()>>,
}

impl Capture {
    fn start(pipe: Option<impl AsyncRead + Unpin + Send + 'static>) -> Capture {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let task = pipe.map(|mut pipe| {
            let buffer = Arc::clone(&buffer);
            tokio::spawn(async move {
                let mut chunk = [0u8; 4096];
                while let Ok(n @ 1..) = pipe.read(&mut chunk).await {
                    if let Ok(mut buffer) = buffer.lock() {
                        buffer.extend_from_slice(&chunk[..n]);
                    }
                }
            })
        });
        Capture { buffer, task }
    }

    /// What was read: all of it when the pipe closes soon, else what arrived so far.
    async fn finish(mut self) -> Vec<u8> {
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(std::time::Duration::from_millis(200), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        self.buffer.lock().map(|b| b.clone()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_prefers_stderr_and_keeps_the_last_lines() {
        let output = Output {
            stdout: b"out\n".to_vec(),
            stderr: b"1\n2\n\n3\n4\n5\n6\n".to_vec(),
        };
        assert_eq!(output.tail(), ": 2 | 3 | 4 | 5 | 6");
        let quiet = Output {
            stdout: b"only stdout\n".to_vec(),
            stderr: b"\n".to_vec(),
        };
        assert_eq!(quiet.tail(), ": only stdout");
        assert_eq!(
            Output {
                stdout: Vec::new(),
                stderr: Vec::new()
            }
            .tail(),
            ""
        );
    }

    #[test]
    fn programs_with_a_slash_are_relative_to_the_repository() {
        assert_eq!(
            resolve("./scripts/e2e.sh", Path::new("/repo")),
            Path::new("/repo/./scripts/e2e.sh")
        );
        assert_eq!(resolve("make", Path::new("/repo")), Path::new("make"));
        assert_eq!(
            resolve("/bin/true", Path::new("/repo")),
            Path::new("/bin/true")
        );
    }
}
