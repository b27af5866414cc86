//! Who may call the API: tokens, roles, approvals bound to the authenticated identity, and
//! secrets that never leave the caller.

use serde_json::json;

use super::{Service, token};

#[test]
fn a_missing_garbage_expired_or_revoked_token_is_unauthenticated() {
    let service = Service::start();
    let api = &service.api;
    let none = api
        .get("/api/v1/status", None)
        .expect_error(401, "unauthenticated");
    assert!(none.message().contains("Bearer"), "{}", none.text);
    api.get("/api/v1/status", Some("garbage"))
        .expect_error(401, "unauthenticated");
    let last = if service.bob.ends_with('0') { '1' } else { '0' };
    let forged = format!("{}{last}", &service.bob[..service.bob.len() - 1]);
    api.get("/api/v1/status", Some(&forged))
        .expect_error(401, "unauthenticated");
    let expiring = service
        .repo
        .ferry(&[
            "token",
            "create",
            "--user",
            "eve",
            "--expires",
            "1s",
            "-o",
            "json",
        ])
        .expect_code(0)
        .json();
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let expired = api
        .get("/api/v1/status", expiring["token"].as_str())
        .expect_error(401, "unauthenticated");
    assert!(expired.message().contains("expired"), "{}", expired.text);
    let doomed = service
        .repo
        .ferry(&["token", "create", "--user", "mallory", "-o", "json"])
        .expect_code(0)
        .json();
    let secret = doomed["token"].as_str().expect("token");
    api.get("/api/v1/status", Some(secret)).expect(200);
    let id = doomed["id"].as_str().expect("id");
    service.repo.ferry(&["token", "revoke", id]).expect_code(0);
    crate::support::server::wait_for("the revoked token to be refused", || {
        api.get("/api/v1/status", Some(secret)).status == 401
    });
    for path in ["/healthz", "/readyz"] {
        api.get(path, None).expect(200);
    }
}

#[test]
fn each_role_is_refused_what_it_may_not_do_with_the_reason() {
    let service = Service::start();
    let api = &service.api;
    let viewer = Some(service.victor.as_str());
    let release = api
        .post(
            "/api/v1/releases",
            viewer,
            &json!({"images": {"acme/helloworld": "1.4.2"}}),
        )
        .expect_error(403, "forbidden");
    assert!(
        release.message().contains("victor may not create releases"),
        "{}",
        release.text
    );
    let rev = service.release("1.4.2");
    service.wait_verified("dev", &rev);
    let promote = api
        .post(
            "/api/v1/promotions",
            Some(&service.ci),
            &json!({"revision": rev, "stage": "prod"}),
        )
        .expect_error(403, "forbidden");
    assert!(
        promote.message().contains("ci-bot may not promote prod"),
        "{}",
        promote.text
    );
    api.post("/api/v1/stages/dev/rollback", viewer, &json!({}))
        .expect_error(403, "forbidden");
    api.post("/api/v1/pause", Some(&service.ci), &json!({"reason": "no"}))
        .expect_error(403, "forbidden");
    api.post("/api/v1/resume", viewer, &json!({}))
        .expect_error(403, "forbidden");
    let approve = api
        .post(
            "/api/v1/stages/prod/approvals",
            Some(&service.ci),
            &json!({"revision": rev}),
        )
        .expect_error(403, "forbidden");
    assert!(approve.message().contains("ci-bot"), "{}", approve.text);
}

#[test]
fn a_token_approves_only_as_its_own_user() {
    let service = Service::start();
    let rev = service.release("1.4.2");
    service.wait_verified("qa", &rev);
    service
        .api
        .post(
            "/api/v1/stages/prod/approvals",
            Some(&service.bob),
            &json!({"revision": rev, "user": "carol"}),
        )
        .expect_error(400, "bad_request");
    service
        .api
        .post(
            "/api/v1/stages/prod/approvals",
            Some(&service.bob),
            &json!({"revision": rev}),
        )
        .expect(200);
    let audit = service
        .api
        .get("/api/v1/audit?stage=prod", Some(&service.victor))
        .expect(200);
    let reviewers: Vec<&str> = audit
        .body
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["action"].as_str().is_some_and(|a| a.contains("approv")))
        .filter_map(|e| e["actor"].as_str())
        .collect();
    assert_eq!(reviewers, ["bob"]);
}

#[test]
fn plain_tokens_never_reach_the_state_the_logs_or_the_audit_log() {
    let service = Service::start();
    let rev = service.release("1.4.2");
    service.wait_verified("qa", &rev);
    service
        .api
        .post(
            "/api/v1/stages/prod/approvals",
            Some(&service.bob),
            &json!({"revision": rev}),
        )
        .expect(200);
    service
        .api
        .get("/api/v1/status", Some("ferry_not_a_real_token"))
        .expect(401);
    let extra = token(&service.repo, "zoe");
    let audit = service
        .api
        .get("/api/v1/audit", Some(&service.victor))
        .expect(200)
        .text;
    let logs = service.served.logs();
    for secret in [
        &service.ci,
        &service.alice,
        &service.bob,
        &service.carol,
        &service.victor,
        &extra,
    ] {
        assert!(
            !audit.contains(secret.as_str()),
            "a token is in the audit log"
        );
        assert!(
            !logs.contains(secret.as_str()),
            "a token is in the server's log"
        );
        assert_no_file_contains(&service.repo.path().join(".ferry"), secret);
    }
}

fn assert_no_file_contains(dir: &std::path::Path, needle: &str) {
    for entry in std::fs::read_dir(dir).expect("read state dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            assert_no_file_contains(&path, needle);
        } else {
            let bytes = std::fs::read(&path).unwrap_or_default();
            let found = bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
            assert!(!found, "a plain token is stored in {}", path.display());
        }
    }
}
