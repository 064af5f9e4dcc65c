//! The payment lifecycle end to end: a real ElectrumX in front of the devnet, the real
//! daemon, and only subscriptions to explain fast detection (ELECTRUM_CHECK_INTERVAL=60 s).

mod common;

use std::time::{Duration, Instant};

use common::appliance::Appliance;
use common::devnet::Devnet;
use serde_json::Value;

fn start() -> (Devnet, tempfile::TempDir, Appliance) {
    Appliance::on_fresh_devnet()
}

fn status(p: &Value) -> &str {
    p["status"].as_str().unwrap_or("")
}

fn flags(p: &Value) -> Vec<&str> {
    p["flags"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f.as_str())
        .collect()
}

#[test]
fn paid_payment_goes_unconfirmed_then_confirmed_then_completed() {
    let (devnet, _dir, app) = start();
    let p = app.create_payment(50_000, "order-1", None);
    let id = p["id"].as_str().unwrap();
    assert_eq!(status(&p), "pending");
    assert!(p["bip21"].as_str().unwrap().starts_with(&format!(
        "bitcoin:{}?amount=0.0005",
        p["address"].as_str().unwrap()
    )));

    let txid = devnet.pay(p["address"].as_str().unwrap(), 50_000);
    let paid_at = Instant::now();
    let u = app.wait_payment(id, Duration::from_secs(2), "unconfirmed within 2 s", |v| {
        status(v) == "unconfirmed"
    });
    eprintln!("detected in {:?}", paid_at.elapsed());
    assert_eq!(u["received_sat"], 50_000);
    assert_eq!(u["confirmations"], 0);
    assert_eq!(u["txids"], serde_json::json!([txid]));

    // Acknowledging before confirmation is refused: the money is not safe yet.
    let (code, body) = app.post(&format!("/api/payments/{id}/complete"), &Value::Null);
    assert_eq!(code, 409, "{body}");
    assert_eq!(body["error"]["code"], "conflict");

    devnet.mine(1);
    let one = app.wait_payment(id, Duration::from_secs(5), "1 confirmation", |v| {
        v["confirmations"] == 1
    });
    assert_eq!(status(&one), "unconfirmed", "min_confirmations is 2");
    devnet.mine(1);
    let c = app.wait_payment(id, Duration::from_secs(5), "confirmed", |v| {
        status(v) == "confirmed"
    });
    assert_eq!(c["confirmations"], 2);

    let (code, done) = app.post(&format!("/api/payments/{id}/complete"), &Value::Null);
    assert_eq!(code, 200, "{done}");
    assert_eq!(status(&done), "completed");
    // Completing again is a safe retry.
    let (code, again) = app.post(&format!("/api/payments/{id}/complete"), &Value::Null);
    assert_eq!((code, status(&again)), (200, "completed"));

    let (_, full) = app.get(&format!("/api/payments/{id}"));
    let path: Vec<_> = full["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["to"].as_str().unwrap())
        .collect();
    assert_eq!(path, ["pending", "unconfirmed", "confirmed", "completed"]);
    assert!(flags(&full).is_empty());
}

#[test]
fn partial_overpaid_and_late_payments_are_flagged_and_kept() {
    let (devnet, _dir, app) = start();
    let partial = app.create_payment(100_000, "partial", Some(4));
    let over = app.create_payment(10_000, "over", None);
    let late = app.create_payment(20_000, "late", Some(2));
    let pid = partial["id"].as_str().unwrap();

    devnet.pay(partial["address"].as_str().unwrap(), 40_000);
    let p = app.wait_payment(pid, Duration::from_secs(3), "partial counted", |v| {
        v["received_sat"] == 40_000
    });
    assert_eq!(status(&p), "pending", "a partial payment stays pending");

    devnet.pay(over["address"].as_str().unwrap(), 15_000);
    let o = app.wait_payment(
        over["id"].as_str().unwrap(),
        Duration::from_secs(3),
        "overpaid seen",
        |v| status(v) == "unconfirmed",
    );
    assert_eq!(o["received_sat"], 15_000);
    assert_eq!(flags(&o), ["overpaid"]);

    let l = app.wait_payment(
        late["id"].as_str().unwrap(),
        Duration::from_secs(6),
        "expired",
        |v| status(v) == "expired",
    );
    assert_eq!(l["received_sat"], 0);
    let p = app.wait_payment(pid, Duration::from_secs(6), "underpaid at expiry", |v| {
        status(v) == "underpaid"
    });
    assert_eq!(p["received_sat"], 40_000);

    // Money after expiry is tracked to confirmation and flagged, never dropped.
    devnet.pay(late["address"].as_str().unwrap(), 20_000);
    let l = app.wait_payment(
        late["id"].as_str().unwrap(),
        Duration::from_secs(3),
        "late payment seen",
        |v| status(v) == "unconfirmed",
    );
    assert!(flags(&l).contains(&"late_payment"), "{l}");
    devnet.mine(2);
    let l = app.wait_payment(
        late["id"].as_str().unwrap(),
        Duration::from_secs(5),
        "late payment confirmed",
        |v| status(v) == "confirmed",
    );
    assert!(flags(&l).contains(&"late_payment"));

    let (_, listed) = app.get("/api/payments?status=underpaid");
    let ids: Vec<_> = listed["payments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [pid]);
}
