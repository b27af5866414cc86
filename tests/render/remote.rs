//! Remote bases: kustomizations naming git repositories by URL, served from bare repositories
//! over `file://` and by a real `git daemon` on 127.0.0.1 over `git://`. The goldens are what
//! real kustomize printed over `file://` (`tests/fixtures/kustomize-remote`); the rest checks
//! the cache, the pinning rule of promotions, and failures (timeouts, bad URLs, files outside
//! the clone).

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ferry::gitstore::RemoteBases;
use ferry::overlay::{self, BuildOptions, DirSource, RemoteFetcher, Remotes, Unpinned};

use crate::support::{Run, TestRepo, git, git_command, isolate_git};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kustomize-remote")
}

/// The bare repositories of `tests/fixtures/kustomize-remote/repos`, made as `regenerate.sh`
/// makes them, in a temporary directory (`repos/NAME.git`), with a cache for fetching them.
struct Served {
    dir: tempfile::TempDir,
}

impl Served {
    /// The fixture repositories, with `{{REPOS}}` read as their `file://` URL.
    fn fixtures() -> Served {
        let served = Served::empty();
        let url = served.file_url();
        let repos = fixtures().join("repos");
        let mut names: Vec<String> = std::fs::read_dir(&repos)
            .expect("read repos")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|name| !name.ends_with(".next"))
            .collect();
        names.sort();
        for name in names {
            let tree = served.dir.path().join("trees").join(&name);
            place(&repos.join(&name), &tree, &url);
            commit_all(&tree, &name);
            if name == "shared" {
                fixture_git(&tree, &["tag", "-a", "-m", "shared v2.0.0", "v2.0.0"]);
            } else {
                fixture_git(&tree, &["tag", "v1.0.0"]);
            }
            let next = repos.join(format!("{name}.next"));
            if next.is_dir() {
                place(&next, &tree, &url);
                commit_all(&tree, &format!("{name}, next"));
            }
            served.publish(&name);
        }
        served
    }

    fn empty() -> Served {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("repos")).expect("create repos");
        Served { dir }
    }

    /// A repository `name` holding `files`, its one commit tagged `v1`; returns the commit.
    fn repository(&self, name: &str, files: &[(&str, &str)]) -> String {
        let tree = self.dir.path().join("trees").join(name);
        for (path, text) in files {
            let full = tree.join(path);
            std::fs::create_dir_all(full.parent().expect("parent")).expect("create dir");
            std::fs::write(full, text).expect("write");
        }
        let commit = commit_all(&tree, name);
        fixture_git(&tree, &["tag", "v1"]);
        self.publish(name);
        commit
    }

    fn publish(&self, name: &str) {
        let tree = self.dir.path().join("trees").join(name);
        let bare = self.repos().join(format!("{name}.git"));
        let _ = std::fs::remove_dir_all(&bare);
        git(
            self.dir.path(),
            &[
                "clone",
                "-q",
                "--bare",
                tree.to_str().expect("UTF-8"),
                bare.to_str().expect("UTF-8"),
            ],
        );
    }

    fn repos(&self) -> PathBuf {
        self.dir.path().join("repos")
    }

    fn file_url(&self) -> String {
        format!("file://{}", self.repos().display())
    }

    /// The case `case` written under `root`/`at` with `{{REPOS}}` replaced by `url`; returns
    /// the expected output for that URL.
    fn case(&self, case: &str, url: &str, root: &Path, at: &str) -> String {
        place(&fixtures().join(case), &root.join(at), url);
        let _ = std::fs::remove_file(root.join(at).join("expected.yaml"));
        std::fs::read_to_string(fixtures().join(case).join("expected.yaml"))
            .expect("expected.yaml")
            .replace("{{REPOS}}", url)
    }
}

/// Copies the tree `from` into `to`, replacing `{{REPOS}}` with `url` in every file.
fn place(from: &Path, to: &Path, url: &str) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            place(&entry.path(), &target, url);
        } else {
            let text = std::fs::read_to_string(entry.path()).expect("read");
            std::fs::write(&target, text.replace("{{REPOS}}", url)).expect("write");
        }
    }
}

