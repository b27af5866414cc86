//! The kustomize-compatible renderer: golden outputs from real kustomize, `ferry build` and
//! `ferry render` through the binary, bad inputs, and layered file sources.

mod cli;
mod errors;
mod golden;
mod layered;
mod limits;
mod refusals;
mod remote;

use std::path::{Path, PathBuf};

/// The directory of the golden case `case`.
fn fixture(case: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/kustomize")
        .join(case)
}

/// Copies the directory tree `from` into `to`.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}
