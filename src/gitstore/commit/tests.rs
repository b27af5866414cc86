use std::collections::BTreeMap;

use super::super::test_repo::{TestRepo, files};
use super::*;

const TRAILERS: &[(&str, &str)] = &[
    ("Ferry-Stage", "dev"),
    ("Ferry-Revision", "r-0123456789ab"),
    ("Ferry-Promotion", "p-00000000000000000001"),
];

fn request<'a>(branch: &'a str, files: &'a BTreeMap<String, Vec<u8>>) -> CommitRequest<'a> {
    CommitRequest {
        branch,
        files,
        path_prefix: "",
        message: "Promote r-0123456789ab to dev",
        trailers: TRAILERS,
        author: Some(Signature {
            name: "Ferry Bot".into(),
            email: "bot@example.com".into(),
        }),
        expected_tip: Some(None),
    }
}

fn committed(outcome: WriteOutcome) -> (String, Option<String>) {
    match outcome {
        WriteOutcome::Committed { commit, parent } => (commit, parent),
        other => panic!("expected a commit, got {other:?}"),
    }
}

/// What a person would see of the repository: status, HEAD, and the index.
fn checkout_state(repo: &TestRepo) -> (String, String, String) {
    (
        repo.git(&["status", "--porcelain", "--untracked-files=all"]),
        repo.git(&["rev-parse", "HEAD"]),
        repo.git(&["ls-files", "--stage"]),
    )
}

#[test]
fn a_commit_on_a_new_branch_reads_back_with_git() {
    let repo = TestRepo::with_files(&[("environments/dev/kustomization.yaml", "{}\n")]);
    let output = files(&[
        ("deployment.yaml", "kind: Deployment\n"),
        ("apps/web/svc.yaml", "kind: Service\n"),
    ]);
    let (commit, parent) = committed(
        repo.store()
            .write_commit(&request("env/dev", &output))
            .unwrap(),
    );
    assert_eq!(parent, None);
    assert_eq!(repo.git(&["rev-parse", "env/dev"]), commit);
    assert_eq!(repo.git(&["cat-file", "-t", &commit]), "commit");
    assert_eq!(
        repo.git(&["show", "env/dev:deployment.yaml"]),
        "kind: Deployment"
    );
    assert_eq!(
        repo.git(&["show", "env/dev:apps/web/svc.yaml"]),
        "kind: Service"
    );
    let tree = repo.git(&["ls-tree", "-r", "--format=%(objectmode) %(path)", "env/dev"]);
    assert_eq!(tree, "100644 apps/web/svc.yaml\n100644 deployment.yaml");
    let body = repo.git(&["log", "-1", "--format=%an <%ae>|%cn <%ce>|%B", "env/dev"]);
    assert_eq!(
        body,
        "Ferry Bot <bot@example.com>|Ferry Bot <bot@example.com>|Promote r-0123456789ab to dev\n\n\
         Ferry-Stage: dev\nFerry-Revision: r-0123456789ab\nFerry-Promotion: p-00000000000000000001"
    );
    let trailer = repo.git(&[
        "log",
        "-1",
        "--format=%(trailers:key=Ferry-Stage,valueonly)",
        "env/dev",
    ]);
    assert_eq!(trailer, "dev");
    repo.git(&["fsck", "--strict", "--no-progress"]);
}

#[test]
fn writing_never_touches_the_checkout_index_or_head() {
    let repo = TestRepo::with_files(&[("environments/dev/kustomization.yaml", "{}\n")]);
    std::fs::write(repo.dir.join("scratch.txt"), "work in progress").unwrap();
    let before = checkout_state(&repo);
    let output = files(&[("environments/dev/kustomization.yaml", "rendered\n")]);
    committed(
        repo.store()
            .write_commit(&request("env/dev", &output))
            .unwrap(),
    );
    assert_eq!(checkout_state(&repo), before);
    assert_eq!(repo.git(&["symbolic-ref", "HEAD"]), "refs/heads/main");
}

