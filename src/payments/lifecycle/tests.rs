//! The lifecycle as a table of scenarios, plus the rules a table shows poorly.

use super::*;
use Status::{
    Completed as Done, Confirmed as Conf, Expired as Exp, Pending as Pend, Unconfirmed as Unconf,
    Underpaid as Under,
};

const AMOUNT: u64 = 10_000;
const CREATED: u64 = 1_000;
const EXPIRES: u64 = 4_600;

fn payment() -> Payment {
    Payment {
        id: "pay_00000000000000000000000000000001".into(),
        seq: 1,
        reference: "order-1".into(),
        description: None,
        address: "bcrt1qexample".into(),
        derivation_index: 0,
        amount_sat: AMOUNT,
        received_sat: 0,
        status: Pend,
        confirmations: 0,
        txids: Vec::new(),
        flags: Default::default(),
        created_at: CREATED,
        updated_at: CREATED,
        expires_at: EXPIRES,
        first_seen_at: None,
        confirmed_at: None,
        covered_height: None,
        created_height: None,
        version: 1,
    }
}

fn mempool(id: &str, value_sat: u64) -> SeenTx {
    SeenTx {
        txid: id.into(),
        value_sat,
        height: None,
    }
}

fn mined(id: &str, value_sat: u64, height: u32) -> SeenTx {
    SeenTx {
        txid: id.into(),
        value_sat,
        height: Some(height),
    }
}

fn obs(now: u64, tip_height: u32, txs: &[SeenTx]) -> Observation {
    Observation {
        txs: txs.to_vec(),
        tip_height,
        now,
    }
}

fn policy(min_confirmations: u32) -> Policy {
    Policy {
        min_confirmations,
        auto_complete_depth: None,
    }
}

fn auto(min_confirmations: u32, depth: u32) -> Policy {
    Policy {
        min_confirmations,
        auto_complete_depth: Some(depth),
    }
}

