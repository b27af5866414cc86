//! An in-memory [`StateStore`] for tests of logic built on the store.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use super::txn::{BufferedTxn, Snapshot};
use super::{Entries, StateError, StateStore, Txn, prefix_end};

type Map = BTreeMap<Vec<u8>, Vec<u8>>;

/// A [`StateStore`] over a `BTreeMap` in memory: same semantics as [`SqliteStore`](super::SqliteStore),
/// nothing on disk.
#[derive(Debug, Default)]
pub struct MemStore {
    map: Mutex<Map>,
}

impl MemStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn map(&self) -> MutexGuard<'_, Map> {
        // A panic while holding the lock cannot leave the map half-written: writes are applied
        // only after the transaction's closure returned, in a loop that does not panic.
        self.map
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Snapshot for Map {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        Ok(BTreeMap::get(self, key).cloned())
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Entries, StateError> {
        Ok(prefixed(self, prefix)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
}

fn prefixed<'a>(
    map: &'a Map,
    prefix: &[u8],
) -> std::collections::btree_map::Range<'a, Vec<u8>, Vec<u8>> {
    // The keys starting with `prefix` are exactly those in `prefix..prefix_end(prefix)`.
    match prefix_end(prefix) {
        Some(end) => map.range(prefix.to_vec()..end),
        None => map.range(prefix.to_vec()..),
    }
}

impl StateStore for MemStore {
    fn run_transaction(
        &self,
        f: &mut dyn FnMut(&mut dyn Txn) -> Result<(), StateError>,
    ) -> Result<(), StateError> {
        let mut map = self.map();
        let mut txn = BufferedTxn::new(&*map);
        f(&mut txn)?;
        let writes = txn.into_writes();
        for (key, value) in writes {
            match value {
                Some(value) => map.insert(key, value),
                None => map.remove(&key),
            };
        }
        Ok(())
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        Ok(self.map().get(key).cloned())
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Entries, StateError> {
        Snapshot::scan_prefix(&*self.map(), prefix)
    }

    fn scan_prefix_rev(&self, prefix: &[u8], limit: usize) -> Result<Entries, StateError> {
        let map = self.map();
        Ok(prefixed(&map, prefix)
            .rev()
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn compare_and_swap(
        &self,
        key: &[u8],
        old: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<Result<(), Option<Vec<u8>>>, StateError> {
        let mut map = self.map();
        let current = map.get(key);
        if current.map(Vec::as_slice) != old {
            return Ok(Err(current.cloned()));
        }
        match new {
            Some(new) => map.insert(key.to_vec(), new.to_vec()),
            None => map.remove(key),
        };
        Ok(Ok(()))
    }
}
