//! Output branches pushed to a remote served by a real `git daemon`.

use super::promote::{MON_0900, MON_0911};
use crate::support::TestRepo;
use crate::support::daemon::GitDaemon;

/// The example with `spec.output.remote: origin`, origin being `daemon`.
fn pushing_repo(daemon: &GitDaemon) -> TestRepo {
    let repo = TestRepo::example();
    repo.edit(
        "environments/pipeline.yaml",
        "output: {branch: \"env/{stage}\"}",
        "output: {branch: \"env/{stage}\", remote: origin}",
    );
    repo.commit("Push output branches to origin");
    repo.git(&["remote", "add", "origin", &daemon.url()]);
    repo
}

fn remote_tip(daemon: &GitDaemon, branch: &str) -> String {
    crate::support::git(
        &daemon.repo(),
        &["rev-parse", &format!("refs/heads/{branch}")],
    )
}

#[test]
fn a_promotion_pushes_its_branch() {
    let daemon = GitDaemon::start();
    let repo = pushing_repo(&daemon);
    let rev = repo.release("1.4.2");
    repo.promote(MON_0900, "carol", &rev, "dev").expect_code(0);
    assert_eq!(
        remote_tip(&daemon, "env/dev"),
        repo.git(&["rev-parse", "env/dev"])
    );
    let second = repo.release("1.4.3");
    repo.promote(MON_0911, "carol", &second, "dev")
        .expect_code(0);
    let tip = remote_tip(&daemon, "env/dev");
    assert_eq!(tip, repo.git(&["rev-parse", "env/dev"]));
    assert_eq!(
        crate::support::git(&daemon.repo(), &["rev-list", "--count", "env/dev"]),
        "2"
    );
}

/// The hook plays someone else pushing to env/dev just before ferry's push lands: it moves
/// the branch to a new commit and declines ferry's push, once.
const RACE_HOOK: &str = r#"#!/bin/sh
[ -e "$GIT_DIR/raced" ] && exit 0
touch "$GIT_DIR/raced"
unset GIT_QUARANTINE_PATH GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES
export GIT_AUTHOR_NAME=other GIT_AUTHOR_EMAIL=other@example.com GIT_COMMITTER_NAME=other GIT_COMMITTER_EMAIL=other@example.com
tip=$(git rev-parse refs/heads/env/dev) || exit 1
other=$(echo "someone else's change" | git commit-tree "$tip^{tree}" -p "$tip") || exit 1
git update-ref refs/heads/env/dev "$other" "$tip" || exit 1
echo "$other" > "$GIT_DIR/other"
echo "declined: someone else pushed first" >&2
exit 1
"#;

#[test]
fn a_rejected_push_is_rebuilt_on_the_new_tip_never_forced() {
    let daemon = GitDaemon::start();
    let repo = pushing_repo(&daemon);
    let first = repo.release("1.0.0");
    repo.promote(MON_0900, "carol", &first, "dev")
        .expect_code(0);
    daemon.hook("pre-receive", RACE_HOOK);
    let second = repo.release("2.0.0");
    repo.promote(MON_0911, "carol", &second, "dev")
        .expect_code(0);
    let other = std::fs::read_to_string(daemon.repo().join("other"))
        .expect("the hook raced")
        .trim()
        .to_string();
    let tip = remote_tip(&daemon, "env/dev");
    assert_eq!(
        crate::support::git(&daemon.repo(), &["rev-parse", &format!("{tip}^")]),
        other,
        "rebuilt on the other commit, which is kept"
    );
    assert_eq!(repo.trailer(&tip, "Ferry-Revision"), second);
    assert_eq!(tip, repo.git(&["rev-parse", "env/dev"]));
    let deployment = crate::support::git(
        &daemon.repo(),
        &["show", &format!("{tip}:apps_v1_deployment_helloworld.yaml")],
    );
    assert!(deployment.contains("acme/helloworld:2.0.0"), "{deployment}");
}

#[test]
fn an_unreachable_remote_fails_and_the_promotion_can_be_retried() {
    let daemon = GitDaemon::start();
    let repo = pushing_repo(&daemon);
    let url = daemon.url();
    drop(daemon);
    let rev = repo.release("1.0.0");
    let run = repo.promote(MON_0900, "carol", &rev, "dev");
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("origin"), "{}", run.stderr);
    let daemon = GitDaemon::start();
    repo.git(&["remote", "set-url", "origin", &daemon.url()]);
    assert_ne!(url, daemon.url());
    repo.promote(MON_0900, "carol", &rev, "dev").expect_code(0);
    assert_eq!(
        remote_tip(&daemon, "env/dev"),
        repo.git(&["rev-parse", "env/dev"])
    );
    let history = repo
        .ferry(&["history", "dev", "-o", "json"])
        .expect_code(0)
        .json();
    assert_eq!(
        history.as_array().map(Vec::len),
        Some(1),
        "the same promotion resumed: {history}"
    );
}
