//! The state store as the authenticator sees it: a [`StateStore`] that opens the state
//! directory for each call, so that `ferry token create` and `ferry token revoke` in another
//! process count from the next request on.

use std::path::PathBuf;

use crate::state::{DEFAULT_OPEN_WAIT, Entries, SqliteStore, StateError, StateStore, Txn};

/// Opens the state directory for each operation and closes it right after.
pub struct PerCallStore {
    dir: PathBuf,
}

impl PerCallStore {
    pub fn new(dir: PathBuf) -> PerCallStore {
        PerCallStore { dir }
    }

    fn open(&self) -> Result<SqliteStore, StateError> {
        SqliteStore::open(&self.dir, DEFAULT_OPEN_WAIT)
    }
}

impl StateStore for PerCallStore {
    fn run_transaction(
        &self,
        f: &mut dyn FnMut(&mut dyn Txn) -> Result<(), StateError>,
    ) -> Result<(), StateError> {
        self.open()?.run_transaction(f)
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        self.open()?.get(key)
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Entries, StateError> {
        self.open()?.scan_prefix(prefix)
    }

    fn scan_prefix_rev(&self, prefix: &[u8], limit: usize) -> Result<Entries, StateError> {
        self.open()?.scan_prefix_rev(prefix, limit)
    }

    fn compare_and_swap(
        &self,
        key: &[u8],
        old: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<Result<(), Option<Vec<u8>>>, StateError> {
        self.open()?.compare_and_swap(key, old, new)
    }
}
