//! The sled backend of the state store: one state directory, opened by one process at a time.
//!
//! Layout of the directory: `.gitignore` (`*`, so the directory never shows in `git status`),
//! `lock` (see [`super::lock`]) and `sled/` (the database). The database records its layout
//! version under [`LAYOUT_KEY`].

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use super::lock::{Backoff, DirLock, SledClosed, busy};
use super::txn::{BufferedTxn, Snapshot};
use super::{
    Entries, StateError, StateStore, StateStoreExt, Txn, display_key, get_json, txn_put_json,
};

/// The key holding the layout version of a state directory (a JSON number).
pub const LAYOUT_KEY: &[u8] = b"meta/layout";
/// The layout version this ferry writes and understands.
pub const LAYOUT_VERSION: u64 = 1;
/// How long [`SledStore::open`] waits for another process by default.
pub const DEFAULT_OPEN_WAIT: Duration = Duration::from_secs(10);

/// A [`StateStore`] in a directory on disk, backed by sled.
///
/// An open store holds an exclusive lock on its directory: other processes (and other opens in
/// this process) wait in [`SledStore::open`] until it is dropped. Keep it open for one operation
/// or transaction only.
pub struct SledStore {
    dir: PathBuf,
    // Field order is drop order: the database is closed, then `_closed` waits until sled has let
    // go of its files and releases the directory lock.
    db: sled::Db,
    serial: Mutex<()>,
    _closed: SledClosed,
}

impl std::fmt::Debug for SledStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledStore")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl SledStore {
    /// Opens (and on first use creates) the state directory `dir`, waiting up to `wait` while
    /// another process holds it ([`DEFAULT_OPEN_WAIT`] is a good default).
    ///
    /// Fails with [`StateError::Busy`] when the directory is still held after `wait`, and with
    /// [`StateError::LayoutTooNew`] when a newer ferry wrote it. Older layouts are migrated.
    pub fn open(dir: &Path, wait: Duration) -> Result<SledStore, StateError> {
        prepare_dir(dir)?;
        let mut backoff = Backoff::new(wait);
        let lock = DirLock::acquire(dir, &mut backoff)?;
        let db = open_db(dir, &mut backoff)?;
        let closed = SledClosed {
            data_file: dir.join("sled").join("db"),
            _lock: lock,
        };
        let store = SledStore {
            dir: dir.to_path_buf(),
            db,
            serial: Mutex::new(()),
            _closed: closed,
        };
        store.check_layout()?;
        Ok(store)
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn serial(&self) -> MutexGuard<'_, ()> {
        // The guard protects no data of its own, so a poisoned lock is still a valid one.
        self.serial
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn check_layout(&self) -> Result<(), StateError> {
        match get_json::<u64>(self, LAYOUT_KEY)? {
            Some(LAYOUT_VERSION) => Ok(()),
            Some(found) if found > LAYOUT_VERSION => Err(StateError::LayoutTooNew {
                path: self.dir.clone(),
                found,
                expected: LAYOUT_VERSION,
            }),
            Some(found) => self.migrate(found),
            None if self.db.is_empty() => {
                self.transaction(|txn| txn_put_json(txn, LAYOUT_KEY, &LAYOUT_VERSION))
            }
            // Data written before the layout key existed.
            None => self.migrate(0),
        }
    }

    /// Moves the data from layout version `from` up to [`LAYOUT_VERSION`], one version per
    /// transaction, each recording the version it reached.
    fn migrate(&self, from: u64) -> Result<(), StateError> {
        for version in from..LAYOUT_VERSION {
            self.transaction(|txn| {
                migrate_step(txn, version)?;
                txn_put_json(txn, LAYOUT_KEY, &(version + 1))
            })
            .map_err(|source| StateError::Migrate {
                path: self.dir.clone(),
                from: version,
                source: Box::new(source),
            })?;
        }
        Ok(())
    }

    fn flush(&self) -> Result<(), StateError> {
        self.db
            .flush()
            .map(drop)
            .map_err(|source| StateError::Flush { source })
    }
}

/// Rewrites data of layout version `from` into version `from + 1`.
fn migrate_step(_txn: &mut dyn Txn, from: u64) -> Result<(), StateError> {
    match from {
        // Version 0 is a store without a layout key; its data is already version 1.
        0 => Ok(()),
        _ => unreachable!("every layout version below LAYOUT_VERSION has a migration step"),
    }
}

