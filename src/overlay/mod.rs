//! The kustomize-compatible renderer. json-patch is used only here.

mod source;

pub use source::{DirSource, EntryKind, FileSource};
