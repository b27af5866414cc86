//! The API's stories: releases move on their own, prod waits for two approvals, every error
//! answers with its code, pause stops the line.

use serde_json::json;

use super::Service;
use crate::support::server::Events;

#[test]
fn a_release_over_http_moves_dev_then_qa_on_its_own() {
    let service = Service::start();
    let rev = service.release("1.4.2");
    service.wait_verified("dev", &rev);
    service.wait_verified("qa", &rev);
    let again = service
        .api
        .post(
            "/api/v1/releases",
            Some(&service.ci),
            &json!({"images": {"acme/helloworld": "1.4.2"}}),
        )
        .expect(200);
    assert_eq!(again.body["id"], rev.as_str());
    assert_eq!(again.body["created"], false);
    let one = service
        .api
        .get(&format!("/api/v1/releases/{rev}"), Some(&service.victor))
        .expect(200);
    assert_eq!(one.body["id"], rev.as_str());
    let list = service
        .api
        .get("/api/v1/releases", Some(&service.victor))
        .expect(200);
    assert_eq!(list.body.as_array().map(Vec::len), Some(1));
    let history = service
        .api
        .get("/api/v1/stages/dev/history?limit=5", Some(&service.victor))
        .expect(200);
    let promotion = history.body[0]["id"]
        .as_str()
        .expect("a promotion id")
        .to_string();
    assert_eq!(history.body[0]["state"], "succeeded");
    let detail = service
        .api
        .get(
            &format!("/api/v1/promotions/{promotion}"),
            Some(&service.victor),
        )
        .expect(200);
    assert_eq!(detail.body["gates"][0]["name"], "manifests");
    assert_eq!(service.repo.log("env/dev").len(), 1);
    assert_eq!(service.stage("prod")["revision"], serde_json::Value::Null);
}

#[test]
fn prod_is_verified_after_two_approvals_from_two_token_identities() {
    let service = Service::start();
    let rev = service.release("1.4.2");
    service.wait_verified("qa", &rev);
    let blocked = service
        .api
        .post(
            "/api/v1/promotions",
            Some(&service.alice),
            &json!({"revision": rev, "stage": "prod"}),
        )
        .expect_error(409, "blocked");
    let blockers = blocked.body["error"]["blockers"]
        .as_array()
        .expect("blockers")
        .clone();
    assert_eq!(blockers.len(), 1, "{}", blocked.text);
    assert_eq!(blockers[0]["kind"], "approvals");
    let own = service
        .api
        .post(
            "/api/v1/stages/prod/approvals",
            Some(&service.alice),
            &json!({"revision": rev}),
        )
        .expect_error(403, "forbidden");
    assert!(own.message().contains("alice"), "{}", own.text);
    let viewer = service
        .api
        .post(
            "/api/v1/stages/prod/approvals",
            Some(&service.victor),
            &json!({"revision": rev}),
        )
        .expect_error(403, "forbidden");
    assert!(viewer.message().contains("victor"), "{}", viewer.text);
    let first = service
        .api
        .post(
            "/api/v1/stages/prod/approvals",
            Some(&service.bob),
            &json!({"revision": rev, "comment": "lgtm"}),
        )
        .expect(200);
    assert_eq!(first.body["review"]["user"], "bob");
    service
        .api
        .post(
            "/api/v1/stages/prod/approvals",
            Some(&service.carol),
            &json!({"revision": rev}),
        )
        .expect(200);
    service.wait_verified("prod", &rev);
    let history = service
        .api
        .get("/api/v1/stages/prod/history", Some(&service.victor))
        .expect(200);
    let mut approved: Vec<String> = history.body[0]["approved_by"]
        .as_array()
        .expect("approved_by")
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_string())
        .collect();
    approved.sort();
    assert_eq!(approved, ["bob", "carol"]);
}

