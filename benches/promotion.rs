//! Promotion benchmarks: a revision through dev → qa → prod with instantly
//! passing gates on a local repository, and `status` over a state of many promotions.
//!
//! Run with `cargo bench --bench promotion`. `FERRY_BENCH_PROMOTIONS` sets how many promotions
//! the status benchmark records first (default 10000); `FERRY_BENCH_DIR` where its repository
//! is made (default: the system's temporary directory; a tmpfs makes recording them quicker,
//! it does not change what `status` reads).

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use ferry::promotion::{Actor, Engine, EngineOptions, Outcome, PromoteRequest};

fn main() {
    divan::main();
}

const KUSTOMIZATION: &str = "resources: [deployment.yaml]\n";
const DEPLOYMENT: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: web\n        image: acme/web:latest\n";
const POLICY: &str = "apiVersion: ferry/v1\nkind: Policy\nmetadata: {name: fast}\nspec:\n  gates:\n  - {name: ok, type: command, run: [\"true\"], timeout: 1m}\n";

/// A config repository with `stages` (a chain) under a temporary directory.
fn repository(stages: &[&str]) -> tempfile::TempDir {
    repository_in(&std::env::temp_dir(), stages)
}

/// A config repository with `stages` (a chain) in a new directory under `parent`.
fn repository_in(parent: &Path, stages: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir_in(parent).expect("temp dir");
    let root = dir.path();
    let mut pipeline = String::from(
        "apiVersion: ferry/v1\nkind: Pipeline\nmetadata: {name: bench}\nspec:\n  images: [acme/web]\n  stages:\n",
    );
    for (i, stage) in stages.iter().enumerate() {
        write(
            root,
            &format!("environments/{stage}/kustomization.yaml"),
            &format!("{KUSTOMIZATION}namespace: web-{stage}\n"),
        );
        write(
            root,
            &format!("environments/{stage}/deployment.yaml"),
            DEPLOYMENT,
        );
        let upstream = if i == 0 {
            String::new()
        } else {
            format!(", upstream: [{}]", stages[i - 1])
        };
        pipeline.push_str(&format!(
            "  - {{name: {stage}, overlay: environments/{stage}, policy: fast{upstream}}}\n"
        ));
    }
    write(root, "environments/pipeline.yaml", &pipeline);
    write(root, "policies/fast.yaml", POLICY);
    for args in [
        &["init", "-q", "-b", "main"][..],
        &["add", "-A"],
        &[
            "-c",
            "user.name=bench",
            "-c",
            "user.email=bench@example.com",
            "commit",
            "-q",
            "-m",
            "init",
        ],
    ] {
        let status = Command::new("git")
            .args(args)
            .current_dir(root)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .status()
            .expect("git");
        assert!(status.success());
    }
    dir
}

fn write(root: &Path, path: &str, content: &str) {
    let full = root.join(path);
    std::fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
    std::fs::write(full, content).expect("write");
}

fn engine(root: &Path) -> Engine {
    Engine::open(
        root,
        &root.join(".ferry"),
        Actor::local("bench"),
        EngineOptions::default(),
    )
    .expect("engine")
}

fn promote(engine: &Engine, revision: &str, stage: &str) {
    let mut request = PromoteRequest::new(revision, stage);
    request.wait = true;
    let outcome = engine.promote(&request).expect("promotion runs");
    assert!(
        matches!(outcome, Outcome::Succeeded(_)),
        "promotion succeeds: {outcome:?}"
    );
}

/// One revision through three stages; divide by three for the time per stage.
#[divan::bench(sample_count = 20)]
fn promote_dev_qa_prod(bencher: divan::Bencher) {
    let repo = repository(&["dev", "qa", "prod"]);
    let engine = engine(repo.path());
    let mut tag = 0u64;
    bencher
        .with_inputs(|| {
            tag += 1;
            engine
                .create_release(&[format!("acme/web=1.0.{tag}")], None, None)
                .expect("release")
                .0
                .id
        })
        .bench_local_values(|revision| {
            for stage in ["dev", "qa", "prod"] {
                promote(&engine, &revision, stage);
            }
        });
}

