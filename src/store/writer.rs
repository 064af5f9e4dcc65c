//! The single writer: group commit of concurrent write batches.
//!
//! Every request waits for a durable commit before it is answered. Requests that arrive
//! while a commit is being written are merged into the next transaction, so N concurrent
//! payment creations cost about one fsync instead of N.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use bdk_wallet::ChangeSet;
use bdk_wallet::chain::Merge;
use redb::{Database, ReadableTable, WriteTransaction};
use tokio::sync::oneshot;

use super::tables::*;
use super::{
    AuditEntry, DbResultExt, OutboxItem, StoreError, TxCacheEntry, WalletSummary, decode, encode,
};
use crate::payments::{Event, Payment, Status};

/// Most batches merged into one transaction; bounds the latency of the first in line.
const MAX_GROUP: usize = 256;

/// Everything one logical change writes, committed atomically.
#[derive(Debug, Default)]
pub struct WriteBatch {
    /// A new payment and its creation event; refused if its reference exists.
    pub create: Option<(Payment, Event)>,
    /// Updated payments (version must be stored version + 1) with events to append.
    pub updates: Vec<(Payment, Vec<Event>)>,
    /// Wallet changes (revealed addresses, chain data) to persist with the payments.
    pub wallet: Option<ChangeSet>,
    /// Transactions to cache.
    pub tx_cache: Vec<TxCacheEntry>,
    /// Administrative actions to record.
    pub audit: Vec<AuditEntry>,
    /// Outbox keys the sink has delivered.
    pub outbox_done: Vec<u64>,
    /// Re-queue every payment for the sink (resync).
    pub requeue_all: bool,
    /// A fresh summary of the wallet for the sink.
    pub wallet_summary: Option<WalletSummary>,
    /// Electrum status hashes of scripts whose chain data this batch commits
    /// (`None` = no history).
    pub script_status: Vec<(ScriptKey, Option<String>)>,
    /// Receive indices no longer watched (their payments settled past the late window).
    pub unwatch: Vec<u32>,
    /// The sink re-queued everything: forget that changes were skipped.
    pub clear_outbox_skipped: bool,
    /// The wallet's chain scan is done (its findings are in `wallet`).
    pub mark_scanned: bool,
    /// Set or lift the lock-down (see `access`).
    pub lockdown: Option<super::LockdownChange>,
    /// META entries to set: backup verification and restore records (see `backup_meta`).
    pub meta: Vec<(&'static str, Vec<u8>)>,
    /// META entries to remove (a restore asks for a new chain scan, see `backup_meta`).
    pub meta_remove: Vec<&'static str>,
    /// Unattributed receipts seen, gone or assigned (see `receipts`).
    pub receipts: Vec<super::ReceiptWrite>,
    /// Transfers built or broadcast (see `spend`).
    pub transfers: Vec<super::TransferRecord>,
    /// Settled payments to move into the archive (see `archive`).
    pub archive: super::ArchiveMove,
}

/// A script of the wallet: (keychain as 0 = receive / 1 = change, derivation index).
pub type ScriptKey = (u8, u32);

/// META key of the wallet summary.
pub(super) const WALLET_SUMMARY_KEY: &str = "wallet_summary";

/// What a committed batch did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Everything was written.
    Committed,
    /// `create` was skipped: a payment with that reference exists (returned); the rest was written.
    DuplicateReference(Box<Payment>),
}

enum Reply {
    Async(oneshot::Sender<Result<Outcome, StoreError>>),
    // A std channel, so blocking callers work inside or outside a tokio runtime.
    Blocking(mpsc::SyncSender<Result<Outcome, StoreError>>),
}

impl Reply {
    fn send(self, r: Result<Outcome, StoreError>) {
        // The caller may have gone away (request cancelled); its result is then moot.
        match self {
            Reply::Async(tx) => {
                let _caller_gone = tx.send(r);
            }
            Reply::Blocking(tx) => {
                let _caller_gone = tx.send(r);
            }
        }
    }
}

struct Job {
    batch: WriteBatch,
    reply: Reply,
}

#[derive(Clone)]
pub(super) struct WriterHandle {
    tx: mpsc::Sender<Job>,
    /// Whether payment changes are queued for a sink; off when none is configured.
    pub(super) outbox: Arc<AtomicBool>,
}

