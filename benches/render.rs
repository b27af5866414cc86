//! Benchmarks of the kustomize-compatible renderer (run with `cargo bench --bench render`).
//!
//! - `golden`: one build of a golden case (the same inputs the tests check against kustomize);
//! - `render_all`: every overlay of a generated repository with N apps × dev/qa/prod, in one
//!   call, as `ferry render --all` does (the repository comes from `benches/gen-apps.sh`);
//! - `emit`: printing a built overlay as YAML;
//! - `many_files`: one kustomization listing N resource files (a Deployment and the
//!   ConfigMap it mounts per pair of files, under a prefix, a namespace and labels), built and
//!   printed: the time must grow about linearly with N.
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

/// A kustomization with `files` resource files, made once per size and process.
fn many_files_repo(files: usize) -> &'static Path {
    static DIRS: OnceLock<Vec<(usize, tempfile::TempDir)>> = OnceLock::new();
    let dirs = DIRS.get_or_init(|| {
        [1000, 10_000]
            .into_iter()
            .map(|n| (n, write_many_files(n)))
            .collect()
    });
    let (_, dir) = dirs
        .iter()
        .find(|(n, _)| *n == files)
        .expect("a generated size");
    dir.path()
}

fn write_many_files(files: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut kustomization =
        String::from("namespace: bench\nnamePrefix: p-\ncommonLabels:\n  team: a\nresources:\n");
    for i in 0..files / 2 {
        let config_map = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings-{i}\ndata:\n  key: value-{i}\n"
        );
        let deployment = format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-{i}\nspec:\n  \
             selector:\n    matchLabels: {{app: app-{i}}}\n  template:\n    metadata:\n      \
             labels: {{app: app-{i}}}\n    spec:\n      containers:\n      - name: app\n        \
             image: acme/app:1\n        envFrom:\n        - configMapRef: {{name: settings-{i}}}\n      \
             volumes:\n      - name: settings\n        configMap: {{name: settings-{i}}}\n"
        );
        for (name, text) in [
            (format!("cm-{i}.yaml"), config_map),
            (format!("deploy-{i}.yaml"), deployment),
        ] {
            std::fs::write(dir.path().join(&name), text).expect("write resource");
            kustomization.push_str(&format!("- {name}\n"));
        }
    }
    std::fs::write(dir.path().join("kustomization.yaml"), kustomization).expect("write");
    dir
}

#[divan::bench(args = [1000, 10_000], sample_count = 3, sample_size = 1)]
fn many_files(bencher: Bencher, files: usize) {
    let root = many_files_repo(files);
    bencher.bench(|| {
        let source = DirSource::new(root);
        let built = overlay::build(&source, "").expect("builds");
        assert_eq!(built.len(), files);
        overlay::to_yaml(&built).len()
    });
}
