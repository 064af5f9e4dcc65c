//! The block tree, the active chain, its UTXO set and its indexes.
//!
//! Every block ever connected stays retrievable by hash, so ElectrumX can still
//! fetch blocks it had before a reorg.

use std::collections::HashMap;

use bitcoin::blockdata::constants::genesis_block;
use bitcoin::{Amount, Block, BlockHash, Network, OutPoint, Transaction, TxOut, Txid};

/// Blocks a coinbase output must wait before it can be spent.
pub const COINBASE_MATURITY: u32 = 100;
/// Regtest halves the subsidy every 150 blocks.
pub const HALVING_INTERVAL: u32 = 150;

/// The block subsidy at `height`.
pub fn subsidy(height: u32) -> Amount {
    let halvings = height / HALVING_INTERVAL;
    if halvings >= 64 {
        return Amount::ZERO;
    }
    Amount::from_sat(Amount::from_int_btc(50).to_sat() >> halvings)
}

/// An unspent output of the active chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coin {
    /// The output itself.
    pub txout: TxOut,
    /// Height of the block that created it.
    pub height: u32,
    /// Whether it comes from a coinbase (and so must mature).
    pub is_coinbase: bool,
}

impl Coin {
    /// Whether a transaction in a block at `spend_height` may spend this coin.
    pub fn is_mature_at(&self, spend_height: u32) -> bool {
        !self.is_coinbase || spend_height.saturating_sub(self.height) >= COINBASE_MATURITY
    }
}

struct StoredBlock {
    block: Block,
    height: u32,
}

/// A confirmed transaction found through the index.
pub struct ConfirmedTx<'a> {
    /// The transaction.
    pub tx: &'a Transaction,
    /// The block containing it.
    pub block_hash: BlockHash,
    /// That block's height.
    pub height: u32,
    /// That block's timestamp.
    pub block_time: u32,
}

/// The chain state: all blocks, the active chain and what follows from it.
pub struct Chain {
    blocks: HashMap<BlockHash, StoredBlock>,
    active: Vec<BlockHash>,
    utxos: HashMap<OutPoint, Coin>,
    tx_index: HashMap<Txid, BlockHash>,
    spenders: HashMap<OutPoint, Txid>,
    undo: HashMap<BlockHash, Vec<(OutPoint, Coin)>>,
}

impl Default for Chain {
    fn default() -> Self {
        Self::new()
    }
}

impl Chain {
    /// A chain holding only the regtest genesis block.
    pub fn new() -> Self {
        let genesis = genesis_block(Network::Regtest);
        let hash = genesis.block_hash();
        let mut chain = Chain {
            blocks: HashMap::new(),
            active: vec![hash],
            utxos: HashMap::new(),
            tx_index: HashMap::new(),
            spenders: HashMap::new(),
            undo: HashMap::new(),
        };
        // As in bitcoind, the genesis coinbase is neither indexed nor spendable.
        chain.blocks.insert(
            hash,
            StoredBlock {
                block: genesis,
                height: 0,
            },
        );
        chain
    }

    /// Height of the active tip.
    pub fn tip_height(&self) -> u32 {
        (self.active.len() - 1) as u32
    }

    /// Hash of the active tip.
    pub fn tip_hash(&self) -> BlockHash {
        *self.active.last().expect("chain always has genesis")
    }

    /// The active tip block.
    pub fn tip(&self) -> &Block {
        &self.blocks[&self.tip_hash()].block
    }

    /// Hash of the active block at `height`.
    pub fn hash_at(&self, height: u32) -> Option<BlockHash> {
        self.active.get(height as usize).copied()
    }

    /// A block by hash (active or stale) with its height.
    pub fn block(&self, hash: &BlockHash) -> Option<(&Block, u32)> {
        self.blocks.get(hash).map(|s| (&s.block, s.height))
    }

    /// Whether `hash` is on the active chain.
    pub fn is_active(&self, hash: &BlockHash) -> bool {
        self.blocks
            .get(hash)
            .is_some_and(|s| self.hash_at(s.height) == Some(*hash))
    }

    /// Timestamps of the last (up to) 11 active blocks, for the median-time-past rule.
    pub fn median_time_past(&self) -> u32 {
        let mut times: Vec<u32> = self
            .active
            .iter()
            .rev()
            .take(11)
            .map(|h| self.blocks[h].block.header.time)
            .collect();
        times.sort_unstable();
        times[times.len() / 2]
    }

