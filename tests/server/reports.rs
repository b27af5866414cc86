//! `ferry metrics` against a running server prints, byte for byte, what it prints locally on
//! the same state; its errors end with the same exit codes.

use super::{service_repo, token};
use crate::support::server::Served;
use crate::support::{Run, TestRepo};

/// The time every run (and the server) takes as now.
const NOW: &str = "2026-11-30T09:45:00Z";

const CHECK: &str =
    r#"run: ["sh", "-c", "grep -rq 'image: acme/helloworld[:@]' \"$FERRY_MANIFESTS\""]"#;
const FAIL_143: &str = r#"run: ["sh", "-c", "! grep -rq 'helloworld:1.4.3' \"$FERRY_MANIFESTS\""]"#;

fn release(repo: &TestRepo, at: &str, tag: &str) -> String {
    let image = format!("acme/helloworld={tag}");
    let run = repo
        .ferry_at(
            at,
            "ci-bot",
            &["release", "create", "--image", &image, "-o", "json"],
        )
        .expect_code(0);
    run.json()["id"].as_str().expect("id").to_string()
}

/// A history of dev with a deployment, a failure, a rollback, a second deployment and a
/// rollback of it; then the whole line paused, so that the server starts nothing and the
/// state stays the same for every run.
fn history_repo() -> TestRepo {
    let repo = service_repo();
    repo.edit("policies/dev.yaml", CHECK, FAIL_143);
    repo.commit("dev refuses 1.4.3");
    let r1 = release(&repo, "2026-11-30T09:00:00Z", "1.4.2");
    repo.promote("2026-11-30T09:00:00Z", "carol", &r1, "dev")
        .expect_code(0);
    let r2 = release(&repo, "2026-11-30T09:10:00Z", "1.4.3");
    repo.promote("2026-11-30T09:12:00Z", "carol", &r2, "dev")
        .expect_code(1);
    repo.ferry_at("2026-11-30T09:20:00Z", "carol", &["rollback", "dev"])
        .expect_code(0);
    let r3 = release(&repo, "2026-11-30T09:30:00Z", "1.4.4");
    repo.promote("2026-11-30T09:35:00Z", "carol", &r3, "dev")
        .expect_code(0);
    repo.ferry_at("2026-11-30T09:40:00Z", "carol", &["rollback", "dev"])
        .expect_code(0);
    repo.ferry_at(
        "2026-11-30T09:41:00Z",
        "alice",
        &["pause", "--reason", "hold still"],
    )
    .expect_code(0);
    repo
}

/// `ferry ARGS` at [`NOW`] against `server` with `token` (none: no token at all), with a
/// config home of its own so that no kept login is used.
fn remote(repo: &TestRepo, server: &str, token: Option<&str>, args: &[&str]) -> Run {
    let config = tempfile::tempdir().expect("tempdir");
    let mut command = repo.command(args);
    command
        .env("FERRY_SERVER", server)
        .env("FERRY_TEST_NOW", NOW)
        .env("XDG_CONFIG_HOME", config.path())
        .env_remove("FERRY_TOKEN");
    if let Some(token) = token {
        command.env("FERRY_TOKEN", token);
    }
    Run::from_command(&mut command)
}

#[test]
fn metrics_from_a_server_are_byte_identical_to_local_ones() {
    let repo = history_repo();
    let victor = token(&repo, "victor");
    let served = Served::start(&repo, &[], &[("FERRY_TEST_NOW", NOW)]);
    let url = served.url.clone();

    for args in [
        &["metrics", "--since", "1h"][..],
        &["metrics", "--since", "1h", "-o", "json"],
        &["metrics", "--since", "10m", "-o", "json"],
        &["metrics"],
    ] {
        let local = repo.ferry_at(NOW, "victor", args).expect_code(0);
        let there = remote(&repo, &url, Some(&victor), args).expect_code(0);
        assert_eq!(there.stdout, local.stdout, "ferry {}", args.join(" "));
    }
    // The numbers are the history's, not empty ones that happen to match.
    let report = remote(
        &repo,
        &url,
        Some(&victor),
        &["metrics", "--since", "1h", "-o", "json"],
    )
    .expect_code(0)
    .json();
    assert_eq!(report["since"], "2026-11-30T08:45:00Z");
    assert_eq!(report["until"], "2026-11-30T09:45:00Z");
    assert_eq!(report["stages"][0]["stage"], "dev");
    assert_eq!(report["stages"][0]["deployments"], 4);
    assert_eq!(report["stages"][0]["change_failures"], 2);
    assert_eq!(report["stages"][0]["change_failure_rate"], 0.4);
    assert_eq!(report["stages"][0]["time_to_restore_median_seconds"], 240.0);

    // A bad window: the server names the field, the CLI exits 2 as it does locally.
    let local = repo
        .ferry_at(NOW, "victor", &["metrics", "--since", "soon"])
        .expect_code(2);
    assert!(
        local.stderr.contains("invalid duration `soon`"),
        "{}",
        local.stderr
    );
    let there = remote(&repo, &url, Some(&victor), &["metrics", "--since", "soon"]).expect_code(2);
    assert!(
        there.stderr.contains("since: invalid duration `soon`"),
        "{}",
        there.stderr
    );
    let api = served.api();
    let reply = api
        .get("/api/v1/metrics/dora?since=0s", Some(&victor))
        .expect_error(400, "bad_request");
    assert_eq!(reply.body["error"]["field"], "since");
    assert_eq!(reply.message(), "since: the window `0s` is empty");
    api.get("/api/v1/metrics/dora?window=1h", Some(&victor))
        .expect_error(400, "bad_request");

    // Without a token the server refuses (401), and so does the CLI with a refused token.
    api.get("/api/v1/metrics/dora", None)
        .expect_error(401, "unauthenticated");
    let refused = remote(&repo, &url, Some("ferry_not-a-token"), &["metrics"]).expect_code(2);
    assert!(
        refused.stderr.contains(&format!(
            "hint: the server refused the token: `ferry login {url}`"
        )),
        "{}",
        refused.stderr
    );
    let none = remote(&repo, &url, None, &["metrics"]).expect_code(2);
    assert!(
        none.stderr.contains(&format!("no token for {url}")),
        "{}",
        none.stderr
    );

    // The route is described.
    let openapi = api.get("/api/v1/openapi.json", Some(&victor)).expect(200);
    let params = &openapi.body["paths"]["/api/v1/metrics/dora"]["get"]["parameters"];
    assert_eq!(params[0]["name"], "since");
}

