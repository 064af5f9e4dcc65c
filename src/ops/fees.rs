//! `snakkaz-pay fees`: the server's fee estimates, its mempool histogram, and for each
//! unconfirmed payment whether it is likely to confirm soon and what a CPFP would cost.

use serde::Serialize;

use super::txinfo::{Inspector, TxReport};
use super::{OpsError, rate};
use crate::payments::Status;
use crate::store::{ListQuery, Store};

/// Confirmation targets (blocks) asked of `blockchain.estimatefee`.
pub const TARGETS: [u32; 5] = [1, 3, 6, 24, 144];
/// A payment is "likely to confirm soon" when it pays at least the estimate for this many blocks.
pub const SOON_BLOCKS: u32 = 6;
/// The CPFP suggestion aims at the estimate for this many blocks.
pub const CPFP_TARGET_BLOCKS: u32 = 3;
/// Most unconfirmed payments examined per call (each costs a few requests).
pub const MAX_PAYMENTS: usize = 50;
/// Most histogram buckets reported.
const MAX_BUCKETS: usize = 40;

/// One estimate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Estimate {
    /// Target in blocks.
    pub blocks: u32,
    /// sat per 1000 vB; `None` when the server has no estimate.
    pub sat_per_kvb: Option<u64>,
    /// sat/vB, two decimals.
    pub sat_vb: Option<String>,
}

/// A histogram bucket: transactions paying at least `sat_vb`, `vsize` of them.
#[derive(Debug, Clone, Serialize)]
pub struct Bucket {
    /// Lower bound of the bucket's fee rate, sat per 1000 vB.
    pub sat_per_kvb: u64,
    /// Virtual bytes in the bucket.
    pub vsize: u64,
}

/// An unconfirmed payment's fee position.
#[derive(Debug, Clone, Serialize)]
pub struct PaymentFee {
    /// Payment id.
    pub payment_id: String,
    /// Its reference.
    pub reference: String,
    /// The transaction paying it.
    pub txid: String,
    /// Fee rate with unconfirmed ancestors (sat per 1000 vB).
    pub package_fee_rate_sat_per_kvb: Option<u64>,
    /// Same in sat/vB.
    pub package_fee_rate_sat_vb: Option<String>,
    /// Signals RBF (the payer could replace it).
    pub rbf: bool,
    /// Unconfirmed ancestors.
    pub unconfirmed_ancestors: usize,
    /// Smallest target (blocks) whose estimate it meets; `None`: below every estimate.
    pub expected_within_blocks: Option<u32>,
    /// It meets the estimate for [`SOON_BLOCKS`] blocks.
    pub likely_soon: Option<bool>,
    /// Fee a CPFP child would pay to bring the package to the estimate for
    /// [`CPFP_TARGET_BLOCKS`] blocks (0 when not needed).
    pub cpfp_fee_sat: Option<u64>,
    /// The package rate that fee aims at.
    pub cpfp_target_sat_per_kvb: Option<u64>,
}

/// The answer to `fees`.
#[derive(Debug, Clone, Serialize)]
pub struct FeesAnswer {
    /// Electrum server asked.
    pub server: String,
    /// Server tip height.
    pub tip_height: u32,
    /// The server's minimum relay fee (sat per 1000 vB).
    pub relay_fee_sat_per_kvb: Option<u64>,
    /// Estimates for [`TARGETS`].
    pub estimates: Vec<Estimate>,
    /// The mempool's fee histogram, highest rate first.
    pub mempool_histogram: Vec<Bucket>,
    /// Total vsize waiting in the mempool.
    pub mempool_vsize: u64,
    /// Unconfirmed payments.
    pub unconfirmed_payments: Vec<PaymentFee>,
}

/// The smallest target whose estimate `package_kvb` meets (pure).
pub fn expected_within(package_kvb: u64, estimates: &[Estimate]) -> Option<u32> {
    estimates
        .iter()
        .filter(|e| e.sat_per_kvb.is_some_and(|r| package_kvb >= r))
        .map(|e| e.blocks)
        .min()
}

/// The estimate for `blocks`, falling back to the next longer target that has one.
pub fn estimate_for(blocks: u32, estimates: &[Estimate]) -> Option<u64> {
    estimates
        .iter()
        .filter(|e| e.blocks >= blocks)
        .find_map(|e| e.sat_per_kvb)
}

