//! Notifications delivered by `ferry serve` itself: to a receiver this test runs, signed,
//! each with its own stable id, `promotion.blocked` naming the blockers and the approvers;
//! a delivery that failed before a SIGKILL arrives after the restart with the same id, once;
//! SIGTERM stops the worker without losing what it was sending.

use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::{Service, service_repo};
use crate::gates::support::server::{Request, Response, TestServer};
use crate::support::TestRepo;
use crate::support::server::{Served, wait_for};

const SECRET: &str = "s3cret-for-service-tests";

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

/// The service test repository with the webhooks above; the secret is written next to it,
/// never committed.
fn repo_with_webhooks(notifications: &str) -> TestRepo {
    let repo = service_repo();
    repo.write("policies/notifications.yaml", notifications);
    repo.commit("Notify ops and the chat");
    std::fs::write(repo.path().join("ops-secret"), format!("{SECRET}\n")).expect("secret");
    repo
}

/// A webhook receiver answering every request with one status, remembering each request
/// with the status it was answered with.
struct Receiver {
    server: TestServer,
    answered: Arc<Mutex<Vec<(Request, u16)>>>,
    _runtime: tokio::runtime::Runtime,
}

impl Receiver {
    fn start(status: u16) -> Receiver {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let answered = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&answered);
        let server = runtime.block_on(TestServer::start(move |request| {
            log.lock().expect("log").push((request.clone(), status));
            Response::text(status, if status == 200 { "ok" } else { "receiver down" })
        }));
        Receiver {
            server,
            answered,
            _runtime: runtime,
        }
    }

    /// The requests to `path`, with the status each was answered with.
    fn on(&self, path: &str) -> Vec<(Request, u16)> {
        self.answered
            .lock()
            .expect("log")
            .iter()
            .filter(|(r, _)| r.path == path)
            .cloned()
            .collect()
    }

    /// The chat webhook is named by host name, so that the server resolves a name (through
    /// the C library, statically linked in the `ferry` binary where the toolchain allows).
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("OPS_WEBHOOK_URL", self.server.url("/ops")),
            (
                "CHAT_WEBHOOK_URL",
                self.server
                    .url("/chat")
                    .replacen("127.0.0.1", "localhost", 1),
            ),
        ]
    }
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

fn body(request: &Request) -> Value {
    serde_json::from_slice(&request.body).expect("a JSON body")
}

fn event_of(request: &Request) -> (String, String) {
    let b = body(request);
    (
        b["event"].as_str().expect("event").to_string(),
        b["stage"].as_str().unwrap_or("-").to_string(),
    )
}

fn start(repo: TestRepo, receiver: &Receiver, args: &[&str]) -> Service {
    let env = receiver.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Service::start_with(repo, args, &env)
}

fn restart(service: &mut Service, receiver: &Receiver) {
    let env = receiver.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let served = Served::start(&service.repo, &[], &env);
    service.api = served.api();
    service.served = served;
}

