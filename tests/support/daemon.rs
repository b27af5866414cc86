//! A `git daemon` serving a bare repository on 127.0.0.1, stopped when dropped.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{git, isolate_git};

/// A bare repository served over git:// on a free local port.
pub struct GitDaemon {
    base: tempfile::TempDir,
    child: Child,
    port: u16,
}

impl GitDaemon {
    /// Starts a daemon serving an empty bare repository `remote.git`.
    pub fn start() -> GitDaemon {
        let base = tempfile::tempdir().expect("temp dir");
        git(
            base.path(),
            &["init", "-q", "--bare", "-b", "main", "remote.git"],
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        // Only the environment is isolated: the hooks `hook` installs must run.
        let child = isolate_git(&mut Command::new("git"))
            .args([
                "daemon",
                "--reuseaddr",
                "--export-all",
                "--enable=receive-pack",
                "--listen=127.0.0.1",
            ])
            .arg(format!("--port={port}"))
            .arg(format!("--base-path={}", base.path().display()))
            .arg(base.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start git daemon");
        let daemon = GitDaemon { base, child, port };
        // A loaded machine may take a while to start it; only a broken one takes this long.
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return daemon;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("git daemon did not start on port {port} within a minute");
    }

    /// The URL of the served repository.
    pub fn url(&self) -> String {
        format!("git://127.0.0.1:{}/remote.git", self.port)
    }

    /// The bare repository on disk.
    pub fn repo(&self) -> PathBuf {
        self.base.path().join("remote.git")
    }

    /// Installs `script` as a hook of the bare repository.
    pub fn hook(&self, name: &str, script: &str) {
        let path = self.repo().join("hooks").join(name);
        std::fs::write(&path, script).expect("write hook");
        make_executable(&path);
    }
}

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
