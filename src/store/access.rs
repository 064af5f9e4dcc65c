//! Access-security records: the lock-down state (a META key) and audit queries.

use redb::{ReadableDatabase, ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::tables::{AUDIT, META};
use super::{AuditEntry, DbResultExt, Store, StoreError, decode, encode};

/// META key of the lock-down record; absent when the appliance is not locked down.
const LOCKDOWN_KEY: &str = "lockdown";

/// A lock-down in force: who set it, when and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockdownRecord {
    /// Unix seconds when it was set.
    pub since: u64,
    /// The operator's reason.
    pub reason: String,
    /// Where it came from (`cli`, `admin-api 10.0.0.5`, ...).
    pub source: String,
}

/// A change of the lock-down state, written with a [`super::WriteBatch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockdownChange {
    /// Lock down (an existing lock-down is kept as it is: the first reason stands).
    Lock(LockdownRecord),
    /// Lift the lock-down.
    Unlock,
}

impl Store {
    /// The lock-down in force, if any.
    pub fn lockdown(&self) -> Result<Option<LockdownRecord>, StoreError> {
        let rtx = self.db()?.begin_read().db("begin read")?;
        let t = rtx.open_table(META).db("open meta")?;
        t.get(LOCKDOWN_KEY)
            .db("read meta")?
            .map(|v| decode("lockdown record", v.value()))
            .transpose()
    }

    /// Audit entries at or after `since` (unix seconds), newest first, at most `limit`.
    ///
    /// Reads backwards from the newest entry and stops at the first older one, so the cost
    /// follows the answer, not the length of the log.
    pub fn audit_since(
        &self,
        since: u64,
        limit: usize,
        filter: impl Fn(&AuditEntry) -> bool,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let rtx = self.db()?.begin_read().db("begin read")?;
        let t = rtx.open_table(AUDIT).db("open audit")?;
        let mut out = Vec::new();
        for r in t.iter().db("iterate audit")?.rev() {
            let e: AuditEntry = decode("audit entry", r.db("read audit")?.1.value())?;
            if e.at < since || out.len() >= limit {
                break;
            }
            if filter(&e) {
                out.push(e);
            }
        }
        Ok(out)
    }
}

/// Applies a lock-down change inside the writer's transaction.
pub(super) fn apply_lockdown(
    wtx: &WriteTransaction,
    change: &LockdownChange,
) -> Result<(), StoreError> {
    let mut t = wtx.open_table(META).db("open meta")?;
    match change {
        LockdownChange::Lock(rec) => {
            if t.get(LOCKDOWN_KEY).db("read meta")?.is_none() {
                t.insert(LOCKDOWN_KEY, encode(rec).as_slice())
                    .db("write meta")?;
            }
        }
        LockdownChange::Unlock => {
            t.remove(LOCKDOWN_KEY).db("write meta")?;
        }
    }
    Ok(())
}
