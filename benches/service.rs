//! Service benchmarks: a real `ferry serve` (the bench-profile binary) on 127.0.0.1, driven
//! over HTTP by a small load client. Run with `cargo bench --bench service [-- NAME…]`, NAME
//! among `release`, `stages`, `scale`, `load`, `metrics` (default: all). `FERRY_BENCH_STAGES`
//! sets the size of the generated pipeline for `scale` (default 10000); `FERRY_BENCH_SECONDS`
//! the length of `load` (default 30); `FERRY_BENCH_PROMOTIONS` the history `metrics` scrapes
//! (default 1000).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const KUSTOMIZATION: &str = "resources: [deployment.yaml]\n";
const DEPLOYMENT: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: web\n        image: acme/web:latest\n";
const POLICY: &str = "apiVersion: ferry/v1\nkind: Policy\nmetadata: {name: fast}\nspec:\n  gates:\n  - {name: ok, type: command, run: [\"true\"], timeout: 1m}\n";
const ACCESS: &str = "apiVersion: ferry/v1\nkind: Access\nmetadata: {name: access}\nspec:\n  roles:\n  - {role: viewer, subjects: [\"*\"]}\n  - {role: releaser, subjects: [ci]}\n  - {role: admin, subjects: [admin]}\n";

fn main() {
    let wanted: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let runs = |name: &str| wanted.is_empty() || wanted.iter().any(|w| w == name);
    if runs("release") {
        release_to_entry_stage();
    }
    if runs("stages") {
        per_stage_time();
    }
    if runs("scale") {
        scale();
    }
    if runs("load") {
        load();
    }
    if runs("metrics") {
        metrics();
    }
}

/// A config repository with a chain of `stages` stages, all `auto: true` with the instant
/// gate; `chain` false makes every stage an entry stage (no upstream).
fn repository(stages: usize, chain: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    let mut pipeline = String::from(
        "apiVersion: ferry/v1\nkind: Pipeline\nmetadata: {name: bench}\nspec:\n  images: [acme/web]\n  stages:\n",
    );
    write(root, "environments/base/kustomization.yaml", KUSTOMIZATION);
    write(root, "environments/base/deployment.yaml", DEPLOYMENT);
    for i in 0..stages {
        let name = format!("s{i:05}");
        write(
            root,
            &format!("environments/{name}/kustomization.yaml"),
            &format!("resources: [../base]\nnamespace: web-{name}\n"),
        );
        let upstream = if chain && i > 0 {
            format!(", upstream: [s{:05}]", i - 1)
        } else {
            String::new()
        };
        pipeline.push_str(&format!(
            "  - {{name: {name}, overlay: environments/{name}, auto: true, policy: fast{upstream}}}\n"
        ));
    }
    write(root, "environments/pipeline.yaml", &pipeline);
    write(root, "policies/fast.yaml", POLICY);
    write(root, "policies/access.yaml", ACCESS);
    git(root, &["init", "-q", "-b", "main"]);
    git(root, &["add", "-A"]);
    git(
        root,
        &[
            "-c",
            "user.name=b",
            "-c",
            "user.email=b@example.com",
            "commit",
            "-qm",
            "bench",
        ],
    );
    dir
}

fn write(root: &Path, path: &str, content: &str) {
    let full = root.join(path);
    std::fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
    std::fs::write(full, content).expect("write");
}

fn git(root: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args(args)
        .current_dir(root)
        .status()
        .expect("git");
    assert!(status.success(), "git {args:?}");
}