/// git with the identity and dates `regenerate.sh` uses, so the commits are the same.
fn fixture_git(dir: &Path, args: &[&str]) -> String {
    let output = git_command(dir)
        .env("GIT_AUTHOR_NAME", "Fixtures")
        .env("GIT_AUTHOR_EMAIL", "fixtures@example.com")
        .env("GIT_COMMITTER_NAME", "Fixtures")
        .env("GIT_COMMITTER_EMAIL", "fixtures@example.com")
        .env("GIT_AUTHOR_DATE", "2024-01-01T00:00:00Z")
        .env("GIT_COMMITTER_DATE", "2024-01-01T00:00:00Z")
        .args(args)
        .output()
        .expect("run git");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

fn commit_all(tree: &Path, message: &str) -> String {
    if !tree.join(".git").exists() {
        fixture_git(tree, &["init", "-q", "-b", "main"]);
    }
    fixture_git(tree, &["add", "-A"]);
    fixture_git(tree, &["commit", "-q", "-m", message]);
    fixture_git(tree, &["rev-parse", "HEAD"])
}

/// A `git daemon` serving a directory of bare repositories on a free port of 127.0.0.1.
struct Daemon {
    child: Child,
    port: u16,
}

impl Daemon {
    fn serve(base: &Path) -> Daemon {
        let port = free_port();
        let child = isolate_git(&mut Command::new("git"))
            .args([
                "daemon",
                "--reuseaddr",
                "--export-all",
                "--listen=127.0.0.1",
            ])
            .arg(format!("--port={port}"))
            .arg(format!("--base-path={}", base.display()))
            .arg(base)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start git daemon");
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "git daemon never listened");
            std::thread::sleep(Duration::from_millis(25));
        }
        Daemon { child, port }
    }

    fn url(&self) -> String {
        format!("git://127.0.0.1:{}", self.port)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// `ferry` in `dir` with its remote-base cache under `cache`.
fn ferry(dir: &Path, cache: &Path, args: &[&str]) -> Run {
    Run::from_command(&mut ferry_command(dir, cache, args))
}

fn ferry_command(dir: &Path, cache: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ferry"));
    isolate_git(&mut command)
        .args(args)
        .current_dir(dir)
        .env("XDG_CACHE_HOME", cache)
        .env("FERRY_USER", "alice");
    command
}

#[track_caller]
fn golden(case: &str) {
    let served = Served::fixtures();
    let url = served.file_url();
    let work = tempfile::tempdir().expect("temp dir");
    let expected = served.case(case, &url, work.path(), "case");
    let cache = RemoteBases::new(work.path().join("cache"));
    let options = BuildOptions {
        remotes: Some(Remotes {
            fetcher: &cache as &dyn RemoteFetcher,
            unpinned: Unpinned::Warn,
        }),
        ..BuildOptions::default()
    };
    let build = overlay::build_options(&DirSource::new(work.path()), "case", options)
        .unwrap_or_else(|err| panic!("{case}: kustomize built it, ferry failed: {err:?}"));
    let actual = overlay::to_yaml(&build.resources);
    if actual != expected {
        let diff = similar::TextDiff::from_lines(&expected, &actual)
            .unified_diff()
            .header("kustomize", "ferry")
            .to_string();
        panic!("{case}: output differs from kustomize's\n{diff}");
    }
}

macro_rules! goldens {
    ($($test:ident => $case:literal,)*) => {
        $(
            #[test]
            fn $test() {
                golden($case);
            }
        )*

        const CASES: &[&str] = &[$($case),*];
    };
}

goldens! {
    golden_remote_base_tag => "remote-base-tag",
    golden_remote_base_of_remote_base => "remote-base-of-remote-base",
    golden_remote_branch => "remote-branch",
    golden_remote_component => "remote-component",
    golden_remote_origin_annotations => "remote-origin-annotations",
    golden_remote_overlay_version_query => "remote-overlay-version-query",
}

#[test]
fn every_remote_fixture_is_listed() {
    let mut on_disk: Vec<String> = std::fs::read_dir(fixtures())
        .expect("read fixtures")
        .map(|e| e.expect("entry"))
        .filter(|e| e.path().is_dir() && e.file_name() != "repos")
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut listed: Vec<&str> = CASES.to_vec();
    listed.sort();
    assert_eq!(on_disk, listed);
}

#[test]
fn builds_over_git_daemon_and_then_from_the_cache_alone() {
    let served = Served::fixtures();
    let repo = TestRepo::empty();
    let cache = tempfile::tempdir().expect("temp dir");
    let daemon = Daemon::serve(&served.repos());
    let expected = served.case("remote-base-tag", &daemon.url(), repo.path(), "apps/web");
    let first = ferry(repo.path(), cache.path(), &["build", "apps/web"]).expect_code(0);
    assert_eq!(first.stdout, expected);
    assert_eq!(first.stderr, "");
    // The tag was fetched once: with the daemon gone, the build reads the cache.
    drop(daemon);
    let second = ferry(repo.path(), cache.path(), &["build", "apps/web"]).expect_code(0);
    assert_eq!(second.stdout, expected);
    let checkouts = std::fs::read_dir(cache.path().join("ferry/remote-bases/checkouts"))
        .expect("the cache holds the checkout")
        .count();
    assert_eq!(checkouts, 1);
}

#[test]
fn a_full_commit_is_pinned_and_fetched_once() {
    let served = Served::empty();
    let commit = served.repository(
        "tools",
        &[
            ("kustomization.yaml", "resources:\n- cm.yaml\n"),
            (
                "cm.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: tools\n",
            ),
        ],
    );
    let daemon = Daemon::serve(&served.repos());
    let repo = TestRepo::empty();
    let cache = tempfile::tempdir().expect("temp dir");
    repo.write(
        "app/kustomization.yaml",
        &format!("resources:\n- {}/tools.git?ref={commit}\n", daemon.url()),
    );
    let expected = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: tools\n";
    let run = ferry(repo.path(), cache.path(), &["build", "app"]).expect_code(0);
    assert_eq!((run.stdout.as_str(), run.stderr.as_str()), (expected, ""));
    drop(daemon);
    let run = ferry(repo.path(), cache.path(), &["build", "app"]).expect_code(0);
    assert_eq!(run.stdout, expected);
}

#[test]
fn a_branch_is_built_with_a_warning_naming_the_file_and_the_url() {
    let served = Served::fixtures();
    let repo = TestRepo::empty();
    let cache = tempfile::tempdir().expect("temp dir");
    let daemon = Daemon::serve(&served.repos());
    let expected = served.case("remote-branch", &daemon.url(), repo.path(), "edge");
    let run = ferry(repo.path(), cache.path(), &["build", "edge"]).expect_code(0);
    assert_eq!(run.stdout, expected);
    assert_eq!(
        run.stderr,
        format!(
            "warning: edge/kustomization.yaml:1: remote base `{}/platform.git//app?ref=main` \
             is not pinned (`main` is a branch): a promotion refuses it; pin it with `?ref=` \
             and a tag or a full commit id\n",
            daemon.url()
        )
    );
}

/// The example repository with `url` added to the resources of the dev overlay.
fn example_with_remote_in_dev(url: &str) -> TestRepo {
    let repo = TestRepo::example();
    let path = "environments/dev/kustomization.yaml";
    let text = repo.read(path);
    assert!(text.contains("resources:\n"), "{text}");
    repo.write(
        path,
        &text.replacen("resources:\n", &format!("resources:\n- {url}\n"), 1),
    );
    repo.commit("Use a remote base in dev");
    repo
}

#[test]
fn a_promotion_render_refuses_a_branch_and_takes_a_tag() {
    let served = Served::fixtures();
    let daemon = Daemon::serve(&served.repos());
    let cache = tempfile::tempdir().expect("temp dir");
    let branch = format!("{}/platform.git//app?ref=main", daemon.url());
    let repo = example_with_remote_in_dev(&branch);
    let revision = repo.release("1.0.0");
    let run = ferry(
        repo.path(),
        cache.path(),
        &["render", "dev", "--revision", &revision],
    )
    .expect_code(2);
    assert_eq!(
        run.stderr.lines().next().unwrap_or(""),
        format!(
            "error: failed to render stage dev: environments/dev/kustomization.yaml:4: remote \
             base `{branch}` is not pinned (`main` is a branch); a render for a promotion must \
             be reproducible: pin it with `?ref=` and a tag or a full commit id"
        )
    );
    // The working tree may follow the branch, with a warning.
    let run = ferry(repo.path(), cache.path(), &["render", "dev"]).expect_code(0);
    assert!(run.stdout.contains("name: web-config-"), "{}", run.stdout);
    assert!(
        run.stderr.contains("is not pinned (`main` is a branch)"),
        "{}",
        run.stderr
    );
    // Pinned to the tag, the same render goes through.
    let tag = format!("{}/platform.git//app?ref=v1.0.0", daemon.url());
    repo.edit("environments/dev/kustomization.yaml", &branch, &tag);
    repo.commit("Pin the remote base");
    let revision = repo.release("1.0.1");
    let run = ferry(
        repo.path(),
        cache.path(),
        &["render", "dev", "--revision", &revision],
    )
    .expect_code(0);
    assert!(run.stdout.contains("image: nginx:1.25\n"), "{}", run.stdout);
}

#[test]
fn without_a_ref_a_promotion_render_is_refused_before_any_fetch() {
    // Nothing listens on this port: the refusal must not need the network.
    let url = format!("git://127.0.0.1:{}/platform.git//app", free_port());
    let repo = example_with_remote_in_dev(&url);
    let cache = tempfile::tempdir().expect("temp dir");
    let revision = repo.release("1.0.0");
    let run = ferry(
        repo.path(),
        cache.path(),
        &["render", "dev", "--revision", &revision],
    )
    .expect_code(2);
    assert!(
        run.stderr.contains(&format!(
            "remote base `{url}` is not pinned (no `?ref=`: the default branch)"
        )),
        "{}",
        run.stderr
    );
    let run = ferry(repo.path(), cache.path(), &["validate"]).expect_code(2);
    assert!(
        run.stderr
            .contains("is not pinned (no `?ref=`: the default branch)"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_silent_remote_times_out_with_the_url_and_the_limit() {
    // Accepts connections and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let held = std::thread::spawn(move || {
        let mut connections = Vec::new();
        while let Ok((stream, _)) = listener.accept() {
            connections.push(stream);
            if connections.len() == 4 {
                break;
            }
        }
        std::thread::sleep(Duration::from_secs(60));
    });
    let repo = TestRepo::empty();
    let cache = tempfile::tempdir().expect("temp dir");
    let url = format!("git://127.0.0.1:{port}/platform.git//app?ref=v1.0.0&timeout=2");
    repo.write("app/kustomization.yaml", &format!("resources:\n- {url}\n"));
    let run = ferry(repo.path(), cache.path(), &["build", "app"]).expect_code(2);
    assert_eq!(
        run.stderr,
        format!(
            "error: app/kustomization.yaml:1: failed to fetch remote base `{url}`: failed to \
             list the refs of git://127.0.0.1:{port}/platform.git: git did not finish within \
             2s (a slower remote needs `timeout=` in the URL's query, e.g. \
             `?ref=v1&timeout=120`)\n"
        )
    );
    drop(held);
}

#[test]
fn bad_urls_and_unknown_refs_are_refused_naming_the_file() {
    let served = Served::fixtures();
    let daemon = Daemon::serve(&served.repos());
    let repo = TestRepo::empty();
    let cache = tempfile::tempdir().expect("temp dir");
    let cases = [
        (
            "https://example.com/repo".to_string(),
            "invalid remote base `https://example.com/repo`: names no repository path".to_string(),
        ),
        (
            "https://example.com/org/repo//../../etc?ref=v1".to_string(),
            "invalid remote base `https://example.com/org/repo//../../etc?ref=v1`: its path \
             leads outside the repository"
                .to_string(),
        ),
        (
            format!("{}/platform.git//app?ref=v9", daemon.url()),
            format!(
                "failed to fetch remote base `{0}/platform.git//app?ref=v9`: failed to find \
                 `v9` in {0}/platform.git: no tag or branch of that name",
                daemon.url()
            ),
        ),
        (
            format!("{}/missing.git//app?ref=v1", daemon.url()),
            format!(
                "failed to fetch remote base `{0}/missing.git//app?ref=v1`: failed to list \
                 the refs of {0}/missing.git: fatal: remote error: access denied or \
                 repository not exported: /missing.git",
                daemon.url()
            ),
        ),
    ];
    for (url, message) in cases {
        repo.write(
            "app/kustomization.yaml",
            &format!("namePrefix: a-\nresources:\n- {url}\n"),
        );
        let run = ferry(repo.path(), cache.path(), &["build", "app"]).expect_code(2);
        assert_eq!(
            run.stderr,
            format!("error: app/kustomization.yaml:2: {message}\n"),
            "{url}"
        );
    }
}

#[test]
fn a_remote_base_reads_only_inside_its_own_directory() {
    let served = Served::empty();
    served.repository(
        "leaky",
        &[
            (
                "secret.yaml",
                "apiVersion: v1\nkind: Secret\nmetadata:\n  name: secret\n",
            ),
            ("app/kustomization.yaml", "resources:\n- ../secret.yaml\n"),
            ("missing/kustomization.yaml", "resources:\n- nothing.yaml\n"),
        ],
    );
    let repo = TestRepo::empty();
    let cache = tempfile::tempdir().expect("temp dir");
    let url = format!("{}/leaky.git//app?ref=v1", served.file_url());
    repo.write("app/kustomization.yaml", &format!("resources:\n- {url}\n"));
    let run = ferry(repo.path(), cache.path(), &["build", "app"]).expect_code(2);
    assert_eq!(
        run.stderr,
        format!(
            "error: app/kustomization.yaml:1: in remote base `{url}`: ../secret.yaml: \
             security; file is not in or below the kustomization's directory (referenced by \
             app/kustomization.yaml)\n"
        )
    );
    let url = format!("{}/leaky.git//missing?ref=v1", served.file_url());
    repo.write("app/kustomization.yaml", &format!("resources:\n- {url}\n"));
    let run = ferry(repo.path(), cache.path(), &["build", "app"]).expect_code(2);
    assert_eq!(
        run.stderr,
        format!(
            "error: app/kustomization.yaml:1: in remote base `{url}`: missing/nothing.yaml: no \
             such file or directory (referenced by missing/kustomization.yaml)\n"
        )
    );
}

#[test]
fn processes_fetching_the_same_base_at_once_share_one_checkout() {
    let served = Served::fixtures();
    let daemon = Daemon::serve(&served.repos());
    let repo = TestRepo::empty();
    let cache = tempfile::tempdir().expect("temp dir");
    let expected = served.case("remote-base-tag", &daemon.url(), repo.path(), "apps/web");
    let children: Vec<_> = (0..4)
        .map(|_| {
            ferry_command(repo.path(), cache.path(), &["build", "apps/web"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start ferry")
        })
        .collect();
    for child in children {
        let run = Run::from_command_output(child.wait_with_output().expect("wait"));
        let run = run.expect_code(0);
        assert_eq!(run.stdout, expected);
    }
    let checkouts = std::fs::read_dir(cache.path().join("ferry/remote-bases/checkouts"))
        .expect("checkouts")
        .count();
    assert_eq!(checkouts, 1);
    let leftovers: Vec<_> = std::fs::read_dir(cache.path().join("ferry/remote-bases"))
        .expect("cache")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(".fetch-"))
        .collect();
    assert_eq!(leftovers, Vec::<String>::new());
}
