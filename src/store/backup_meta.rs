//! Records that backups leave in META: the last verification and the restore marker.
//!
//! Written through `WriteBatch::meta`, read with the typed getters below.

use redb::{ReadableDatabase, ReadableTableMetadata};
use serde::{Deserialize, Serialize};

use super::tables::*;
use super::{DbResultExt, Store, StoreError, decode, encode};

/// META key of the last backup verification.
pub const VERIFICATION_KEY: &str = "backup_verification";
/// META key of the restore marker.
pub const RESTORE_MARKER_KEY: &str = "restore_marker";

/// The outcome of the last `verify-backup`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerificationRecord {
    /// Unix seconds of the verification.
    pub at: u64,
    /// The backup file verified (its name, not a path with secrets).
    pub file: String,
    /// Whether every check passed.
    pub ok: bool,
    /// Why it failed.
    pub reason: Option<String>,
}

/// Left by `restore`: at its next start the daemon reveals addresses past the last
/// revealed index plus `skip_ahead`, so that no address handed out after the backup
/// was taken is handed out again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreMarker {
    /// Unix seconds of the restore.
    pub restored_at: u64,
    /// The backup file restored.
    pub file: String,
    /// Addresses skipped past the last revealed index of the backup.
    pub skip_ahead: u32,
    /// Unix seconds when the daemon applied the skip-ahead; `None`: not yet.
    pub applied_at: Option<u64>,
    /// Last receive index revealed by the skip-ahead.
    pub revealed_to: Option<u32>,
}

/// A META entry for `WriteBatch::meta`.
pub fn verification_entry(r: &VerificationRecord) -> (&'static str, Vec<u8>) {
    (VERIFICATION_KEY, encode(r))
}

/// A META entry for `WriteBatch::meta`.
pub fn restore_marker_entry(m: &RestoreMarker) -> (&'static str, Vec<u8>) {
    (RESTORE_MARKER_KEY, encode(m))
}

/// A META entry telling a sink configured later to start with a full resync (the restore
/// of a box without a sink: nothing to queue now, everything to send once there is one).
pub fn resync_when_sink_starts_entry() -> (&'static str, Vec<u8>) {
    (OUTBOX_SKIPPED_KEY, vec![1])
}

/// The META key whose removal makes the daemon scan the chain again at its next start
/// (for `WriteBatch::meta_remove` after a restore: addresses may have been used since).
pub fn rescan_key() -> &'static str {
    CHAIN_SCANNED_KEY
}

impl Store {
    fn meta_value<T: for<'de> Deserialize<'de>>(
        &self,
        key: &str,
        what: &'static str,
    ) -> Result<Option<T>, StoreError> {
        let rtx = self.db()?.begin_read().db("begin read")?;
        let t = rtx.open_table(META).db("open meta")?;
        t.get(key)
            .db("read meta")?
            .map(|v| decode(what, v.value()))
            .transpose()
    }

    /// The last backup verification recorded.
    pub fn backup_verification(&self) -> Result<Option<VerificationRecord>, StoreError> {
        self.meta_value(VERIFICATION_KEY, "backup verification")
    }

    /// The restore marker, if this database was restored from a backup.
    pub fn restore_marker(&self) -> Result<Option<RestoreMarker>, StoreError> {
        self.meta_value(RESTORE_MARKER_KEY, "restore marker")
    }

    /// The layout version written in the file.
    pub fn schema_version(&self) -> Result<u64, StoreError> {
        let rtx = self.db()?.begin_read().db("begin read")?;
        let t = rtx.open_table(META).db("open meta")?;
        t.get("schema_version")
            .db("read meta")?
            .and_then(|v| v.value().try_into().ok().map(u64::from_le_bytes))
            .ok_or(StoreError::Corrupt {
                what: "schema version",
                detail: "META has no schema_version".into(),
            })
    }

    /// Number of payments stored.
    pub fn payment_count(&self) -> Result<u64, StoreError> {
        let rtx = self.db()?.begin_read().db("begin read")?;
        let t = rtx.open_table(PAYMENTS).db("open payments")?;
        t.len().db("count payments")
    }
}
