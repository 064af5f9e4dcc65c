//! Fee facts of a payment's unconfirmed transactions for the API and the page: fee, fee
//! rate, RBF signalling and unconfirmed parents, as Electrum shows them.
//!
//! What the wallet holds is used first (the transaction, its size and RBF signal; the fee
//! when the wallet knows every coin it spends, which it does not for money paid to it).
//! The rest comes from one Electrum look-up per transaction and block (`tx`'s own
//! logic, `ops::txinfo`), kept in memory: a fee never changes, and a parent can only
//! confirm with a new block. A view never waits for the server: a fact not known yet is
//! shown as unknown (`lookup: "pending"`) and looked up in the background, bounded by
//! the look-up deadline; the page refreshes itself and shows it a moment later.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::Mutex;

use bdk_wallet::Wallet;
use bdk_wallet::bitcoin::Txid;
use serde::Serialize;

use crate::app::App;
use crate::ops::rate;
use crate::payments::{Payment, Status};

/// Most transactions whose looked-up facts are kept (a few per unconfirmed payment).
const CACHE_CAP: usize = 1_000;
/// Most look-ups running at once (each opens a short Electrum session); the rest wait for
/// a later view.
const MAX_IN_FLIGHT: usize = 4;

/// An unconfirmed parent of a payment's transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParentFacts {
    /// Its txid.
    pub txid: String,
    /// Its fee (`None`: unknown).
    pub fee_sat: Option<u64>,
    /// Its virtual size.
    pub vsize: u64,
    /// Its fee rate in sat/vB (`None`: unknown).
    pub fee_rate_sat_vb: Option<String>,
}

/// The fee facts of one unconfirmed transaction paying a payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FeeFacts {
    /// The transaction.
    pub txid: String,
    /// Virtual size.
    pub vsize: u64,
    /// Signals BIP125 replaceability (the payer could replace it).
    pub rbf: bool,
    /// Fee (`None`: unknown yet).
    pub fee_sat: Option<u64>,
    /// Fee rate, sat/vB (`None`: unknown yet).
    pub fee_rate_sat_vb: Option<String>,
    /// Unconfirmed parents (`None`: unknown yet); empty when all its inputs are confirmed.
    pub unconfirmed_parents: Option<Vec<ParentFacts>>,
    /// Fee rate with its unconfirmed ancestors, sat/vB (`None`: unknown).
    pub package_fee_rate_sat_vb: Option<String>,
    /// `done` (all known), `pending` (being looked up) or why the look-up failed.
    pub lookup: String,
}

/// What one Electrum look-up found.
#[derive(Debug, Clone)]
struct Looked {
    tip: u32,
    fee: Option<u64>,
    parents: Vec<ParentFacts>,
    package_kvb: Option<u64>,
}

#[derive(Default)]
struct Cache {
    looked: HashMap<Txid, Looked>,
    failed: HashMap<Txid, (u32, String)>,
    in_flight: HashSet<Txid>,
}

static CACHE: Mutex<Option<Cache>> = Mutex::new(None);

fn with_cache<R>(f: impl FnOnce(&mut Cache) -> R) -> R {
    let mut guard = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    f(guard.get_or_insert_with(Cache::default))
}

/// The facts the wallet alone gives for `txid`; `None` when it is confirmed or unknown.
/// Parents are `None` when an input's transaction is not in the wallet (money paid to
/// it: its parents are the payer's).
pub fn from_wallet(wallet: &Wallet, txid: Txid) -> Option<FeeFacts> {
    let wtx = wallet.get_tx(txid)?;
    if wtx.chain_position.is_confirmed() {
        return None;
    }
    let tx = wtx.tx_node.tx.as_ref();
    let vsize = tx.vsize() as u64;
    let fee = wallet.calculate_fee(tx).ok().map(|a| a.to_sat());
    let mut parents: Option<Vec<ParentFacts>> = Some(Vec::new());
    for i in &tx.input {
        let prev = i.previous_output.txid;
        match wallet.get_tx(prev) {
            Some(p) if !p.chain_position.is_confirmed() => {
                let pt = p.tx_node.tx.as_ref();
                let pv = pt.vsize() as u64;
                let pf = wallet.calculate_fee(pt).ok().map(|a| a.to_sat());
                if let Some(list) = parents.as_mut()
                    && !list
                        .iter()
                        .any(|x: &ParentFacts| x.txid == prev.to_string())
                {
                    list.push(ParentFacts {
                        txid: prev.to_string(),
                        fee_sat: pf,
                        vsize: pv,
                        fee_rate_sat_vb: pf.map(|f| rate::display(rate::per_kvb(f, pv))),
                    });
                }
            }
            Some(_) => {}
            None => parents = None,
        }
    }
    let package = match (&parents, fee) {
        (Some(ps), Some(f)) if ps.iter().all(|p| p.fee_sat.is_some()) => {
            let pf: u64 = ps.iter().filter_map(|p| p.fee_sat).sum();
            let pv: u64 = ps.iter().map(|p| p.vsize).sum();
            Some(rate::display(rate::per_kvb(f + pf, vsize + pv)))
        }
        _ => None,
    };
    Some(FeeFacts {
        txid: txid.to_string(),
        vsize,
        rbf: crate::ops::txinfo::signals_rbf(tx),
        fee_sat: fee,
        fee_rate_sat_vb: fee.map(|f| rate::display(rate::per_kvb(f, vsize))),
        unconfirmed_parents: parents,
        package_fee_rate_sat_vb: package,
        lookup: "done".into(),
    })
}

