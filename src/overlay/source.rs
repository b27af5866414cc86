//! Where the renderer reads files from: a plain directory or a git tree.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};

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

/// A [`FileSource`] over a directory on disk. Symbolic links are followed; the directories it
/// has resolved are remembered, so one source can serve many builds cheaply.
#[derive(Debug)]
pub struct DirSource {
    root: PathBuf,
    real_root: OnceLock<Option<PathBuf>>,
    dirs: Mutex<HashMap<String, Option<String>>>,
}

impl Clone for DirSource {
    fn clone(&self) -> Self {
        Self::new(self.root.clone())
    }
}

impl DirSource {
    /// A source rooted at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            real_root: OnceLock::new(),
            dirs: Mutex::new(HashMap::new()),
        }
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

    /// A directory's real path, remembered once resolved.
    fn resolve_dir(&self, dir: &str) -> io::Result<Option<String>> {
        if dir.is_empty() {
            return Ok(Some(String::new()));
        }
        let lock = || self.dirs.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(known) = lock().get(dir) {
            return Ok(known.clone());
        }
        let resolved = self.resolve(dir)?;
        lock().insert(dir.to_string(), resolved.clone());
        Ok(resolved)
    }

    /// `name` inside the real directory `parent`, following it if it is a link.
    fn resolve_entry(&self, parent: &str, name: &str) -> io::Result<Option<String>> {
        let joined = if parent.is_empty() {
            name.to_string()
        } else {
            format!("{parent}/{name}")
        };
        match std::fs::symlink_metadata(self.full(&joined)) {
            Ok(meta) if meta.file_type().is_symlink() => self.real_relative(&joined),
            Ok(_) => Ok(Some(joined)),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(Some(joined)),
            Err(err) => Err(err),
        }
    }

    /// Where the link `path` leads, relative to the root, or `None` outside it.
    fn real_relative(&self, path: &str) -> io::Result<Option<String>> {
        let real = match std::fs::canonicalize(self.full(path)) {
            Ok(real) => real,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Some(path.to_string())),
            Err(err) => return Err(err),
        };
        let root = self
            .real_root
            .get_or_init(|| std::fs::canonicalize(&self.root).ok());
        let Some(relative) = root.as_ref().and_then(|root| real.strip_prefix(root).ok()) else {
            return Ok(None);
        };
        let parts: Vec<String> = relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        Ok(Some(parts.join("/")))
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
        if path.is_empty() {
            return Ok(Some(String::new()));
        }
        let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
        match self.resolve_dir(parent)? {
            Some(parent) => self.resolve_entry(&parent, name),
            None => Ok(None),
        }
    }
}
