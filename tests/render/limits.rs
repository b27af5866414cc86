//! Inputs built to exhaust memory, time or the stack: each stops with exit 2 and a message
//! naming the file, never with an abort, a crash or a hang.

use crate::support::{Run, TestRepo};

/// The classic "billion laughs": nine levels of nine aliases each, about 500 bytes that expand
/// to 9^9 strings.
fn billion_laughs(indent: &str) -> String {
    let mut text = format!(
        "{indent}a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
    );
    let names: Vec<char> = "abcdefghi".chars().collect();
    for pair in names.windows(2) {
        let (prev, next) = (pair[0], pair[1]);
        let aliases = vec![format!("*{prev}"); 9].join(",");
        text.push_str(&format!("{indent}{next}: &{next} [{aliases}]\n"));
    }
    text
}

fn config_map_bomb() -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: lol\ndata:\n{}",
        billion_laughs("  ")
    )
}

#[track_caller]
fn build(repo: &TestRepo) -> Run {
    let run = repo.ferry(&["build", "app"]).expect_code(2);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    run
}

#[track_caller]
fn assert_says(run: &Run, parts: &[&str]) {
    for part in parts {
        assert!(
            run.stderr.contains(part),
            "{part:?} not in:\n{}",
            run.stderr
        );
    }
}

#[test]
fn the_bomb_is_small() {
    assert!(config_map_bomb().len() < 600, "{}", config_map_bomb().len());
}

#[test]
fn an_alias_bomb_in_a_resource_is_refused() {
    let repo = TestRepo::empty();
    repo.write("app/kustomization.yaml", "resources:\n- lol.yaml\n")
        .write("app/lol.yaml", &config_map_bomb());
    let run = build(&repo);
    assert_says(
        &run,
        &["app/lol.yaml:", "document contains excessive aliasing"],
    );
}

#[test]
fn an_alias_bomb_in_a_kustomization_is_refused() {
    let repo = TestRepo::empty();
    repo.write(
        "app/kustomization.yaml",
        &format!("commonAnnotations:\n{}", billion_laughs("  ")),
    );
    let run = build(&repo);
    assert_says(
        &run,
        &[
            "app/kustomization.yaml:",
            "document contains excessive aliasing",
        ],
    );
}

#[test]
fn an_alias_bomb_in_a_patch_is_refused() {
    for field in [
        "patches:\n- path: lol.yaml\n",
        "patchesStrategicMerge:\n- lol.yaml\n",
    ] {
        let repo = TestRepo::empty();
        repo.write(
            "app/kustomization.yaml",
            &format!("resources:\n- cm.yaml\n{field}"),
        )
        .write(
            "app/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: lol\n",
        )
        .write("app/lol.yaml", &config_map_bomb());
        let run = build(&repo);
        assert_says(
            &run,
            &["app/lol.yaml", "document contains excessive aliasing"],
        );
    }
}

#[test]
fn an_alias_bomb_in_a_policy_file_is_refused() {
    // A gate's `json.equals` takes any value, so the bomb is expanded there if anywhere.
    let repo = TestRepo::example();
    repo.write(
        "policies/dev.yaml",
        &format!(
            "apiVersion: ferry/v1\nkind: Policy\nmetadata:\n  name: dev\nspec:\n  gates:\n  \
             - name: up\n    type: http\n    url: http://127.0.0.1:1/\n    expect:\n      \
             json:\n        pointer: /v\n        equals:\n{}",
            billion_laughs("          ")
        ),
    );
    let run = repo.ferry(&["validate"]).expect_code(2);
    assert_says(&run, &["policies/dev.yaml:", "budget breached"]);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

#[test]
fn deep_nesting_is_refused() {
    for (open, close) in [("[", "]"), ("{a: ", "}")] {
        let repo = TestRepo::empty();
        let deep = format!("{}1{}", open.repeat(10_000), close.repeat(10_000));
        repo.write("app/kustomization.yaml", "resources:\n- deep.yaml\n")
            .write(
                "app/deep.yaml",
                &format!(
                    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: deep\ndata: {deep}\n"
                ),
            );
        let run = build(&repo);
        assert_says(&run, &["app/deep.yaml:", "malformed YAML"]);
    }
    // Block collections mixed with flow ones count together.
    let repo = TestRepo::empty();
    let mut deep = String::from("data:\n");
    for level in 1..200 {
        deep.push_str(&format!("{}a:\n", " ".repeat(level * 2)));
    }
    deep.push_str(&format!(
        "{}{}1{}\n",
        " ".repeat(400),
        "[".repeat(200),
        "]".repeat(200)
    ));
    repo.write("app/kustomization.yaml", "resources:\n- deep.yaml\n")
        .write(
            "app/deep.yaml",
            &format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: deep\n{deep}"),
        );
    let run = build(&repo);
    assert_says(
        &run,
        &[
            "app/deep.yaml:",
            "collections nested deeper than 255 levels",
        ],
    );
}

/// `levels` kustomizations, each including the next as its base.
fn chain(repo: &TestRepo, levels: usize) {
    for level in 0..levels {
        repo.write(
            &format!("chain/k{level}/kustomization.yaml"),
            &format!("resources:\n- ../k{}\n", level + 1),
        );
    }
    repo.write(
        &format!("chain/k{levels}/kustomization.yaml"),
        "resources:\n- cm.yaml\n",
    )
    .write(
        &format!("chain/k{levels}/cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: end\n",
    );
}

#[test]
fn a_thousand_nested_bases_are_refused_without_overflowing_the_stack() {
    let repo = TestRepo::empty();
    chain(&repo, 1000);
    let run = repo.ferry(&["build", "chain/k0"]).expect_code(2);
    assert_says(
        &run,
        &[
            "chain/k101: kustomizations nest more than 100 deep",
            "included by chain/k100",
            "starts at chain/k0",
        ],
    );
}

#[test]
fn a_hundred_nested_bases_build() {
    let repo = TestRepo::empty();
    chain(&repo, 100);
    let run = repo.ferry(&["build", "chain/k0"]).expect_code(0);
    assert_eq!(
        run.stdout,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: end\n"
    );
}

#[test]
fn a_json_patch_that_copies_a_path_into_itself_is_stopped() {
    let repo = TestRepo::empty();
    // Each operation copies the whole map into a new key of itself, doubling it.
    let ops: String = (0..64)
        .map(|i| format!("- {{op: copy, from: /data, path: /data/k{i}}}\n"))
        .collect();
    repo.write(
        "app/kustomization.yaml",
        "resources:\n- cm.yaml\npatches:\n- path: grow.yaml\n  target: {kind: ConfigMap}\n",
    )
    .write(
        "app/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  a: b\n",
    )
    .write("app/grow.yaml", &ops);
    let run = build(&repo);
    assert_says(
        &run,
        &[
            "app/grow.yaml: operation",
            "(`copy` at `/data/k",
            "failed on ConfigMap \"cm\"",
            "the object would grow past 2000000 nodes",
        ],
    );
}

#[test]
fn a_file_larger_than_the_limit_is_refused_before_it_is_read() {
    let repo = TestRepo::empty();
    repo.write("app/kustomization.yaml", "resources:\n- huge.yaml\n");
    let huge = std::fs::File::create(repo.path().join("app/huge.yaml")).expect("create");
    // Sparse: no disk space used, and reading it would take 65 MiB of memory.
    huge.set_len(65 * 1024 * 1024).expect("set length");
    let run = build(&repo);
    assert_says(
        &run,
        &["failed to read app/huge.yaml: is larger than the limit of 64 MiB"],
    );
}