/// What one step must produce.
enum Outcome {
    Unchanged,
    Changed {
        status: Status,
        received: u64,
        confirmations: u32,
        /// `Flags::names()` joined with commas.
        flags: &'static str,
        events: Vec<(Status, Status, &'static str)>,
    },
}

fn changed(
    status: Status,
    received: u64,
    confirmations: u32,
    flags: &'static str,
    events: &[(Status, Status, &'static str)],
) -> Outcome {
    Outcome::Changed {
        status,
        received,
        confirmations,
        flags,
        events: events.to_vec(),
    }
}

enum Step {
    Observe(Observation, Outcome),
    Complete(u64, Outcome),
}
use Step::{Complete, Observe};

struct Scenario {
    name: &'static str,
    policy: Policy,
    steps: Vec<Step>,
}

// One row per step reads as a table; rustfmt would spread each over ten lines.
#[rustfmt::skip]
fn scenarios() -> Vec<Scenario> {
    const DOUBLE_SPENT: &str = REASON_DOUBLE_SPENT;
    // A confirmed payment's money leaving the chain is a loss the operator must see.
    let lost = || -> &'static str {
        Box::leak(format!("{REASON_TX_REMOVED}; {REASON_MONEY_LOST}").into_boxed_str())
    };
    let pay = || mempool("a", AMOUNT);
    vec![
        Scenario {
            name: "no-op observation before expiry",
            policy: policy(1),
            steps: vec![
                Observe(obs(2_000, 100, &[]), Outcome::Unchanged),
                Observe(obs(EXPIRES - 1, 150, &[]), Outcome::Unchanged),
            ],
        },
        Scenario {
            name: "exactly the amount: unconfirmed, then confirmed at depth 1",
            policy: policy(1),
            steps: vec![
                Observe(obs(2_000, 100, &[pay()]), changed(Unconf, AMOUNT, 0, "", &[(Pend, Unconf, "paid")])),
                Observe(obs(2_100, 100, &[pay()]), Outcome::Unchanged),
                Observe(obs(2_200, 101, &[mined("a", AMOUNT, 101)]), changed(Conf, AMOUNT, 1, "", &[(Unconf, Conf, "confirmed")])),
                // More depth is a change (version bump) but not an event.
                Observe(obs(2_300, 102, &[mined("a", AMOUNT, 101)]), changed(Conf, AMOUNT, 2, "", &[])),
            ],
        },
        Scenario {
            name: "amount - 1 stays pending, then underpaid at expiry",
            policy: policy(1),
            steps: vec![
                Observe(obs(2_000, 100, &[mempool("a", AMOUNT - 1)]), changed(Pend, AMOUNT - 1, 0, "", &[(Pend, Pend, "partial payment")])),
                // Confirming a partial payment changes nothing: confirmations count coverage.
                Observe(obs(2_100, 101, &[mined("a", AMOUNT - 1, 101)]), Outcome::Unchanged),
                Observe(obs(EXPIRES, 102, &[mined("a", AMOUNT - 1, 101)]), changed(Under, AMOUNT - 1, 0, "", &[(Pend, Under, "underpaid at expiry")])),
            ],
        },
        Scenario {
            name: "amount + 1 is overpaid",
            policy: policy(1),
            steps: vec![Observe(obs(2_000, 100, &[mempool("a", AMOUNT + 1)]), changed(Unconf, AMOUNT + 1, 0, "overpaid", &[(Pend, Unconf, "paid; overpaid")]))],
        },
        Scenario {
            name: "min_confirmations 6: unconfirmed through depth 5, confirmed at 6",
            policy: policy(6),
            steps: vec![
                Observe(obs(2_000, 100, &[mined("a", AMOUNT, 100)]), changed(Unconf, AMOUNT, 1, "", &[(Pend, Unconf, "paid")])),
                Observe(obs(2_100, 104, &[mined("a", AMOUNT, 100)]), changed(Unconf, AMOUNT, 5, "", &[])),
                Observe(obs(2_200, 105, &[mined("a", AMOUNT, 100)]), changed(Conf, AMOUNT, 6, "", &[(Unconf, Conf, "confirmed")])),
            ],
        },
        Scenario {
            name: "pending straight to confirmed",
            policy: policy(1),
            steps: vec![Observe(obs(2_000, 100, &[mined("a", AMOUNT, 100)]), changed(Conf, AMOUNT, 1, "", &[(Pend, Conf, "confirmed")]))],
        },
        Scenario {
            name: "min_confirmations 0 is treated as 1",
            policy: policy(0),
            steps: vec![Observe(obs(2_000, 100, &[pay()]), changed(Unconf, AMOUNT, 0, "", &[(Pend, Unconf, "paid")]))],
        },
        Scenario {
            name: "expiry exactly at expires_at",
            policy: policy(1),
            steps: vec![
                Observe(obs(EXPIRES - 1, 100, &[]), Outcome::Unchanged),
                Observe(obs(EXPIRES, 100, &[]), changed(Exp, 0, 0, "", &[(Pend, Exp, "expired")])),
                Observe(obs(EXPIRES + 100, 101, &[]), Outcome::Unchanged),
                // The clock stepping back (NTP fix) does not un-expire a payment.
                Observe(obs(EXPIRES - 100, 101, &[]), Outcome::Unchanged),
            ],
        },
        Scenario {
            name: "late payment to an expired payment is flagged and kept",
            policy: policy(1),
            steps: vec![
                Observe(obs(EXPIRES, 100, &[]), changed(Exp, 0, 0, "", &[(Pend, Exp, "expired")])),
                Observe(obs(EXPIRES + 10, 100, &[pay()]), changed(Unconf, AMOUNT, 0, "late_payment", &[(Exp, Unconf, "paid; late payment")])),
                Observe(obs(EXPIRES + 20, 101, &[mined("a", AMOUNT, 101)]), changed(Conf, AMOUNT, 1, "late_payment", &[(Unconf, Conf, "confirmed")])),
            ],
        },
        Scenario {
            name: "late partial payment to an expired payment makes it underpaid",
            policy: policy(1),
            steps: vec![
                Observe(obs(EXPIRES, 100, &[]), changed(Exp, 0, 0, "", &[(Pend, Exp, "expired")])),
                Observe(obs(EXPIRES + 10, 100, &[mempool("a", 4_000)]), changed(Under, 4_000, 0, "late_payment", &[(Exp, Under, "partial payment; late payment")])),
            ],
        },
        Scenario {
            name: "late top-up of an underpaid payment past the amount",
            policy: policy(1),
            steps: vec![
                Observe(obs(2_000, 100, &[mempool("a", 4_000)]), changed(Pend, 4_000, 0, "", &[(Pend, Pend, "partial payment")])),
                Observe(obs(EXPIRES, 100, &[mempool("a", 4_000)]), changed(Under, 4_000, 0, "", &[(Pend, Under, "underpaid at expiry")])),
                Observe(obs(EXPIRES + 5, 100, &[mempool("a", 4_000), mempool("b", 999)]), changed(Under, 4_999, 0, "late_payment", &[(Under, Under, "partial payment; late payment")])),
                Observe(obs(EXPIRES + 9, 101, &[mined("a", 4_000, 101), mined("b", 999, 101), mempool("c", 5_002)]), changed(Unconf, AMOUNT + 1, 0, "overpaid,late_payment", &[(Under, Unconf, "paid; overpaid")])),
                Observe(obs(EXPIRES + 20, 102, &[mined("a", 4_000, 101), mined("b", 999, 101), mined("c", 5_002, 102)]), changed(Conf, AMOUNT + 1, 1, "overpaid,late_payment", &[(Unconf, Conf, "confirmed")])),
            ],
        },
        Scenario {
            name: "first money seen after expires_at while still pending is late",
            policy: policy(1),
            steps: vec![Observe(obs(EXPIRES + 5, 100, &[pay()]), changed(Unconf, AMOUNT, 0, "late_payment", &[(Pend, Unconf, "paid; late payment")]))],
        },
        Scenario {
            name: "paid before expiry stays unconfirmed past expiry and is not late",
            policy: policy(1),
            steps: vec![
                Observe(obs(2_000, 100, &[pay()]), changed(Unconf, AMOUNT, 0, "", &[(Pend, Unconf, "paid")])),
                Observe(obs(EXPIRES + 1, 100, &[pay()]), Outcome::Unchanged),
                Observe(obs(EXPIRES + 2, 101, &[mined("a", AMOUNT, 101)]), changed(Conf, AMOUNT, 1, "", &[(Unconf, Conf, "confirmed")])),
            ],
        },
        Scenario {
            name: "extra money after the amount is covered",
            policy: policy(1),
            steps: vec![
                Observe(obs(2_000, 100, &[mined("a", AMOUNT, 100)]), changed(Conf, AMOUNT, 1, "", &[(Pend, Conf, "confirmed")])),
                Observe(obs(2_100, 100, &[mined("a", AMOUNT, 100), mempool("b", 1)]), changed(Conf, AMOUNT + 1, 1, "overpaid", &[(Conf, Conf, "additional payment; overpaid")])),
            ],
        },
        Scenario {
            name: "partial payment: an event only when received_sat changes",
            policy: policy(1),
            steps: vec![
                Observe(obs(2_000, 100, &[mempool("a", 4_000)]), changed(Pend, 4_000, 0, "", &[(Pend, Pend, "partial payment")])),
                Observe(obs(2_100, 100, &[mempool("a", 4_000)]), Outcome::Unchanged),
                Observe(obs(2_200, 101, &[mined("a", 4_000, 101), mempool("b", 1_000)]), changed(Pend, 5_000, 0, "", &[(Pend, Pend, "partial payment")])),
            ],
        },
        Scenario {
            name: "coverage is the depth of the shallowest transaction needed",
            policy: policy(1),
            steps: vec![
                // a alone (depth 6) does not cover; a + b do at b's depth 3.
                Observe(obs(2_000, 105, &[mined("a", 6_000, 100), mined("b", 4_000, 103)]), changed(Conf, AMOUNT, 3, "", &[(Pend, Conf, "confirmed")])),
                // c in the mempool adds money but the amount is covered deeper already.
                Observe(obs(2_100, 105, &[mined("a", 6_000, 100), mined("b", 4_000, 103), mempool("c", 10_000)]), changed(Conf, 20_000, 3, "overpaid", &[(Conf, Conf, "additional payment; overpaid")])),
            ],
        },
        Scenario {
            name: "an overpaying transaction covers alone at its own depth",
            policy: policy(6),
            steps: vec![Observe(obs(2_000, 105, &[mined("a", 20_000, 100), mempool("b", 1)]), changed(Conf, 20_001, 6, "overpaid", &[(Pend, Conf, "confirmed; overpaid")]))],
        },
        Scenario {
            name: "a height above the tip counts as depth 1",
            policy: policy(1),
            steps: vec![Observe(obs(2_000, 100, &[mined("a", AMOUNT, 120)]), changed(Conf, AMOUNT, 1, "", &[(Pend, Conf, "confirmed")]))],
        },
        Scenario {
            name: "duplicate entries of one txid count once",
            policy: policy(1),
            steps: vec![Observe(obs(2_000, 100, &[mempool("a", 6_000), mempool("a", 6_000)]), changed(Pend, 6_000, 0, "", &[(Pend, Pend, "partial payment")]))],
        },
        Scenario {
            name: "reorg at pending: a partial payment vanishes",
            policy: policy(1),
            steps: vec![
                Observe(obs(2_000, 100, &[mempool("a", 4_000)]), changed(Pend, 4_000, 0, "", &[(Pend, Pend, "partial payment")])),
                Observe(obs(2_100, 100, &[]), changed(Pend, 0, 0, "reorged", &[(Pend, Pend, DOUBLE_SPENT)])),
                Observe(obs(EXPIRES, 100, &[]), changed(Exp, 0, 0, "reorged", &[(Pend, Exp, "expired")])),
            ],
        },
        Scenario {
            name: "reorg at unconfirmed before expiry: back to pending",
            policy: policy(1),
            steps: vec![
                Observe(obs(2_000, 100, &[pay()]), changed(Unconf, AMOUNT, 0, "", &[(Pend, Unconf, "paid")])),
                Observe(obs(2_100, 100, &[]), changed(Pend, 0, 0, "reorged", &[(Unconf, Pend, DOUBLE_SPENT)])),
            ],
        },
        Scenario {
            name: "reorg at unconfirmed after expiry: expired",
            policy: policy(1),
            steps: vec![
                Observe(obs(2_000, 100, &[pay()]), changed(Unconf, AMOUNT, 0, "", &[(Pend, Unconf, "paid")])),
                Observe(obs(EXPIRES + 1, 100, &[]), changed(Exp, 0, 0, "reorged", &[(Unconf, Exp, DOUBLE_SPENT)])),
            ],
        },
        Scenario {
            name: "reorg at unconfirmed (min 6): less confirmed but still unconfirmed",
            policy: policy(6),
            steps: vec![
                Observe(obs(2_000, 102, &[mined("a", AMOUNT, 100)]), changed(Unconf, AMOUNT, 3, "", &[(Pend, Unconf, "paid")])),
                Observe(obs(2_100, 102, &[mined("a", AMOUNT, 102)]), changed(Unconf, AMOUNT, 1, "reorged", &[(Unconf, Unconf, "reorg")])),
            ],
        },
        Scenario {
            name: "RBF fee bump of an unconfirmed payment is a replacement, not a reorg",
            policy: policy(1),
            steps: vec![
                Observe(obs(2_000, 100, &[pay()]), changed(Unconf, AMOUNT, 0, "", &[(Pend, Unconf, "paid")])),
                Observe(obs(EXPIRES + 1, 100, &[mempool("b", AMOUNT)]), changed(Unconf, AMOUNT, 0, "", &[(Unconf, Unconf, REASON_REPLACED)])),
                Observe(obs(EXPIRES + 2, 101, &[mined("b", AMOUNT, 101)]), changed(Conf, AMOUNT, 1, "", &[(Unconf, Conf, "confirmed")])),
            ],
        },
        Scenario {
            name: "a replacement that pays less is a double spend",
            policy: policy(1),
            steps: vec![
                Observe(obs(2_000, 100, &[pay()]), changed(Unconf, AMOUNT, 0, "", &[(Pend, Unconf, "paid")])),
                Observe(obs(2_100, 100, &[mempool("b", AMOUNT - 1)]), changed(Pend, AMOUNT - 1, 0, "reorged", &[(Unconf, Pend, DOUBLE_SPENT)])),
            ],
        },
        Scenario {
            name: "reorg at confirmed: transaction back in the mempool",
            policy: policy(1),
            steps: vec![
                Observe(obs(2_000, 100, &[mined("a", AMOUNT, 100)]), changed(Conf, AMOUNT, 1, "", &[(Pend, Conf, "confirmed")])),
                Observe(obs(2_100, 100, &[pay()]), changed(Unconf, AMOUNT, 0, "reorged", &[(Conf, Unconf, "reorg")])),
                Observe(obs(2_200, 101, &[mined("a", AMOUNT, 101)]), changed(Conf, AMOUNT, 1, "reorged", &[(Unconf, Conf, "confirmed")])),
            ],
        },
        Scenario {
            name: "reorg at confirmed (min 1): less deep, still confirmed, recorded every time",
            policy: policy(1),
            steps: vec![
                Observe(obs(2_000, 102, &[mined("a", AMOUNT, 100)]), changed(Conf, AMOUNT, 3, "", &[(Pend, Conf, "confirmed")])),
                Observe(obs(2_100, 102, &[mined("a", AMOUNT, 102)]), changed(Conf, AMOUNT, 1, "reorged", &[(Conf, Conf, "reorg")])),
                Observe(obs(2_200, 103, &[mined("a", AMOUNT, 102)]), changed(Conf, AMOUNT, 2, "reorged", &[])),
                // The flag is already set: the second reorg is still an event.
                Observe(obs(2_300, 103, &[mined("a", AMOUNT, 103)]), changed(Conf, AMOUNT, 1, "reorged", &[(Conf, Conf, "reorg")])),
            ],
        },
        Scenario {
            name: "reorg at confirmed (min 6): below 6 again is unconfirmed",
            policy: policy(6),
            steps: vec![
                Observe(obs(2_000, 105, &[mined("a", AMOUNT, 100)]), changed(Conf, AMOUNT, 6, "", &[(Pend, Conf, "confirmed")])),
                Observe(obs(2_100, 105, &[mined("a", AMOUNT, 101)]), changed(Unconf, AMOUNT, 5, "reorged", &[(Conf, Unconf, "reorg")])),
            ],
        },
        Scenario {
            name: "double spend after confirmed: pending, then expired",
            policy: policy(1),
            steps: vec![
                Observe(obs(2_000, 100, &[mined("a", AMOUNT, 100)]), changed(Conf, AMOUNT, 1, "", &[(Pend, Conf, "confirmed")])),
                Observe(obs(2_100, 101, &[]), changed(Pend, 0, 0, "reorged,money_lost", &[(Conf, Pend, lost())])),
                Observe(obs(EXPIRES, 101, &[]), changed(Exp, 0, 0, "reorged,money_lost", &[(Pend, Exp, "expired")])),
            ],
        },
        Scenario {
            name: "double spend of one of two transactions after expiry: underpaid",
            policy: policy(1),
            steps: vec![
                Observe(obs(2_000, 100, &[mined("a", 6_000, 100), mined("b", 4_000, 100)]), changed(Conf, AMOUNT, 1, "", &[(Pend, Conf, "confirmed")])),
                Observe(obs(EXPIRES + 1, 101, &[mined("a", 6_000, 100)]), changed(Under, 6_000, 0, "reorged,money_lost", &[(Conf, Under, lost())])),
            ],
        },
        Scenario {
            name: "completed, then the funds vanish: recorded, status kept",
            policy: policy(1),
            steps: vec![
                Observe(obs(2_000, 100, &[mined("a", AMOUNT, 100)]), changed(Conf, AMOUNT, 1, "", &[(Pend, Conf, "confirmed")])),
                Complete(2_050, changed(Done, AMOUNT, 1, "", &[(Conf, Done, REASON_COMPLETED)])),
                Complete(2_060, Outcome::Unchanged),
                Observe(obs(2_100, 101, &[mined("a", AMOUNT, 100)]), changed(Done, AMOUNT, 2, "", &[])),
                Observe(obs(2_200, 101, &[]), changed(Done, 0, 0, "reorged,money_lost", &[(Done, Done, lost())])),
                Observe(obs(2_300, 101, &[]), Outcome::Unchanged),
                Observe(obs(EXPIRES + 1, 102, &[mined("b", AMOUNT, 102)]), changed(Done, AMOUNT, 1, "late_payment,reorged,money_lost", &[(Done, Done, "additional payment; late payment")])),
            ],
        },
        Scenario {
            name: "auto-complete at depth 3",
            policy: auto(1, 3),
            steps: vec![
                Observe(obs(2_000, 100, &[mined("a", AMOUNT, 100)]), changed(Conf, AMOUNT, 1, "", &[(Pend, Conf, "confirmed")])),
                Observe(obs(2_100, 101, &[mined("a", AMOUNT, 100)]), changed(Conf, AMOUNT, 2, "", &[])),
                Observe(obs(2_200, 102, &[mined("a", AMOUNT, 100)]), changed(Done, AMOUNT, 3, "", &[(Conf, Done, "auto-completed at depth 3")])),
                Observe(obs(2_300, 103, &[mined("a", AMOUNT, 100)]), changed(Done, AMOUNT, 4, "", &[])),
            ],
        },
        Scenario {
            name: "auto-complete straight from pending records both steps",
            policy: auto(1, 3),
            steps: vec![Observe(obs(2_000, 105, &[mined("a", AMOUNT, 100)]), changed(Done, AMOUNT, 6, "", &[(Pend, Conf, "confirmed"), (Conf, Done, "auto-completed at depth 3")]))],
        },
    ]
}

#[test]
fn scenarios_table() {
    for sc in scenarios() {
        let mut p = payment();
        for (i, step) in sc.steps.into_iter().enumerate() {
            let ctx = format!("{} / step {}", sc.name, i + 1);
            let (result, now, outcome, replay) = match step {
                Observe(o, outcome) => (evaluate(&p, &o, &sc.policy), o.now, outcome, Some(o)),
                Complete(now, outcome) => {
                    let r = complete(&p, now).unwrap_or_else(|e| panic!("{ctx}: {e}"));
                    (r, now, outcome, None)
                }
            };
            let t = match (outcome, result) {
                (Outcome::Unchanged, None) => continue,
                (Outcome::Unchanged, Some(t)) => {
                    panic!("{ctx}: expected no change, got {t:#?}")
                }
                (Outcome::Changed { .. }, None) => panic!("{ctx}: expected a change, got none"),
                (
                    Outcome::Changed {
                        status,
                        received,
                        confirmations,
                        flags,
                        events,
                    },
                    Some(t),
                ) => {
                    let q = &t.payment;
                    assert_eq!(q.status, status, "{ctx}: status");
                    assert_eq!(q.received_sat, received, "{ctx}: received_sat");
                    assert_eq!(q.confirmations, confirmations, "{ctx}: confirmations");
                    assert_eq!(q.flags.names().join(","), flags, "{ctx}: flags");
                    let got: Vec<(Status, Status, &str)> = t
                        .events
                        .iter()
                        .map(|e| (e.from.expect("from"), e.to, e.reason.as_str()))
                        .collect();
                    assert_eq!(got, events, "{ctx}: events");
                    t
                }
            };
            assert_eq!(t.payment.version, p.version + 1, "{ctx}: version");
            assert_eq!(t.payment.updated_at, now, "{ctx}: updated_at");
            assert!(t.events.iter().all(|e| e.at == now), "{ctx}: event time");
            if let Some(first) = t.events.first() {
                assert_eq!(first.from, Some(p.status), "{ctx}: first event from");
            }
            if let Some(last) = t.events.last() {
                assert_eq!(last.to, t.payment.status, "{ctx}: last event to");
            }
            // Evaluation is idempotent: the same observation again changes nothing.
            if let Some(o) = replay {
                assert_eq!(evaluate(&t.payment, &o, &sc.policy), None, "{ctx}: replay");
            }
            p = t.payment;
        }
    }
}

/// Apply an observation that must change the payment.
fn step(p: &Payment, o: Observation, policy: &Policy) -> Transition {
    evaluate(p, &o, policy).expect("a change")
}

#[test]
fn first_seen_and_confirmed_timestamps() {
    let p = step(
        &payment(),
        obs(2_000, 100, &[mempool("a", AMOUNT)]),
        &policy(1),
    )
    .payment;
    assert_eq!((p.first_seen_at, p.confirmed_at), (Some(2_000), None));
    let p = step(&p, obs(2_100, 101, &[mined("a", AMOUNT, 101)]), &policy(1)).payment;
    assert_eq!(
        (p.first_seen_at, p.confirmed_at),
        (Some(2_000), Some(2_100))
    );
    // Leaving confirmed clears confirmed_at; first_seen_at stays the first sighting.
    let p = step(&p, obs(2_200, 101, &[]), &policy(1)).payment;
    assert_eq!((p.first_seen_at, p.confirmed_at), (Some(2_000), None));
    let p = step(&p, obs(2_300, 102, &[mined("a", AMOUNT, 102)]), &policy(1)).payment;
    assert_eq!(
        (p.first_seen_at, p.confirmed_at),
        (Some(2_000), Some(2_300))
    );
    // Completing keeps confirmed_at.
    let p = complete(&p, 2_400).unwrap().unwrap().payment;
    assert_eq!(p.confirmed_at, Some(2_300));
}

#[test]
fn event_txids_name_what_moved() {
    let p = step(
        &payment(),
        obs(2_000, 100, &[mempool("a", 4_000)]),
        &policy(1),
    );
    assert_eq!(p.events[0].txids, ["a"]);
    let p = step(
        &p.payment,
        obs(2_100, 100, &[mempool("a", 4_000), mempool("b", 6_000)]),
        &policy(1),
    );
    assert_eq!(p.events[0].txids, ["b"]);
    // A replacement (a fee bump): the vanished txid first, then the new one.
    let p = step(
        &p.payment,
        obs(2_200, 100, &[mempool("b", 6_000), mempool("c", 4_000)]),
        &policy(1),
    );
    assert_eq!(p.events[0].reason, REASON_REPLACED);
    assert!(!p.payment.flags.reorged, "a fee bump is not a reorg");
    assert_eq!(p.events[0].txids, ["a", "c"]);
    // Nothing moved (a reorg that only lowers depth): the transactions now counted.
    let p = step(
        &p.payment,
        obs(
            2_300,
            101,
            &[mined("b", 6_000, 100), mined("c", 4_000, 100)],
        ),
        &policy(1),
    );
    let p = step(
        &p.payment,
        obs(
            2_400,
            101,
            &[mined("b", 6_000, 101), mined("c", 4_000, 100)],
        ),
        &policy(1),
    );
    assert_eq!(p.events[0].reason, REASON_REORG);
    assert_eq!(p.events[0].txids, ["b", "c"]);
    // Expiry of an unpaid payment involves no transaction.
    let e = step(&payment(), obs(EXPIRES, 100, &[]), &policy(1));
    assert!(e.events[0].txids.is_empty());
}

#[test]
fn txids_keep_first_seen_order() {
    let p = step(
        &payment(),
        obs(2_000, 100, &[mempool("a", 1), mempool("b", 1)]),
        &policy(1),
    )
    .payment;
    let p = step(
        &p,
        obs(
            2_100,
            100,
            &[mempool("c", 1), mempool("b", 1), mempool("a", 1)],
        ),
        &policy(1),
    )
    .payment;
    assert_eq!(p.txids, ["a", "b", "c"]);
    let p = step(
        &p,
        obs(
            2_200,
            100,
            &[mempool("d", 1), mempool("c", 1), mempool("a", 1)],
        ),
        &policy(1),
    )
    .payment;
    assert_eq!(p.txids, ["a", "c", "d"]);
}

#[test]
fn raising_min_confirmations_does_not_downgrade_confirmed() {
    let p = step(
        &payment(),
        obs(2_000, 101, &[mined("a", AMOUNT, 100)]),
        &policy(1),
    )
    .payment;
    assert_eq!((p.status, p.confirmations), (Conf, 2));
    // The operator restarts with min_confirmations 6: no reorg happened, so it stays.
    assert_eq!(
        evaluate(&p, &obs(2_100, 101, &[mined("a", AMOUNT, 100)]), &policy(6)),
        None
    );
    let q = step(&p, obs(2_200, 102, &[mined("a", AMOUNT, 100)]), &policy(6)).payment;
    assert_eq!((q.status, q.confirmations), (Conf, 3));
}

#[test]
fn complete_only_from_confirmed() {
    for status in [Pend, Unconf, Exp, Under] {
        let p = Payment {
            status,
            ..payment()
        };
        assert_eq!(
            complete(&p, 2_000),
            Err(LifecycleError::NotConfirmed { status })
        );
    }
    let err = LifecycleError::NotConfirmed { status: Unconf };
    assert_eq!(
        err.to_string(),
        "payment is unconfirmed; only a confirmed payment can be completed"
    );
    let done = Payment {
        status: Done,
        ..payment()
    };
    assert_eq!(complete(&done, 2_000), Ok(None));
    let p = Payment {
        status: Conf,
        txids: vec!["a".into()],
        ..payment()
    };
    let t = complete(&p, 2_000).unwrap().unwrap();
    assert_eq!(
        (t.payment.status, t.payment.version, t.payment.updated_at),
        (Done, 2, 2_000)
    );
    assert_eq!(t.events[0].txids, ["a"]);
}

#[test]
fn created_event_opens_history() {
    let e = created_event(&payment());
    assert_eq!(
        e,
        Event {
            at: CREATED,
            from: None,
            to: Pend,
            reason: "created".into(),
            txids: vec![]
        }
    );
}

#[test]
fn huge_values_saturate_instead_of_overflowing() {
    let p = Payment {
        amount_sat: u64::MAX,
        ..payment()
    };
    let t = step(
        &p,
        obs(
            2_000,
            100,
            &[mined("a", u64::MAX, 100), mined("b", u64::MAX, 100)],
        ),
        &policy(1),
    );
    assert_eq!((t.payment.received_sat, t.payment.status), (u64::MAX, Conf));
    let deep = step(
        &payment(),
        obs(2_000, u32::MAX, &[mined("a", AMOUNT, 0)]),
        &policy(1),
    );
    assert_eq!(deep.payment.confirmations, u32::MAX);
}
