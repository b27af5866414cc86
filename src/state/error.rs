//! The one error type of the state store.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// A state store operation that did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("failed to create state directory {path}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to write {path}")]
    WriteFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to lock state directory {path}")]
    Lock {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "failed to use state directory {path}: other ferry processes still held it after {} ms",
        waited.as_millis()
    )]
    Busy { path: PathBuf, waited: Duration },
    #[error("failed to open state database {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "failed to open state directory {path}: its layout version {found} is newer than \
         version {expected} this ferry understands; use a newer ferry"
    )]
    LayoutTooNew {
        path: PathBuf,
        found: u64,
        expected: u64,
    },
    #[error("failed to migrate state directory {path} from layout version {from}")]
    Migrate {
        path: PathBuf,
        from: u64,
        #[source]
        source: Box<StateError>,
    },
    #[error(
        "failed to switch state database {path} to write-ahead logging: it stays in {mode} mode"
    )]
    NoWal { path: PathBuf, mode: String },
    #[error(
        "failed to migrate {path}: the state directory already holds data of its own; move \
         one of the two aside"
    )]
    SledConflict { path: PathBuf },
    #[error("failed to read the sled database {path} to migrate it")]
    ReadSled {
        path: PathBuf,
        #[source]
        source: sled::Error,
    },
    #[error("failed to move the migrated sled database {from} aside to {to}")]
    MoveAside {
        from: PathBuf,
        to: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to start a read of {path}")]
    BeginRead {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("failed to read state key {key}")]
    Read {
        key: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("failed to write state")]
    Write {
        #[source]
        source: rusqlite::Error,
    },
    #[error("failed to decode state value at {key}")]
    Decode {
        key: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("failed to encode state value for {key}")]
    Encode {
        key: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("failed to read state key {key}: {reason}")]
    Corrupt { key: String, reason: &'static str },
    /// The closure of a transaction returned an error; nothing was written.
    #[error("transaction aborted")]
    Aborted,
    /// A write inside a read ([`StateStore::run_read`](super::StateStore::run_read)).
    #[error("state key {key} was written inside a read")]
    ReadOnly { key: String },
}

/// A key for an error message: its bytes as text, invalid UTF-8 replaced.
pub(crate) fn display_key(key: &[u8]) -> String {
    String::from_utf8_lossy(key).into_owned()
}
