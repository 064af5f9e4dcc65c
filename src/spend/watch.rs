//! The guide's "unexpected transactions from the hot wallet": any transaction spending this
//! wallet's coins that the appliance did not build as a transfer is recorded (META, audit
//! log) and raises `SnakkazPayUnexpectedSpend` until the operator acknowledges it.
//!
//! The alert sampler calls [`scan`] every second; it looks at the wallet only when the
//! balance moved (every spend moves it) and examines each transaction once per run.

use std::collections::HashSet;

use bdk_wallet::Wallet;
use bdk_wallet::bitcoin::Txid;

use crate::app::App;
use crate::store::{UnexpectedSpend, WriteBatch, unexpected_spends_entry};

/// What the watcher remembers between samples.
#[derive(Debug, Default)]
pub struct SpendWatch {
    examined: HashSet<Txid>,
    last_balance: Option<u64>,
}

/// Transactions of the wallet's current view that spend one of its coins, among those not
/// in `examined` (which this adds them to).
pub fn new_outgoing(wallet: &Wallet, examined: &mut HashSet<Txid>) -> Vec<Txid> {
    let graph = wallet.tx_graph();
    let chain = crate::wallet::view::Chain::walk(wallet);
    let mut out = Vec::new();
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
pub fn scan(app: &App, watch: &std::sync::Mutex<SpendWatch>, balance: u64, now: u64) {
    let mut w = watch.lock().expect("spend watch lock");
    if w.last_balance == Some(balance) {
        return;
    }
    let outgoing = app.with_wallet(|wallet| new_outgoing(wallet, &mut w.examined));
    let store = &app.store;
    let built = |t: &str| matches!(store.transfer(t), Ok(Some(_)));
    let found = unexpected(&outgoing, built);
    if found.is_empty() {
        w.last_balance = Some(balance);
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
    let batch = WriteBatch {
        meta: vec![unexpected_spends_entry(&list)],
        audit,
        ..Default::default()
    };
    match store.commit_blocking(batch) {
        Ok(_) => w.last_balance = Some(balance),
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
