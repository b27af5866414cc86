//! Stage locks: one active promotion per stage, held from Writing to the end of Verifying.
//! A lock names its promotion and process; it is stale when it expired or its process is gone.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::PromotionError;
use super::record::{Lock, keys};
use crate::state::{Txn, txn_get_json, txn_put_json};

/// How long a lock lasts beyond the gates' timeouts.
const LOCK_MARGIN: Duration = Duration::from_secs(15 * 60);

/// This process: pid and host name.
#[derive(Debug, Clone)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
    pub user: String,
}

impl Holder {
    /// The current process acting as `user`.
    pub fn current(user: &str) -> Holder {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "localhost".to_string());
        Holder {
            pid: std::process::id(),
            host,
            user: user.to_string(),
        }
    }

    fn owns(&self, lock: &Lock, promotion: &str) -> bool {
        lock.promotion == promotion && lock.pid == self.pid && lock.host == self.host
    }
}

/// Whether `lock` no longer protects anything at `now`.
pub fn is_stale(lock: &Lock, now: DateTime<Utc>, holder: &Holder) -> bool {
    if lock.expires_at <= now {
        return true;
    }
    lock.host == holder.host && lock.pid != holder.pid && !process_alive(lock.pid)
}

/// Whether a process with `pid` runs on this machine (Linux: /proc; elsewhere assume so).
pub(crate) fn process_alive(pid: u32) -> bool {
    let proc_root = std::path::Path::new("/proc/self");
    if !proc_root.exists() {
        return true;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // A zombie (state Z) has exited and only waits to be reaped.
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Takes the lock of `stage` for `promotion` inside a transaction, or fails with `Busy`.
pub(crate) fn acquire(
    txn: &mut dyn Txn,
    stage: &str,
    promotion: &str,
    holder: &Holder,
    now: DateTime<Utc>,
    hold_for: Duration,
) -> Result<(), PromotionError> {
    let key = keys::lock(stage);
    if let Some(lock) = txn_get_json::<Lock>(txn, &key)?
        && !holder.owns(&lock, promotion)
        && !is_stale(&lock, now, holder)
    {
        return Err(PromotionError::Busy {
            stage: stage.to_string(),
            lock: Box::new(lock),
        });
    }
    let expires =
        chrono::Duration::from_std(hold_for + LOCK_MARGIN).unwrap_or(chrono::Duration::hours(1));
    let lock = Lock {
        promotion: promotion.to_string(),
        user: holder.user.clone(),
        pid: holder.pid,
        host: holder.host.clone(),
        acquired_at: now,
        expires_at: now + expires,
    };
    txn_put_json(txn, &key, &lock)?;
    Ok(())
}

/// Fails with `Busy` when another live process holds the lock of `stage`.
pub(crate) fn ensure_free(
    txn: &mut dyn Txn,
    stage: &str,
    promotion: &str,
    holder: &Holder,
    now: DateTime<Utc>,
) -> Result<(), PromotionError> {
    match txn_get_json::<Lock>(txn, &keys::lock(stage))? {
        Some(lock) if !holder.owns(&lock, promotion) && !is_stale(&lock, now, holder) => {
            Err(PromotionError::Busy {
                stage: stage.to_string(),
                lock: Box::new(lock),
            })
        }
        _ => Ok(()),
    }
}

/// Releases the lock of `stage` if `promotion` holds it.
pub(crate) fn release(
    txn: &mut dyn Txn,
    stage: &str,
    promotion: &str,
) -> Result<(), PromotionError> {
    let key = keys::lock(stage);
    if let Some(lock) = txn_get_json::<Lock>(txn, &key)?
        && lock.promotion == promotion
    {
        txn.delete(&key)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{MemStore, StateStoreExt};

    #[test]
    fn a_live_holder_keeps_others_out_until_expiry() {
        let store = MemStore::default();
        let now = Utc::now();
        let me = Holder::current("alice");
        store
            .try_transaction(|txn| acquire(txn, "qa", "p-1", &me, now, Duration::from_secs(60)))
            .expect("first");
        let other = Holder {
            pid: me.pid,
            host: me.host.clone(),
            user: "bob".into(),
        };
        let err = store
            .try_transaction(|txn| acquire(txn, "qa", "p-2", &other, now, Duration::ZERO))
            .expect_err("busy");
        assert!(matches!(err, PromotionError::Busy { .. }), "{err}");
        let later = now + chrono::Duration::hours(2);
        store
            .try_transaction(|txn| acquire(txn, "qa", "p-2", &other, later, Duration::ZERO))
            .expect("expired lock is taken");
    }

    #[test]
    fn a_dead_process_holds_nothing() {
        let store = MemStore::default();
        let now = Utc::now();
        let me = Holder::current("alice");
        let dead = Holder {
            pid: u32::MAX - 1,
            host: me.host.clone(),
            user: "bob".into(),
        };
        store
            .try_transaction(|txn| acquire(txn, "qa", "p-1", &dead, now, Duration::from_secs(600)))
            .expect("first");
        store
            .try_transaction(|txn| acquire(txn, "qa", "p-1", &me, now, Duration::ZERO))
            .expect("stale lock is taken over");
        store
            .try_transaction(|txn| release(txn, "qa", "p-1"))
            .expect("release");
        assert!(
            crate::state::get_json::<Lock>(&store, &keys::lock("qa"))
                .expect("read")
                .is_none()
        );
    }
}
