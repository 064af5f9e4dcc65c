//! The payment archive: settled payments moved out of the live table by
//! `snakkaz-pay archive`. Their indexes (id, address, reference) and their history stay,
//! so an archived payment is still found by id, reference and address (its address stays
//! used forever, and money arriving there later is an unattributed receipt naming it),
//! while lists, counts, the watcher, reconcile and the sink's resync see only live ones.

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::tables::*;
use super::{DbResultExt, Store, StoreError, decode, encode};
use crate::payments::{Flags, Payment};

/// META key: ids of archived payments whose move in Supabase is still to be done.
pub const ARCHIVE_SINK_PENDING_KEY: &str = "archive_sink_pending";

/// An archived payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchivedPayment {
    /// The payment as it was when archived.
    pub payment: Payment,
    /// Unix seconds of the move.
    pub archived_at: u64,
}

/// The archive part of a `WriteBatch`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArchiveMove {
    /// Store sequence numbers of the payments to move.
    pub seqs: Vec<u64>,
    /// Unix seconds of the move.
    pub at: u64,
}

/// Which payments may be archived: settled, not watched any more, no loss waiting for the
/// operator, unchanged since `before`.
pub fn archivable(p: &Payment, statuses: &[crate::payments::Status], before: u64) -> bool {
    statuses.contains(&p.status) && p.updated_at < before && !p.flags.money_lost
}

impl Store {
    /// Up to `limit` payments that `archivable` accepts and the watcher no longer
    /// watches, oldest first (a full scan: a weekly job).
    pub fn archive_candidates(
        &self,
        statuses: &[crate::payments::Status],
        before: u64,
        limit: usize,
    ) -> Result<Vec<Payment>, StoreError> {
        let rtx = self.db()?.begin_read().db("begin read")?;
        let t = rtx.open_table(PAYMENTS).db("open payments")?;
        let watch = rtx.open_table(WATCH).db("open watch")?;
        let mut out = Vec::new();
        for r in t.iter().db("iterate payments")? {
            let p: Payment = decode("payment", r.db("read payment")?.1.value())?;
            if !archivable(&p, statuses, before) {
                continue;
            }
            if watch.get(p.derivation_index).db("read watch")?.is_some() {
                continue;
            }
            out.push(p);
            if out.len() == limit {
                break;
            }
        }
        Ok(out)
    }

    /// The archive record of a payment, by store sequence number.
    pub fn archived(&self, seq: u64) -> Result<Option<ArchivedPayment>, StoreError> {
        let rtx = self.db()?.begin_read().db("begin read")?;
        read_archived(&rtx.open_table(PAYMENTS_ARCHIVE).db("open archive")?, seq)
    }

    /// Payments in the archive.
    pub fn archived_count(&self) -> Result<u64, StoreError> {
        let rtx = self.db()?.begin_read().db("begin read")?;
        let t = rtx.open_table(PAYMENTS_ARCHIVE).db("open archive")?;
        t.len().db("count archive")
    }

    /// Archived payments whose move in Supabase is still to be done.
    pub fn archive_sink_pending(&self) -> Result<Vec<String>, StoreError> {
        let rtx = self.db()?.begin_read().db("begin read")?;
        let t = rtx.open_table(META).db("open meta")?;
        t.get(ARCHIVE_SINK_PENDING_KEY)
            .db("read meta")?
            .map(|v| decode("archive sink pending", v.value()))
            .transpose()
            .map(Option::unwrap_or_default)
    }
}

/// A META entry for `WriteBatch::meta`: the ids whose Supabase move is pending.
pub fn archive_sink_pending_entry(ids: &[String]) -> (&'static str, Vec<u8>) {
    (ARCHIVE_SINK_PENDING_KEY, encode(&ids))
}

pub(super) fn read_archived(
    t: &impl ReadableTable<u64, &'static [u8]>,
    seq: u64,
) -> Result<Option<ArchivedPayment>, StoreError> {
    t.get(seq)
        .db("read archive")?
        .map(|v| decode("archived payment", v.value()))
        .transpose()
}

/// Moves the payments out of the live table into the archive; a payment gone or watched
/// again since it was chosen stays where it is. Their outbox items are dropped (the move
/// is mirrored by `archive` itself), their status and flag counts leave the live counts.
pub(super) fn apply(wtx: &WriteTransaction, mv: &ArchiveMove) -> Result<(), StoreError> {
    if mv.seqs.is_empty() {
        return Ok(());
    }
    let mut moved_ids = std::collections::BTreeSet::new();
    {
        let mut payments = wtx.open_table(PAYMENTS).db("open payments")?;
        let mut archive = wtx.open_table(PAYMENTS_ARCHIVE).db("open archive")?;
        let watch = wtx.open_table(WATCH).db("open watch")?;
        for &seq in &mv.seqs {
            let Some(p) = payments
                .get(seq)
                .db("read payment")?
                .map(|v| decode::<Payment>("payment", v.value()))
                .transpose()?
            else {
                continue;
            };
            if watch.get(p.derivation_index).db("read watch")?.is_some() {
                continue;
            }
            payments.remove(seq).db("remove payment")?;
            let rec = ArchivedPayment {
                payment: p.clone(),
                archived_at: mv.at,
            };
            archive
                .insert(seq, encode(&rec).as_slice())
                .db("write archive")?;
            let mut counts = wtx.open_table(STATUS_COUNTS).db("open status counts")?;
            let cur = counts
                .get(p.status.as_str())
                .db("read count")?
                .map_or(0, |v| v.value());
            counts
                .insert(p.status.as_str(), cur.saturating_sub(1))
                .db("write count")?;
            drop(counts);
            super::writer::bump_flags(wtx, &p.flags, &Flags::default())?;
            moved_ids.insert(p.id);
        }
    }
    let mut outbox = wtx.open_table(OUTBOX).db("open outbox")?;
    let mut drop_keys = Vec::new();
    for r in outbox.iter().db("iterate outbox")? {
        let (k, v) = r.db("read outbox")?;
        let item: super::OutboxItem = decode("outbox item", v.value())?;
        if moved_ids.contains(&item.payment_id) {
            drop_keys.push(k.value());
        }
    }
    for k in drop_keys {
        outbox.remove(k).db("remove outbox")?;
    }
    Ok(())
}
