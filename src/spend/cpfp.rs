//! CPFP for a stuck incoming payment: a child spending the payment's unconfirmed output(s)
//! to the wallet's own fresh change address (or the cold destination), paying enough that
//! parent(s) and child together reach the asked package fee rate.

use bdk_wallet::bitcoin::{Address, Amount, OutPoint, ScriptBuf};
use bdk_wallet::error::CreateTxError;
use bdk_wallet::{ChangeSet, KeychainKind, LocalOutput, Wallet};
use serde::Serialize;

use super::build::{Built, psbt_base64};
use super::{SpendError, check_fee_rate};
use crate::config::spend::ColdStorage;
use crate::ops::rate;
use crate::store::TransferRecord;

/// Where the child pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildTo {
    /// A fresh address of the wallet's own (change keychain when there is one).
    Own,
    /// The configured cold-storage destination.
    Cold,
}

impl ChildTo {
    /// Parses `change` / `own` or `cold`.
    pub fn parse(s: &str) -> Result<Self, SpendError> {
        match s {
            "change" | "own" => Ok(ChildTo::Own),
            "cold" => Ok(ChildTo::Cold),
            other => Err(SpendError::Invalid(format!(
                "--to {other:?}: give `change` (this wallet's own change address) or `cold` (the cold-storage destination)"
            ))),
        }
    }
}

/// The unconfirmed package the child pulls: its parents and their unconfirmed ancestors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Package {
    /// The payment's unconfirmed transactions the child spends.
    pub parents: Vec<String>,
    /// Fee of parents and ancestors.
    pub fee_sat: u64,
    /// Virtual size of parents and ancestors.
    pub vsize: u64,
}

/// Largest serialized size of an input spending a coin of `satisfaction_wu` (weight units
/// of its script_sig and witness), in vbytes rounded up: outpoint 36 + sequence 4 + an
/// empty script_sig's length byte 1, times four, plus the satisfaction.
pub fn input_vsize(satisfaction_wu: u64) -> u64 {
    (41 * 4 + satisfaction_wu).div_ceil(4)
}

/// The child's virtual size: version, locktime, counts and the segwit marker (11 vB
/// rounded up), its inputs, one output paying `script_len` bytes of script.
pub fn child_vsize(input_vsizes: &[u64], script_len: u64) -> u64 {
    11 + input_vsizes.iter().sum::<u64>() + 8 + 1 + script_len
}

/// The child's fee: parents and child together at `target_kvb`, and the child never below
/// the target on its own (else it would hold the package back itself).
pub fn child_fee(package: &Package, child_vsize: u64, target_kvb: u64) -> u64 {
    rate::fee_for(target_kvb, package.vsize + child_vsize)
        .saturating_sub(package.fee_sat)
        .max(rate::fee_for(target_kvb, child_vsize))
}

/// The payment's coins a child can spend: unspent, unconfirmed outputs to `address`.
/// Refuses (not stuck) when the money is confirmed or nothing unconfirmed is there.
pub fn stuck_outputs(
    wallet: &Wallet,
    payment_id: &str,
    address: &ScriptBuf,
) -> Result<Vec<LocalOutput>, SpendError> {
    let (unconfirmed, confirmed): (Vec<_>, Vec<_>) = wallet
        .list_unspent()
        .filter(|o| &o.txout.script_pubkey == address)
        .partition(|o| !o.chain_position.is_confirmed());
    if !unconfirmed.is_empty() {
        return Ok(unconfirmed);
    }
    let why = if confirmed.is_empty() {
        "no unconfirmed money at its address (nothing received yet, or already spent)"
    } else {
        "its money is confirmed"
    };
    Err(SpendError::NotStuck {
        id: payment_id.to_owned(),
        why: why.into(),
    })
}

/// A built child and the package facts shown with it.
#[derive(Debug, Clone)]
pub struct BuiltChild {
    /// The PSBT and its record.
    pub built: Built,
    /// The package the child pulls.
    pub package: Package,
    /// The package's rate before the child, sat/kvB.
    pub package_rate_before_kvb: u64,
    /// Parents, ancestors and child together, sat/kvB (at the child's estimated size).
    pub package_rate_after_kvb: u64,
}

/// What a child build needs besides the wallet.
pub struct ChildRequest<'a> {
    /// Payment id (for messages).
    pub payment_id: &'a str,
    /// The coins to spend (from [`stuck_outputs`]).
    pub outputs: &'a [LocalOutput],
    /// The package they belong to.
    pub package: Package,
    /// Target package rate, sat/kvB.
    pub target_kvb: u64,
    /// Where to pay.
    pub to: ChildTo,
    /// Unix seconds.
    pub now: u64,
    /// Who asked.
    pub source: &'a str,
}

/// Builds the child. Staged wallet changes (a revealed change address) are returned
/// whether or not the build succeeds, to be persisted.
pub fn build_child(
    wallet: &mut Wallet,
    cold: Option<&ColdStorage>,
    req: ChildRequest<'_>,
) -> (Option<ChangeSet>, Result<BuiltChild, SpendError>) {
    let r = build_inner(wallet, cold, req);
    (wallet.take_staged(), r)
}

