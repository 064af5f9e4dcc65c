//! The BDK wallet: watch-only descriptors, address allocation and the view of what was
//! paid to each payment address.
//!
//! The wallet itself is in-memory (`bdk_wallet::Wallet`); its changesets are persisted by
//! the caller in the same store transaction as the payments they belong to.

pub mod view;
pub mod words;

use std::collections::{BTreeMap, BTreeSet};

use bdk_wallet::bitcoin::{Address, Network, ScriptBuf};
use bdk_wallet::chain::Merge;
use bdk_wallet::chain::spk_client::SyncRequest;

use bdk_wallet::{ChangeSet, KeychainKind, Wallet};
pub use view::{Balances, Key};

use crate::payments::SeenTx;
use crate::store::{Store, StoreError};

/// Failure to build or load the wallet.
#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    /// The descriptor could not be used.
    #[error("descriptor rejected: {0}")]
    Descriptor(String),
    /// The database holds a wallet for other descriptors or another network.
    #[error(
        "the database belongs to a different wallet: {0}; start with the descriptors and network it was created with (this file holds that wallet's payments: keep it); a different wallet needs its own ELECTRUM_WALLET_PATH"
    )]
    Mismatch(String),
    /// Reading or writing the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Parameters that define the wallet.
#[derive(Debug, Clone)]
pub struct WalletParams {
    /// Network of the keys and addresses.
    pub network: Network,
    /// Receive descriptor (public keys only).
    pub descriptor: String,
    /// Change descriptor, if any.
    pub change_descriptor: Option<String>,
}

impl WalletParams {
    /// The wallet the configuration describes.
    pub fn of(cfg: &crate::config::Config) -> WalletParams {
        WalletParams {
            network: cfg.network,
            descriptor: cfg.descriptor.clone(),
            change_descriptor: cfg.change_descriptor.clone(),
        }
    }
}

/// Loads the wallet from the store, or creates it (persisting the creation) on first start.
pub fn load_or_create(store: &Store, params: &WalletParams) -> Result<Wallet, WalletError> {
    let changeset = store.wallet_changeset()?;
    if !changeset.is_empty() {
        let mut load = Wallet::load()
            .descriptor(KeychainKind::External, Some(params.descriptor.clone()))
            .check_network(params.network);
        if let Some(change) = &params.change_descriptor {
            load = load.descriptor(KeychainKind::Internal, Some(change.clone()));
        }
        return match load.load_wallet_no_persist(changeset) {
            Ok(Some(w)) => Ok(w),
            Ok(None) => Err(WalletError::Mismatch("stored wallet is empty".into())),
            Err(e) => Err(WalletError::Mismatch(e.to_string())),
        };
    }
    let created = match &params.change_descriptor {
        Some(change) => Wallet::create(params.descriptor.clone(), change.clone())
            .network(params.network)
            .create_wallet_no_persist(),
        None => Wallet::create_single(params.descriptor.clone())
            .network(params.network)
            .create_wallet_no_persist(),
    };
    let mut wallet = created.map_err(|e| WalletError::Descriptor(e.to_string()))?;
    if let Some(cs) = wallet.take_staged() {
        store.commit_blocking(crate::store::WriteBatch {
            wallet: Some(cs),
            ..Default::default()
        })?;
    }
    Ok(wallet)
}

/// Reveals the next never-used receive address. The returned changeset must be persisted
/// with the payment that uses the address.
pub fn reveal_next(wallet: &mut Wallet) -> (u32, Address, Option<ChangeSet>) {
    let info = wallet.reveal_next_address(KeychainKind::External);
    (info.index, info.address, wallet.take_staged())
}

/// The first `n` receive addresses, without revealing them (for `init`).
pub fn peek_addresses(wallet: &Wallet, n: u32) -> Vec<Address> {
    (0..n)
        .map(|i| wallet.peek_address(KeychainKind::External, i).address)
        .collect()
}

/// Script of a revealed (or, failing that, derived) wallet script.
pub fn spk(wallet: &Wallet, (keychain, index): Key) -> ScriptBuf {
    wallet
        .spk_index()
        .spk_at_index(keychain, index)
        .unwrap_or_else(|| wallet.peek_address(keychain, index).address.script_pubkey())
}

/// A sync request for exactly these scripts, with the transactions the wallet expects
/// there (paying to them or spending from them), so that vanished ones (replaced,
/// double spent, reorganised out) are noticed. Costs what these scripts hold, not history.
pub fn sync_request(wallet: &Wallet, keys: &BTreeSet<Key>, now: u64) -> SyncRequest<Key> {
    let graph = wallet.tx_graph();
    let mut spks = Vec::with_capacity(keys.len());
    let mut expected = Vec::new();
    for &key in keys {
        let script = spk(wallet, key);
        for (_, op) in wallet.spk_index().inner().outputs_in_range(key..=key) {
            expected.push((script.clone(), op.txid));
            for &spender in graph.outspends(op) {
                expected.push((script.clone(), spender));
            }
        }
        spks.push((key, script));
    }
    SyncRequest::builder_at(now)
        .chain_tip(wallet.local_chain().tip())
        .spks_with_indexes(spks)
        .expected_spk_txids(expected)
        .build()
}