const NOTIFICATIONS: &str = "apiVersion: ferry/v1
kind: Notifications
metadata: {name: notifications}
spec:
  webhooks:
  - name: ops
    format: slack
    urlFrom: {env: OPS_WEBHOOK_URL}
    events: [promotion.succeeded, promotion.failed]
  - name: audit
    format: slack
    urlFrom: {env: AUDIT_WEBHOOK_URL}
    events: [promotion.succeeded]
";

#[test]
fn notifications_from_a_server_are_byte_identical_to_local_ones_for_admins_only() {
    let repo = service_repo();
    repo.write("policies/notifications.yaml", NOTIFICATIONS);
    repo.commit("Notify ops and the audit trail");
    let r1 = release(&repo, "2026-11-29T09:00:00Z", "1.4.2");
    repo.promote("2026-11-29T09:00:00Z", "carol", &r1, "dev")
        .expect_code(0);
    let r2 = release(&repo, "2026-11-30T09:30:00Z", "1.4.3");
    repo.promote("2026-11-30T09:30:00Z", "carol", &r2, "dev")
        .expect_code(0);
    // One pass at NOW: the audit receiver takes its deliveries; ops has no URL, so its
    // delivery of yesterday is given up (failed) and today's waits for a retry (pending),
    // due after NOW, the server's fixed time: the server attempts nothing more.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let receiver = runtime.block_on(crate::gates::support::server::TestServer::start(|_| {
        crate::gates::support::server::Response::text(200, "ok")
    }));
    Run::from_command(
        repo.command(&["notifications", "deliver"])
            .env("FERRY_TEST_NOW", NOW)
            .env("AUDIT_WEBHOOK_URL", receiver.url("/audit"))
            .env_remove("OPS_WEBHOOK_URL"),
    )
    .expect_code(0);
    // Nothing for the server to start (qa would take r2), so the outbox stays as it is.
    repo.ferry_at(NOW, "alice", &["pause", "--reason", "hold still"])
        .expect_code(0);
    let alice = token(&repo, "alice");
    let victor = token(&repo, "victor");
    let served = Served::start(&repo, &[], &[("FERRY_TEST_NOW", NOW)]);
    let url = served.url.clone();

    let listed = repo
        .ferry_at(NOW, "alice", &["notifications", "-o", "json"])
        .expect_code(0)
        .json();
    let states: Vec<(&str, &str)> = listed
        .as_array()
        .expect("deliveries")
        .iter()
        .map(|d| {
            (
                d["webhook"].as_str().unwrap_or(""),
                d["state"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            ("audit", "delivered"),
            ("ops", "pending"),
            ("audit", "delivered"),
            ("ops", "failed")
        ]
    );
    assert_eq!(
        listed[3]["last_error"],
        "webhook ops: environment variable OPS_WEBHOOK_URL is not set"
    );

    for args in [
        &["notifications"][..],
        &["notifications", "-o", "json"],
        &["notifications", "--status", "failed"],
        &["notifications", "--status", "delivered", "-o", "json"],
        &["notifications", "--limit", "1", "-o", "json"],
    ] {
        let local = repo.ferry_at(NOW, "alice", args).expect_code(0);
        let there = remote(&repo, &url, Some(&alice), args).expect_code(0);
        assert_eq!(there.stdout, local.stdout, "ferry {}", args.join(" "));
    }

    // A viewer may not read the outbox through the server; no token is 401.
    let denied = remote(&repo, &url, Some(&victor), &["notifications"]).expect_code(2);
    assert!(denied.stderr.contains("victor"), "{}", denied.stderr);
    let api = served.api();
    api.get("/api/v1/notifications", Some(&victor))
        .expect_error(403, "forbidden");
    api.get("/api/v1/notifications", None)
        .expect_error(401, "unauthenticated");
    let reply = api
        .get("/api/v1/notifications?status=lost", Some(&alice))
        .expect_error(400, "bad_request");
    assert_eq!(reply.body["error"]["field"], "status");
    // Delivering stays with the server that runs.
    let refused = remote(&repo, &url, Some(&alice), &["notifications", "deliver"]).expect_code(2);
    assert!(
        refused
            .stderr
            .contains("`ferry notifications deliver` does not run against a server"),
        "{}",
        refused.stderr
    );
}
