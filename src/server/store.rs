//! The state store as the authenticator and the notification worker see it: opened for each
//! call or step, so that `ferry token create` and `ferry token revoke` in another process
//! count from the next request on, and no webhook request is made while the store is held.

use std::path::PathBuf;
use std::sync::Arc;

use crate::notify::OpenStore;
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

/// How the notification worker opens the state: for each step of its own, so that no webhook
/// request is made while it holds the store.
pub fn opener(dir: PathBuf) -> OpenStore {
    Arc::new(move || {
        let store: Arc<dyn StateStore> = Arc::new(SqliteStore::open(&dir, DEFAULT_OPEN_WAIT)?);
        Ok(store)
    })
}
