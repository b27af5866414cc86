//! `GET /metrics` scraped by the real Prometheus server (Debian's `prometheus` package) from
//! a real `ferry serve`, on the open `--metrics-listen` address and on the main listener with
//! a viewer token, and queried through Prometheus's HTTP API; the values are facts of the
//! state, the same after a restart.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::token;
use crate::support::TestRepo;
use crate::support::server::{Api, Served, free_port, wait_for};

/// The history is built at these instants of a Monday (Berlin is UTC+1: prod's window is
/// open), with the clock stopped at `NOW` for the server.
const NOW: &str = "2026-11-30T09:45:00Z";

const CHECK: &str =
    r#"run: ["sh", "-c", "grep -rq 'image: acme/helloworld[:@]' \"$FERRY_MANIFESTS\""]"#;
const FAIL_143: &str = r#"run: ["sh", "-c", "! grep -rq 'helloworld:1.4.3' \"$FERRY_MANIFESTS\""]"#;

/// A webhook that wants only pauses, of which the history has none: its outbox series are 0.
const PAUSES_ONLY: &str = "apiVersion: ferry/v1
kind: Notifications
metadata: {name: notifications}
spec:
  webhooks:
  - name: ops
    format: slack
    urlFrom: {env: OPS_WEBHOOK_URL}
    events: [stage.paused]
";

/// How long Prometheus gets to start and scrape on a loaded machine.
const PROMETHEUS_PATIENCE: Duration = Duration::from_secs(120);

/// The example pipeline with a history: r1 verified in dev (lead time 5 min) and qa (20 min),
/// r2 failed in dev and rolled back after 8 min, and prod blocked on its soak and approvals.
fn repo_with_history() -> (TestRepo, String) {
    let repo = TestRepo::example();
    repo.edit("policies/dev.yaml", CHECK, FAIL_143);
    repo.write("policies/notifications.yaml", PAUSES_ONLY);
    repo.commit("dev refuses 1.4.3");
    let release = |at: &str, tag: &str| {
        let image = format!("acme/helloworld={tag}");
        let run = repo
            .ferry_at(
                at,
                "ci",
                &["release", "create", "--image", &image, "-o", "json"],
            )
            .expect_code(0);
        run.json()["id"].as_str().expect("id").to_string()
    };
    let r1 = release("2026-11-30T09:00:00Z", "1.4.2");
    repo.promote("2026-11-30T09:05:00Z", "carol", &r1, "dev")
        .expect_code(0);
    repo.promote("2026-11-30T09:20:00Z", "carol", &r1, "qa")
        .expect_code(0);
    let r2 = release("2026-11-30T09:30:00Z", "1.4.3");
    repo.promote("2026-11-30T09:32:00Z", "carol", &r2, "dev")
        .expect_code(1);
    repo.ferry_at("2026-11-30T09:40:00Z", "carol", &["rollback", "dev"])
        .expect_code(0);
    repo.promote(NOW, "carol", &r1, "prod").expect_code(3);
    (repo, r1)
}

/// A Prometheus server with `config` on a free port; killed when dropped.
struct Prometheus {
    child: Child,
    api: Api,
    _data: tempfile::TempDir,
}

impl Prometheus {
    fn start(config: &str) -> Prometheus {
        let data = tempfile::tempdir().expect("temp dir");
        let file = data.path().join("prometheus.yml");
        std::fs::write(&file, config).expect("write prometheus.yml");
        let listen = format!("127.0.0.1:{}", free_port());
        let child = spawn_prometheus(&file, &data.path().join("tsdb"), &listen);
        Prometheus {
            child,
            api: Api::new(&format!("http://{listen}"), None),
            _data: data,
        }
    }