impl WriterHandle {
    pub(super) fn spawn(db: Arc<super::slot::Slot>) -> WriterHandle {
        let (tx, rx) = mpsc::channel::<Job>();
        let outbox = Arc::new(AtomicBool::new(true));
        let flag = outbox.clone();
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || run(db, rx, flag))
            .expect("spawn store writer thread");
        WriterHandle { tx, outbox }
    }

    pub(super) async fn submit(&self, batch: WriteBatch) -> Result<Outcome, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job {
                batch,
                reply: Reply::Async(reply),
            })
            .map_err(|_| StoreError::WriterGone)?;
        rx.await.map_err(|_| StoreError::WriterGone)?
    }

    pub(super) fn submit_blocking(&self, batch: WriteBatch) -> Result<Outcome, StoreError> {
        let (reply, rx) = mpsc::sync_channel(1);
        self.tx
            .send(Job {
                batch,
                reply: Reply::Blocking(reply),
            })
            .map_err(|_| StoreError::WriterGone)?;
        rx.recv().map_err(|_| StoreError::WriterGone)?
    }
}

/// How often a database closed by an I/O failure is tried again with no job waiting.
const REOPEN_EVERY: Duration = Duration::from_secs(1);

fn run(slot: Arc<super::slot::Slot>, rx: mpsc::Receiver<Job>, outbox: Arc<AtomicBool>) {
    loop {
        // Ends when every Store handle (and so every sender) is dropped.
        let first = if slot.failure().is_some() {
            match rx.recv_timeout(REOPEN_EVERY) {
                Ok(job) => Some(job),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
        } else {
            match rx.recv() {
                Ok(job) => Some(job),
                Err(_) => return,
            }
        };
        if slot.failure().is_some() && !slot.reopen() {
            if let Some(job) = first {
                job.reply
                    .send(Err(slot.get().err().unwrap_or(StoreError::Unavailable {
                        detail: slot.failure().unwrap_or_default(),
                    })));
            }
            continue;
        }
        let Some(first) = first else { continue };
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let db = match slot.get() {
            Ok(db) => db,
            Err(e) => {
                for job in group {
                    job.reply.send(Err(e.clone()));
                }
                continue;
            }
        };
        if let Some(e) = commit_group(&db, group, outbox.load(Ordering::Relaxed)) {
            tracing::error!(error = %e, "the database failed to write; it is reopened once the disk accepts writes again");
            slot.failed(&e);
            drop(db);
            let _retried_in_the_loop = slot.reopen();
        }
    }
}

/// Commits a group of jobs in one transaction. A job that fails is left out whole: the
/// transaction is abandoned and the group runs again without it, so no job's writes land
/// in part (a job can fail after writing some tables, e.g. a conflict found late).
/// Returns the I/O failure, if the database hit one (it must then be reopened).
fn commit_group(db: &Database, mut group: Vec<Job>, outbox: bool) -> Option<StoreError> {
    loop {
        let wtx = match db.begin_write().db("begin write") {
            Ok(w) => w,
            Err(e) => {
                for job in group {
                    job.reply.send(Err(e.clone()));
                }
                return e.is_io().then_some(e);
            }
        };
        let mut results = Vec::with_capacity(group.len());
        let mut wallet = ChangeSet::default();
        let mut failed = None;
        for (i, job) in group.iter().enumerate() {
            match apply(&wtx, &job.batch, outbox) {
                Ok(o) => {
                    if let Some(cs) = &job.batch.wallet {
                        wallet.merge(cs.clone());
                    }
                    results.push(o);
                }
                Err(e) => {
                    failed = Some((i, e));
                    break;
                }
            }
        }
        if let Some((i, e)) = failed {
            if let Err(abort) = wtx.abort() {
                tracing::warn!(error = %abort, "abandoning a write transaction");
            }
            if e.is_io() {
                // The storage is latched: nothing more can be written until a reopen.
                for job in group {
                    job.reply.send(Err(e.clone()));
                }
                return Some(e);
            }
            group.remove(i).reply.send(Err(e));
            if group.is_empty() {
                return None;
            }
            continue;
        }
        // Fault injector (debug builds): a commit of payment updates with wallet changes
        // fails, as a full disk or an I/O error would make it.
        if group
            .iter()
            .any(|j| j.batch.wallet.is_some() && !j.batch.updates.is_empty())
            && crate::fault::fail_times("SNAKKAZ_PAY_FAULT_FAIL_UPDATE_COMMITS")
        {
            if let Err(abort) = wtx.abort() {
                tracing::warn!(error = %abort, "abandoning a write transaction");
            }
            for job in group {
                job.reply.send(Err(StoreError::Unavailable {
                    detail: "fault injected: the commit failed".into(),
                }));
            }
            return None;
        }
        let committed = (|| {
            if !wallet.is_empty() {
                let mut t = wtx.open_table(WALLET).db("open wallet")?;
                let next = t
                    .last()
                    .db("read wallet")?
                    .map_or(0, |(k, _)| k.value() + 1);
                t.insert(next, encode(&wallet).as_slice())
                    .db("write wallet")?;
            }
            wtx.commit().db("commit")
        })();
        for (job, r) in group.into_iter().zip(results) {
            job.reply.send(match &committed {
                Ok(()) => Ok(r),
                Err(e) => Err(e.clone()),
            });
        }
        return committed.err().filter(StoreError::is_io);
    }
}

fn apply(wtx: &WriteTransaction, b: &WriteBatch, outbox: bool) -> Result<Outcome, StoreError> {
    // Validate first so that a refused job writes nothing.
    let mut outcome = Outcome::Committed;
    let mut create = b.create.as_ref();
    if let Some((p, _)) = create {
        let idx = wtx.open_table(BY_REFERENCE).db("open index")?;
        if let Some(seq) = idx.get(p.reference.as_str()).db("read index")? {
            let seq = seq.value();
            let t = wtx.open_table(PAYMENTS).db("open payments")?;
            let existing: Payment = match t.get(seq).db("read payment")? {
                Some(v) => decode("payment", v.value())?,
                // An archived payment keeps its reference.
                None => super::archive::read_archived(
                    &wtx.open_table(PAYMENTS_ARCHIVE).db("open archive")?,
                    seq,
                )?
                .map(|a| a.payment)
                .ok_or(StoreError::Corrupt {
                    what: "payment index",
                    detail: format!("reference points at missing payment seq {seq}"),
                })?,
            };
            outcome = Outcome::DuplicateReference(Box::new(existing));
            create = None;
        }
    }
    let mut old_statuses = Vec::with_capacity(b.updates.len());
    let mut old_flags = Vec::with_capacity(b.updates.len());
    {
        let t = wtx.open_table(PAYMENTS).db("open payments")?;
        for (p, _) in &b.updates {
            let stored: Payment = match t.get(p.seq).db("read payment")? {
                Some(v) => decode("payment", v.value())?,
                None => {
                    return Err(StoreError::Corrupt {
                        what: "payment",
                        detail: format!("update of unknown payment {}", p.id),
                    });
                }
            };
            if stored.version + 1 != p.version {
                return Err(StoreError::Conflict {
                    id: p.id.clone(),
                    expected: p.version.saturating_sub(1),
                    found: stored.version,
                });
            }
            old_statuses.push(stored.status);
            old_flags.push(stored.flags);
        }
    }

    let now = b
        .create
        .as_ref()
        .map(|(p, _)| p.updated_at)
        .or(b.updates.first().map(|(p, _)| p.updated_at))
        .unwrap_or_else(crate::clock::now);
    if let Some((p, ev)) = create {
        let mut t = wtx.open_table(PAYMENTS).db("open payments")?;
        t.insert(p.seq, encode(p).as_slice()).db("write payment")?;
        wtx.open_table(BY_ID)
            .db("open index")?
            .insert(p.id.as_str(), p.seq)
            .db("write index")?;
        wtx.open_table(BY_ADDRESS)
            .db("open index")?
            .insert(p.address.as_str(), p.seq)
            .db("write index")?;
        wtx.open_table(BY_REFERENCE)
            .db("open index")?
            .insert(p.reference.as_str(), p.seq)
            .db("write index")?;
        wtx.open_table(WATCH)
            .db("open watch")?
            .insert(p.derivation_index, p.seq)
            .db("write watch")?;
        bump_count(wtx, p.status, 1)?;
        bump_flags(wtx, &Default::default(), &p.flags)?;
        append_events(wtx, p.seq, std::slice::from_ref(ev))?;
        queue(wtx, p, now, outbox)?;
    }
    for (((p, evs), old), old_flags) in b.updates.iter().zip(old_statuses).zip(old_flags) {
        bump_flags(wtx, &old_flags, &p.flags)?;
        wtx.open_table(PAYMENTS)
            .db("open payments")?
            .insert(p.seq, encode(p).as_slice())
            .db("write payment")?;
        if old != p.status {
            bump_count(wtx, old, -1)?;
            bump_count(wtx, p.status, 1)?;
        }
        append_events(wtx, p.seq, evs)?;
        queue(wtx, p, now, outbox)?;
    }
    super::receipts::apply(wtx, &b.receipts)?;
    if !b.script_status.is_empty() {
        let mut t = wtx.open_table(SCRIPT_STATUS).db("open script status")?;
        for (key, status) in &b.script_status {
            t.insert(*key, status.as_deref().unwrap_or(""))
                .db("write script status")?;
        }
    }
    if !b.unwatch.is_empty() {
        let mut t = wtx.open_table(WATCH).db("open watch")?;
        for i in &b.unwatch {
            t.remove(*i).db("remove watch")?;
        }
    }
    if b.mark_scanned {
        wtx.open_table(META)
            .db("open meta")?
            .insert(CHAIN_SCANNED_KEY, [1u8].as_slice())
            .db("write meta")?;
    }
    if b.clear_outbox_skipped {
        wtx.open_table(META)
            .db("open meta")?
            .remove(OUTBOX_SKIPPED_KEY)
            .db("write meta")?;
    }
    if !b.tx_cache.is_empty() {
        let mut t = wtx.open_table(TX_CACHE).db("open tx cache")?;
        for e in &b.tx_cache {
            t.insert(e.txid.as_str(), encode(e).as_slice())
                .db("write tx cache")?;
        }
    }
    if !b.audit.is_empty() {
        let mut t = wtx.open_table(AUDIT).db("open audit")?;
        let first = t.last().db("read audit")?.map_or(0, |(k, _)| k.value() + 1);
        for (key, e) in (first..).zip(&b.audit) {
            t.insert(key, encode(e).as_slice()).db("write audit")?;
        }
    }
    if let Some(w) = &b.wallet_summary {
        wtx.open_table(META)
            .db("open meta")?
            .insert(WALLET_SUMMARY_KEY, encode(w).as_slice())
            .db("write meta")?;
    }
    if let Some(change) = &b.lockdown {
        super::access::apply_lockdown(wtx, change)?;
    }
    super::spend::apply_transfers(wtx, &b.transfers)?;
    super::archive::apply(wtx, &b.archive)?;
    if !b.meta.is_empty() || !b.meta_remove.is_empty() {
        let mut t = wtx.open_table(META).db("open meta")?;
        for (k, v) in &b.meta {
            t.insert(*k, v.as_slice()).db("write meta")?;
        }
        for k in &b.meta_remove {
            t.remove(*k).db("remove meta")?;
        }
    }
    if !b.outbox_done.is_empty() {
        let mut t = wtx.open_table(OUTBOX).db("open outbox")?;
        for k in &b.outbox_done {
            t.remove(*k).db("remove outbox")?;
        }
    }
    if b.requeue_all {
        let all: Vec<Payment> = {
            let t = wtx.open_table(PAYMENTS).db("open payments")?;
            t.iter()
                .db("iterate payments")?
                .map(|r| decode("payment", r.db("read payment")?.1.value()))
                .collect::<Result<_, _>>()?
        };
        for p in &all {
            queue(wtx, p, now, true)?;
        }
    }
    Ok(outcome)
}

fn bump_count(wtx: &WriteTransaction, status: Status, delta: i64) -> Result<(), StoreError> {
    let mut t = wtx.open_table(STATUS_COUNTS).db("open status counts")?;
    let cur = t
        .get(status.as_str())
        .db("read count")?
        .map_or(0, |v| v.value());
    let new = cur.saturating_add_signed(delta);
    t.insert(status.as_str(), new).db("write count")?;
    Ok(())
}

/// Keeps the flag counters (`flag:<name>` and `flag:any` in the counts table) in step.
pub(super) fn bump_flags(
    wtx: &WriteTransaction,
    old: &crate::payments::Flags,
    new: &crate::payments::Flags,
) -> Result<(), StoreError> {
    if old == new {
        return Ok(());
    }
    let mut t = wtx.open_table(STATUS_COUNTS).db("open status counts")?;
    let mut bump = |name: &str, was: bool, is: bool| -> Result<(), StoreError> {
        if was == is {
            return Ok(());
        }
        let key = format!("flag:{name}");
        let cur = t
            .get(key.as_str())
            .db("read count")?
            .map_or(0, |v| v.value());
        let new = if is { cur + 1 } else { cur.saturating_sub(1) };
        t.insert(key.as_str(), new).db("write count")?;
        Ok(())
    };
    bump("overpaid", old.overpaid, new.overpaid)?;
    bump("late_payment", old.late_payment, new.late_payment)?;
    bump("reorged", old.reorged, new.reorged)?;
    bump("money_lost", old.money_lost, new.money_lost)?;
    bump("any", old.any(), new.any())?;
    Ok(())
}

fn append_events(wtx: &WriteTransaction, seq: u64, evs: &[Event]) -> Result<(), StoreError> {
    if evs.is_empty() {
        return Ok(());
    }
    let mut t = wtx.open_table(EVENTS).db("open events")?;
    let first = t
        .range((seq, 0)..=(seq, u32::MAX))
        .db("read events")?
        .next_back()
        .transpose()
        .db("read events")?
        .map_or(0, |(k, _)| k.value().1 + 1);
    for (n, e) in (first..).zip(evs) {
        t.insert((seq, n), encode(e).as_slice()).db("write event")?;
    }
    Ok(())
}

fn queue(wtx: &WriteTransaction, p: &Payment, now: u64, outbox: bool) -> Result<(), StoreError> {
    if !outbox {
        // No sink to drain it: remember that the outbox is incomplete instead, so a sink
        // configured later starts with a full resync rather than a partial mirror.
        wtx.open_table(META)
            .db("open meta")?
            .insert(OUTBOX_SKIPPED_KEY, [1u8].as_slice())
            .db("write meta")?;
        return Ok(());
    }
    let mut t = wtx.open_table(OUTBOX).db("open outbox")?;
    let next = t
        .last()
        .db("read outbox")?
        .map_or(0, |(k, _)| k.value() + 1);
    let item = OutboxItem {
        payment_id: p.id.clone(),
        version: p.version,
        queued_at: now,
    };
    t.insert(next, encode(&item).as_slice())
        .db("write outbox")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ReceiptWrite;
    use redb::ReadableDatabase;

    fn job(batch: WriteBatch) -> (Job, mpsc::Receiver<Result<Outcome, StoreError>>) {
        let (tx, rx) = mpsc::sync_channel(1);
        (
            Job {
                batch,
                reply: Reply::Blocking(tx),
            },
            rx,
        )
    }

    #[test]
    fn a_job_that_fails_late_in_a_group_leaves_nothing_and_the_others_land() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        drop(crate::store::Store::open(&path).unwrap());
        std::thread::sleep(std::time::Duration::from_millis(200));
        let db = Database::create(&path).unwrap();
        let p1 = crate::store::tests::payment(1, "kept");
        let p2 = crate::store::tests::payment(2, "dropped");
        let (a, ra) = job(WriteBatch {
            create: Some((p1.clone(), crate::store::tests::created(&p1))),
            ..Default::default()
        });
        // Writes its payment first, then fails on a receipt that does not exist.
        let (b, rb) = job(WriteBatch {
            create: Some((p2.clone(), crate::store::tests::created(&p2))),
            receipts: vec![ReceiptWrite::Assign {
                outpoint: "00:0".into(),
                payment_id: p2.id.clone(),
                note: None,
                at: 1,
            }],
            ..Default::default()
        });
        commit_group(&db, vec![a, b], true);
        assert!(matches!(ra.recv().unwrap(), Ok(Outcome::Committed)));
        assert!(matches!(
            rb.recv().unwrap(),
            Err(StoreError::NotFound { .. })
        ));
        let rtx = db.begin_read().unwrap();
        let ids = rtx.open_table(BY_ID).unwrap();
        assert!(
            ids.get(p1.id.as_str()).unwrap().is_some(),
            "the good job landed"
        );
        assert!(
            ids.get(p2.id.as_str()).unwrap().is_none(),
            "nothing of the failed job"
        );
    }
}
