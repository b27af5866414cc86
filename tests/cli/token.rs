//! `ferry token`: tokens are shown once, stored only as a hash, listed without secrets,
//! revoked by id.

use std::path::Path;

use crate::support::TestRepo;

/// Every file under `dir`, read as bytes.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push((
                path.display().to_string(),
                std::fs::read(&path).expect("read"),
            ));
        }
    }
    out
}

#[test]
fn a_token_is_shown_once_and_stored_only_as_a_hash() {
    let repo = TestRepo::example();
    let run = repo
        .ferry(&[
            "token",
            "create",
            "--user",
            "ci-bot",
            "--expires",
            "30d",
            "--description",
            "CI",
            "-o",
            "json",
        ])
        .expect_code(0);
    let created = run.json();
    let token = created["token"].as_str().expect("a token");
    let id = created["id"].as_str().expect("an id");
    assert!(token.starts_with("ferry_"), "{token}");
    assert!(
        id.starts_with("t-") && token.contains(&id[2..]),
        "{id} {token}"
    );
    assert_eq!(created["user"], "ci-bot");
    assert!(created["expires_at"].is_string(), "{created}");
    let secret = token.rsplit('_').next().expect("secret part");
    for (path, bytes) in files(&repo.path().join(".ferry")) {
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{path} holds the token"
        );
    }

    let plain = repo
        .ferry(&["token", "create", "--user", "alice", "--expires", "never"])
        .expect_code(0);
    assert!(
        plain.stdout.trim().starts_with("ferry_"),
        "{}",
        plain.stdout
    );
    assert!(plain.stderr.contains("expires: never"), "{}", plain.stderr);

    let list = repo.ferry(&["token", "list"]).expect_code(0);
    assert!(!list.stdout.contains(secret), "{}", list.stdout);
    let row = list
        .stdout
        .lines()
        .find(|l| l.starts_with(id))
        .unwrap_or_else(|| panic!("no row for {id}:\n{}", list.stdout));
    assert!(
        row.contains("ci-bot") && row.contains("active") && row.contains("CI"),
        "{row}"
    );
}

#[test]
fn a_revoked_token_is_listed_as_revoked() {
    let repo = TestRepo::example();
    let created = repo
        .ferry(&["token", "create", "--user", "bob", "-o", "json"])
        .expect_code(0)
        .json();
    let id = created["id"].as_str().expect("an id");
    let run = repo.ferry(&["token", "revoke", id]).expect_code(0);
    assert!(
        run.stderr.contains(&format!("revoked token {id} of bob")),
        "{}",
        run.stderr
    );
    let list = repo
        .ferry(&["token", "list", "-o", "json"])
        .expect_code(0)
        .json();
    assert_eq!(list[0]["id"], id);
    assert_eq!(list[0]["state"], "revoked");
    assert!(list[0].get("token").is_none(), "{list}");
}

#[test]
fn bad_token_commands_exit_2_with_the_reason() {
    let repo = TestRepo::example();
    let run = repo
        .ferry(&["token", "revoke", "t-000000000000"])
        .expect_code(2);
    assert!(
        run.stderr.contains("no token with id `t-000000000000`"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("ferry token list"), "{}", run.stderr);
    let run = repo
        .ferry(&["token", "create", "--user", "group:sre"])
        .expect_code(2);
    assert!(
        run.stderr.contains("`group:sre` is not a user name"),
        "{}",
        run.stderr
    );
    let run = repo
        .ferry(&["token", "create", "--user", "alice", "--expires", "soon"])
        .expect_code(2);
    assert!(
        run.stderr.contains("--expires: invalid duration `soon`"),
        "{}",
        run.stderr
    );
    repo.ferry(&["token", "create"]).expect_code(2);
}
