//! A transaction that buffers its writes over a read-only view of the store, so that a backend
//! can apply them all at once (or drop them) when the transaction's closure returns.

use std::collections::BTreeMap;

use super::{Entries, StateError, Txn};

/// What a transaction reads through to: the committed state of a backend.
pub(crate) trait Snapshot {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError>;
    fn scan_prefix(&self, prefix: &[u8]) -> Result<Entries, StateError>;
}

/// The buffered writes of one transaction: `Some(value)` to set, `None` to delete.
pub(crate) type Writes = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// A [`Txn`] whose writes stay in memory until the backend applies [`BufferedTxn::into_writes`].
pub(crate) struct BufferedTxn<'a> {
    base: &'a dyn Snapshot,
    writes: Writes,
}

impl<'a> BufferedTxn<'a> {
    pub(crate) fn new(base: &'a dyn Snapshot) -> Self {
        Self {
            base,
            writes: Writes::new(),
        }
    }

    pub(crate) fn into_writes(self) -> Writes {
        self.writes
    }
}

impl Txn for BufferedTxn<'_> {
    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        match self.writes.get(key) {
            Some(written) => Ok(written.clone()),
            None => self.base.get(key),
        }
    }

    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<(), StateError> {
        self.writes.insert(key.to_vec(), Some(value.to_vec()));
        Ok(())
    }

    fn delete(&mut self, key: &[u8]) -> Result<(), StateError> {
        self.writes.insert(key.to_vec(), None);
        Ok(())
    }

    fn scan_prefix(&mut self, prefix: &[u8]) -> Result<Entries, StateError> {
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> =
            self.base.scan_prefix(prefix)?.into_iter().collect();
        let written = self
            .writes
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix));
        for (key, value) in written {
            match value {
                Some(value) => merged.insert(key.clone(), value.clone()),
                None => merged.remove(key),
            };
        }
        Ok(merged.into_iter().collect())
    }

    fn scan_prefix_rev(&mut self, prefix: &[u8], limit: usize) -> Result<Entries, StateError> {
        let mut all = self.scan_prefix(prefix)?;
        all.reverse();
        all.truncate(limit);
        Ok(all)
    }
}
