//! RBF fee bumps of the appliance's own transfers (BDK's `build_fee_bump`), and the check
//! that lets a signed replacement of a broadcast transfer through: same destination and
//! amount, only this wallet's coins and change, a higher fee within the bounds.

use std::str::FromStr;

use bdk_wallet::bitcoin::{Address, FeeRate, OutPoint, ScriptBuf, Transaction, Txid};
use bdk_wallet::error::{BuildFeeBumpError, CreateTxError};
use bdk_wallet::{ChangeSet, Wallet};

use super::build::{Built, psbt_base64};
use super::check::{Replaced, check_replacement};
use super::{SpendError, check_fee_rate};
use crate::ops::rate;
use crate::store::TransferRecord;

/// The facts of a broadcast transfer the wallet holds: its transaction, fee and rate.
fn wallet_facts(wallet: &Wallet, txid: Txid) -> Result<(Transaction, u64, u64), SpendError> {
    let wtx = wallet
        .get_tx(txid)
        .ok_or_else(|| SpendError::UnknownTx(txid.to_string()))?;
    if let bdk_wallet::chain::ChainPosition::Confirmed { anchor, .. } = &wtx.chain_position {
        return Err(SpendError::NotBumpable(format!(
            "{txid} is already confirmed (block {}); nothing to bump",
            anchor.block_id.height
        )));
    }
    let tx = wtx.tx_node.tx.as_ref().clone();
    let fee = wallet
        .calculate_fee(&tx)
        .map_err(|e| SpendError::Build(format!("the fee of {txid} is unknown: {e}")))?
        .to_sat();
    let rate_kvb = rate::per_kvb(fee, tx.vsize() as u64);
    Ok((tx, fee, rate_kvb))
}

fn destination_spk(record: &TransferRecord) -> Result<ScriptBuf, SpendError> {
    Address::from_str(&record.destination)
        .map(|a| a.assume_checked().script_pubkey())
        .map_err(|e| SpendError::Build(format!("stored destination unreadable: {e}")))
}

/// Builds an RBF replacement of the broadcast transfer `record` at `rate_kvb`. `None` for
/// `record`: the txid is not a transfer built here (unknown to the wallet or not ours).
pub fn build_bump(
    wallet: &mut Wallet,
    txid: &str,
    record: Option<&TransferRecord>,
    rate_kvb: u64,
    now: u64,
    source: &str,
) -> (Option<ChangeSet>, Result<Built, SpendError>) {
    let r = build_inner(wallet, txid, record, rate_kvb, now, source);
    (wallet.take_staged(), r)
}

fn build_inner(
    wallet: &mut Wallet,
    txid_text: &str,
    record: Option<&TransferRecord>,
    rate_kvb: u64,
    now: u64,
    source: &str,
) -> Result<Built, SpendError> {
    let txid = Txid::from_str(txid_text).map_err(|_| {
        SpendError::Invalid(format!(
            "{txid_text:?} is not a transaction id (64 hex digits)"
        ))
    })?;
    check_fee_rate(rate_kvb)?;
    let Some(record) = record else {
        return Err(match wallet.get_tx(txid) {
            None => SpendError::UnknownTx(txid_text.to_owned()),
            Some(_) => SpendError::NotBumpable(format!(
                "{txid} is not a transfer this appliance built (an incoming payment?); only its own transfers can be bumped — for a stuck payment use `snakkaz-pay cpfp PAYMENT_ID`"
            )),
        });
    };
    if record.kind == "cpfp" {
        return Err(SpendError::NotBumpable(format!(
            "{txid} is a CPFP child; build a new child with `snakkaz-pay cpfp` at the higher rate instead"
        )));
    }
    if record.broadcast_at.is_none() {
        return Err(SpendError::NotBumpable(format!(
            "{txid} was built but never broadcast; build it again with the fee rate you want (`snakkaz-pay transfer create --fee-rate R`)"
        )));
    }
    let (tx, fee, current) = wallet_facts(wallet, txid)?;
    if !crate::ops::txinfo::signals_rbf(&tx) {
        return Err(SpendError::NotBumpable(format!(
            "{txid} does not signal RBF (BIP125), so it cannot be replaced; wait, or spend its change with a child"
        )));
    }
    if rate_kvb <= current {
        return Err(SpendError::RateNotHigher {
            current: rate::display(current),
            asked: rate::display(rate_kvb),
        });
    }
    let psbt = {
        let mut b = wallet.build_fee_bump(txid).map_err(|e| match e {
            BuildFeeBumpError::TransactionNotFound(_) => SpendError::UnknownTx(txid.to_string()),
            BuildFeeBumpError::TransactionConfirmed(_) => {
                SpendError::NotBumpable(format!("{txid} is already confirmed; nothing to bump"))
            }
            BuildFeeBumpError::IrreplaceableTransaction(_) => SpendError::NotBumpable(format!(
                "{txid} does not signal RBF (BIP125), so it cannot be replaced"
            )),
            other => SpendError::Build(other.to_string()),
        })?;
        b.fee_rate(FeeRate::from_sat_per_kwu(rate_kvb.div_ceil(4)));
        b.finish().map_err(|e| match e {
            CreateTxError::FeeRateTooLow { .. } | CreateTxError::FeeTooLow { .. } => {
                SpendError::RateNotHigher {
                    current: rate::display(current),
                    asked: rate::display(rate_kvb),
                }
            }
            CreateTxError::CoinSelection(f) => SpendError::InsufficientFunds {
                needed: f.needed.to_sat(),
                available: f.available.to_sat(),
            },
            other => SpendError::Build(other.to_string()),
        })?
    };
    let new_fee = psbt
        .fee()
        .map_err(|e| SpendError::Build(format!("fee unknown: {e}")))?
        .to_sat();
    // The same check a signed replacement meets at broadcast (on the unsigned transaction,
    // whose size is smaller: the rate bound is checked with the asked rate above).
    let dest = destination_spk(record)?;
    let graph = wallet.tx_graph();
    check_replacement(
        &Replaced {
            tx: &tx,
            fee,
            destination: &dest,
            amount: record.amount_sat,
        },
        &psbt.unsigned_tx,
        |o: &OutPoint| {
            graph
                .get_txout(*o)
                .filter(|t| wallet.is_mine(t.script_pubkey.clone()))
                .cloned()
        },
        |s: &ScriptBuf| wallet.is_mine(s.clone()),
        wallet.network(),
    )?;
    let new = &psbt.unsigned_tx;
    let change_sat = new
        .output
        .iter()
        .filter(|o| o.script_pubkey != dest)
        .map(|o| o.value.to_sat())
        .sum();
    let record = TransferRecord {
        txid: new.compute_txid().to_string(),
        kind: "bump".into(),
        psbt: psbt_base64(&psbt),
        destination: record.destination.clone(),
        amount_sat: record.amount_sat,
        change_sat,
        fee_sat: new_fee,
        fee_rate_sat_per_kvb: rate_kvb,
        inputs: new
            .input
            .iter()
            .map(|i| i.previous_output.to_string())
            .collect(),
        created_at: now,
        broadcast_at: None,
        source: source.to_owned(),
        replaces: Some(txid.to_string()),
    };
    Ok(Built { psbt, record })
}

