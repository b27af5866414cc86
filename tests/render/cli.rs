//! `ferry build` and `ferry render` through the binary, in temporary repositories.

use std::process::Command;

use super::{copy_tree, fixture};
use crate::support::{Run, TestRepo};

/// A temporary directory that is not inside any git repository.
fn outside_repository() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    assert!(
        !dir.path().ancestors().any(|d| d.join(".git").exists()),
        "the temporary directory must not be inside a repository"
    );
    dir
}

fn ferry_in(dir: &std::path::Path, args: &[&str]) -> Run {
    Run::from_command(
        Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args(args)
            .current_dir(dir),
    )
}

#[test]
fn build_prints_exactly_what_kustomize_prints() {
    let repo = TestRepo::empty();
    copy_tree(
        &fixture("overlay-of-overlay-of-overlay"),
        &repo.path().join("apps/web"),
    );
    let expected = repo.read("apps/web/expected.yaml");
    let run = repo.ferry(&["build", "apps/web"]).expect_code(0);
    assert_eq!(run.stdout, expected);
}

#[test]
fn build_reads_files_anywhere_in_the_repository() {
    let repo = TestRepo::empty();
    repo.write("base/kustomization.yaml", "resources:\n- cm.yaml\n")
        .write("base/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  mode: base\n")
        .write("shared/patch.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  mode: patched\n")
        .write(
            "envs/dev/kustomization.yaml",
            "resources:\n- ../../base\npatches:\n- path: ../../shared/patch.yaml\n",
        );
    let run = repo.ferry(&["build", "envs/dev"]).expect_code(0);
    assert!(run.stdout.contains("mode: patched"), "{}", run.stdout);
}

#[test]
fn build_outside_a_repository_applies_kustomize_load_restrictions() {
    let dir = outside_repository();
    let write = |path: &str, text: &str| {
        let full = dir.path().join(path);
        std::fs::create_dir_all(full.parent().expect("parent")).expect("create dir");
        std::fs::write(full, text).expect("write");
    };
    write("base/kustomization.yaml", "resources:\n- cm.yaml\n");
    write(
        "base/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n",
    );
    write("app/kustomization.yaml", "resources:\n- ../base\n");
    let run = ferry_in(dir.path(), &["build", "app"]).expect_code(0);
    assert!(run.stdout.contains("name: settings"), "{}", run.stdout);

    write("app/kustomization.yaml", "resources:\n- ../base/cm.yaml\n");
    let run = ferry_in(dir.path(), &["build", "app"]).expect_code(2);
    assert!(
        run.stderr
            .contains("../base/cm.yaml: security; file is not in or below"),
        "{}",
        run.stderr
    );
    let kustomization = dir.path().join("app/kustomization.yaml");
    let real = kustomization.canonicalize().expect("canonical path");
    assert!(
        run.stderr.contains(&real.display().to_string()),
        "names the file: {}",
        run.stderr
    );
}

#[test]
fn render_prints_one_stage_like_build_of_its_overlay() {
    let repo = TestRepo::example();
    let build = repo.ferry(&["build", "environments/qa"]).expect_code(0);
    let render = repo.ferry(&["render", "qa"]).expect_code(0);
    assert_eq!(render.stdout, build.stdout);
    assert!(render.stdout.contains("namespace: helloworld-qa"));
}

#[test]
fn render_all_prints_every_stage_after_a_header() {
    let repo = TestRepo::example();
    let run = repo.ferry(&["render", "--all"]).expect_code(0);
    let mut expected = String::new();
    for (i, stage) in ["dev", "qa", "prod"].into_iter().enumerate() {
        if i > 0 {
            expected.push_str("---\n");
        }
        expected.push_str(&format!("# stage: {stage}\n"));
        let overlay = format!("environments/{stage}");
        expected.push_str(&repo.ferry(&["build", &overlay]).expect_code(0).stdout);
    }
    assert_eq!(run.stdout, expected);
}

