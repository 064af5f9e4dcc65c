//! The pure payment state machine: (payment, observation, policy) → updated payment + events.
//!
//! No I/O and no clock reads: the caller passes the wallet's view of the payment's address,
//! the tip height and the time in an [`Observation`]. See DESIGN.md "Payment lifecycle".
//!
//! The status follows from three facts: how much was received, at what depth the amount is
//! covered, and whether the payment is past its expiry. Two exceptions keep history honest:
//! `completed` never changes status (the application already acted on it), and a payment
//! only moves *down* (confirmed → unconfirmed → pending) when a reorg or a double spend is
//! detected, never because the policy changed between runs.

use super::{Event, Observation, Payment, Policy, SeenTx, Status};

/// Reason of the creation event.
pub const REASON_CREATED: &str = "created";
/// Reason when the full amount is first seen (in the mempool or below `min_confirmations`).
pub const REASON_PAID: &str = "paid";
/// Reason when the full amount reaches `min_confirmations`.
pub const REASON_CONFIRMED: &str = "confirmed";
/// Reason when a pending payment with nothing received expires.
pub const REASON_EXPIRED: &str = "expired";
/// Reason when a pending payment with part of the amount received expires.
pub const REASON_UNDERPAID: &str = "underpaid at expiry";
/// Reason when less than the amount arrived (and did not change the status).
pub const REASON_PARTIAL: &str = "partial payment";
/// Reason when more money arrived for an already covered payment.
pub const REASON_ADDITIONAL: &str = "additional payment";
/// Reason when a counted transaction is still there but less confirmed.
pub const REASON_REORG: &str = "reorg";
/// Reason when a counted confirmed transaction is gone from the chain.
pub const REASON_TX_REMOVED: &str = "reorg: a confirmed transaction left the chain";
/// Reason when a counted mempool transaction was double spent or dropped, taking the
/// money away.
pub const REASON_DOUBLE_SPENT: &str =
    "double spent: the paying transaction was replaced or dropped";
/// Reason when a counted mempool transaction was replaced by one that still pays the
/// address at least as much (a fee bump): not a reorg, not fraud.
pub const REASON_REPLACED: &str = "replaced (fee bump)";
/// Reason part when money arrived after `expires_at`.
pub const REASON_LATE: &str = "late payment";
/// Reason part when more than the amount arrived.
pub const REASON_OVERPAID: &str = "overpaid";
/// Reason part when a confirmed or completed payment's money left the chain.
pub const REASON_MONEY_LOST: &str =
    "money lost after confirmation: the operator must check what was delivered";
/// Reason when the operator acknowledged a loss.
pub const REASON_LOSS_ACKNOWLEDGED: &str = "loss acknowledged by the operator";
/// Reason when the consuming application acknowledged the payment.
pub const REASON_COMPLETED: &str = "completed by the application";

/// An updated payment and the events to append to its history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The updated copy (`version` + 1, `updated_at` = now).
    pub payment: Payment,
    /// Events to append to the payment's history, oldest first.
    pub events: Vec<Event>,
}

/// Why a lifecycle operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    /// Only a confirmed payment can be completed.
    #[error("payment is {status}; only a confirmed payment can be completed")]
    NotConfirmed {
        /// The payment's current status.
        status: Status,
    },
}

/// The event that opens every payment's history.
pub fn created_event(p: &Payment) -> Event {
    Event {
        at: p.created_at,
        from: None,
        to: Status::Pending,
        reason: REASON_CREATED.to_owned(),
        txids: Vec::new(),
    }
}

/// Acknowledge a payment: confirmed → completed; `Ok(None)` when it already is completed.
pub fn complete(p: &Payment, now: u64) -> Result<Option<Transition>, LifecycleError> {
    match p.status {
        Status::Completed => Ok(None),
        Status::Confirmed => {
            let mut next = p.clone();
            next.status = Status::Completed;
            bump(&mut next, now);
            let event = Event {
                at: now,
                from: Some(Status::Confirmed),
                to: Status::Completed,
                reason: REASON_COMPLETED.to_owned(),
                txids: p.txids.clone(),
            };
            Ok(Some(Transition {
                payment: next,
                events: vec![event],
            }))
        }
        status => Err(LifecycleError::NotConfirmed { status }),
    }
}

