//! The kustomize-compatible renderer: builds a kustomization read from a [`FileSource`] (a
//! directory or a git tree) into the same objects, in the same order and printed the same way,
//! as `kustomize build` (v5). json-patch is used only here.
//!
//! The pipeline of a build follows kustomize's: resources (files and nested kustomizations),
//! generators, components, then the built-in transformers in kustomize's fixed order; at the
//! top, hash suffixes, name references, legacy ordering and clean-up. See
//! `docs/rendering.md` for what is supported.

mod config;
mod error;
mod fieldspec;
mod generator;
mod hash;
mod images;
mod kustomization;
mod loader;
mod namereference;
mod order;
mod patch;
mod resid;
mod resmap;
mod resource;
mod schema;
mod smp;
mod source;
mod target;
mod transform;
mod yaml;

pub use error::{PatchFailure, Position, RenderError};
pub use images::{ImageOverride, apply_images};
pub use loader::LoadRestriction;
pub use resource::Resource;
pub use source::{DirSource, EntryKind, FileSource, LayeredSource};

/// Builds the kustomization in `dir` (a normalized path relative to the source root, `""` for
/// the root itself), reading any file inside the source.
pub fn build(source: &dyn FileSource, dir: &str) -> Result<Vec<Resource>, RenderError> {
    build_with(source, dir, LoadRestriction::SourceRoot)
}

/// Builds the kustomization in `dir` under an explicit load restriction.
pub fn build_with(
    source: &dyn FileSource,
    dir: &str,
    restriction: LoadRestriction,
) -> Result<Vec<Resource>, RenderError> {
    let loader = loader::Loader {
        source,
        restriction,
    };
    let dir = loader::join("", dir).map_err(|reason| RenderError::Restricted {
        path: dir.to_string(),
        referrer: "the command line".to_string(),
        reason,
    })?;
    let real = loader.resolve("", &dir, "the command line")?;
    target::build(loader, &real)
}

/// The resources as one multi-document YAML stream, exactly as `kustomize build` prints it.
pub fn to_yaml(resources: &[Resource]) -> String {
    let mut out = String::new();
    for (i, resource) in resources.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&resource_yaml(resource));
    }
    out
}

/// One resource as a YAML document, formatted as in [`to_yaml`] (without a separator).
pub fn resource_yaml(resource: &Resource) -> String {
    yaml::emit::document(resource.value())
}
