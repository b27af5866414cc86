//! The `prometheus` gate: an instant query whose every sample must meet a condition,
//! continuously for the `for` duration, counted from observations after the commit was applied.

use chrono::{DateTime, TimeZone, Utc};
use reqwest::header::HeaderMap;
use serde_json::Value;

use super::poll::{Outcome, Probe, Run, human};
use super::{GateContext, GateError, GateResult, GateStatus, http};
use crate::pipeline::PrometheusGate;

/// Runs a `prometheus` gate.
pub(super) async fn run(run: Run<'_>, ctx: &GateContext, gate: &PrometheusGate) -> GateResult {
    let prepared = http::headers(&gate.headers, ctx)
        .and_then(|h| http::client(gate.insecure_skip_tls_verify).map(|c| (c, h)));
    let (client, headers) = match prepared {
        Ok(prepared) => prepared,
        Err(err) => return run.finish(GateStatus::Errored, err.reason()),
    };
    let endpoint = format!("{}/api/v1/query", gate.url.trim_end_matches('/'));
    let mut probe = PrometheusProbe {
        gate,
        client,
        headers,
        endpoint,
        applied_at: ctx.applied_at,
        holding_since: None,
    };
    run.poll(&mut probe).await
}

struct PrometheusProbe<'a> {
    gate: &'a PrometheusGate,
    client: reqwest::Client,
    headers: HeaderMap,
    endpoint: String,
    applied_at: DateTime<Utc>,
    /// When the condition was first seen holding in the current unbroken run.
    holding_since: Option<DateTime<Utc>>,
}

/// One sample of the query result.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    labels: String,
    value: f64,
}

/// An evaluated query: when Prometheus evaluated it, and its samples.
#[derive(Debug)]
struct Evaluation {
    at: Option<DateTime<Utc>>,
    samples: Vec<Sample>,
}

impl Probe for PrometheusProbe<'_> {
    async fn observe(&mut self) -> Outcome {
        let evaluation = match self.query().await {
            Ok(evaluation) => evaluation,
            Err(err @ GateError::Query { .. }) if is_bad_query(&err) => return Outcome::Abort(err),
            Err(err) => return Outcome::Error(err),
        };
        let at = evaluation.at.unwrap_or_else(Utc::now);
        if at < self.applied_at {
            self.holding_since = None;
            return Outcome::Pending(format!("evaluated at {at}, before the commit was applied"));
        }
        self.judge(at, &evaluation.samples)
    }
}

/// A query Prometheus cannot parse never gets better: it ends the gate.
fn is_bad_query(err: &GateError) -> bool {
    matches!(err, GateError::Query { error_type, .. } if error_type == "bad_data")
}

impl PrometheusProbe<'_> {
    async fn query(&self) -> Result<Evaluation, GateError> {
        let url = || self.gate.url.clone();
        let request = self
            .client
            .get(&self.endpoint)
            .headers(self.headers.clone())
            .query(&[("query", &self.gate.query)]);
        let response = request
            .send()
            .await
            .map_err(|source| GateError::request(&self.gate.url, source))?;
        let status = response.status().as_u16();
        let body = response
            .text()
            .await
            .map_err(|source| GateError::request(&self.gate.url, source))?;
        let answer: Value = match serde_json::from_str(&body) {
            Ok(answer) => answer,
            Err(_) if status >= 500 => return Err(GateError::ServerError { url: url(), status }),
            Err(source) => return Err(GateError::NotJson { url: url(), source }),
        };
        if answer["status"] == "error" {
            let text = |field: &str| answer[field].as_str().unwrap_or("unknown").to_string();
            return Err(GateError::Query {
                error_type: text("errorType"),
                message: text("error"),
            });
        }
        if status != 200 {
            return Err(GateError::ServerError { url: url(), status });
        }
        parse_data(&answer["data"]).map_err(|problem| GateError::Unexpected {
            url: url(),
            problem,
        })
    }

    /// Judges the samples of an evaluation made at `at`.
    fn judge(&mut self, at: DateTime<Utc>, samples: &[Sample]) -> Outcome {
        let condition = self.gate.condition;
        let counted: Vec<&Sample> = samples.iter().filter(|s| !s.value.is_nan()).collect();
        let seen = if counted.is_empty() {
            if !self.gate.empty_passes {
                return Outcome::Fail("the query returned no samples (onEmpty: fail)".to_string());
            }
            "no samples (onEmpty: pass)".to_string()
        } else if let Some(bad) = counted.iter().find(|s| !condition.holds(s.value)) {
            return Outcome::Fail(format!(
                "{}{} = {}, not {condition}",
                self.gate.query, bad.labels, bad.value
            ));
        } else {
            let worst = counted.iter().map(|s| s.value).fold(f64::NAN, |a, b| {
                if a.is_nan() || worse(condition.op, b, a) {
                    b
                } else {
                    a
                }
            });
            format!(
                "{} sample(s), all {condition} (worst {worst})",
                counted.len()
            )
        };
        let since = *self.holding_since.get_or_insert(at);
        let held = (at - since).to_std().unwrap_or_default();
        if held >= self.gate.hold {
            Outcome::Pass(format!("{seen} for {}", human(self.gate.hold)))
        } else {
            Outcome::Holding(format!(
                "{seen}, held {} of {}",
                human(held),
                human(self.gate.hold)
            ))
        }
    }
}