#[test]
fn writing_the_same_files_again_is_unchanged() {
    let repo = TestRepo::with_files(&[("a", "1")]);
    let store = repo.store();
    let output = files(&[("x.yaml", "x\n"), ("dir/y.yaml", "y\n")]);
    let (commit, _) = committed(store.write_commit(&request("env/dev", &output)).unwrap());
    let again = CommitRequest {
        expected_tip: None,
        ..request("env/dev", &output)
    };
    assert_eq!(
        store.write_commit(&again).unwrap(),
        WriteOutcome::Unchanged {
            tip: commit.clone()
        }
    );
    let changed = files(&[("x.yaml", "x2\n"), ("dir/y.yaml", "y\n")]);
    let next = CommitRequest {
        expected_tip: Some(Some(&commit)),
        ..request("env/dev", &changed)
    };
    let (second, parent) = committed(store.write_commit(&next).unwrap());
    assert_eq!(parent.as_deref(), Some(commit.as_str()));
    assert_eq!(repo.git(&["rev-parse", "env/dev~1"]), commit);
    assert_eq!(repo.git(&["rev-parse", "env/dev"]), second);
}

#[test]
fn trees_are_deterministic() {
    let a = TestRepo::with_files(&[("a", "1")]);
    let b = TestRepo::with_files(&[("b", "2")]);
    let output = files(&[
        ("z", "z"),
        ("a/b/c", "c"),
        ("a-b", "d"),
        ("a.b", "e"),
        ("a/d", "f"),
    ]);
    let tree_of = |repo: &TestRepo| {
        let (commit, _) = committed(
            repo.store()
                .write_commit(&request("env/dev", &output))
                .unwrap(),
        );
        repo.store().commit_info(&commit).unwrap().tree
    };
    let tree = tree_of(&a);
    assert_eq!(tree, tree_of(&b));
    a.git(&["fsck", "--strict", "--no-progress"]);
}

#[test]
fn a_branch_that_moved_is_a_conflict() {
    let repo = TestRepo::with_files(&[("a", "1")]);
    let store = repo.store();
    let (first, _) = committed(
        store
            .write_commit(&request("env/dev", &files(&[("x", "1")])))
            .unwrap(),
    );
    let output = files(&[("x", "2")]);
    let must_not_exist = request("env/dev", &output);
    assert_eq!(
        store.write_commit(&must_not_exist).unwrap(),
        WriteOutcome::Conflict {
            actual: Some(first.clone())
        }
    );
    let main = repo.git(&["rev-parse", "main"]);
    let stale = CommitRequest {
        expected_tip: Some(Some(&main)),
        ..request("env/dev", &output)
    };
    assert_eq!(
        store.write_commit(&stale).unwrap(),
        WriteOutcome::Conflict {
            actual: Some(first.clone())
        }
    );
    let missing = CommitRequest {
        expected_tip: Some(Some(&first)),
        ..request("env/qa", &output)
    };
    assert_eq!(
        store.write_commit(&missing).unwrap(),
        WriteOutcome::Conflict { actual: None }
    );
    assert_eq!(repo.git(&["rev-parse", "env/dev"]), first);
}

#[test]
fn a_ref_that_moves_during_the_write_is_a_conflict() {
    let repo = TestRepo::with_files(&[("a", "1")]);
    let store = repo.store();
    let (first, _) = committed(
        store
            .write_commit(&request("env/dev", &files(&[("x", "1")])))
            .unwrap(),
    );
    // Someone else moves the branch between our read of the tip and our ref update: the
    // compare-and-swap itself must refuse, and the refusal reads as a conflict.
    let other = repo.git(&["rev-parse", "main"]);
    repo.git(&["update-ref", "refs/heads/env/dev", &other]);
    let first_id = parse_commit_id(&first).unwrap();
    let name = branch_ref("env/dev").unwrap();
    let handle = store.repo();
    let signature = signature(&handle, None);
    let outcome = store.move_branch(&handle, name, Some(first_id), first_id, "test", &signature);
    assert_eq!(
        outcome.unwrap(),
        WriteOutcome::Conflict {
            actual: Some(other.clone())
        }
    );
    assert_eq!(repo.git(&["rev-parse", "env/dev"]), other);
}

