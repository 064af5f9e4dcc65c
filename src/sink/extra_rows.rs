//! The rows mirrored beside the payments: cached transactions (`electrum_transaction_cache`)
//! and the wallet's public summary (`bitcoin_wallets`). Pure mappings and their SQL.

use serde::Serialize;

use crate::payments::receipt::Receipt;
use crate::store::{TxCacheEntry, WalletSummary};

/// One `electrum_transaction_cache` row; times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TxRow {
    /// Transaction id.
    pub txid: String,
    /// Confirmation height, `None` in the mempool.
    pub height: Option<i64>,
    /// Fee, when known.
    pub fee_sat: Option<i64>,
    /// Paid to the appliance's addresses.
    pub received_sat: i64,
    /// Unix seconds first seen.
    pub seen_at: i64,
}

/// Saturates instead of wrapping: no satoshi amount or height comes near `i64::MAX`.
fn big(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl From<&TxCacheEntry> for TxRow {
    fn from(e: &TxCacheEntry) -> TxRow {
        TxRow {
            txid: e.txid.clone(),
            height: e.height.map(i64::from),
            fee_sat: e.fee_sat.map(big),
            received_sat: big(e.received_sat),
            seen_at: big(e.seen_at),
        }
    }
}

/// Upsert of a JSON array of `TxRow`s: the latest view of each transaction wins.
pub const TX_UPSERT_SQL: &str = "\
INSERT INTO electrum_transaction_cache AS t (txid, height, fee_sat, received_sat, seen_at, updated_at)
SELECT r.txid, r.height, r.fee_sat, r.received_sat, to_timestamp(r.seen_at), now()
FROM jsonb_to_recordset($1::text::jsonb) AS r(txid text, height integer, fee_sat bigint,
    received_sat bigint, seen_at bigint)
ON CONFLICT (txid) DO UPDATE SET
    height = EXCLUDED.height, fee_sat = EXCLUDED.fee_sat, received_sat = EXCLUDED.received_sat,
    updated_at = now()";

/// Upsert of the wallet summary, never replacing a newer one.
pub const WALLET_UPSERT_SQL: &str = "\
INSERT INTO bitcoin_wallets AS w (descriptor_checksum, change_descriptor_checksum, network,
    addresses_in_use, confirmed_sat, unconfirmed_sat, tip_height, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, to_timestamp($8))
ON CONFLICT (descriptor_checksum) DO UPDATE SET
    change_descriptor_checksum = EXCLUDED.change_descriptor_checksum,
    network = EXCLUDED.network, addresses_in_use = EXCLUDED.addresses_in_use,
    confirmed_sat = EXCLUDED.confirmed_sat, unconfirmed_sat = EXCLUDED.unconfirmed_sat,
    tip_height = EXCLUDED.tip_height, updated_at = EXCLUDED.updated_at
WHERE w.updated_at <= EXCLUDED.updated_at";

/// The parameters of `WALLET_UPSERT_SQL`, in order.
pub struct WalletParams {
    /// `$1`.
    pub descriptor_checksum: String,
    /// `$2`.
    pub change_descriptor_checksum: Option<String>,
    /// `$3`.
    pub network: String,
    /// `$4`.
    pub addresses_in_use: i32,
    /// `$5`.
    pub confirmed_sat: i64,
    /// `$6`.
    pub unconfirmed_sat: i64,
    /// `$7`.
    pub tip_height: i32,
    /// `$8` (to_timestamp takes a double precision).
    pub updated_at: f64,
}

impl From<&WalletSummary> for WalletParams {
    fn from(w: &WalletSummary) -> WalletParams {
        WalletParams {
            descriptor_checksum: w.descriptor_checksum.clone(),
            change_descriptor_checksum: w.change_descriptor_checksum.clone(),
            network: w.network.clone(),
            addresses_in_use: i32::try_from(w.addresses_in_use).unwrap_or(i32::MAX),
            confirmed_sat: big(w.confirmed_sat),
            unconfirmed_sat: big(w.unconfirmed_sat),
            tip_height: i32::try_from(w.tip_height).unwrap_or(i32::MAX),
            // A timestamp, not money: whole seconds are exact in an f64.
            updated_at: w.updated_at as f64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tx_rows_keep_every_field() {
        let e = TxCacheEntry {
            txid: "ab".into(),
            height: Some(7),
            fee_sat: None,
            received_sat: 5_000,
            seen_at: 1_700_000_000,
        };
        let r = TxRow::from(&e);
        assert_eq!(
            (
                r.txid.as_str(),
                r.height,
                r.fee_sat,
                r.received_sat,
                r.seen_at
            ),
            ("ab", Some(7), None, 5_000, 1_700_000_000)
        );
        let v = serde_json::to_value(&r).unwrap();
        for k in v.as_object().unwrap().keys() {
            assert!(TX_UPSERT_SQL.contains(&format!("r.{k}")), "{k}");
        }
    }

    #[test]
    fn the_wallet_upsert_never_goes_back_in_time() {
        assert!(WALLET_UPSERT_SQL.ends_with("WHERE w.updated_at <= EXCLUDED.updated_at"));
    }
}

/// One `electrum_receipts` row; times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReceiptRow {
    outpoint: String,
    txid: String,
    address: String,
    change: bool,
    derivation_index: i64,
    amount_sat: i64,
    height: Option<i64>,
    cause: &'static str,
    address_payment_id: Option<String>,
    state: &'static str,
    assigned_to: Option<String>,
    note: Option<String>,
    first_seen_at: i64,
    updated_at: i64,
}

impl From<&Receipt> for ReceiptRow {
    fn from(r: &Receipt) -> ReceiptRow {
        ReceiptRow {
            outpoint: r.outpoint.clone(),
            txid: r.txid.clone(),
            address: r.address.clone(),
            change: r.change,
            derivation_index: i64::from(r.derivation_index),
            amount_sat: big(r.amount_sat),
            height: r.height.map(i64::from),
            cause: r.cause.as_str(),
            address_payment_id: r.address_payment_id.clone(),
            state: r.state(),
            assigned_to: r.assigned_to.clone(),
            note: r.note.clone(),
            first_seen_at: big(r.first_seen_at),
            updated_at: big(r.updated_at),
        }
    }
}

/// Upsert of a JSON array of `ReceiptRow`s, never replacing a newer row.
pub const RECEIPT_UPSERT_SQL: &str = "\
INSERT INTO electrum_receipts AS t (outpoint, txid, address, change, derivation_index, amount_sat,
    height, cause, address_payment_id, state, assigned_to, note, first_seen_at, updated_at)
SELECT r.outpoint, r.txid, r.address, r.change, r.derivation_index, r.amount_sat, r.height,
    r.cause, r.address_payment_id, r.state, r.assigned_to, r.note, to_timestamp(r.first_seen_at),
    to_timestamp(r.updated_at)
FROM jsonb_to_recordset($1::text::jsonb) AS r(outpoint text, txid text, address text,
    change boolean, derivation_index integer, amount_sat bigint, height integer, cause text,
    address_payment_id text, state text, assigned_to text, note text, first_seen_at bigint,
    updated_at bigint)
ON CONFLICT (outpoint) DO UPDATE SET
    height = EXCLUDED.height, state = EXCLUDED.state, assigned_to = EXCLUDED.assigned_to,
    note = EXCLUDED.note, updated_at = EXCLUDED.updated_at
WHERE t.updated_at <= EXCLUDED.updated_at";
