//! The one owner of the redb database file: payments, events, wallet changesets,
//! transaction cache, outbox and audit log.
//!
//! Reads open their own read transaction; every write goes through one writer thread
//! (see `writer`) that groups concurrent requests into a single durable commit.

mod access;
mod archive;
mod backup_meta;
mod import;
pub mod migrate;
mod persister;
mod receipts;
mod reconcile;
mod slot;
mod snapshot;
mod spend;
mod tables;
#[cfg(test)]
mod tests;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bdk_wallet::ChangeSet;
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableHandle};
use serde::{Deserialize, Serialize};

use crate::payments::{Event, Payment, Status};
pub use access::{LockdownChange, LockdownRecord};
pub use archive::{
    ARCHIVE_SINK_PENDING_KEY, ArchiveMove, ArchivedPayment, archivable, archive_sink_pending_entry,
};
pub use backup_meta::{
    RESTORE_MARKER_KEY, RestoreMarker, VERIFICATION_KEY, VerificationRecord, rescan_key,
    restore_marker_entry, resync_when_sink_starts_entry, verification_entry,
};
pub use import::ImportOutcome;
pub use receipts::{RECEIPTS_FLOOR_KEY, ReceiptWrite, receipts_floor_entry};
pub use reconcile::{
    RECONCILE_CURSOR_KEY, RECONCILE_REPORT_KEY, reconcile_cursor_entry, reconcile_report_entry,
};
pub use snapshot::{SnapshotInfo, check_file as check_snapshot, snapshot_file};
pub use spend::{
    TOTP_LAST_STEP_KEY, TransferRecord, UNEXPECTED_SPENDS_KEY, UnexpectedSpend, totp_step_entry,
    unexpected_spends_entry,
};
use tables::*;
/// Newest database layout this binary understands.
pub const SCHEMA_VERSION_SUPPORTED: u64 = tables::SCHEMA_VERSION;
pub use writer::{Outcome, ScriptKey, WriteBatch};

/// A failure of the store, with the operation that failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// redb failed; the database file or the disk needs attention.
    #[error("database {op} failed: {source}")]
    Db {
        /// What the store was doing.
        op: &'static str,
        /// redb's error.
        source: Arc<redb::Error>,
    },
    /// The file exists but was not written by snakkaz-pay.
    #[error(
        "{path} is not a snakkaz-pay database (another program's file); check ELECTRUM_WALLET_PATH, it was left untouched"
    )]
    Foreign {
        /// The file.
        path: PathBuf,
    },
    /// The file was written by a newer snakkaz-pay.
    #[error(
        "{path} has schema version {found}, this binary understands up to {supported}; upgrade snakkaz-pay"
    )]
    TooNew {
        /// The file.
        path: PathBuf,
        /// Version in the file.
        found: u64,
        /// Version of this binary.
        supported: u64,
    },
    /// Another process holds the file.
    #[error(
        "{path} is in use by another process (is `snakkaz-pay run` running? use the daemon's API)"
    )]
    Locked {
        /// The file.
        path: PathBuf,
    },
    /// A stored value could not be decoded: corruption or a bug.
    #[error("stored {what} could not be decoded: {detail}")]
    Corrupt {
        /// Which record.
        what: &'static str,
        /// Decoder message.
        detail: String,
    },
    /// An update was computed from an older version of the payment; recompute and retry.
    #[error("payment {id} changed concurrently (expected version {expected}, found {found})")]
    Conflict {
        /// Payment id.
        id: String,
        /// Version the update expected to replace.
        expected: u64,
        /// Version in the store.
        found: u64,
    },
    /// The file cannot be used as it is; `hint` says what to do.
    #[error("database {path}: {problem}; {hint}")]
    Unusable {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
        /// What to do.
        hint: &'static str,
    },
    /// A record the change refers to does not exist.
    #[error("{what} not found")]
    NotFound {
        /// What was looked for.
        what: String,
    },
    /// The database is closed after an I/O failure and being reopened.
    #[error("the database is unavailable: {detail}")]
    Unavailable {
        /// The failure being recovered from.
        detail: String,
    },
    /// The writer thread is gone (shutting down or crashed).
    #[error("the database writer has stopped")]
    WriterGone,
}

