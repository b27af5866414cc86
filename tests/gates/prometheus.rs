//! `prometheus` gates against the real Prometheus server (Debian's `prometheus` package),
//! started on 127.0.0.1 and scraping a small exporter this test serves.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use ferry::gates::{GateResult, GateStatus, run_gate};
use ferry::pipeline::{Condition, GateKind, GateSpec, PrometheusGate};
use tokio::process::{Child, Command};

use super::support::server::{Response, TestServer, closed_port};
use super::support::{Recorder, context, gate, timing_out_after};

const METRICS: &str = "# HELP ferry_test_error_ratio Failed requests per request.
# TYPE ferry_test_error_ratio gauge
ferry_test_error_ratio{route=\"/checkout\"} 0.002
ferry_test_error_ratio{route=\"/cart\"} 0.004
# HELP ferry_test_up Whether the test service is up.
# TYPE ferry_test_up gauge
ferry_test_up 1
";

/// A Prometheus server scraping `exporter` every second; killed when dropped.
struct Prometheus {
    url: String,
    _child: Child,
    _data: tempfile::TempDir,
}

impl Prometheus {
    async fn start(exporter: &TestServer) -> Prometheus {
        let data = tempfile::tempdir().expect("temp dir");
        let config = data.path().join("prometheus.yml");
        let scrape = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: exporter\n    static_configs:\n      - targets: [\"{}\"]\n",
            exporter.addr
        );
        std::fs::write(&config, scrape).expect("write prometheus.yml");
        let listen = format!("127.0.0.1:{}", closed_port());
        let child = spawn(&config, &data.path().join("tsdb"), &listen);
        let prometheus = Prometheus {
            url: format!("http://{listen}"),
            _child: child,
            _data: data,
        };
        prometheus.wait_for_first_scrape().await;
        prometheus
    }

    /// Waits until the exporter's metrics can be queried (startup plus the first scrape).
    async fn wait_for_first_scrape(&self) {
        let query = format!("{}/api/v1/query?query=ferry_test_up", self.url);
        for _ in 0..600 {
            if let Ok(response) = reqwest::get(&query).await
                && let Ok(body) = response.text().await
                && body.contains("\"ferry_test_up\"")
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "prometheus at {} did not scrape the test exporter within a minute",
            self.url
        );
    }
}

fn spawn(config: &Path, tsdb: &Path, listen: &str) -> Child {
    let mut command = Command::new("prometheus");
    command
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", tsdb.display()))
        .arg(format!("--web.listen-address={listen}"))
        .arg("--log.level=error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    match command.spawn() {
        Ok(child) => child,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            panic!(
                "the `prometheus` server is not installed: run .ci/test, which installs Debian's prometheus package"
            )
        }
        Err(err) => panic!("failed to start prometheus: {err}"),
    }
}

fn query(name: &str, url: &str, query: &str, condition: &str) -> GateSpec {
    let prometheus = PrometheusGate {
        url: url.to_string(),
        query: query.to_string(),
        condition: Condition::parse(condition).expect("valid condition"),
        hold: Duration::ZERO,
        empty_passes: false,
        headers: Vec::new(),
        insecure_skip_tls_verify: false,
    };
    GateSpec {
        interval: Duration::from_millis(200),
        ..gate(name, GateKind::Prometheus(prometheus))
    }
}

fn with(spec: GateSpec, change: impl FnOnce(&mut PrometheusGate)) -> GateSpec {
    let mut spec = spec;
    if let GateKind::Prometheus(gate) = &mut spec.kind {
        change(gate);
    }
    spec
}

fn result<'a>(results: &'a [GateResult], name: &str) -> &'a GateResult {
    results
        .iter()
        .find(|r| r.name == name)
        .expect("every gate has a result")
}

#[tokio::test]
async fn prometheus_gates_against_a_real_server() {
    let exporter = TestServer::start(|_| Response {
        status: 200,
        content_type: "text/plain; version=0.0.4".into(),
        body: METRICS.into(),
    })
    .await;
    let prometheus = Prometheus::start(&exporter).await;
    let url = prometheus.url.as_str();
    let specs = [
        with(
            query("holds", url, "ferry_test_error_ratio", "< 0.01"),
            |g| g.hold = Duration::from_secs(2),
        ),
        query("violated", url, "ferry_test_error_ratio", "< 0.003"),
        query("scalar", url, "scalar(ferry_test_up)", "== 1"),
        query("empty-fails", url, "ferry_test_missing", "< 1"),
        with(
            query("empty-passes", url, "ferry_test_missing", "< 1"),
            |g| g.empty_passes = true,
        ),
        query("bad-query", url, "rate(ferry_test_error_ratio[1m]", "< 1"),
        timing_out_after(
            500,
            query("not-prometheus", &exporter.url(""), "up", "== 1"),
        ),
    ];
    let recorder = Recorder::default();
    // Each gate runs to its own end here (run_gates would stop at the first failure).
    let ctx = context();
    let results: Vec<GateResult> =
        futures_util::future::join_all(specs.iter().map(|spec| run_gate(spec, &ctx, &recorder)))
            .await;

    let holds = result(&results, "holds");
    assert_eq!(holds.status, GateStatus::Passed, "{}", holds.reason);
    assert_eq!(holds.reason, "2 sample(s), all < 0.01 (worst 0.004) for 2s");
    assert!(
        holds.observations > 1,
        "the condition was observed holding over time"
    );

    let violated = result(&results, "violated");
    assert_eq!(violated.status, GateStatus::Failed);
    assert!(
        violated
            .reason
            .starts_with("ferry_test_error_ratio{instance=\"127.0.0.1:"),
        "{}",
        violated.reason
    );
    assert!(
        violated
            .reason
            .ends_with("job=\"exporter\",route=\"/cart\"} = 0.004, not < 0.003"),
        "{}",
        violated.reason
    );

    assert_eq!(
        result(&results, "scalar").status,
        GateStatus::Passed,
        "{}",
        result(&results, "scalar").reason
    );
    let empty = result(&results, "empty-fails");
    assert_eq!(
        (empty.status, empty.reason.as_str()),
        (
            GateStatus::Failed,
            "the query returned no samples (onEmpty: fail)"
        )
    );
    assert_eq!(result(&results, "empty-passes").status, GateStatus::Passed);

    let bad = result(&results, "bad-query");
    assert_eq!(
        (bad.status, bad.observations),
        (GateStatus::Errored, 1),
        "{}",
        bad.reason
    );
    assert!(
        bad.reason.starts_with("query failed (bad_data): "),
        "{}",
        bad.reason
    );

    let not_prometheus = result(&results, "not-prometheus");
    assert_eq!(not_prometheus.status, GateStatus::Errored);
    assert!(
        not_prometheus.reason.contains("did not answer with JSON"),
        "{}",
        not_prometheus.reason
    );
    assert_eq!(recorder.finished().len(), specs.len());
}
