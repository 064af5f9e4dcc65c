//! Is the signed transaction the one that was built? Pure checks run before any broadcast.

use bdk_wallet::bitcoin::{Address, Network, OutPoint, ScriptBuf, Transaction, TxOut};

/// Why a signed transaction is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    /// It spends other coins than the built transaction.
    #[error(
        "the signed transaction spends other coins than the transfer that was built; sign the PSBT from `snakkaz-pay transfer create` unchanged"
    )]
    InputsDiffer,
    /// It pays someone other than the cold destination and the wallet's own change.
    #[error(
        "the signed transaction pays {address}, which is neither the cold-storage destination nor this wallet's change; refused (tampered PSBT?)"
    )]
    OtherDestination {
        /// The foreign address (or script).
        address: String,
    },
    /// It pays more fee than was built.
    #[error(
        "the signed transaction pays a fee of {signed} sat where {built} sat were built; refused (tampered PSBT?)"
    )]
    FeeTooHigh {
        /// Fee of the built transaction.
        built: u64,
        /// Fee of the signed one.
        signed: u64,
    },
    /// Same destinations and fee, but the amounts were changed.
    #[error(
        "the signed transaction's outputs differ from the built transfer's; sign the PSBT unchanged"
    )]
    OutputsDiffer,
    /// An input has no signature.
    #[error("input {index} is not signed; finish signing (all inputs) and try again")]
    Unsigned {
        /// Input index.
        index: usize,
    },
    /// A replacement that spends none of the replaced transfer's coins.
    #[error(
        "the signed transaction does not replace the transfer {original}: it spends none of its coins"
    )]
    NotAReplacement {
        /// The transfer's txid.
        original: String,
    },
    /// A replacement that spends a coin not this wallet's.
    #[error("the replacement spends {outpoint}, which is not this wallet's coin; refused")]
    ForeignInput {
        /// The foreign coin.
        outpoint: String,
    },
    /// A replacement that changes what the destination receives.
    #[error(
        "the replacement pays the destination {signed} sat where the transfer paid {built} sat; a fee bump keeps the amount, refused"
    )]
    AmountChanged {
        /// Amount of the transfer.
        built: u64,
        /// Amount of the replacement.
        signed: u64,
    },
    /// A replacement whose fee is not higher, or whose rate is above the bound.
    #[error(
        "the replacement pays a fee of {signed} sat where the transfer paid {built} sat; a fee bump must pay more, at most {} sat/vB",
        crate::ops::rate::display(super::MAX_FEE_RATE_KVB)
    )]
    ReplacementFee {
        /// Fee of the transfer.
        built: u64,
        /// Fee of the replacement.
        signed: u64,
    },
}

/// The transfer a replacement is judged against.
pub struct Replaced<'a> {
    /// The transfer's transaction (as broadcast).
    pub tx: &'a Transaction,
    /// Its fee.
    pub fee: u64,
    /// The destination it pays.
    pub destination: &'a ScriptBuf,
    /// What it pays the destination.
    pub amount: u64,
}

/// Checks that `new` is a fee bump of `old`: it spends at least one of the same coins and
/// only this wallet's coins (`prevout` answers those, `None` for a foreign one), pays the
/// destination the same amount and everything else to this wallet (`is_own`), and pays a
/// higher fee at a rate within the bounds. Returns its fee.
pub fn check_replacement(
    old: &Replaced<'_>,
    new: &Transaction,
    prevout: impl Fn(&OutPoint) -> Option<TxOut>,
    is_own: impl Fn(&ScriptBuf) -> bool,
    network: Network,
) -> Result<u64, CheckError> {
    let old_inputs = sorted_inputs(old.tx);
    if !new
        .input
        .iter()
        .any(|i| old_inputs.contains(&i.previous_output))
    {
        return Err(CheckError::NotAReplacement {
            original: old.tx.compute_txid().to_string(),
        });
    }
    let mut value_in = 0u64;
    for i in &new.input {
        let out = prevout(&i.previous_output).ok_or_else(|| CheckError::ForeignInput {
            outpoint: i.previous_output.to_string(),
        })?;
        value_in += out.value.to_sat();
    }
    let mut amount = 0u64;
    for o in &new.output {
        if &o.script_pubkey == old.destination {
            amount += o.value.to_sat();
        } else if !is_own(&o.script_pubkey) {
            let address = Address::from_script(&o.script_pubkey, network)
                .map_or_else(|_| o.script_pubkey.to_hex_string(), |a| a.to_string());
            return Err(CheckError::OtherDestination { address });
        }
    }
    if amount != old.amount {
        return Err(CheckError::AmountChanged {
            built: old.amount,
            signed: amount,
        });
    }
    let value_out: u64 = new.output.iter().map(|o| o.value.to_sat()).sum();
    let fee = value_in.saturating_sub(value_out);
    let rate = crate::ops::rate::per_kvb(fee, new.vsize() as u64);
    if fee <= old.fee || rate > super::MAX_FEE_RATE_KVB {
        return Err(CheckError::ReplacementFee {
            built: old.fee,
            signed: fee,
        });
    }
    Ok(fee)
}