impl StoreError {
    /// An I/O failure: the disk (full, failing) rather than the data.
    pub fn is_io(&self) -> bool {
        match self {
            StoreError::Db { source, .. } => {
                matches!(&**source, redb::Error::Io(_) | redb::Error::PreviousIo)
            }
            StoreError::Unavailable { .. } => true,
            _ => false,
        }
    }

    /// The disk is full.
    pub fn is_disk_full(&self) -> bool {
        match self {
            // redb may wrap the OS error; its text still names it.
            StoreError::Db { source, .. } => match &**source {
                redb::Error::Io(e) => {
                    matches!(
                        e.kind(),
                        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
                    ) || e.to_string().contains("No space left")
                }
                _ => false,
            },
            StoreError::Unavailable { detail } => detail.contains("is full"),
            _ => false,
        }
    }
}

fn db_err(op: &'static str) -> impl FnOnce(redb::Error) -> StoreError {
    move |e| StoreError::Db {
        op,
        source: Arc::new(e),
    }
}

/// Shorthand used by the store's internals: any redb error type into a StoreError.
pub(crate) trait DbResultExt<T> {
    fn db(self, op: &'static str) -> Result<T, StoreError>;
}

impl<T, E: Into<redb::Error>> DbResultExt<T> for Result<T, E> {
    fn db(self, op: &'static str) -> Result<T, StoreError> {
        self.map_err(|e| db_err(op)(e.into()))
    }
}

fn decode<T: for<'de> Deserialize<'de>>(what: &'static str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        what,
        detail: e.to_string(),
    })
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing our own plain structs to JSON cannot fail (no maps with non-string keys).
    serde_json::to_vec(value).expect("store values serialize to JSON")
}

/// A change waiting for the downstream sink.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxItem {
    /// Payment that changed.
    pub payment_id: String,
    /// Its version after the change.
    pub version: u64,
    /// Unix seconds when queued.
    pub queued_at: u64,
}

/// A record of an administrative action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Unix seconds.
    pub at: u64,
    /// What was done (e.g. "payment.complete", "processor.restart").
    pub action: String,
    /// Details, never secrets.
    pub detail: String,
    /// Where the action came from: a peer address, `cli` or `daemon`; empty in older entries.
    #[serde(default)]
    pub source: String,
}

/// A transaction the wallet has seen, kept for the operator and the sink.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxCacheEntry {
    /// Transaction id.
    pub txid: String,
    /// Confirmation height, if confirmed.
    pub height: Option<u32>,
    /// Fee in satoshis when all inputs are known.
    pub fee_sat: Option<u64>,
    /// Total paid to our addresses.
    pub received_sat: u64,
    /// Unix seconds when first seen.
    pub seen_at: u64,
}

/// The wallet's public facts, refreshed by the processor, mirrored to `bitcoin_wallets`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletSummary {
    /// Checksum of the receive descriptor (identifies the wallet without revealing keys).
    pub descriptor_checksum: String,
    /// Checksum of the change descriptor, if any.
    pub change_descriptor_checksum: Option<String>,
    /// Network name.
    pub network: String,
    /// Receive addresses handed out.
    pub addresses_in_use: u32,
    /// Confirmed balance.
    pub confirmed_sat: u64,
    /// Unconfirmed balance.
    pub unconfirmed_sat: u64,
    /// Wallet tip height.
    pub tip_height: u32,
    /// Unix seconds of the refresh.
    pub updated_at: u64,
}

impl FlagCounts {
    /// Payments carrying the flag `name` (0 for an unknown name).
    pub fn get(&self, name: &str) -> u64 {
        self.by_flag
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(0, |(_, c)| *c)
    }
}

