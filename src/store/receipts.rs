//! Unattributed receipts: their table, their writes (chain facts merged with the
//! operator's assignment) and the height below which history is not a receipt.

use redb::{ReadableDatabase, ReadableTable, WriteTransaction};

use super::tables::{META, RECEIPTS};
use super::{DbResultExt, Store, StoreError, decode, encode};
use crate::payments::receipt::{Floor, Receipt};

/// META key of the [`Floor`]: what the wallet knew when its watch began is not a receipt.
pub const RECEIPTS_FLOOR_KEY: &str = "receipts_floor";
/// META key: bumped with every receipt write, so the sink knows when to mirror them.
const RECEIPTS_VERSION_KEY: &str = "receipts_version";

/// A change to the receipts, written with a [`super::WriteBatch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiptWrite {
    /// The chain shows this output: insert it, or refresh height and presence of the
    /// stored one (keeping the operator's assignment).
    Seen(Receipt),
    /// The output's transaction left the chain.
    Gone { outpoint: String, at: u64 },
    /// The operator assigned the money to a payment.
    Assign {
        /// The receipt.
        outpoint: String,
        /// The payment it goes to.
        payment_id: String,
        /// The operator's words.
        note: Option<String>,
        /// Unix seconds.
        at: u64,
    },
}

impl Store {
    /// Every receipt, in outpoint order (receipts are exceptions: few).
    pub fn receipts(&self) -> Result<Vec<Receipt>, StoreError> {
        let rtx = self.db()?.begin_read().db("begin read")?;
        let t = rtx.open_table(RECEIPTS).db("open receipts")?;
        t.iter()
            .db("iterate receipts")?
            .map(|r| decode("receipt", r.db("read receipts")?.1.value()))
            .collect()
    }

    /// One receipt by `txid:vout`.
    pub fn receipt(&self, outpoint: &str) -> Result<Option<Receipt>, StoreError> {
        let rtx = self.db()?.begin_read().db("begin read")?;
        let t = rtx.open_table(RECEIPTS).db("open receipts")?;
        t.get(outpoint)
            .db("read receipts")?
            .map(|v| decode("receipt", v.value()))
            .transpose()
    }

    /// The receipts floor; `None` until it is set.
    pub fn receipts_floor(&self) -> Result<Option<Floor>, StoreError> {
        let rtx = self.db()?.begin_read().db("begin read")?;
        let t = rtx.open_table(META).db("open meta")?;
        t.get(RECEIPTS_FLOOR_KEY)
            .db("read meta")?
            .map(|v| decode("receipts floor", v.value()))
            .transpose()
    }

    /// Changes every time a receipt is written.
    pub fn receipts_version(&self) -> Result<u64, StoreError> {
        Ok(self.meta_u64(RECEIPTS_VERSION_KEY)?.unwrap_or(0))
    }

    fn meta_u64(&self, key: &'static str) -> Result<Option<u64>, StoreError> {
        let rtx = self.db()?.begin_read().db("begin read")?;
        let t = rtx.open_table(META).db("open meta")?;
        t.get(key)
            .db("read meta")?
            .map(|v| decode::<u64>(key, v.value()))
            .transpose()
    }
}

/// The META entry that sets the receipts floor.
pub fn receipts_floor_entry(floor: &Floor) -> (&'static str, Vec<u8>) {
    (RECEIPTS_FLOOR_KEY, encode(floor))
}

/// Applies receipt writes inside the batch's transaction. An assignment of an unknown
/// receipt fails the whole batch.
pub(super) fn apply(wtx: &WriteTransaction, writes: &[ReceiptWrite]) -> Result<(), StoreError> {
    if writes.is_empty() {
        return Ok(());
    }
    let mut t = wtx.open_table(RECEIPTS).db("open receipts")?;
    for w in writes {
        let key = match w {
            ReceiptWrite::Seen(r) => r.outpoint.as_str(),
            ReceiptWrite::Gone { outpoint, .. } | ReceiptWrite::Assign { outpoint, .. } => {
                outpoint.as_str()
            }
        };
        let stored: Option<Receipt> = t
            .get(key)
            .db("read receipts")?
            .map(|v| decode("receipt", v.value()))
            .transpose()?;
        let new = match (w, stored) {
            (ReceiptWrite::Seen(r), None) => r.clone(),
            (ReceiptWrite::Seen(r), Some(old)) => {
                if old.height == r.height && !old.gone {
                    continue;
                }
                Receipt {
                    height: r.height,
                    gone: false,
                    updated_at: r.updated_at,
                    ..old
                }
            }
            (ReceiptWrite::Gone { .. }, None) => continue,
            (ReceiptWrite::Gone { at, .. }, Some(old)) => {
                if old.gone {
                    continue;
                }
                Receipt {
                    gone: true,
                    updated_at: *at,
                    ..old
                }
            }
            (ReceiptWrite::Assign { outpoint, .. }, None) => {
                return Err(StoreError::NotFound {
                    what: format!("receipt {outpoint}"),
                });
            }
            (
                ReceiptWrite::Assign {
                    payment_id,
                    note,
                    at,
                    ..
                },
                Some(old),
            ) => Receipt {
                assigned_to: Some(payment_id.clone()),
                note: note.clone(),
                updated_at: *at,
                ..old
            },
        };
        t.insert(key, encode(&new).as_slice())
            .db("write receipts")?;
    }
    drop(t);
    let mut meta = wtx.open_table(META).db("open meta")?;
    let version = meta
        .get(RECEIPTS_VERSION_KEY)
        .db("read meta")?
        .map(|v| decode::<u64>(RECEIPTS_VERSION_KEY, v.value()))
        .transpose()?
        .unwrap_or(0);
    meta.insert(RECEIPTS_VERSION_KEY, encode(&(version + 1)).as_slice())
        .db("write meta")?;
    Ok(())
}
