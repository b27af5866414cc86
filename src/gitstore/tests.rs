use std::io;

use super::test_repo::{TestRepo, git};
use super::*;
use crate::overlay::{EntryKind, FileSource};

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn stores_sources_and_errors_can_be_shared_between_threads() {
    assert_send_sync::<GitStore>();
    assert_send_sync::<TreeSource>();
    assert_send_sync::<GitStoreError>();
}

#[test]
fn open_reads_normal_and_bare_repositories() {
    let repo = TestRepo::with_files(&[("a.txt", "a")]);
    let store = repo.store();
    assert_eq!(
        store.workdir().map(|p| p.canonicalize().unwrap()),
        Some(repo.dir.canonicalize().unwrap())
    );
    let bare = repo.tmp().join("bare.git");
    git(
        repo.tmp(),
        &["clone", "--quiet", "--bare", "repo", "bare.git"],
    );
    let bare_store = GitStore::open(&bare).unwrap();
    assert_eq!(bare_store.workdir(), None);
    assert_eq!(
        bare_store.resolve("main").unwrap(),
        store.resolve("HEAD").unwrap()
    );
}

#[test]
fn discover_finds_the_repository_above_a_directory() {
    let repo = TestRepo::with_files(&[("environments/dev/kustomization.yaml", "{}\n")]);
    let store = GitStore::discover(&repo.dir.join("environments/dev")).unwrap();
    let found = store.workdir().map(|p| p.canonicalize().unwrap());
    assert_eq!(found, Some(repo.dir.canonicalize().unwrap()));
}

#[test]
fn open_outside_a_repository_names_the_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let err = GitStore::open(tmp.path()).unwrap_err();
    assert!(
        matches!(&err, GitStoreError::Open { path, .. } if path == tmp.path()),
        "{err}"
    );
}

#[test]
fn current_branch_is_heads_short_name_or_none_when_detached() {
    let repo = TestRepo::new();
    assert_eq!(
        repo.store().current_branch().unwrap().as_deref(),
        Some("main")
    );
    let first = repo.commit_files(&[("a", "1")], "one");
    repo.git(&["checkout", "--quiet", "-b", "feature/x"]);
    assert_eq!(
        repo.store().current_branch().unwrap().as_deref(),
        Some("feature/x")
    );
    repo.git(&["checkout", "--quiet", "--detach", &first]);
    assert_eq!(repo.store().current_branch().unwrap(), None);
}

#[test]
fn resolve_understands_branches_tags_prefixes_and_head() {
    let repo = TestRepo::new();
    let first = repo.commit_files(&[("a", "1")], "one");
    let second = repo.commit_files(&[("a", "2")], "two");
    repo.git(&["tag", "-a", "-m", "annotated", "v1", &first]);
    let store = repo.store();
    assert_eq!(store.resolve("HEAD").unwrap(), second);
    assert_eq!(store.resolve("main").unwrap(), second);
    assert_eq!(store.resolve("refs/heads/main").unwrap(), second);
    assert_eq!(
        store.resolve("v1").unwrap(),
        first,
        "annotated tags peel to their commit"
    );
    assert_eq!(store.resolve(&second[..8]).unwrap(), second);
    assert_eq!(store.resolve("main~1").unwrap(), first);
}

#[test]
fn resolving_an_unknown_revision_is_a_clear_error() {
    let repo = TestRepo::with_files(&[("a", "1")]);
    let err = repo.store().resolve("no-such-branch").unwrap_err();
    assert!(matches!(&err, GitStoreError::UnknownRev { rev, .. } if rev == "no-such-branch"));
    assert_eq!(
        err.to_string(),
        "unknown revision `no-such-branch`: no branch, tag or commit of that name"
    );
}

#[test]
fn branch_tips_and_remote_tips_are_none_until_they_exist() {
    let repo = TestRepo::with_files(&[("a", "1")]);
    let store = repo.store();
    assert_eq!(store.branch_tip("env/dev").unwrap(), None);
    assert_eq!(
        store.branch_tip("main").unwrap(),
        Some(store.resolve("HEAD").unwrap())
    );
    assert_eq!(store.remote_tip("origin", "env/dev").unwrap(), None);
    let err = store.branch_tip("bad..name").unwrap_err();
    assert!(matches!(err, GitStoreError::InvalidBranch { .. }), "{err}");
    let err = store.remote_tip("git://host/x", "env/dev").unwrap_err();
    assert!(matches!(err, GitStoreError::InvalidRemote { .. }), "{err}");
}

fn nested_repo() -> TestRepo {
    let repo = TestRepo::with_files(&[
        (
            "environments/base/kustomization.yaml",
            "resources: [deployment.yaml]\n",
        ),
        ("environments/base/deployment.yaml", "kind: Deployment\n"),
        (
            "environments/dev/kustomization.yaml",
            "resources: [../base]\n",
        ),
        ("README.md", "readme\n"),
    ]);
    repo.git(&["checkout", "--quiet", "-b", "other"]);
    repo
}

#[test]
fn tree_source_reads_files_and_directories_of_a_commit() {
    let repo = nested_repo();
    let store = repo.store();
    let source = store.tree_source("main").unwrap();
    assert_eq!(source.commit(), store.resolve("main").unwrap());
    assert_eq!(source.entry("").unwrap(), Some(EntryKind::Dir));
    assert_eq!(
        source.entry("environments/base").unwrap(),
        Some(EntryKind::Dir)
    );
    assert_eq!(
        source.entry("environments/base/deployment.yaml").unwrap(),
        Some(EntryKind::File)
    );
    assert_eq!(
        source.read("environments/base/deployment.yaml").unwrap(),
        b"kind: Deployment\n"
    );
    assert_eq!(source.read_dir("").unwrap(), ["README.md", "environments"]);
    assert_eq!(source.read_dir("environments").unwrap(), ["base", "dev"]);
    assert_eq!(
        source.read_dir("environments/base").unwrap(),
        ["deployment.yaml", "kustomization.yaml"]
    );
}