#[test]
fn render_out_writes_one_file_per_resource_and_stage() {
    let repo = TestRepo::example();
    let out = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(out.path().join("dev")).expect("create dir");
    std::fs::write(out.path().join("dev/stale.yaml"), "old").expect("write");
    std::fs::write(out.path().join("dev/README.md"), "kept").expect("write");
    let out_dir = out.path().to_str().expect("utf-8 path");
    repo.ferry(&["render", "--all", "--out", out_dir])
        .expect_code(0);
    for stage in ["dev", "qa", "prod"] {
        let mut files: Vec<String> = std::fs::read_dir(out.path().join(stage))
            .expect("stage dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".yaml"))
            .collect();
        files.sort();
        assert!(
            files.contains(&"apps_v1_deployment_helloworld.yaml".to_string()),
            "{files:?}"
        );
        assert!(
            files
                .iter()
                .any(|f| f.starts_with("v1_configmap_helloworld-config-")),
            "{files:?}"
        );
        assert!(!files.contains(&"stale.yaml".to_string()));
        let deployment = std::fs::read_to_string(
            out.path()
                .join(stage)
                .join("apps_v1_deployment_helloworld.yaml"),
        )
        .expect("deployment file");
        assert!(deployment.starts_with("apiVersion: apps/v1\n") && !deployment.contains("---"));
    }
    assert!(
        out.path().join("dev/README.md").exists(),
        "other files are left alone"
    );
}

#[test]
fn render_names_unknown_stages_and_lists_the_known_ones() {
    let repo = TestRepo::example();
    let run = repo.ferry(&["render", "staging"]).expect_code(2);
    assert!(
        run.stderr.contains("unknown stage \"staging\""),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("dev, qa, prod"), "{}", run.stderr);
}

#[test]
fn render_reports_which_stage_failed() {
    let repo = TestRepo::example();
    repo.write(
        "environments/qa/kustomization.yaml",
        "resources:\n- missing.yaml\n",
    );
    let run = repo.ferry(&["render", "--all"]).expect_code(2);
    // The stages before it are printed, whole; none after.
    let dev = repo.ferry(&["build", "environments/dev"]).expect_code(0);
    assert_eq!(run.stdout, format!("# stage: dev\n{}", dev.stdout));
    assert!(
        run.stderr
            .contains("environments/qa/missing.yaml: no such file"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("while rendering stage qa"),
        "{}",
        run.stderr
    );
}

#[test]
fn render_all_prints_nothing_when_the_configuration_does_not_load() {
    // The overlays build while the configuration loads: a configuration that does not load
    // (here, after its stages were read) must still fail before anything is printed.
    let repo = TestRepo::example();
    let pipeline = repo
        .read("environments/pipeline.yaml")
        .replace("policy: prod}", "policy: nosuch}");
    repo.write("environments/pipeline.yaml", &pipeline);
    let run = repo.ferry(&["render", "--all"]).expect_code(2);
    assert_eq!(run.stdout, "");
    assert_eq!(
        run.stderr,
        "error: environments/pipeline.yaml:13:5: spec.stages[2].policy: unknown policy `nosuch` \
         (no policies/nosuch.yaml); known: dev, prod, qa\n"
    );
}

#[test]
fn a_base_included_twice_in_one_build_is_warned_about_once() {
    let repo = TestRepo::empty();
    repo.write(
        "base/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n",
    )
    .write("base/kustomization.yaml", "Resources:\n- cm.yaml\n")
    .write(
        "a/kustomization.yaml",
        "namePrefix: a-\nresources:\n- ../base\n",
    )
    .write(
        "b/kustomization.yaml",
        "namePrefix: b-\nresources:\n- ../base\n",
    )
    .write("top/kustomization.yaml", "resources:\n- ../a\n- ../b\n");
    let run = repo.ferry(&["build", "top"]).expect_code(0);
    assert_eq!(
        run.stderr,
        "warning: base/kustomization.yaml:1: `Resources` is read as `resources` (field names \
         should be written `resources`)\n"
    );
    assert!(run.stdout.contains("name: a-settings\n"), "{}", run.stdout);
    assert!(run.stdout.contains("name: b-settings\n"), "{}", run.stdout);
}

#[test]
fn build_warns_about_what_kustomize_tolerates_naming_file_and_line() {
    let repo = TestRepo::empty();
    repo.write(
        "app/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n",
    )
    .write(
        "app/kustomization.yaml",
        "resources:\n- cm.yaml\nnameprefix: dev-\nnamespace: one\nnamespace: two\n",
    );
    let run = repo.ferry(&["build", "app"]).expect_code(0);
    assert_eq!(
        run.stderr,
        "warning: app/kustomization.yaml:5: duplicate key `namespace`: the last value is used, \
         as kustomize does\n\
         warning: app/kustomization.yaml:3: `nameprefix` is read as `namePrefix` (field names \
         should be written `namePrefix`)\n"
    );
    assert!(
        run.stdout
            .contains("  name: dev-settings\n  namespace: two\n"),
        "{}",
        run.stdout
    );
}
