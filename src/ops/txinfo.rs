//! `snakkaz-pay tx TXID|ADDRESS|REFERENCE|PAYMENT_ID`: a transaction's confirmations,
//! block, fee, fee rate, size, RBF signal, unconfirmed ancestors and the payments it pays,
//! all from the Electrum server (no third-party explorer).

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

use bdk_wallet::bitcoin::{Address, Network, Transaction, Txid};
use serde::Serialize;

use super::{OpsError, rate};
use crate::chain::lookup::Lookup;
use crate::store::Store;

/// Most unconfirmed ancestors followed (Bitcoin Core's own package limit is 25).
pub const MAX_ANCESTORS: usize = 25;
/// Most transactions shown for an address (newest first).
pub const MAX_ADDRESS_TXS: usize = 20;

/// An output of the transaction.
#[derive(Debug, Clone, Serialize)]
pub struct OutputJson {
    /// Output index.
    pub vout: u32,
    /// Address, when the script has one.
    pub address: Option<String>,
    /// Value.
    pub value_sat: u64,
    /// Payment whose address this is.
    pub payment_id: Option<String>,
    /// That payment's reference.
    pub reference: Option<String>,
}

/// An unconfirmed ancestor.
#[derive(Debug, Clone, Serialize)]
pub struct AncestorJson {
    /// Transaction id.
    pub txid: String,
    /// Fee, when every input is known.
    pub fee_sat: Option<u64>,
    /// Virtual size.
    pub vsize: u64,
    /// Fee rate (sat per 1000 vB).
    pub fee_rate_sat_per_kvb: Option<u64>,
    /// Fee rate in sat/vB, two decimals.
    pub fee_rate_sat_vb: Option<String>,
}

/// Everything `tx` reports about one transaction.
#[derive(Debug, Clone, Serialize)]
pub struct TxReport {
    /// Transaction id.
    pub txid: String,
    /// 0 while in the mempool.
    pub confirmations: u32,
    /// Block height, when confirmed.
    pub block_height: Option<u32>,
    /// Block hash, when confirmed.
    pub block_hash: Option<String>,
    /// Fee paid.
    pub fee_sat: Option<u64>,
    /// Serialized size in bytes.
    pub size: u64,
    /// Weight units.
    pub weight: u64,
    /// Virtual size (weight / 4, rounded up).
    pub vsize: u64,
    /// Fee rate (sat per 1000 vB).
    pub fee_rate_sat_per_kvb: Option<u64>,
    /// Fee rate in sat/vB, two decimals.
    pub fee_rate_sat_vb: Option<String>,
    /// Signals BIP125 replaceability (an input sequence below 0xfffffffe).
    pub rbf: bool,
    /// Unconfirmed transactions it depends on (empty once confirmed).
    pub unconfirmed_ancestors: Vec<AncestorJson>,
    /// Fee rate of it with its unconfirmed ancestors (what miners weigh), sat per 1000 vB.
    pub package_fee_rate_sat_per_kvb: Option<u64>,
    /// Package fee and vsize (for CPFP sums).
    pub package_fee_sat: Option<u64>,
    /// Package vsize.
    pub package_vsize: u64,
    /// Inputs.
    pub inputs: usize,
    /// Outputs, with the payments they pay.
    pub outputs: Vec<OutputJson>,
    /// Payments it pays: id → satoshis.
    pub pays: BTreeMap<String, u64>,
}

/// True when a transaction signals BIP125 replaceability.
pub fn signals_rbf(tx: &Transaction) -> bool {
    tx.input.iter().any(|i| i.sequence.is_rbf())
}

/// Fee from the values of the outputs it spends (`None` when one is unknown).
pub fn fee_of(tx: &Transaction, prevout_values: &[Option<u64>]) -> Option<u64> {
    let inputs: u64 = prevout_values.iter().copied().sum::<Option<u64>>()?;
    let outputs: u64 = tx.output.iter().map(|o| o.value.to_sat()).sum();
    inputs.checked_sub(outputs)
}

/// Depth of a transaction at `height` with the chain at `tip` (0 = unconfirmed).
pub fn confirmations(height: Option<u32>, tip: u32) -> u32 {
    match height {
        Some(h) if tip >= h => tip - h + 1,
        Some(_) => 1,
        None => 0,
    }
}

/// What the query names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// A transaction id.
    Txid(Txid),
    /// An address (its transactions).
    Address(String),
    /// A payment id (`pay_…`).
    PaymentId(String),
    /// A payment reference.
    Reference(String),
}

