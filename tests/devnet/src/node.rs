//! The node: chain, mempool and faucet together, and the operations on them.

use std::collections::BTreeSet;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use bitcoin::{Address, Amount, Network, ScriptBuf, Transaction, Txid};

use crate::chain::{self, Chain};
use crate::error::{RpcError, code};
use crate::faucet::Faucet;
use crate::mempool::Mempool;
use crate::mining::{self, Template};
use crate::validation::{self, Accepted};

/// What `estimatesmartfee` answers until told otherwise, sat/vB.
pub const DEFAULT_FEE_SAT_PER_VB: u64 = 1;

/// The whole simulated bitcoind state.
pub struct Node {
    /// Blocks, UTXO set and indexes.
    pub chain: Chain,
    /// Unconfirmed transactions.
    pub mempool: Mempool,
    /// The funded key.
    pub faucet: Faucet,
    /// What `estimatesmartfee` answers, sat/vB.
    pub fee_sat_per_vb: u64,
    extranonce: u64,
}

impl Default for Node {
    fn default() -> Self {
        Self::new()
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Parses a regtest address into its output script.
pub fn parse_address(s: &str) -> Result<ScriptBuf, RpcError> {
    let addr = Address::from_str(s).map_err(|e| {
        RpcError::new(
            code::INVALID_ADDRESS_OR_KEY,
            format!("invalid address {s:?}: {e}"),
        )
    })?;
    let addr = addr.require_network(Network::Regtest).map_err(|e| {
        RpcError::new(
            code::INVALID_ADDRESS_OR_KEY,
            format!("address {s:?} is not a regtest address: {e}"),
        )
    })?;
    Ok(addr.script_pubkey())
}

/// Parses a txid given as hex.
pub fn parse_txid(s: &str) -> Result<Txid, RpcError> {
    Txid::from_str(s)
        .map_err(|e| RpcError::new(code::INVALID_PARAMETER, format!("invalid txid {s:?}: {e}")))
}

impl Node {
    /// A node holding only the genesis block.
    pub fn new() -> Self {
        Node {
            chain: Chain::new(),
            mempool: Mempool::default(),
            faucet: Faucet::new(),
            fee_sat_per_vb: DEFAULT_FEE_SAT_PER_VB,
            extranonce: 0,
        }
    }

    /// Validates `tx` without accepting it.
    pub fn test_accept(&self, tx: &Transaction) -> Result<Accepted, RpcError> {
        validation::check(&self.chain, &self.mempool, tx)
    }

    /// Validates `tx` and puts it in the mempool, evicting what it replaces.
    pub fn submit(&mut self, tx: Transaction) -> Result<(Txid, Accepted), RpcError> {
        let accepted = self.test_accept(&tx)?;
        for id in &accepted.replaces {
            self.mempool.remove_with_descendants(*id);
        }
        let txid = tx.compute_txid();
        self.mempool.insert(tx, accepted.fee, now_secs());
        Ok((txid, accepted))
    }

    /// Mines `n` blocks holding the whole mempool (the first one does); returns the new height.
    pub fn mine(&mut self, n: u32) -> u32 {
        for _ in 0..n {
            let entries = self.mempool.drain();
            let fees: Amount = entries.iter().map(|e| e.fee).sum();
            let txs = entries.into_iter().map(|e| e.tx).collect();
            self.mine_one(txs, fees);
        }
        self.chain.tip_height()
    }

    fn mine_one(&mut self, txs: Vec<Transaction>, fees: Amount) {
        self.extranonce += 1;
        let height = self.chain.tip_height() + 1;
        let prev = self.chain.tip();
        // Time must exceed the median of the last 11 blocks; keep it strictly increasing.
        let time = (now_secs() as u32)
            .max(prev.header.time + 1)
            .max(self.chain.median_time_past() + 1);
        let payout = self.faucet.script().clone();
        let template = Template {
            prev_hash: self.chain.tip_hash(),
            height,
            time,
            extranonce: self.extranonce,
            payout: &payout,
            reward: chain::subsidy(height) + fees,
        };
        let block = mining::build_block(&template, txs);
        self.chain.connect(block);
    }

    /// Replaces the last `depth` blocks with `depth + 1` empty ones. Their transactions
    /// go back to the mempool, except `drop` (and what depends on them).
    pub fn reorg(&mut self, depth: u32, drop: &[Txid]) -> Result<u32, RpcError> {
        if depth == 0 || depth >= self.chain.tip_height() {
            return Err(RpcError::new(
                code::INVALID_PARAMETER,
                format!(
                    "reorg depth must be between 1 and {}",
                    self.chain.tip_height().saturating_sub(1)
                ),
            ));
        }
        // Check `drop` before touching anything, so a typo leaves the chain as it was.
        let tip = self.chain.tip_height();
        let known: BTreeSet<Txid> = (tip - depth + 1..=tip)
            .filter_map(|h| self.chain.hash_at(h))
            .filter_map(|hash| self.chain.block(&hash))
            .flat_map(|(block, _)| block.txdata.iter().map(|t| t.compute_txid()))
            .collect();
        if let Some(unknown) = drop
            .iter()
            .find(|t| !known.contains(*t) && !self.mempool.contains(t))
        {
            return Err(RpcError::new(
                code::INVALID_ADDRESS_OR_KEY,
                format!(
                    "--drop {unknown}: no such transaction in the last {depth} blocks or the mempool"
                ),
            ));
        }
        let mut disconnected = Vec::new();
        for _ in 0..depth {
            let mut txs = self.chain.disconnect_tip();
            txs.extend(disconnected);
            disconnected = txs;
        }
        for _ in 0..=depth {
            self.mine_one(Vec::new(), Amount::ZERO);
        }
        // Old mempool transactions may spend outputs of the disconnected ones: re-add
        // the disconnected first, then the old mempool; whatever no longer fits is gone.
        let old_pool = self.mempool.drain();
        let dropped: BTreeSet<Txid> = drop.iter().copied().collect();
        let candidates = disconnected
            .into_iter()
            .chain(old_pool.into_iter().map(|e| e.tx));
        for tx in candidates.filter(|t| !dropped.contains(&t.compute_txid())) {
            let accepted = validation::check(&self.chain, &self.mempool, &tx);
            if let Ok(accepted) = accepted
                && accepted.replaces.is_empty()
            {
                self.mempool.insert(tx, accepted.fee, now_secs());
            }
        }
        Ok(self.chain.tip_height())
    }

    /// A faucet payment of `sats` to `address`, into the mempool.
    pub fn pay(&mut self, address: &str, sats: u64) -> Result<Txid, RpcError> {
        let to = parse_address(address)?;
        let tx = self
            .faucet
            .pay(&self.chain, &self.mempool, to, Amount::from_sat(sats))?;
        Ok(self.submit(tx)?.0)
    }

    /// Pays every `(address, sats)` in one transaction.
    pub fn pay_many(&mut self, to: &[(String, u64)]) -> Result<Txid, RpcError> {
        let to = to
            .iter()
            .map(|(a, s)| Ok((parse_address(a)?, Amount::from_sat(*s))))
            .collect::<Result<Vec<_>, RpcError>>()?;
        let tx = self.faucet.pay_many(&self.chain, &self.mempool, to)?;
        Ok(self.submit(tx)?.0)
    }

    /// Double-spends the faucet payment `txid` with a higher fee, paying `address`
    /// (the faucet itself when `None`).
    pub fn replace(&mut self, txid: Txid, address: Option<&str>) -> Result<Txid, RpcError> {
        let entry = self.mempool.get(&txid).ok_or_else(|| {
            RpcError::new(
                code::INVALID_ADDRESS_OR_KEY,
                format!("{txid} is not in the mempool"),
            )
        })?;
        if !self
            .faucet
            .owns_inputs(&self.chain, &self.mempool, &entry.tx)
        {
            return Err(RpcError::new(
                code::INVALID_PARAMETER,
                format!("{txid} is not a faucet payment"),
            ));
        }
        let to = match address {
            Some(a) => parse_address(a)?,
            None => self.faucet.script().clone(),
        };
        let evicted_fee: Amount = self
            .mempool
            .with_descendants(txid)
            .iter()
            .filter_map(|id| self.mempool.get(id))
            .map(|e| e.fee)
            .sum();
        let tx = self.faucet.replacement(
            &self.chain,
            &self.mempool,
            &entry.tx.clone(),
            evicted_fee,
            to,
        )?;
        Ok(self.submit(tx)?.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::COINBASE_MATURITY;
    use bitcoin::OutPoint;

    const SOMEONE: &str = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";

    fn funded() -> Node {
        let mut node = Node::new();
        node.mine(COINBASE_MATURITY + 5);
        node
    }

    #[test]
    fn payment_confirms_and_is_indexed() {
        let mut node = funded();
        let txid = node.pay(SOMEONE, 10_000).unwrap();
        assert!(node.mempool.contains(&txid));
        let height = node.mine(1);
        assert!(node.mempool.is_empty());
        let confirmed = node.chain.tx(&txid).expect("indexed");
        assert_eq!(confirmed.height, height);
        let input = confirmed.tx.input[0].previous_output;
        assert_eq!(node.chain.spender(&input).map(|s| s.0), Some(txid));
    }

    #[test]
    fn immature_coinbase_cannot_pay() {
        let mut node = Node::new();
        // At tip 99 the first coinbase (height 1) is 99 blocks deep for the next block.
        node.mine(COINBASE_MATURITY - 1);
        let err = node.pay(SOMEONE, 10_000).unwrap_err();
        assert!(err.message.contains("mine more blocks"), "{err}");
        node.mine(1);
        node.pay(SOMEONE, 10_000).unwrap();
    }

    #[test]
    fn replace_evicts_the_original_and_a_low_fee_conflict_is_refused() {
        let mut node = funded();
        let original = node.pay(SOMEONE, 10_000).unwrap();
        let original_tx = node.mempool.get(&original).unwrap().tx.clone();
        let replacement = node.replace(original, None).unwrap();
        assert!(!node.mempool.contains(&original));
        assert!(node.mempool.contains(&replacement));

        // The original pays less than its replacement, so it cannot come back.
        let err = node.submit(original_tx).unwrap_err();
        assert!(err.message.contains("insufficient fee"), "{err}");
    }

    #[test]
    fn reorg_returns_transactions_except_dropped_ones() {
        let mut node = funded();
        let kept = node.pay(SOMEONE, 10_000).unwrap();
        let dropped = node.pay(SOMEONE, 20_000).unwrap();
        let before = node.mine(2);
        let stale_tip = node.chain.tip_hash();
        let height = node.reorg(2, &[dropped]).unwrap();
        assert_eq!(height, before + 1);
        assert!(node.mempool.contains(&kept));
        assert!(!node.mempool.contains(&dropped));
        assert!(node.chain.tx(&kept).is_none());
        assert!(
            node.chain.block(&stale_tip).is_some(),
            "stale blocks stay retrievable"
        );
        assert!(!node.chain.is_active(&stale_tip));
    }

    #[test]
    fn reorg_with_an_unknown_drop_changes_nothing() {
        let mut node = funded();
        let tip = node.chain.tip_hash();
        let unknown = parse_txid(&"ab".repeat(32)).unwrap();
        assert!(node.reorg(1, &[unknown]).is_err());
        assert_eq!(node.chain.tip_hash(), tip);
    }

    #[test]
    fn spending_a_missing_output_is_refused() {
        let mut node = funded();
        let mut tx = node
            .faucet
            .pay(
                &node.chain,
                &node.mempool,
                parse_address(SOMEONE).unwrap(),
                Amount::from_sat(10_000),
            )
            .unwrap();
        tx.input[0].previous_output = OutPoint::new(tx.input[0].previous_output.txid, 99);
        let err = node.submit(tx).unwrap_err();
        assert_eq!(err.code, code::VERIFY_ERROR);
    }

    #[test]
    fn outputs_above_inputs_are_refused() {
        let mut node = funded();
        let mut tx = node
            .faucet
            .pay(
                &node.chain,
                &node.mempool,
                parse_address(SOMEONE).unwrap(),
                Amount::from_sat(10_000),
            )
            .unwrap();
        tx.output[0].value = Amount::from_int_btc(1_000);
        let err = node.submit(tx).unwrap_err();
        assert!(err.message.contains("bad-txns-in-belowout"), "{err}");
    }
}
