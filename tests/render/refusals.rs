//! Refusal cases: every directory under `tests/fixtures/kustomize-errors` is a kustomization
//! that real kustomize refuses to build (`regenerate.sh` there checks it and records its
//! message); the renderer must refuse it too, with exactly the message in `error.txt`.

use std::path::PathBuf;

use ferry::overlay::{self, DirSource};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kustomize-errors")
}

#[track_caller]
fn check(case: &str) {
    let dir = fixtures().join(case);
    let expected = std::fs::read_to_string(dir.join("error.txt")).expect("error.txt");
    match overlay::build(&DirSource::new(&dir), "") {
        Ok(resources) => panic!(
            "{case}: kustomize refuses it, ferry built it:\n{}",
            overlay::to_yaml(&resources)
        ),
        Err(err) => assert_eq!(err.to_string(), expected.trim_end(), "{case}"),
    }
}

macro_rules! refused {
    ($($test:ident => $case:literal,)*) => {
        $(
            #[test]
            fn $test() {
                check($case);
            }
        )*

        const CASES: &[&str] = &[$($case),*];
    };
}

refused! {
    component_as_resource => "component-as-resource",
    configurations_conflicting_create => "configurations-conflicting-create",
    configurations_unknown_field => "configurations-unknown-field",
    external_plugin => "external-plugin",
    generator_listed_as_transformer => "generator-listed-as-transformer",
    helm_charts_not_supported => "helm-charts-not-supported",
    iam_policy_generator_unknown_cloud => "iam-policy-generator-unknown-cloud",
    openapi_path_and_version => "openapi-path-and-version",
    openapi_unknown_version => "openapi-unknown-version",
    patch_json6902_transformer_without_target_name => "patch-json6902-transformer-without-target-name",
    patch_strategic_merge_transformer_empty => "patch-strategic-merge-transformer-empty",
    patches_comments_only_file => "patches-comments-only-file",
    patches_empty_file_without_target => "patches-empty-file-without-target",
    patches_strategic_merge_comments_only => "patches-strategic-merge-comments-only",
    patches_strategic_merge_empty_file => "patches-strategic-merge-empty-file",
    plugin_file_missing => "plugin-file-missing",
    prefix_transformer_without_field_specs => "prefix-transformer-without-field-specs",
    replacements_delimiter_index_out_of_bounds => "replacements-delimiter-index-out-of-bounds",
    replacements_path_and_inline => "replacements-path-and-inline",
    replacements_source_field_missing => "replacements-source-field-missing",
    replacements_source_selects_nothing => "replacements-source-selects-nothing",
    replacements_source_selects_several => "replacements-source-selects-several",
    replacements_target_field_missing => "replacements-target-field-missing",
    replacements_target_without_select => "replacements-target-without-select",
    replacements_text_into_number_field => "replacements-text-into-number-field",
    replacements_unknown_field => "replacements-unknown-field",
    replacements_without_targets => "replacements-without-targets",
    rolebinding_subject_blank_namespace => "rolebinding-subject-blank-namespace",
    sort_options_fifo_with_legacy_lists => "sort-options-fifo-with-legacy-lists",
    sort_options_unknown_order => "sort-options-unknown-order",
    sort_options_without_order => "sort-options-without-order",
    transformer_listed_as_generator => "transformer-listed-as-generator",
    unknown_builtin_plugin => "unknown-builtin-plugin",
    validator_that_modifies => "validator-that-modifies",
    vars_ambiguous_object => "vars-ambiguous-object",
    vars_defined_twice => "vars-defined-twice",
    vars_field_not_found => "vars-field-not-found",
    vars_objref_without_api_version => "vars-objref-without-api-version",
    vars_unknown_field => "vars-unknown-field",
    value_add_field_is_a_mapping => "value-add-field-is-a-mapping",
    value_add_without_targets => "value-add-without-targets",
}

#[test]
fn every_fixture_directory_is_a_test_case() {
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(fixtures()).expect("fixtures") {
        let entry = entry.expect("entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.path().is_dir() && !CASES.contains(&name.as_str()) {
            missing.push(name);
        }
    }
    assert!(
        missing.is_empty(),
        "add these cases to tests/render/refusals.rs: {missing:?}"
    );
}
