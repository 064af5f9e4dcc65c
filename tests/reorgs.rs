//! Reorganisations and double spends move payments back down, with a recorded event.

mod common;

use std::time::Duration;

use common::appliance::Appliance;
use common::devnet::Devnet;
use serde_json::Value;

fn start() -> (Devnet, tempfile::TempDir, Appliance) {
    Appliance::on_fresh_devnet()
}

fn status(p: &Value) -> &str {
    p["status"].as_str().unwrap_or("")
}

fn last_event(p: &Value) -> Value {
    p["events"].as_array().unwrap().last().unwrap().clone()
}

#[test]
fn reorgs_move_confirmed_payments_back_and_forth() {
    let (devnet, _dir, app) = start();
    let kept = app.create_payment(30_000, "kept", None);
    let dropped = app.create_payment(40_000, "dropped", None);
    let kept_id = kept["id"].as_str().unwrap();
    let dropped_id = dropped["id"].as_str().unwrap();
    devnet.pay(kept["address"].as_str().unwrap(), 30_000);
    let drop_txid = devnet.pay(dropped["address"].as_str().unwrap(), 40_000);
    devnet.mine(2);
    for id in [kept_id, dropped_id] {
        app.wait_payment(id, Duration::from_secs(5), "confirmed", |v| {
            status(v) == "confirmed"
        });
    }

    // The block holding both is replaced; one transaction returns to the mempool, the other is gone.
    devnet.reorg(2, &[drop_txid.as_str()]);
    let k = app.wait_payment(
        kept_id,
        Duration::from_secs(5),
        "back to unconfirmed",
        |v| status(v) == "unconfirmed",
    );
    assert_eq!(k["confirmations"], 0);
    assert_eq!(last_event(&k)["from"], "confirmed");
    let d = app.wait_payment(dropped_id, Duration::from_secs(5), "back to pending", |v| {
        status(v) == "pending"
    });
    assert_eq!(d["received_sat"], 0);
    let ev = last_event(&d);
    assert_eq!(
        (ev["from"].as_str(), ev["to"].as_str()),
        (Some("confirmed"), Some("pending"))
    );
    assert_eq!(ev["txids"], serde_json::json!([drop_txid]));
    assert!(
        d["flags"]
            .as_array()
            .unwrap()
            .contains(&Value::from("reorged"))
    );

    // The surviving transaction confirms again on the new chain.
    devnet.mine(2);
    app.wait_payment(kept_id, Duration::from_secs(5), "confirmed again", |v| {
        status(v) == "confirmed"
    });
}

#[test]
fn rbf_double_spend_returns_the_payment_to_pending() {
    let (devnet, _dir, app) = start();
    let p = app.create_payment(25_000, "rbf", None);
    let id = p["id"].as_str().unwrap();
    let txid = devnet.pay(p["address"].as_str().unwrap(), 25_000);
    app.wait_payment(id, Duration::from_secs(3), "unconfirmed", |v| {
        status(v) == "unconfirmed"
    });

    let replacement = devnet.replace(&txid, None);
    assert_ne!(replacement, txid);
    let back = app.wait_payment(id, Duration::from_secs(5), "back to pending", |v| {
        status(v) == "pending"
    });
    assert_eq!(back["received_sat"], 0);
    assert_eq!(back["txids"], serde_json::json!([]));
    let ev = last_event(&back);
    assert_eq!(
        (ev["from"].as_str(), ev["to"].as_str()),
        (Some("unconfirmed"), Some("pending"))
    );

    // Confirming the replacement does not bring it back: the money went elsewhere.
    devnet.mine(1);
    std::thread::sleep(Duration::from_millis(500));
    let (_, after) = app.get(&format!("/api/payments/{id}"));
    assert_eq!(status(&after), "pending");
}

#[test]
fn a_fee_bump_that_still_pays_the_address_is_a_replacement_not_a_reorg() {
    let (devnet, _dir, app) = start();
    let p = app.create_payment(25_000, "bump", None);
    let id = p["id"].as_str().unwrap();
    let address = p["address"].as_str().unwrap();
    let txid = devnet.pay(address, 25_000);
    app.wait_payment(id, Duration::from_secs(3), "unconfirmed", |v| {
        status(v) == "unconfirmed"
    });

    // The customer's wallet bumps the fee: same coins, same address, same amount.
    let bumped = devnet.replace(&txid, Some(address));
    let after = app.wait_payment(id, Duration::from_secs(5), "the replacement", |v| {
        v["txids"] == serde_json::json!([bumped])
    });
    assert_eq!(status(&after), "unconfirmed");
    assert_eq!(after["received_sat"], 25_000);
    assert_eq!(
        after["flags"],
        serde_json::json!([]),
        "not flagged as a reorg"
    );
    assert_eq!(last_event(&after)["reason"], "replaced (fee bump)");

    devnet.mine(2);
    let done = app.wait_payment(id, Duration::from_secs(5), "confirmed", |v| {
        status(v) == "confirmed"
    });
    assert_eq!(done["flags"], serde_json::json!([]));
}
