//! The web UI's pipeline page at scale: a real `ferry serve` (the bench-profile binary) on a
//! pipeline of N stages (N/4 applications, each `dev` → `qa-eu`, `qa-us` → `prod` with
//! `requires: any`), one release verified in every `dev` stage, and:
//!
//! - server time and transfer size of `GET /` (groups collapsed, the default above 60
//!   stages) and `GET /?groups=expanded` (every stage drawn), from a local HTTP client;
//! - time to first render in headless Chromium (chromedriver + Debian chromium): first
//!   contentful paint and the load event of a fresh navigation to each page.
//!
//! Run with `cargo bench --bench ui`; `FERRY_BENCH_STAGES` sets N (default 1000),
//! `FERRY_BENCH_ROUNDS` the samples per figure (default 20).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

const KUSTOMIZATION: &str = "resources: [deployment.yaml]\n";
const DEPLOYMENT: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: web\n        image: acme/web:latest\n";
const POLICY: &str = "apiVersion: ferry/v1\nkind: Policy\nmetadata: {name: fast}\nspec:\n  gates:\n  - {name: ok, type: command, run: [\"true\"], timeout: 1m}\n";
const ACCESS: &str = "apiVersion: ferry/v1\nkind: Access\nmetadata: {name: access}\nspec:\n  roles:\n  - {role: viewer, subjects: [\"*\"]}\n  - {role: releaser, subjects: [ci]}\n";

fn main() {
    let stages: usize = env_number("FERRY_BENCH_STAGES", 1000);
    let rounds: usize = env_number("FERRY_BENCH_ROUNDS", 20);
    let apps = stages.div_ceil(4);
    let dir = repository(apps);
    let root = dir.path();
    let ci = token(root, "ci");
    let viewer = token(root, "viewer");
    let served = Served::start(root);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    runtime.block_on(async {
        let created = client
            .post(format!("{}/api/v1/releases", served.url))
            .bearer_auth(&ci)
            .json(&json!({"images": {"acme/web": "1.0.0"}}))
            .send()
            .await
            .expect("release");
        assert_eq!(created.status().as_u16(), 201);
        let started = Instant::now();
        loop {
            let status: Value = client
                .get(format!("{}/api/v1/status", served.url))
                .bearer_auth(&viewer)
                .send()
                .await
                .expect("status")
                .json()
                .await
                .expect("json");
            let verified = status["stages"]
                .as_array()
                .expect("stages")
                .iter()
                .filter(|s| s["verified"] == true)
                .count();
            if verified >= apps || started.elapsed() > Duration::from_secs(900) {
                println!(
                    "setup: {} stages, {verified} verified after {:.0?}",
                    apps * 4,
                    started.elapsed()
                );
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    let session = runtime.block_on(sign_in(&client, &served.url, &viewer));
    for path in ["/", "/?groups=expanded"] {
        let mut times = Vec::new();
        let mut size = 0;
        for _ in 0..rounds {
            let started = Instant::now();
            let body = runtime.block_on(async {
                let response = client
                    .get(format!("{}{path}", served.url))
                    .header("Cookie", format!("ferry_session={session}"))
                    .send()
                    .await
                    .expect("page");
                assert_eq!(response.status().as_u16(), 200, "GET {path}");
                response.bytes().await.expect("body")
            });
            times.push(started.elapsed());
            size = body.len();
        }
        let (median, p99) = spread(&mut times);
        println!(
            "GET {path}: server time median {median:.1?}, p99 {p99:.1?}; {} KiB",
            size / 1024
        );
    }
    runtime.block_on(first_render(&served.url, &viewer, rounds.min(10)));
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn spread(times: &mut [Duration]) -> (Duration, Duration) {
    times.sort();
    let p99 = times[(times.len() * 99 / 100).min(times.len() - 1)];
    (times[times.len() / 2], p99)
}

/// Signs in on the login form; the session id.
async fn sign_in(client: &reqwest::Client, base: &str, token: &str) -> String {
    let form = client
        .get(format!("{base}/login"))
        .send()
        .await
        .expect("login form");
    let nonce = cookie(&form, "ferry_login");
    let done = client
        .post(format!("{base}/login"))
        .header("Cookie", format!("ferry_login={nonce}"))
        .form(&[("csrf", nonce.as_str()), ("token", token)])
        .send()
        .await
        .expect("sign in");
    assert_eq!(done.status().as_u16(), 303, "sign in");
    cookie(&done, "ferry_session")
}

fn cookie(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix(&format!("{name}=")))
        .and_then(|v| v.split(';').next())
        .expect("the cookie")
        .to_string()
}

/// First contentful paint and load event of fresh navigations, in headless Chromium.
async fn first_render(base: &str, token: &str, rounds: usize) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let mut driver = Command::new("/usr/bin/chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver (apt-get install chromium-driver)");
    let profile = tempfile::tempdir().expect("profile");
    let caps = json!({"browserName": "chrome", "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", "--window-size=1280,900",
        format!("--user-data-dir={}", profile.path().display())]}});
    let caps = caps.as_object().expect("object").clone();
    let started = Instant::now();
    let browser = loop {
        match ClientBuilder::new(HttpConnector::new())
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(browser) => break browser,
            Err(_) if started.elapsed() < Duration::from_secs(60) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(err) => panic!("no WebDriver session: {err}"),
        }
    };
    browser.goto(&format!("{base}/login")).await.expect("login");
    browser
        .find(Locator::Css("#token"))
        .await
        .expect("token field")
        .send_keys(token)
        .await
        .expect("type");
    browser
        .find(Locator::Css("#signin"))
        .await
        .expect("button")
        .click()
        .await
        .expect("sign in");
    const TIMING: &str = "const nav = performance.getEntriesByType('navigation')[0];
        const fcp = performance.getEntriesByName('first-contentful-paint')[0];
        return [fcp ? fcp.startTime : -1, nav.loadEventEnd, document.querySelectorAll('#graph a.node').length];";
    for path in ["/", "/?groups=expanded"] {
        let mut paints = Vec::new();
        let mut loads = Vec::new();
        let mut boxes = 0;
        for _ in 0..rounds {
            browser
                .goto(&format!("{base}{path}"))
                .await
                .expect("navigate");
            let timing = browser.execute(TIMING, Vec::new()).await.expect("timing");
            let ms = |i: usize| {
                Duration::from_secs_f64(timing[i].as_f64().unwrap_or(-1.0).max(0.0) / 1000.0)
            };
            paints.push(ms(0));
            loads.push(ms(1));
            boxes = timing[2].as_u64().unwrap_or(0);
        }
        let (paint, paint99) = spread(&mut paints);
        let (load, _) = spread(&mut loads);
        println!(
            "Chromium {path} ({boxes} boxes): first contentful paint median {paint:.0?} (max of {rounds}: {paint99:.0?}), load event median {load:.0?}"
        );
    }
    let _ = browser.close().await;
    let _ = driver.kill();
    let _ = driver.wait();
}