/// Apply what the wallet sees now to a payment; `None` when nothing changed.
pub fn evaluate(p: &Payment, obs: &Observation, policy: &Policy) -> Option<Transition> {
    let txs = distinct(&obs.txs);
    let received = txs
        .iter()
        .fold(0u64, |sum, tx| sum.saturating_add(tx.value_sat));
    let confirmations = covering_depth(&txs, p.amount_sat, obs.tip_height);
    let txids = merge_txids(&p.txids, &txs);

    let vanished: Vec<String> = p
        .txids
        .iter()
        .filter(|id| !txs.iter().any(|tx| &tx.txid == *id))
        .cloned()
        .collect();
    let appeared: Vec<String> = txids
        .iter()
        .filter(|id| !p.txids.contains(id))
        .cloned()
        .collect();
    let covered_height =
        (confirmations > 0).then(|| obs.tip_height.saturating_sub(confirmations - 1));
    // A mempool payment whose transaction was swapped for another that pays at least as
    // much: the customer bumped the fee.
    let replaced = !vanished.is_empty()
        && !appeared.is_empty()
        && p.confirmations == 0
        && p.covered_height.is_none()
        && received >= p.received_sat;
    // Less deep than before, or covered in a later block than before: a reorg.
    let reorg = (!vanished.is_empty() && !replaced)
        || confirmations < p.confirmations
        || matches!((p.covered_height, covered_height), (Some(old), Some(new)) if new > old)
        || (p.covered_height.is_some() && covered_height.is_none());
    // Once expired, a payment stays past expiry even if the clock steps back (NTP fix).
    let past_expiry =
        obs.now >= p.expires_at || matches!(p.status, Status::Expired | Status::Underpaid);
    let covered = received >= p.amount_sat;

    let mut flags = p.flags;
    if received > p.amount_sat {
        flags.overpaid = true;
    }
    // We only know when money was observed, not when it was sent: more money than before,
    // seen at or after expiry, is late. A fee bump (RBF) keeps the amount and is not late.
    if past_expiry && received > p.received_sat {
        flags.late_payment = true;
    }
    if reorg {
        flags.reorged = true;
    }
    // Confirmed once (possibly delivered), and now less than the amount is there because
    // a counted transaction is gone: not a delay, a loss.
    let acknowledged_once = p.confirmed_at.is_some() || p.status == Status::Completed;
    if acknowledged_once && !vanished.is_empty() && received < p.amount_sat {
        flags.money_lost = true;
    }

    // min_confirmations 0 would make a mempool transaction "confirmed"; the floor is 1.
    let min_confirmations = policy.min_confirmations.max(1);
    let by_money = if covered {
        if confirmations >= min_confirmations {
            Status::Confirmed
        } else {
            Status::Unconfirmed
        }
    } else if past_expiry {
        if received == 0 {
            Status::Expired
        } else {
            Status::Underpaid
        }
    } else {
        Status::Pending
    };
    let status = match p.status {
        Status::Completed => Status::Completed,
        current if rank(by_money) < rank(current) && !reorg => current,
        _ => by_money,
    };

    let mut next = p.clone();
    next.received_sat = received;
    next.confirmations = confirmations;
    next.covered_height = covered_height;
    next.txids = txids;
    next.flags = flags;
    next.status = status;
    if covered && next.first_seen_at.is_none() {
        next.first_seen_at = Some(obs.now);
    }
    match status {
        Status::Confirmed if next.confirmed_at.is_none() => next.confirmed_at = Some(obs.now),
        Status::Confirmed | Status::Completed => {}
        _ => next.confirmed_at = None,
    }

    let mut events = Vec::new();
    let something_to_record =
        reorg || replaced || status != p.status || flags != p.flags || received != p.received_sat;
    if something_to_record {
        let primary = if replaced {
            Some(REASON_REPLACED)
        } else if !vanished.is_empty() {
            Some(if p.confirmations > 0 || p.covered_height.is_some() {
                REASON_TX_REMOVED
            } else {
                REASON_DOUBLE_SPENT
            })
        } else if reorg {
            Some(REASON_REORG)
        } else if status != p.status {
            Some(status_reason(p.status, status))
        } else if received > p.received_sat {
            Some(if covered {
                REASON_ADDITIONAL
            } else {
                REASON_PARTIAL
            })
        } else {
            None
        };
        let mut parts: Vec<&str> = primary.into_iter().collect();
        if flags.late_payment && !p.flags.late_payment {
            parts.push(REASON_LATE);
        }
        if flags.overpaid && !p.flags.overpaid {
            parts.push(REASON_OVERPAID);
        }
        if flags.money_lost && !p.flags.money_lost {
            parts.push(REASON_MONEY_LOST);
        }
        // Name what moved (gone, then new); if nothing did, the transactions now counted.
        let mut involved: Vec<String> = vanished.into_iter().chain(appeared).collect();
        if involved.is_empty() {
            involved = next.txids.clone();
        }
        events.push(Event {
            at: obs.now,
            from: Some(p.status),
            to: status,
            reason: if parts.is_empty() {
                "received amount changed".to_owned()
            } else {
                parts.join("; ")
            },
            txids: involved,
        });
    }

    if status == Status::Confirmed
        && let Some(depth) = policy.auto_complete_depth
        && confirmations >= depth
    {
        next.status = Status::Completed;
        events.push(Event {
            at: obs.now,
            from: Some(Status::Confirmed),
            to: Status::Completed,
            reason: format!("auto-completed at depth {depth}"),
            txids: next.txids.clone(),
        });
    }

    if next == *p {
        return None;
    }
    bump(&mut next, obs.now);
    Some(Transition {
        payment: next,
        events,
    })
}

