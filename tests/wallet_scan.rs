//! An xpub used before (by the Electrum stack it replaces) is scanned at wallet creation:
//! the appliance never hands out an address that already has history.

mod common;

use std::time::Duration;

use bdk_wallet::bitcoin::Network;
use bdk_wallet::{KeychainKind, Wallet};
use common::appliance::{Appliance, DESCRIPTOR};

/// Receive address `i` of the test descriptor, as any wallet derives it.
fn addr(i: u32) -> String {
    Wallet::create_single(DESCRIPTOR)
        .network(Network::Regtest)
        .create_wallet_no_persist()
        .expect("wallet")
        .peek_address(KeychainKind::External, i)
        .address
        .to_string()
}

#[test]
fn a_fresh_appliance_on_a_used_xpub_hands_out_only_unused_addresses() {
    let devnet = common::devnet::Devnet::start();
    // Paid under the old stack, before this appliance existed: one confirmed, one in
    // the mempool, and index 5 after a gap.
    devnet.pay(&addr(0), 111_000);
    devnet.pay(&addr(5), 55_000);
    devnet.mine(1);
    devnet.pay(&addr(1), 222_000);

    let dir = tempfile::tempdir().unwrap();
    let env = common::appliance::base_env(
        dir.path(),
        devnet.electrum_host(),
        devnet.electrum_tcp_port(),
        false,
    );
    let app = Appliance::start(dir.path(), env);
    let first = app.create_payment(50_000, "after-migration-1", None);
    let second = app.create_payment(60_000, "after-migration-2", None);
    assert_eq!(
        first["address"],
        addr(6),
        "the first address after every used one"
    );
    assert_eq!(second["address"], addr(7));
    for i in 0..=5 {
        assert_ne!(first["address"], addr(i));
    }

    // None of the old money is credited to the new payments.
    std::thread::sleep(Duration::from_secs(2));
    for p in [&first, &second] {
        let (_, v) = app.get(&format!("/api/payments/{}", p["id"].as_str().unwrap()));
        assert_eq!(v["status"], "pending", "{v}");
        assert_eq!(v["received_sat"], 0, "{v}");
    }
    // The old money is in the wallet's balance, where the operator sees it.
    let st = app.wait_status(Duration::from_secs(10), "balances", |s| {
        s["wallet"]["confirmed_sat"] == 166_000 && s["wallet"]["unconfirmed_sat"] == 222_000
    });
    assert_eq!(st["wallet"]["addresses_in_use"], 8, "{st}");

    // What the scan found is history: no receipt for it, not even the one that was in
    // the mempool then and confirms now.
    devnet.mine(1);
    std::thread::sleep(Duration::from_secs(2));
    let (_, r) = app.get("/api/receipts");
    assert_eq!(r["receipts"], serde_json::json!([]), "{r}");
    // New money to an address of the old stack is an unattributed receipt.
    let late = devnet.pay(&addr(0), 33_000);
    let st = app.wait_status(Duration::from_secs(30), "the receipt", |s| {
        s["receipts"]["unassigned"] == 1
    });
    assert_eq!(st["receipts"]["unassigned_sat"], 33_000, "{st}");
    let (_, r) = app.get("/api/receipts");
    assert_eq!(r["receipts"][0]["txid"], late.as_str(), "{r}");
    assert_eq!(r["receipts"][0]["cause"], "no_payment", "{r}");

    // A restart does not scan again, and keeps handing out fresh addresses.
    let mut app = app;
    assert_eq!(app.stop(), Some(0));
    app.restart();
    let third = app.create_payment(70_000, "after-restart", None);
    assert_eq!(third["address"], addr(8));
    assert!(
        app.log()
            .matches("scanned the chain for addresses used before")
            .count()
            == 1,
        "one scan, at creation"
    );
}

#[test]
fn an_address_used_beyond_the_stop_gap_never_credits_its_old_money_to_a_payment() {
    let devnet = common::devnet::Devnet::start();
    // Index 3 was paid long ago, beyond a stop gap of 2 unused addresses.
    devnet.pay(&addr(3), 88_000);
    devnet.mine(1);
    let dir = tempfile::tempdir().unwrap();
    let mut env = common::appliance::base_env(
        dir.path(),
        devnet.electrum_host(),
        devnet.electrum_tcp_port(),
        false,
    );
    env.push(("SNAKKAZ_PAY_SCAN_STOP_GAP".into(), "2".into()));
    let app = Appliance::start(dir.path(), env);
    let ps: Vec<_> = (0..4)
        .map(|n| app.create_payment(50_000, &format!("beyond-gap-{n}"), None))
        .collect();
    assert_eq!(ps[3]["address"], addr(3), "the scan could not know");
    std::thread::sleep(Duration::from_secs(3));
    let id = ps[3]["id"].as_str().unwrap();
    let (_, v) = app.get(&format!("/api/payments/{id}"));
    assert_eq!(v["status"], "pending", "{v}");
    assert_eq!(v["received_sat"], 0, "old money is not this payment's: {v}");
    assert!(
        app.log()
            .contains("had money before the payment was created")
    );
    // The customer's own payment counts as usual.
    devnet.pay(&addr(3), 50_000);
    let v = app.wait_payment(id, Duration::from_secs(30), "paid", |v| {
        v["status"] == "unconfirmed"
    });
    assert_eq!(v["received_sat"], 50_000, "{v}");
}

#[test]
fn init_says_what_the_scan_found_on_the_configured_server() {
    let devnet = common::devnet::Devnet::start();
    devnet.pay(&addr(4), 12_000);
    devnet.mine(1);
    let dir = tempfile::tempdir().unwrap();
    let port = devnet.electrum_tcp_port().to_string();
    let out = std::process::Command::new(common::appliance::binary())
        .arg("--config")
        .arg(dir.path().join("config.toml"))
        .args([
            "--json",
            "init",
            "--descriptor",
            DESCRIPTOR,
            "--network",
            "regtest",
            "--electrum-host",
            "127.0.0.1",
            "--electrum-port",
            &port,
            "--electrum-protocol",
            "tcp",
        ])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["scan"]["last_used_receive_index"], 4, "{v}");
    assert_eq!(v["scan"]["transactions"], 1, "{v}");
    assert!(
        v["scan"]["summary"]
            .as_str()
            .unwrap()
            .contains("payments will start at receive index 5"),
        "{v}"
    );
}
