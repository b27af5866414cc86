//! Reading a commit's tree: as a [`FileSource`] for the renderer, or as a map of files.
//!
//! Trees are decoded lazily, on first use, and cached for the life of the source; blobs are
//! read when asked for. Symbolic links resolve within the tree; one that leads outside it, or
//! in a loop, is an error. A blob larger than the renderer's file limit is refused before it is
//! inflated.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::sync::{Arc, Mutex, PoisonError};

use gix::ObjectId;

use super::{GitStore, GitStoreError, resolve_commit};
use crate::overlay::{EntryKind, FileSource, check_size};

/// How many symbolic links one lookup follows before it reports a loop (as Linux does).
const MAX_LINK_HOPS: usize = 40;

/// What a tree entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NodeKind {
    Tree,
    File,
    Link,
    /// A submodule's commit: shown as an empty directory, as in a fresh checkout.
    Submodule,
}

#[derive(Debug, Clone)]
struct Node {
    name: String,
    kind: NodeKind,
    id: ObjectId,
}

/// What a path resolved to.
enum Found {
    Dir(Option<ObjectId>),
    File(ObjectId),
}

/// A commit's tree, read through [`FileSource`]. Cheap to create; safe to share between
/// threads.
pub struct TreeSource {
    repo: gix::ThreadSafeRepository,
    commit: ObjectId,
    root: ObjectId,
    trees: Mutex<HashMap<ObjectId, Arc<Vec<Node>>>>,
}

impl std::fmt::Debug for TreeSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TreeSource")
            .field("commit", &self.commit)
            .finish_non_exhaustive()
    }
}

impl GitStore {
    /// The tree of the commit `commit` names, as a [`FileSource`].
    pub fn tree_source(&self, commit: &str) -> Result<TreeSource, GitStoreError> {
        let repo = self.repo();
        let commit = resolve_commit(&repo, commit)?;
        let root = super::commit::commit_tree(&repo, commit)?;
        Ok(TreeSource {
            repo: self.repo.clone(),
            commit,
            root,
            trees: Mutex::default(),
        })
    }

    /// Every file under the directory `prefix` (`""`: the whole tree) of the commit `commit`
    /// names, by path relative to `prefix`. Empty when `prefix` does not exist. Symbolic links
    /// and submodules are left out.
    pub fn read_tree_files(
        &self,
        commit: &str,
        prefix: &str,
    ) -> Result<BTreeMap<String, Vec<u8>>, GitStoreError> {
        let source = self.tree_source(commit)?;
        let prefix = prefix.trim_matches('/');
        let tree_error = |err| GitStoreError::ReadTree {
            commit: source.commit(),
            path: prefix.to_string(),
            source: err,
        };
        let mut files = BTreeMap::new();
        let start = match source.walk(prefix).map_err(tree_error)? {
            Some(Found::Dir(Some(tree))) => tree,
            _ => return Ok(files),
        };
        source
            .collect_files(start, "", &mut files)
            .map_err(tree_error)?;
        Ok(files)
    }
}

impl TreeSource {
    /// The full hex id of the commit this tree belongs to.
    pub fn commit(&self) -> String {
        self.commit.to_string()
    }

