//! The CLI as a client: `ferry login`, `--server` / `FERRY_SERVER`, `FERRY_TOKEN`, and what
//! is refused with a server.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use crate::support::{Run, TestRepo};

const GOOD: &str =
    "ferry_0123456789ab_0000000000000000000000000000000000000000000000000000000000000000";

/// An HTTP endpoint on 127.0.0.1 that answers `GET /api/v1/status` with 200 for the bearer
/// token `GOOD` and 401 in the API's error shape otherwise; records each request's
/// `Authorization` header.
struct StatusEndpoint {
    url: String,
    seen: Arc<Mutex<Vec<String>>>,
}

fn status_endpoint() -> StatusEndpoint {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut reader = BufReader::new(conn.try_clone().expect("clone"));
            let mut auth = String::new();
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                if let Some(value) = line.to_ascii_lowercase().strip_prefix("authorization:") {
                    auth = value.trim().to_string();
                }
                line.clear();
            }
            log.lock().expect("log").push(auth.clone());
            let (status, body) = if auth == format!("bearer {GOOD}") {
                ("200 OK", r#"{"stages": []}"#)
            } else {
                (
                    "401 Unauthorized",
                    r#"{"error": {"code": "unauthenticated", "message": "the token is not valid"}}"#,
                )
            };
            let _ = write!(
                conn,
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    StatusEndpoint { url, seen }
}

/// `ferry ARGS` with a config home of its own, `input` on stdin.
fn ferry_with_input(repo: &TestRepo, config: &std::path::Path, args: &[&str], input: &str) -> Run {
    let mut command: Command = repo.command(args);
    command
        .env("XDG_CONFIG_HOME", config)
        .env_remove("FERRY_SERVER")
        .env_remove("FERRY_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("spawn ferry");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    Run::from_command_output(child.wait_with_output().expect("wait"))
}

#[test]
fn login_checks_the_token_and_keeps_it_readable_only_by_its_owner() {
    let repo = TestRepo::example();
    let config = tempfile::tempdir().expect("tempdir");
    let server = status_endpoint();

    let run = ferry_with_input(&repo, config.path(), &["login", &server.url], "ferry_bad\n")
        .expect_code(2);
    assert!(
        run.stderr.contains("the token is not valid"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!("ferry login {}", server.url)),
        "{}",
        run.stderr
    );
    let file = config.path().join("ferry").join("credentials");
    assert!(!file.exists(), "a refused token is not kept");

    let url = format!("{}/", server.url);
    let run = ferry_with_input(&repo, config.path(), &["login", &url], &format!("{GOOD}\n"))
        .expect_code(0);
    assert!(run.stderr.contains("the token works on"), "{}", run.stderr);
    let mode = std::fs::metadata(&file).expect("kept").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let kept: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("read")).expect("json");
    assert_eq!(kept["servers"][&server.url]["token"], GOOD);
    assert_eq!(
        *server.seen.lock().expect("log"),
        ["bearer ferry_bad".to_string(), format!("bearer {GOOD}")]
    );

    let run = ferry_with_input(&repo, config.path(), &["login", &server.url], "\n").expect_code(2);
    assert!(
        run.stderr.contains("no token given on standard input"),
        "{}",
        run.stderr
    );
}

#[test]
fn as_is_refused_with_a_server_and_local_only_commands_say_why() {
    let repo = TestRepo::example();
    let config = tempfile::tempdir().expect("tempdir");
    let run = ferry_with_input(
        &repo,
        config.path(),
        &["status", "--server", "http://127.0.0.1:9", "--as", "bob"],
        "",
    )
    .expect_code(2);
    assert!(
        run.stderr
            .contains("--as bob cannot be used with --server http://127.0.0.1:9"),
        "{}",
        run.stderr
    );
    let run = ferry_with_input(
        &repo,
        config.path(),
        &["token", "list", "--server", "http://127.0.0.1:9"],
        "",
    )
    .expect_code(2);
    assert!(
        run.stderr
            .contains("`ferry token` does not run against a server"),
        "{}",
        run.stderr
    );
    let run = repo
        .command(&["reconcile"])
        .env("FERRY_SERVER", "http://127.0.0.1:9")
        .output()
        .expect("run");
    assert_eq!(run.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("a running server reconciles by itself"),
        "{stderr}"
    );
    // Commands that never touch state ignore the server.
    let run = repo
        .command(&["validate"])
        .env("FERRY_SERVER", "http://127.0.0.1:9")
        .output()
        .expect("run");
    assert_eq!(run.status.code(), Some(0));
}
