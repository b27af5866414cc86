//! `http` gates against real servers on 127.0.0.1.

use std::sync::atomic::{AtomicU32, Ordering};

use ferry::gates::{GateStatus, ObservationState, run_gate};
use ferry::pipeline::{GateKind, HeaderValue, HttpGate};
use serde_json::json;

use super::support::server::{Response, TestServer, closed_port};
use super::support::{Recorder, context, gate, timing_out_after};

fn expect_200(url: String) -> HttpGate {
    HttpGate {
        url,
        method: "GET".into(),
        status: 200,
        body_contains: None,
        json: None,
        headers: Vec::new(),
        insecure_skip_tls_verify: false,
    }
}

#[tokio::test]
async fn a_matching_status_passes() {
    let server = TestServer::start(|_| Response::text(200, "ok")).await;
    let spec = gate("smoke", GateKind::Http(expect_200(server.url("/healthz"))));
    let result = run_gate(&spec, &context(), &Recorder::default()).await;
    assert_eq!(result.status, GateStatus::Passed, "{}", result.reason);
    assert_eq!((result.kind.as_str(), result.observations), ("http", 1));
    assert_eq!(server.requests()[0].path, "/healthz");
}

#[tokio::test]
async fn a_status_mismatch_fails_at_the_timeout_with_what_was_answered() {
    let server = TestServer::start(|_| Response::text(404, "no such page")).await;
    let url = server.url("/healthz");
    let spec = timing_out_after(300, gate("smoke", GateKind::Http(expect_200(url.clone()))));
    let result = run_gate(&spec, &context(), &Recorder::default()).await;
    assert_eq!(result.status, GateStatus::Failed);
    assert_eq!(
        result.reason,
        format!("timed out after 300ms: {url} answered 404, expected 200")
    );
}

#[tokio::test]
async fn the_body_must_contain_the_text() {
    let server = TestServer::start(|r| match r.path.as_str() {
        "/ready" => Response::text(200, "database: connected\nstatus: ready"),
        _ => Response::text(200, "status: starting"),
    })
    .await;
    let ready = HttpGate {
        body_contains: Some("status: ready".into()),
        ..expect_200(server.url("/ready"))
    };
    let starting = HttpGate {
        body_contains: Some("status: ready".into()),
        ..expect_200(server.url("/starting"))
    };
    let passed = run_gate(
        &gate("ready", GateKind::Http(ready)),
        &context(),
        &Recorder::default(),
    )
    .await;
    let spec = timing_out_after(200, gate("starting", GateKind::Http(starting)));
    let failed = run_gate(&spec, &context(), &Recorder::default()).await;
    assert_eq!(passed.status, GateStatus::Passed, "{}", passed.reason);
    assert_eq!(failed.status, GateStatus::Failed);
    assert!(
        failed
            .reason
            .ends_with("does not contain \"status: ready\": status: starting"),
        "{}",
        failed.reason
    );
}

#[tokio::test]
async fn a_json_pointer_must_hold_the_expected_value() {
    let server = TestServer::start(|_| {
        Response::json(
            200,
            r#"{"checks":{"db":"up"},"version":"1.4.2","replicas":3}"#,
        )
    })
    .await;
    let version = HttpGate {
        json: Some(("/version".into(), json!("1.4.2"))),
        ..expect_200(server.url("/info"))
    };
    let replicas = HttpGate {
        json: Some(("/replicas".into(), json!(4))),
        ..expect_200(server.url("/info"))
    };
    let passed = run_gate(
        &gate("version", GateKind::Http(version)),
        &context(),
        &Recorder::default(),
    )
    .await;
    let spec = timing_out_after(200, gate("replicas", GateKind::Http(replicas)));
    let failed = run_gate(&spec, &context(), &Recorder::default()).await;
    assert_eq!(passed.status, GateStatus::Passed, "{}", passed.reason);
    assert_eq!(failed.status, GateStatus::Failed);
    assert!(
        failed.reason.ends_with("/replicas is 3, expected 4"),
        "{}",
        failed.reason
    );
}

