//! Where ferry reads a repository's files from: a plain directory or a git tree, under one load
//! rule for every file (pipeline, policies, kustomizations, resources, patches, generator
//! sources): symbolic links are resolved and the real path must be inside the root, only
//! regular files are read, and no file is larger than [`MAX_FILE_BYTES`].

use std::collections::HashMap;
use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};

/// The largest file ferry reads from a repository: 64 MiB. The largest real manifests (CRD
/// bundles of big operators) are a few MiB.
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

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

    /// The name of the root directory itself, where it has one (a directory on disk).
    fn root_name(&self) -> Option<String> {
        None
    }
}

/// A [`FileSource`] over a directory on disk. Symbolic links are followed when they lead to a
/// path inside the root and refused otherwise, by every method; FIFOs, devices and sockets are
/// refused instead of read (so a FIFO never blocks a build). The directories it has resolved
/// are remembered, so one source can serve many builds cheaply.
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

impl DirSource {
    /// The real path of `path` inside the root; an error when a link leads outside it.
    fn real(&self, path: &str) -> io::Result<PathBuf> {
        match self.resolve(path)? {
            Some(real) => Ok(self.full(&real)),
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a symbolic link leads outside the root",
            )),
        }
    }
}

impl FileSource for DirSource {
    fn entry(&self, path: &str) -> io::Result<Option<EntryKind>> {
        match std::fs::metadata(self.real(path)?) {
            Ok(meta) if meta.is_dir() => Ok(Some(EntryKind::Dir)),
            Ok(_) => Ok(Some(EntryKind::File)),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err),
        }
    }

    fn read(&self, path: &str) -> io::Result<Vec<u8>> {
        let real = self.real(path)?;
        // Checked before opening, since opening a FIFO blocks until someone writes to it.
        regular_file(&std::fs::metadata(&real)?)?;
        // The real path has no links left; refuse one swapped in since, and never block.
        let file = File::options()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&real)?;
        let meta = file.metadata()?;
        regular_file(&meta)?;
        read_limited(file, meta.len())
    }

    fn read_dir(&self, path: &str) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(self.real(path)?)? {
            names.push(entry?.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }

    fn root_name(&self) -> Option<String> {
        let root = self
            .real_root
            .get_or_init(|| std::fs::canonicalize(&self.root).ok());
        root.as_ref()?
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
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

/// Refuses directories and special files (FIFOs, devices, sockets), naming what they are.
fn regular_file(meta: &Metadata) -> io::Result<()> {
    let kind = meta.file_type();
    let what = if kind.is_file() {
        return Ok(());
    } else if kind.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::IsADirectory,
            "is a directory, not a file",
        ));
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_block_device() || kind.is_char_device() {
        "a device"
    } else {
        "a special file"
    };
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("is {what}, not a regular file"),
    ))
}

/// Reads at most [`MAX_FILE_BYTES`], refusing a larger file (also one that grows meanwhile).
fn read_limited(file: File, size: u64) -> io::Result<Vec<u8>> {
    check_size(size)?;
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes)?;
    check_size(bytes.len() as u64)?;
    Ok(bytes)
}

/// Refuses a file of `len` bytes when it is larger than [`MAX_FILE_BYTES`].
pub fn check_size(len: u64) -> io::Result<()> {
    if len > MAX_FILE_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "is larger than the limit of {} MiB",
                MAX_FILE_BYTES / (1024 * 1024)
            ),
        ));
    }
    Ok(())
}