/// The broadcast transfer a signed transaction would replace: the newest broadcast record
/// spending one of the same coins, other than the transaction itself.
pub fn replaced_record<'a>(
    records: &'a [TransferRecord],
    signed: &Transaction,
) -> Option<&'a TransferRecord> {
    let txid = signed.compute_txid().to_string();
    let inputs: Vec<String> = signed
        .input
        .iter()
        .map(|i| i.previous_output.to_string())
        .collect();
    records
        .iter()
        .filter(|r| r.broadcast_at.is_some() && r.txid != txid && r.kind != "cpfp")
        .filter(|r| r.inputs.iter().any(|i| inputs.contains(i)))
        .max_by_key(|r| r.broadcast_at)
}

/// Accepts `signed` as a fee bump of the broadcast transfer `old` (a replacement the signer
/// made itself, e.g. Electrum's "bump fee"): returns the record to keep of it.
pub fn accept_replacement(
    wallet: &Wallet,
    old: &TransferRecord,
    signed: &Transaction,
    now: u64,
    source: &str,
) -> Result<TransferRecord, SpendError> {
    let old_txid = Txid::from_str(&old.txid)
        .map_err(|e| SpendError::Build(format!("stored txid unreadable: {e}")))?;
    let (tx, fee, _) = wallet_facts(wallet, old_txid)?;
    let dest = destination_spk(old)?;
    let graph = wallet.tx_graph();
    let new_fee = check_replacement(
        &Replaced {
            tx: &tx,
            fee,
            destination: &dest,
            amount: old.amount_sat,
        },
        signed,
        |o: &OutPoint| {
            graph
                .get_txout(*o)
                .filter(|t| wallet.is_mine(t.script_pubkey.clone()))
                .cloned()
        },
        |s: &ScriptBuf| wallet.is_mine(s.clone()),
        wallet.network(),
    )?;
    let vsize = signed.vsize() as u64;
    Ok(TransferRecord {
        txid: signed.compute_txid().to_string(),
        kind: "bump".into(),
        // The record keeps what was checked: the transaction itself as a PSBT.
        psbt: psbt_base64(
            &bdk_wallet::bitcoin::Psbt::from_unsigned_tx({
                let mut t = signed.clone();
                for i in &mut t.input {
                    i.script_sig = ScriptBuf::new();
                    i.witness.clear();
                }
                t
            })
            .map_err(|e| SpendError::Build(e.to_string()))?,
        ),
        destination: old.destination.clone(),
        amount_sat: old.amount_sat,
        change_sat: signed
            .output
            .iter()
            .filter(|o| o.script_pubkey != dest)
            .map(|o| o.value.to_sat())
            .sum(),
        fee_sat: new_fee,
        fee_rate_sat_per_kvb: rate::per_kvb(new_fee, vsize),
        inputs: signed
            .input
            .iter()
            .map(|i| i.previous_output.to_string())
            .collect(),
        created_at: now,
        broadcast_at: None,
        source: source.to_owned(),
        replaces: Some(old.txid.clone()),
    })
}