    /// An unspent output of the active chain.
    pub fn coin(&self, outpoint: &OutPoint) -> Option<&Coin> {
        self.utxos.get(outpoint)
    }

    /// Every unspent output locked by `script`.
    pub fn coins_for_script<'a>(
        &'a self,
        script: &'a bitcoin::Script,
    ) -> impl Iterator<Item = (&'a OutPoint, &'a Coin)> + 'a {
        self.utxos
            .iter()
            .filter(move |(_, c)| c.txout.script_pubkey.as_script() == script)
    }

    /// A transaction of the active chain.
    pub fn tx(&self, txid: &Txid) -> Option<ConfirmedTx<'_>> {
        let block_hash = self.tx_index.get(txid)?;
        let stored = &self.blocks[block_hash];
        let tx = stored
            .block
            .txdata
            .iter()
            .find(|t| t.compute_txid() == *txid)?;
        Some(ConfirmedTx {
            tx,
            block_hash: *block_hash,
            height: stored.height,
            block_time: stored.block.header.time,
        })
    }

    /// The confirmed transaction spending `outpoint`, with its block.
    pub fn spender(&self, outpoint: &OutPoint) -> Option<(Txid, BlockHash)> {
        let txid = self.spenders.get(outpoint)?;
        Some((*txid, self.tx_index[txid]))
    }

    /// Connects `block` on top of the tip. The caller has validated its transactions.
    pub fn connect(&mut self, block: Block) {
        assert_eq!(
            block.header.prev_blockhash,
            self.tip_hash(),
            "block must extend the tip"
        );
        let hash = block.block_hash();
        let height = self.tip_height() + 1;
        let mut undo = Vec::new();
        for tx in &block.txdata {
            let txid = tx.compute_txid();
            if !tx.is_coinbase() {
                for input in &tx.input {
                    let coin = self
                        .utxos
                        .remove(&input.previous_output)
                        .expect("validated block spends only unspent coins");
                    undo.push((input.previous_output, coin));
                    self.spenders.insert(input.previous_output, txid);
                }
            }
            for (vout, txout) in tx.output.iter().enumerate() {
                if txout.script_pubkey.is_op_return() {
                    continue;
                }
                let outpoint = OutPoint::new(txid, vout as u32);
                let coin = Coin {
                    txout: txout.clone(),
                    height,
                    is_coinbase: tx.is_coinbase(),
                };
                self.utxos.insert(outpoint, coin);
            }
            self.tx_index.insert(txid, hash);
        }
        self.undo.insert(hash, undo);
        self.blocks.insert(hash, StoredBlock { block, height });
        self.active.push(hash);
    }

    /// Disconnects the tip and returns its non-coinbase transactions, in block order.
    /// The block itself stays retrievable by hash.
    pub fn disconnect_tip(&mut self) -> Vec<Transaction> {
        assert!(self.tip_height() > 0, "genesis cannot be disconnected");
        let hash = self.active.pop().expect("chain always has genesis");
        let block = &self.blocks[&hash].block;
        for tx in &block.txdata {
            let txid = tx.compute_txid();
            for vout in 0..tx.output.len() {
                self.utxos.remove(&OutPoint::new(txid, vout as u32));
            }
            self.tx_index.remove(&txid);
            if !tx.is_coinbase() {
                for input in &tx.input {
                    self.spenders.remove(&input.previous_output);
                }
            }
        }
        for (outpoint, coin) in self.undo.remove(&hash).unwrap_or_default() {
            self.utxos.insert(outpoint, coin);
        }
        block
            .txdata
            .iter()
            .filter(|t| !t.is_coinbase())
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsidy_halves_every_150_blocks() {
        assert_eq!(subsidy(0), Amount::from_int_btc(50));
        assert_eq!(subsidy(149), Amount::from_int_btc(50));
        assert_eq!(subsidy(150), Amount::from_sat(25 * 100_000_000));
        assert_eq!(subsidy(300), Amount::from_sat(1_250_000_000));
        assert_eq!(subsidy(150 * 64), Amount::ZERO);
    }

    #[test]
    fn genesis_is_regtest() {
        let chain = Chain::new();
        assert_eq!(
            chain.tip_hash().to_string(),
            "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206"
        );
        assert_eq!(chain.tip_height(), 0);
    }
}
