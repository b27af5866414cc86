//! The service's life: it refuses local writes while it runs, stops cleanly, resumes after
//! SIGKILL, speaks TLS, and takes signed push webhooks.

use serde_json::json;

use super::{Service, service_repo};
use crate::support::server::{Api, Served, wait_for};

#[test]
fn local_writes_are_refused_while_the_service_holds_the_state() {
    let service = Service::start();
    let rev = service.release("1.4.2");
    let refused = service
        .repo
        .ferry(&["promote", &rev, "--to", "dev"])
        .expect_code(3);
    assert!(
        refused.stderr.contains(&service.served.url),
        "{}",
        refused.stderr
    );
    service
        .repo
        .ferry(&["release", "create", "--image", "acme/helloworld=2.0.0"])
        .expect_code(3);
    service.repo.ferry(&["reconcile"]).expect_code(3);
    service.repo.ferry(&["status", "-o", "json"]).expect_code(0);
}

#[test]
fn sigterm_drains_and_exits_zero_and_local_writes_work_again() {
    let mut service = Service::start();
    let rev = service.release("1.4.2");
    service.wait_verified("qa", &rev);
    let status = service.served.stop("TERM");
    assert_eq!(status.code(), Some(0), "{}", service.served.logs());
    let next = service.repo.release("1.4.3");
    assert!(next.starts_with("r-"));
}

#[test]
fn sigint_exits_zero() {
    let mut service = Service::start();
    let status = service.served.stop("INT");
    assert_eq!(status.code(), Some(0), "{}", service.served.logs());
}

#[test]
fn a_server_killed_during_a_slow_gate_resumes_and_writes_once() {
    let repo = service_repo();
    let marker = repo.path().join("gate-started");
    let gate = format!("touch {}; sleep 6; ", marker.display());
    repo.edit(
        "policies/dev.yaml",
        "run: [\"sh\", \"-c\", \"",
        &format!("run: [\"sh\", \"-c\", \"{gate}"),
    );
    repo.commit("A slow dev gate");
    let mut service = Service::start_with(repo, &[], &[]);
    let rev = service.release("1.4.2");
    wait_for("the dev gate to start", || marker.exists());
    let status = service.served.stop("KILL");
    assert_eq!(status.code(), None);
    let restarted = Served::start(&service.repo, &[], &[]);
    service.api = restarted.api();
    service.served = restarted;
    service.wait_verified("dev", &rev);
    assert_eq!(
        service.repo.log("env/dev").len(),
        1,
        "one commit on env/dev"
    );
    let history = service
        .api
        .get("/api/v1/stages/dev/history", Some(&service.victor))
        .expect(200);
    let promotions = history.body.as_array().expect("history");
    assert_eq!(promotions.len(), 1, "{}", history.text);
    assert_eq!(promotions[0]["state"], "succeeded");
    let states: Vec<&str> = promotions[0]["transitions"]
        .as_array()
        .expect("transitions")
        .iter()
        .filter_map(|t| t["state"].as_str())
        .collect();
    assert_eq!(
        states,
        [
            "requested",
            "checking",
            "writing",
            "syncing",
            "verifying",
            "succeeded"
        ],
        "each step recorded once"
    );
    let audit = service
        .api
        .get("/api/v1/audit?stage=dev", Some(&service.victor))
        .expect(200);
    let actions: Vec<&str> = audit
        .body
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(
        actions,
        [
            "promotion.requested",
            "promotion.checking",
            "promotion.writing",
            "promotion.syncing",
            "promotion.verifying",
            "gate.passed",
            "promotion.succeeded"
        ],
        "each step audited once"
    );
}

#[test]
fn health_and_readiness_need_no_token() {
    let service = Service::start();
    let health = service.api.get("/healthz", None).expect(200);
    assert!(health.body["heartbeat"].is_string(), "{}", health.text);
    service.api.get("/readyz", None).expect(200);
    let openapi = service
        .api
        .get("/api/v1/openapi.json", Some(&service.victor))
        .expect(200);
    assert!(
        openapi.body["paths"]["/api/v1/promotions"]["post"].is_object(),
        "{}",
        openapi.text
    );
    service.api.get("/api/v1/openapi.json", None).expect(401);
}

#[test]
fn the_service_speaks_tls_with_the_given_certificate() {
    let repo = service_repo();
    let key = rcgen::KeyPair::generate().expect("key");
    let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).expect("params");
    let cert = params.self_signed(&key).expect("certificate");
    let dir = tempfile::tempdir().expect("temp dir");
    let cert_path = dir.path().join("tls.crt");
    let key_path = dir.path().join("tls.key");
    std::fs::write(&cert_path, cert.pem()).expect("write cert");
    std::fs::write(&key_path, key.serialize_pem()).expect("write key");
    let viewer = super::token(&repo, "victor");
    let served = Served::start(
        &repo,
        &[
            "--tls-cert",
            cert_path.to_str().expect("path"),
            "--tls-key",
            key_path.to_str().expect("path"),
        ],
        &[],
    );
    assert!(
        served.url.starts_with("https://127.0.0.1:"),
        "{}",
        served.url
    );
    let api = Api::new(&served.url, Some(&cert.pem()));
    let status = api.get("/api/v1/status", Some(&viewer)).expect(200);
    assert_eq!(status.body["stages"][0]["name"], "dev");
}

