//! Layered sources: a stage's overlay from one tree, every other file from another — here two
//! directories, and a git commit read through the git store.

use ferry::gitstore::GitStore;
use ferry::overlay::{self, DirSource, LayeredSource};

use crate::support::TestRepo;

const BASE: &str =
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  from: base-v1\n";

/// A config repository: a base and a dev overlay that patches it.
fn seed(repo: &TestRepo, base_version: &str, dev_value: &str) {
    repo.write("environments/base/kustomization.yaml", "resources:\n- settings.yaml\n")
        .write("environments/base/settings.yaml", &BASE.replace("base-v1", base_version))
        .write(
            "environments/dev/kustomization.yaml",
            "resources:\n- ../base\nnamePrefix: dev-\npatches:\n- path: patch.yaml\n",
        )
        .write(
            "environments/dev/patch.yaml",
            &format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  stage: {dev_value}\n"),
        );
}

#[test]
fn owned_files_come_from_one_source_and_the_rest_from_the_other() {
    let tip = TestRepo::empty();
    let config = TestRepo::empty();
    seed(&tip, "base-from-tip", "dev-from-tip");
    seed(&config, "base-from-config", "dev-from-config");
    let (tip_source, config_source) = (DirSource::new(tip.path()), DirSource::new(config.path()));
    let layered = LayeredSource::new("environments/dev", &tip_source, &config_source);
    let resources = overlay::build(&layered, "environments/dev").expect("renders");
    let yaml = overlay::to_yaml(&resources);
    assert!(yaml.contains("stage: dev-from-tip"), "{yaml}");
    assert!(yaml.contains("from: base-from-config"), "{yaml}");
    assert!(yaml.contains("name: dev-settings"), "{yaml}");
}

#[test]
fn a_directory_above_the_owned_one_lists_it_even_when_the_other_source_lacks_it() {
    let tip = TestRepo::empty();
    let config = TestRepo::empty();
    seed(&tip, "v1", "dev");
    config.write("environments/base/kustomization.yaml", "resources: []\n");
    let (tip_source, config_source) = (DirSource::new(tip.path()), DirSource::new(config.path()));
    let layered = LayeredSource::new("environments/dev", &tip_source, &config_source);
    use ferry::overlay::{EntryKind, FileSource};
    assert_eq!(
        layered.read_dir("environments").expect("lists"),
        ["base", "dev"]
    );
    assert_eq!(
        layered.entry("environments/dev").expect("entry"),
        Some(EntryKind::Dir)
    );
    assert_eq!(
        layered.entry("environments/dev/patch.yaml").expect("entry"),
        Some(EntryKind::File)
    );
}

#[test]
fn a_revision_renders_shared_files_from_its_config_commit() {
    let repo = TestRepo::empty();
    seed(&repo, "base-at-revision", "dev-at-revision");
    let revision = repo.commit("config of the revision");
    seed(&repo, "base-later", "dev-later");
    repo.commit("later change to the source branch");
    let store = GitStore::open(repo.path()).expect("opens the repository");
    let config_tree = store.tree_source(&revision).expect("tree of the revision");
    let tip = DirSource::new(repo.path());
    let layered = LayeredSource::new("environments/dev", &tip, &config_tree);
    let yaml = overlay::to_yaml(&overlay::build(&layered, "environments/dev").expect("renders"));
    assert!(yaml.contains("from: base-at-revision"), "{yaml}");
    assert!(yaml.contains("stage: dev-later"), "{yaml}");
    let whole_revision = overlay::build(&config_tree, "environments/dev").expect("renders");
    assert!(overlay::to_yaml(&whole_revision).contains("stage: dev-at-revision"));
}

#[test]
fn links_inside_the_root_are_followed() {
    let repo = TestRepo::empty();
    seed(&repo, "linked-base", "dev");
    std::os::unix::fs::symlink("base", repo.path().join("environments/shared")).expect("symlink");
    repo.write(
        "environments/dev/kustomization.yaml",
        "resources:\n- ../shared\npatches:\n- path: patch.yaml\n",
    );
    let resources =
        overlay::build(&DirSource::new(repo.path()), "environments/dev").expect("renders");
    assert!(overlay::to_yaml(&resources).contains("from: linked-base"));
}

#[test]
fn building_many_directories_at_once_gives_each_build_result() {
    let repo = TestRepo::example();
    let source = DirSource::new(repo.path());
    let dirs = [
        "environments/dev",
        "environments/qa",
        "environments/prod",
        "environments/dev",
        "missing",
    ];
    let all = overlay::build_all(&source, &dirs);
    assert_eq!(all.len(), dirs.len());
    for (dir, result) in dirs.iter().zip(all) {
        match (result, overlay::build(&DirSource::new(repo.path()), dir)) {
            (Ok(batch), Ok(single)) => {
                assert_eq!(overlay::to_yaml(&batch), overlay::to_yaml(&single))
            }
            (Err(batch), Err(single)) => assert_eq!(batch.to_string(), single.to_string()),
            (batch, single) => panic!("{dir}: {batch:?} vs {single:?}"),
        }
    }
}

/// Many overlays of one base, each with its own prefix.
fn many_overlays(dir: &std::path::Path, count: usize) -> Vec<String> {
    let write = |path: &str, text: &str| {
        let full = dir.join(path);
        std::fs::create_dir_all(full.parent().expect("parent")).expect("create dir");
        std::fs::write(full, text).expect("write");
    };
    write("base/kustomization.yaml", "resources:\n- settings.yaml\n");
    write("base/settings.yaml", BASE);
    (0..count)
        .map(|i| {
            let overlay = format!("overlays/o{i}");
            write(
                &format!("{overlay}/kustomization.yaml"),
                &format!("resources:\n- ../../base\nnamePrefix: o{i}-\n"),
            );
            overlay
        })
        .collect()
}

#[test]
fn build_each_hands_results_over_in_order_and_stops_when_asked() {
    let dir = tempfile::tempdir().expect("temp dir");
    let overlays = many_overlays(dir.path(), 40);
    let dirs: Vec<&str> = overlays.iter().map(String::as_str).collect();
    let source = DirSource::new(dir.path());
    let mut seen = Vec::new();
    overlay::build_each(
        &source,
        &dirs,
        overlay::BuildOptions::default(),
        |index, result| {
            let build = result.expect("builds");
            (index, build.resources[0].name().to_string())
        },
        |index, (mapped, name)| {
            assert_eq!(index, mapped);
            seen.push(name);
            index < 9
        },
    );
    let expected: Vec<String> = (0..10).map(|i| format!("o{i}-settings")).collect();
    assert_eq!(seen, expected);
}