fn build_inner(
    wallet: &mut Wallet,
    cold: Option<&ColdStorage>,
    req: ChildRequest<'_>,
) -> Result<BuiltChild, SpendError> {
    check_fee_rate(req.target_kvb)?;
    let before = rate::per_kvb(req.package.fee_sat, req.package.vsize);
    if before >= req.target_kvb {
        return Err(SpendError::NotStuck {
            id: req.payment_id.to_owned(),
            why: format!(
                "its transaction(s) already pay {} sat/vB with their unconfirmed ancestors, at or above the asked {} sat/vB",
                rate::display(before),
                rate::display(req.target_kvb)
            ),
        });
    }
    let destination: Address = match req.to {
        ChildTo::Cold => cold.ok_or(SpendError::NoDestination)?.addresses[0].clone(),
        ChildTo::Own => {
            let keychain = if wallet.keychains().any(|(k, _)| k == KeychainKind::Internal) {
                KeychainKind::Internal
            } else {
                KeychainKind::External
            };
            wallet.reveal_next_address(keychain).address
        }
    };
    let dest_spk = destination.script_pubkey();
    let mut sizes = Vec::with_capacity(req.outputs.len());
    for o in req.outputs {
        let w = wallet
            .public_descriptor(o.keychain)
            .max_weight_to_satisfy()
            .map_err(|e| SpendError::Build(format!("cannot size an input: {e}")))?;
        sizes.push(input_vsize(w.to_wu()));
    }
    let vsize = child_vsize(&sizes, dest_spk.len() as u64);
    let fee = child_fee(&req.package, vsize, req.target_kvb);
    let value: u64 = req.outputs.iter().map(|o| o.txout.value.to_sat()).sum();
    let dust = dest_spk.minimal_non_dust().to_sat();
    if value < fee.saturating_add(dust) {
        return Err(SpendError::TooSmall { value, fee });
    }
    let outpoints: Vec<OutPoint> = req.outputs.iter().map(|o| o.outpoint).collect();
    let psbt = {
        let mut b = wallet.build_tx();
        b.add_utxos(&outpoints)
            .map_err(|e| SpendError::Build(e.to_string()))?
            .manually_selected_only()
            .drain_to(dest_spk.clone())
            .fee_absolute(Amount::from_sat(fee));
        b.finish().map_err(|e| match e {
            CreateTxError::CoinSelection(_) | CreateTxError::OutputBelowDustLimit(_) => {
                SpendError::TooSmall { value, fee }
            }
            other => SpendError::Build(other.to_string()),
        })?
    };
    let tx = &psbt.unsigned_tx;
    if tx.output.len() != 1 || tx.output[0].script_pubkey != dest_spk {
        return Err(SpendError::Build(
            "the built child pays an unexpected script".into(),
        ));
    }
    let built_fee = psbt
        .fee()
        .map_err(|e| SpendError::Build(format!("fee unknown: {e}")))?
        .to_sat();
    let amount = tx.output[0].value.to_sat();
    let after = rate::per_kvb(req.package.fee_sat + built_fee, req.package.vsize + vsize);
    let record = TransferRecord {
        txid: tx.compute_txid().to_string(),
        kind: "cpfp".into(),
        psbt: psbt_base64(&psbt),
        destination: destination.to_string(),
        amount_sat: amount,
        change_sat: 0,
        fee_sat: built_fee,
        fee_rate_sat_per_kvb: req.target_kvb,
        inputs: outpoints.iter().map(ToString::to_string).collect(),
        created_at: req.now,
        broadcast_at: None,
        source: req.source.to_owned(),
        replaces: None,
    };
    Ok(BuiltChild {
        built: Built { psbt, record },
        package: req.package,
        package_rate_before_kvb: before,
        package_rate_after_kvb: after,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_p2wpkh_child_is_110_vbytes() {
        // wpkh's largest satisfaction: item count 1, signature 1+73, key 1+33 = 109 WU.
        let input = input_vsize(109);
        assert_eq!(input, 69);
        assert_eq!(child_vsize(&[input], 22), 111);
        assert_eq!(child_vsize(&[input, input], 34), 192);
    }

    #[test]
    fn the_child_lifts_the_package_to_the_target() {
        let p = Package {
            parents: vec![],
            fee_sat: 282, // 2 sat/vB over 141 vB
            vsize: 141,
        };
        let fee = child_fee(&p, 111, 10_000);
        assert_eq!(fee, 2520 - 282);
        assert!(rate::per_kvb(p.fee_sat + fee, p.vsize + 111) >= 10_000);
        // A rich ancestor: the child still pays its own share at the target.
        let rich = Package {
            parents: vec![],
            fee_sat: 1500,
            vsize: 141,
        };
        assert_eq!(child_fee(&rich, 111, 10_000), 1110);
        // Exact integer arithmetic at fractional rates: 2.5 sat/vB over 252 vB rounds up.
        assert_eq!(child_fee(&p, 111, 2_500), 630 - 282);
    }

    #[test]
    fn the_destination_words_are_named() {
        assert_eq!(ChildTo::parse("change").unwrap(), ChildTo::Own);
        assert_eq!(ChildTo::parse("cold").unwrap(), ChildTo::Cold);
        let e = ChildTo::parse("thief").unwrap_err().to_string();
        assert!(e.contains("--to \"thief\""), "{e}");
    }
}
