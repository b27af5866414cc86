//! Notifications through the CLI: events written to the outbox with the changes they report,
//! delivered by `ferry notifications deliver` to a receiver this test runs, signed, each
//! with a stable id, retried after a failure, and never invented.

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::promote::{MON_0900, MON_0911, MON_0945};
use crate::gates::support::server::{Request, Response, TestServer};
use crate::support::{Run, TestRepo};

const SECRET: &str = "s3cret-for-tests";

const NOTIFICATIONS: &str = "apiVersion: ferry/v1
kind: Notifications
metadata: {name: notifications}
spec:
  webhooks:
  - name: ops
    format: json
    urlFrom: {env: OPS_WEBHOOK_URL}
    secretFrom: {file: ops-secret}
  - name: chat
    format: slack
    urlFrom: {env: CHAT_WEBHOOK_URL}
    events: [promotion.blocked]
    stages: [prod]
";

/// A receiver answering with the status in `status` (changeable while it runs).
struct Receiver {
    server: TestServer,
    status: Arc<AtomicU16>,
    _runtime: tokio::runtime::Runtime,
}

impl Receiver {
    fn start() -> Receiver {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let status = Arc::new(AtomicU16::new(200));
        let answer = Arc::clone(&status);
        let server = runtime.block_on(TestServer::start(move |_| {
            let status = answer.load(Ordering::SeqCst);
            Response::text(status, if status == 200 { "ok" } else { "receiver down" })
        }));
        Receiver {
            server,
            status,
            _runtime: runtime,
        }
    }

    fn on(&self, path: &str) -> Vec<Request> {
        self.server
            .requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }
}

fn repo_with_notifications() -> TestRepo {
    let repo = TestRepo::example();
    repo.write("policies/notifications.yaml", NOTIFICATIONS);
    repo.commit("Notify ops and the chat");
    // secretFrom names a file relative to where ferry runs (the repository root here); it is
    // written after the commit, as a secret is never committed.
    std::fs::write(repo.path().join("ops-secret"), format!("{SECRET}\n")).expect("secret");
    repo
}

fn deliver(repo: &TestRepo, receiver: &Receiver, now: &str) -> Run {
    Run::from_command(
        repo.command(&[
            "notifications",
            "deliver",
            "--ui-url",
            "https://ferry.example.com",
        ])
        .env("FERRY_TEST_NOW", now)
        .env("OPS_WEBHOOK_URL", receiver.server.url("/ops"))
        .env("CHAT_WEBHOOK_URL", receiver.server.url("/chat")),
    )
}