    /// The instant vector of `query`: each series' labels and value.
    fn query(&self, query: &str) -> Option<Vec<(BTreeMap<String, String>, String)>> {
        let path = format!("/api/v1/query?query={}", percent_encode(query));
        let reply = self.api.try_get(&path)?;
        if reply.status != 200 || reply.body["status"] != "success" {
            return None;
        }
        let result = reply.body["data"]["result"].as_array()?;
        let series = result
            .iter()
            .map(|s| {
                let labels = s["metric"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                            .collect()
                    })
                    .unwrap_or_default();
                (
                    labels,
                    s["value"][1].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        Some(series)
    }

    /// The value of `query` per job, once Prometheus answers it for every job in `jobs`.
    #[track_caller]
    fn values_by_job(&self, query: &str, jobs: &[&str]) -> BTreeMap<String, String> {
        let deadline = Instant::now() + PROMETHEUS_PATIENCE;
        loop {
            let by_job: BTreeMap<String, String> = self
                .query(query)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|(labels, value)| labels.get("job").map(|j| (j.clone(), value)))
                .collect();
            if jobs.iter().all(|j| by_job.contains_key(*j)) {
                return by_job;
            }
            assert!(
                Instant::now() < deadline,
                "prometheus has no {query} for {jobs:?}; has {by_job:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_prometheus(config: &Path, tsdb: &Path, listen: &str) -> Child {
    let mut command = Command::new("prometheus");
    command
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", tsdb.display()))
        .arg(format!("--web.listen-address={listen}"))
        .arg("--log.level=error")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    match command.spawn() {
        Ok(child) => child,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => panic!(
            "the `prometheus` server is not installed: run .ci/test, which installs Debian's prometheus package"
        ),
        Err(err) => panic!("failed to start prometheus: {err}"),
    }
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The scrape config of both access modes: `ferry` on the open metrics address, `ferry-api`
/// on the main listener with the viewer token in `token_file`.
fn scrape_config(metrics: &str, api: &str, token_file: &Path) -> String {
    format!(
        "global:
  scrape_interval: 1s
scrape_configs:
- job_name: ferry
  static_configs:
  - targets: [\"{metrics}\"]
- job_name: ferry-api
  authorization:
    credentials_file: {}
  static_configs:
  - targets: [\"{api}\"]
",
        token_file.display()
    )
}

/// The sample lines of an exposition, sorted (series come in no fixed order).
fn samples(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}

/// The PromQL of every panel of docs/grafana-dashboard.json.
fn dashboard_queries() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/grafana-dashboard.json");
    let text = std::fs::read_to_string(&path).expect("read the dashboard");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let queries: Vec<String> = dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .map(|t| t["expr"].as_str().expect("an expr").to_string())
        .collect();
    assert!(queries.len() >= 10, "{queries:?}");
    queries
}

/// The `ferry_…` metric names a query reads.
fn metric_names(query: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = query;
    while let Some(at) = rest.find("ferry_") {
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        rest = &rest[at + name.len()..];
        names.push(name);
    }
    names
}

fn start_server(repo: &TestRepo, api: &str, metrics: &str) -> Served {
    Served::start_on(
        repo,
        api,
        &["--metrics-listen", metrics],
        &[("FERRY_TEST_NOW", NOW)],
    )
}

#[test]
fn prometheus_scrapes_the_dora_keys_and_the_stages_through_both_access_modes() {
    let (repo, r1) = repo_with_history();
    let viewer = token(&repo, "victor");
    let token_dir = tempfile::tempdir().expect("temp dir");
    let token_file = token_dir.path().join("ferry-token");
    std::fs::write(&token_file, &viewer).expect("write token");
    let api_addr = format!("127.0.0.1:{}", free_port());
    let metrics_addr = format!("127.0.0.1:{}", free_port());
    let mut served = start_server(&repo, &api_addr, &metrics_addr);
    let prometheus = Prometheus::start(&scrape_config(&metrics_addr, &api_addr, &token_file));

    let jobs = ["ferry", "ferry-api"];
    let expect = |query: &str, value: &str| {
        let by_job = prometheus.values_by_job(query, &jobs);
        for job in jobs {
            assert_eq!(by_job[job], value, "{query} scraped by {job}");
        }
    };
    expect("up", "1");
    expect("ferry_deployments_total{stage=\"dev\"}", "2");
    expect("ferry_deployments_total{stage=\"qa\"}", "1");
    expect("ferry_deployments_total{stage=\"prod\"}", "0");
    expect("ferry_change_failures_total{stage=\"dev\"}", "1");
    expect("ferry_change_failures_total{stage=\"qa\"}", "0");
    expect(
        "ferry_promotions_total{stage=\"dev\",trigger=\"manual\",outcome=\"failed\"}",
        "1",
    );
    expect(
        "ferry_promotions_total{stage=\"dev\",trigger=\"rollback\",outcome=\"succeeded\"}",
        "1",
    );
    // Release at 09:00, verified in dev at 09:05 and in qa at 09:20; the rollback has none.
    expect("ferry_lead_time_seconds_sum{stage=\"dev\"}", "300");
    expect("ferry_lead_time_seconds_count{stage=\"dev\"}", "1");
    expect("ferry_lead_time_seconds_sum{stage=\"qa\"}", "1200");
    expect(
        "ferry_lead_time_seconds_bucket{stage=\"qa\",le=\"1800\"}",
        "1",
    );
    expect(
        "ferry_lead_time_seconds_bucket{stage=\"qa\",le=\"900\"}",
        "0",
    );
    // r2 failed at 09:32; the rollback restored dev at 09:40.
    expect("ferry_time_to_restore_seconds_sum{stage=\"dev\"}", "480");
    expect("ferry_promotion_duration_seconds_count{stage=\"dev\"}", "3");
    expect(
        "ferry_gate_duration_seconds_count{stage=\"dev\",gate=\"manifests\",type=\"command\",outcome=\"failed\"}",
        "1",
    );
    expect(
        "ferry_stage_blocked{stage=\"prod\",kind=\"approvals\"}",
        "1",
    );
    expect("ferry_stage_blocked{stage=\"prod\",kind=\"soak\"}", "1");
    expect("ferry_stage_blocked{stage=\"prod\",kind=\"window\"}", "0");
    expect("ferry_stage_blocked{stage=\"dev\",kind=\"approvals\"}", "0");
    expect(
        &format!(
            "ferry_stage_info{{stage=\"dev\",revision=\"{r1}\",state=\"succeeded\",verified=\"true\"}}"
        ),
        "1",
    );
    expect(
        "ferry_stage_info{stage=\"prod\",revision=\"\",state=\"blocked\",verified=\"false\"}",
        "1",
    );
    let now = chrono::DateTime::parse_from_rfc3339(NOW)
        .expect("a time")
        .timestamp();
    expect(
        "ferry_reconcile_last_success_timestamp_seconds",
        &now.to_string(),
    );
    expect(
        "ferry_notifications{webhook=\"ops\",state=\"pending\"}",
        "0",
    );
    expect("ferry_notification_attempts_total{webhook=\"ops\"}", "0");

    // Every query of the checked-in dashboard is valid PromQL over metrics ferry serves.
    let open = Api::new(&format!("http://{metrics_addr}"), None);
    let exposition = open.get("/metrics", None).expect(200).text;
    for expr in dashboard_queries() {
        let query = expr.replace("$stage", ".*");
        let path = format!("/api/v1/query?query={}", percent_encode(&query));
        let reply = prometheus.api.get(&path, None);
        assert_eq!(reply.body["status"], "success", "{query}: {}", reply.text);
        for name in metric_names(&query) {
            assert!(
                exposition.lines().any(|l| l.starts_with(&name)),
                "the dashboard queries {name}, which /metrics does not serve"
            );
        }
    }

    // The values are facts of the state: a killed and restarted server serves the same ones,
    // and Prometheus sees no counter reset.
    let before = open.get("/metrics", None).expect(200).text;
    served.stop("KILL");
    let started = chrono::Utc::now().timestamp();
    let served = start_server(&repo, &api_addr, &metrics_addr);
    // A new client: the old one's pooled connection went with the killed process.
    let open = Api::new(&format!("http://{metrics_addr}"), None);
    let after = open.get("/metrics", None).expect(200).text;
    assert_eq!(samples(&after), samples(&before));
    wait_for("a scrape of the restarted server", || {
        prometheus
            .query("timestamp(ferry_deployments_total{job=\"ferry\",stage=\"dev\"})")
            .and_then(|s| s.first().and_then(|(_, v)| v.parse::<f64>().ok()))
            .is_some_and(|at| at > started as f64 + 1.0)
    });
    expect("resets(ferry_deployments_total{stage=\"dev\"}[10m])", "0");
    expect("ferry_deployments_total{stage=\"dev\"}", "2");
    drop(served);
}

#[test]
fn without_a_metrics_address_the_metrics_need_a_viewer_token() {
    let (repo, _) = repo_with_history();
    let viewer = token(&repo, "victor");
    let served = Served::start(&repo, &[], &[("FERRY_TEST_NOW", NOW)]);
    let api = served.api();
    api.get("/metrics", None)
        .expect_error(401, "unauthenticated");
    let mut forged = viewer.clone();
    let last = forged.pop().expect("a token has characters");
    forged.push(if last == 'a' { 'b' } else { 'a' });
    api.get("/metrics", Some(&forged))
        .expect_error(401, "unauthenticated");
    let reply = api.get("/metrics", Some(&viewer)).expect(200);
    assert!(
        samples(&reply.text).contains(&"ferry_deployments_total{stage=\"dev\"} 2".to_string()),
        "{}",
        reply.text
    );
}

#[test]
fn the_metrics_address_serves_only_the_metrics() {
    let (repo, _) = repo_with_history();
    let viewer = token(&repo, "victor");
    let metrics_addr = format!("127.0.0.1:{}", free_port());
    let served = Served::start(
        &repo,
        &["--metrics-listen", &metrics_addr],
        &[("FERRY_TEST_NOW", NOW)],
    );
    let open = Api::new(&format!("http://{metrics_addr}"), None);
    let reply = open.get("/metrics", None).expect(200);
    assert!(
        samples(&reply.text).contains(&"ferry_change_failures_total{stage=\"dev\"} 1".to_string()),
        "{}",
        reply.text
    );
    open.get("/api/v1/status", Some(&viewer))
        .expect_error(404, "not_found");
    // The main listener keeps its token check.
    served.api().get("/metrics", None).expect(401);
    assert!(
        served
            .logs()
            .contains(&format!("metrics on http://{metrics_addr}/metrics")),
        "{}",
        served.logs()
    );
}