    /// The entries of the tree `id`, decoded once and cached.
    fn nodes(&self, id: ObjectId) -> io::Result<Arc<Vec<Node>>> {
        let cached = self
            .trees
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .cloned();
        if let Some(nodes) = cached {
            return Ok(nodes);
        }
        let repo = self.repo.to_thread_local();
        let tree = repo.find_tree(id).map_err(io::Error::other)?;
        let decoded = tree.decode().map_err(io::Error::other)?;
        let nodes: Vec<Node> = decoded
            .entries
            .iter()
            .map(|entry| Node {
                name: String::from_utf8_lossy(entry.filename).into_owned(),
                kind: node_kind(entry.mode),
                id: entry.oid.to_owned(),
            })
            .collect();
        let nodes = Arc::new(nodes);
        self.trees
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, nodes.clone());
        Ok(nodes)
    }

    fn blob(&self, id: ObjectId) -> io::Result<Vec<u8>> {
        let repo = self.repo.to_thread_local();
        let header = repo.find_header(id).map_err(io::Error::other)?;
        check_size(header.size())?;
        let mut blob = repo.find_blob(id).map_err(io::Error::other)?;
        Ok(blob.take_data())
    }

    /// Resolves `path`, following symbolic links within the tree. `None` when nothing exists
    /// there (or a component on the way is a file).
    fn walk(&self, path: &str) -> io::Result<Option<Found>> {
        let mut pending: Vec<String> = components(path).rev().map(str::to_string).collect();
        // The directories from the root down to where the walk is, with their names.
        let mut dirs: Vec<(String, ObjectId)> = vec![(String::new(), self.root)];
        let mut hops = 0;
        while let Some(component) = pending.pop() {
            if component == ".." {
                if dirs.len() == 1 {
                    return Err(outside_tree(path));
                }
                dirs.pop();
                continue;
            }
            let (_, dir) = dirs.last().expect("the root is never popped");
            let nodes = self.nodes(*dir)?;
            let Some(node) = nodes.iter().find(|n| n.name == component) else {
                return Ok(None);
            };
            match node.kind {
                NodeKind::Tree => dirs.push((component, node.id)),
                NodeKind::Link => {
                    hops += 1;
                    if hops > MAX_LINK_HOPS {
                        return Err(io::Error::other(format!(
                            "too many symbolic links in {path}"
                        )));
                    }
                    let target = String::from_utf8_lossy(&self.blob(node.id)?).into_owned();
                    if target.starts_with('/') {
                        return Err(outside_tree(path));
                    }
                    pending.extend(components(&target).rev().map(str::to_string));
                }
                NodeKind::Submodule if pending.is_empty() => return Ok(Some(Found::Dir(None))),
                NodeKind::File if pending.is_empty() => return Ok(Some(Found::File(node.id))),
                NodeKind::File | NodeKind::Submodule => return Ok(None),
            }
        }
        let (_, dir) = dirs.last().expect("the root is never popped");
        Ok(Some(Found::Dir(Some(*dir))))
    }

    /// Adds every file below the tree `id` to `files`, by path under `base`.
    fn collect_files(
        &self,
        id: ObjectId,
        base: &str,
        files: &mut BTreeMap<String, Vec<u8>>,
    ) -> io::Result<()> {
        for node in self.nodes(id)?.iter() {
            let path = if base.is_empty() {
                node.name.clone()
            } else {
                format!("{base}/{}", node.name)
            };
            match node.kind {
                NodeKind::Tree => self.collect_files(node.id, &path, files)?,
                NodeKind::File => {
                    files.insert(path, self.blob(node.id)?);
                }
                NodeKind::Link | NodeKind::Submodule => {}
            }
        }
        Ok(())
    }
}

fn node_kind(mode: gix::objs::tree::EntryMode) -> NodeKind {
    if mode.is_tree() {
        NodeKind::Tree
    } else if mode.is_link() {
        NodeKind::Link
    } else if mode.is_commit() {
        NodeKind::Submodule
    } else {
        NodeKind::File
    }
}

/// The components of a `/`-separated path, without empty and `.` ones.
fn components(path: &str) -> impl DoubleEndedIterator<Item = &str> {
    path.split('/').filter(|c| !c.is_empty() && *c != ".")
}

fn outside_tree(path: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{path}: a symbolic link leads outside the tree"),
    )
}

impl FileSource for TreeSource {
    fn entry(&self, path: &str) -> io::Result<Option<EntryKind>> {
        Ok(self.walk(path)?.map(|found| match found {
            Found::Dir(_) => EntryKind::Dir,
            Found::File(_) => EntryKind::File,
        }))
    }

    fn read(&self, path: &str) -> io::Result<Vec<u8>> {
        match self.walk(path)? {
            Some(Found::File(id)) => self.blob(id),
            Some(Found::Dir(_)) => Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                format!("{path} is a directory"),
            )),
            None => Err(not_found(path)),
        }
    }

    fn read_dir(&self, path: &str) -> io::Result<Vec<String>> {
        let tree = match self.walk(path)? {
            Some(Found::Dir(Some(tree))) => tree,
            Some(Found::Dir(None)) => return Ok(Vec::new()),
            Some(Found::File(_)) => {
                let message = format!("{path} is not a directory");
                return Err(io::Error::new(io::ErrorKind::NotADirectory, message));
            }
            None => return Err(not_found(path)),
        };
        let mut names: Vec<String> = self.nodes(tree)?.iter().map(|n| n.name.clone()).collect();
        names.sort();
        Ok(names)
    }
}

fn not_found(path: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{path} does not exist in the tree"),
    )
}
