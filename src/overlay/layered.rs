//! A file source made of two: a stage's overlay directory from one tree, everything else from
//! another (stage-owned files from the source branch tip, the rest from a
//! revision's config commit).

use std::io;

use super::source::{EntryKind, FileSource};

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
