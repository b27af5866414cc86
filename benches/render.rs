//! Benchmarks of the kustomize-compatible renderer (run with `cargo bench --bench render`).
//!
//! - `golden`: one build of a golden case (the same inputs the tests check against kustomize);
//! - `render_all`: every overlay of a generated repository with N apps × dev/qa/prod, in one
//!   call, as `ferry render --all` does (the repository comes from `benches/gen-apps.sh`);
//! - `emit`: printing a built overlay as YAML.
//!
//! The whole-process comparison with `kubectl kustomize` is a separate script; see
//! docs/rendering.md ("Performance").

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use divan::Bencher;
use ferry::overlay::{self, DirSource};

fn main() {
    divan::main();
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kustomize")
}

#[divan::bench(args = [
    "overlay-of-overlay-of-overlay",
    "prefix-suffix-name-references",
    "smp-list-merge-keys",
    "generators-behavior-merge-replace",
])]
fn golden(bencher: Bencher, case: &str) {
    let source = DirSource::new(fixtures().join(case));
    bencher.bench(|| overlay::build(&source, "").expect("builds"));
}

#[divan::bench]
fn emit(bencher: Bencher) {
    let source = DirSource::new(fixtures().join("overlay-of-overlay-of-overlay"));
    let resources = overlay::build(&source, "").expect("builds");
    bencher.bench(|| overlay::to_yaml(&resources));
}

/// A generated repository with `apps` apps, made once per process.
fn generated(apps: usize) -> &'static Path {
    static DIRS: OnceLock<Vec<(usize, tempfile::TempDir)>> = OnceLock::new();
    let dirs = DIRS.get_or_init(|| {
        [50, 1000]
            .into_iter()
            .map(|n| {
                let dir = tempfile::tempdir().expect("temp dir");
                let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/gen-apps.sh");
                let status = std::process::Command::new("sh")
                    .arg(script)
                    .arg(n.to_string())
                    .arg(dir.path())
                    .status()
                    .expect("run gen-apps.sh");
                assert!(status.success(), "gen-apps.sh failed");
                (n, dir)
            })
            .collect()
    });
    let (_, dir) = dirs
        .iter()
        .find(|(n, _)| *n == apps)
        .expect("a generated size");
    dir.path()
}

#[divan::bench(args = [50, 1000], sample_count = 5, sample_size = 1)]
fn render_all(bencher: Bencher, apps: usize) {
    let root = generated(apps);
    let overlays: Vec<String> = (1..=apps)
        .flat_map(|i| ["dev", "qa", "prod"].map(|env| format!("environments/app{i}/{env}")))
        .collect();
    let dirs: Vec<&str> = overlays.iter().map(String::as_str).collect();
    bencher.bench(|| {
        let source = DirSource::new(root);
        let built = overlay::build_all(&source, &dirs);
        let text: usize = built
            .iter()
            .map(|r| overlay::to_yaml(r.as_ref().expect("builds")).len())
            .sum();
        assert!(text > 0);
    });
}
