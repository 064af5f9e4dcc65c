//! Payment state the operator can trust: expiry only on fresh data.

mod common;

use std::time::Duration;

use common::appliance::Appliance;

fn status(p: &serde_json::Value) -> &str {
    p["status"].as_str().unwrap_or("")
}

#[test]
fn a_payment_paid_on_time_during_a_server_outage_is_not_expired() {
    let (mut devnet, _dir, app) = Appliance::on_fresh_devnet();
    let p = app.create_payment(40_000, "paid-in-the-dark", Some(5));
    let id = p["id"].as_str().unwrap();

    // The server goes away; the customer pays on time; the expiry passes meanwhile.
    devnet.stop_electrumx();
    app.wait_status(Duration::from_secs(20), "Electrum lost", |s| {
        s["electrum"]["connected"] == false
    });
    devnet.pay(p["address"].as_str().unwrap(), 40_000);
    std::thread::sleep(Duration::from_secs(7));
    let (_, during) = app.get(&format!("/api/payments/{id}"));
    assert_eq!(
        status(&during),
        "pending",
        "no expiry without fresh data from the chain: {during}"
    );

    devnet.start_electrumx();
    let after = app.wait_payment(id, Duration::from_secs(60), "the payment seen", |v| {
        status(v) != "pending"
    });
    assert_eq!(status(&after), "unconfirmed", "{after}");
    assert_eq!(after["received_sat"], 40_000);
    let statuses: Vec<&str> = after["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["to"].as_str().unwrap())
        .collect();
    assert!(
        !statuses.contains(&"expired"),
        "never reported expired: {statuses:?}"
    );
}

#[test]
fn a_payment_paid_on_time_while_the_daemon_was_stopped_is_not_expired() {
    let (devnet, _dir, mut app) = Appliance::on_fresh_devnet();
    let p = app.create_payment(30_000, "paid-while-stopped", Some(3));
    let id = p["id"].as_str().unwrap().to_owned();
    assert_eq!(app.stop(), Some(0));
    devnet.pay(p["address"].as_str().unwrap(), 30_000);
    std::thread::sleep(Duration::from_secs(4));
    app.restart();
    let after = app.wait_payment(&id, Duration::from_secs(30), "the payment seen", |v| {
        status(v) != "pending"
    });
    assert_eq!(status(&after), "unconfirmed", "{after}");

    // An unpaid one does expire once fresh data says nothing came.
    let q = app.create_payment(30_000, "unpaid", Some(2));
    app.wait_payment(
        q["id"].as_str().unwrap(),
        Duration::from_secs(30),
        "expired",
        |v| status(v) == "expired",
    );
}
