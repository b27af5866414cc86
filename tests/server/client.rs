//! The CLI as a client: every state command sent to a server with `--server` prints what it
//! prints locally and exits with the same code. Two identical repositories run the same
//! commands, one locally and one through `ferry serve`, and their outputs are compared.

use std::collections::BTreeMap;

use super::{timeless_example, token};
use crate::support::server::{Served, remote, wait_for};
use crate::support::{Run, TestRepo};

/// The same repository twice: one worked on locally, one held by a running server.
struct Twins {
    local: TestRepo,
    served_repo: TestRepo,
    served: Served,
    tokens: BTreeMap<&'static str, String>,
}

const CAST: [&str; 5] = ["ci-bot", "carol", "alice", "bob", "dana"];

impl Twins {
    /// The example without auto stages (so that the server does only what it is asked) and a
    /// qa gate that holds while a file `hold` exists in the repository.
    fn start() -> Twins {
        let local = timeless_example();
        for _ in ["dev", "qa"] {
            local.edit("environments/pipeline.yaml", " auto: true,", "");
        }
        local.edit(
            "policies/qa.yaml",
            "run: [\"sh\", \"-c\", \"",
            "run: [\"sh\", \"-c\", \"while [ -e hold ]; do sleep 0.1; done; ",
        );
        local.commit("Nothing moves on its own; qa can be held");
        let served_repo = local.duplicate();
        let tokens = CAST
            .iter()
            .map(|user| (*user, token(&served_repo, user)))
            .collect();
        let served = Served::start(&served_repo, &[], &[]);
        Twins {
            local,
            served_repo,
            served,
            tokens,
        }
    }

    fn local(&self, user: &str, args: &[&str]) -> Run {
        Run::from_command(self.local.command(args).env("FERRY_USER", user))
    }

    fn remote(&self, user: &str, args: &[&str]) -> Run {
        remote(&self.served.url, &self.tokens[user], args)
    }

    /// Runs `args` as `user` locally and through the server; both exit with `code` and print
    /// the same (times and commit ids aside, and the hints, which name what to do next where
    /// the command ran). Returns the remote run.
    #[track_caller]
    fn same(&self, user: &str, args: &[&str], code: i32) -> Run {
        self.same_but(user, args, code, &[])
    }

    /// [`Twins::same`], with the JSON fields `ignored` left out of the comparison.
    #[track_caller]
    fn same_but(&self, user: &str, args: &[&str], code: i32, ignored: &[&str]) -> Run {
        let local = self.local(user, args).expect_code(code);
        let remote = self.remote(user, args).expect_code(code);
        assert_eq!(
            normalize(&remote.stdout, ignored),
            normalize(&local.stdout, ignored),
            "stdout of `ferry {}`",
            args.join(" ")
        );
        assert_eq!(
            normalize(&without_hints(&remote.stderr), &[]),
            normalize(&without_hints(&local.stderr), &[]),
            "stderr of `ferry {}`",
            args.join(" ")
        );
        remote
    }
}