/// The built transaction's facts the check needs.
pub struct Built<'a> {
    /// The unsigned transaction.
    pub tx: &'a Transaction,
    /// The outputs its inputs spend, in input order.
    pub prevouts: &'a [TxOut],
    /// Scripts it may pay: the cold destination(s) and its own change.
    pub allowed: &'a [ScriptBuf],
}

fn sorted_inputs(tx: &Transaction) -> Vec<OutPoint> {
    let mut v: Vec<OutPoint> = tx.input.iter().map(|i| i.previous_output).collect();
    v.sort();
    v
}

fn sorted_outputs(tx: &Transaction) -> Vec<(ScriptBuf, u64)> {
    let mut v: Vec<_> = tx
        .output
        .iter()
        .map(|o| (o.script_pubkey.clone(), o.value.to_sat()))
        .collect();
    v.sort();
    v
}

/// Checks `signed` against what was built; returns its fee.
pub fn check_signed(
    built: &Built<'_>,
    signed: &Transaction,
    network: Network,
) -> Result<u64, CheckError> {
    if sorted_inputs(built.tx) != sorted_inputs(signed) {
        return Err(CheckError::InputsDiffer);
    }
    for o in &signed.output {
        if !built.allowed.contains(&o.script_pubkey) {
            let address = Address::from_script(&o.script_pubkey, network)
                .map_or_else(|_| o.script_pubkey.to_hex_string(), |a| a.to_string());
            return Err(CheckError::OtherDestination { address });
        }
    }
    let value_in: u64 = built.prevouts.iter().map(|o| o.value.to_sat()).sum();
    let out = |tx: &Transaction| -> u64 { tx.output.iter().map(|o| o.value.to_sat()).sum() };
    let built_fee = value_in.saturating_sub(out(built.tx));
    let signed_fee = value_in.saturating_sub(out(signed));
    if signed_fee > built_fee {
        return Err(CheckError::FeeTooHigh {
            built: built_fee,
            signed: signed_fee,
        });
    }
    if sorted_outputs(built.tx) != sorted_outputs(signed) {
        return Err(CheckError::OutputsDiffer);
    }
    if let Some(index) = signed
        .input
        .iter()
        .position(|i| i.witness.is_empty() && i.script_sig.is_empty())
    {
        return Err(CheckError::Unsigned { index });
    }
    Ok(signed_fee)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bdk_wallet::bitcoin::{
        Amount, Sequence, TxIn, Txid, Witness, absolute, hashes::Hash, transaction,
    };

    fn script(n: u8) -> ScriptBuf {
        ScriptBuf::new_p2wpkh(&bdk_wallet::bitcoin::WPubkeyHash::from_byte_array([n; 20]))
    }

    fn tx(inputs: &[u8], outputs: &[(u8, u64)], signed: bool) -> Transaction {
        Transaction {
            version: transaction::Version::TWO,
            lock_time: absolute::LockTime::ZERO,
            input: inputs
                .iter()
                .map(|&n| TxIn {
                    previous_output: OutPoint::new(Txid::from_byte_array([n; 32]), 0),
                    script_sig: ScriptBuf::new(),
                    sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
                    witness: if signed {
                        Witness::from_slice(&[vec![1u8; 71], vec![2u8; 33]])
                    } else {
                        Witness::new()
                    },
                })
                .collect(),
            output: outputs
                .iter()
                .map(|&(s, v)| TxOut {
                    value: Amount::from_sat(v),
                    script_pubkey: script(s),
                })
                .collect(),
        }
    }

    fn prevouts() -> Vec<TxOut> {
        vec![
            TxOut {
                value: Amount::from_sat(60_000),
                script_pubkey: script(9),
            },
            TxOut {
                value: Amount::from_sat(40_000),
                script_pubkey: script(9),
            },
        ]
    }

    #[test]
    fn the_built_transaction_signed_passes_in_any_order() {
        let built = tx(&[1, 2], &[(10, 90_000), (11, 9_000)], false);
        let p = prevouts();
        let allowed = [script(10), script(11)];
        let b = Built {
            tx: &built,
            prevouts: &p,
            allowed: &allowed,
        };
        let signed = tx(&[2, 1], &[(11, 9_000), (10, 90_000)], true);
        assert_eq!(check_signed(&b, &signed, Network::Regtest), Ok(1_000));
    }

    #[test]
    fn tampering_is_named() {
        let built = tx(&[1, 2], &[(10, 90_000), (11, 9_000)], false);
        let p = prevouts();
        let allowed = [script(10), script(11)];
        let b = Built {
            tx: &built,
            prevouts: &p,
            allowed: &allowed,
        };
        let n = Network::Regtest;
        let other = tx(&[1, 2], &[(66, 90_000), (11, 9_000)], true);
        assert!(matches!(
            check_signed(&b, &other, n),
            Err(CheckError::OtherDestination { address }) if address.starts_with("bcrt1q")
        ));
        let greedy = tx(&[1, 2], &[(10, 85_000), (11, 9_000)], true);
        assert_eq!(
            check_signed(&b, &greedy, n),
            Err(CheckError::FeeTooHigh {
                built: 1_000,
                signed: 6_000
            })
        );
        let shifted = tx(&[1, 2], &[(10, 80_000), (11, 19_000)], true);
        assert_eq!(
            check_signed(&b, &shifted, n),
            Err(CheckError::OutputsDiffer)
        );
        let more = tx(&[1, 3], &[(10, 90_000), (11, 9_000)], true);
        assert_eq!(check_signed(&b, &more, n), Err(CheckError::InputsDiffer));
        let unsigned = tx(&[1, 2], &[(10, 90_000), (11, 9_000)], false);
        assert_eq!(
            check_signed(&b, &unsigned, n),
            Err(CheckError::Unsigned { index: 0 })
        );
    }

    #[test]
    fn a_replacement_keeps_the_destination_amount_and_pays_more() {
        let old = tx(&[1, 2], &[(10, 90_000), (11, 9_000)], true);
        let dest = script(10);
        let r = Replaced {
            tx: &old,
            fee: 1_000,
            destination: &dest,
            amount: 90_000,
        };
        let p = prevouts();
        let prevout = |o: &OutPoint| match o.txid.to_byte_array()[0] {
            1 => Some(p[0].clone()),
            2 => Some(p[1].clone()),
            _ => None,
        };
        let own = |s: &ScriptBuf| *s == script(11) || *s == script(12);
        let n = Network::Regtest;
        // Less change, a new change address: accepted.
        let bumped = tx(&[1, 2], &[(10, 90_000), (12, 8_000)], true);
        assert_eq!(check_replacement(&r, &bumped, prevout, own, n), Ok(2_000));
        // Same fee: not a bump.
        let same = tx(&[1, 2], &[(10, 90_000), (12, 9_000)], true);
        assert_eq!(
            check_replacement(&r, &same, prevout, own, n),
            Err(CheckError::ReplacementFee {
                built: 1_000,
                signed: 1_000
            })
        );
        // The fee taken from the destination: the amount changed.
        let cut = tx(&[1, 2], &[(10, 89_000), (11, 9_000)], true);
        assert_eq!(
            check_replacement(&r, &cut, prevout, own, n),
            Err(CheckError::AmountChanged {
                built: 90_000,
                signed: 89_000
            })
        );
        // Someone else's output, a foreign coin, unrelated coins.
        let thief = tx(&[1, 2], &[(10, 90_000), (66, 8_000)], true);
        assert!(matches!(
            check_replacement(&r, &thief, prevout, own, n),
            Err(CheckError::OtherDestination { .. })
        ));
        let foreign = tx(&[1, 5], &[(10, 90_000), (12, 8_000)], true);
        assert!(matches!(
            check_replacement(&r, &foreign, prevout, own, n),
            Err(CheckError::ForeignInput { .. })
        ));
        let unrelated = tx(&[5], &[(10, 90_000)], true);
        assert!(matches!(
            check_replacement(&r, &unrelated, prevout, own, n),
            Err(CheckError::NotAReplacement { .. })
        ));
    }
}
