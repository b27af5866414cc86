//! The state store: a trait with transactions, compare-and-swap and ordered scans, and its
//! SQLite backend. rusqlite (and sled, read once to migrate the state of earlier releases) are
//! used only here.
//!
//! Keys and values are bytes; [`get_json`], [`txn_put_json`] and friends store JSON values.
//! Every write is durable on disk before it returns. Several ferry processes share one state
//! directory at once, readers and writers alike (see [`SqliteStore`]).

mod error;
mod lock;
mod mem;
mod sled_import;
mod sqlite;
mod txn;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use error::StateError;
pub use mem::MemStore;
pub use sled_import::SLED_MIGRATION_KEY;
pub use sqlite::{DEFAULT_OPEN_WAIT, LAYOUT_KEY, LAYOUT_VERSION, SqliteStore};

use error::display_key;

/// Key/value pairs, ordered by key.
pub type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// Reads and writes inside one transaction of a [`StateStore`].
///
/// Reads see the transaction's own earlier writes. Nothing is visible to others until the
/// transaction returns `Ok`.
pub trait Txn {
    /// The value under `key`, if any.
    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError>;
    /// Sets `key` to `value`.
    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<(), StateError>;
    /// Removes `key`; no error when it does not exist.
    fn delete(&mut self, key: &[u8]) -> Result<(), StateError>;
    /// All pairs whose key starts with `prefix`, ordered by key.
    fn scan_prefix(&mut self, prefix: &[u8]) -> Result<Entries, StateError>;
    /// At most `limit` pairs whose key starts with `prefix`, in descending key order.
    fn scan_prefix_rev(&mut self, prefix: &[u8], limit: usize) -> Result<Entries, StateError>;
}

/// A transactional, ordered key/value store.
///
/// The trait is object safe; the generic [`StateStoreExt::transaction`] is what callers use.
pub trait StateStore: Send + Sync {
    /// Runs `f` exactly once, atomically: all its writes become visible together when it returns
    /// `Ok`, none when it returns `Err` (the error is passed through). Transactions and
    /// [`compare_and_swap`](StateStore::compare_and_swap) calls are serialized, within a
    /// process and across the processes sharing a state directory. The writes are durable on
    /// disk before this returns `Ok`.
    fn run_transaction(
        &self,
        f: &mut dyn FnMut(&mut dyn Txn) -> Result<(), StateError>,
    ) -> Result<(), StateError>;

    /// Runs `f` over one consistent view of the store: all its reads see the same committed
    /// state, and it writes nothing (`put` and `delete` fail with [`StateError::ReadOnly`]).
    /// Many reads cost one snapshot instead of one each. A backend whose reads never wait for
    /// writers keeps it so here.
    fn run_read(
        &self,
        f: &mut dyn FnMut(&mut dyn Txn) -> Result<(), StateError>,
    ) -> Result<(), StateError> {
        self.run_transaction(&mut |txn| f(&mut ReadOnly(txn)))
    }

    /// The value under `key`, if any.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError>;

    /// All pairs whose key starts with `prefix`, ordered by key.
    fn scan_prefix(&self, prefix: &[u8]) -> Result<Entries, StateError>;

    /// At most `limit` pairs whose key starts with `prefix`, in descending key order: the newest
    /// first for keys that end in a zero-padded sequence number.
    fn scan_prefix_rev(&self, prefix: &[u8], limit: usize) -> Result<Entries, StateError>;

    /// Sets `key` to `new` (`None` deletes it) only if its value is `old` (`None`: absent).
    /// `Ok(Err(current))` when the value was something else. Durable before returning.
    fn compare_and_swap(
        &self,
        key: &[u8],
        old: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<Result<(), Option<Vec<u8>>>, StateError>;
}

/// The generic conveniences over any [`StateStore`], `dyn StateStore` included.
pub trait StateStoreExt: StateStore {
    /// Runs `f` atomically and returns its value; see [`StateStore::run_transaction`].
    fn transaction<T>(
        &self,
        f: impl FnMut(&mut dyn Txn) -> Result<T, StateError>,
    ) -> Result<T, StateError> {
        self.try_transaction(f)
    }

    /// Like [`transaction`](StateStoreExt::transaction), for closures that fail with an error
    /// of the caller's own: when `f` returns `Err(e)`, nothing is written and `e` is returned.
    fn try_transaction<T, E: From<StateError>>(
        &self,
        f: impl FnMut(&mut dyn Txn) -> Result<T, E>,
    ) -> Result<T, E> {
        keeping_error(|body| self.run_transaction(body), f)
    }

    /// Runs `f` over one consistent view of the store and returns its value; see
    /// [`StateStore::run_read`]. An `Err(e)` of `f` is returned as it is.
    fn read<T, E: From<StateError>>(
        &self,
        f: impl FnMut(&mut dyn Txn) -> Result<T, E>,
    ) -> Result<T, E> {
        keeping_error(|body| self.run_read(body), f)
    }
}

/// A transaction body that runs `f` through `run` (a transaction or a read) and returns `f`'s
/// value or its own error: `run` sees [`StateError::Aborted`] when `f` fails, so it writes
/// nothing, and the caller gets `f`'s error back unchanged.
fn keeping_error<T, E: From<StateError>>(
    run: impl FnOnce(&mut dyn FnMut(&mut dyn Txn) -> Result<(), StateError>) -> Result<(), StateError>,
    mut f: impl FnMut(&mut dyn Txn) -> Result<T, E>,
) -> Result<T, E> {
    let mut outcome: Option<Result<T, E>> = None;
    let result = run(&mut |txn| {
        let value = f(txn);
        let failed = value.is_err();
        outcome = Some(value);
        if failed {
            Err(StateError::Aborted)
        } else {
            Ok(())
        }
    });
    match (result, outcome) {
        (Ok(()), Some(Ok(value))) => Ok(value),
        (Err(StateError::Aborted), Some(Err(err))) => Err(err),
        (Err(err), _) => Err(err.into()),
        (Ok(()), _) => unreachable!("a finished transaction or read ran its closure successfully"),
    }
}

impl<S: StateStore + ?Sized> StateStoreExt for S {}

/// The reads of a [`Txn`], its writes refused: what [`StateStore::run_read`] hands its closure.
pub(crate) struct ReadOnly<'t>(pub(crate) &'t mut dyn Txn);