/// Flag counters (see `Store::flag_counts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlagCounts {
    /// Payments per flag.
    pub by_flag: [(&'static str, u64); 4],
    /// Payments with at least one flag.
    pub flagged: u64,
}

/// Filter and page of `list_payments`.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Only this status.
    pub status: Option<Status>,
    /// Only this reference.
    pub reference: Option<String>,
    /// Page size.
    pub limit: usize,
    /// Return payments older than this seq (newest first).
    pub before_seq: Option<u64>,
}

/// Handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: Arc<slot::Slot>,
    path: PathBuf,
    writer: writer::WriterHandle,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    fn db(&self) -> Result<Arc<Database>, StoreError> {
        self.db.get()
    }

    /// The I/O failure the database is recovering from (a full disk), if any.
    pub fn io_failure(&self) -> Option<String> {
        self.db.failure()
    }

    /// Opens (creating if missing) the database at `path` and checks that it is ours;
    /// schema migrations wait while the appliance runs a new version on trial (see
    /// `migrate`).
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Store::open_with(path, Some(migrate::Policy::of_system()))
    }

    /// Opens a file that is not the live database (a snapshot, a backup being checked
    /// or restored): no trial copies, no rollback, migrated in place as needed.
    pub fn open_file(path: &Path) -> Result<Store, StoreError> {
        Store::open_with(path, None)
    }

    /// `open` under an explicit migration policy (`None`: `open_file`).
    pub fn open_with(path: &Path, policy: Option<migrate::Policy>) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Db {
                op: "create directory",
                source: Arc::new(redb::Error::Io(e)),
            })?;
        }
        match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => {
                return Err(StoreError::Unusable {
                    path: path.to_owned(),
                    problem: "is a directory".into(),
                    hint: "ELECTRUM_WALLET_PATH names the database file itself, e.g. a payments.redb inside that directory",
                });
            }
            // An empty file is what an older version's interrupted first start left.
            Ok(m) if m.len() == 0 => {
                tracing::warn!(path = %path.display(), "the database file is empty (an interrupted first start); creating it");
                std::fs::remove_file(path).map_err(io_failure(path, "remove the empty file"))?;
                create_fresh(path)?;
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_fresh(path)?,
            Err(e) => return Err(open_failure(path, &e)),
        }
        let migrate::Prepared { file, notices } = match policy {
            Some(policy) => migrate::prepare(path, policy)?,
            None => migrate::Prepared {
                file: path.to_owned(),
                notices: Vec::new(),
            },
        };
        precheck(&file)?;
        let db = match Database::builder().set_cache_size(CACHE_BYTES).open(&file) {
            Ok(db) => db,
            Err(e) => return Err(classify_open_error(&file, e)),
        };
        restrict_permissions(&file);
        let db = Arc::new(db);
        init_or_check(&db, &file)?;
        compact_wallet(&db)?;
        let db = slot::Slot::new(file, Arc::into_inner(db).expect("only handle"));
        let writer = writer::WriterHandle::spawn(db.clone());
        let store = Store {
            db,
            path: path.to_owned(),
            writer,
        };
        store.record_notices(notices)?;
        Ok(store)
    }

    /// Turns queueing of payment changes for a sink on or off (off when none is configured).
    pub fn set_outbox(&self, enabled: bool) {
        self.writer
            .outbox
            .store(enabled, std::sync::atomic::Ordering::Relaxed);
    }

    /// True once the chain was scanned for addresses used before this appliance.
    pub fn chain_scanned(&self) -> Result<bool, StoreError> {
        let rtx = self.db()?.begin_read().db("begin read")?;
        let t = rtx.open_table(META).db("open meta")?;
        Ok(t.get(CHAIN_SCANNED_KEY).db("read meta")?.is_some())
    }

    /// True when payment changes were made while no sink was configured.
    pub fn outbox_skipped(&self) -> Result<bool, StoreError> {
        let rtx = self.db()?.begin_read().db("begin read")?;
        let t = rtx.open_table(META).db("open meta")?;
        Ok(t.get(OUTBOX_SKIPPED_KEY).db("read meta")?.is_some())
    }

    /// The payments whose addresses are watched, by receive index.
    pub fn watched_payments(&self) -> Result<Vec<(u32, Payment)>, StoreError> {
        let rtx = self.db()?.begin_read().db("begin read")?;
        let watch = rtx.open_table(WATCH).db("open watch")?;
        let payments = rtx.open_table(PAYMENTS).db("open payments")?;
        let mut out = Vec::new();
        for r in watch.iter().db("iterate watch")? {
            let (i, seq) = r.db("read watch")?;
            let seq = seq.value();
            match payments.get(seq).db("read payment")? {
                Some(v) => out.push((i.value(), decode("payment", v.value())?)),
                None => {
                    return Err(StoreError::Corrupt {
                        what: "watch index",
                        detail: format!("index points at missing payment seq {seq}"),
                    });
                }
            }
        }
        Ok(out)
    }

    /// The stored Electrum status of each of these scripts that has one.
    pub fn script_statuses(
        &self,
        keys: impl IntoIterator<Item = ScriptKey>,
    ) -> Result<std::collections::HashMap<ScriptKey, Option<String>>, StoreError> {
        let rtx = self.db()?.begin_read().db("begin read")?;
        let t = rtx.open_table(SCRIPT_STATUS).db("open script status")?;
        let mut out = std::collections::HashMap::new();
        for k in keys {
            if let Some(v) = t.get(k).db("read script status")? {
                let v = v.value();
                out.insert(k, (!v.is_empty()).then(|| v.to_owned()));
            }
        }
        Ok(out)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues `batch` for the next group commit and waits until it is durable.
    pub async fn commit(&self, batch: WriteBatch) -> Result<Outcome, StoreError> {
        self.writer.submit(batch).await
    }

    /// Blocking variant of `commit`, for code outside the runtime (CLI, tests).
    pub fn commit_blocking(&self, batch: WriteBatch) -> Result<Outcome, StoreError> {
        self.writer.submit_blocking(batch)
    }

    /// The payment with this public id.
    pub fn payment(&self, id: &str) -> Result<Option<Payment>, StoreError> {
        self.lookup(BY_ID, id)
    }

    /// The payment paid to this address.
    pub fn payment_by_address(&self, address: &str) -> Result<Option<Payment>, StoreError> {
        self.lookup(BY_ADDRESS, address)
    }

    /// The payment with this application reference.
    pub fn payment_by_reference(&self, reference: &str) -> Result<Option<Payment>, StoreError> {
        self.lookup(BY_REFERENCE, reference)
    }

    fn lookup(
        &self,
        index: redb::TableDefinition<&str, u64>,
        key: &str,
    ) -> Result<Option<Payment>, StoreError> {
        let rtx = self.db()?.begin_read().db("begin read")?;
        let idx = rtx.open_table(index).db("open index")?;
        let Some(seq) = idx.get(key).db("read index")? else {
            return Ok(None);
        };
        let payments = rtx.open_table(PAYMENTS).db("open payments")?;
        let seq = seq.value();
        match payments.get(seq).db("read payment")? {
            Some(v) => Ok(Some(decode("payment", v.value())?)),
            // Archived: still found by id, address and reference.
            None if let Some(a) = archive::read_archived(
                &rtx.open_table(PAYMENTS_ARCHIVE).db("open archive")?,
                seq,
            )? =>
            {
                Ok(Some(a.payment))
            }
            None => Err(StoreError::Corrupt {
                what: "payment index",
                detail: format!("index points at missing payment seq {seq}"),
            }),
        }
    }

    /// The history of a payment, oldest first.
    pub fn events(&self, seq: u64) -> Result<Vec<Event>, StoreError> {
        let rtx = self.db()?.begin_read().db("begin read")?;
        let t = rtx.open_table(EVENTS).db("open events")?;
        t.range((seq, 0)..=(seq, u32::MAX))
            .db("read events")?
            .map(|r| {
                let (_, v) = r.db("read event")?;
                decode("event", v.value())
            })
            .collect()
    }

    /// A page of payments, newest first, and the cursor of the next page.
    pub fn list_payments(&self, q: &ListQuery) -> Result<(Vec<Payment>, Option<u64>), StoreError> {
        if let Some(reference) = &q.reference {
            let p = self
                .payment_by_reference(reference)?
                .filter(|p| q.status.is_none_or(|s| s == p.status))
                .filter(|p| q.before_seq.is_none_or(|b| p.seq < b));
            return Ok((p.into_iter().collect(), None));
        }
        let rtx = self.db()?.begin_read().db("begin read")?;
        let t = rtx.open_table(PAYMENTS).db("open payments")?;
        let upper = q.before_seq.unwrap_or(u64::MAX);
        let mut out = Vec::new();
        for r in t.range(..upper).db("list payments")?.rev() {
            let (k, v) = r.db("read payment")?;
            let p: Payment = decode("payment", v.value())?;
            if q.status.is_some_and(|s| s != p.status) {
                continue;
            }
            if out.len() == q.limit {
                return Ok((out, Some(k.value() + 1)));
            }
            out.push(p);
        }
        Ok((out, None))
    }

    /// Every payment, oldest first (start-up and reconciliation).
    pub fn all_payments(&self) -> Result<Vec<Payment>, StoreError> {
        let rtx = self.db()?.begin_read().db("begin read")?;
        let t = rtx.open_table(PAYMENTS).db("open payments")?;
        t.iter()
            .db("iterate payments")?
            .map(|r| decode("payment", r.db("read payment")?.1.value()))
            .collect()
    }

    /// Number of payments in each status.
    pub fn status_counts(&self) -> Result<Vec<(Status, u64)>, StoreError> {
        let rtx = self.db()?.begin_read().db("begin read")?;
        let t = rtx.open_table(STATUS_COUNTS).db("open status counts")?;
        Status::ALL
            .into_iter()
            .map(|s| {
                Ok((
                    s,
                    t.get(s.as_str()).db("read count")?.map_or(0, |v| v.value()),
                ))
            })
            .collect()
    }

    /// Payments carrying each flag, and carrying any (maintained counters).
    pub fn flag_counts(&self) -> Result<FlagCounts, StoreError> {
        let rtx = self.db()?.begin_read().db("begin read")?;
        let t = rtx.open_table(STATUS_COUNTS).db("open status counts")?;
        let get = |name: &str| -> Result<u64, StoreError> {
            Ok(t.get(format!("flag:{name}").as_str())
                .db("read count")?
                .map_or(0, |v| v.value()))
        };
        Ok(FlagCounts {
            by_flag: [
                ("overpaid", get("overpaid")?),
                ("late_payment", get("late_payment")?),
                ("reorged", get("reorged")?),
                ("money_lost", get("money_lost")?),
            ],
            flagged: get("any")?,
        })
    }

    /// Highest payment seq in use (0 when empty).
    pub fn last_seq(&self) -> Result<u64, StoreError> {
        let rtx = self.db()?.begin_read().db("begin read")?;
        let t = rtx.open_table(PAYMENTS).db("open payments")?;
        Ok(t.last().db("read last")?.map_or(0, |(k, _)| k.value()))
    }

    /// All wallet changesets merged in order: the wallet's persisted state.
    pub fn wallet_changeset(&self) -> Result<ChangeSet, StoreError> {
        let rtx = self.db()?.begin_read().db("begin read")?;
        let t = rtx.open_table(WALLET).db("open wallet")?;
        merged_changeset(&t)
    }

    /// Length of the outbox and the queue time of its oldest item.
    pub fn outbox_stats(&self) -> Result<(u64, Option<u64>), StoreError> {
        let rtx = self.db()?.begin_read().db("begin read")?;
        let t = rtx.open_table(OUTBOX).db("open outbox")?;
        let len = t.len().db("count outbox")?;
        let oldest = match t.first().db("read outbox")? {
            Some((_, v)) => Some(decode::<OutboxItem>("outbox item", v.value())?.queued_at),
            None => None,
        };
        Ok((len, oldest))
    }

    /// Up to `n` outbox items, oldest first, with their keys.
    pub fn outbox_peek(&self, n: usize) -> Result<Vec<(u64, OutboxItem)>, StoreError> {
        let rtx = self.db()?.begin_read().db("begin read")?;
        let t = rtx.open_table(OUTBOX).db("open outbox")?;
        t.iter()
            .db("iterate outbox")?
            .take(n)
            .map(|r| {
                let (k, v) = r.db("read outbox")?;
                Ok((k.value(), decode("outbox item", v.value())?))
            })
            .collect()
    }

    /// The audit log, newest first, at most `n` entries.
    pub fn audit_log(&self, n: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let rtx = self.db()?.begin_read().db("begin read")?;
        let t = rtx.open_table(AUDIT).db("open audit")?;
        t.iter()
            .db("iterate audit")?
            .rev()
            .take(n)
            .map(|r| decode("audit entry", r.db("read audit")?.1.value()))
            .collect()
    }

    /// The last wallet summary the processor stored.
    pub fn wallet_summary(&self) -> Result<Option<WalletSummary>, StoreError> {
        let rtx = self.db()?.begin_read().db("begin read")?;
        let t = rtx.open_table(META).db("open meta")?;
        t.get(writer::WALLET_SUMMARY_KEY)
            .db("read meta")?
            .map(|v| decode("wallet summary", v.value()))
            .transpose()
    }

    /// A cached transaction.
    pub fn cached_tx(&self, txid: &str) -> Result<Option<TxCacheEntry>, StoreError> {
        let rtx = self.db()?.begin_read().db("begin read")?;
        let t = rtx.open_table(TX_CACHE).db("open tx cache")?;
        t.get(txid)
            .db("read tx cache")?
            .map(|v| decode("tx cache entry", v.value()))
            .transpose()
    }
}

