//! The faucet: one P2WPKH key that receives every coinbase and pays anyone.

use bitcoin::key::{CompressedPublicKey, Secp256k1};
use bitcoin::secp256k1::{All, Message, SecretKey};
use bitcoin::sighash::{EcdsaSighashType, SighashCache};
use bitcoin::{
    Address, Amount, Network, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Witness,
    absolute, transaction,
};

use crate::chain::Chain;
use crate::error::{RpcError, code};
use crate::mempool::Mempool;

/// Fee rate of faucet payments, sat/vB.
pub const PAY_SAT_PER_VB: u64 = 2;
/// Outputs below this are not worth creating (P2WPKH dust limit is 294 sat).
const DUST: Amount = Amount::from_sat(1_000);
/// vbytes of a transaction's fixed part, a signed P2WPKH input, and the largest output.
const TX_OVERHEAD_VB: u64 = 11;
const INPUT_VB: u64 = 68;
const OUTPUT_VB: u64 = 43;

/// The faucet's key and address.
pub struct Faucet {
    secp: Secp256k1<All>,
    secret: SecretKey,
    pubkey: CompressedPublicKey,
    script: ScriptBuf,
}

impl Default for Faucet {
    fn default() -> Self {
        Self::new()
    }
}

impl Faucet {
    /// The faucet with its fixed regtest key (funds here are worthless by design).
    pub fn new() -> Self {
        let secp = Secp256k1::new();
        let secret = SecretKey::from_slice(&[0x11; 32]).expect("valid secret key");
        let pubkey = CompressedPublicKey(secret.public_key(&secp));
        let script = ScriptBuf::new_p2wpkh(&pubkey.wpubkey_hash());
        Faucet {
            secp,
            secret,
            pubkey,
            script,
        }
    }

    /// The faucet's output script.
    pub fn script(&self) -> &ScriptBuf {
        &self.script
    }

    /// The faucet's regtest address.
    pub fn address(&self) -> Address {
        Address::p2wpkh(&self.pubkey, Network::Regtest)
    }

    /// Whether every input of `tx` spends a faucet output.
    pub fn owns_inputs(&self, chain: &Chain, mempool: &Mempool, tx: &Transaction) -> bool {
        tx.input.iter().all(|i| {
            spent_output(chain, mempool, &i.previous_output)
                .is_some_and(|o| o.script_pubkey == self.script)
        })
    }

    /// Spendable faucet coins: mature confirmed ones first (largest first), then
    /// unconfirmed change, none of them already spent in the mempool.
    pub fn spendable(&self, chain: &Chain, mempool: &Mempool) -> Vec<(OutPoint, TxOut)> {
        let spend_height = chain.tip_height() + 1;
        let mut confirmed: Vec<(OutPoint, TxOut)> = chain
            .coins_for_script(&self.script)
            .filter(|(op, c)| c.is_mature_at(spend_height) && mempool.spender(op).is_none())
            .map(|(op, c)| (*op, c.txout.clone()))
            .collect();
        confirmed.sort_by(|a, b| b.1.value.cmp(&a.1.value).then(a.0.cmp(&b.0)));
        let unconfirmed = mempool.ordered().into_iter().flat_map(|e| {
            let txid = e.tx.compute_txid();
            e.tx.output.iter().enumerate().filter_map(move |(vout, o)| {
                let op = OutPoint::new(txid, vout as u32);
                (o.script_pubkey == self.script).then(|| (op, o.clone()))
            })
        });
        let unconfirmed: Vec<_> = unconfirmed
            .filter(|(op, _)| mempool.spender(op).is_none())
            .collect();
        confirmed.into_iter().chain(unconfirmed).collect()
    }

    /// Total of [`Faucet::spendable`].
    pub fn balance(&self, chain: &Chain, mempool: &Mempool) -> Amount {
        self.spendable(chain, mempool)
            .iter()
            .map(|(_, o)| o.value)
            .sum()
    }

    /// A signed transaction paying `amount` to `to`, change back to the faucet.
    pub fn pay(
        &self,
        chain: &Chain,
        mempool: &Mempool,
        to: ScriptBuf,
        amount: Amount,
    ) -> Result<Transaction, RpcError> {
        self.pay_many(chain, mempool, vec![(to, amount)])
    }

