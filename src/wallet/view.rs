//! The wallet's view of a few scripts, computed from those scripts' transactions only.
//!
//! BDK's canonical view (`filter_chain_txouts`, `balance`, `list_expected_spk_txids`)
//! walks the whole transaction graph on every call: with years of history that is the
//! cost of every notification. Electrum reports per script, and every change of a script's
//! funding or spending transactions changes that script's status, so recomputing just the
//! notified scripts keeps the view exact at a cost that follows the change, not history.
//!
//! The rule is BDK's for the cases a watch-only receiver meets: a transaction anchored in
//! a block of the best chain is confirmed there; otherwise it is unconfirmed while its last
//! sighting is newer than its last eviction (a sync that found it missing from the server's
//! history, which is how replacements, double spends and dropped transactions show).

use std::collections::HashMap;

use bdk_wallet::bitcoin::{BlockHash, OutPoint, Txid};
use bdk_wallet::{KeychainKind, Wallet};

/// A wallet script: keychain and derivation index.
pub type Key = (KeychainKind, u32);

/// Where a transaction is in the wallet's current view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// In a block of the best chain at this height.
    Confirmed(u32),
    /// In the mempool as last seen.
    Unconfirmed,
}

/// Looks up block hashes of the wallet's chain; a map when many lookups are coming.
pub struct Chain<'w> {
    wallet: &'w Wallet,
    map: Option<HashMap<u32, BlockHash>>,
}

impl<'w> Chain<'w> {
    /// For a few lookups: walks checkpoints from the tip (recent anchors are near it).
    pub fn walk(wallet: &'w Wallet) -> Self {
        Chain { wallet, map: None }
    }

    /// For many lookups (start-up): one pass over the checkpoints into a map.
    pub fn indexed(wallet: &'w Wallet) -> Self {
        let map = wallet
            .local_chain()
            .iter_checkpoints()
            .map(|cp| (cp.height(), cp.hash()))
            .collect();
        Chain {
            wallet,
            map: Some(map),
        }
    }

    fn hash_at(&self, height: u32) -> Option<BlockHash> {
        match &self.map {
            Some(m) => m.get(&height).copied(),
            None => self
                .wallet
                .local_chain()
                .tip()
                .get(height)
                .map(|cp| cp.hash()),
        }
    }

    /// The transaction's position, or `None` when it is not part of the current view.
    pub fn position(&self, txid: Txid) -> Option<Position> {
        let graph = self.wallet.tx_graph();
        let node = graph.get_tx_node(txid)?;
        // The highest anchor in the best chain wins (a reorg may leave stale ones).
        if let Some(h) = node
            .anchors
            .iter()
            .rev()
            .find(|a| self.hash_at(a.block_id.height) == Some(a.block_id.hash))
            .map(|a| a.block_id.height)
        {
            return Some(Position::Confirmed(h));
        }
        let seen = node.last_seen?;
        match graph.get_last_evicted(txid) {
            Some(evicted) if evicted >= seen => None,
            _ => Some(Position::Unconfirmed),
        }
    }

    /// Outputs paying to `key`, with their transaction's position, current ones only.
    pub fn outputs(&self, key: Key) -> Vec<(OutPoint, u64, Position)> {
        let w = self.wallet;
        w.spk_index()
            .inner()
            .outputs_in_range(key..=key)
            .filter_map(|(_, op)| {
                let pos = self.position(op.txid)?;
                let value = w.tx_graph().get_txout(op)?.value.to_sat();
                Some((op, value, pos))
            })
            .collect()
    }

    /// True when a transaction in the current view spends `op`.
    pub fn is_spent(&self, op: OutPoint) -> bool {
        self.wallet
            .tx_graph()
            .outspends(op)
            .iter()
            .any(|&spender| self.position(spender).is_some())
    }

    /// Unspent value at `key`: (confirmed, unconfirmed).
    pub fn balance_of(&self, key: Key) -> (u64, u64) {
        let mut confirmed = 0u64;
        let mut unconfirmed = 0u64;
        for (op, value, pos) in self.outputs(key) {
            if self.is_spent(op) {
                continue;
            }
            match pos {
                Position::Confirmed(_) => confirmed = confirmed.saturating_add(value),
                Position::Unconfirmed => unconfirmed = unconfirmed.saturating_add(value),
            }
        }
        (confirmed, unconfirmed)
    }
}

/// The wallet balance kept per script and updated for the scripts each update touched.
#[derive(Debug, Default, Clone)]
pub struct Balances {
    per_key: HashMap<Key, (u64, u64)>,
    confirmed: u64,
    unconfirmed: u64,
}

impl Balances {
    /// Computes every revealed script once (start-up).
    pub fn compute(wallet: &Wallet) -> Balances {
        let chain = Chain::indexed(wallet);
        let mut b = Balances::default();
        let keys: Vec<Key> = wallet
            .spk_index()
            .revealed_spks(..)
            .map(|(k, _)| k)
            .collect();
        for key in keys {
            b.set(key, chain.balance_of(key));
        }
        b
    }

    /// Recomputes these scripts after an update.
    pub fn refresh(&mut self, wallet: &Wallet, keys: impl IntoIterator<Item = Key>) {
        let chain = Chain::walk(wallet);
        for key in keys {
            self.set(key, chain.balance_of(key));
        }
    }

    fn set(&mut self, key: Key, value: (u64, u64)) {
        let old = if value == (0, 0) {
            self.per_key.remove(&key)
        } else {
            self.per_key.insert(key, value)
        }
        .unwrap_or((0, 0));
        // Totals are sums of per-script values: subtracting the old one cannot underflow.
        self.confirmed = self.confirmed - old.0 + value.0;
        self.unconfirmed = self.unconfirmed - old.1 + value.1;
    }

    /// Confirmed unspent total.
    pub fn confirmed(&self) -> u64 {
        self.confirmed
    }

    /// Unconfirmed unspent total.
    pub fn unconfirmed(&self) -> u64 {
        self.unconfirmed
    }
}
