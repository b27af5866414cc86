//! The exclusive lock on a state directory, shared by all ferry processes, and the backoff used
//! while waiting for it.
//!
//! sled 0.34 locks its own data file too, but it reports a held lock only as an `io::Error` with
//! a formatted message, and dropping a `Db` does not close that file at once: sled's I/O threads
//! hold references to it for a moment longer (and the last one to let go runs sled's final
//! flush and `fsync`). Measured here, a second open right after a drop found sled's lock still
//! held in about half of the runs.
//!
//! ferry therefore serializes processes on a lock file of its own (`<dir>/lock`, an advisory
//! `flock`-style lock through `std::fs::File::try_lock`, released by the kernel when the file
//! is closed or the process dies), and when a store is dropped it keeps that lock until sled's
//! data file is really closed ([`SledClosed`]). Whoever takes the directory next thus finds
//! sled fully shut down. Opening still retries sled's own lock within the same deadline, as a
//! fallback.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::ErrorKind;
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

/// How long dropping a store waits for sled to close its data file.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// Holds a [`DirLock`] until sled's data file is closed: declared after the `sled::Db` in a
/// struct, it is dropped after it, and waits until sled's own lock on `data_file` is gone
/// before the directory lock is released.
#[derive(Debug)]
pub(crate) struct SledClosed {
    pub(crate) data_file: PathBuf,
    pub(crate) _lock: DirLock,
}

impl Drop for SledClosed {
    fn drop(&mut self) {
        let file = match File::open(&self.data_file) {
            Ok(file) => file,
            Err(err) if err.kind() == ErrorKind::NotFound => return,
            Err(err) => {
                tracing::warn!(path = %self.data_file.display(), %err, "failed to check that the state database is closed");
                return;
            }
        };
        let mut backoff = Backoff::new(CLOSE_WAIT);
        loop {
            match file.try_lock() {
                // Closing `file` releases the probe lock again.
                Ok(()) => return,
                Err(TryLockError::WouldBlock) if backoff.pause() => {}
                Err(err) => {
                    tracing::warn!(path = %self.data_file.display(), %err, "state database still open while releasing the state directory");
                    return;
                }
            }
        }
    }
}
