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

    /// Where `path` really is once symbolic links are followed: a normalized path relative to
    /// the root, or `None` when it leads outside the root. Sources without links return
    /// `path` itself.
    fn resolve(&self, path: &str) -> io::Result<Option<String>> {
        Ok(Some(path.to_string()))
    }
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

    fn resolve(&self, path: &str) -> io::Result<Option<String>> {
        let root = std::fs::canonicalize(&self.root)?;
        let real = match std::fs::canonicalize(self.full(path)) {
            Ok(real) => real,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Some(path.to_string())),
            Err(err) => return Err(err),
        };
        let Ok(relative) = real.strip_prefix(&root) else {
            return Ok(None);
        };
        let parts: Vec<String> = relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        Ok(Some(parts.join("/")))
    }
}

/// A [`FileSource`] that reads one directory (a stage's overlay) from one source and every
/// other path from another: stage-owned files from the source branch tip, shared files from a
/// revision's config commit.
pub struct LayeredSource<'a> {
    owned: String,
    owned_source: &'a dyn FileSource,
    rest_source: &'a dyn FileSource,
}

impl<'a> LayeredSource<'a> {
    /// Paths at or below `owned` come from `owned_source`, all others from `rest_source`.
    pub fn new(
        owned: &str,
        owned_source: &'a dyn FileSource,
        rest_source: &'a dyn FileSource,
    ) -> Self {
        let owned = owned.trim_matches('/').to_string();
        Self {
            owned,
            owned_source,
            rest_source,
        }
    }

    fn is_owned(&self, path: &str) -> bool {
        self.owned.is_empty()
            || path == self.owned
            || path
                .strip_prefix(&self.owned)
                .is_some_and(|rest| rest.starts_with('/'))
    }

    /// The entry of `path` that leads towards the owned directory, when `path` is above it.
    fn owned_child_of(&self, path: &str) -> Option<&str> {
        let rest = if path.is_empty() {
            self.owned.as_str()
        } else {
            self.owned.strip_prefix(path)?.strip_prefix('/')?
        };
        rest.split('/').next().filter(|c| !c.is_empty())
    }

    fn source_for(&self, path: &str) -> &'a dyn FileSource {
        if self.is_owned(path) {
            self.owned_source
        } else {
            self.rest_source
        }
    }
}

impl FileSource for LayeredSource<'_> {
    fn entry(&self, path: &str) -> io::Result<Option<EntryKind>> {
        if !self.is_owned(path) && self.owned_child_of(path).is_some() {
            return Ok(Some(EntryKind::Dir));
        }
        self.source_for(path).entry(path)
    }

    fn read(&self, path: &str) -> io::Result<Vec<u8>> {
        self.source_for(path).read(path)
    }

    fn read_dir(&self, path: &str) -> io::Result<Vec<String>> {
        if self.is_owned(path) {
            return self.owned_source.read_dir(path);
        }
        let Some(child) = self.owned_child_of(path) else {
            return self.rest_source.read_dir(path);
        };
        let mut names = match self.rest_source.read_dir(path) {
            Ok(names) => names,
            Err(err) if err.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(err) => return Err(err),
        };
        if !names.iter().any(|n| n == child) {
            names.push(child.to_string());
            names.sort();
        }
        Ok(names)
    }

    fn resolve(&self, path: &str) -> io::Result<Option<String>> {
        self.source_for(path).resolve(path)
    }
}
