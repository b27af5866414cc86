//! A temporary config repository seeded with the bundled example, and a way to run ferry in it.

#![allow(dead_code, reason = "each test module uses a part of the support code")]

pub mod daemon;
pub mod server;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A temporary git repository holding a copy of the bundled example.
pub struct TestRepo {
    dir: tempfile::TempDir,
}

/// What a `ferry` run printed and how it exited.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Runs `command` and captures its output.
    pub fn from_command(command: &mut Command) -> Run {
        Run::from(command.output().expect("run command"))
    }

    /// The outcome of a process that already finished.
    pub fn from_command_output(output: Output) -> Run {
        Run::from(output)
    }

    fn from(output: Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Asserts the exit code, showing the output when it differs.
    #[track_caller]
    pub fn expect_code(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "unexpected exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Parses stdout as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

fn example_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

/// A `git` command in `dir` that sees none of the developer's or the machine's git
/// configuration: no global or system config (so no `init.defaultBranch`, signing, hooks path,
/// templates or aliases leak in), no hooks, no signing, and a fixed identity.
pub fn git_command(dir: &Path) -> Command {
    let mut command = Command::new("git");
    isolate_git(&mut command)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .env("LC_ALL", "C")
        .args(["-c", "init.defaultBranch=main"])
        .args(["-c", "core.hooksPath=/dev/null"])
        .args(["-c", "commit.gpgSign=false", "-c", "tag.gpgSign=false"]);
    command
}

/// Keeps the developer's and the machine's git configuration away from `command` (git itself,
/// or ferry, which reads the repository's config and runs `git push`).
pub fn isolate_git(command: &mut Command) -> &mut Command {
    command
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env_remove("GIT_CONFIG")
        .env_remove("GIT_CONFIG_PARAMETERS")
        .env_remove("GIT_CONFIG_COUNT")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .env_remove("GIT_TEMPLATE_DIR")
}

/// Runs git in `dir` (see [`git_command`]), panicking with its output when it fails.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let output = git_command(dir).args(args).output().expect("run git");
    assert!(
        output.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

impl TestRepo {
    /// A repository holding the bundled example, committed on `main`.
    pub fn example() -> TestRepo {
        let repo = TestRepo::empty();
        copy_dir(
            &example_root().join("environments"),
            &repo.path().join("environments"),
        );
        copy_dir(
            &example_root().join("policies"),
            &repo.path().join("policies"),
        );
        repo.commit("Add the example pipeline");
        repo
    }

    /// A second repository identical to this one (the same commits, branches and state).
    pub fn duplicate(&self) -> TestRepo {
        let dir = tempfile::tempdir().expect("temp dir");
        copy_dir(self.path(), dir.path());
        TestRepo { dir }
    }

    /// An empty repository on branch `main`.
    pub fn empty() -> TestRepo {
        let dir = tempfile::tempdir().expect("temp dir");
        git(dir.path(), &["init", "-q", "-b", "main"]);
        git(dir.path(), &["config", "user.name", "Test"]);
        git(dir.path(), &["config", "user.email", "test@example.com"]);
        TestRepo { dir }
    }

    /// A repository holding every branch of the git bundle at `bundle`, `main` checked out.
    pub fn from_bundle(bundle: &Path) -> TestRepo {
        let repo = TestRepo::empty();
        let bundle = bundle.to_str().expect("a UTF-8 path");
        repo.git(&[
            "fetch",
            "-q",
            "--update-head-ok",
            bundle,
            "refs/heads/*:refs/heads/*",
        ]);
        repo.git(&["reset", "-q", "--hard", "main"]);
        repo
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `content` to `path` (relative to the repository root).
    pub fn write(&self, path: &str, content: &str) -> &Self {
        let full = self.path().join(path);
        std::fs::create_dir_all(full.parent().expect("parent")).expect("create parent");
        std::fs::write(full, content).expect("write file");
        self
    }

    /// Removes the file `path` of the working tree.
    pub fn remove(&self, path: &str) -> &Self {
        std::fs::remove_file(self.path().join(path)).expect("remove file");
        self
    }

    /// Reads a file of the working tree.
    pub fn read(&self, path: &str) -> String {
        std::fs::read_to_string(self.path().join(path)).expect("read file")
    }

    /// Replaces `from` with `to` in `path`, which must contain it.
    #[track_caller]
    pub fn edit(&self, path: &str, from: &str, to: &str) -> &Self {
        let text = self.read(path);
        assert!(text.contains(from), "{path} does not contain {from:?}");
        self.write(path, &text.replacen(from, to, 1))
    }

    /// Commits everything in the working tree.
    pub fn commit(&self, message: &str) -> String {
        git(self.path(), &["add", "-A"]);
        git(
            self.path(),
            &["commit", "-q", "--allow-empty", "-m", message],
        );
        git(self.path(), &["rev-parse", "HEAD"])
    }

    /// Runs git in the repository.
    pub fn git(&self, args: &[&str]) -> String {
        git(self.path(), args)
    }

    /// A `ferry` command run inside the repository as user `alice`.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ferry"));
        isolate_git(&mut command)
            .args(args)
            .current_dir(self.path())
            .env("FERRY_USER", "alice")
            .env_remove("FERRY_LOG");
        command
    }

    /// Runs `ferry` with `args` inside the repository.
    pub fn ferry(&self, args: &[&str]) -> Run {
        Run::from(self.command(args).output().expect("run ferry"))
    }

    /// Runs `ferry` as `user` at the (test-only) time `now`, an RFC 3339 timestamp.
    pub fn ferry_at(&self, now: &str, user: &str, args: &[&str]) -> Run {
        Run::from(
            self.command(args)
                .env("FERRY_USER", user)
                .env("FERRY_TEST_NOW", now)
                .output()
                .expect("run ferry"),
        )
    }

    /// Runs `ferry promote REV --to STAGE --wait` as `user` at the time `now`.
    pub fn promote(&self, now: &str, user: &str, revision: &str, stage: &str) -> Run {
        self.ferry_at(now, user, &["promote", revision, "--to", stage, "--wait"])
    }

    /// Creates a revision pinning acme/helloworld at `tag` and returns its id.
    pub fn release(&self, tag: &str) -> String {
        let image = format!("acme/helloworld={tag}");
        let run = self
            .ferry(&["release", "create", "--image", &image, "-o", "json"])
            .expect_code(0);
        run.json()["id"].as_str().expect("an id").to_string()
    }

    /// The commits of `branch`, newest first.
    pub fn log(&self, branch: &str) -> Vec<String> {
        self.git(&["log", "--format=%H", branch])
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The commits of `branch`, or `None` when it does not exist.
    pub fn log_opt(&self, branch: &str) -> Option<Vec<String>> {
        let output = git_command(self.path())
            .args(["rev-parse", "--verify", "-q", branch])
            .output()
            .expect("run git");
        output.status.success().then(|| self.log(branch))
    }

    /// The value of trailer `key` in `commit`'s message.
    pub fn trailer(&self, commit: &str, key: &str) -> String {
        let message = self.git(&["log", "-1", "--format=%B", commit]);
        message
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}: ")))
            .unwrap_or_default()
            .to_string()
    }
}
