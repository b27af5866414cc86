//! One load rule for every file ferry reads from a repository: a symbolic link is followed
//! only when it leads to a path inside the repository, and FIFOs, devices and sockets are
//! refused, never read. A file outside the repository never shows up in any output, not even
//! through the field names an error would quote.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ferry::gitstore::GitStore;
use ferry::overlay;
use ferry::pipeline::Config;

use crate::support::{Run, TestRepo};

/// A file outside the repository that must never leak: its key and value are both secret.
const SECRET: &str = "apiVersion: ferry/v1\nkind: Pipeline\nsecretKeyName: hunter2\n";

/// A directory outside the repository holding `secrets.yaml`.
struct Outside {
    dir: tempfile::TempDir,
}

impl Outside {
    fn new() -> Outside {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("secrets.yaml"), SECRET).expect("write secret");
        std::fs::write(
            dir.path().join("kustomization.yaml"),
            "secretKeyName: hunter2\n",
        )
        .expect("write secret kustomization");
        Outside { dir }
    }

    fn secrets(&self) -> std::path::PathBuf {
        self.dir.path().join("secrets.yaml")
    }
}

/// Replaces `path` in the repository with a symbolic link to `target`.
fn link(repo: &TestRepo, path: &str, target: &Path) {
    let full = repo.path().join(path);
    if full.is_dir() {
        std::fs::remove_dir_all(&full).expect("remove dir");
    } else if full.exists() {
        std::fs::remove_file(&full).expect("remove file");
    }
    std::fs::create_dir_all(full.parent().expect("parent")).expect("create parent");
    std::os::unix::fs::symlink(target, &full).expect("symlink");
}

/// Asserts a refusal: exit 2, the file named, the reason given, nothing of the secret shown.
#[track_caller]
fn assert_refused(run: Run, names: &str, reason: &str) {
    let run = run.expect_code(2);
    for text in [&run.stdout, &run.stderr] {
        assert!(
            !text.contains("secretKeyName"),
            "secret key leaked:\n{text}"
        );
        assert!(!text.contains("hunter2"), "secret value leaked:\n{text}");
    }
    assert!(
        run.stderr.contains(names),
        "{names:?} not named in:\n{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(reason),
        "{reason:?} not said in:\n{}",
        run.stderr
    );
}

const OUTSIDE: &str = "a symbolic link leads outside the root";

#[test]
fn a_pipeline_file_linked_outside_is_refused() {
    let (repo, outside) = (TestRepo::example(), Outside::new());
    link(&repo, "environments/pipeline.yaml", &outside.secrets());
    assert_refused(
        repo.ferry(&["validate"]),
        "environments/pipeline.yaml",
        OUTSIDE,
    );
}

#[test]
fn policy_and_groups_files_linked_outside_are_refused() {
    for file in ["policies/prod.yaml", "policies/groups.yaml"] {
        let (repo, outside) = (TestRepo::example(), Outside::new());
        link(&repo, file, &outside.secrets());
        assert_refused(repo.ferry(&["validate"]), file, OUTSIDE);
    }
}

#[test]
fn a_policies_directory_linked_outside_is_refused() {
    let (repo, outside) = (TestRepo::example(), Outside::new());
    link(&repo, "policies", outside.dir.path());
    assert_refused(repo.ferry(&["validate"]), "policies", OUTSIDE);
}

#[test]
fn kustomization_files_of_overlays_bases_and_components_linked_outside_are_refused() {
    for dir in ["environments/dev", "environments/base", "environments/part"] {
        let (repo, outside) = (TestRepo::example(), Outside::new());
        repo.write(
            "environments/part/kustomization.yaml",
            "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n",
        );
        repo.edit(
            "environments/dev/kustomization.yaml",
            "resources:",
            "components:\n- ../part\nresources:",
        );
        link(
            &repo,
            &format!("{dir}/kustomization.yaml"),
            &outside.dir.path().join("kustomization.yaml"),
        );
        let file = format!("{dir}/kustomization.yaml");
        assert_refused(repo.ferry(&["build", "environments/dev"]), &file, OUTSIDE);
        assert_refused(repo.ferry(&["render", "dev"]), &file, OUTSIDE);
    }
}

#[test]
fn a_base_directory_linked_outside_is_refused() {
    let (repo, outside) = (TestRepo::example(), Outside::new());
    link(&repo, "environments/base", outside.dir.path());
    assert_refused(
        repo.ferry(&["build", "environments/dev"]),
        "../base",
        "resolves to a path outside the root",
    );
}

