//! The YAML layer of the renderer: reading manifests and kustomization files with the
//! resolution rules kustomize uses, and printing resources byte for byte as it prints them.

pub mod emit;
pub mod fast;
mod keys;
pub mod parse;
pub mod scalar;
mod style;

pub use parse::{parse_documents, parse_last_key_wins, parse_patch_documents};
pub use scalar::Schema;
