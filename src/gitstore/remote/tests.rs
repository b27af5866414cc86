use std::collections::BTreeMap;

use super::super::test_repo::{GitDaemon, TestRepo, files, git};
use super::super::{CommitRequest, WriteOutcome};
use super::*;

/// A local repository whose `origin` is a bare repository served by `git daemon`.
struct Remote {
    local: TestRepo,
    daemon: GitDaemon,
}

impl Remote {
    fn new() -> Self {
        let local = TestRepo::with_files(&[("environments/dev/kustomization.yaml", "{}\n")]);
        let served = local.tmp().join("served");
        std::fs::create_dir(&served).unwrap();
        git(&served, &["init", "--quiet", "--bare", "origin.git"]);
        let daemon = GitDaemon::serve(&served);
        local.git(&["remote", "add", "origin", &daemon.url("origin.git")]);
        Remote { local, daemon }
    }

    /// A second clone, standing for another ferry (or person) pushing to the same remote.
    fn other_clone(&self) -> TestRepo {
        let other = TestRepo::new();
        other.git(&["remote", "add", "origin", &self.daemon.url("origin.git")]);
        other
    }
}

fn write(store: &GitStore, branch: &str, content: &str, tip: Option<Option<&str>>) -> String {
    let output: BTreeMap<String, Vec<u8>> = files(&[("deployment.yaml", content)]);
    let req = CommitRequest {
        branch,
        files: &output,
        path_prefix: "",
        message: "Promote",
        trailers: &[("Ferry-Stage", "dev")],
        author: None,
        expected_tip: tip,
    };
    match store.write_commit(&req).unwrap() {
        WriteOutcome::Committed { commit, .. } => commit,
        other => panic!("expected a commit, got {other:?}"),
    }
}

#[test]
fn push_then_rejected_push_then_fetch_rebuild_and_push() {
    let remote = Remote::new();
    let store = remote.local.store();
    let first = write(&store, "env/dev", "v1", Some(None));
    assert_eq!(
        store.push("origin", "env/dev", None).unwrap(),
        PushOutcome::Pushed
    );
    assert_eq!(
        store.remote_tip("origin", "env/dev").unwrap().as_deref(),
        Some(first.as_str())
    );

    // Someone else pushes first.
    let other = remote.other_clone();
    let other_store = other.store();
    assert_eq!(
        other_store
            .fetch_branch("origin", "env/dev")
            .unwrap()
            .as_deref(),
        Some(first.as_str())
    );
    other_store
        .reset_branch("env/dev", &first, Some(None))
        .unwrap();
    let theirs = write(&other_store, "env/dev", "theirs", Some(Some(&first)));
    assert_eq!(
        other_store.push("origin", "env/dev", Some(&first)).unwrap(),
        PushOutcome::Pushed
    );

    // Our next commit was built on the old tip: the lease rejects it, nothing is forced.
    let ours = write(&store, "env/dev", "v2", Some(Some(&first)));
    match store.push("origin", "env/dev", Some(&first)).unwrap() {
        PushOutcome::Rejected { reason } => assert!(reason.contains("stale info"), "{reason}"),
        PushOutcome::Pushed => panic!("a stale lease must not push"),
    }
    let served = remote.local.tmp().join("served/origin.git");
    assert_eq!(git(&served, &["rev-parse", "env/dev"]), theirs);

    // Fetch, rebuild on the new remote tip, push again.
    let tip = store.fetch_branch("origin", "env/dev").unwrap();
    assert_eq!(tip.as_deref(), Some(theirs.as_str()));
    let reset = store
        .reset_branch("env/dev", &theirs, Some(Some(&ours)))
        .unwrap();
    assert_eq!(
        reset,
        WriteOutcome::Committed {
            commit: theirs.clone(),
            parent: Some(ours)
        }
    );
    let rebuilt = write(&store, "env/dev", "v2", Some(Some(&theirs)));
    assert_eq!(
        store.push("origin", "env/dev", Some(&theirs)).unwrap(),
        PushOutcome::Pushed
    );
    assert_eq!(git(&served, &["rev-parse", "env/dev"]), rebuilt);
    assert_eq!(git(&served, &["rev-parse", "env/dev~1"]), theirs);
}

#[test]
fn pushing_a_new_branch_that_exists_remotely_is_rejected() {
    let remote = Remote::new();
    let other = remote.other_clone();
    let other_store = other.store();
    write(&other_store, "env/qa", "theirs", Some(None));
    assert_eq!(
        other_store.push("origin", "env/qa", None).unwrap(),
        PushOutcome::Pushed
    );
    let store = remote.local.store();
    write(&store, "env/qa", "ours", Some(None));
    assert!(matches!(
        store.push("origin", "env/qa", None).unwrap(),
        PushOutcome::Rejected { .. }
    ));
}

#[test]
fn fetching_a_branch_the_remote_does_not_have_is_none() {
    let remote = Remote::new();
    let store = remote.local.store();
    assert_eq!(store.fetch_branch("origin", "env/prod").unwrap(), None);
    write(&store, "env/prod", "v1", Some(None));
    store.push("origin", "env/prod", None).unwrap();
    assert!(store.fetch_branch("origin", "env/prod").unwrap().is_some());
    let served = remote.local.tmp().join("served/origin.git");
    git(&served, &["update-ref", "-d", "refs/heads/env/prod"]);
    assert_eq!(store.fetch_branch("origin", "env/prod").unwrap(), None);
    assert_eq!(store.remote_tip("origin", "env/prod").unwrap(), None);
}

#[test]
fn a_push_records_the_remote_tip_even_without_a_fetch_refspec() {
    let remote = Remote::new();
    let url = remote.daemon.url("origin.git");
    remote.local.git(&["config", "remote.plain.url", &url]);
    let store = remote.local.store();
    let commit = write(&store, "env/qa", "v1", Some(None));
    assert_eq!(
        store.push("plain", "env/qa", None).unwrap(),
        PushOutcome::Pushed
    );
    assert_eq!(
        store.remote_tip("plain", "env/qa").unwrap(),
        Some(commit.clone())
    );
    assert_eq!(store.fetch_branch("plain", "env/qa").unwrap(), Some(commit));
}

#[test]
fn remote_failures_are_errors_naming_the_remote() {
    let repo = TestRepo::with_files(&[("a", "1")]);
    let store = repo.store();
    write(&store, "env/dev", "v1", Some(None));
    let err = store.push("nowhere", "env/dev", None).unwrap_err();
    assert!(
        matches!(&err, GitStoreError::Remote { remote, .. } if remote == "nowhere"),
        "{err}"
    );
    let err = store.push("origin", "env/none", None).unwrap_err();
    assert!(matches!(err, GitStoreError::NothingToPush { .. }), "{err}");
    let err = store.push("--upload-pack=x", "env/dev", None).unwrap_err();
    assert!(matches!(err, GitStoreError::InvalidRemote { .. }), "{err}");
}

#[test]
fn porcelain_rejections_are_parsed() {
    let out = "To git://h/r\n!\tabc:refs/heads/env/dev\t[rejected] (stale info)\nDone\n";
    assert_eq!(rejection(out).as_deref(), Some("[rejected] (stale info)"));
    assert_eq!(rejection("To x\n=\ta:b\t[up to date]\nDone\n"), None);
}