fn ferry(root: &Path, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .current_dir(root)
        .output()
        .expect("ferry");
    assert!(
        output.status.success(),
        "ferry {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn token(root: &Path, user: &str) -> String {
    let out = ferry(root, &["token", "create", "--user", user, "-o", "json"]);
    let value: Value = serde_json::from_str(&out).expect("json");
    value["token"].as_str().expect("token").to_string()
}

/// A running server, killed when dropped.
struct Served {
    child: Child,
    url: String,
}

impl Served {
    fn start(root: &Path) -> Served {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .current_dir(root)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("ferry serve");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let url = loop {
            let line = lines.next().expect("ferry serve ended").expect("line");
            if let Some(url) = line.split("listening on ").nth(1) {
                break url.trim().to_string();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        Served { child, url }
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect("VmRSS")
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

async fn get(client: &reqwest::Client, url: &str, token: &str) -> (u16, Value) {
    let response = client
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("send");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn status_of(client: &reqwest::Client, base: &str, token: &str, stage: &str) -> Value {
    let (_, body) = get(client, &format!("{base}/api/v1/status"), token).await;
    body["stages"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == stage).cloned())
        .unwrap_or(Value::Null)
}

/// Waits (polling from the client, 2 ms apart) until `stage` has `revision` verified.
async fn verified(client: &reqwest::Client, base: &str, token: &str, stage: &str, revision: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let s = status_of(client, base, token, stage).await;
        if s["revision"] == revision && s["verified"] == true {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("{revision} not verified in {stage}");
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn report(name: &str, mut samples: Vec<f64>) {
    samples.sort_by(f64::total_cmp);
    println!(
        "{name}: n={} median={:.1} ms p99={:.1} ms max={:.1} ms",
        samples.len(),
        percentile(&samples, 0.5),
        percentile(&samples, 0.99),
        samples[samples.len() - 1]
    );
}

/// `POST /api/v1/releases` → the auto entry stage verified, over 50 releases.
fn release_to_entry_stage() {
    let repo = repository(1, true);
    let ci = token(repo.path(), "ci");
    let served = Served::start(repo.path());
    let base = served.url.clone();
    runtime().block_on(async {
        let client = reqwest::Client::new();
        let mut samples = Vec::new();
        for i in 0..50 {
            let started = Instant::now();
            let response = client
                .post(format!("{base}/api/v1/releases"))
                .bearer_auth(&ci)
                .json(&json!({"images": {"acme/web": format!("1.0.{i}")}}))
                .send()
                .await
                .expect("release");
            assert_eq!(response.status().as_u16(), 201);
            let id = response.json::<Value>().await.expect("json")["id"]
                .as_str()
                .expect("id")
                .to_string();
            verified(&client, &base, &ci, "s00000", &id).await;
            samples.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        report("release → entry stage verified", samples);
    });
}

/// dev → qa → prod (a chain of three auto stages, instant gates) inside the service.
fn per_stage_time() {
    let repo = repository(3, true);
    let ci = token(repo.path(), "ci");
    let served = Served::start(repo.path());
    let base = served.url.clone();
    runtime().block_on(async {
        let client = reqwest::Client::new();
        let mut samples = Vec::new();
        for i in 0..20 {
            let started = Instant::now();
            let response = client
                .post(format!("{base}/api/v1/releases"))
                .bearer_auth(&ci)
                .json(&json!({"images": {"acme/web": format!("2.0.{i}")}}))
                .send()
                .await
                .expect("release");
            let id = response.json::<Value>().await.expect("json")["id"]
                .as_str()
                .expect("id")
                .to_string();
            verified(&client, &base, &ci, "s00002", &id).await;
            samples.push(started.elapsed().as_secs_f64() * 1000.0 / 3.0);
        }
        report("per stage (release → third stage verified, / 3)", samples);
    });
}

/// A generated pipeline of many independent stages: RSS after start and after a status call,
/// and `GET /api/v1/status` latency.
fn scale() {
    let stages: usize = std::env::var("FERRY_BENCH_STAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let repo = repository(stages, false);
    let viewer = token(repo.path(), "viewer");
    let started = Instant::now();
    let served = Served::start(repo.path());
    println!(
        "scale: {stages} stages, listening after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    println!(
        "scale: RSS after start {:.1} MiB",
        served.rss_kib() as f64 / 1024.0
    );
    let base = served.url.clone();
    runtime().block_on(async {
        let client = reqwest::Client::new();
        let mut samples = Vec::new();
        for _ in 0..20 {
            let t = Instant::now();
            let (status, body) = get(&client, &format!("{base}/api/v1/status"), &viewer).await;
            assert_eq!(status, 200);
            assert_eq!(body["stages"].as_array().map(Vec::len), Some(stages));
            samples.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        report(&format!("GET /api/v1/status, {stages} stages"), samples);
    });
    println!(
        "scale: RSS after status calls {:.1} MiB",
        served.rss_kib() as f64 / 1024.0
    );
}

/// 200 requests/s of mixed reads for `FERRY_BENCH_SECONDS` (default 30) against a
/// dev → qa → prod service with some history.
fn load() {
    let seconds: u64 = std::env::var("FERRY_BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let repo = repository(3, true);
    let ci = token(repo.path(), "ci");
    let served = Served::start(repo.path());
    let base = served.url.clone();
    runtime().block_on(async {
        let client = reqwest::Client::new();
        let mut last = String::new();
        for i in 0..5 {
            let response = client
                .post(format!("{base}/api/v1/releases"))
                .bearer_auth(&ci)
                .json(&json!({"images": {"acme/web": format!("3.0.{i}")}}))
                .send()
                .await
                .expect("release");
            last = response.json::<Value>().await.expect("json")["id"]
                .as_str()
                .expect("id")
                .to_string();
            verified(&client, &base, &ci, "s00002", &last).await;
        }
        let paths = [
            "/api/v1/status".to_string(),
            "/api/v1/releases".to_string(),
            format!("/api/v1/releases/{last}"),
            "/api/v1/stages/s00001/history?limit=10".to_string(),
            "/api/v1/promotions/p-000001".to_string(),
        ];
        let mut ticker = tokio::time::interval(Duration::from_millis(5));
        let end = Instant::now() + Duration::from_secs(seconds);
        let mut tasks = Vec::new();
        let mut i = 0usize;
        while Instant::now() < end {
            ticker.tick().await;
            let url = format!("{base}{}", paths[i % paths.len()]);
            i += 1;
            let client = client.clone();
            let token = ci.clone();
            tasks.push(tokio::spawn(async move {
                let t = Instant::now();
                let ok = client
                    .get(url)
                    .bearer_auth(token)
                    .send()
                    .await
                    .map(|r| r.status().is_success())
                    .unwrap_or(false);
                (t.elapsed().as_secs_f64() * 1000.0, ok)
            }));
        }
        let mut samples = Vec::new();
        let mut errors = 0;
        for task in tasks {
            let (ms, ok) = task.await.expect("task");
            samples.push(ms);
            errors += usize::from(!ok);
        }
        println!(
            "load: {} requests in {seconds} s, {errors} errors",
            samples.len()
        );
        report("mixed reads at 200 req/s", samples);
    });
}

/// The entry stages of the `metrics` history: each release is promoted into all of them.
const METRICS_STAGES: usize = 50;

/// `GET /metrics` (which reads the whole history from the store on every scrape) on a state
/// with `FERRY_BENCH_PROMOTIONS` (default 1000) succeeded promotions, spread over 50
/// independent auto stages.
fn metrics() {
    let promotions: usize = std::env::var("FERRY_BENCH_PROMOTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let releases = promotions.div_ceil(METRICS_STAGES).max(1);
    let repo = repository(METRICS_STAGES, false);
    let ci = token(repo.path(), "ci");
    let served = Served::start(repo.path());
    let base = served.url.clone();
    runtime().block_on(async {
        let client = reqwest::Client::new();
        let started = Instant::now();
        for i in 0..releases {
            let response = client
                .post(format!("{base}/api/v1/releases"))
                .bearer_auth(&ci)
                .json(&json!({"images": {"acme/web": format!("4.0.{i}")}}))
                .send()
                .await
                .expect("release");
            assert_eq!(response.status().as_u16(), 201);
            let id = response.json::<Value>().await.expect("json")["id"]
                .as_str()
                .expect("id")
                .to_string();
            // Every stage takes each release before the next one comes, so none is skipped.
            for stage in 0..METRICS_STAGES {
                verified(&client, &base, &ci, &format!("s{stage:05}"), &id).await;
            }
        }
        let total = releases * METRICS_STAGES;
        println!(
            "metrics: {total} promotions in {METRICS_STAGES} stages made in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        let mut samples = Vec::new();
        let mut size = 0;
        for _ in 0..20 {
            let t = Instant::now();
            let response = client
                .get(format!("{base}/metrics"))
                .bearer_auth(&ci)
                .send()
                .await
                .expect("scrape");
            assert_eq!(response.status().as_u16(), 200);
            let text = response.text().await.expect("text");
            samples.push(t.elapsed().as_secs_f64() * 1000.0);
            let counted: f64 = text
                .lines()
                .filter(|l| l.starts_with("ferry_promotions_total{") && l.contains("succeeded"))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum();
            assert_eq!(counted as usize, total, "every promotion is counted");
            size = text.len();
        }
        report(
            &format!("GET /metrics, {total} promotions ({size} bytes)"),
            samples,
        );
    });
}