/// Whether `a` is closer to violating a condition with `op` than `b`.
fn worse(op: crate::pipeline::CompareOp, a: f64, b: f64) -> bool {
    use crate::pipeline::CompareOp::*;
    match op {
        Lt | Le => a > b,
        Gt | Ge => a < b,
        Eq | Ne => false,
    }
}

/// The samples of a `vector` or `scalar` result.
fn parse_data(data: &Value) -> Result<Evaluation, String> {
    match data["resultType"].as_str() {
        Some("vector") => {
            let results = data["result"]
                .as_array()
                .ok_or("the vector result is not a list")?;
            let mut at = None;
            let mut samples = Vec::with_capacity(results.len());
            for result in results {
                let (time, value) = parse_point(&result["value"])?;
                at = Some(time);
                samples.push(Sample {
                    labels: labels(&result["metric"]),
                    value,
                });
            }
            Ok(Evaluation { at, samples })
        }
        Some("scalar") => {
            let (time, value) = parse_point(&data["result"])?;
            Ok(Evaluation {
                at: Some(time),
                samples: vec![Sample {
                    labels: String::new(),
                    value,
                }],
            })
        }
        Some(other) => Err(format!(
            "the query returns a {other}; use a query that returns an instant vector or a scalar"
        )),
        None => Err("the answer has no data.resultType".to_string()),
    }
}

/// `[1717171717.123, "0.5"]` → (time, value).
fn parse_point(point: &Value) -> Result<(DateTime<Utc>, f64), String> {
    let bad = || format!("unexpected sample {point}");
    let seconds = point[0].as_f64().ok_or_else(bad)?;
    let value: f64 = point[1]
        .as_str()
        .ok_or_else(bad)?
        .parse()
        .map_err(|_| bad())?;
    let millis = (seconds * 1000.0).round() as i64;
    let time = Utc.timestamp_millis_opt(millis).single().ok_or_else(bad)?;
    Ok((time, value))
}

/// `{instance="…",job="web"}` (the metric name is in the query), or `""` without labels.
fn labels(metric: &Value) -> String {
    let pairs: Vec<String> = metric
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(name, _)| name.as_str() != "__name__")
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    if pairs.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", pairs.join(","))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::pipeline::Condition;
    use serde_json::json;

    fn probe(condition: &str, hold_secs: u64, empty_passes: bool) -> PrometheusProbe<'static> {
        let gate = PrometheusGate {
            url: "http://127.0.0.1:9090".into(),
            query: "errors".into(),
            condition: Condition::parse(condition).expect("valid"),
            hold: Duration::from_secs(hold_secs),
            empty_passes,
            headers: Vec::new(),
            insecure_skip_tls_verify: false,
        };
        PrometheusProbe {
            gate: Box::leak(Box::new(gate)),
            client: reqwest::Client::new(),
            headers: HeaderMap::new(),
            endpoint: String::new(),
            applied_at: Utc::now(),
            holding_since: None,
        }
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + seconds, 0)
            .single()
            .expect("valid")
    }

    fn sample(value: f64) -> Sample {
        Sample {
            labels: "{job=\"web\"}".into(),
            value,
        }
    }

    #[test]
    fn the_condition_must_hold_for_the_whole_duration() {
        let mut p = probe("< 0.01", 60, false);
        assert!(
            matches!(p.judge(at(0), &[sample(0.001)]), Outcome::Holding(m) if m.ends_with("held 0s of 1m"))
        );
        assert!(
            matches!(p.judge(at(30), &[sample(0.002)]), Outcome::Holding(m) if m.ends_with("held 30s of 1m"))
        );
        assert!(
            matches!(p.judge(at(60), &[sample(0.003)]), Outcome::Pass(m) if m == "1 sample(s), all < 0.01 (worst 0.003) for 1m")
        );
    }

    #[test]
    fn one_violating_sample_fails() {
        let mut p = probe("< 0.01", 0, false);
        let outcome = p.judge(at(0), &[sample(0.001), sample(0.5)]);
        assert!(
            matches!(outcome, Outcome::Fail(m) if m == "errors{job=\"web\"} = 0.5, not < 0.01")
        );
    }

    #[test]
    fn empty_results_fail_unless_configured_to_pass() {
        assert!(
            matches!(probe("< 1", 0, false).judge(at(0), &[]), Outcome::Fail(m) if m.contains("no samples"))
        );
        assert!(matches!(
            probe("< 1", 0, true).judge(at(0), &[]),
            Outcome::Pass(_)
        ));
        assert!(matches!(
            probe("< 1", 0, false).judge(at(0), &[sample(f64::NAN)]),
            Outcome::Fail(_)
        ));
    }

    #[test]
    fn parses_vectors_and_scalars_and_rejects_matrices() {
        let vector = json!({"resultType": "vector", "result": [{"metric": {"job": "web"}, "value": [1700000000.5, "0.25"]}]});
        let parsed = parse_data(&vector).expect("vector");
        assert_eq!(
            parsed.samples,
            vec![Sample {
                labels: "{job=\"web\"}".into(),
                value: 0.25
            }]
        );
        assert_eq!(
            parsed.at.map(|t| t.timestamp_millis()),
            Some(1_700_000_000_500)
        );
        let scalar = parse_data(&json!({"resultType": "scalar", "result": [1700000000, "NaN"]}))
            .expect("scalar");
        assert!(scalar.samples[0].value.is_nan());
        let matrix = parse_data(&json!({"resultType": "matrix", "result": []}));
        assert!(matrix.expect_err("matrix").contains("returns a matrix"));
    }
}