/// The fee position of a payment's transaction (pure over the report and estimates).
pub fn position(
    report: &TxReport,
    estimates: &[Estimate],
) -> (Option<u32>, Option<bool>, Option<u64>, Option<u64>) {
    let Some(pkg) = report.package_fee_rate_sat_per_kvb else {
        return (None, None, None, None);
    };
    let within = expected_within(pkg, estimates);
    let soon = estimate_for(SOON_BLOCKS, estimates).map(|r| pkg >= r);
    let target = estimate_for(CPFP_TARGET_BLOCKS, estimates);
    let cpfp = match (target, report.package_fee_sat) {
        (Some(t), Some(f)) if pkg < t => Some(rate::cpfp_child_fee(f, report.package_vsize, t)),
        (Some(_), Some(_)) => Some(0),
        _ => None,
    };
    (within, soon, cpfp, target)
}

/// Answers `fees` against the configured Electrum servers.
pub fn lookup(cfg: &crate::config::Config, store: &Store) -> Result<FeesAnswer, OpsError> {
    let session = super::open_lookup(cfg)?;
    let raw = session.estimate_fees(&TARGETS.map(|t| t as usize))?;
    let estimates: Vec<Estimate> = TARGETS
        .iter()
        .zip(raw)
        .map(|(&blocks, btc)| {
            let r = rate::from_btc_per_kvb(btc);
            Estimate {
                blocks,
                sat_per_kvb: r,
                sat_vb: r.map(rate::display),
            }
        })
        .collect();
    let histogram = session.fee_histogram()?;
    let mempool_vsize = histogram.iter().map(|(_, v)| v).sum();
    let mempool_histogram = histogram
        .iter()
        .take(MAX_BUCKETS)
        .map(|&(r, vsize)| Bucket {
            sat_per_kvb: rate::from_sat_vb(r),
            vsize,
        })
        .collect();
    let relay = rate::from_btc_per_kvb(session.relay_fee()?);
    let mut ins = Inspector::new(&session, store, cfg.network)?;
    let (open, _) = store.list_payments(&ListQuery {
        status: Some(Status::Unconfirmed),
        limit: MAX_PAYMENTS,
        ..Default::default()
    })?;
    let mut unconfirmed_payments = Vec::new();
    for p in open {
        for txid in &p.txids {
            let Ok(t) = txid.parse() else { continue };
            let report = match ins.report(t) {
                Ok(r) => r,
                // Replaced or dropped since the wallet saw it: nothing to bump.
                Err(OpsError::UnknownTx(_)) => continue,
                Err(e) => return Err(e),
            };
            if report.confirmations > 0 {
                continue;
            }
            let (within, soon, cpfp, target) = position(&report, &estimates);
            unconfirmed_payments.push(PaymentFee {
                payment_id: p.id.clone(),
                reference: p.reference.clone(),
                txid: txid.clone(),
                package_fee_rate_sat_per_kvb: report.package_fee_rate_sat_per_kvb,
                package_fee_rate_sat_vb: report.package_fee_rate_sat_per_kvb.map(rate::display),
                rbf: report.rbf,
                unconfirmed_ancestors: report.unconfirmed_ancestors.len(),
                expected_within_blocks: within,
                likely_soon: soon,
                cpfp_fee_sat: cpfp,
                cpfp_target_sat_per_kvb: target,
            });
        }
    }
    Ok(FeesAnswer {
        server: session.server().to_string(),
        tip_height: ins.tip(),
        relay_fee_sat_per_kvb: relay,
        estimates,
        mempool_histogram,
        mempool_vsize,
        unconfirmed_payments,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn est(v: &[(u32, Option<u64>)]) -> Vec<Estimate> {
        v.iter()
            .map(|&(blocks, r)| Estimate {
                blocks,
                sat_per_kvb: r,
                sat_vb: None,
            })
            .collect()
    }

    #[test]
    fn expected_within_is_the_fastest_target_met() {
        let e = est(&[
            (1, Some(20_000)),
            (3, Some(10_000)),
            (6, Some(5_000)),
            (24, Some(2_000)),
            (144, Some(1_000)),
        ]);
        assert_eq!(expected_within(25_000, &e), Some(1));
        assert_eq!(expected_within(10_000, &e), Some(3));
        assert_eq!(expected_within(1_500, &e), Some(144));
        assert_eq!(expected_within(999, &e), None);
    }

    #[test]
    fn a_missing_estimate_falls_back_to_a_longer_target() {
        let e = est(&[
            (1, None),
            (3, None),
            (6, Some(4_000)),
            (24, None),
            (144, None),
        ]);
        assert_eq!(estimate_for(3, &e), Some(4_000));
        assert_eq!(estimate_for(24, &e), None);
    }
}