fn signature(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("key");
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

fn body(request: &Request) -> serde_json::Value {
    serde_json::from_slice(&request.body).expect("a JSON body")
}

#[test]
fn every_change_is_delivered_once_signed_with_a_stable_id() {
    let repo = repo_with_notifications();
    let rev = {
        let run = repo
            .ferry_at(
                MON_0900,
                "ci",
                &[
                    "release",
                    "create",
                    "--image",
                    "acme/helloworld=1.4.2",
                    "-o",
                    "json",
                ],
            )
            .expect_code(0);
        run.json()["id"].as_str().expect("id").to_string()
    };
    repo.promote(MON_0900, "carol", &rev, "dev").expect_code(0);
    repo.promote(MON_0911, "carol", &rev, "qa").expect_code(0);
    repo.promote(MON_0945, "carol", &rev, "prod").expect_code(3);
    // A re-check that finds prod blocked for the same reasons is no news.
    repo.ferry_at(MON_0945, "carol", &["reconcile"]);
    repo.ferry_at(MON_0945, "alice", &["approve", "prod", "--comment", "lgtm"])
        .expect_code(0);

    let receiver = Receiver::start();
    deliver(&repo, &receiver, MON_0945).expect_code(0);
    let ops = receiver.on("/ops");
    let events: Vec<(String, String)> = ops
        .iter()
        .map(|r| {
            let b = body(r);
            (
                b["event"].as_str().expect("event").to_string(),
                b["stage"].as_str().unwrap_or("-").to_string(),
            )
        })
        .collect();
    let expected = [
        ("release.created", "-"),
        ("promotion.succeeded", "dev"),
        ("promotion.succeeded", "qa"),
        ("promotion.blocked", "prod"),
        ("approval.granted", "prod"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(e, s)| (e.to_string(), s.to_string()))
        .collect();
    assert_eq!(events, expected);
    let mut ids = Vec::new();
    for request in &ops {
        let id = request.header("X-Ferry-Delivery").expect("a delivery id");
        assert_eq!(body(request)["delivery"], id);
        assert_eq!(
            request.header("X-Ferry-Signature-256"),
            Some(signature(&request.body).as_str()),
            "signed with the secret from the file"
        );
        assert_eq!(
            request.header("X-Ferry-Event"),
            body(request)["event"].as_str()
        );
        ids.push(id.to_string());
    }
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "{ids:?}");

    let created = body(&ops[0]);
    assert_eq!(created["revision"], rev.as_str());
    assert_eq!(created["actor"], "ci");
    assert_eq!(
        created["images"],
        serde_json::json!({"acme/helloworld": "acme/helloworld:1.4.2"})
    );
    let blocked = body(&ops[3]);
    assert_eq!(blocked["revision"], rev.as_str());
    assert_eq!(blocked["blockers"][0]["kind"], "approvals");
    assert_eq!(blocked["blockers"][0]["needed"], 2);
    assert_eq!(blocked["blockers"][0]["required"], 2);
    assert_eq!(
        blocked["blockers"][0]["message"],
        "needs 2 more approvals from group:release-managers"
    );
    assert_eq!(blocked["approvers"], serde_json::json!(["alice", "bob"]));
    let approval = body(&ops[4]);
    assert_eq!(approval["actor"], "alice");
    assert_eq!(approval["comment"], "lgtm");

    let chat = receiver.on("/chat");
    assert_eq!(
        chat.len(),
        1,
        "the chat wants only prod's blocked promotions"
    );
    assert_eq!(chat[0].header("X-Ferry-Signature-256"), None);
    let text = body(&chat[0])["text"].as_str().expect("text").to_string();
    assert!(
        text.starts_with(&format!("{rev} is blocked from prod (")),
        "{text}"
    );
    assert!(
        text.contains("Waiting for approval from alice, bob."),
        "{text}"
    );
    assert!(
        text.ends_with("<https://ferry.example.com/stages/prod|Open in ferry>"),
        "{text}"
    );

    // Delivered means delivered: another pass sends nothing.
    deliver(&repo, &receiver, MON_0945).expect_code(0);
    assert_eq!(receiver.server.requests().len(), 6);
    let listed = repo
        .ferry(&["notifications", "--status", "delivered", "-o", "json"])
        .expect_code(0)
        .json();
    assert_eq!(listed.as_array().expect("list").len(), 6);
}

#[test]
fn a_failing_receiver_gets_the_same_delivery_again_later() {
    let repo = repo_with_notifications();
    let run = repo
        .ferry_at(
            MON_0900,
            "ci",
            &[
                "release",
                "create",
                "--image",
                "acme/helloworld=1.4.2",
                "-o",
                "json",
            ],
        )
        .expect_code(0);
    let rev = run.json()["id"].as_str().expect("id").to_string();
    let receiver = Receiver::start();
    receiver.status.store(503, Ordering::SeqCst);
    deliver(&repo, &receiver, MON_0900).expect_code(0);
    let pending = repo
        .ferry(&["notifications", "-o", "json"])
        .expect_code(0)
        .json();
    assert_eq!(pending[0]["state"], "pending");
    assert_eq!(pending[0]["attempts"], 1);
    assert_eq!(
        pending[0]["last_error"],
        "HTTP 503 Service Unavailable: receiver down"
    );
    let table = repo.ferry(&["notifications"]).expect_code(0).stdout;
    assert!(
        table.contains("HTTP 503 Service Unavailable: receiver down"),
        "{table}"
    );

    // Not yet due: the first retry waits at least a second.
    receiver.status.store(200, Ordering::SeqCst);
    deliver(&repo, &receiver, MON_0900).expect_code(0);
    assert_eq!(receiver.on("/ops").len(), 1);
    deliver(&repo, &receiver, "2026-11-30T09:00:05Z").expect_code(0);
    let ops = receiver.on("/ops");
    assert_eq!(ops.len(), 2);
    assert_eq!(
        ops[0].header("X-Ferry-Delivery"),
        ops[1].header("X-Ferry-Delivery")
    );
    assert_eq!(ops[0].body, ops[1].body, "the same payload, byte for byte");
    assert_eq!(body(&ops[1])["revision"], rev.as_str());
    let delivered = repo
        .ferry(&["notifications", "-o", "json"])
        .expect_code(0)
        .json();
    assert_eq!(delivered[0]["state"], "delivered");
    assert_eq!(delivered[0]["attempts"], 2);
}

#[test]
fn a_delivery_nobody_takes_for_a_day_fails_with_the_last_error() {
    let repo = repo_with_notifications();
    repo.ferry_at(
        MON_0900,
        "ci",
        &["release", "create", "--image", "acme/helloworld=1.4.2"],
    )
    .expect_code(0);
    let receiver = Receiver::start();
    receiver.status.store(500, Ordering::SeqCst);
    deliver(&repo, &receiver, MON_0900).expect_code(0);
    deliver(&repo, &receiver, "2026-12-01T09:00:00Z").expect_code(0);
    let failed = repo
        .ferry(&["notifications", "--status", "failed", "-o", "json"])
        .expect_code(0)
        .json();
    assert_eq!(failed.as_array().expect("list").len(), 1);
    assert_eq!(failed[0]["attempts"], 2);
    assert_eq!(
        failed[0]["last_error"],
        "HTTP 500 Internal Server Error: receiver down"
    );
    deliver(&repo, &receiver, "2026-12-02T09:00:00Z").expect_code(0);
    assert_eq!(
        receiver.on("/ops").len(),
        2,
        "a failed delivery is not tried again"
    );
}

#[test]
fn validate_names_bad_notification_files() {
    let repo = TestRepo::example();
    repo.write(
        "policies/notifications.yaml",
        &NOTIFICATIONS.replace("events: [promotion.blocked]", "events: [promotion.blokced]"),
    );
    let run = repo.ferry(&["validate"]).expect_code(2);
    assert!(
        run.stderr.contains("policies/notifications.yaml:13:14: spec.webhooks[1].events[0]: unknown event `promotion.blokced`"),
        "{}",
        run.stderr
    );
    repo.write(
        "policies/notifications.yaml",
        &NOTIFICATIONS.replace("stages: [prod]", "stages: [production]"),
    );
    let run = repo.ferry(&["validate"]).expect_code(2);
    assert!(
        run.stderr
            .contains("spec.webhooks[1].stages[0]: unknown stage `production`"),
        "{}",
        run.stderr
    );
    repo.write("policies/notifications.yaml", NOTIFICATIONS);
    repo.ferry(&["validate"]).expect_code(0);
}

#[test]
fn pausing_and_resuming_are_announced_with_their_scope() {
    let repo = repo_with_notifications();
    repo.ferry_at(
        MON_0900,
        "dana",
        &["pause", "--stage", "prod", "--reason", "incident 42"],
    )
    .expect_code(0);
    repo.ferry_at(MON_0911, "dana", &["resume", "--reason", "fixed"])
        .expect_code(0);
    repo.ferry_at(MON_0945, "dana", &["pause", "--reason", "all hands"])
        .expect_code(0);
    let receiver = Receiver::start();
    deliver(&repo, &receiver, MON_0945).expect_code(0);
    let events: Vec<serde_json::Value> = receiver
        .on("/ops")
        .iter()
        .map(|r| {
            let b = body(r);
            serde_json::json!([b["event"], b["stage"], b["scope"], b["reason"], b["actor"]])
        })
        .collect();
    assert_eq!(
        events,
        [
            serde_json::json!(["stage.paused", "prod", "prod", "incident 42", "dana"]),
            serde_json::json!(["stage.resumed", "prod", "prod", "fixed", "dana"]),
            serde_json::json!(["stage.paused", null, "all", "all hands", "dana"]),
        ]
    );
    assert!(
        receiver.on("/chat").is_empty(),
        "the chat wants blocked promotions only"
    );
}