/// Fills the wallet's unknowns from a look-up made at `tip` (pure).
fn merge(mut f: FeeFacts, looked: Option<&Looked>, tip: u32) -> FeeFacts {
    let Some(l) = looked else {
        return f;
    };
    if f.fee_sat.is_none() {
        f.fee_sat = l.fee;
        f.fee_rate_sat_vb = l.fee.map(|x| rate::display(rate::per_kvb(x, f.vsize)));
    }
    // Parents confirm only with a block: a look-up from an older tip says nothing of them.
    if l.tip == tip {
        if f.unconfirmed_parents.is_none() {
            f.unconfirmed_parents = Some(l.parents.clone());
        }
        if f.package_fee_rate_sat_vb.is_none() {
            f.package_fee_rate_sat_vb = l.package_kvb.map(rate::display);
        }
    }
    f
}

fn complete(f: &FeeFacts) -> bool {
    f.fee_sat.is_some() && f.unconfirmed_parents.is_some() && f.package_fee_rate_sat_vb.is_some()
}

/// The fee facts of `p`'s unconfirmed transactions; `None` when it has none (or is past
/// the statuses that wait for confirmations). Unknowns are looked up in the background.
pub fn of_payment(app: &App, p: &Payment) -> Option<Vec<FeeFacts>> {
    if !matches!(
        p.status,
        Status::Pending | Status::Unconfirmed | Status::Underpaid
    ) || p.txids.is_empty()
    {
        return None;
    }
    let txids: Vec<Txid> = p
        .txids
        .iter()
        .filter_map(|t| Txid::from_str(t).ok())
        .collect();
    let (tip, own): (u32, Vec<FeeFacts>) = app.with_wallet(|w| {
        (
            crate::wallet::tip_height(w),
            txids.iter().filter_map(|t| from_wallet(w, *t)).collect(),
        )
    });
    if own.is_empty() {
        return None;
    }
    let mut wanted = Vec::new();
    let out = with_cache(|c| {
        own.into_iter()
            .map(|f| {
                let txid = Txid::from_str(&f.txid).expect("parsed above");
                let mut f = merge(f, c.looked.get(&txid), tip);
                if complete(&f) {
                    return f;
                }
                if c.in_flight.contains(&txid) {
                    f.lookup = "pending".into();
                } else if let Some((_, why)) = c.failed.get(&txid).filter(|(at, _)| *at == tip) {
                    f.lookup = format!("failed: {why}");
                } else if c.in_flight.len() < MAX_IN_FLIGHT {
                    c.in_flight.insert(txid);
                    wanted.push(txid);
                    f.lookup = "pending".into();
                } else {
                    f.lookup = "queued".into();
                }
                f
            })
            .collect()
    });
    for txid in wanted {
        spawn_lookup(app, txid, tip);
    }
    Some(out)
}

/// One bounded background look-up of `txid`'s fee and unconfirmed ancestors.
fn spawn_lookup(app: &App, txid: Txid, tip: u32) {
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        with_cache(|c| c.in_flight.remove(&txid));
        return;
    };
    let cfg = app.cfg.clone();
    let store = app.store.clone();
    handle.spawn(async move {
        let task = tokio::task::spawn_blocking(move || {
            let session = crate::ops::open_lookup(&cfg)?;
            let mut ins = crate::ops::txinfo::Inspector::new(&session, &store, cfg.network)?;
            ins.report(txid)
        });
        let result = match tokio::time::timeout(crate::ops::LOOKUP_DEADLINE, task).await {
            Ok(Ok(Ok(r))) => Ok(Looked {
                tip,
                fee: r.fee_sat,
                parents: r
                    .unconfirmed_ancestors
                    .iter()
                    .map(|a| ParentFacts {
                        txid: a.txid.clone(),
                        fee_sat: a.fee_sat,
                        vsize: a.vsize,
                        fee_rate_sat_vb: a.fee_rate_sat_vb.clone(),
                    })
                    .collect(),
                package_kvb: r.package_fee_rate_sat_per_kvb,
            }),
            Ok(Ok(Err(e))) => Err(e.to_string()),
            Ok(Err(e)) => Err(format!("look-up task failed: {e}")),
            Err(_) => Err("the Electrum server did not answer in time".into()),
        };
        with_cache(|c| {
            c.in_flight.remove(&txid);
            if c.looked.len() >= CACHE_CAP {
                c.looked.clear();
                c.failed.clear();
            }
            match result {
                Ok(l) => {
                    c.failed.remove(&txid);
                    c.looked.insert(txid, l);
                }
                Err(why) => {
                    // Shown with the payment; retried after the next block.
                    tracing::warn!(%txid, error = %why, "fee facts look-up failed");
                    c.failed.insert(txid, (tip, why));
                }
            }
        });
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unknown() -> FeeFacts {
        FeeFacts {
            txid: "t".into(),
            vsize: 141,
            rbf: true,
            fee_sat: None,
            fee_rate_sat_vb: None,
            unconfirmed_parents: None,
            package_fee_rate_sat_vb: None,
            lookup: "done".into(),
        }
    }

    #[test]
    fn a_look_up_fills_the_fee_and_parents_only_at_its_own_tip() {
        let l = Looked {
            tip: 10,
            fee: Some(282),
            parents: vec![],
            package_kvb: Some(2_000),
        };
        let now = merge(unknown(), Some(&l), 10);
        assert_eq!(now.fee_sat, Some(282));
        assert_eq!(now.fee_rate_sat_vb.as_deref(), Some("2.00"));
        assert_eq!(now.unconfirmed_parents, Some(vec![]));
        assert!(complete(&now));
        // A block later the fee still holds; whether a parent confirmed is unknown again.
        let later = merge(unknown(), Some(&l), 11);
        assert_eq!(later.fee_sat, Some(282));
        assert_eq!(later.unconfirmed_parents, None);
        assert!(!complete(&later));
        assert_eq!(merge(unknown(), None, 10), unknown());
    }
}