/// `text` with what differs between two runs of the same story masked: times, commit ids
/// (the output commits carry their time), and in JSON how the actors were authenticated
/// (locally by name, through the server by token).
fn normalize(text: &str, ignored: &[&str]) -> String {
    let text = match serde_json::from_str::<serde_json::Value>(text) {
        Ok(mut value) => {
            drop_keys(&mut value, &[&["auth", "requested_auth"], ignored].concat());
            serde_json::to_string_pretty(&value).expect("json")
        }
        Err(_) => text.to_string(),
    };
    let times =
        regex::Regex::new(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?")
            .expect("regex");
    let commits = regex::Regex::new(r"\b[0-9a-f]{12,64}\b").expect("regex");
    let text = times.replace_all(&text, "<time>");
    commits.replace_all(&text, "<hex>").into_owned()
}

fn drop_keys(value: &mut serde_json::Value, keys: &[&str]) {
    match value {
        serde_json::Value::Object(map) => {
            for key in keys {
                map.remove(*key);
            }
            map.values_mut().for_each(|v| drop_keys(v, keys));
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|v| drop_keys(v, keys)),
        _ => {}
    }
}

fn without_hints(stderr: &str) -> String {
    stderr
        .lines()
        .filter(|line| !line.starts_with("hint:"))
        .map(|line| format!("{line}\n"))
        .collect()
}

#[test]
fn every_state_command_prints_the_same_through_a_server() {
    let twins = Twins::start();
    let created = twins.same(
        "ci-bot",
        &["release", "create", "--image", "acme/helloworld=1.4.2"],
        0,
    );
    let rev = created.stdout.trim().to_string();
    assert!(rev.starts_with("r-"), "{}", created.stdout);
    twins.same("carol", &["release", "list"], 0);
    twins.same("carol", &["plan", &rev, "--to", "dev"], 0);
    let dev = twins.same("carol", &["promote", &rev, "--to", "dev", "--wait"], 0);
    assert!(
        dev.stderr.contains("dev: gate manifests passed after 0s"),
        "the gate's progress, followed through the event stream: {}",
        dev.stderr
    );
    twins.same("carol", &["promote", &rev, "--to", "qa", "--wait"], 0);
    twins.same("carol", &["plan", &rev, "--to", "prod"], 0);
    let blocked = twins.same(
        "carol",
        &["promote", &rev, "--to", "prod", "--wait", "-o", "json"],
        3,
    );
    assert_eq!(blocked.json()["state"], "blocked");
    assert_eq!(blocked.json()["requested_auth"]["kind"], "token");
    twins.same("carol", &["approve", "prod"], 2);
    twins.same(
        "alice",
        &["approve", "prod", "--comment", "load test ok"],
        0,
    );
    twins.same(
        "bob",
        &["reject", "prod", "--comment", "wait for the fix"],
        0,
    );
    twins.same("carol", &["status"], 0);
    twins.same("carol", &["status", "-o", "json"], 0);
    twins.same("bob", &["reject", "prod", "--withdraw"], 0);
    twins.same("bob", &["approve", "prod"], 0);
    // The server goes on by itself once nothing blocks; locally, reconcile does.
    twins.local("carol", &["reconcile"]).expect_code(0);
    wait_for("prod verified by the server", || {
        let status = twins.remote("carol", &["status", "-o", "json"]).json();
        status["stages"][2]["verified"] == true
    });
    twins.same("carol", &["status"], 0);
    twins.same("carol", &["history"], 0);
    // The server looked again after each review (checking → blocked); locally only reconcile
    // did. Everything but the transitions is the same.
    let history = twins.same_but(
        "carol",
        &["history", "prod", "-o", "json"],
        0,
        &["transitions"],
    );
    let history = history.json();
    let states: Vec<&str> = history[0]["transitions"]
        .as_array()
        .expect("transitions")
        .iter()
        .filter_map(|t| t["state"].as_str())
        .collect();
    assert_eq!(
        states[states.len() - 4..],
        ["writing", "syncing", "verifying", "succeeded"]
    );
    twins.same("carol", &["history", "nowhere"], 2);

    // Roles exist only in the service: locally, anyone may act.
    let refused = twins
        .remote("bob", &["pause", "--reason", "incident 7"])
        .expect_code(2);
    assert!(
        refused.stderr.contains("bob may not pause"),
        "{}",
        refused.stderr
    );
    twins.same(
        "dana",
        &["pause", "--stage", "qa", "--reason", "incident 7"],
        0,
    );
    twins.same("carol", &["promote", &rev, "--to", "qa", "--wait"], 3);
    twins.same("dana", &["resume", "--stage", "qa"], 0);
    // Resumed, the server runs the promotion the pause blocked; locally, reconcile does.
    twins.local("carol", &["reconcile"]).expect_code(0);
    wait_for(
        "the promotion the pause blocked to run in the server",
        || {
            let history = twins
                .remote("carol", &["history", "qa", "-o", "json"])
                .json();
            history[0]["state"] == "succeeded"
        },
    );

    let next = twins.same(
        "ci-bot",
        &["release", "create", "--image", "acme/helloworld=1.4.3"],
        0,
    );
    let next = next.stdout.trim().to_string();
    twins.same("carol", &["promote", &next, "--to", "dev", "--wait"], 0);
    let rollback = twins.same("carol", &["rollback", "dev"], 0);
    assert!(
        rollback.stdout.contains(&format!("{rev} verified in dev")),
        "{}",
        rollback.stdout
    );

    for repo in [&twins.local, &twins.served_repo] {
        repo.write("hold", "");
    }
    twins
        .local("carol", &["promote", &next, "--to", "qa"])
        .expect_code(0);
    let started = twins
        .remote("carol", &["promote", &next, "--to", "qa"])
        .expect_code(0);
    let id = started
        .stdout
        .split(':')
        .next()
        .unwrap_or_default()
        .to_string();
    assert!(id.starts_with("p-"), "{}", started.stdout);
    let refused = twins
        .remote("bob", &["abort", &id, "--reason", "bad build"])
        .expect_code(2);
    assert!(
        refused.stderr.contains("bob may not promote qa"),
        "{}",
        refused.stderr
    );
    twins.same("carol", &["abort", &id, "--reason", "bad build"], 0);
    for repo in [&twins.local, &twins.served_repo] {
        repo.remove("hold");
    }
    twins.same("carol", &["history", "qa"], 0);
    let local = twins.local("carol", &["audit", "verify"]).expect_code(0);
    let remote = twins.remote("carol", &["audit", "verify"]).expect_code(0);
    for run in [&local, &remote] {
        assert!(
            run.stdout.ends_with(" entries, chain intact\n"),
            "{}",
            run.stdout
        );
    }
    // The same entries, each step recorded as whoever took it: through the server, the steps
    // the service took itself are the service's.
    let actions = |run: Run| -> Vec<(String, String)> {
        run.json()
            .as_array()
            .expect("entries")
            .iter()
            .map(|e| (e["action"].to_string(), e["promotion"].to_string()))
            .collect()
    };
    let args = ["audit", "log", "--stage", "dev", "-o", "json"];
    assert_eq!(
        actions(twins.remote("carol", &args).expect_code(0)),
        actions(twins.local("carol", &args).expect_code(0))
    );
}

#[test]
fn a_token_kept_by_ferry_login_serves_later_commands() {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let repo = super::service_repo();
    let alice = token(&repo, "alice");
    let served = Served::start(&repo, &[], &[]);
    let config = tempfile::tempdir().expect("temp dir");
    let ferry = |args: &[&str]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"));
        crate::support::isolate_git(&mut command)
            .args(args)
            .current_dir(config.path())
            .env("XDG_CONFIG_HOME", config.path())
            .env("FERRY_SERVER", &served.url)
            .env_remove("FERRY_TOKEN")
            .env_remove("FERRY_USER")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        command
    };
    let no_token = Run::from_command(&mut ferry(&["status"])).expect_code(2);
    assert!(
        no_token
            .stderr
            .contains(&format!("ferry login {}", served.url)),
        "{}",
        no_token.stderr
    );
    let mut login = ferry(&["login", &served.url]).spawn().expect("ferry login");
    login
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{alice}\n").as_bytes())
        .expect("write the token");
    Run::from_command_output(login.wait_with_output().expect("ferry login")).expect_code(0);
    let file = config.path().join("ferry").join("credentials");
    let mode = std::fs::metadata(&file).expect("kept").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let status = Run::from_command(&mut ferry(&["status", "-o", "json"])).expect_code(0);
    assert_eq!(status.json()["stages"][0]["name"], "dev");
    let pause = Run::from_command(&mut ferry(&["pause", "--reason", "maintenance"])).expect_code(0);
    assert_eq!(pause.stdout, "every stage: paused by alice: maintenance\n");
}