/// Classifies an operator's query (pure; the address is checked against `network`).
pub fn classify(q: &str, network: Network) -> Result<Query, OpsError> {
    let q = q.trim();
    if q.is_empty() {
        return Err(OpsError::Invalid(
            "give a txid, an address, a payment id or a payment reference".into(),
        ));
    }
    if q.len() == 64 && q.chars().all(|c| c.is_ascii_hexdigit()) {
        return Txid::from_str(q)
            .map(Query::Txid)
            .map_err(|e| OpsError::Invalid(format!("{q}: not a txid: {e}")));
    }
    if let Ok(a) = Address::from_str(q) {
        return match a.require_network(network) {
            Ok(a) => Ok(Query::Address(a.to_string())),
            Err(_) => Err(OpsError::Invalid(format!(
                "{q} is an address of another network; this appliance runs on {network}"
            ))),
        };
    }
    if q.starts_with("pay_") {
        return Ok(Query::PaymentId(q.to_owned()));
    }
    Ok(Query::Reference(q.to_owned()))
}

/// Facts about one transaction gathered from the server, cached per look-up.
struct Facts {
    tx: Transaction,
    height: Option<u32>,
    fee: Option<u64>,
    /// Parents that are unconfirmed.
    unconfirmed_parents: Vec<Txid>,
}

/// One look-up: a session and the transactions it already fetched.
pub struct Inspector<'a> {
    lookup: &'a Lookup,
    store: &'a Store,
    network: Network,
    tip: u32,
    facts: HashMap<Txid, Facts>,
    txs: HashMap<Txid, Transaction>,
}

impl<'a> Inspector<'a> {
    /// Starts a look-up (reads the server's tip once).
    pub fn new(lookup: &'a Lookup, store: &'a Store, network: Network) -> Result<Self, OpsError> {
        Ok(Inspector {
            tip: lookup.tip()?,
            lookup,
            store,
            network,
            facts: HashMap::new(),
            txs: HashMap::new(),
        })
    }

    /// The server's tip when the look-up started.
    pub fn tip(&self) -> u32 {
        self.tip
    }

    fn tx(&mut self, txid: Txid) -> Result<Transaction, OpsError> {
        if let Some(tx) = self.txs.get(&txid) {
            return Ok(tx.clone());
        }
        let tx = self
            .lookup
            .transaction(&txid)?
            .ok_or_else(|| OpsError::UnknownTx(txid.to_string()))?;
        self.txs.insert(txid, tx.clone());
        Ok(tx)
    }

    /// Height of `tx` from the history of one of its output scripts.
    fn height(&self, tx: &Transaction) -> Result<Option<u32>, OpsError> {
        let txid = tx.compute_txid();
        let Some(out) = tx.output.iter().find(|o| !o.script_pubkey.is_op_return()) else {
            return Ok(None);
        };
        let history = self.lookup.history(&out.script_pubkey)?;
        Ok(history
            .iter()
            .find(|h| h.tx_hash == txid)
            .and_then(|h| u32::try_from(h.height).ok().filter(|&h| h > 0)))
    }

    fn facts(&mut self, txid: Txid) -> Result<&Facts, OpsError> {
        if !self.facts.contains_key(&txid) {
            let tx = self.tx(txid)?;
            let height = self.height(&tx)?;
            let mut values = Vec::with_capacity(tx.input.len());
            let mut unconfirmed_parents = Vec::new();
            for input in &tx.input {
                let prev = input.previous_output;
                if prev.is_null() {
                    values.push(Some(0));
                    continue;
                }
                let parent = self.tx(prev.txid)?;
                values.push(
                    parent
                        .output
                        .get(prev.vout as usize)
                        .map(|o| o.value.to_sat()),
                );
                // A confirmed transaction's parents are confirmed too.
                if height.is_none()
                    && !unconfirmed_parents.contains(&prev.txid)
                    && self.height(&parent)?.is_none()
                {
                    unconfirmed_parents.push(prev.txid);
                }
            }
            let fee = fee_of(&tx, &values);
            self.facts.insert(
                txid,
                Facts {
                    tx,
                    height,
                    fee,
                    unconfirmed_parents,
                },
            );
        }
        Ok(&self.facts[&txid])
    }

