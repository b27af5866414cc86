//! Real git repositories in temp dirs for the tests of this module, made with the `git`
//! program, and a `git daemon` serving bare repositories on 127.0.0.1.

use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::GitStore;

/// Runs `git` in `dir` with a fixed identity and no user or system configuration; panics with
/// git's output when it fails. Returns stdout without the trailing newline.
pub(crate) fn git(dir: &Path, args: &[&str]) -> String {
    let output = git_command(dir).args(args).output().expect("git runs");
    assert!(
        output.status.success(),
        "git {args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("utf-8 output")
        .trim_end()
        .to_string()
}

fn git_command(dir: &Path) -> Command {
    let mut command = Command::new("git");
    command
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Test Author")
        .env("GIT_AUTHOR_EMAIL", "author@example.com")
        .env("GIT_COMMITTER_NAME", "Test Author")
        .env("GIT_COMMITTER_EMAIL", "author@example.com")
        .env("LC_ALL", "C");
    command
}

/// A repository with a working tree on branch `main`, in a temp dir of its own.
pub(crate) struct TestRepo {
    _tmp: tempfile::TempDir,
    pub(crate) dir: PathBuf,
}

impl TestRepo {
    /// An empty repository; `user.name`/`user.email` are set in its config.
    pub(crate) fn new() -> Self {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().join("repo");
        std::fs::create_dir(&dir).expect("repo dir");
        git(&dir, &["init", "--quiet", "--initial-branch=main"]);
        git(&dir, &["config", "user.name", "Config User"]);
        git(&dir, &["config", "user.email", "config@example.com"]);
        TestRepo { _tmp: tmp, dir }
    }

    /// A repository with one commit on `main` holding `files`.
    pub(crate) fn with_files(files: &[(&str, &str)]) -> Self {
        let repo = TestRepo::new();
        repo.commit_files(files, "initial");
        repo
    }

    /// Writes `files` into the working tree and commits everything; returns the commit id.
    pub(crate) fn commit_files(&self, files: &[(&str, &str)], message: &str) -> String {
        for (path, content) in files {
            let path = self.dir.join(path);
            std::fs::create_dir_all(path.parent().expect("a file has a parent")).expect("dirs");
            std::fs::write(path, content).expect("write file");
        }
        git(&self.dir, &["add", "--all"]);
        git(
            &self.dir,
            &["commit", "--quiet", "--allow-empty", "-m", message],
        );
        self.git(&["rev-parse", "HEAD"])
    }

    pub(crate) fn git(&self, args: &[&str]) -> String {
        git(&self.dir, args)
    }

    pub(crate) fn store(&self) -> GitStore {
        GitStore::open(&self.dir).expect("open test repo")
    }

    /// The repository's temp dir, for siblings such as bare remotes.
    pub(crate) fn tmp(&self) -> &Path {
        self._tmp.path()
    }
}

/// A file map from `(path, content)` pairs.
pub(crate) fn files(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
    pairs
        .iter()
        .map(|(p, c)| (p.to_string(), c.as_bytes().to_vec()))
        .collect()
}

/// A `git daemon` serving the bare repositories under a directory, killed on drop.
pub(crate) struct GitDaemon {
    child: Child,
    port: u16,
}

impl GitDaemon {
    /// Serves every repository under `base` on a free port of 127.0.0.1, pushes allowed, and
    /// returns once the port accepts connections.
    pub(crate) fn serve(base: &Path) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let base_arg = format!("--base-path={}", base.display());
        let port_arg = format!("--port={port}");
        let child = git_command(base)
            .args([
                "daemon",
                "--reuseaddr",
                &base_arg,
                "--export-all",
                "--enable=receive-pack",
            ])
            .args(["--listen=127.0.0.1", &port_arg])
            .arg(base)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("git daemon starts");
        let mut daemon = GitDaemon { child, port };
        daemon.wait_until_listening();
        daemon
    }

    fn wait_until_listening(&mut self) {
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(status) = self.child.try_wait().expect("poll git daemon") {
                panic!("git daemon exited with {status} before listening");
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "git daemon never listened"
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// The `git://` URL of the repository `name` under the served directory.
    pub(crate) fn url(&self, name: &str) -> String {
        format!("git://127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
