//! `ferry validate` and `ferry graph` on the example and on broken inputs.

use crate::support::TestRepo;

#[test]
fn the_example_validates() {
    let repo = TestRepo::example();
    let run = repo.ferry(&["validate"]).expect_code(0);
    assert!(
        run.stdout
            .contains("pipeline helloworld with 3 stages (dev, qa, prod)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("policies/access.yaml: 5 role bindings, 1 OIDC issuers"),
        "{}",
        run.stdout
    );
}

#[test]
fn the_access_file_is_checked_with_file_line_and_field() {
    rejects(
        "policies/access.yaml",
        "{role: admin,",
        "{role: owner,",
        &[
            "policies/access.yaml:24:",
            "spec.roles[4].role",
            "unknown role `owner`: expected one of viewer, releaser, promoter, admin",
        ],
    );
    rejects(
        "policies/access.yaml",
        "group:developers",
        "group:devs",
        &[
            "policies/access.yaml:21:",
            "spec.roles[2].subjects[0]",
            "unknown group `devs`",
        ],
    );
    rejects(
        "policies/access.yaml",
        "stages: [prod]",
        "stages: [production]",
        &["spec.roles[3].stages[0]", "unknown stage `production`"],
    );
    rejects(
        "policies/access.yaml",
        "audience: ferry",
        "audience: ferry\n    scope: ci",
        &["policies/access.yaml:", "unknown field `scope`"],
    );
    rejects(
        "policies/access.yaml",
        "identity: \"oidc:repo:{repository}:ref:{ref}\"",
        "identity: \"{sub}\"",
        &["spec.oidc[0].identity", "must start with a namespace"],
    );
}

#[test]
fn graph_shows_the_chain_and_each_stage() {
    let repo = TestRepo::example();
    let run = repo.ferry(&["graph"]).expect_code(0);
    assert!(run.stdout.contains("dev → qa → prod"), "{}", run.stdout);
    let prod = run
        .stdout
        .lines()
        .find(|l| l.starts_with("prod "))
        .expect("a prod row");
    assert!(
        prod.contains("qa") && prod.contains("environments/prod"),
        "{prod}"
    );
}

#[test]
fn graph_draws_fan_out_and_fan_in() {
    let repo = TestRepo::example();
    // The example's access rules name qa, which this pipeline does not have.
    repo.remove("policies/access.yaml");
    for stage in ["eu", "us"] {
        repo.write(
            &format!("environments/{stage}/kustomization.yaml"),
            "resources: [../base]\n",
        );
    }
    repo.write(
        "environments/pipeline.yaml",
        "apiVersion: ferry/v1\nkind: Pipeline\nmetadata: {name: fan}\nspec:\n  images: [acme/helloworld]\n  stages:\n  - {name: dev, overlay: environments/dev}\n  - {name: eu, overlay: environments/eu, upstream: [dev]}\n  - {name: us, overlay: environments/us, upstream: [dev]}\n  - {name: prod, overlay: environments/prod, upstream: [eu, us], requires: any}\n",
    );
    let text = repo.ferry(&["graph"]).expect_code(0).stdout;
    assert!(
        text.contains("dev → eu → prod") && text.contains("dev → us → prod"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("dev ") && l.contains("eu, us")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("prod ") && l.contains("any of eu, us")),
        "{text}"
    );
    let dot = repo
        .ferry(&["graph", "--format", "dot"])
        .expect_code(0)
        .stdout;
    assert!(dot.contains("\"eu\" -> \"prod\" [style=dashed];"), "{dot}");
    let mermaid = repo
        .ferry(&["graph", "--format", "mermaid"])
        .expect_code(0)
        .stdout;
    assert!(
        mermaid.starts_with("flowchart LR") && mermaid.contains("s_us -.-> s_prod"),
        "{mermaid}"
    );
}

/// Breaks the example with one edit and expects exit 2 and every `expected` fragment on stderr.
#[track_caller]
fn rejects(path: &str, from: &str, to: &str, expected: &[&str]) {
    let repo = TestRepo::example();
    repo.edit(path, from, to);
    let run = repo.ferry(&["validate"]).expect_code(2);
    for fragment in expected {
        assert!(
            run.stderr.contains(fragment),
            "missing {fragment:?} in:\n{}",
            run.stderr
        );
    }
}

#[test]
fn a_cycle_is_named() {
    rejects(
        "environments/pipeline.yaml",
        "auto: true, policy: dev}",
        "auto: true, policy: dev, upstream: [prod]}",
        &["environments/pipeline.yaml", "cycle: dev → qa → prod → dev"],
    );
}

#[test]
fn an_unknown_field_names_file_line_and_the_expected_fields() {
    rejects(
        "environments/pipeline.yaml",
        "upstream: [dev]",
        "upstrem: [dev]",
        &[
            "environments/pipeline.yaml:",
            "unknown field `upstrem`",
            "upstream",
        ],
    );
}

#[test]
fn a_bad_duration_is_named() {
    rejects(
        "policies/qa.yaml",
        "soak: 10m",
        "soak: 10 minutes",
        &["policies/qa.yaml:", "invalid duration `10 minutes`"],
    );
}

#[test]
fn a_bad_cron_expression_is_named() {
    rejects(
        "policies/prod.yaml",
        "\"* 9-16 * * Mon-Thu\"",
        "\"* 9-16 * Mon-Thu\"",
        &[
            "policies/prod.yaml:",
            "spec.windows.allow[0]",
            "invalid cron expression",
            "expected 5 fields",
        ],
    );
}

#[test]
fn an_unknown_time_zone_is_named() {
    rejects(
        "policies/prod.yaml",
        "Europe/Berlin",
        "Europe/Atlantis",
        &[
            "policies/prod.yaml:",
            "spec.windows.timezone",
            "unknown time zone `Europe/Atlantis`",
        ],
    );
}

#[test]
fn a_missing_overlay_directory_is_named() {
    rejects(
        "environments/pipeline.yaml",
        "overlay: environments/qa,",
        "overlay: environments/staging,",
        &[
            "environments/pipeline.yaml:",
            "spec.stages[1].overlay",
            "`environments/staging`",
            "does not exist",
        ],
    );
}

#[test]
fn an_unknown_policy_is_named() {
    rejects(
        "environments/pipeline.yaml",
        "policy: prod}",
        "policy: production}",
        &[
            "environments/pipeline.yaml:",
            "spec.stages[2].policy",
            "unknown policy `production`",
        ],
    );
}

#[test]
fn unknown_upstream_and_duplicate_stages_are_named() {
    rejects(
        "environments/pipeline.yaml",
        "upstream: [qa]",
        "upstream: [staging]",
        &["unknown stage `staging`", "expected one of"],
    );
    rejects(
        "environments/pipeline.yaml",
        "{name: qa,",
        "{name: dev,",
        &["duplicate stage name `dev`"],
    );
}

#[test]
fn an_unknown_group_and_a_bad_timestamp_are_named() {
    rejects(
        "policies/prod.yaml",
        "group:release-managers",
        "group:releasers",
        &["policies/prod.yaml:", "unknown group `releasers`"],
    );
    rejects(
        "policies/prod.yaml",
        "2026-12-20T00:00:00+01:00",
        "2026-12-20",
        &["spec.windows.deny[0]", "RFC 3339"],
    );
}

#[test]
fn malformed_yaml_names_the_line() {
    let repo = TestRepo::example();
    repo.write(
        "policies/dev.yaml",
        "apiVersion: ferry/v1\nkind: Policy\nmetadata: {name: dev\nspec: {}\n",
    );
    let run = repo.ferry(&["validate"]).expect_code(2);
    assert!(run.stderr.contains("policies/dev.yaml:"), "{}", run.stderr);
}

#[test]
fn outside_a_repository_says_what_to_do() {
    let dir = tempfile::tempdir().expect("temp dir");
    let run = crate::support::Run::from_command(
        std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
            .arg("validate")
            .current_dir(dir.path()),
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("not inside a git repository") && run.stderr.contains("--repo"),
        "{}",
        run.stderr
    );
}

#[test]
fn usage_errors_exit_2_and_completions_work() {
    let repo = TestRepo::example();
    repo.ferry(&["graph", "--format", "svg"]).expect_code(2);
    repo.ferry(&["no-such-command"]).expect_code(2);
    let bash = repo.ferry(&["completions", "bash"]).expect_code(0).stdout;
    assert!(
        bash.contains("ferry") && bash.contains("validate"),
        "{bash}"
    );
    // global options are accepted after the subcommand too
    repo.ferry(&["validate", "--repo", "."]).expect_code(0);
}

#[test]
fn a_stage_that_does_not_render_is_named() {
    let repo = TestRepo::example();
    repo.edit(
        "environments/prod/kustomization.yaml",
        "- path: resources.yaml",
        "- path: missing-patch.yaml",
    );
    let run = repo.ferry(&["validate"]).expect_code(2);
    assert!(
        run.stderr.contains("stage prod does not render")
            && run.stderr.contains("missing-patch.yaml"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("ferry build environments/prod"),
        "{}",
        run.stderr
    );
}