    /// The full report of one transaction.
    pub fn report(&mut self, txid: Txid) -> Result<TxReport, OpsError> {
        let (tx, height, fee, parents) = {
            let f = self.facts(txid)?;
            (f.tx.clone(), f.height, f.fee, f.unconfirmed_parents.clone())
        };
        let vsize = tx.vsize() as u64;
        // Unconfirmed ancestors, breadth first, bounded.
        let mut ancestors: Vec<AncestorJson> = Vec::new();
        let mut queue = parents;
        let mut seen = std::collections::HashSet::new();
        let mut package_fee = fee;
        let mut package_vsize = vsize;
        while let Some(p) = queue.pop() {
            if !seen.insert(p) || ancestors.len() >= MAX_ANCESTORS {
                continue;
            }
            let (a_tx, a_fee, a_parents) = {
                let f = self.facts(p)?;
                (f.tx.clone(), f.fee, f.unconfirmed_parents.clone())
            };
            let a_vsize = a_tx.vsize() as u64;
            package_fee = package_fee.zip(a_fee).map(|(x, y)| x + y);
            package_vsize += a_vsize;
            ancestors.push(AncestorJson {
                txid: p.to_string(),
                fee_sat: a_fee,
                vsize: a_vsize,
                fee_rate_sat_per_kvb: a_fee.map(|f| rate::per_kvb(f, a_vsize)),
                fee_rate_sat_vb: a_fee.map(|f| rate::display(rate::per_kvb(f, a_vsize))),
            });
            queue.extend(a_parents);
        }
        let mut outputs = Vec::with_capacity(tx.output.len());
        let mut pays = BTreeMap::new();
        for (i, o) in tx.output.iter().enumerate() {
            let address = Address::from_script(&o.script_pubkey, self.network)
                .ok()
                .map(|a| a.to_string());
            let payment = match &address {
                Some(a) => self.store.payment_by_address(a)?,
                None => None,
            };
            if let Some(p) = &payment {
                *pays.entry(p.id.clone()).or_insert(0) += o.value.to_sat();
            }
            outputs.push(OutputJson {
                vout: i as u32,
                address,
                value_sat: o.value.to_sat(),
                payment_id: payment.as_ref().map(|p| p.id.clone()),
                reference: payment.map(|p| p.reference),
            });
        }
        let block_hash = match height {
            Some(h) => Some(self.lookup.block_hash(h)?.to_string()),
            None => None,
        };
        let fee_rate = fee.map(|f| rate::per_kvb(f, vsize));
        Ok(TxReport {
            txid: txid.to_string(),
            confirmations: confirmations(height, self.tip),
            block_height: height,
            block_hash,
            fee_sat: fee,
            size: tx.total_size() as u64,
            weight: tx.weight().to_wu(),
            vsize,
            fee_rate_sat_per_kvb: fee_rate,
            fee_rate_sat_vb: fee_rate.map(rate::display),
            rbf: signals_rbf(&tx),
            unconfirmed_ancestors: ancestors,
            package_fee_rate_sat_per_kvb: package_fee.map(|f| rate::per_kvb(f, package_vsize)),
            package_fee_sat: package_fee,
            package_vsize,
            inputs: tx.input.len(),
            outputs,
            pays,
        })
    }

    /// The transactions of an address, newest first (at most [`MAX_ADDRESS_TXS`]).
    pub fn address_txids(&self, address: &str) -> Result<Vec<Txid>, OpsError> {
        let a = Address::from_str(address)
            .ok()
            .and_then(|a| a.require_network(self.network).ok())
            .ok_or_else(|| OpsError::Invalid(format!("{address} is not an address")))?;
        let mut h = self.lookup.history(&a.script_pubkey())?;
        // Unconfirmed (0 / -1) first, then by height, newest first.
        h.sort_by_key(|e| std::cmp::Reverse(if e.height <= 0 { i32::MAX } else { e.height }));
        Ok(h.iter().take(MAX_ADDRESS_TXS).map(|e| e.tx_hash).collect())
    }
}

/// The answer to `tx QUERY`.
#[derive(Debug, Clone, Serialize)]
pub struct TxAnswer {
    /// The query as given.
    pub query: String,
    /// What it was read as: txid, address, payment or reference.
    pub kind: &'static str,
    /// Address looked at (address, payment or reference queries).
    pub address: Option<String>,
    /// Server tip height.
    pub tip_height: u32,
    /// Electrum server asked.
    pub server: String,
    /// The transactions.
    pub transactions: Vec<TxReport>,
}