#[test]
fn a_path_prefix_keeps_the_rest_of_the_parents_tree() {
    let repo = TestRepo::with_files(&[("a", "1")]);
    let store = repo.store();
    let shared = files(&[
        ("README.md", "shared\n"),
        ("out/old.yaml", "old\n"),
        ("out/keep/x", "x"),
    ]);
    let (first, _) = committed(store.write_commit(&request("env/all", &shared)).unwrap());
    let output = files(&[("new.yaml", "new\n"), ("sub/deep.yaml", "deep\n")]);
    let req = CommitRequest {
        path_prefix: "out/",
        expected_tip: Some(Some(&first)),
        ..request("env/all", &output)
    };
    committed(store.write_commit(&req).unwrap());
    let tree = repo.git(&["ls-tree", "-r", "--name-only", "env/all"]);
    assert_eq!(tree, "README.md\nout/new.yaml\nout/sub/deep.yaml");
    let again = CommitRequest {
        expected_tip: None,
        ..req.clone()
    };
    assert!(matches!(
        store.write_commit(&again).unwrap(),
        WriteOutcome::Unchanged { .. }
    ));
    let empty = BTreeMap::new();
    let cleared = CommitRequest {
        files: &empty,
        expected_tip: None,
        ..req
    };
    committed(store.write_commit(&cleared).unwrap());
    assert_eq!(
        repo.git(&["ls-tree", "-r", "--name-only", "env/all"]),
        "README.md"
    );
}

#[test]
fn the_author_defaults_to_git_config() {
    let repo = TestRepo::with_files(&[("a", "1")]);
    let output = files(&[("x", "1")]);
    let req = CommitRequest {
        author: None,
        ..request("env/dev", &output)
    };
    let (commit, _) = committed(repo.store().write_commit(&req).unwrap());
    let info = repo.store().commit_info(&commit).unwrap();
    assert_eq!(
        info.author,
        Signature {
            name: "Config User".into(),
            email: "config@example.com".into()
        }
    );
}

#[test]
fn commit_info_reads_message_trailers_parents_and_time() {
    let repo = TestRepo::with_files(&[("a", "1")]);
    let store = repo.store();
    let started = chrono::Utc::now().timestamp();
    let (first, _) = committed(
        store
            .write_commit(&request("env/dev", &files(&[("x", "1")])))
            .unwrap(),
    );
    let changed = files(&[("x", "2")]);
    let next = CommitRequest {
        expected_tip: None,
        ..request("env/dev", &changed)
    };
    let (second, _) = committed(store.write_commit(&next).unwrap());
    let info = store.commit_info("env/dev").unwrap();
    assert_eq!(info.id, second);
    assert_eq!(info.parents, [first]);
    assert_eq!(info.message, "Promote r-0123456789ab to dev");
    assert_eq!(info.trailers.len(), 3);
    assert_eq!(info.trailer("ferry-stage"), Some("dev"));
    assert_eq!(
        info.trailer("Ferry-Promotion"),
        Some("p-00000000000000000001")
    );
    assert_eq!(info.tree, repo.git(&["rev-parse", "env/dev^{tree}"]));
    assert!(info.time.timestamp() >= started);
    assert_eq!(
        info.time.timestamp().to_string(),
        repo.git(&["log", "-1", "--format=%ct", "env/dev"])
    );
}

#[test]
fn find_commit_with_trailer_walks_first_parents_up_to_a_depth() {
    let repo = TestRepo::with_files(&[("a", "1")]);
    let store = repo.store();
    let mut commits = Vec::new();
    for n in 1..=4 {
        let promotion = format!("p-{n}");
        let trailers = [
            ("Ferry-Stage", "dev"),
            ("Ferry-Promotion", promotion.as_str()),
        ];
        let content = n.to_string();
        let output = files(&[("x", &content)]);
        let req = CommitRequest {
            trailers: &trailers,
            expected_tip: None,
            ..request("env/dev", &output)
        };
        commits.push(committed(store.write_commit(&req).unwrap()).0);
    }
    let find = |value: &str, depth| {
        store.find_commit_with_trailer("env/dev", "Ferry-Promotion", value, depth)
    };
    assert_eq!(
        find("p-4", 1).unwrap().as_deref(),
        Some(commits[3].as_str())
    );
    assert_eq!(
        find("p-1", 4).unwrap().as_deref(),
        Some(commits[0].as_str())
    );
    assert_eq!(find("p-1", 3).unwrap(), None);
    assert_eq!(find("p-9", 100).unwrap(), None);
    assert_eq!(
        store
            .find_commit_with_trailer("env/none", "Ferry-Promotion", "p-1", 10)
            .unwrap(),
        None
    );
}