#[test]
fn push_webhooks_are_taken_only_with_a_valid_signature() {
    let repo = service_repo();
    let dir = tempfile::tempdir().expect("temp dir");
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, "hook-secret\n").expect("write secret");
    let secret = secret_file.to_str().expect("path");
    let service = Service::start_with(repo, &[], &[("FERRY_WEBHOOK_SECRET_FILE", secret)]);
    let body = serde_json::to_vec(&json!({"ref": "refs/heads/main"})).expect("json");
    let signature = ferry::server::sign_webhook(b"hook-secret", &body);
    let hook = "/api/v1/hooks/git";
    let audit_before = service
        .api
        .get("/api/v1/audit", Some(&service.victor))
        .expect(200)
        .text;
    service
        .api
        .post_raw(hook, &[("x-hub-signature-256", "sha256=00")], body.clone())
        .expect_error(401, "unauthenticated");
    service
        .api
        .post_raw(hook, &[], body.clone())
        .expect_error(401, "unauthenticated");
    service
        .api
        .post_raw(hook, &[("x-gitlab-token", "wrong")], body.clone())
        .expect_error(401, "unauthenticated");
    let other = ferry::server::sign_webhook(b"not-the-secret", &body);
    service
        .api
        .post_raw(hook, &[("x-gitea-signature", &other)], body.clone())
        .expect_error(401, "unauthenticated");
    let tampered = serde_json::to_vec(&json!({"ref": "refs/heads/other"})).expect("json");
    service
        .api
        .post_raw(
            hook,
            &[("x-hub-signature-256", &format!("sha256={signature}"))],
            tampered,
        )
        .expect_error(401, "unauthenticated");
    let audit_after = service
        .api
        .get("/api/v1/audit", Some(&service.victor))
        .expect(200)
        .text;
    assert_eq!(
        audit_before, audit_after,
        "a refused delivery changed nothing"
    );
    let github = service
        .api
        .post_raw(
            hook,
            &[("x-hub-signature-256", &format!("sha256={signature}"))],
            body.clone(),
        )
        .expect(202);
    assert_eq!(github.body["forge"], "github");
    let gitea = service
        .api
        .post_raw(hook, &[("x-gitea-signature", &signature)], body.clone())
        .expect(202);
    assert_eq!(gitea.body["forge"], "gitea");
    let gitlab = service
        .api
        .post_raw(hook, &[("x-gitlab-token", "hook-secret")], body)
        .expect(202);
    assert_eq!(gitlab.body["forge"], "gitlab");
}

#[test]
fn healthz_turns_red_while_the_reconcile_loop_is_wedged_and_green_again() {
    let repo = service_repo();
    let viewer = super::token(&repo, "victor");
    let dir = tempfile::tempdir().expect("temp dir");
    let wedge = dir.path().join("wedge");
    let served = Served::start(
        &repo,
        &[],
        &[("FERRY_TEST_WEDGE_FILE", wedge.to_str().expect("path"))],
    );
    let api = served.api();
    api.get("/healthz", None).expect(200);
    std::fs::write(&wedge, "").expect("wedge the loop");
    // A change wakes the loop into a round that now hangs; its heartbeat ages past twice its
    // period (10 s).
    api.post(
        "/api/v1/pause",
        Some(&super::token(&repo, "alice")),
        &json!({"stages": ["qa"], "reason": "wake the loop"}),
    )
    .expect(200);
    wait_for("/healthz to turn red", || {
        api.get("/healthz", None).status == 503
    });
    let red = api.get("/healthz", None).expect(503);
    assert!(red.body["heartbeat"].is_string(), "{}", red.text);
    api.get("/readyz", None).expect(200);
    api.get("/api/v1/status", Some(&viewer)).expect(200);
    std::fs::remove_file(&wedge).expect("unwedge the loop");
    wait_for("/healthz to turn green again", || {
        api.get("/healthz", None).status == 200
    });
}

#[test]
fn a_push_to_the_remote_source_branch_is_fetched_without_a_webhook() {
    let daemon = crate::support::daemon::GitDaemon::start();
    let repo = service_repo();
    repo.edit(
        "environments/pipeline.yaml",
        "{name: dev, overlay: environments/dev, auto: true, policy: dev}",
        "{name: dev, overlay: environments/dev, policy: dev}",
    );
    repo.commit("dev waits to be asked");
    repo.git(&["remote", "add", "origin", &daemon.url()]);
    repo.git(&["push", "-q", "origin", "main"]);
    let service = Service::start_with(repo, &["--fetch-interval", "1s"], &[]);
    let mut events = crate::support::server::Events::open(&service.served.url, &service.victor);
    let rev = service.release("1.4.2");

    let elsewhere = tempfile::tempdir().expect("temp dir");
    let clone = elsewhere.path().join("clone");
    crate::support::git(
        elsewhere.path(),
        &["clone", "-q", &daemon.url(), clone.to_str().expect("path")],
    );
    let pipeline = clone.join("environments/pipeline.yaml");
    let text = std::fs::read_to_string(&pipeline).expect("read pipeline");
    std::fs::write(
        &pipeline,
        text.replace(
            "{name: dev, overlay: environments/dev, policy: dev}",
            "{name: dev, overlay: environments/dev, auto: true, policy: dev}",
        ),
    )
    .expect("write pipeline");
    crate::support::git(
        &clone,
        &["commit", "-q", "-am", "dev takes every release again"],
    );
    crate::support::git(&clone, &["push", "-q", "origin", "main"]);
    let pushed = crate::support::git(&clone, &["rev-parse", "HEAD"]);

    let fetched = events.wait_for("source.fetched");
    assert_eq!(fetched["revision"], pushed.as_str());
    service.wait_verified("dev", &rev);
    assert_eq!(service.repo.git(&["rev-parse", "main"]), pushed);
    assert_eq!(
        service
            .repo
            .git(&["status", "--porcelain", "--untracked-files=no"]),
        "",
        "the service's checkout followed its source branch"
    );
}