    /// One signed transaction paying every `(script, amount)` (benchmarks fund
    /// thousands of addresses in a few transactions).
    pub fn pay_many(
        &self,
        chain: &Chain,
        mempool: &Mempool,
        to: Vec<(ScriptBuf, Amount)>,
    ) -> Result<Transaction, RpcError> {
        if let Some((_, amount)) = to.iter().find(|(_, a)| *a < DUST) {
            return Err(RpcError::new(
                code::INVALID_PARAMETER,
                format!("amount {amount} is below {DUST}"),
            ));
        }
        let amount: Amount = to.iter().map(|(_, a)| *a).sum();
        let n_out = to.len() + 1;
        let mut inputs = Vec::new();
        let mut total = Amount::ZERO;
        for coin in self.spendable(chain, mempool) {
            total += coin.1.value;
            inputs.push(coin);
            let fee = fee_for(inputs.len(), n_out, PAY_SAT_PER_VB);
            if total >= amount + fee {
                break;
            }
        }
        let fee = fee_for(inputs.len(), n_out, PAY_SAT_PER_VB);
        if total < amount + fee {
            return Err(RpcError::new(
                code::MISC,
                format!(
                    "faucet has {total} spendable, cannot pay {amount} plus fee {fee}; mine more blocks"
                ),
            ));
        }
        let mut outputs: Vec<TxOut> = to
            .into_iter()
            .map(|(script_pubkey, value)| TxOut {
                value,
                script_pubkey,
            })
            .collect();
        let change = total - amount - fee;
        if change >= DUST {
            outputs.push(TxOut {
                value: change,
                script_pubkey: self.script.clone(),
            });
        }
        Ok(self.sign(inputs, outputs))
    }

    /// A signed transaction spending the same coins as `original` (a faucet payment)
    /// that pays its first non-faucet amount to `to` instead, with a higher fee.
    pub fn replacement(
        &self,
        chain: &Chain,
        mempool: &Mempool,
        original: &Transaction,
        original_fee: Amount,
        to: ScriptBuf,
    ) -> Result<Transaction, RpcError> {
        let inputs: Vec<(OutPoint, TxOut)> = original
            .input
            .iter()
            .map(|i| {
                let out = spent_output(chain, mempool, &i.previous_output).ok_or_else(|| {
                    RpcError::new(
                        code::VERIFY_ERROR,
                        format!("input {} of the original is gone", i.previous_output),
                    )
                })?;
                Ok((i.previous_output, out))
            })
            .collect::<Result<_, RpcError>>()?;
        let total: Amount = inputs.iter().map(|(_, o)| o.value).sum();
        let paid = original
            .output
            .iter()
            .find(|o| o.script_pubkey != self.script)
            .map_or(total, |o| o.value);
        // Replacement rules: more absolute fee than the original and its descendants,
        // plus the relay increment for its own size. Double the original's to be safe.
        let fee = original_fee * 2 + Amount::from_sat(fee_for(inputs.len(), 2, 1).to_sat() + 1_000);
        let spare = total.checked_sub(fee).ok_or_else(|| {
            RpcError::new(code::MISC, "the original's inputs cannot pay a higher fee")
        })?;
        let amount = paid.min(spare);
        let mut outputs = vec![TxOut {
            value: amount,
            script_pubkey: to,
        }];
        let change = spare - amount;
        if change >= DUST {
            outputs.push(TxOut {
                value: change,
                script_pubkey: self.script.clone(),
            });
        }
        Ok(self.sign(inputs, outputs))
    }

    fn sign(&self, inputs: Vec<(OutPoint, TxOut)>, output: Vec<TxOut>) -> Transaction {
        let mut tx = Transaction {
            version: transaction::Version::TWO,
            lock_time: absolute::LockTime::ZERO,
            input: inputs
                .iter()
                .map(|(op, _)| TxIn {
                    previous_output: *op,
                    script_sig: ScriptBuf::new(),
                    sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
                    witness: Witness::new(),
                })
                .collect(),
            output,
        };
        let mut cache = SighashCache::new(&mut tx);
        for (n, (_, prev)) in inputs.iter().enumerate() {
            let sighash = cache
                .p2wpkh_signature_hash(n, &prev.script_pubkey, prev.value, EcdsaSighashType::All)
                .expect("input index and script are valid");
            let msg = Message::from(sighash);
            let signature = bitcoin::ecdsa::Signature {
                signature: self.secp.sign_ecdsa(&msg, &self.secret),
                sighash_type: EcdsaSighashType::All,
            };
            *cache.witness_mut(n).expect("input exists") =
                Witness::p2wpkh(&signature, &self.pubkey.0);
        }
        tx
    }
}

/// The output an outpoint refers to, confirmed or in the mempool.
pub fn spent_output(chain: &Chain, mempool: &Mempool, op: &OutPoint) -> Option<TxOut> {
    chain
        .coin(op)
        .map(|c| c.txout.clone())
        .or_else(|| mempool.output(op).cloned())
}

fn fee_for(inputs: usize, outputs: usize, sat_per_vb: u64) -> Amount {
    let vb = TX_OVERHEAD_VB + INPUT_VB * inputs as u64 + OUTPUT_VB * outputs as u64;
    Amount::from_sat(vb * sat_per_vb)
}
