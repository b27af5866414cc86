//! A temporary config repository seeded with the bundled example, and a way to run ferry in it.

#![allow(dead_code, reason = "each test module uses a part of the support code")]

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

/// Runs git in `dir`, panicking with its output when it fails.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .output()
        .expect("run git");
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

    /// An empty repository on branch `main`.
    pub fn empty() -> TestRepo {
        let dir = tempfile::tempdir().expect("temp dir");
        git(dir.path(), &["init", "-q", "-b", "main"]);
        git(dir.path(), &["config", "user.name", "Test"]);
        git(dir.path(), &["config", "user.email", "test@example.com"]);
        TestRepo { dir }
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
        command
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
}