fn merged_changeset(t: &impl ReadableTable<u64, &'static [u8]>) -> Result<ChangeSet, StoreError> {
    use bdk_wallet::chain::Merge;
    let mut merged = ChangeSet::default();
    for r in t.iter().db("iterate wallet")? {
        let cs: ChangeSet = decode("wallet changeset", r.db("read wallet")?.1.value())?;
        merged.merge(cs);
    }
    Ok(merged)
}

/// Creates an initialised database under a temporary name and renames it into place, so
/// a crash during the first start leaves either no file or a complete one, never a file
/// the next start cannot open.
fn create_fresh(path: &Path) -> Result<(), StoreError> {
    let name = path
        .file_name()
        .map_or_else(|| "db".into(), |n| n.to_string_lossy().into_owned());
    let tmp = path.with_file_name(format!(".{name}.creating"));
    // A previous first start died here: that file never held data.
    let _absent_is_fine = std::fs::remove_file(&tmp);
    let io = |op| io_failure(path, op);
    {
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(&tmp)
            .map_err(|e| classify_open_error(path, e))?;
        init_or_check(&db, path)?;
    }
    restrict_permissions(&tmp);
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(io("sync the new database"))?;
    std::fs::rename(&tmp, path).map_err(io("move the new database into place"))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)
            .and_then(|f| f.sync_all())
            .map_err(io("sync the database directory"))?;
    }
    Ok(())
}

