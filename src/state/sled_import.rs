//! Migration of the sled database that earlier releases kept in the state directory.
//!
//! Earlier releases stored the same keys and values in `<dir>/sled`. The first open of such a
//! directory copies every pair into SQLite in one transaction, together with a marker, and then
//! renames `sled` to `sled.migrated` so it is never read again. A process killed during the copy
//! leaves nothing in SQLite and the copy runs again; one killed after the commit but before the
//! rename leaves the marker, and the next open only renames. sled is in the build for this
//! migration alone.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use super::{StateError, Txn, txn_put_json};

/// The sled database directory inside a state directory.
pub(crate) const SLED_DIR: &str = "sled";

/// Where a migrated sled database is moved (a number is added should it exist already).
const MIGRATED_DIR: &str = "sled.migrated";

/// The key recording that the sled database was copied (a JSON object with the key count).
pub const SLED_MIGRATION_KEY: &[u8] = b"meta/sled-migration";

/// Copies every pair of the sled database in `sled_dir` into `txn`, unless an earlier open
/// already did. Returns the number of pairs copied.
pub(crate) fn copy_into(sled_dir: &Path, txn: &mut dyn Txn) -> Result<usize, StateError> {
    if txn.get(SLED_MIGRATION_KEY)?.is_some() {
        return Ok(0);
    }
    if !txn.scan_prefix_rev(b"", 1)?.is_empty() {
        return Err(StateError::SledConflict {
            path: sled_dir.to_path_buf(),
        });
    }
    let read_error = |source| StateError::ReadSled {
        path: sled_dir.to_path_buf(),
        source,
    };
    // Nothing is written to sled here, so its periodic flusher thread is not needed.
    let db = sled::Config::new()
        .path(sled_dir)
        .flush_every_ms(None)
        .open()
        .map_err(read_error)?;
    let mut copied = 0;
    for pair in db.iter() {
        let (key, value) = pair.map_err(read_error)?;
        txn.put(&key, &value)?;
        copied += 1;
    }
    txn_put_json(
        txn,
        SLED_MIGRATION_KEY,
        &serde_json::json!({ "keys": copied }),
    )?;
    Ok(copied)
}

/// Renames the copied sled database aside and makes the rename durable.
pub(crate) fn move_aside(dir: &Path, sled_dir: &Path) -> Result<PathBuf, StateError> {
    let mut target = dir.join(MIGRATED_DIR);
    let mut n = 1;
    while fs::symlink_metadata(&target).is_ok() {
        n += 1;
        target = dir.join(format!("{MIGRATED_DIR}.{n}"));
    }
    let moved = |source| StateError::MoveAside {
        from: sled_dir.to_path_buf(),
        to: target.clone(),
        source,
    };
    match fs::rename(sled_dir, &target) {
        Ok(()) => {}
        // Another process moved it first.
        Err(err) if err.kind() == ErrorKind::NotFound => return Ok(target),
        Err(err) => return Err(moved(err)),
    }
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(moved)?;
    Ok(target)
}
