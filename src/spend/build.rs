//! Building a cold-storage transfer with BDK's TxBuilder: only the cold destination and
//! the wallet's own fresh change address are paid, from confirmed coins only.

use std::str::FromStr;

use base64::Engine as _;
use bdk_wallet::bitcoin::{Amount, FeeRate, Psbt, ScriptBuf};
use bdk_wallet::error::CreateTxError;
use bdk_wallet::{ChangeSet, KeychainKind, Wallet};

use super::{SpendError, check_fee_rate};
use crate::config::spend::ColdStorage;
use crate::store::TransferRecord;

/// How much to move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferAmount {
    /// Keep this much in the hot wallet; send the rest (minus the fee).
    Keep(u64),
    /// Send exactly this much; the rest comes back as change.
    Send(u64),
}

/// A built transfer: its PSBT and the record kept of it.
#[derive(Debug, Clone)]
pub struct Built {
    /// The unsigned PSBT (BIP174 v0).
    pub psbt: Psbt,
    /// What is stored and shown.
    pub record: TransferRecord,
}

/// Base64 of a PSBT.
pub fn psbt_base64(psbt: &Psbt) -> String {
    base64::engine::general_purpose::STANDARD.encode(psbt.serialize())
}

/// The PSBT of a stored record.
pub fn record_psbt(record: &TransferRecord) -> Result<Psbt, SpendError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&record.psbt)
        .map_err(|e| SpendError::Build(format!("stored PSBT unreadable: {e}")))?;
    Psbt::deserialize(&bytes).map_err(|e| SpendError::Build(format!("stored PSBT unreadable: {e}")))
}

/// The scripts a transfer may pay: its destination and its change.
pub fn allowed_scripts(record: &TransferRecord, psbt: &Psbt) -> Vec<ScriptBuf> {
    let mut v: Vec<ScriptBuf> = psbt
        .unsigned_tx
        .output
        .iter()
        .map(|o| o.script_pubkey.clone())
        .collect();
    if let Ok(a) = bdk_wallet::bitcoin::Address::from_str(&record.destination) {
        v.push(a.assume_checked().script_pubkey());
    }
    v.sort();
    v.dedup();
    v
}

/// Builds a transfer. The wallet changes it stages (a revealed change address) are
/// returned whether or not the build succeeds: they are in memory and must be persisted.
pub fn build_transfer(
    wallet: &mut Wallet,
    cold: Option<&ColdStorage>,
    amount: TransferAmount,
    fee_rate_kvb: u64,
    now: u64,
    source: &str,
) -> (Option<ChangeSet>, Result<Built, SpendError>) {
    let r = build_inner(wallet, cold, amount, fee_rate_kvb, now, source);
    (wallet.take_staged(), r)
}

fn build_inner(
    wallet: &mut Wallet,
    cold: Option<&ColdStorage>,
    amount: TransferAmount,
    fee_rate_kvb: u64,
    now: u64,
    source: &str,
) -> Result<Built, SpendError> {
    let cold = cold.ok_or(SpendError::NoDestination)?;
    check_fee_rate(fee_rate_kvb)?;
    let destination = cold.addresses[0].clone();
    let dest_spk = destination.script_pubkey();
    let available = wallet.balance().confirmed.to_sat();
    match amount {
        TransferAmount::Send(0) => {
            return Err(SpendError::Invalid(
                "--amount-sat: must be more than 0".into(),
            ));
        }
        TransferAmount::Keep(k) if k >= available => {
            return Err(SpendError::InsufficientFunds {
                needed: k.saturating_add(1),
                available,
            });
        }
        TransferAmount::Send(n) if n > available => {
            return Err(SpendError::InsufficientFunds {
                needed: n,
                available,
            });
        }
        _ => {}
    }
    // A fresh change address never handed to a payment: the change keychain when there is
    // one, else a new receive address (an unused receive address may belong to an open payment).
    let keychain = if wallet.keychains().any(|(k, _)| k == KeychainKind::Internal) {
        KeychainKind::Internal
    } else {
        KeychainKind::External
    };
    let change_spk = wallet.reveal_next_address(keychain).address.script_pubkey();
    let psbt = {
        let mut b = wallet.build_tx();
        // sat/kvB to sat/kwu (a vbyte is four weight units), rounded up: never below the rate.
        b.fee_rate(FeeRate::from_sat_per_kwu(fee_rate_kvb.div_ceil(4)))
            .exclude_unconfirmed();
        match amount {
            TransferAmount::Keep(k) => {
                if k > 0 {
                    b.add_recipient(change_spk.clone(), Amount::from_sat(k));
                }
                b.drain_wallet().drain_to(dest_spk.clone());
            }
            TransferAmount::Send(n) => {
                b.add_recipient(dest_spk.clone(), Amount::from_sat(n))
                    .drain_to(change_spk.clone());
            }
        }
        b.finish().map_err(|e| match e {
            CreateTxError::CoinSelection(f) => SpendError::InsufficientFunds {
                needed: f.needed.to_sat(),
                available: f.available.to_sat(),
            },
            CreateTxError::OutputBelowDustLimit(_) | CreateTxError::NoRecipients => {
                SpendError::InsufficientFunds {
                    needed: 546,
                    available,
                }
            }
            other => SpendError::Build(other.to_string()),
        })?
    };
    let tx = &psbt.unsigned_tx;
    let mut amount_sat = 0u64;
    let mut change_sat = 0u64;
    for o in &tx.output {
        if o.script_pubkey == dest_spk {
            amount_sat += o.value.to_sat();
        } else if o.script_pubkey == change_spk {
            change_sat += o.value.to_sat();
        } else {
            // TxBuilder was given only these two scripts; anything else is a bug, not money to send.
            return Err(SpendError::Build(
                "the built transaction pays an unexpected script".into(),
            ));
        }
    }
    let fee_sat = psbt
        .fee()
        .map_err(|e| SpendError::Build(format!("fee unknown: {e}")))?
        .to_sat();
    let record = TransferRecord {
        txid: tx.compute_txid().to_string(),
        kind: "transfer".into(),
        psbt: psbt_base64(&psbt),
        destination: destination.to_string(),
        amount_sat,
        change_sat,
        fee_sat,
        fee_rate_sat_per_kvb: fee_rate_kvb,
        inputs: tx
            .input
            .iter()
            .map(|i| i.previous_output.to_string())
            .collect(),
        created_at: now,
        broadcast_at: None,
        source: source.to_owned(),
        replaces: None,
    };
    Ok(Built { psbt, record })
}