/// Runs `ferry ARGS` in `repo` as a whole process and checks that it succeeded.
fn ferry(repo: &Path, args: &[&str]) {
    let output = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .arg("--repo")
        .arg(repo)
        .args(args)
        .env("FERRY_USER", "bench")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("run ferry");
    assert!(
        output.status.success(),
        "ferry {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// One revision through three stages as three whole `ferry promote REV --to STAGE --wait`
/// processes (start-up, state store, render, commit, gate, verification, audit); divide by
/// three for the time per stage.
#[divan::bench(sample_count = 20)]
fn promote_whole_process_dev_qa_prod(bencher: divan::Bencher) {
    let repo = repository(&["dev", "qa", "prod"]);
    let engine = engine(repo.path());
    let mut tag = 0u64;
    bencher
        .with_inputs(|| {
            tag += 1;
            engine
                .create_release(&[format!("acme/web=1.1.{tag}")], None, None)
                .expect("release")
                .0
                .id
        })
        .bench_local_values(|revision| {
            for stage in ["dev", "qa", "prod"] {
                ferry(
                    repo.path(),
                    &["promote", &revision, "--to", stage, "--wait"],
                );
            }
        });
}

/// `ferry history --limit 1`, a whole process: start-up plus one opening of the store.
#[divan::bench(sample_count = 50)]
fn history_whole_process(bencher: divan::Bencher) {
    let repo = repository(&["dev", "qa", "prod"]);
    let engine = engine(repo.path());
    let revision = engine
        .create_release(&["acme/web=1.2.0".to_string()], None, None)
        .expect("release")
        .0
        .id;
    promote(&engine, &revision, "dev");
    bencher.bench_local(|| ferry(repo.path(), &["history", "--limit", "1"]));
}

/// `ferry --version`, a whole process: start-up alone, to compare the others with.
#[divan::bench(sample_count = 50)]
fn version_whole_process(bencher: divan::Bencher) {
    bencher.bench_local(|| ferry(Path::new("."), &["--version"]));
}

/// A repository whose state holds `FERRY_BENCH_PROMOTIONS` promotions (default 10,000),
/// made once and shared by the status benchmarks.
fn seeded() -> &'static Path {
    static SEEDED: OnceLock<tempfile::TempDir> = OnceLock::new();
    SEEDED
        .get_or_init(|| {
            let count: usize = std::env::var("FERRY_BENCH_PROMOTIONS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(10_000);
            let repo = match std::env::var_os("FERRY_BENCH_DIR") {
                Some(dir) => repository_in(Path::new(&dir), &["dev", "qa", "prod"]),
                None => repository(&["dev", "qa", "prod"]),
            };
            let engine = engine(repo.path());
            let revisions: Vec<String> = (0..2)
                .map(|i| {
                    engine
                        .create_release(&[format!("acme/web=2.0.{i}")], None, None)
                        .expect("release")
                        .0
                        .id
                })
                .collect();
            for i in 0..count {
                promote(&engine, &revisions[i % 2], "dev");
            }
            repo
        })
        .path()
}

/// `status` in process, over a state of many promotions.
#[divan::bench(sample_count = 50)]
fn status_in_process(bencher: divan::Bencher) {
    let engine = engine(seeded());
    let config = engine.config_at_branch("main").expect("config");
    bencher.bench_local(|| engine.status(&config).expect("status"));
}

/// `ferry status` as a whole process (start-up, state, config, output), over a state of
/// many promotions.
#[divan::bench(sample_count = 30)]
fn status_whole_process(bencher: divan::Bencher) {
    let repo = seeded();
    bencher.bench_local(|| {
        let output = Command::new(env!("CARGO_BIN_EXE_ferry"))
            .arg("--repo")
            .arg(repo)
            .args(["status", "-o", "json"])
            .output()
            .expect("run ferry");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    });
}
