//! Where the renderer reads files from: a plain directory or a git tree.

use std::io;
use std::path::{Path, PathBuf};

/// What a path names inside a [`FileSource`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
}

/// A read-only tree of files the renderer loads kustomizations, resources and patches from.
///
/// Paths are relative to the source's root, use `/` as separator, are already normalized
/// (no `.`, no `..`, no leading `/`), and the empty string names the root itself.
pub trait FileSource: Send + Sync {
    /// What `path` names, or `None` when nothing exists there.
    fn entry(&self, path: &str) -> io::Result<Option<EntryKind>>;
    /// The bytes of the file at `path`; `io::ErrorKind::NotFound` when there is none.
    fn read(&self, path: &str) -> io::Result<Vec<u8>>;
    /// The names of the entries of the directory at `path`, sorted.
    fn read_dir(&self, path: &str) -> io::Result<Vec<String>>;
}

/// A [`FileSource`] over a directory on disk.
#[derive(Debug, Clone)]
pub struct DirSource {
    root: PathBuf,
}

impl DirSource {
    /// A source rooted at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The directory this source reads from.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn full(&self, path: &str) -> PathBuf {
        if path.is_empty() {
            self.root.clone()
        } else {
            self.root.join(path)
        }
    }
}

impl FileSource for DirSource {
    fn entry(&self, path: &str) -> io::Result<Option<EntryKind>> {
        match std::fs::metadata(self.full(path)) {
            Ok(meta) if meta.is_dir() => Ok(Some(EntryKind::Dir)),
            Ok(_) => Ok(Some(EntryKind::File)),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err),
        }
    }

    fn read(&self, path: &str) -> io::Result<Vec<u8>> {
        std::fs::read(self.full(path))
    }

    fn read_dir(&self, path: &str) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(self.full(path))? {
            names.push(entry?.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }
}
