//! Bad inputs: every one ends with exit code 2 and a message naming the file and the problem,
//! never a panic.

use crate::support::TestRepo;

const CONFIG_MAP: &str =
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  a: b\n";

/// Builds `app` in a repository holding `files`, expecting exit 2; returns stderr.
#[track_caller]
fn build_fails(files: &[(&str, &str)]) -> String {
    let repo = TestRepo::empty();
    for (path, content) in files {
        repo.write(path, content);
    }
    let run = repo.ferry(&["build", "app"]).expect_code(2);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert!(
        run.stdout.is_empty(),
        "nothing is printed on failure: {}",
        run.stdout
    );
    run.stderr
}

#[track_caller]
fn assert_mentions(stderr: &str, parts: &[&str]) {
    for part in parts {
        assert!(stderr.contains(part), "expected {part:?} in:\n{stderr}");
    }
}

#[test]
fn resources_may_not_climb_out_of_the_repository() {
    let err = build_fails(&[("app/kustomization.yaml", "resources:\n- ../../etc/passwd\n")]);
    assert_mentions(
        &err,
        &[
            "../../etc/passwd: path leads outside the root",
            "app/kustomization.yaml",
        ],
    );
}

#[test]
fn patch_paths_may_not_climb_out_of_the_repository() {
    let err = build_fails(&[(
        "app/kustomization.yaml",
        "patches:\n- path: ../../../etc/passwd\n",
    )]);
    assert_mentions(&err, &["../../../etc/passwd: path leads outside the root"]);
}

#[test]
fn symbolic_links_are_followed_before_the_check() {
    let repo = TestRepo::empty();
    repo.write("app/kustomization.yaml", "resources:\n- leak.yaml\n");
    std::os::unix::fs::symlink("/etc/hostname", repo.path().join("app/leak.yaml"))
        .expect("symlink");
    let run = repo.ferry(&["build", "app"]).expect_code(2);
    assert_mentions(
        &run.stderr,
        &["leak.yaml: resolves to a path outside the root"],
    );
}

#[test]
fn a_missing_file_is_named_with_its_referrer() {
    let err = build_fails(&[("app/kustomization.yaml", "resources:\n- deployment.yaml\n")]);
    assert_mentions(
        &err,
        &["app/deployment.yaml: no such file or directory (referenced by app/kustomization.yaml)"],
    );
}

#[test]
fn malformed_yaml_is_reported_with_its_line() {
    let err = build_fails(&[
        ("app/kustomization.yaml", "resources:\n- cm.yaml\n"),
        (
            "app/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  labels: {a: b\ndata:\n",
        ),
    ]);
    assert_mentions(&err, &["app/cm.yaml:", "malformed YAML"]);
    let line: usize = err
        .split("app/cm.yaml:")
        .nth(1)
        .and_then(|rest| rest.split(':').next())
        .and_then(|n| n.parse().ok())
        .expect("a line number");
    assert!((5..=7).contains(&line), "line {line} in {err}");
}

#[test]
fn a_malformed_kustomization_is_reported_with_its_line() {
    let err = build_fails(&[(
        "app/kustomization.yaml",
        "resources:\n- a.yaml\nnamePrefix: \"dev-\n",
    )]);
    assert_mentions(&err, &["app/kustomization.yaml:3:", "malformed YAML"]);
}

#[test]
fn a_failing_json_patch_names_the_operation_and_path() {
    let kustomization =
        "resources:\n- cm.yaml\npatches:\n- target: {kind: ConfigMap}\n  path: fix.yaml\n";
    let patch = "- op: add\n  path: /data/b\n  value: c\n- op: replace\n  path: /data/missing\n  value: x\n";
    let err = build_fails(&[
        ("app/kustomization.yaml", kustomization),
        ("app/cm.yaml", CONFIG_MAP),
        ("app/fix.yaml", patch),
    ]);
    assert_mentions(
        &err,
        &[
            "app/fix.yaml: operation 2 (`replace` at `/data/missing`) failed on ConfigMap \"settings\": the path does not exist",
        ],
    );
}

#[test]
fn a_strategic_merge_patch_without_a_target_object_is_named() {
    let kustomization = "resources:\n- cm.yaml\npatches:\n- path: patch.yaml\n";
    let patch = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: other\ndata:\n  a: c\n";
    let err = build_fails(&[
        ("app/kustomization.yaml", kustomization),
        ("app/cm.yaml", CONFIG_MAP),
        ("app/patch.yaml", patch),
    ]);
    assert_mentions(
        &err,
        &["app/patch.yaml: no resource matches strategic merge patch ConfigMap \"other\""],
    );
}

#[test]
fn a_cycle_between_kustomizations_is_named_by_its_path() {
    let err = build_fails(&[
        ("app/kustomization.yaml", "resources:\n- ../overlays/a\n"),
        ("overlays/a/kustomization.yaml", "resources:\n- ../b\n"),
        ("overlays/b/kustomization.yaml", "resources:\n- ../a\n"),
    ]);
    assert_mentions(
        &err,
        &["kustomization cycle: app -> overlays/a -> overlays/b -> overlays/a"],
    );
}

#[test]
fn fields_not_supported_yet_are_refused_not_ignored() {
    for field in ["helmCharts", "helmGlobals"] {
        let kustomization = format!("resources: []\n{field}:\n  - something\n");
        let err = build_fails(&[("app/kustomization.yaml", &kustomization)]);
        assert_mentions(
            &err,
            &[&format!(
                "app/kustomization.yaml:2: not supported yet: {field}"
            )],
        );
    }
}

#[test]
fn unknown_fields_are_refused_with_their_line() {
    let err = build_fails(&[("app/kustomization.yaml", "resources: []\nnamePrefx: dev-\n")]);
    assert_mentions(
        &err,
        &["app/kustomization.yaml:2: unknown field `namePrefx`"],
    );
    let err = build_fails(&[(
        "app/kustomization.yaml",
        "images:\n- name: web\n  newTg: v2\n",
    )]);
    assert_mentions(
        &err,
        &["app/kustomization.yaml:1: invalid `images[0]`: unknown field `newTg`"],
    );
}

#[test]
fn a_directory_without_a_kustomization_is_named() {
    let err = build_fails(&[
        ("app/kustomization.yaml", "resources:\n- ../lib\n"),
        ("lib/notes.txt", "x"),
    ]);
    assert_mentions(&err, &["lib: unable to find one of 'kustomization.yaml'"]);
}

#[test]
fn objects_without_a_name_or_kind_are_refused() {
    let err = build_fails(&[
        ("app/kustomization.yaml", "resources:\n- cm.yaml\n"),
        (
            "app/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n",
        ),
    ]);
    assert_mentions(
        &err,
        &["app/cm.yaml: document at line 1: missing metadata.name"],
    );
}

#[test]
fn duplicate_objects_are_refused() {
    let err = build_fails(&[
        ("app/kustomization.yaml", "resources:\n- a.yaml\n- b.yaml\n"),
        ("app/a.yaml", CONFIG_MAP),
        ("app/b.yaml", CONFIG_MAP),
    ]);
    assert_mentions(
        &err,
        &["b.yaml: may not add resource with an already registered id: ConfigMap \"settings\""],
    );
}

#[test]
fn a_missing_directory_argument_is_bad_input() {
    let repo = TestRepo::empty();
    let run = repo.ferry(&["build", "nowhere"]).expect_code(2);
    assert_mentions(&run.stderr, &["nowhere"]);
}