/// The operator has seen a loss: the `money_lost` flag is cleared (the history keeps it);
/// `Ok(None)` when there is no loss to acknowledge.
pub fn acknowledge_loss(p: &Payment, now: u64) -> Option<Transition> {
    if !p.flags.money_lost {
        return None;
    }
    let mut next = p.clone();
    next.flags.money_lost = false;
    bump(&mut next, now);
    Some(Transition {
        events: vec![Event {
            at: now,
            from: Some(p.status),
            to: p.status,
            reason: REASON_LOSS_ACKNOWLEDGED.to_owned(),
            txids: Vec::new(),
        }],
        payment: next,
    })
}

/// Mark `p` as changed at `now`.
fn bump(p: &mut Payment, now: u64) {
    p.version = p.version.saturating_add(1);
    p.updated_at = now;
}

/// The observation's transactions, each txid once (a duplicate must not count money twice).
fn distinct(txs: &[SeenTx]) -> Vec<&SeenTx> {
    let mut out: Vec<&SeenTx> = Vec::with_capacity(txs.len());
    for tx in txs {
        if !out.iter().any(|seen| seen.txid == tx.txid) {
            out.push(tx);
        }
    }
    out
}

/// Depth of a transaction: 0 in the mempool, 1 in the tip block.
fn depth(tx: &SeenTx, tip: u32) -> u32 {
    match tx.height {
        None => 0,
        // A height above the tip means the wallet's tip lags its transaction data; the
        // transaction is at least in a block, so count it as the newest one.
        Some(h) if h > tip => 1,
        Some(h) => (tip - h).saturating_add(1),
    }
}

/// Largest k such that the transactions at depth ≥ k together cover `amount`; 0 if uncovered.
fn covering_depth(txs: &[&SeenTx], amount: u64, tip: u32) -> u32 {
    let mut by_depth: Vec<(u32, u64)> = txs.iter().map(|t| (depth(t, tip), t.value_sat)).collect();
    by_depth.sort_unstable_by_key(|&(d, _)| std::cmp::Reverse(d));
    let mut sum = 0u64;
    for (d, value) in by_depth {
        sum = sum.saturating_add(value);
        if sum >= amount {
            return d;
        }
    }
    0
}

/// Previous order for txids still present, then the new ones in observation order.
fn merge_txids(previous: &[String], txs: &[&SeenTx]) -> Vec<String> {
    let mut out: Vec<String> = previous
        .iter()
        .filter(|id| txs.iter().any(|tx| &tx.txid == *id))
        .cloned()
        .collect();
    for tx in txs {
        if !out.contains(&tx.txid) {
            out.push(tx.txid.clone());
        }
    }
    out
}

/// Order of the money-driven statuses: a payment only moves down this on a reorg.
fn rank(s: Status) -> u8 {
    match s {
        Status::Pending | Status::Expired | Status::Underpaid => 0,
        Status::Unconfirmed => 1,
        Status::Confirmed => 2,
        Status::Completed => 3,
    }
}

/// The reason for a status change that is not a reorg.
fn status_reason(from: Status, to: Status) -> &'static str {
    match (from, to) {
        (_, Status::Unconfirmed) => REASON_PAID,
        (_, Status::Confirmed) => REASON_CONFIRMED,
        (_, Status::Expired) => REASON_EXPIRED,
        (Status::Pending, Status::Underpaid) => REASON_UNDERPAID,
        // expired → underpaid: part of the amount arrived late.
        (_, Status::Underpaid) => REASON_PARTIAL,
        (_, Status::Pending | Status::Completed) => "status changed",
    }
}

#[cfg(test)]
mod tests;