/// Creates `dir` and its `.gitignore` when they do not exist yet.
fn prepare_dir(dir: &Path) -> Result<(), StateError> {
    fs::create_dir_all(dir).map_err(|source| StateError::CreateDir {
        path: dir.to_path_buf(),
        source,
    })?;
    let ignore = dir.join(".gitignore");
    match fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&ignore)
    {
        Ok(file) => write_ignore(file, &ignore),
        Err(err) if err.kind() == ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(StateError::WriteFile {
            path: ignore,
            source,
        }),
    }
}

fn write_ignore(mut file: fs::File, path: &Path) -> Result<(), StateError> {
    use std::io::Write;
    file.write_all(b"*\n")
        .map_err(|source| StateError::WriteFile {
            path: path.to_path_buf(),
            source,
        })
}

/// Opens the sled database of `dir`, retrying while sled's own file lock is still held.
fn open_db(dir: &Path, backoff: &mut Backoff) -> Result<sled::Db, StateError> {
    let path = dir.join("sled");
    // Every write is flushed explicitly before it returns, so sled's periodic flusher thread is
    // not needed; without it, opening starts no thread and closing has none to wait for.
    let config = sled::Config::new().path(&path).flush_every_ms(None);
    loop {
        match config.open() {
            Ok(db) => return Ok(db),
            Err(err) if is_lock_held(&err) => {
                if !backoff.pause() {
                    return Err(busy(dir, backoff));
                }
            }
            Err(source) => return Err(StateError::Open { path, source }),
        }
    }
}

/// Whether sled failed to open because its data file is locked. sled reports this only as
/// an `io::Error` of kind `Other` with this message (sled 0.34, `Config::try_lock`).
fn is_lock_held(err: &sled::Error) -> bool {
    matches!(err, sled::Error::Io(io) if io.kind() == ErrorKind::Other
        && io.to_string().contains("could not acquire lock"))
}

impl Snapshot for sled::Db {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        sled::Tree::get(self, key)
            .map(|value| value.map(|v| v.to_vec()))
            .map_err(|source| StateError::Read {
                key: display_key(key),
                source,
            })
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Entries, StateError> {
        collect(sled::Tree::scan_prefix(self, prefix), prefix, usize::MAX)
    }
}

fn collect(
    iter: impl Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>,
    prefix: &[u8],
    limit: usize,
) -> Result<Entries, StateError> {
    iter.take(limit)
        .map(|item| {
            let (key, value) = item.map_err(|source| StateError::Read {
                key: display_key(prefix),
                source,
            })?;
            Ok((key.to_vec(), value.to_vec()))
        })
        .collect()
}

impl StateStore for SledStore {
    fn run_transaction(
        &self,
        f: &mut dyn FnMut(&mut dyn Txn) -> Result<(), StateError>,
    ) -> Result<(), StateError> {
        let _serial = self.serial();
        let mut txn = BufferedTxn::new(&self.db);
        f(&mut txn)?;
        let writes = txn.into_writes();
        if writes.is_empty() {
            return Ok(());
        }
        let mut batch = sled::Batch::default();
        for (key, value) in writes {
            match value {
                Some(value) => batch.insert(key, value),
                None => batch.remove(key),
            }
        }
        self.db
            .apply_batch(batch)
            .map_err(|source| StateError::Write { source })?;
        self.flush()
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        let _serial = self.serial();
        Snapshot::get(&self.db, key)
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Entries, StateError> {
        let _serial = self.serial();
        Snapshot::scan_prefix(&self.db, prefix)
    }

    fn scan_prefix_rev(&self, prefix: &[u8], limit: usize) -> Result<Entries, StateError> {
        let _serial = self.serial();
        collect(
            sled::Tree::scan_prefix(&self.db, prefix).rev(),
            prefix,
            limit,
        )
    }

    fn compare_and_swap(
        &self,
        key: &[u8],
        old: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<Result<(), Option<Vec<u8>>>, StateError> {
        let _serial = self.serial();
        let swapped = self
            .db
            .compare_and_swap(key, old, new)
            .map_err(|source| StateError::Write { source })?;
        match swapped {
            Ok(()) => self.flush().map(Ok),
            Err(mismatch) => Ok(Err(mismatch.current.map(|v| v.to_vec()))),
        }
    }
}

#[cfg(test)]
mod tests;
