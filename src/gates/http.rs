//! The `http` gate: a request whose status, body text or JSON value must match.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName};
use serde_json::Value;

use super::poll::{Outcome, Probe, Run};
use super::{GateContext, GateError, GateResult};
use crate::pipeline::{HeaderValue, HttpGate};

/// Runs an `http` gate.
pub(super) async fn run(run: Run<'_>, ctx: &GateContext, gate: &HttpGate) -> GateResult {
    let prepared = headers(&gate.headers, ctx)
        .and_then(|headers| client(gate.insecure_skip_tls_verify).map(|c| (c, headers)));
    match prepared {
        Ok((client, headers)) => {
            run.poll(&mut HttpProbe {
                gate,
                client,
                headers,
            })
            .await
        }
        Err(err) => run.finish(super::GateStatus::Errored, err.reason()),
    }
}

/// How long to wait for a connection before the observation counts as an error.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one request may take before it counts as an error and is retried.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// An HTTP client that verifies TLS certificates unless told not to.
pub(super) fn client(insecure_skip_tls_verify: bool) -> Result<reqwest::Client, GateError> {
    reqwest::Client::builder()
        .danger_accept_invalid_certs(insecure_skip_tls_verify)
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .user_agent(concat!("ferry/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(GateError::Client)
}

/// The request headers, with `fromEnv` values taken from the context's environment.
pub(super) fn headers(
    specs: &[(String, HeaderValue)],
    ctx: &GateContext,
) -> Result<HeaderMap, GateError> {
    let mut map = HeaderMap::new();
    for (name, value) in specs {
        let value = match value {
            HeaderValue::Literal(text) => text.clone(),
            HeaderValue::FromEnv(var) => {
                ctx.env
                    .get(var)
                    .cloned()
                    .ok_or_else(|| GateError::MissingEnv {
                        header: name.clone(),
                        var: var.clone(),
                    })?
            }
        };
        let invalid = || GateError::InvalidHeader {
            header: name.clone(),
        };
        let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid())?;
        let mut value = reqwest::header::HeaderValue::from_str(&value).map_err(|_| invalid())?;
        value.set_sensitive(is_secret(name));
        map.append(header, value);
    }
    Ok(map)
}

/// Whether a header usually carries a credential (kept out of debug output).
fn is_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name == "authorization"
        || name.contains("token")
        || name.contains("key")
        || name.contains("secret")
}

struct HttpProbe<'a> {
    gate: &'a HttpGate,
    client: reqwest::Client,
    headers: HeaderMap,
}

impl Probe for HttpProbe<'_> {
    async fn observe(&mut self) -> Outcome {
        let gate = self.gate;
        let method = match reqwest::Method::from_bytes(gate.method.as_bytes()) {
            Ok(method) => method,
            Err(_) => {
                return Outcome::Abort(GateError::Unexpected {
                    url: gate.url.clone(),
                    problem: format!("bad method {}", gate.method),
                });
            }
        };
        let request = self
            .client
            .request(method, &gate.url)
            .headers(self.headers.clone());
        let response = match request.send().await {
            Ok(response) => response,
            Err(source) => return Outcome::Error(GateError::request(&gate.url, source)),
        };
        let status = response.status().as_u16();
        let body = match response.text().await {
            Ok(body) => body,
            Err(source) => return Outcome::Error(GateError::request(&gate.url, source)),
        };
        judge(gate, status, &body)
    }
}

/// Judges one response: its status, then the body text, then the JSON value.
fn judge(gate: &HttpGate, status: u16, body: &str) -> Outcome {
    if status != gate.status {
        if status >= 500 {
            return Outcome::Error(GateError::ServerError {
                url: gate.url.clone(),
                status,
            });
        }
        return Outcome::Failing(format!(
            "{} answered {status}, expected {}",
            gate.url, gate.status
        ));
    }
    if let Some(needle) = &gate.body_contains
        && !body.contains(needle.as_str())
    {
        return Outcome::Failing(format!(
            "the body of {} does not contain {needle:?}: {}",
            gate.url,
            excerpt(body)
        ));
    }
    if let Some((pointer, expected)) = &gate.json
        && let Some(outcome) = judge_json(&gate.url, body, pointer, expected)
    {
        return outcome;
    }
    Outcome::Pass(passed(gate, status))
}

/// The failure of a JSON body check, or `None` when `pointer` holds `expected`.
fn judge_json(url: &str, body: &str, pointer: &str, expected: &Value) -> Option<Outcome> {
    let value: Value = match serde_json::from_str(body) {
        Ok(value) => value,
        Err(source) => {
            return Some(Outcome::Error(GateError::NotJson {
                url: url.to_string(),
                source,
            }));
        }
    };
    match value.pointer(pointer) {
        Some(found) if found == expected => None,
        Some(found) => Some(Outcome::Failing(format!(
            "{pointer} is {found}, expected {expected}"
        ))),
        None => Some(Outcome::Failing(format!(
            "the answer of {url} has no {pointer}"
        ))),
    }
}

fn passed(gate: &HttpGate, status: u16) -> String {
    let mut text = format!("{} {} answered {status}", gate.method, gate.url);
    if let Some(needle) = &gate.body_contains {
        text.push_str(&format!(", body contains {needle:?}"));
    }
    if let Some((pointer, expected)) = &gate.json {
        text.push_str(&format!(", {pointer} is {expected}"));
    }
    text
}

/// The start of a body, on one line, for messages.
fn excerpt(body: &str) -> String {
    let line: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(80) {
        Some((end, _)) => format!("{}…", &line[..end]),
        None if line.is_empty() => "(empty)".to_string(),
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn gate() -> HttpGate {
        HttpGate {
            url: "http://127.0.0.1:8080/healthz".into(),
            method: "GET".into(),
            status: 200,
            body_contains: None,
            json: None,
            headers: Vec::new(),
            insecure_skip_tls_verify: false,
        }
    }

    #[test]
    fn a_status_mismatch_is_failing_and_a_server_error_is_an_error() {
        assert!(
            matches!(judge(&gate(), 404, ""), Outcome::Failing(m) if m == "http://127.0.0.1:8080/healthz answered 404, expected 200")
        );
        assert!(matches!(
            judge(&gate(), 503, ""),
            Outcome::Error(GateError::ServerError { status: 503, .. })
        ));
        let expects_503 = HttpGate {
            status: 503,
            ..gate()
        };
        assert!(matches!(judge(&expects_503, 503, ""), Outcome::Pass(_)));
    }

    #[test]
    fn body_and_json_checks() {
        let body = HttpGate {
            body_contains: Some("ok".into()),
            ..gate()
        };
        assert!(matches!(judge(&body, 200, "all ok"), Outcome::Pass(_)));
        assert!(
            matches!(judge(&body, 200, "  starting\n up "), Outcome::Failing(m) if m.ends_with("does not contain \"ok\": starting up"))
        );
        let json = HttpGate {
            json: Some(("/status".into(), json!("ok"))),
            ..gate()
        };
        assert!(matches!(
            judge(&json, 200, r#"{"status":"ok"}"#),
            Outcome::Pass(_)
        ));
        assert!(
            matches!(judge(&json, 200, r#"{"status":"starting"}"#), Outcome::Failing(m) if m == "/status is \"starting\", expected \"ok\"")
        );
        assert!(matches!(
            judge(&json, 200, "<html>"),
            Outcome::Error(GateError::NotJson { .. })
        ));
    }

    #[test]
    fn excerpts_are_one_short_line() {
        assert_eq!(excerpt(""), "(empty)");
        assert_eq!(excerpt(&"x".repeat(100)).chars().count(), 81);
    }
}
