//! Rendering a stage with a revision: stage-owned files from the source branch tip, every
//! other file from the revision's config commit, then the revision's images.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::PromotionError;
use super::audit::hex;
use super::revision::Revision;
use crate::gitstore::GitStore;
use crate::overlay::{
    self, BuildOptions, ImageOverride, LayeredSource, RemoteFetcher, Remotes, Resource, Unpinned,
};
use crate::pipeline::Stage;

/// A stage's rendered output.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// One file per resource: file name → YAML.
    pub files: BTreeMap<String, Vec<u8>>,
    /// The rendered objects.
    pub resources: Vec<serde_json::Value>,
    /// SHA-256 over the files, names included: what approvals are bound to.
    pub digest: String,
    /// The source branch tip the stage-owned files were read from.
    pub source_commit: String,
}

/// Renders `stage` with `revision` from the repository's trees.
pub fn render(
    git: &GitStore,
    stage: &Stage,
    revision: &Revision,
) -> Result<Rendered, PromotionError> {
    let (resources, tip) = render_resources(git, stage, revision)?;
    Ok(package(resources, tip))
}

/// The resources of `stage` rendered with `revision`, and the source branch tip used.
pub fn render_resources(
    git: &GitStore,
    stage: &Stage,
    revision: &Revision,
) -> Result<(Vec<Resource>, String), PromotionError> {
    let tip = git.branch_tip(&revision.source_branch)?.ok_or_else(|| {
        PromotionError::BadInput(format!(
            "the source branch `{}` of revision {} no longer exists",
            revision.source_branch, revision.id
        ))
    })?;
    let owned = git.tree_source(&tip)?;
    let shared = git.tree_source(&revision.config_commit)?;
    let source = LayeredSource::new(&stage.overlay, &owned, &shared);
    // What a promotion writes must be reproducible: a remote base must name a tag or commit.
    let options = BuildOptions {
        remotes: git.remote_bases().map(|fetcher| Remotes {
            fetcher: fetcher as &dyn RemoteFetcher,
            unpinned: Unpinned::Refuse,
        }),
        ..BuildOptions::default()
    };
    let mut resources = overlay::build_options(&source, &stage.overlay, options)
        .map(|build| build.resources)
        .map_err(|source| PromotionError::Render {
            stage: stage.name.clone(),
            source,
        })?;
    overlay::apply_images(&mut resources, &image_overrides(revision));
    Ok((resources, tip))
}

/// The revision's pins as a final `images:` transformer.
pub fn image_overrides(revision: &Revision) -> Vec<ImageOverride> {
    revision
        .images
        .values()
        .map(|pin| ImageOverride {
            name: pin.name.clone(),
            new_name: pin.new_name.clone(),
            new_tag: pin.tag.clone(),
            digest: pin.digest.clone(),
        })
        .collect()
}

/// Files, objects and digest of rendered resources.
pub fn package(resources: Vec<Resource>, source_commit: String) -> Rendered {
    let mut files = BTreeMap::new();
    for resource in &resources {
        files.insert(
            resource.file_name(),
            overlay::resource_yaml(resource).into_bytes(),
        );
    }
    Rendered {
        digest: digest(&files),
        resources: resources.iter().map(|r| r.value().clone()).collect(),
        files,
        source_commit,
    }
}

/// SHA-256 over file names and contents.
pub fn digest(files: &BTreeMap<String, Vec<u8>>) -> String {
    let mut hasher = Sha256::new();
    for (name, content) in files {
        hasher.update((name.len() as u64).to_be_bytes());
        hasher.update(name.as_bytes());
        hasher.update((content.len() as u64).to_be_bytes());
        hasher.update(content);
    }
    format!("sha256:{}", hex(&hasher.finalize()))
}