#[test]
fn the_service_delivers_signed_notifications_naming_blockers_and_approvers() {
    let receiver = Receiver::start(200);
    let service = start(
        repo_with_webhooks(NOTIFICATIONS),
        &receiver,
        &["--public-url", "https://ferry.example.com/"],
    );
    let rev = service.release("1.4.2");
    service.wait_verified("qa", &rev);
    service
        .api
        .post(
            "/api/v1/promotions",
            Some(&service.alice),
            &json!({"revision": rev, "stage": "prod"}),
        )
        .expect_error(409, "blocked");
    wait_for("the blocked promotion at both webhooks", || {
        receiver.on("/chat").len() == 1
            && receiver
                .on("/ops")
                .iter()
                .any(|(r, _)| event_of(r).0 == "promotion.blocked")
    });

    let ops = receiver.on("/ops");
    let events: Vec<(String, String)> = ops.iter().map(|(r, _)| event_of(r)).collect();
    let expected: Vec<(String, String)> = [
        ("release.created", "-"),
        ("promotion.succeeded", "dev"),
        ("promotion.succeeded", "qa"),
        ("promotion.blocked", "prod"),
    ]
    .iter()
    .map(|(e, s)| (e.to_string(), s.to_string()))
    .collect();
    assert_eq!(events, expected);
    let mut ids = Vec::new();
    for (request, _) in &ops {
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

    let blocked = body(&ops[3].0);
    assert_eq!(blocked["revision"], rev.as_str());
    assert_eq!(blocked["actor"], "alice");
    assert_eq!(blocked["blockers"][0]["kind"], "approvals");
    assert_eq!(blocked["blockers"][0]["needed"], 2);
    assert_eq!(
        blocked["blockers"][0]["from"],
        json!(["group:release-managers"])
    );
    // The requester may not approve her own promotion.
    assert_eq!(blocked["approvers"], json!(["bob", "carol"]));
    let chat = receiver.on("/chat");
    assert_eq!(chat[0].0.header("X-Ferry-Signature-256"), None);
    let text = body(&chat[0].0)["text"].as_str().expect("text").to_string();
    assert!(
        text.starts_with(&format!("{rev} is blocked from prod (")),
        "{text}"
    );
    assert!(
        text.contains("Waiting for approval from bob, carol."),
        "{text}"
    );
    assert!(
        text.ends_with("<https://ferry.example.com/stages/prod|Open in ferry>"),
        "{text}"
    );

    for approver in [&service.bob, &service.carol] {
        service
            .api
            .post(
                "/api/v1/stages/prod/approvals",
                Some(approver),
                &json!({"revision": rev}),
            )
            .expect(200);
    }
    service.wait_verified("prod", &rev);
    wait_for("prod's success at the ops webhook", || {
        receiver
            .on("/ops")
            .iter()
            .any(|(r, _)| event_of(r) == ("promotion.succeeded".into(), "prod".into()))
    });
    let approvals: Vec<String> = receiver
        .on("/ops")
        .iter()
        .filter(|(r, _)| event_of(r).0 == "approval.granted")
        .map(|(r, _)| body(r)["actor"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(approvals, ["bob", "carol"]);
    // The service delivers; a second deliverer is refused.
    service
        .repo
        .ferry(&["notifications", "deliver"])
        .expect_code(3);
    let delivered = receiver.server.requests().len();
    let listed = service
        .repo
        .ferry(&["notifications", "--status", "delivered", "-o", "json"])
        .expect_code(0)
        .json();
    assert_eq!(listed.as_array().map(Vec::len), Some(delivered));
    let metrics = service
        .api
        .get("/metrics", Some(&service.victor))
        .expect(200)
        .text;
    let ops_delivered = receiver.on("/ops").len();
    assert!(
        metrics.lines().any(|l| l
            == format!(
                "ferry_notifications{{webhook=\"ops\",state=\"delivered\"}} {ops_delivered}"
            )),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l == "ferry_notifications{webhook=\"chat\",state=\"pending\"} 0"),
        "{metrics}"
    );
}

/// Only releases and pauses, to ops: the stories below follow one delivery.
const OPS_RELEASES: &str = "apiVersion: ferry/v1
kind: Notifications
metadata: {name: notifications}
spec:
  webhooks:
  - name: ops
    format: json
    urlFrom: {env: OPS_WEBHOOK_URL}
    secretFrom: {file: ops-secret}
    events: [release.created, stage.paused]
";

#[test]
fn a_delivery_that_failed_before_a_kill_arrives_after_the_restart_with_the_same_id_once() {
    let failing = Receiver::start(503);
    let mut service = start(repo_with_webhooks(OPS_RELEASES), &failing, &[]);
    let rev = service.release("1.4.2");
    wait_for("a first, failed attempt", || !failing.on("/ops").is_empty());
    let (first, status) = failing.on("/ops")[0].clone();
    assert_eq!(status, 503);
    assert_eq!(body(&first)["revision"], rev.as_str());
    let id = first
        .header("X-Ferry-Delivery")
        .expect("a delivery id")
        .to_string();
    let listed = |repo: &TestRepo| -> Value {
        let all = repo
            .ferry(&["notifications", "-o", "json"])
            .expect_code(0)
            .json();
        all.as_array()
            .expect("list")
            .iter()
            .find(|d| d["id"] == id.as_str())
            .cloned()
            .expect("the delivery is listed")
    };
    wait_for("the failed attempt to be recorded", || {
        listed(&service.repo)["attempts"].as_u64() >= Some(1)
    });
    let status = service.served.stop("KILL");
    assert_eq!(status.code(), None);

    // The restarted service sends to a receiver that takes it (what the killed one sent, even
    // in its last instant, went to the failing one).
    let receiver = Receiver::start(200);
    restart(&mut service, &receiver);
    let delivered = || {
        receiver
            .on("/ops")
            .iter()
            .filter(|(r, status)| *status == 200 && r.header("X-Ferry-Delivery") == Some(&id))
            .count()
    };
    wait_for("the delivery after the restart", || delivered() == 1);
    let (request, _) = receiver.on("/ops")[0].clone();
    assert_eq!(request.body, first.body, "the same payload, byte for byte");
    assert_eq!(
        request.header("X-Ferry-Signature-256"),
        Some(signature(&request.body).as_str())
    );

    // A later change is delivered too; by then the first one has not come again.
    service
        .api
        .post(
            "/api/v1/pause",
            Some(&service.alice),
            &json!({"stages": ["qa"], "reason": "incident 7"}),
        )
        .expect(200);
    wait_for("the pause at the webhook", || {
        receiver
            .on("/ops")
            .iter()
            .any(|(r, status)| *status == 200 && event_of(r).0 == "stage.paused")
    });
    assert_eq!(delivered(), 1, "delivered twice");
    let entry = listed(&service.repo);
    assert_eq!(entry["state"], "delivered");
    assert_eq!(
        entry["last_error"],
        "HTTP 503 Service Unavailable: receiver down"
    );
    assert!(entry["attempts"].as_u64() >= Some(2), "{entry}");
}

/// A webhook that accepts connections and never answers; counts the connections.
struct Silent {
    url: String,
    accepted: Arc<AtomicUsize>,
}

impl Silent {
    fn start() -> Silent {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let url = format!("http://{}/ops", listener.local_addr().expect("address"));
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&accepted);
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming().map_while(Result::ok) {
                count.fetch_add(1, Ordering::SeqCst);
                held.push(stream);
            }
        });
        Silent { url, accepted }
    }
}