#[test]
fn each_error_answers_with_its_status_and_code() {
    let service = Service::start();
    let api = &service.api;
    let viewer = Some(service.victor.as_str());
    api.get("/api/v1/releases/r-000000000000", viewer)
        .expect_error(404, "not_found");
    api.get("/api/v1/stages/nowhere/history", viewer)
        .expect_error(404, "not_found");
    api.get("/api/v1/promotions/p-999999", viewer)
        .expect_error(404, "not_found");
    api.get("/api/v1/no/such/route", viewer)
        .expect_error(404, "not_found");
    let missing = api
        .post(
            "/api/v1/promotions",
            Some(&service.alice),
            &json!({"stage": "dev"}),
        )
        .expect_error(400, "bad_request");
    assert_eq!(missing.body["error"]["field"], "revision");
    let unknown = api
        .post(
            "/api/v1/releases",
            Some(&service.ci),
            &json!({"images": {}, "colour": "red"}),
        )
        .expect_error(400, "bad_request");
    assert_eq!(unknown.body["error"]["field"], "colour");
    let empty = api
        .post(
            "/api/v1/releases",
            Some(&service.ci),
            &json!({"images": {}}),
        )
        .expect_error(400, "bad_request");
    assert_eq!(empty.body["error"]["field"], "images");
    let image = api
        .post(
            "/api/v1/releases",
            Some(&service.ci),
            &json!({"images": {"acme/other": "1.0"}}),
        )
        .expect_error(400, "bad_request");
    assert!(image.message().contains("acme/other"), "{}", image.text);
    let limit = api
        .get("/api/v1/stages/dev/history?limit=0", viewer)
        .expect_error(400, "bad_request");
    assert_eq!(limit.body["error"]["field"], "limit");
    let plan = api
        .get("/api/v1/plan?stage=dev", viewer)
        .expect_error(400, "bad_request");
    assert_eq!(plan.body["error"]["field"], "revision");
    let huge =
        serde_json::to_vec(&json!({"images": {"acme/helloworld": "x".repeat(2 * 1024 * 1024)}}))
            .expect("json");
    api.post_raw(
        "/api/v1/releases",
        &[
            ("authorization", &format!("Bearer {}", service.ci)),
            ("content-type", "application/json"),
        ],
        huge,
    )
    .expect_error(413, "payload_too_large");
}

#[test]
fn a_promotion_into_a_stage_another_one_holds_is_busy() {
    let repo = super::service_repo();
    repo.edit(
        "policies/dev.yaml",
        "run: [\"sh\", \"-c\", \"",
        "run: [\"sh\", \"-c\", \"sleep 8; ",
    );
    repo.edit(
        "environments/pipeline.yaml",
        "{name: dev, overlay: environments/dev, auto: true, policy: dev}",
        "{name: dev, overlay: environments/dev, policy: dev}",
    );
    repo.commit("A slow dev gate, no auto promotion");
    let service = Service::start_with(repo, &[], &[]);
    let first = service.release("1.4.2");
    let second = service.release("1.4.3");
    service
        .api
        .post(
            "/api/v1/promotions",
            Some(&service.alice),
            &json!({"revision": first, "stage": "dev"}),
        )
        .expect(202);
    service.wait_state("dev", "verifying");
    service
        .api
        .post(
            "/api/v1/promotions",
            Some(&service.alice),
            &json!({"revision": second, "stage": "dev"}),
        )
        .expect_error(409, "busy");
    service.wait_verified("dev", &first);
}

#[test]
fn the_event_stream_carries_every_state_change() {
    let service = Service::start();
    let mut events = Events::open(&service.served.url, &service.victor);
    let rev = service.release("1.4.2");
    let created = events.wait_for("release.created");
    assert_eq!(created["revision"], rev.as_str());
    events.wait_for("promotion.writing");
    events.wait_for("promotion.succeeded");
}

#[test]
fn a_paused_stage_starts_nothing_until_resumed() {
    let service = Service::start();
    let refused = service
        .api
        .post(
            "/api/v1/pause",
            Some(&service.bob),
            &json!({"stages": ["qa"], "reason": "incident 7"}),
        )
        .expect_error(403, "forbidden");
    assert!(refused.message().contains("bob"), "{}", refused.text);
    service
        .api
        .post(
            "/api/v1/pause",
            Some(&service.alice),
            &json!({"stages": ["qa"]}),
        )
        .expect_error(400, "bad_request");
    let paused = service
        .api
        .post(
            "/api/v1/pause",
            Some(&service.alice),
            &json!({"stages": ["qa"], "reason": "incident 7"}),
        )
        .expect(200);
    assert_eq!(paused.body["stages"]["qa"]["by"], "alice");
    let rev = service.release("1.4.2");
    service.wait_verified("dev", &rev);
    service.wait_state("qa", "blocked");
    let blocked = service
        .api
        .post(
            "/api/v1/promotions",
            Some(&service.alice),
            &json!({"revision": rev, "stage": "qa"}),
        )
        .expect_error(409, "blocked");
    assert_eq!(
        blocked.body["error"]["blockers"][0],
        json!({"kind": "paused", "by": "alice", "reason": "incident 7"})
    );
    service
        .api
        .post(
            "/api/v1/resume",
            Some(&service.alice),
            &json!({"stages": ["qa"]}),
        )
        .expect(200);
    service.wait_verified("qa", &rev);
    let audit = service
        .api
        .get("/api/v1/audit?stage=qa", Some(&service.victor))
        .expect(200);
    let actions: Vec<&str> = audit
        .body
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .filter(|a| a.starts_with("stage."))
        .collect();
    assert_eq!(actions, ["stage.paused", "stage.resumed"]);
    let verify = service
        .api
        .get("/api/v1/audit/verify", Some(&service.victor))
        .expect(200);
    assert_eq!(verify.body["broken"], serde_json::Value::Null);
}