fn io_failure<'a>(path: &'a Path, op: &'static str) -> impl Fn(std::io::Error) -> StoreError + 'a {
    move |e| match open_failure(path, &e) {
        StoreError::Db { .. } => StoreError::Db {
            op,
            source: Arc::new(redb::Error::Io(e)),
        },
        named => named,
    }
}

/// An I/O error of opening or creating the file, named for the operator.
fn open_failure(path: &Path, e: &std::io::Error) -> StoreError {
    use std::io::ErrorKind as K;
    let (problem, hint) = match e.kind() {
        K::PermissionDenied => (
            "permission denied",
            "the service user must own the file and its directory (chown snakkaz-pay:snakkaz-pay; mode 0600)",
        ),
        K::ReadOnlyFilesystem => (
            "is on a read-only file system",
            "put ELECTRUM_WALLET_PATH on the data partition, or remount it read-write",
        ),
        K::StorageFull | K::QuotaExceeded => (
            "the disk is full",
            "free space on the data partition; nothing was changed",
        ),
        K::WouldBlock => {
            return StoreError::Locked {
                path: path.to_owned(),
            };
        }
        _ => {
            return StoreError::Db {
                op: "open",
                source: Arc::new(redb::Error::Io(std::io::Error::new(
                    e.kind(),
                    e.to_string(),
                ))),
            };
        }
    };
    StoreError::Unusable {
        path: path.to_owned(),
        problem: problem.into(),
        hint,
    }
}

