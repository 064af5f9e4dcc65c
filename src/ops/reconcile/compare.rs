//! Pure judgement of one payment: what the chain shows against what the store records
//! (through the lifecycle), and the Supabase row against the payment. No I/O.

use serde::{Deserialize, Serialize};

use crate::payments::{Observation, Payment, Policy, Status, lifecycle};
use crate::sink::reconcile::MirroredRow;

/// What kind of difference was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiffKind {
    /// The chain shows money for the payment that the store does not count.
    PaidNotRecorded,
    /// A transaction the store counts is gone from the chain.
    GoneFromChain,
    /// The same transactions, but the amount received differs.
    AmountDiffers,
    /// The money agrees; the status the lifecycle gives differs from the stored one.
    StatusDiffers,
    /// The Supabase table has no row for the payment.
    SinkRowMissing,
    /// The Supabase row holds an older (or other) state of the payment.
    SinkRowStale,
}

impl DiffKind {
    /// The snake_case name used in JSON and events.
    pub fn as_str(self) -> &'static str {
        match self {
            DiffKind::PaidNotRecorded => "paid_not_recorded",
            DiffKind::GoneFromChain => "gone_from_chain",
            DiffKind::AmountDiffers => "amount_differs",
            DiffKind::StatusDiffers => "status_differs",
            DiffKind::SinkRowMissing => "sink_row_missing",
            DiffKind::SinkRowStale => "sink_row_stale",
        }
    }
}

/// One difference, with its evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Difference {
    /// The payment.
    pub payment_id: String,
    /// Its reference.
    pub reference: String,
    /// What differs.
    pub kind: DiffKind,
    /// The stored status.
    pub store_status: Status,
    /// The stored amount received.
    pub store_received_sat: u64,
    /// The status the chain (through the lifecycle) or the sink row gives.
    pub other_status: String,
    /// The amount the chain or the sink row gives.
    pub other_received_sat: u64,
    /// What was seen, where, in words.
    pub evidence: String,
    /// `--fix` applied the lifecycle's answer (or re-sent the row).
    pub fixed: bool,
}