impl Txn for ReadOnly<'_> {
    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        self.0.get(key)
    }

    fn put(&mut self, key: &[u8], _value: &[u8]) -> Result<(), StateError> {
        Err(StateError::ReadOnly {
            key: display_key(key),
        })
    }

    fn delete(&mut self, key: &[u8]) -> Result<(), StateError> {
        Err(StateError::ReadOnly {
            key: display_key(key),
        })
    }

    fn scan_prefix(&mut self, prefix: &[u8]) -> Result<Entries, StateError> {
        self.0.scan_prefix(prefix)
    }

    fn scan_prefix_rev(&mut self, prefix: &[u8], limit: usize) -> Result<Entries, StateError> {
        self.0.scan_prefix_rev(prefix, limit)
    }
}

/// The JSON value under `key`, if any.
pub fn get_json<T: DeserializeOwned>(
    store: &dyn StateStore,
    key: &[u8],
) -> Result<Option<T>, StateError> {
    store.get(key)?.map(|bytes| decode(key, &bytes)).transpose()
}

/// Stores `value` as JSON under `key`, in a transaction of its own.
pub fn put_json<T: Serialize + ?Sized>(
    store: &dyn StateStore,
    key: &[u8],
    value: &T,
) -> Result<(), StateError> {
    let bytes = encode(key, value)?;
    store.transaction(|txn| txn.put(key, &bytes))
}

/// All JSON values whose key starts with `prefix`, ordered by key.
pub fn scan_json<T: DeserializeOwned>(
    store: &dyn StateStore,
    prefix: &[u8],
) -> Result<Vec<(Vec<u8>, T)>, StateError> {
    decode_all(store.scan_prefix(prefix)?)
}

/// At most `limit` JSON values whose key starts with `prefix`, in descending key order.
pub fn scan_json_rev<T: DeserializeOwned>(
    store: &dyn StateStore,
    prefix: &[u8],
    limit: usize,
) -> Result<Vec<(Vec<u8>, T)>, StateError> {
    decode_all(store.scan_prefix_rev(prefix, limit)?)
}

/// The JSON value under `key` inside a transaction, if any.
pub fn txn_get_json<T: DeserializeOwned>(
    txn: &mut dyn Txn,
    key: &[u8],
) -> Result<Option<T>, StateError> {
    txn.get(key)?.map(|bytes| decode(key, &bytes)).transpose()
}

/// Stores `value` as JSON under `key` inside a transaction.
pub fn txn_put_json<T: Serialize + ?Sized>(
    txn: &mut dyn Txn,
    key: &[u8],
    value: &T,
) -> Result<(), StateError> {
    txn.put(key, &encode(key, value)?)
}

/// All JSON values whose key starts with `prefix` inside a transaction, ordered by key.
pub fn txn_scan_json<T: DeserializeOwned>(
    txn: &mut dyn Txn,
    prefix: &[u8],
) -> Result<Vec<(Vec<u8>, T)>, StateError> {
    decode_all(txn.scan_prefix(prefix)?)
}

/// At most `limit` JSON values whose key starts with `prefix` inside a transaction, in
/// descending key order.
pub fn txn_scan_json_rev<T: DeserializeOwned>(
    txn: &mut dyn Txn,
    prefix: &[u8],
    limit: usize,
) -> Result<Vec<(Vec<u8>, T)>, StateError> {
    decode_all(txn.scan_prefix_rev(prefix, limit)?)
}

/// Allocates the next number of the sequence stored under `key`: 1, 2, 3, … Callers put it
/// into keys zero-padded (`format!("{seq:020}")`) so that keys sort in allocation order.
///
/// The counter is stored as 8 big-endian bytes.
pub fn next_seq(txn: &mut dyn Txn, key: &[u8]) -> Result<u64, StateError> {
    let current = match txn.get(key)? {
        None => 0,
        Some(bytes) => {
            let bytes: [u8; 8] = bytes
                .as_slice()
                .try_into()
                .map_err(|_| StateError::Corrupt {
                    key: display_key(key),
                    reason: "not an 8-byte counter",
                })?;
            u64::from_be_bytes(bytes)
        }
    };
    let next = current.checked_add(1).ok_or(StateError::Corrupt {
        key: display_key(key),
        reason: "sequence counter overflowed",
    })?;
    txn.put(key, &next.to_be_bytes())?;
    Ok(next)
}

/// The smallest key greater than every key starting with `prefix`, if one exists.
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

fn encode<T: Serialize + ?Sized>(key: &[u8], value: &T) -> Result<Vec<u8>, StateError> {
    serde_json::to_vec(value).map_err(|source| StateError::Encode {
        key: display_key(key),
        source,
    })
}

fn decode<T: DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T, StateError> {
    serde_json::from_slice(bytes).map_err(|source| StateError::Decode {
        key: display_key(key),
        source,
    })
}

fn decode_all<T: DeserializeOwned>(entries: Entries) -> Result<Vec<(Vec<u8>, T)>, StateError> {
    entries
        .into_iter()
        .map(|(key, bytes)| {
            let value = decode(&key, &bytes)?;
            Ok((key, value))
        })
        .collect()
}

#[cfg(test)]
mod tests;