/// Looks at an existing file without writing to it: a file we must refuse (someone
/// else's, a newer schema, damaged) is left exactly as it was. A file that needs redb's
/// recovery after a crash cannot be read this way; the read-write open repairs it and
/// `init_or_check` decides.
fn precheck(path: &Path) -> Result<(), StoreError> {
    let ro = match Database::builder().open_read_only(path) {
        Ok(ro) => ro,
        Err(redb::DatabaseError::RepairAborted) => return Ok(()),
        Err(e) => return Err(classify_open_error(path, e)),
    };
    let rtx = ro.begin_read().db("begin read")?;
    let meta = match rtx.open_table(META) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => {
            // No tables at all: an empty redb file an interrupted first start of an
            // older version left; anything else is someone else's.
            let empty = rtx.list_tables().db("list tables")?.next().is_none();
            return if empty {
                Ok(())
            } else {
                Err(StoreError::Foreign {
                    path: path.to_owned(),
                })
            };
        }
        Err(e) => return Err(e).db("open meta"),
    };
    let app = meta.get("app").db("read meta")?.map(|v| v.value().to_vec());
    if app.as_deref() != Some(APP_MAGIC) {
        return Err(StoreError::Foreign {
            path: path.to_owned(),
        });
    }
    schema_version(&meta, path).map(drop)
}