/// A sync request with no scripts: brings the wallet's chain to the server's tip.
pub fn tip_request(wallet: &Wallet, now: u64) -> SyncRequest<Key> {
    SyncRequest::builder_at(now)
        .chain_tip(wallet.local_chain().tip())
        .build()
}

/// Every transaction and confirmation anchor the wallet holds, to prime an Electrum
/// client's caches so that nothing known is downloaded (or proven) again.
pub type CacheSeed = (
    Vec<std::sync::Arc<bdk_wallet::bitcoin::Transaction>>,
    Vec<(
        bdk_wallet::bitcoin::Txid,
        Vec<bdk_wallet::chain::ConfirmationBlockTime>,
    )>,
);

/// See [`CacheSeed`].
pub fn cache_seed(wallet: &Wallet) -> CacheSeed {
    let graph = wallet.tx_graph();
    let txs = graph.full_txs().map(|n| n.tx.clone()).collect();
    let anchors = graph
        .all_anchors()
        .iter()
        .map(|(txid, set)| (*txid, set.iter().copied().collect()))
        .collect();
    (txs, anchors)
}

/// What the wallet currently sees paid to each of these receive indices.
pub fn seen_txs(wallet: &Wallet, indices: &BTreeSet<u32>) -> BTreeMap<u32, Vec<SeenTx>> {
    let chain = view::Chain::walk(wallet);
    let mut out: BTreeMap<u32, Vec<SeenTx>> = BTreeMap::new();
    for &i in indices {
        let list = out.entry(i).or_default();
        for (op, value, pos) in chain.outputs((KeychainKind::External, i)) {
            let height = match pos {
                view::Position::Confirmed(h) => Some(h),
                view::Position::Unconfirmed => None,
            };
            let txid = op.txid.to_string();
            match list.iter_mut().find(|t| t.txid == txid) {
                Some(t) => t.value_sat = t.value_sat.saturating_add(value),
                None => list.push(SeenTx {
                    txid,
                    value_sat: value,
                    height,
                }),
            }
        }
    }
    out
}

/// Height of the wallet's best block.
pub fn tip_height(wallet: &Wallet) -> u32 {
    wallet.local_chain().tip().height()
}

/// Merges an optional changeset into an accumulator.
pub fn merge_into(acc: &mut Option<ChangeSet>, cs: Option<ChangeSet>) {
    match (acc.as_mut(), cs) {
        (Some(a), Some(c)) => a.merge(c),
        (None, Some(c)) => *acc = Some(c),
        _ => {}
    }
}

/// The wallet's public facts for the sink's `bitcoin_wallets` row.
pub fn summary(
    wallet: &Wallet,
    balances: &view::Balances,
    now: u64,
) -> crate::store::WalletSummary {
    let has_change = wallet.keychains().any(|(k, _)| k == KeychainKind::Internal);
    crate::store::WalletSummary {
        descriptor_checksum: wallet.descriptor_checksum(KeychainKind::External),
        change_descriptor_checksum: has_change
            .then(|| wallet.descriptor_checksum(KeychainKind::Internal)),
        network: wallet.network().to_string(),
        addresses_in_use: wallet.next_derivation_index(KeychainKind::External),
        confirmed_sat: balances.confirmed(),
        unconfirmed_sat: balances.unconfirmed(),
        tip_height: tip_height(wallet),
        updated_at: now,
    }
}

/// An output paying to one of the wallet's scripts, as the current view sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputSeen {
    /// The script paid.
    pub key: Key,
    /// `txid:vout`.
    pub outpoint: String,
    /// The transaction.
    pub txid: String,
    /// The script's address.
    pub address: String,
    /// Value of the output.
    pub value_sat: u64,
    /// Confirmation height, `None` in the mempool.
    pub height: Option<u32>,
    /// Unix seconds when the wallet first saw the transaction unconfirmed.
    pub first_seen: Option<u64>,
    /// None of the transaction's inputs spends a coin of the wallet: money from outside,
    /// not the wallet's own change.
    pub from_outside: bool,
}

/// Every current output paying to these scripts.
pub fn outputs_at(wallet: &Wallet, keys: &[Key]) -> Vec<OutputSeen> {
    let chain = view::Chain::walk(wallet);
    let graph = wallet.tx_graph();
    let mut out = Vec::new();
    for &key in keys {
        let address = Address::from_script(&spk(wallet, key), wallet.network())
            .map(|a| a.to_string())
            .unwrap_or_default();
        for (op, value, pos) in chain.outputs(key) {
            let from_outside = graph.get_tx(op.txid).is_none_or(|tx| {
                tx.input
                    .iter()
                    .all(|i| wallet.spk_index().txout(i.previous_output).is_none())
            });
            out.push(OutputSeen {
                key,
                outpoint: op.to_string(),
                txid: op.txid.to_string(),
                address: address.clone(),
                value_sat: value,
                height: match pos {
                    view::Position::Confirmed(h) => Some(h),
                    view::Position::Unconfirmed => None,
                },
                first_seen: graph.get_tx_node(op.txid).and_then(|n| n.first_seen),
                from_outside,
            });
        }
    }
    out
}

/// Transactions the wallet holds with no confirmation (the mempool as last synced).
pub fn unconfirmed_txids(wallet: &Wallet) -> Vec<String> {
    wallet
        .tx_graph()
        .full_txs()
        .filter(|n| n.anchors.is_empty())
        .map(|n| n.txid.to_string())
        .collect()
}
