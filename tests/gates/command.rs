//! `command` gates: real processes in the repository root.

use std::os::unix::fs::PermissionsExt;

use ferry::gates::{GateContext, GateStatus, run_gate};
use ferry::pipeline::GateKind;

use super::support::{COMMIT, Recorder, context, gate, timing_out_after};

fn command(argv: &[&str]) -> GateKind {
    GateKind::Command {
        run: argv.iter().map(|a| a.to_string()).collect(),
    }
}

/// A context whose repository root holds `scripts/check.sh` with `body`.
fn repo_with_script(body: &str) -> (tempfile::TempDir, GateContext) {
    let repo = tempfile::tempdir().expect("temp dir");
    let scripts = repo.path().join("scripts");
    std::fs::create_dir(&scripts).expect("mkdir");
    let script = scripts.join("check.sh");
    std::fs::write(&script, format!("#!/bin/sh\n{body}\n")).expect("write script");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let mut ctx = context();
    ctx.repo_root = repo.path().to_path_buf();
    ctx.manifests_dir = repo.path().join("rendered");
    std::fs::create_dir(&ctx.manifests_dir).expect("mkdir");
    (repo, ctx)
}

#[tokio::test]
async fn a_script_in_the_repository_gets_the_promotion_in_its_arguments_and_environment() {
    let (_repo, ctx) = repo_with_script(
        r#"test "$1" = prod && test "$2" = "r-0123456789ab@$FERRY_COMMIT" || exit 9
test "$FERRY_STAGE" = prod && test "$FERRY_REVISION" = r-0123456789ab || exit 8
test -d "$FERRY_MANIFESTS" && test -f scripts/check.sh || exit 7"#,
    );
    let spec = gate(
        "e2e",
        command(&["./scripts/check.sh", "{stage}", "{revision}@{commit}"]),
    );
    let result = run_gate(&spec, &ctx, &Recorder::default()).await;
    assert_eq!(result.status, GateStatus::Passed, "{}", result.reason);
    assert_eq!((result.kind.as_str(), result.observations), ("command", 1));
    assert!(ctx.commit == COMMIT);
}

#[tokio::test]
async fn a_non_zero_exit_fails_with_the_last_lines_of_stderr() {
    let (_repo, ctx) = repo_with_script(
        "echo progress; for i in 1 2 3 4 5 6; do echo \"check $i failed\" >&2; done; exit 3",
    );
    let result = run_gate(
        &gate("e2e", command(&["./scripts/check.sh"])),
        &ctx,
        &Recorder::default(),
    )
    .await;
    assert_eq!(result.status, GateStatus::Failed);
    let expected = "./scripts/check.sh exited with 3: check 2 failed | check 3 failed | check 4 failed | check 5 failed | check 6 failed";
    assert_eq!(result.reason, expected);
}

#[tokio::test]
async fn a_command_still_running_at_the_timeout_is_killed() {
    let (_repo, ctx) =
        repo_with_script("echo 'waiting for the checkout service' >&2; exec sleep 30");
    // Long enough for a loaded machine to start the script and let it print its line.
    let spec = timing_out_after(5_000, gate("e2e", command(&["./scripts/check.sh"])));
    let result = run_gate(&spec, &ctx, &Recorder::default()).await;
    assert_eq!(result.status, GateStatus::Failed);
    assert_eq!(
        result.reason,
        "./scripts/check.sh was killed at the gate's timeout of 5s: waiting for the checkout service"
    );
}

#[tokio::test]
async fn a_program_that_does_not_exist_errors_at_once() {
    let (repo, ctx) = repo_with_script("exit 0");
    let result = run_gate(
        &gate("e2e", command(&["./scripts/missing.sh"])),
        &ctx,
        &Recorder::default(),
    )
    .await;
    assert_eq!(result.status, GateStatus::Errored);
    let expected = format!(
        "failed to start ./scripts/missing.sh in {}: ",
        repo.path().display()
    );
    assert!(result.reason.starts_with(&expected), "{}", result.reason);
}