/// The schema version our META table records: refused when missing (not our file) or
/// newer than this binary understands.
fn schema_version(
    meta: &impl ReadableTable<&'static str, &'static [u8]>,
    path: &Path,
) -> Result<u64, StoreError> {
    let found = meta
        .get("schema_version")
        .db("read meta")?
        .and_then(|v| v.value().try_into().ok().map(u64::from_le_bytes))
        .ok_or_else(|| StoreError::Foreign {
            path: path.to_owned(),
        })?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            path: path.to_owned(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(found)
}

/// The first bytes of every redb file.
const REDB_MAGIC: &[u8] = &[b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];

/// Names why redb refused an existing file: ours but damaged, someone else's, in use, or
/// an I/O failure.
fn classify_open_error(path: &Path, e: redb::DatabaseError) -> StoreError {
    match e {
        redb::DatabaseError::DatabaseAlreadyOpen | redb::DatabaseError::LockProtocolMismatch => {
            StoreError::Locked {
                path: path.to_owned(),
            }
        }
        redb::DatabaseError::Storage(redb::StorageError::Io(io))
            if !matches!(
                io.kind(),
                std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof
            ) =>
        {
            open_failure(path, &io)
        }
        other => {
            tracing::debug!(error = %other, "redb refused the file");
            let mut head = [0u8; 9];
            let is_redb = std::fs::File::open(path)
                .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
                .is_ok_and(|()| head == REDB_MAGIC);
            if is_redb {
                StoreError::Unusable {
                    path: path.to_owned(),
                    problem: format!("is damaged or truncated ({other})"),
                    hint: "keep the file for analysis, move it aside and restore the latest backup (snakkaz-pay restore); a new empty database would forget the payments",
                }
            } else {
                StoreError::Foreign {
                    path: path.to_owned(),
                }
            }
        }
    }
}

/// redb's page cache. Its default (1 GiB) would let a long-running daemon grow with the
/// history it has touched; the hot set (open payments, indexes) is small, and the OS page
/// cache keeps the file itself warm.
const CACHE_BYTES: usize = 16 * 1024 * 1024;

/// Rows of wallet changesets tolerated before start-up merges them into one.
const COMPACT_WALLET_ROWS: u64 = 16;

/// Merges the append-only wallet changesets into one row, so that start-up reads one
/// value instead of merging every change since the wallet was created.
fn compact_wallet(db: &Database) -> Result<(), StoreError> {
    let wtx = db.begin_write().db("begin write")?;
    {
        let mut t = wtx.open_table(WALLET).db("open wallet")?;
        if t.len().db("count wallet")? <= COMPACT_WALLET_ROWS {
            return Ok(());
        }
        let merged = merged_changeset(&t)?;
        t.retain(|_, _| false).db("clear wallet")?;
        t.insert(0, encode(&merged).as_slice()).db("write wallet")?;
    }
    wtx.commit().db("commit")
}

#[cfg(unix)]
fn restrict_permissions(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    // The database holds the wallet's descriptors and payment data: owner only.
    if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
        tracing::warn!(path = %path.display(), error = %e, "could not restrict database permissions to 0600");
    }
}

