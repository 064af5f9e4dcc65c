//! The guide's "unexpected transactions from the hot wallet": any transaction spending this
//! wallet's coins that the appliance did not build as a transfer is recorded (META, audit
//! log) and raises `SnakkazPayUnexpectedSpend` until the operator acknowledges it.
//!
//! The alert sampler calls [`scan`] every second; it looks at the whole wallet only when
//! the balances or the tip moved (a spend moves them; an incoming payment of the same
//! amount within the same second could hide it from the total, not from both figures and
//! the tip), and at least every [`FULL_SCAN_EVERY_SECS`]; each transaction is judged once.

use std::collections::HashSet;

use bdk_wallet::Wallet;
use bdk_wallet::bitcoin::Txid;

use crate::app::App;
use crate::store::{UnexpectedSpend, WriteBatch, unexpected_spends_entry};

/// A full look at least this often, whatever moved.
pub const FULL_SCAN_EVERY_SECS: u64 = 600;

/// What the watcher remembers between samples.
#[derive(Debug, Default)]
pub struct SpendWatch {
    examined: HashSet<Txid>,
    /// Spends known but not yet in the current view: re-checked each sample (few).
    pending: HashSet<Txid>,
    last_seen: Option<(u64, u64, u32)>,
    last_full_at: u64,
}

/// Transactions of the wallet's current view that spend one of its coins, among those not
/// in `examined` (which this adds them to); spends known but not yet in the view go to
/// `pending`. With `full` false only `pending` is looked at (cheap).
pub fn new_outgoing(
    wallet: &Wallet,
    examined: &mut HashSet<Txid>,
    pending: &mut HashSet<Txid>,
    full: bool,
) -> Vec<Txid> {
    let graph = wallet.tx_graph();
    let chain = crate::wallet::view::Chain::walk(wallet);
    let mut out: Vec<Txid> = pending
        .iter()
        .copied()
        .filter(|t| chain.position(*t).is_some())
        .collect();
    for t in &out {
        pending.remove(t);
        examined.insert(*t);
    }
    if !full {
        return out;
    }
    for node in graph.full_txs() {
        if !examined.insert(node.txid) {
            continue;
        }
        let spends_ours = node.tx.input.iter().any(|i| {
            graph
                .get_txout(i.previous_output)
                .is_some_and(|o| wallet.is_mine(o.script_pubkey.clone()))
        });
        if spends_ours && chain.position(node.txid).is_some() {
            out.push(node.txid);
        } else if !spends_ours {
            continue;
        } else {
            // Not (yet) in the current view: look again when it shows.
            examined.remove(&node.txid);
            pending.insert(node.txid);
        }
    }
    out
}

/// Which of `outgoing` the appliance did not build (pure over the lookup).
pub fn unexpected(outgoing: &[Txid], built: impl Fn(&str) -> bool) -> Vec<String> {
    outgoing
        .iter()
        .map(ToString::to_string)
        .filter(|t| !built(t))
        .collect()
}

/// One look (see the module doc); errors are logged, the next sample retries.
pub fn scan(app: &App, watch: &std::sync::Mutex<SpendWatch>, seen: (u64, u64, u32), now: u64) {
    let mut guard = watch.lock().expect("spend watch lock");
    let w = &mut *guard;
    let full =
        w.last_seen != Some(seen) || now >= w.last_full_at.saturating_add(FULL_SCAN_EVERY_SECS);
    if !full && w.pending.is_empty() {
        return;
    }
    let outgoing =
        app.with_wallet(|wallet| new_outgoing(wallet, &mut w.examined, &mut w.pending, full));
    if full {
        w.last_full_at = now;
    }
    let done = Some(seen);
    let store = &app.store;
    let built = |t: &str| matches!(store.transfer(t), Ok(Some(_)));
    let found = unexpected(&outgoing, built);
    if found.is_empty() {
        w.last_seen = done;
        return;
    }
    let mut list = match store.unexpected_spends() {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "could not read the unexpected-spend record");
            return;
        }
    };
    let mut audit = Vec::new();
    for txid in found {
        if list.iter().any(|u| u.txid == txid) {
            continue;
        }
        tracing::error!(%txid, "a transaction the appliance did not build spent the wallet's coins");
        audit.push(crate::access::audit(
            "spend.unexpected",
            "daemon",
            format!("{txid} spent this wallet's coins and was not built by `snakkaz-pay transfer`"),
        ));
        list.push(UnexpectedSpend {
            txid,
            seen_at: now,
            acknowledged_at: None,
        });
    }
    if audit.is_empty() {
        // Nothing new: writing the list read above back could undo an acknowledgement
        // committed since.
        w.last_seen = done;
        return;
    }
    let batch = WriteBatch {
        meta: vec![unexpected_spends_entry(&list)],
        audit,
        ..Default::default()
    };
    match store.commit_blocking(batch) {
        Ok(_) => w.last_seen = done,
        Err(e) => tracing::error!(error = %e, "could not record an unexpected spend"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bdk_wallet::bitcoin::hashes::Hash;

    #[test]
    fn only_what_was_not_built_is_unexpected() {
        let a = Txid::from_byte_array([1; 32]);
        let b = Txid::from_byte_array([2; 32]);
        let built = a.to_string();
        assert_eq!(unexpected(&[a, b], |t| t == built), vec![b.to_string()]);
        assert!(unexpected(&[a], |t| t == built).is_empty());
    }
}
