//! The SQLite backend of the state store: one database file in the state directory, shared by
//! every ferry process at once.
//!
//! Layout of the directory: `.gitignore` (`*`, so the directory never shows in `git status`),
//! `state.db` (with SQLite's `state.db-wal` and `state.db-shm` beside it), `lock` (taken only
//! while the directory is set up, see [`super::lock`]) and, once the sled database of an earlier
//! release was migrated, `sled.migrated`. The database holds one table,
//! `kv (key BLOB PRIMARY KEY, value BLOB)`; the layout version is stored under [`LAYOUT_KEY`].
//!
//! Durability: the journal is a write-ahead log and `synchronous=FULL`, so a transaction is in
//! the log and on disk before it returns, and a process killed at any instant leaves all of a
//! transaction or none of it. Concurrency: readers never wait for writers; a writer takes
//! SQLite's write lock when its transaction begins (`BEGIN IMMEDIATE`) and waits up to the busy
//! timeout for another writer to finish.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rusqlite::config::DbConfig;
use rusqlite::{Connection, ErrorCode, OptionalExtension, Transaction, TransactionBehavior};

use super::lock::{Backoff, DirLock};
use super::{Entries, StateError, StateStore, Txn, display_key, prefix_end, sled_import};

/// The key holding the layout version of a state directory (a JSON number).
pub const LAYOUT_KEY: &[u8] = b"meta/layout";
/// The layout version this ferry writes and understands.
pub const LAYOUT_VERSION: u64 = 1;
/// How long [`SqliteStore::open`] and each transaction wait for another process by default.
pub const DEFAULT_OPEN_WAIT: Duration = Duration::from_secs(10);

/// The database file inside the state directory.
const DB_FILE: &str = "state.db";

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS kv (key BLOB PRIMARY KEY NOT NULL, value BLOB NOT NULL) WITHOUT ROWID";