#[test]
fn patches_and_generator_sources_linked_outside_are_refused() {
    let cases = [
        ("patches:\n- path: linked.yaml\n", "linked.yaml"),
        ("patchesStrategicMerge:\n- linked.yaml\n", "linked.yaml"),
        (
            "configMapGenerator:\n- name: leak\n  files:\n  - linked.yaml\n",
            "linked.yaml",
        ),
        (
            "configMapGenerator:\n- name: leak\n  envs:\n  - linked.yaml\n",
            "linked.yaml",
        ),
    ];
    for (field, named) in cases {
        let (repo, outside) = (TestRepo::empty(), Outside::new());
        repo.write("app/kustomization.yaml", field);
        link(&repo, "app/linked.yaml", &outside.secrets());
        assert_refused(
            repo.ferry(&["build", "app"]),
            named,
            "resolves to a path outside the root",
        );
    }
}

/// Runs `command`, killing it if it has not finished after a generous deadline.
fn run_with_deadline(command: &mut Command) -> Run {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ferry");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("poll").is_none() {
        if Instant::now() > deadline {
            child.kill().expect("kill");
            panic!("ferry blocked on a FIFO");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Run::from_command_output(child.wait_with_output().expect("output"))
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo");
    assert!(status.success(), "mkfifo failed");
}

#[test]
fn a_fifo_resource_is_refused_without_blocking() {
    let repo = TestRepo::example();
    mkfifo(&repo.path().join("environments/base/pipe.yaml"));
    repo.edit(
        "environments/base/kustomization.yaml",
        "resources:",
        "resources:\n- pipe.yaml",
    );
    for args in [&["validate"][..], &["build", "environments/dev"]] {
        let run = run_with_deadline(&mut repo.command(args)).expect_code(2);
        assert!(
            run.stderr
                .contains("environments/base/pipe.yaml: is a FIFO, not a regular file"),
            "{}",
            run.stderr
        );
    }
}

#[test]
fn a_fifo_as_pipeline_file_is_refused_without_blocking() {
    let repo = TestRepo::example();
    std::fs::remove_file(repo.path().join("environments/pipeline.yaml")).expect("remove");
    mkfifo(&repo.path().join("environments/pipeline.yaml"));
    let run = run_with_deadline(&mut repo.command(&["validate"])).expect_code(2);
    assert!(
        run.stderr
            .contains("environments/pipeline.yaml: is a FIFO, not a regular file"),
        "{}",
        run.stderr
    );
}

#[test]
fn devices_and_sockets_are_refused() {
    let repo = TestRepo::empty();
    repo.write("app/kustomization.yaml", "resources:\n- zero.yaml\n");
    link(&repo, "app/zero.yaml", Path::new("/dev/zero"));
    let run = repo.ferry(&["build", "app"]).expect_code(2);
    assert!(
        run.stderr
            .contains("zero.yaml: resolves to a path outside the root"),
        "{}",
        run.stderr
    );
    repo.write("app/kustomization.yaml", "resources:\n- socket.yaml\n");
    let _listener = std::os::unix::net::UnixListener::bind(repo.path().join("app/socket.yaml"))
        .expect("bind a socket");
    let run = run_with_deadline(&mut repo.command(&["build", "app"])).expect_code(2);
    assert!(
        run.stderr
            .contains("app/socket.yaml: is a socket, not a regular file"),
        "{}",
        run.stderr
    );
}

#[test]
fn links_in_a_git_tree_that_lead_outside_are_refused() {
    let repo = TestRepo::example();
    std::fs::remove_file(repo.path().join("environments/base/kustomization.yaml")).expect("rm");
    std::os::unix::fs::symlink(
        "../../../outside/secrets.yaml",
        repo.path().join("environments/base/kustomization.yaml"),
    )
    .expect("symlink");
    std::fs::remove_file(repo.path().join("policies/prod.yaml")).expect("rm");
    std::os::unix::fs::symlink("/etc/hostname", repo.path().join("policies/prod.yaml"))
        .expect("symlink");
    let commit = repo.commit("links that escape");
    let store = GitStore::open(repo.path()).expect("open");
    let tree = store.tree_source(&commit).expect("tree");
    let err = overlay::build(&tree, "environments/dev").expect_err("refused");
    let message = error_chain(&err);
    assert!(
        message.contains("environments/base/kustomization.yaml")
            && message.contains("leads outside the tree"),
        "{message}"
    );
    let err = Config::load(&tree).expect_err("refused");
    let message = error_chain(&err);
    assert!(
        message.contains("policies/prod.yaml") && message.contains("leads outside the tree"),
        "{message}"
    );
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut parts = vec![err.to_string()];
    let mut cause = err.source();
    while let Some(next) = cause {
        parts.push(next.to_string());
        cause = next.source();
    }
    parts.join(": ")
}