#[test]
fn tree_source_reports_missing_paths_and_wrong_kinds() {
    let repo = nested_repo();
    let source = repo.store().tree_source("main").unwrap();
    assert_eq!(source.entry("environments/prod").unwrap(), None);
    assert_eq!(source.entry("README.md/x").unwrap(), None);
    assert_eq!(
        source.read("nope.yaml").unwrap_err().kind(),
        io::ErrorKind::NotFound
    );
    assert_eq!(
        source.read_dir("nope").unwrap_err().kind(),
        io::ErrorKind::NotFound
    );
    assert_eq!(
        source.read("environments").unwrap_err().kind(),
        io::ErrorKind::IsADirectory
    );
    assert_eq!(
        source.read_dir("README.md").unwrap_err().kind(),
        io::ErrorKind::NotADirectory
    );
}

#[test]
fn tree_source_reads_the_commit_not_the_working_tree() {
    let repo = nested_repo();
    let first = repo.store().resolve("HEAD").unwrap();
    repo.commit_files(&[("README.md", "changed\n")], "change readme");
    std::fs::write(repo.dir.join("README.md"), "uncommitted\n").unwrap();
    let store = repo.store();
    assert_eq!(
        store
            .tree_source(&first)
            .unwrap()
            .read("README.md")
            .unwrap(),
        b"readme\n"
    );
    assert_eq!(
        store
            .tree_source("HEAD")
            .unwrap()
            .read("README.md")
            .unwrap(),
        b"changed\n"
    );
}

#[test]
fn symlinks_resolve_within_the_tree_and_never_outside() {
    let repo = nested_repo();
    let links = [
        ("environments/qa", "dev"),
        ("environments/dev/base.yaml", "../base/deployment.yaml"),
        ("escape", "../outside"),
        ("absolute", "/etc/passwd"),
        ("loop-a", "loop-b"),
        ("loop-b", "loop-a"),
    ];
    for (link, target) in links {
        std::os::unix::fs::symlink(target, repo.dir.join(link)).unwrap();
    }
    repo.commit_files(&[], "links");
    let source = repo.store().tree_source("HEAD").unwrap();
    assert_eq!(
        source.entry("environments/qa").unwrap(),
        Some(EntryKind::Dir)
    );
    assert_eq!(
        source.read_dir("environments/qa").unwrap(),
        ["base.yaml", "kustomization.yaml"]
    );
    assert_eq!(
        source.read("environments/qa/base.yaml").unwrap(),
        b"kind: Deployment\n"
    );
    for path in ["escape", "absolute", "escape/x"] {
        let err = source.read(path).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{path}: {err}");
        assert!(err.to_string().contains("outside the tree"), "{err}");
    }
    let err = source.entry("loop-a").unwrap_err();
    assert!(err.to_string().contains("too many symbolic links"), "{err}");
}

#[test]
fn read_tree_files_lists_every_file_under_a_prefix() {
    let repo = nested_repo();
    let store = repo.store();
    let all = store.read_tree_files("main", "").unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!(all["README.md"], b"readme\n");
    let env = store.read_tree_files("main", "environments/base").unwrap();
    let names: Vec<&str> = env.keys().map(String::as_str).collect();
    assert_eq!(names, ["deployment.yaml", "kustomization.yaml"]);
    assert!(
        store
            .read_tree_files("main", "environments/prod")
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .read_tree_files("main", "README.md")
            .unwrap()
            .is_empty()
    );
}

/// Prints how long the operations of one stage promotion take on a small repository; run with
/// `cargo test --lib gitstore::tests::timings -- --ignored --nocapture`.
#[test]
#[ignore = "prints timings, asserts nothing about them"]
fn timings() {
    use std::time::{Duration, Instant};

    let repo = nested_repo();
    let rounds = 50u32;
    let mut took = [Duration::ZERO; 5];
    let mut time = |slot: usize, started: Instant| took[slot] += started.elapsed();
    for round in 0..rounds {
        let started = Instant::now();
        let store = GitStore::open(&repo.dir).unwrap();
        time(0, started);
        let started = Instant::now();
        let commit = store.resolve("main").unwrap();
        time(1, started);
        let started = Instant::now();
        let source = store.tree_source(&commit).unwrap();
        for path in [
            "environments/dev/kustomization.yaml",
            "environments/base/deployment.yaml",
        ] {
            source.read(path).unwrap();
        }
        source.read_dir("environments/base").unwrap();
        time(2, started);
        let output = super::test_repo::files(&[
            ("deployment.yaml", &format!("replicas: {round}\n")),
            ("service.yaml", "kind: Service\n"),
        ]);
        let req = CommitRequest {
            branch: "env/dev",
            files: &output,
            path_prefix: "",
            message: "Promote",
            trailers: &[("Ferry-Stage", "dev")],
            author: None,
            expected_tip: None,
        };
        let started = Instant::now();
        store.write_commit(&req).unwrap();
        time(3, started);
        let started = Instant::now();
        store.write_commit(&req).unwrap();
        time(4, started);
    }
    let names = [
        "open",
        "resolve",
        "tree_source + 2 reads + read_dir",
        "write_commit",
        "unchanged",
    ];
    for (name, total) in names.iter().zip(took) {
        println!("{name}: {:?}", total / rounds);
    }
}