/// The chain's transactions in a short form: `txid@height` (`@mempool`).
fn describe_txs(obs: &Observation) -> String {
    if obs.txs.is_empty() {
        return "no transaction".into();
    }
    obs.txs
        .iter()
        .map(|t| {
            format!(
                "{} sat in {}@{}",
                t.value_sat,
                t.txid,
                t.height.map_or("mempool".to_owned(), |h| h.to_string())
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The lifecycle's judgement of `p` on what the chain shows; `None` when the store agrees
/// (a transition without events only refreshes the stored depth: not a difference).
pub fn classify(
    p: &Payment,
    obs: &Observation,
    policy: &Policy,
    server: &str,
) -> Option<(Difference, lifecycle::Transition)> {
    let t = lifecycle::evaluate(p, obs, policy)?;
    if t.events.is_empty() {
        return None;
    }
    let chain_ids: Vec<&str> = obs.txs.iter().map(|t| t.txid.as_str()).collect();
    let appeared = chain_ids.iter().any(|id| !p.txids.iter().any(|s| s == id));
    let vanished = p.txids.iter().any(|id| !chain_ids.contains(&id.as_str()));
    let received = t.payment.received_sat;
    let kind = if vanished {
        DiffKind::GoneFromChain
    } else if appeared {
        DiffKind::PaidNotRecorded
    } else if received != p.received_sat {
        DiffKind::AmountDiffers
    } else {
        DiffKind::StatusDiffers
    };
    let reasons: Vec<&str> = t.events.iter().map(|e| e.reason.as_str()).collect();
    let evidence = format!(
        "server {server} at tip {}: {}; the store had {} sat in {} tx(s), {}; the lifecycle says {} ({})",
        obs.tip_height,
        describe_txs(obs),
        p.received_sat,
        p.txids.len(),
        p.status,
        t.payment.status,
        reasons.join("; ")
    );
    let d = Difference {
        payment_id: p.id.clone(),
        reference: p.reference.clone(),
        kind,
        store_status: p.status,
        store_received_sat: p.received_sat,
        other_status: t.payment.status.as_str().to_owned(),
        other_received_sat: received,
        evidence,
        fixed: false,
    };
    Some((d, t))
}

/// The Supabase row of `p` against the payment; `None` when it mirrors it.
pub fn sink_difference(p: &Payment, row: Option<&MirroredRow>, target: &str) -> Option<Difference> {
    let base = |kind, other_status: String, other_received_sat, evidence| Difference {
        payment_id: p.id.clone(),
        reference: p.reference.clone(),
        kind,
        store_status: p.status,
        store_received_sat: p.received_sat,
        other_status,
        other_received_sat,
        evidence,
        fixed: false,
    };
    let Some(row) = row else {
        return Some(base(
            DiffKind::SinkRowMissing,
            "missing".into(),
            0,
            format!("{target}: no row in electrum_payments or electrum_payments_archive"),
        ));
    };
    let same = row.version == p.version
        && row.status == p.status.as_str()
        && row.received_sat == p.received_sat;
    if same {
        return None;
    }
    Some(base(
        DiffKind::SinkRowStale,
        row.status.clone(),
        row.received_sat,
        format!(
            "{target}: row has {} {} sat version {}{}, the store {} {} sat version {}",
            row.status,
            row.received_sat,
            row.version,
            if row.archived { " (archived)" } else { "" },
            p.status,
            p.received_sat,
            p.version
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payments::{Flags, SeenTx};

    fn payment() -> Payment {
        Payment {
            id: "pay_1".into(),
            seq: 1,
            reference: "order-1".into(),
            description: None,
            address: "bcrt1qexample".into(),
            derivation_index: 0,
            amount_sat: 40_000,
            received_sat: 0,
            status: Status::Pending,
            confirmations: 0,
            txids: vec![],
            flags: Flags::default(),
            created_at: 1_000,
            updated_at: 1_000,
            expires_at: 10_000,
            first_seen_at: None,
            confirmed_at: None,
            covered_height: None,
            created_height: Some(100),
            version: 1,
        }
    }

    const POLICY: Policy = Policy {
        min_confirmations: 1,
        auto_complete_depth: None,
    };

    fn obs(txs: Vec<SeenTx>) -> Observation {
        Observation {
            txs,
            tip_height: 110,
            now: 2_000,
        }
    }

    fn tx(id: &str, value: u64, height: Option<u32>) -> SeenTx {
        SeenTx {
            txid: id.into(),
            value_sat: value,
            height,
        }
    }

    #[test]
    fn money_on_chain_the_store_does_not_count_is_paid_not_recorded() {
        let (d, t) = classify(
            &payment(),
            &obs(vec![tx("aa", 40_000, Some(105))]),
            &POLICY,
            "s",
        )
        .unwrap();
        assert_eq!(d.kind, DiffKind::PaidNotRecorded);
        assert_eq!(d.store_status, Status::Pending);
        assert_eq!(d.other_status, "confirmed");
        assert_eq!(d.other_received_sat, 40_000);
        assert_eq!(t.payment.status, Status::Confirmed);
        assert!(d.evidence.contains("40000 sat in aa@105"), "{}", d.evidence);
    }

    #[test]
    fn a_counted_transaction_missing_from_the_chain_is_gone_from_chain() {
        let mut p = payment();
        p.txids = vec!["aa".into()];
        p.received_sat = 40_000;
        p.status = Status::Unconfirmed;
        let (d, t) = classify(&p, &obs(vec![]), &POLICY, "s").unwrap();
        assert_eq!(d.kind, DiffKind::GoneFromChain);
        assert_eq!(t.payment.status, Status::Pending);
        assert_eq!(d.other_received_sat, 0);
    }

    #[test]
    fn an_expiry_the_store_has_not_applied_is_a_status_difference() {
        let p = payment();
        let mut o = obs(vec![]);
        o.now = 20_000;
        let (d, _) = classify(&p, &o, &POLICY, "s").unwrap();
        assert_eq!(d.kind, DiffKind::StatusDiffers);
        assert_eq!(d.other_status, "expired");
    }

    #[test]
    fn agreement_and_a_mere_depth_refresh_are_no_difference() {
        let mut p = payment();
        p.txids = vec!["aa".into()];
        p.received_sat = 40_000;
        p.status = Status::Confirmed;
        p.confirmations = 1;
        p.covered_height = Some(105);
        p.first_seen_at = Some(1_500);
        p.confirmed_at = Some(1_600);
        // Six blocks later the lifecycle refreshes the depth, with no event.
        assert!(classify(&p, &obs(vec![tx("aa", 40_000, Some(105))]), &POLICY, "s").is_none());
    }

    #[test]
    fn a_missing_or_older_sink_row_is_reported_and_a_current_one_is_not() {
        let p = payment();
        let d = sink_difference(&p, None, "pg").unwrap();
        assert_eq!(d.kind, DiffKind::SinkRowMissing);
        let mut row = MirroredRow {
            status: "pending".into(),
            received_sat: 0,
            version: 1,
            archived: false,
        };
        assert!(sink_difference(&p, Some(&row), "pg").is_none());
        row.version = 0;
        let d = sink_difference(&p, Some(&row), "pg").unwrap();
        assert_eq!(d.kind, DiffKind::SinkRowStale);
        assert!(d.evidence.contains("version 0"), "{}", d.evidence);
        row.version = 1;
        row.status = "expired".into();
        assert_eq!(
            sink_difference(&p, Some(&row), "pg").unwrap().kind,
            DiffKind::SinkRowStale
        );
    }
}
