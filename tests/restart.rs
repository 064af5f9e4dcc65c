//! Restarts, crashes and a vanished Electrum server lose nothing.

mod common;

use std::collections::HashSet;
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

#[test]
fn graceful_restart_keeps_everything() {
    let (devnet, _dir, mut app) = start();
    let a = app.create_payment(10_000, "a", None);
    let b = app.create_payment(20_000, "b", None);
    devnet.pay(a["address"].as_str().unwrap(), 10_000);
    devnet.mine(2);
    app.wait_payment(
        a["id"].as_str().unwrap(),
        Duration::from_secs(5),
        "confirmed",
        |v| status(v) == "confirmed",
    );

    let t = Instant::now();
    assert_eq!(
        app.stop(),
        Some(0),
        "SIGTERM must exit 0:\n{}",
        app.log_tail()
    );
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "stop took {:?}",
        t.elapsed()
    );
    app.restart();

    let (_, a2) = app.get(&format!("/api/payments/{}", a["id"].as_str().unwrap()));
    assert_eq!(status(&a2), "confirmed");
    assert_eq!(a2["received_sat"], 10_000);
    let (_, b2) = app.get(&format!("/api/payments/{}", b["id"].as_str().unwrap()));
    assert_eq!(status(&b2), "pending");
    let c = app.create_payment(30_000, "c", None);
    assert_ne!(c["address"], a["address"]);
    assert_ne!(c["address"], b["address"]);

    // Payments still open before the restart are watched again after it.
    devnet.pay(b["address"].as_str().unwrap(), 20_000);
    app.wait_payment(
        b["id"].as_str().unwrap(),
        Duration::from_secs(3),
        "paid after restart",
        |v| status(v) == "unconfirmed",
    );
}

#[test]
fn kill_9_right_after_201_loses_nothing_and_never_reuses_an_address() {
    let (devnet, _dir, mut app) = start();
    let mut seen = HashSet::new();
    let mut ids = Vec::new();
    for round in 0..3 {
        for i in 0..5 {
            let p = app.create_payment(1_000 + i, &format!("r{round}-{i}"), None);
            assert!(
                seen.insert(p["address"].as_str().unwrap().to_owned()),
                "address reused: {p}"
            );
            ids.push(p["id"].as_str().unwrap().to_owned());
        }
        // No grace: the process dies the moment the last 201 was read.
        app.kill9();
        app.restart();
        for id in &ids {
            let (code, p) = app.get(&format!("/api/payments/{id}"));
            assert_eq!(code, 200, "payment {id} lost after kill -9: {p}");
        }
    }
    // A payment created before the crash is still watched after it.
    let (_, first) = app.get(&format!("/api/payments/{}", ids[0]));
    devnet.pay(first["address"].as_str().unwrap(), 1_000);
    app.wait_payment(&ids[0], Duration::from_secs(3), "paid after crash", |v| {
        status(v) == "unconfirmed"
    });
}

#[test]
fn electrum_outage_is_caught_up_after_reconnect() {
    let (mut devnet, _dir, app) = start();
    let p = app.create_payment(12_345, "outage", None);
    let id = p["id"].as_str().unwrap();
    devnet.stop_electrumx();
    app.wait_status(Duration::from_secs(10), "disconnect noticed", |s| {
        s["electrum"]["connected"] == false
    });
    let (_, s) = app.get("/api/status");
    assert_eq!(s["healthy"], false);
    devnet.pay(p["address"].as_str().unwrap(), 12_345);
    devnet.mine(2);
    devnet.start_electrumx();
    // The check interval is 60 s: only the reconnect catch-up can explain this.
    app.wait_payment(
        id,
        Duration::from_secs(30),
        "caught up after reconnect",
        |v| status(v) == "confirmed",
    );
    let s = app.wait_status(Duration::from_secs(5), "reconnected", |s| {
        s["electrum"]["connected"] == true
    });
    assert!(s["electrum"]["reconnects"].as_u64().unwrap() >= 1);
}

#[test]
fn a_dead_primary_server_fails_over_to_the_next_one() {
    let devnet = Devnet::start();
    let dir = tempfile::tempdir().unwrap();
    // Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    let mut env = common::appliance::base_env(dir.path(), "127.0.0.1", 9, false);
    env.push((
        "SNAKKAZ_PAY_ELECTRUM_SERVERS".into(),
        devnet.electrum_tcp_url(),
    ));
    let app = Appliance::start(dir.path(), env);
    let s = app.wait_status(Duration::from_secs(20), "failover connection", |s| {
        s["electrum"]["connected"] == true
    });
    assert_eq!(s["electrum"]["server"], devnet.electrum_tcp_url().as_str());
    let p = app.create_payment(9_000, "failover", None);
    devnet.pay(p["address"].as_str().unwrap(), 9_000);
    app.wait_payment(
        p["id"].as_str().unwrap(),
        Duration::from_secs(3),
        "seen via the failover server",
        |v| status(v) == "unconfirmed",
    );
}