/// A [`StateStore`] in a directory on disk, backed by SQLite.
///
/// Any number of processes may have the same directory open, readers and writers alike.
/// Opening is cheap (a file open and two small queries), so a command may open the store for
/// each operation; a long-running process keeps one open.
pub struct SqliteStore {
    dir: PathBuf,
    wait: Duration,
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (and on first use creates) the state directory `dir`. `wait` bounds how long
    /// opening and each later transaction wait for other processes ([`DEFAULT_OPEN_WAIT`] is a
    /// good default).
    ///
    /// A sled database left by an earlier release is migrated on the first open. Fails with
    /// [`StateError::Busy`] when other processes hold the directory longer than `wait`, and
    /// with [`StateError::LayoutTooNew`] when a newer ferry wrote it. Older layouts are migrated.
    pub fn open(dir: &Path, wait: Duration) -> Result<SqliteStore, StateError> {
        prepare_dir(dir)?;
        let store = SqliteStore {
            dir: dir.to_path_buf(),
            wait,
            conn: Mutex::new(connect(&dir.join(DB_FILE), wait)?),
        };
        if !store.is_set_up()? {
            store.set_up()?;
        }
        store.check_layout()?;
        Ok(store)
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic inside a transaction rolls it back while unwinding (the `Transaction` is
        // dropped), so a poisoned connection is still a consistent one.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts a write transaction, waiting for other writers up to the busy timeout.
    fn begin<'c>(&self, conn: &'c mut Connection) -> Result<Transaction<'c>, StateError> {
        let started = Instant::now();
        conn.transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|source| match source.sqlite_error_code() {
                Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StateError::Busy {
                    path: self.dir.clone(),
                    waited: started.elapsed(),
                },
                _ => StateError::Write { source },
            })
    }

    /// Whether the table exists and no sled database waits to be migrated: the state every
    /// open after the first finds, checked without taking any lock.
    fn is_set_up(&self) -> Result<bool, StateError> {
        if self.dir.join(sled_import::SLED_DIR).is_dir() {
            return Ok(false);
        }
        let conn = self.conn();
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'kv'",
                [],
                |row| row.get(0),
            )
            .map_err(|source| self.open_error(source))?;
        Ok(tables == 1)
    }

    /// Creates the table and migrates a sled database, under the directory lock so that one
    /// process does it while the others wait.
    fn set_up(&self) -> Result<(), StateError> {
        let mut backoff = Backoff::new(self.wait);
        let _lock = DirLock::acquire(&self.dir, &mut backoff)?;
        let mut conn = self.conn();
        enable_wal(&conn).map_err(|source| match source {
            WalError::Sqlite(source) => self.open_error(source),
            WalError::Refused(mode) => StateError::NoWal {
                path: self.dir.join(DB_FILE),
                mode,
            },
        })?;
        let sled_dir = self.dir.join(sled_import::SLED_DIR);
        let tx = self.begin(&mut conn)?;
        tx.execute(CREATE_TABLE, [])
            .map_err(|source| StateError::Write { source })?;
        let legacy = sled_dir.is_dir();
        if legacy {
            sled_import::copy_into(&sled_dir, &mut SqliteTxn { conn: &tx })?;
        }
        tx.commit().map_err(|source| StateError::Write { source })?;
        if legacy {
            sled_import::move_aside(&self.dir, &sled_dir)?;
        }
        Ok(())
    }

    fn open_error(&self, source: rusqlite::Error) -> StateError {
        StateError::Open {
            path: self.dir.join(DB_FILE),
            source,
        }
    }

    fn check_layout(&self) -> Result<(), StateError> {
        match self.layout()? {
            Some(LAYOUT_VERSION) => Ok(()),
            Some(found) if found > LAYOUT_VERSION => Err(StateError::LayoutTooNew {
                path: self.dir.clone(),
                found,
                expected: LAYOUT_VERSION,
            }),
            _ => self.migrate(),
        }
    }

    fn layout(&self) -> Result<Option<u64>, StateError> {
        super::get_json::<u64>(self, LAYOUT_KEY)
    }

    /// Moves the data up to [`LAYOUT_VERSION`], one version per transaction, each re-reading
    /// the version inside its transaction (another process may be migrating too) and recording
    /// the version it reached. An empty store just records the current version.
    fn migrate(&self) -> Result<(), StateError> {
        loop {
            let reached = super::StateStoreExt::transaction(self, |txn| {
                let found = match super::txn_get_json::<u64>(txn, LAYOUT_KEY)? {
                    Some(found) => found,
                    None if txn.scan_prefix(b"")?.is_empty() => LAYOUT_VERSION,
                    // Data written before the layout key existed.
                    None => 0,
                };
                if found >= LAYOUT_VERSION {
                    if found == LAYOUT_VERSION {
                        super::txn_put_json(txn, LAYOUT_KEY, &LAYOUT_VERSION)?;
                    }
                    return Ok(found);
                }
                migrate_step(txn, found).map_err(|source| StateError::Migrate {
                    path: self.dir.clone(),
                    from: found,
                    source: Box::new(source),
                })?;
                super::txn_put_json(txn, LAYOUT_KEY, &(found + 1))?;
                Ok(found + 1)
            })?;
            if reached > LAYOUT_VERSION {
                return Err(StateError::LayoutTooNew {
                    path: self.dir.clone(),
                    found: reached,
                    expected: LAYOUT_VERSION,
                });
            }
            if reached == LAYOUT_VERSION {
                return Ok(());
            }
        }
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

/// Opens the database file with the settings every connection needs.
fn connect(path: &Path, wait: Duration) -> Result<Connection, StateError> {
    let open_error = |source| StateError::Open {
        path: path.to_path_buf(),
        source,
    };
    let conn = Connection::open(path).map_err(open_error)?;
    let millis = u32::try_from(wait.as_millis()).unwrap_or(u32::MAX / 2);
    conn.busy_timeout(Duration::from_millis(millis.into()))
        .map_err(open_error)?;
    // With a write-ahead log, FULL syncs the log at every commit: a transaction that returned
    // survives a power cut, not only a killed process.
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(open_error)?;
    // Closing the last connection would otherwise copy the log into the database and delete
    // it: two more syncs and a new log file for every ferry command. The log is checkpointed
    // while it grows instead (SQLite's automatic checkpoint, in a committing process).
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
        .map_err(open_error)?;
    Ok(conn)
}

enum WalError {
    Sqlite(rusqlite::Error),
    Refused(String),
}

/// Switches the database to write-ahead logging (a setting stored in the file).
fn enable_wal(conn: &Connection) -> Result<(), WalError> {
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(WalError::Sqlite)?;
    if mode.eq_ignore_ascii_case("wal") {
        Ok(())
    } else {
        Err(WalError::Refused(mode))
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

/// Which way a scan runs.
#[derive(Clone, Copy)]
enum Order {
    Ascending,
    Descending,
}

fn get(conn: &Connection, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
    conn.prepare_cached("SELECT value FROM kv WHERE key = ?1")
        .and_then(|mut stmt| stmt.query_row([key], |row| row.get(0)).optional())
        .map_err(|source| StateError::Read {
            key: display_key(key),
            source,
        })
}

fn scan(
    conn: &Connection,
    prefix: &[u8],
    order: Order,
    limit: usize,
) -> Result<Entries, StateError> {
    let direction = match order {
        Order::Ascending => "ASC",
        Order::Descending => "DESC",
    };
    // SQLite's `LIMIT -1` means no limit.
    let limit = i64::try_from(limit).unwrap_or(-1);
    let read_error = |source| StateError::Read {
        key: display_key(prefix),
        source,
    };
    // BLOBs compare as `memcmp`, then by length: the byte order of the other backends. The
    // keys starting with `prefix` are exactly those in `prefix..prefix_end(prefix)`.
    let rows = match prefix_end(prefix) {
        Some(end) => {
            let sql = format!(
                "SELECT key, value FROM kv WHERE key >= ?1 AND key < ?2 \
                 ORDER BY key {direction} LIMIT ?3"
            );
            let mut stmt = conn.prepare_cached(&sql).map_err(read_error)?;
            stmt.query_map(rusqlite::params![prefix, end, limit], entry)
                .and_then(Iterator::collect)
        }
        None => {
            let sql = format!(
                "SELECT key, value FROM kv WHERE key >= ?1 ORDER BY key {direction} LIMIT ?2"
            );
            let mut stmt = conn.prepare_cached(&sql).map_err(read_error)?;
            stmt.query_map(rusqlite::params![prefix, limit], entry)
                .and_then(Iterator::collect)
        }
    };
    rows.map_err(read_error)
}

fn entry(row: &rusqlite::Row<'_>) -> rusqlite::Result<(Vec<u8>, Vec<u8>)> {
    Ok((row.get(0)?, row.get(1)?))
}

fn put(conn: &Connection, key: &[u8], value: &[u8]) -> Result<(), StateError> {
    conn.prepare_cached(
        "INSERT INTO kv (key, value) VALUES (?1, ?2) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )
    .and_then(|mut stmt| stmt.execute([key, value]))
    .map(drop)
    .map_err(|source| StateError::Write { source })
}

fn delete(conn: &Connection, key: &[u8]) -> Result<(), StateError> {
    conn.prepare_cached("DELETE FROM kv WHERE key = ?1")
        .and_then(|mut stmt| stmt.execute([key]))
        .map(drop)
        .map_err(|source| StateError::Write { source })
}

/// A [`Txn`] inside an open SQLite write transaction: SQLite itself lets it read its own
/// writes, and rolls them all back unless the transaction is committed.
pub(crate) struct SqliteTxn<'c> {
    conn: &'c Connection,
}

impl Txn for SqliteTxn<'_> {
    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        get(self.conn, key)
    }

    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<(), StateError> {
        put(self.conn, key, value)
    }

    fn delete(&mut self, key: &[u8]) -> Result<(), StateError> {
        delete(self.conn, key)
    }

    fn scan_prefix(&mut self, prefix: &[u8]) -> Result<Entries, StateError> {
        scan(self.conn, prefix, Order::Ascending, usize::MAX)
    }

    fn scan_prefix_rev(&mut self, prefix: &[u8], limit: usize) -> Result<Entries, StateError> {
        scan(self.conn, prefix, Order::Descending, limit)
    }
}

impl StateStore for SqliteStore {
    fn run_transaction(
        &self,
        f: &mut dyn FnMut(&mut dyn Txn) -> Result<(), StateError>,
    ) -> Result<(), StateError> {
        let mut conn = self.conn();
        let tx = self.begin(&mut conn)?;
        // An `Err` drops `tx`, which rolls everything back.
        f(&mut SqliteTxn { conn: &tx })?;
        tx.commit().map_err(|source| StateError::Write { source })
    }

    fn run_read(
        &self,
        f: &mut dyn FnMut(&mut dyn Txn) -> Result<(), StateError>,
    ) -> Result<(), StateError> {
        let mut conn = self.conn();
        // A deferred transaction takes no lock until its first read, which starts one snapshot
        // of the write-ahead log for all the reads after it; it never waits for a writer.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Deferred)
            .map_err(|source| StateError::BeginRead {
                path: self.dir.join(DB_FILE),
                source,
            })?;
        let result = f(&mut super::ReadOnly(&mut SqliteTxn { conn: &tx }));
        // Nothing was written: ending it only lets the snapshot go.
        drop(tx);
        result
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        get(&self.conn(), key)
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Entries, StateError> {
        scan(&self.conn(), prefix, Order::Ascending, usize::MAX)
    }

    fn scan_prefix_rev(&self, prefix: &[u8], limit: usize) -> Result<Entries, StateError> {
        scan(&self.conn(), prefix, Order::Descending, limit)
    }

    fn compare_and_swap(
        &self,
        key: &[u8],
        old: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<Result<(), Option<Vec<u8>>>, StateError> {
        let mut conn = self.conn();
        let tx = self.begin(&mut conn)?;
        let current = get(&tx, key)?;
        if current.as_deref() != old {
            return Ok(Err(current));
        }
        match new {
            Some(new) => put(&tx, key, new)?,
            None => delete(&tx, key)?,
        }
        tx.commit().map_err(|source| StateError::Write { source })?;
        Ok(Ok(()))
    }
}

#[cfg(test)]
mod tests;