#[tokio::test]
async fn headers_are_sent_with_values_from_the_callers_environment() {
    let server = TestServer::start(|r| match (r.header("authorization"), r.header("x-stage")) {
        (Some("Bearer s3cret"), Some("prod")) => Response::text(200, "ok"),
        _ => Response::text(401, "unauthorized"),
    })
    .await;
    let headers = vec![
        (
            "Authorization".to_string(),
            HeaderValue::FromEnv("SMOKE_TOKEN".into()),
        ),
        ("X-Stage".to_string(), HeaderValue::Literal("prod".into())),
    ];
    let http = HttpGate {
        method: "POST".into(),
        headers,
        ..expect_200(server.url("/smoke"))
    };
    let mut ctx = context();
    ctx.env.insert("SMOKE_TOKEN".into(), "Bearer s3cret".into());
    let result = run_gate(
        &gate("smoke", GateKind::Http(http.clone())),
        &ctx,
        &Recorder::default(),
    )
    .await;
    assert_eq!(result.status, GateStatus::Passed, "{}", result.reason);
    assert_eq!(server.requests()[0].method, "POST");

    let unset = run_gate(
        &gate("smoke", GateKind::Http(http)),
        &context(),
        &Recorder::default(),
    )
    .await;
    assert_eq!(unset.status, GateStatus::Errored);
    assert_eq!(
        unset.reason,
        "header Authorization: environment variable SMOKE_TOKEN is not set"
    );
    assert_eq!(
        server.requests().len(),
        1,
        "a gate with a missing header value sends nothing"
    );
}

#[tokio::test]
async fn a_server_that_fails_at_first_is_retried_until_it_passes() {
    let calls = AtomicU32::new(0);
    let server = TestServer::start(move |_| match calls.fetch_add(1, Ordering::SeqCst) {
        0 | 1 => Response::text(503, "warming up"),
        2 => Response::json(200, r#"{"status":"starting"}"#),
        _ => Response::json(200, r#"{"status":"ok"}"#),
    })
    .await;
    let http = HttpGate {
        json: Some(("/status".into(), json!("ok"))),
        ..expect_200(server.url("/healthz"))
    };
    let recorder = Recorder::default();
    let result = run_gate(&gate("smoke", GateKind::Http(http)), &context(), &recorder).await;
    assert_eq!(result.status, GateStatus::Passed, "{}", result.reason);
    assert_eq!(result.observations, 4);
    assert_eq!(
        recorder.states("smoke"),
        [
            ObservationState::Error,
            ObservationState::Failing,
            ObservationState::Passing
        ]
    );
    assert!(recorder.details("smoke")[0].ends_with("/healthz answered 503"));
    assert_eq!(recorder.finished(), ["smoke"]);
}

#[tokio::test]
async fn an_unreachable_url_errors_at_the_timeout_with_the_last_error() {
    let url = format!("http://127.0.0.1:{}/healthz", closed_port());
    let spec = timing_out_after(300, gate("smoke", GateKind::Http(expect_200(url.clone()))));
    let result = run_gate(&spec, &context(), &Recorder::default()).await;
    assert_eq!(result.status, GateStatus::Errored);
    let expected =
        format!("timed out after 300ms without a valid observation: failed to reach {url}: ");
    assert!(result.reason.starts_with(&expected), "{}", result.reason);
    assert!(
        result.reason.to_lowercase().contains("connection refused"),
        "{}",
        result.reason
    );
    assert!(result.observations >= 1);
}

#[tokio::test]
async fn an_answer_that_is_not_json_is_an_error() {
    let server = TestServer::start(|_| Response::text(200, "<html><body>OK</body></html>")).await;
    let url = server.url("/status");
    let http = HttpGate {
        json: Some(("/status".into(), json!("ok"))),
        ..expect_200(url.clone())
    };
    let result = run_gate(
        &timing_out_after(200, gate("status", GateKind::Http(http))),
        &context(),
        &Recorder::default(),
    )
    .await;
    assert_eq!(result.status, GateStatus::Errored);
    let expected = format!(
        "timed out after 200ms without a valid observation: {url} did not answer with JSON: expected value at line 1 column 1"
    );
    assert_eq!(result.reason, expected);
}
