//! The exclusive lock on a state directory that serializes setting it up, and the backoff used
//! while waiting for it.
//!
//! Day-to-day reads and writes need no lock of ferry's own: SQLite coordinates the processes
//! sharing its database. Creating the database, switching it to WAL and migrating a sled
//! database into it happen once, under `<dir>/lock` (an advisory `flock`-style lock through
//! `std::fs::File::try_lock`, released by the kernel when the file is closed or the process
//! dies), so that two processes opening a new or old state directory at the same moment never
//! both set it up.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use super::StateError;

/// The first pause between two attempts; it doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_micros(200);
const MAX_PAUSE: Duration = Duration::from_millis(100);

/// Pauses between attempts until a deadline: short at first, longer while the wait goes on.
pub(crate) struct Backoff {
    started: Instant,
    wait: Duration,
    pause: Duration,
}

impl Backoff {
    /// A backoff that gives up `wait` after now.
    pub(crate) fn new(wait: Duration) -> Self {
        Self {
            started: Instant::now(),
            wait,
            pause: FIRST_PAUSE,
        }
    }

    /// Sleeps before the next attempt; `false` (without sleeping) when the time is up.
    pub(crate) fn pause(&mut self) -> bool {
        let elapsed = self.started.elapsed();
        if elapsed >= self.wait {
            return false;
        }
        thread::sleep(self.pause.min(self.wait - elapsed));
        self.pause = (self.pause * 2).min(MAX_PAUSE);
        true
    }

    /// How long the attempts went on.
    pub(crate) fn waited(&self) -> Duration {
        self.started.elapsed()
    }
}

/// An exclusive lock on a state directory, held until dropped.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

impl DirLock {
    /// Takes the lock on `dir`, retrying with `backoff` while another process (or another open
    /// store in this process) holds it.
    pub(crate) fn acquire(dir: &Path, backoff: &mut Backoff) -> Result<Self, StateError> {
        let path = dir.join("lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| StateError::Lock {
                path: path.clone(),
                source,
            })?;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Self { _file: file }),
                Err(TryLockError::WouldBlock) => {
                    if !backoff.pause() {
                        return Err(busy(dir, backoff));
                    }
                }
                Err(TryLockError::Error(source)) => return Err(StateError::Lock { path, source }),
            }
        }
    }
}

/// The error for a directory still locked when the wait is over.
pub(crate) fn busy(dir: &Path, backoff: &Backoff) -> StateError {
    StateError::Busy {
        path: PathBuf::from(dir),
        waited: backoff.waited(),
    }
}