/// A config repository with `apps` applications of four stages each.
fn repository(apps: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    let mut pipeline = String::from(
        "apiVersion: ferry/v1\nkind: Pipeline\nmetadata: {name: bench}\nspec:\n  images: [acme/web]\n  stages:\n",
    );
    write(root, "environments/base/kustomization.yaml", KUSTOMIZATION);
    write(root, "environments/base/deployment.yaml", DEPLOYMENT);
    for app in 0..apps {
        let a = format!("a{app:04}");
        for env in ["dev", "qa-eu", "qa-us", "prod"] {
            let name = format!("{a}-{env}");
            write(
                root,
                &format!("environments/{name}/kustomization.yaml"),
                &format!("resources: [../base]\nnamespace: {name}\n"),
            );
        }
        pipeline.push_str(&format!(
            "  - {{name: {a}-dev, overlay: environments/{a}-dev, auto: true, policy: fast}}\n\
             \x20 - {{name: {a}-qa-eu, overlay: environments/{a}-qa-eu, upstream: [{a}-dev], policy: fast}}\n\
             \x20 - {{name: {a}-qa-us, overlay: environments/{a}-qa-us, upstream: [{a}-dev], policy: fast}}\n\
             \x20 - {{name: {a}-prod, overlay: environments/{a}-prod, upstream: [{a}-qa-eu, {a}-qa-us], requires: any, policy: fast}}\n"
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

fn token(root: &Path, user: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["token", "create", "--user", user, "-o", "json"])
        .current_dir(root)
        .output()
        .expect("ferry token create");
    assert!(output.status.success(), "ferry token create");
    let value: Value = serde_json::from_slice(&output.stdout).expect("json");
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
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