#[test]
fn sigterm_stops_the_worker_and_the_unanswered_delivery_is_sent_after_the_restart() {
    let silent = Silent::start();
    let repo = repo_with_webhooks(OPS_RELEASES);
    let ci = super::token(&repo, "ci-bot");
    let mut served = Served::start(
        &repo,
        &["--grace", "2s"],
        &[("OPS_WEBHOOK_URL", silent.url.as_str())],
    );
    let rev = served
        .api()
        .post(
            "/api/v1/releases",
            Some(&ci),
            &json!({"images": {"acme/helloworld": "1.4.2"}}),
        )
        .expect(201)
        .body["id"]
        .as_str()
        .expect("id")
        .to_string();
    wait_for("the delivery to be under way", || {
        silent.accepted.load(Ordering::SeqCst) > 0
    });
    let status = served.stop("TERM");
    assert_eq!(status.code(), Some(0), "{}", served.logs());
    let listed = repo
        .ferry(&["notifications", "-o", "json"])
        .expect_code(0)
        .json();
    assert_eq!(listed[0]["state"], "pending", "{listed}");
    let id = listed[0]["id"].as_str().expect("id").to_string();

    let receiver = Receiver::start(200);
    let ops = receiver.server.url("/ops");
    let _served = Served::start(&repo, &[], &[("OPS_WEBHOOK_URL", ops.as_str())]);
    wait_for("the delivery after the restart", || {
        !receiver.on("/ops").is_empty()
    });
    let (request, _) = receiver.on("/ops")[0].clone();
    assert_eq!(request.header("X-Ferry-Delivery"), Some(id.as_str()));
    assert_eq!(body(&request)["revision"], rev.as_str());
}

#[test]
fn a_public_url_must_be_an_http_url() {
    let repo = service_repo();
    let run = repo
        .ferry(&["serve", "--public-url", "ferry.example.com"])
        .expect_code(2);
    assert!(
        run.stderr
            .contains("ferry.example.com is not an http:// or https:// URL"),
        "{}",
        run.stderr
    );
}
