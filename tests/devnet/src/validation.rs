//! Checks a transaction before it enters the mempool: inputs exist and are unspent,
//! no value is created, every input script verifies, and replacements pay more.

use std::collections::{BTreeSet, HashSet};

use bitcoin::{Amount, Transaction, TxOut, Txid};

use crate::chain::Chain;
use crate::error::{RpcError, code};
use crate::mempool::Mempool;

/// Minimum relay fee and replacement increment, in sat/vB (bitcoind's defaults).
pub const MIN_RELAY_SAT_PER_VB: u64 = 1;

/// What accepting a transaction would do.
#[derive(Debug)]
pub struct Accepted {
    /// Its fee.
    pub fee: Amount,
    /// Mempool transactions it replaces (conflicts and their descendants).
    pub replaces: BTreeSet<Txid>,
}

fn reject(reason: impl Into<String>) -> RpcError {
    RpcError::new(code::VERIFY_REJECTED, reason)
}

/// Checks `tx` against the tip and the mempool (full RBF: conflicts are allowed
/// when the new transaction pays more than everything it evicts).
pub fn check(chain: &Chain, mempool: &Mempool, tx: &Transaction) -> Result<Accepted, RpcError> {
    let txid = tx.compute_txid();
    if tx.is_coinbase() {
        return Err(reject("coinbase: a coinbase cannot be relayed"));
    }
    if tx.input.is_empty() {
        return Err(reject("bad-txns-vin-empty"));
    }
    if tx.output.is_empty() {
        return Err(reject("bad-txns-vout-empty"));
    }
    if mempool.contains(&txid) {
        return Err(reject("txn-already-in-mempool"));
    }
    if chain.tx(&txid).is_some() {
        return Err(RpcError::new(
            code::VERIFY_ALREADY_IN_CHAIN,
            "Transaction already in block chain",
        ));
    }
    let mut seen = HashSet::new();
    if !tx.input.iter().all(|i| seen.insert(i.previous_output)) {
        return Err(reject("bad-txns-inputs-duplicate"));
    }

    let spend_height = chain.tip_height() + 1;
    let mut spent: Vec<TxOut> = Vec::with_capacity(tx.input.len());
    let mut conflicts = BTreeSet::new();
    for (n, input) in tx.input.iter().enumerate() {
        let op = &input.previous_output;
        let txout = if let Some(coin) = chain.coin(op) {
            if !coin.is_mature_at(spend_height) {
                return Err(reject(format!(
                    "bad-txns-premature-spend-of-coinbase: input {n} spends a coinbase of height {} at height {spend_height}",
                    coin.height
                )));
            }
            coin.txout.clone()
        } else if let Some(txout) = mempool.output(op) {
            txout.clone()
        } else {
            return Err(RpcError::new(
                code::VERIFY_ERROR,
                format!(
                    "bad-txns-inputs-missingorspent: input {n} spends unknown or spent output {op}"
                ),
            ));
        };
        if let Some(other) = mempool.spender(op) {
            conflicts.insert(other);
        }
        spent.push(txout);
    }

    let value_in: Amount = spent.iter().map(|o| o.value).sum();
    let value_out = tx
        .output
        .iter()
        .try_fold(Amount::ZERO, |acc, o| acc.checked_add(o.value))
        .filter(|v| *v <= Amount::MAX_MONEY)
        .ok_or_else(|| reject("bad-txns-txouttotal-toolarge"))?;
    let fee = value_in.checked_sub(value_out).ok_or_else(|| {
        reject(format!(
            "bad-txns-in-belowout, value in {value_in} < value out {value_out}"
        ))
    })?;

    verify_scripts(tx, &spent)?;

    let vsize = tx.vsize() as u64;
    if fee.to_sat() < vsize * MIN_RELAY_SAT_PER_VB {
        return Err(reject(format!(
            "min relay fee not met, {} < {}",
            fee.to_sat(),
            vsize * MIN_RELAY_SAT_PER_VB
        )));
    }

    let mut replaces = BTreeSet::new();
    for c in &conflicts {
        replaces.extend(mempool.with_descendants(*c));
    }
    // A transaction cannot spend an output of a transaction it replaces.
    if let Some(input) = tx
        .input
        .iter()
        .find(|i| replaces.contains(&i.previous_output.txid))
    {
        return Err(reject(format!(
            "bad-txns-spends-conflicting-tx: spends {} which it replaces",
            input.previous_output.txid
        )));
    }
    if !replaces.is_empty() {
        let evicted: Amount = replaces
            .iter()
            .filter_map(|id| mempool.get(id))
            .map(|e| e.fee)
            .sum();
        let needed = evicted + Amount::from_sat(vsize * MIN_RELAY_SAT_PER_VB);
        if fee < needed {
            let first = replaces.iter().next().expect("non-empty");
            return Err(reject(format!(
                "insufficient fee, rejecting replacement {txid}: pays {} sat, needs at least {} sat to replace {first}",
                fee.to_sat(),
                needed.to_sat()
            )));
        }
    }
    Ok(Accepted { fee, replaces })
}

/// Verifies every input with libbitcoinconsensus, taproot included.
fn verify_scripts(tx: &Transaction, spent: &[TxOut]) -> Result<(), RpcError> {
    let raw = bitcoin::consensus::serialize(tx);
    // The C library reads the scripts through these pointers; `spent` outlives them.
    let utxos: Vec<bitcoinconsensus::Utxo> = spent
        .iter()
        .map(|o| bitcoinconsensus::Utxo {
            script_pubkey: o.script_pubkey.as_bytes().as_ptr(),
            script_pubkey_len: o.script_pubkey.len() as u32,
            value: o.value.to_sat() as i64,
        })
        .collect();
    let flags = bitcoinconsensus::VERIFY_ALL_PRE_TAPROOT | bitcoinconsensus::VERIFY_TAPROOT;
    for (n, out) in spent.iter().enumerate() {
        bitcoinconsensus::verify_with_flags(
            out.script_pubkey.as_bytes(),
            out.value.to_sat(),
            &raw,
            Some(&utxos),
            n,
            flags,
        )
        .map_err(|e| {
            // libbitcoinconsensus reports a script that evaluates to false (a bad
            // signature, a wrong key) as its "no error" value: say so plainly.
            let why = match e {
                bitcoinconsensus::Error::ERR_SCRIPT => {
                    "script evaluated to false (bad signature or wrong key)".to_string()
                }
                other => other.to_string(),
            };
            reject(format!(
                "mandatory-script-verify-flag-failed: input {n} does not verify against {}: {why}",
                out.script_pubkey
            ))
        })?;
    }
    Ok(())
}
