//! Transfers the appliance built (and broadcast), and the last TOTP step used.

use redb::{ReadableDatabase, ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::tables::{META, TRANSFERS};
use super::{DbResultExt, Store, StoreError, decode, encode};

/// META key of the last TOTP time step accepted (a code is never accepted twice).
pub const TOTP_LAST_STEP_KEY: &str = "totp_last_step";

/// A transaction the appliance built to move money: a cold-storage transfer, a CPFP child
/// or a fee bump. Keyed by its txid (segwit: the same before and after signing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferRecord {
    /// Transaction id of the unsigned transaction.
    pub txid: String,
    /// `transfer`, `cpfp` or `bump`.
    pub kind: String,
    /// The unsigned PSBT (BIP174 v0), base64.
    pub psbt: String,
    /// Destination paid (cold storage).
    pub destination: String,
    /// Amount to the destination.
    pub amount_sat: u64,
    /// Amount back to the wallet's own change.
    pub change_sat: u64,
    /// Fee of the built transaction.
    pub fee_sat: u64,
    /// Requested fee rate, sat per 1000 vB.
    pub fee_rate_sat_per_kvb: u64,
    /// Inputs spent, `txid:vout`.
    pub inputs: Vec<String>,
    /// Unix seconds when built.
    pub created_at: u64,
    /// Unix seconds when broadcast (`None` while only built).
    pub broadcast_at: Option<u64>,
    /// Where the build or broadcast came from.
    pub source: String,
    /// For a fee bump: the txid of the transfer it replaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
}

impl Store {
    /// A transfer by txid.
    pub fn transfer(&self, txid: &str) -> Result<Option<TransferRecord>, StoreError> {
        let rtx = self.db()?.begin_read().db("begin read")?;
        let t = match rtx.open_table(TRANSFERS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(e).db("open transfers"),
        };
        t.get(txid)
            .db("read transfer")?
            .map(|v| decode("transfer", v.value()))
            .transpose()
    }

    /// Every transfer, oldest first (few: one a month is the routine).
    pub fn transfers(&self) -> Result<Vec<TransferRecord>, StoreError> {
        let rtx = self.db()?.begin_read().db("begin read")?;
        let t = match rtx.open_table(TRANSFERS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e).db("open transfers"),
        };
        let mut out: Vec<TransferRecord> = Vec::new();
        for r in t.iter().db("iterate transfers")? {
            out.push(decode("transfer", r.db("read transfer")?.1.value())?);
        }
        out.sort_by_key(|r| r.created_at);
        Ok(out)
    }

    /// The last TOTP time step accepted, if any.
    pub fn totp_last_step(&self) -> Result<Option<u64>, StoreError> {
        let rtx = self.db()?.begin_read().db("begin read")?;
        let t = rtx.open_table(META).db("open meta")?;
        Ok(t.get(TOTP_LAST_STEP_KEY)
            .db("read meta")?
            .and_then(|v| v.value().try_into().ok().map(u64::from_le_bytes)))
    }
}

/// Writes transfer records inside the writer's transaction (insert or replace).
pub(super) fn apply_transfers(
    wtx: &WriteTransaction,
    records: &[TransferRecord],
) -> Result<(), StoreError> {
    if records.is_empty() {
        return Ok(());
    }
    let mut t = wtx.open_table(TRANSFERS).db("open transfers")?;
    for r in records {
        t.insert(r.txid.as_str(), encode(r).as_slice())
            .db("write transfer")?;
    }
    Ok(())
}

/// The META entry recording `step` as used.
pub fn totp_step_entry(step: u64) -> (&'static str, Vec<u8>) {
    (TOTP_LAST_STEP_KEY, step.to_le_bytes().to_vec())
}

/// META key of the outgoing transactions the appliance did not build (a security alert
/// that stays until the operator acknowledges it).
pub const UNEXPECTED_SPENDS_KEY: &str = "unexpected_spends";

/// A transaction that spent this wallet's coins without being a transfer built here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnexpectedSpend {
    /// Its txid.
    pub txid: String,
    /// Unix seconds when the appliance noticed it.
    pub seen_at: u64,
    /// Unix seconds when the operator acknowledged it (the alert then stops).
    #[serde(default)]
    pub acknowledged_at: Option<u64>,
}

impl Store {
    /// Outgoing transactions not built by the appliance (acknowledged ones included).
    pub fn unexpected_spends(&self) -> Result<Vec<UnexpectedSpend>, StoreError> {
        let rtx = self.db()?.begin_read().db("begin read")?;
        let t = rtx.open_table(META).db("open meta")?;
        Ok(t.get(UNEXPECTED_SPENDS_KEY)
            .db("read meta")?
            .map(|v| decode("unexpected spends", v.value()))
            .transpose()?
            .unwrap_or_default())
    }
}

/// The META entry holding `list`.
pub fn unexpected_spends_entry(list: &[UnexpectedSpend]) -> (&'static str, Vec<u8>) {
    (UNEXPECTED_SPENDS_KEY, encode(&list))
}
