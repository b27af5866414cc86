//! Where ferry reads a repository's files from: a plain directory or a git tree, under one load
//! rule for every file (pipeline, policies, kustomizations, resources, patches, generator
//! sources): symbolic links are resolved and the real path must be inside the root, only
//! regular files are read, and no file is larger than [`MAX_FILE_BYTES`].

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use rustc_hash::FxHashMap;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};

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
/// refused instead of read (so a FIFO never blocks a build). The paths it has resolved are
/// remembered, with what they name where looking them up told, so one source serves many
/// builds with one `lstat` per path: a source is meant for one command's run, over files that
/// do not change meanwhile. Paths are looked up and opened from a descriptor of the root, so
/// the system walks only the path inside it each time.
#[derive(Debug)]
pub struct DirSource {
    root: PathBuf,
    /// The root, opened once (`None` when it cannot be: paths are then used whole).
    root_dir: OnceLock<Option<OwnedFd>>,
    real_root: OnceLock<Option<PathBuf>>,
    paths: Mutex<FxHashMap<String, Lookup>>,
}

/// What resolving one path found.
#[derive(Debug, Clone)]
struct Lookup {
    /// The real path relative to the root; `None` outside it.
    real: Option<Arc<str>>,
    /// What the real path names, when resolving it told (it was not a link): `None` inside
    /// for nothing there.
    kind: Option<Option<FileType>>,
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
            root_dir: OnceLock::new(),
            real_root: OnceLock::new(),
            paths: Mutex::default(),
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

    fn root_dir(&self) -> Option<BorrowedFd<'_>> {
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        self.root_dir
            .get_or_init(|| rustix::fs::open(&self.root, flags, Mode::empty()).ok())
            .as_ref()
            .map(AsFd::as_fd)
    }

    /// The status of `path` (inside the root, not empty), or of the link it is.
    fn lstat(&self, path: &str) -> io::Result<Stat> {
        Ok(match self.root_dir() {
            Some(root) => rustix::fs::statat(root, path, AtFlags::SYMLINK_NOFOLLOW)?,
            None => rustix::fs::lstat(self.full(path))?,
        })
    }

    /// The status of what `path` (inside the root) leads to.
    fn stat(&self, path: &str) -> io::Result<Stat> {
        Ok(match self.root_dir() {
            Some(root) if !path.is_empty() => rustix::fs::statat(root, path, AtFlags::empty())?,
            _ => rustix::fs::stat(self.full(path))?,
        })
    }

    /// Opens the file at the real path `real` for reading: never through a link (one swapped
    /// in since it was looked up), and without blocking (on a FIFO swapped in).
    fn open(&self, real: &str) -> io::Result<File> {
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let fd = match self.root_dir() {
            Some(root) => rustix::fs::openat(root, real, flags, Mode::empty())?,
            None => rustix::fs::open(self.full(real), flags, Mode::empty())?,
        };
        Ok(File::from(fd))
    }

    /// What `path` resolves to, remembered once looked up.
    fn lookup(&self, path: &str) -> io::Result<Lookup> {
        if path.is_empty() {
            return Ok(Lookup {
                real: Some(Arc::from("")),
                kind: None,
            });
        }
        let lock = || self.paths.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(known) = lock().get(path) {
            return Ok(known.clone());
        }
        let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
        let found = match self.lookup(parent)?.real {
            Some(parent) => self.resolve_entry(&parent, name)?,
            None => Lookup {
                real: None,
                kind: None,
            },
        };
        lock().insert(path.to_string(), found.clone());
        Ok(found)
    }

    /// `name` inside the real directory `parent`, following it if it is a link.
    fn resolve_entry(&self, parent: &str, name: &str) -> io::Result<Lookup> {
        let joined = if parent.is_empty() {
            name.to_string()
        } else {
            format!("{parent}/{name}")
        };
        match self.lstat(&joined) {
            Ok(stat) if kind_of(&stat) == FileType::Symlink => Ok(Lookup {
                real: self.real_relative(&joined)?.map(Arc::from),
                kind: None,
            }),
            Ok(stat) => Ok(Lookup {
                real: Some(Arc::from(joined)),
                kind: Some(Some(kind_of(&stat))),
            }),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(Lookup {
                real: Some(Arc::from(joined)),
                kind: Some(None),
            }),
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
    /// The real path of `path` inside the root, and what it names when already known; an
    /// error when a link leads outside the root.
    fn real(&self, path: &str) -> io::Result<(Arc<str>, Option<Option<FileType>>)> {
        let lookup = self.lookup(path)?;
        match lookup.real {
            Some(real) => Ok((real, lookup.kind)),
            None => Err(outside_root()),
        }
    }
}

/// What a status says the path is.
fn kind_of(stat: &Stat) -> FileType {
    FileType::from_raw_mode(stat.st_mode)
}

fn outside_root() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "a symbolic link leads outside the root",
    )
}

impl FileSource for DirSource {
    fn entry(&self, path: &str) -> io::Result<Option<EntryKind>> {
        let lookup = self.lookup(path)?;
        // The full path is only made when the lookup did not tell what is there.
        let kind = match (lookup.kind, lookup.real) {
            (_, None) => return Err(outside_root()),
            (Some(kind), Some(_)) => kind,
            (None, Some(real)) => match self.stat(&real) {
                Ok(stat) => Some(kind_of(&stat)),
                Err(err) if err.kind() == io::ErrorKind::NotFound => None,
                Err(err) => return Err(err),
            },
        };
        Ok(kind.map(|kind| {
            if kind == FileType::Directory {
                EntryKind::Dir
            } else {
                EntryKind::File
            }
        }))
    }

    fn read(&self, path: &str) -> io::Result<Vec<u8>> {
        let (real, kind) = self.real(path)?;
        // Checked before opening, since opening a device may act on it.
        match kind {
            Some(Some(kind)) => regular_file(kind)?,
            Some(None) => return Err(io::Error::from_raw_os_error(libc::ENOENT)),
            None => regular_file(kind_of(&self.stat(&real)?))?,
        }
        // The real path has no links left: what was opened is checked again.
        let file = self.open(&real)?;
        let stat = rustix::fs::fstat(&file)?;
        regular_file(kind_of(&stat))?;
        read_limited(file, u64::try_from(stat.st_size).unwrap_or(0))
    }

    fn read_dir(&self, path: &str) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(self.full(&self.real(path)?.0))? {
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
        Ok(self.lookup(path)?.real.map(|real| real.to_string()))
    }
}

/// Refuses directories and special files (FIFOs, devices, sockets), naming what they are.
fn regular_file(kind: FileType) -> io::Result<()> {
    let what = match kind {
        FileType::RegularFile => return Ok(()),
        FileType::Directory => {
            return Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                "is a directory, not a file",
            ));
        }
        FileType::Fifo => "a FIFO",
        FileType::Socket => "a socket",
        FileType::BlockDevice | FileType::CharacterDevice => "a device",
        _ => "a special file",
    };
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("is {what}, not a regular file"),
    ))
}

/// Reads the file, refusing one larger than [`MAX_FILE_BYTES`]. It reads as many bytes as the
/// file had when opened, which takes one `read` where reading to the end takes two: a file
/// written to meanwhile is read as far as that size. A file that reports no size (some file
/// systems do) is read to its end, within the limit.
fn read_limited(file: File, size: u64) -> io::Result<Vec<u8>> {
    check_size(size)?;
    let limit = if size == 0 { MAX_FILE_BYTES + 1 } else { size };
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(limit).read_to_end(&mut bytes)?;
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