/// Answers `tx QUERY` against the configured Electrum servers.
pub fn lookup(
    cfg: &crate::config::Config,
    store: &Store,
    query: &str,
) -> Result<TxAnswer, OpsError> {
    let q = classify(query, cfg.network)?;
    let session = super::open_lookup(cfg)?;
    let mut ins = Inspector::new(&session, store, cfg.network)?;
    let (kind, address, txids) = match q {
        Query::Txid(t) => ("txid", None, vec![t]),
        Query::Address(a) => ("address", Some(a.clone()), ins.address_txids(&a)?),
        Query::PaymentId(id) => {
            let p = store
                .payment(&id)?
                .ok_or_else(|| OpsError::NotFound(format!("no payment with id {id}")))?;
            (
                "payment",
                Some(p.address.clone()),
                ins.address_txids(&p.address)?,
            )
        }
        Query::Reference(r) => {
            let p = store.payment_by_reference(&r)?.ok_or_else(|| {
                OpsError::NotFound(format!(
                    "{r:?} is not a txid, an address of this network, or a payment reference known here"
                ))
            })?;
            (
                "reference",
                Some(p.address.clone()),
                ins.address_txids(&p.address)?,
            )
        }
    };
    let mut transactions = Vec::with_capacity(txids.len());
    for t in txids {
        transactions.push(ins.report(t)?);
    }
    Ok(TxAnswer {
        query: query.to_owned(),
        kind,
        address,
        tip_height: ins.tip(),
        server: session.server().to_string(),
        transactions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bdk_wallet::bitcoin::{
        Amount, OutPoint, ScriptBuf, Sequence, TxIn, TxOut, Witness, absolute, transaction,
    };

    fn tx(sequences: &[u32], outputs: &[u64]) -> Transaction {
        Transaction {
            version: transaction::Version::TWO,
            lock_time: absolute::LockTime::ZERO,
            input: sequences
                .iter()
                .map(|&s| TxIn {
                    previous_output: OutPoint::new(Txid::from_str(&"11".repeat(32)).unwrap(), 0),
                    script_sig: ScriptBuf::new(),
                    sequence: Sequence(s),
                    witness: Witness::new(),
                })
                .collect(),
            output: outputs
                .iter()
                .map(|&v| TxOut {
                    value: Amount::from_sat(v),
                    script_pubkey: ScriptBuf::new(),
                })
                .collect(),
        }
    }

    #[test]
    fn rbf_is_any_input_below_final_minus_one() {
        assert!(signals_rbf(&tx(&[0xffff_fffd], &[1])));
        assert!(signals_rbf(&tx(&[0xffff_ffff, 0], &[1])));
        assert!(!signals_rbf(&tx(&[0xffff_fffe], &[1])));
        assert!(!signals_rbf(&tx(&[0xffff_ffff, 0xffff_fffe], &[1])));
    }

    #[test]
    fn fee_needs_every_input_and_never_goes_negative() {
        let t = tx(&[0, 0], &[700, 200]);
        assert_eq!(fee_of(&t, &[Some(600), Some(400)]), Some(100));
        assert_eq!(fee_of(&t, &[Some(600), None]), None);
        assert_eq!(fee_of(&t, &[Some(100), Some(100)]), None);
    }

    #[test]
    fn confirmations_follow_tip_and_height() {
        assert_eq!(confirmations(None, 100), 0);
        assert_eq!(confirmations(Some(100), 100), 1);
        assert_eq!(confirmations(Some(95), 100), 6);
        assert_eq!(
            confirmations(Some(101), 100),
            1,
            "server tip behind: at least 1"
        );
    }

    #[test]
    fn queries_are_told_apart() {
        let n = Network::Regtest;
        let txid = "ab".repeat(32);
        assert!(matches!(classify(&txid, n), Ok(Query::Txid(_))));
        let addr = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";
        assert_eq!(classify(addr, n).unwrap(), Query::Address(addr.into()));
        assert!(matches!(
            classify("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", n),
            Err(OpsError::Invalid(m)) if m.contains("another network")
        ));
        assert_eq!(
            classify("pay_0123", n).unwrap(),
            Query::PaymentId("pay_0123".into())
        );
        assert_eq!(
            classify(" order-7 ", n).unwrap(),
            Query::Reference("order-7".into())
        );
        assert!(matches!(classify("  ", n), Err(OpsError::Invalid(_))));
    }
}