#[test]
fn a_checked_out_branch_is_never_written() {
    let repo = TestRepo::with_files(&[("a", "1")]);
    repo.git(&["checkout", "--quiet", "-b", "env/dev"]);
    let before = repo.git(&["rev-parse", "HEAD"]);
    let output = files(&[("x", "1")]);
    let req = CommitRequest {
        expected_tip: None,
        ..request("env/dev", &output)
    };
    let err = repo.store().write_commit(&req).unwrap_err();
    assert!(
        matches!(err, GitStoreError::BranchCheckedOut { .. }),
        "{err}"
    );
    assert_eq!(repo.git(&["rev-parse", "HEAD"]), before);
    repo.git(&["checkout", "--quiet", "main"]);
    repo.git(&["worktree", "add", "--quiet", "../linked", "env/dev"]);
    let err = repo.store().write_commit(&req).unwrap_err();
    assert!(
        matches!(err, GitStoreError::BranchCheckedOut { .. }),
        "{err}"
    );
}

#[test]
fn invalid_requests_are_refused_before_anything_is_written() {
    let repo = TestRepo::with_files(&[("a", "1")]);
    let store = repo.store();
    let bad_paths = [
        files(&[("/abs", "x")]),
        files(&[("a//b", "x")]),
        files(&[("a/../b", "x")]),
        files(&[(".git/config", "x")]),
        files(&[("a", "x"), ("a/b", "y")]),
    ];
    for output in &bad_paths {
        let err = store.write_commit(&request("env/dev", output)).unwrap_err();
        assert!(
            matches!(err, GitStoreError::InvalidPath { .. }),
            "{output:?}: {err}"
        );
    }
    let output = files(&[("x", "1")]);
    let bad_prefix = CommitRequest {
        path_prefix: "../up",
        ..request("env/dev", &output)
    };
    assert!(matches!(
        store.write_commit(&bad_prefix),
        Err(GitStoreError::InvalidPath { .. })
    ));
    let bad_branch = request("env/../dev", &output);
    assert!(matches!(
        store.write_commit(&bad_branch),
        Err(GitStoreError::InvalidBranch { .. })
    ));
    let bad_tip = CommitRequest {
        expected_tip: Some(Some("abc")),
        ..request("env/dev", &output)
    };
    assert!(matches!(
        store.write_commit(&bad_tip),
        Err(GitStoreError::InvalidCommitId { .. })
    ));
    let no_message = CommitRequest {
        message: "\n",
        ..request("env/dev", &output)
    };
    assert!(matches!(
        store.write_commit(&no_message),
        Err(GitStoreError::InvalidMessage { .. })
    ));
    assert_eq!(store.branch_tip("env/dev").unwrap(), None);
}

#[test]
fn reset_branch_moves_a_branch_with_compare_and_swap() {
    let repo = TestRepo::with_files(&[("a", "1")]);
    let store = repo.store();
    let main = repo.git(&["rev-parse", "main"]);
    let created = store.reset_branch("env/dev", "main", Some(None)).unwrap();
    assert_eq!(
        created,
        WriteOutcome::Committed {
            commit: main.clone(),
            parent: None
        }
    );
    let again = store.reset_branch("env/dev", &main, None).unwrap();
    assert_eq!(again, WriteOutcome::Unchanged { tip: main.clone() });
    let (written, _) = committed(
        store
            .write_commit(&CommitRequest {
                expected_tip: Some(Some(&main)),
                ..request("env/dev", &files(&[("x", "1")]))
            })
            .unwrap(),
    );
    let stale = store
        .reset_branch("env/dev", &main, Some(Some(&main)))
        .unwrap();
    assert_eq!(
        stale,
        WriteOutcome::Conflict {
            actual: Some(written.clone())
        }
    );
    let back = store
        .reset_branch("env/dev", &main, Some(Some(&written)))
        .unwrap();
    assert_eq!(
        back,
        WriteOutcome::Committed {
            commit: main.clone(),
            parent: Some(written)
        }
    );
    assert_eq!(repo.git(&["rev-parse", "env/dev"]), main);
}
