//! What `reconcile` keeps in META: the report of the last finished run and the cursor of
//! an unfinished one (so an interrupted run continues where it stopped).
//!
//! Written through `WriteBatch::meta` / `meta_remove`, read with the typed getters below.

use redb::ReadableDatabase;
use serde::de::DeserializeOwned;

use super::tables::*;
use super::{DbResultExt, Store, StoreError, decode};
use crate::payments::Payment;

/// META key of the last finished reconciliation's report.
pub const RECONCILE_REPORT_KEY: &str = "reconcile_report";
/// META key of the unfinished reconciliation's cursor.
pub const RECONCILE_CURSOR_KEY: &str = "reconcile_cursor";

impl Store {
    fn meta_json<T: DeserializeOwned>(
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

    /// The report of the last finished reconciliation (its JSON shape is `ops::reconcile`'s).
    pub fn reconcile_report<T: DeserializeOwned>(&self) -> Result<Option<T>, StoreError> {
        self.meta_json(RECONCILE_REPORT_KEY, "reconcile report")
    }

    /// The cursor of an unfinished reconciliation.
    pub fn reconcile_cursor<T: DeserializeOwned>(&self) -> Result<Option<T>, StoreError> {
        self.meta_json(RECONCILE_CURSOR_KEY, "reconcile cursor")
    }

    /// Up to `limit` payments with `seq >= from`, oldest first (a reconciliation's page).
    pub fn payments_from(&self, from: u64, limit: usize) -> Result<Vec<Payment>, StoreError> {
        let rtx = self.db()?.begin_read().db("begin read")?;
        let t = rtx.open_table(PAYMENTS).db("open payments")?;
        t.range(from..)
            .db("list payments")?
            .take(limit)
            .map(|r| decode("payment", r.db("read payment")?.1.value()))
            .collect()
    }
}

/// A META entry for `WriteBatch::meta`: the finished run's report.
pub fn reconcile_report_entry<T: serde::Serialize>(report: &T) -> (&'static str, Vec<u8>) {
    (RECONCILE_REPORT_KEY, super::encode(report))
}

/// A META entry for `WriteBatch::meta`: the unfinished run's cursor.
pub fn reconcile_cursor_entry<T: serde::Serialize>(cursor: &T) -> (&'static str, Vec<u8>) {
    (RECONCILE_CURSOR_KEY, super::encode(cursor))
}
