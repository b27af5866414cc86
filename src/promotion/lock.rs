//! Stage locks: one active promotion per stage, held from Writing to the end of Verifying.
//!
//! A lock names its promotion and the process driving it. The promotion holds the stage until
//! it succeeds, fails or is aborted, whether or not that process is alive: a lock whose
//! process is gone (or that expired) is *stale*, which only means that another process may
//! take over driving the same promotion (resume it), never that the stage is free.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::PromotionError;
use super::record::{Lock, Promotion, keys};
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

/// The promotion holding `stage`, if one does: its lock and the promotion, which has not
/// ended. A lock left behind by an ended promotion holds nothing.
pub(crate) fn holding(
    txn: &mut dyn Txn,
    stage: &str,
) -> Result<Option<(Lock, Promotion)>, PromotionError> {
    let Some(lock) = txn_get_json::<Lock>(txn, &keys::lock(stage))? else {
        return Ok(None);
    };
    let promotion: Option<Promotion> = txn_get_json(txn, &keys::promotion(&lock.promotion))?;
    Ok(promotion
        .filter(|p| !p.state.is_terminal())
        .map(|p| (lock, p)))
}

/// The error for `stage` held by `active`, naming its driver when that one still runs.
pub(crate) fn busy(
    stage: &str,
    lock: Lock,
    active: Promotion,
    now: DateTime<Utc>,
    holder: &Holder,
) -> PromotionError {
    let live = !is_stale(&lock, now, holder);
    PromotionError::Busy {
        stage: stage.to_string(),
        active: Box::new(active),
        driver: live.then(|| Box::new(lock)),
    }
}

/// Takes the lock of `stage` for `promotion` inside a transaction: free, already ours, or
/// stale on the same promotion (resuming it). Fails with `Busy` when another promotion holds
/// the stage, or a live process drives this one.
pub(crate) fn acquire(
    txn: &mut dyn Txn,
    stage: &str,
    promotion: &str,
    holder: &Holder,
    now: DateTime<Utc>,
    hold_for: Duration,
) -> Result<(), PromotionError> {
    let own: Option<Promotion> = txn_get_json(txn, &keys::promotion(promotion))?;
    if own.is_some_and(|p| p.state.is_terminal()) {
        // It ended meanwhile: whoever ended it was another process.
        return Err(PromotionError::Concurrent {
            promotion: promotion.to_string(),
        });
    }
    if let Some((lock, active)) = holding(txn, stage)?
        && !holder.owns(&lock, promotion)
        && (lock.promotion != promotion || !is_stale(&lock, now, holder))
    {
        return Err(busy(stage, lock, active, now, holder));
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
    txn_put_json(txn, &keys::lock(stage), &lock)?;
    Ok(())
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
    use crate::promotion::record::{PromotionState, Trigger};
    use crate::state::{MemStore, StateStoreExt, put_json};

    fn active(store: &MemStore, id: &str, state: PromotionState) {
        let mut p = Promotion::new(id.into(), "qa", "r-1", Trigger::Manual, "alice", Utc::now());
        p.state = state;
        put_json(store, &keys::promotion(id), &p).expect("seed");
    }

    #[test]
    fn a_live_holder_keeps_others_out_until_its_promotion_ends() {
        let store = MemStore::default();
        let now = Utc::now();
        let me = Holder::current("alice");
        active(&store, "p-1", PromotionState::Writing);
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
        assert!(
            matches!(err, PromotionError::Busy { ref driver, .. } if driver.is_some()),
            "{err}"
        );
        // An expired lock still holds the stage for its promotion…
        let later = now + chrono::Duration::hours(2);
        let err = store
            .try_transaction(|txn| acquire(txn, "qa", "p-2", &other, later, Duration::ZERO))
            .expect_err("still busy");
        assert!(
            matches!(err, PromotionError::Busy { ref driver, .. } if driver.is_none()),
            "{err}"
        );
        // …until that promotion ends.
        active(&store, "p-1", PromotionState::Failed);
        store
            .try_transaction(|txn| acquire(txn, "qa", "p-2", &other, later, Duration::ZERO))
            .expect("free once p-1 ended");
    }

    #[test]
    fn a_dead_process_lets_another_resume_its_promotion_but_not_start_one() {
        let store = MemStore::default();
        let now = Utc::now();
        let me = Holder::current("alice");
        let dead = Holder {
            pid: u32::MAX - 1,
            host: me.host.clone(),
            user: "bob".into(),
        };
        active(&store, "p-1", PromotionState::Verifying);
        store
            .try_transaction(|txn| acquire(txn, "qa", "p-1", &dead, now, Duration::from_secs(600)))
            .expect("first");
        let err = store
            .try_transaction(|txn| acquire(txn, "qa", "p-2", &me, now, Duration::ZERO))
            .expect_err("the stage stays held");
        assert!(
            matches!(err, PromotionError::Busy { ref active, .. } if active.id == "p-1"),
            "{err}"
        );
        store
            .try_transaction(|txn| acquire(txn, "qa", "p-1", &me, now, Duration::ZERO))
            .expect("the stale lock is taken over to resume p-1");
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
