//! Unconfirmed transactions, in arrival order, with the outputs they spend.

use std::collections::{BTreeSet, HashMap};

use bitcoin::{Amount, OutPoint, Transaction, TxOut, Txid};

/// One unconfirmed transaction.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The transaction.
    pub tx: Transaction,
    /// Inputs minus outputs.
    pub fee: Amount,
    /// Virtual size in vbytes.
    pub vsize: u64,
    /// Arrival order: parents always arrive before their children.
    pub seq: u64,
    /// Arrival time, seconds since the epoch.
    pub time: u64,
}

/// The mempool. Every entry is valid on top of the current tip.
#[derive(Default)]
pub struct Mempool {
    entries: HashMap<Txid, Entry>,
    spends: HashMap<OutPoint, Txid>,
    next_seq: u64,
}

impl Mempool {
    /// Adds a validated transaction.
    pub fn insert(&mut self, tx: Transaction, fee: Amount, time: u64) {
        let txid = tx.compute_txid();
        for input in &tx.input {
            self.spends.insert(input.previous_output, txid);
        }
        let vsize = tx.vsize() as u64;
        let seq = self.next_seq;
        self.next_seq += 1;
        self.entries.insert(
            txid,
            Entry {
                tx,
                fee,
                vsize,
                seq,
                time,
            },
        );
    }

    /// An entry by txid.
    pub fn get(&self, txid: &Txid) -> Option<&Entry> {
        self.entries.get(txid)
    }

    /// Whether the mempool holds `txid`.
    pub fn contains(&self, txid: &Txid) -> bool {
        self.entries.contains_key(txid)
    }

    /// Number of transactions.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Total virtual size.
    pub fn vbytes(&self) -> u64 {
        self.entries.values().map(|e| e.vsize).sum()
    }

    /// Total fees.
    pub fn total_fee(&self) -> Amount {
        self.entries.values().map(|e| e.fee).sum()
    }

    /// The mempool transaction spending `outpoint`.
    pub fn spender(&self, outpoint: &OutPoint) -> Option<Txid> {
        self.spends.get(outpoint).copied()
    }

    /// An output created by a mempool transaction (spent or not).
    pub fn output(&self, outpoint: &OutPoint) -> Option<&TxOut> {
        self.entries
            .get(&outpoint.txid)?
            .tx
            .output
            .get(outpoint.vout as usize)
    }

    /// Entries in arrival order, so parents come before children.
    pub fn ordered(&self) -> Vec<&Entry> {
        let mut all: Vec<&Entry> = self.entries.values().collect();
        all.sort_by_key(|e| e.seq);
        all
    }

    /// `txid` and every mempool transaction descending from it.
    pub fn with_descendants(&self, txid: Txid) -> BTreeSet<Txid> {
        let mut found = BTreeSet::new();
        let mut todo = vec![txid];
        while let Some(id) = todo.pop() {
            let Some(entry) = self.entries.get(&id) else {
                continue;
            };
            if !found.insert(id) {
                continue;
            }
            for vout in 0..entry.tx.output.len() {
                if let Some(child) = self.spends.get(&OutPoint::new(id, vout as u32)) {
                    todo.push(*child);
                }
            }
        }
        found
    }

    /// Removes `txid` and its descendants; returns what was removed.
    pub fn remove_with_descendants(&mut self, txid: Txid) -> Vec<Txid> {
        let doomed = self.with_descendants(txid);
        for id in &doomed {
            if let Some(entry) = self.entries.remove(id) {
                for input in &entry.tx.input {
                    self.spends.remove(&input.previous_output);
                }
            }
        }
        doomed.into_iter().collect()
    }

    /// Empties the mempool and returns its transactions in arrival order.
    pub fn drain(&mut self) -> Vec<Entry> {
        let mut all: Vec<Entry> = self.entries.drain().map(|(_, e)| e).collect();
        self.spends.clear();
        all.sort_by_key(|e| e.seq);
        all
    }
}