#[cfg(not(unix))]
fn restrict_permissions(_path: &Path) {}

fn init_or_check(db: &Database, path: &Path) -> Result<(), StoreError> {
    let wtx = db.begin_write().db("begin write")?;
    {
        let mut meta = wtx.open_table(META).db("open meta")?;
        let app = meta.get("app").db("read meta")?.map(|v| v.value().to_vec());
        match app {
            Some(app) if app == APP_MAGIC => {
                let found = schema_version(&meta, path)?;
                if found < 2 {
                    migrate_v1_watch_index(&wtx)?;
                    meta.insert("schema_version", SCHEMA_VERSION.to_le_bytes().as_slice())
                        .db("write meta")?;
                }
            }
            Some(_) => {
                return Err(StoreError::Foreign {
                    path: path.to_owned(),
                });
            }
            None => {
                // A fresh file has no tables at all; any table means someone else's redb file.
                let foreign = wtx
                    .list_tables()
                    .db("list tables")?
                    .any(|t| t.name() != "meta");
                if foreign {
                    return Err(StoreError::Foreign {
                        path: path.to_owned(),
                    });
                }
                meta.insert("app", APP_MAGIC).db("write meta")?;
                meta.insert("schema_version", SCHEMA_VERSION.to_le_bytes().as_slice())
                    .db("write meta")?;
            }
        }
        // Create every table so read transactions never meet a missing one.
        wtx.open_table(PAYMENTS).db("create table")?;
        wtx.open_table(BY_ID).db("create table")?;
        wtx.open_table(BY_ADDRESS).db("create table")?;
        wtx.open_table(BY_REFERENCE).db("create table")?;
        wtx.open_table(STATUS_COUNTS).db("create table")?;
        wtx.open_table(EVENTS).db("create table")?;
        wtx.open_table(WALLET).db("create table")?;
        wtx.open_table(TX_CACHE).db("create table")?;
        wtx.open_table(OUTBOX).db("create table")?;
        wtx.open_table(AUDIT).db("create table")?;
        wtx.open_table(SCRIPT_STATUS).db("create table")?;
        wtx.open_table(WATCH).db("create table")?;
        wtx.open_table(RECEIPTS).db("create table")?;
        wtx.open_table(TRANSFERS).db("create table")?;
        wtx.open_table(PAYMENTS_ARCHIVE).db("create table")?;
    }
    wtx.commit().db("commit")?;
    Ok(())
}

/// Schema 1 had no watch index nor flag counters: every payment is put on the index once
/// (the processor drops those settled past their late window on its first pass) and counted.
fn migrate_v1_watch_index(wtx: &redb::WriteTransaction) -> Result<(), StoreError> {
    let payments = wtx.open_table(PAYMENTS).db("open payments")?;
    let mut watch = wtx.open_table(WATCH).db("open watch")?;
    for r in payments.iter().db("iterate payments")? {
        let (seq, v) = r.db("read payment")?;
        let p: Payment = decode("payment", v.value())?;
        watch
            .insert(p.derivation_index, seq.value())
            .db("write watch")?;
        writer::bump_flags(wtx, &Default::default(), &p.flags)?;
    }
    Ok(())
}
