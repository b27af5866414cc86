//! Golden cases: every directory under `tests/fixtures/kustomize` is built by the renderer and
//! compared byte for byte with what real kustomize printed for it (`expected.yaml`, produced by
//! `regenerate.sh`), so these tests need no kustomize themselves.

use std::path::PathBuf;

use ferry::overlay::{self, DirSource};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kustomize")
}

#[track_caller]
fn check(case: &str) {
    let dir = fixtures().join(case);
    let expected = std::fs::read_to_string(dir.join("expected.yaml")).expect("expected.yaml");
    let resources = overlay::build(&DirSource::new(&dir), "")
        .unwrap_or_else(|err| panic!("{case}: kustomize built it, ferry failed: {err}"));
    let actual = overlay::to_yaml(&resources);
    if actual != expected {
        let diff = similar::TextDiff::from_lines(&expected, &actual)
            .unified_diff()
            .header("kustomize", "ferry")
            .to_string();
        panic!("{case}: output differs from kustomize's\n{diff}");
    }
}

macro_rules! golden {
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

golden! {
    build_metadata_all_options => "build-metadata-all-options",
    build_metadata_in_base_is_ignored => "build-metadata-in-base-is-ignored",
    build_metadata_managed_by_label => "build-metadata-managed-by-label",
    build_metadata_origin_annotations => "build-metadata-origin-annotations",
    build_metadata_transformer_annotations => "build-metadata-transformer-annotations",
    common_annotations => "common-annotations",
    common_labels_selectors_and_templates => "common-labels-selectors-and-templates",
    component_built_directly => "component-built-directly",
    component_in_overlay_chain => "component-in-overlay-chain",
    components => "components",
    configurations_custom_kind => "configurations-custom-kind",
    configurations_from_base => "configurations-from-base",
    crds_openapi_definitions => "crds-openapi-definitions",
    custom_resources_and_crds => "custom-resources-and-crds",
    duplicate_keys_last_wins => "duplicate-keys-last-wins",
    field_name_two_spellings => "field-name-two-spellings",
    field_names_any_letter_case => "field-names-any-letter-case",
    generators_behavior_merge_replace => "generators-behavior-merge-replace",
    generators_global_disable_hash => "generators-global-disable-hash",
    generators_literals_files_envs => "generators-literals-files-envs",
    generators_merge_across_prefixed_layers => "generators-merge-across-prefixed-layers",
    generators_merge_disable_hash_overlay => "generators-merge-disable-hash-overlay",
    generators_merge_into_plain_resources => "generators-merge-into-plain-resources",
    generators_options => "generators-options",
    images_name_tag_digest => "images-name-tag-digest",
    input_crlf_tabs_and_comments => "input-crlf-tabs-and-comments",
    json_patch_yaml11_values => "json-patch-yaml11-values",
    labels_include_selectors_and_fields => "labels-include-selectors-and-fields",
    labels_include_templates => "labels-include-templates",
    labels_pairs_only => "labels-pairs-only",
    legacy_field_names => "legacy-field-names",
    local_config_dropped => "local-config-dropped",
    namespace_and_prefix_cross_references => "namespace-and-prefix-cross-references",
    namespace_namespaced_kinds_only => "namespace-namespaced-kinds-only",
    namespace_rolebinding_subjects => "namespace-rolebinding-subjects",
    openapi_builtin_version_wins => "openapi-builtin-version-wins",
    openapi_custom_schema_merge_keys => "openapi-custom-schema-merge-keys",
    openapi_schema_from_base => "openapi-schema-from-base",
    order_fifo_and_custom => "order-fifo-and-custom",
    order_legacy_custom_lists => "order-legacy-custom-lists",
    order_legacy_kinds => "order-legacy-kinds",
    output_key_order => "output-key-order",
    output_nested_folding_and_blocks => "output-nested-folding-and-blocks",
    output_numbers_and_types => "output-numbers-and-types",
    output_scalars_and_quoting => "output-scalars-and-quoting",
    overlay_images_replicas_layers => "overlay-images-replicas-layers",
    overlay_of_overlay_of_overlay => "overlay-of-overlay-of-overlay",
    overlay_patch_matches_original_namespace => "overlay-patch-matches-original-namespace",
    patch_generated_configmap_changes_hash => "patch-generated-configmap-changes-hash",
    patch_rename_kind_and_delete => "patch-rename-kind-and-delete",
    patches_allow_name_change => "patches-allow-name-change",
    patches_json6902_inline_and_path => "patches-json6902-inline-and-path",
    patches_legacy_json6902 => "patches-legacy-json6902",
    patches_legacy_strategic_merge => "patches-legacy-strategic-merge",
    patches_strategic_merge_inline_and_path => "patches-strategic-merge-inline-and-path",
    patches_targets_several => "patches-targets-several",
    plugin_annotations_transformer_file => "plugin-annotations-transformer-file",
    plugin_configmap_generator => "plugin-configmap-generator",
    plugin_configs_from_directory => "plugin-configs-from-directory",
    plugin_generator_merges_into_base => "plugin-generator-merges-into-base",
    plugin_hash_transformer => "plugin-hash-transformer",
    plugin_iam_policy_generator => "plugin-iam-policy-generator",
    plugin_image_tag_transformer => "plugin-image-tag-transformer",
    plugin_label_transformer_inline => "plugin-label-transformer-inline",
    plugin_namespace_transformer_no_subjects => "plugin-namespace-transformer-no-subjects",
    plugin_namespace_transformer_options => "plugin-namespace-transformer-options",
    plugin_order_inline_before_files => "plugin-order-inline-before-files",
    plugin_patch_json6902_transformer => "plugin-patch-json6902-transformer",
    plugin_patch_strategic_merge_transformer => "plugin-patch-strategic-merge-transformer",
    plugin_patch_transformer => "plugin-patch-transformer",
    plugin_prefix_suffix_transformer => "plugin-prefix-suffix-transformer",
    plugin_prefix_transformer_kind_selected => "plugin-prefix-transformer-kind-selected",
    plugin_replacement_transformer => "plugin-replacement-transformer",
    plugin_replica_count_transformer => "plugin-replica-count-transformer",
    plugin_secret_generator => "plugin-secret-generator",
    plugin_validators_pass => "plugin-validators-pass",
    plugin_value_add_default_value => "plugin-value-add-default-value",
    plugin_value_add_list_elements => "plugin-value-add-list-elements",
    plugin_value_add_transformer => "plugin-value-add-transformer",
    prefix_ingress_service_hpa => "prefix-ingress-service-hpa",
    prefix_rbac_references => "prefix-rbac-references",
    prefix_suffix_name_references => "prefix-suffix-name-references",
    replacements_builtin_transformer => "replacements-builtin-transformer",
    replacements_copy_structures => "replacements-copy-structures",
    replacements_create_missing_fields => "replacements-create-missing-fields",
    replacements_delimiter_options => "replacements-delimiter-options",
    replacements_from_files => "replacements-from-files",
    replacements_in_component => "replacements-in-component",
    replacements_inline_source_and_targets => "replacements-inline-source-and-targets",
    replacements_overlay_renamed_objects => "replacements-overlay-renamed-objects",
    replacements_scalar_types => "replacements-scalar-types",
    replacements_select_and_reject => "replacements-select-and-reject",
    replicas => "replicas",
    resources_directories => "resources-directories",
    resources_files => "resources-files",
    resources_multi_document => "resources-multi-document",
    same_name_different_namespaces => "same-name-different-namespaces",
    secret_generator_env_and_files => "secret-generator-env-and-files",
    smp_directives_and_null => "smp-directives-and-null",
    smp_list_merge_keys => "smp-list-merge-keys",
    smp_quirks => "smp-quirks",
    storage_references_with_suffix => "storage-references-with-suffix",
    vars_across_layers => "vars-across-layers",
    vars_custom_var_reference => "vars-custom-var-reference",
    vars_service_name_and_fields => "vars-service-name-and-fields",
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
        "add these cases to tests/render/golden.rs: {missing:?}"
    );
    assert!(CASES.len() >= 40, "only {} golden cases", CASES.len());
}
