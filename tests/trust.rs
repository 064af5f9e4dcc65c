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

#[test]
fn a_completed_payment_whose_money_leaves_the_chain_stays_a_problem_until_acknowledged() {
    let (devnet, _dir, app) = Appliance::on_fresh_devnet();
    let p = app.create_payment(45_000, "delivered", None);
    let id = p["id"].as_str().unwrap().to_owned();
    let txid = devnet.pay(p["address"].as_str().unwrap(), 45_000);
    devnet.mine(2);
    app.wait_payment(&id, Duration::from_secs(10), "confirmed", |v| {
        status(v) == "confirmed"
    });
    let (code, _) = app.post(
        &format!("/api/payments/{id}/complete"),
        &serde_json::json!({}),
    );
    assert_eq!(code, 200);

    // The chat application delivered; then the paying transaction leaves the chain.
    devnet.reorg(2, &[txid.as_str()]);
    let lost = app.wait_payment(&id, Duration::from_secs(20), "the loss", |v| {
        v["flags"].to_string().contains("money_lost")
    });
    assert_eq!(
        status(&lost),
        "completed",
        "the status stays: it was delivered"
    );
    assert_eq!(lost["received_sat"], 0);
    let st = app.wait_status(Duration::from_secs(5), "the problem", |s| {
        s["healthy"] == false
    });
    assert!(
        st["problems"].to_string().contains("lost their money"),
        "{st}"
    );
    let alerts = common::wait_until(Duration::from_secs(10), "the alert", || {
        let (_, a) = app.get("/api/alerts");
        a.to_string().contains("SnakkazPayMoneyLost").then_some(a)
    });
    assert!(alerts.to_string().contains("critical"), "{alerts}");

    // It does not go away by itself: a restart keeps it.
    std::thread::sleep(Duration::from_secs(2));
    let (_, again) = app.get(&format!("/api/payments/{id}"));
    assert!(again["flags"].to_string().contains("money_lost"));

    // The API token cannot clear it; the admin acknowledges after checking.
    let path = format!("/api/admin/payments/{id}/acknowledge-loss");
    let (code, _) = app.request("POST", &path, Some(common::appliance::API_TOKEN), None);
    assert_eq!(code, 401);
    let (code, v) = app.request("POST", &path, Some(common::appliance::ADMIN_TOKEN), None);
    assert_eq!(code, 200, "{v}");
    let (_, after) = app.get(&format!("/api/payments/{id}"));
    assert!(
        !after["flags"].to_string().contains("money_lost"),
        "{after}"
    );
    assert!(
        after["flags"].to_string().contains("reorged"),
        "history stays: {after}"
    );
    assert!(
        after["events"].to_string().contains("loss acknowledged"),
        "{after}"
    );
    app.wait_status(Duration::from_secs(10), "healthy again", |s| {
        s["healthy"] == true
    });
}

use common::lying_proxy::{Lie, LyingProxy};

/// A fresh devnet, our rewriting proxy in front of its ElectrumX (honest for now) and a
/// daemon connected through it.
fn behind_lying_proxy() -> (
    common::devnet::Devnet,
    LyingProxy,
    tempfile::TempDir,
    Appliance,
) {
    let devnet = common::devnet::Devnet::start();
    let proxy = LyingProxy::start(devnet.electrum_tcp_port());
    let dir = tempfile::tempdir().unwrap();
    let env = common::appliance::base_env(dir.path(), "127.0.0.1", proxy.port, false);
    let app = Appliance::start(dir.path(), env);
    app.wait_status(Duration::from_secs(20), "Electrum connection", |s| {
        s["electrum"]["connected"] == true
    });
    (devnet, proxy, dir, app)
}

/// A rewriting proxy of ours (`common::lying_proxy`) stands in for a lying server or a
/// man in the middle: no real ElectrumX lies on demand.
#[test]
fn a_server_that_rewrites_a_header_or_a_merkle_proof_cannot_confirm_a_payment() {
    let (devnet, proxy, _dir, app) = behind_lying_proxy();
    for (round, lie) in [Lie::Header, Lie::Merkle].into_iter().enumerate() {
        let p = app.create_payment(70_000, &format!("lied-about-{round}"), None);
        let id = p["id"].as_str().unwrap().to_owned();
        devnet.pay(p["address"].as_str().unwrap(), 70_000);
        app.wait_payment(&id, Duration::from_secs(30), "seen in the mempool", |v| {
            status(v) == "unconfirmed"
        });

        // The block with the payment (and one on top, for the two confirmations asked
        // for) arrives through a proxy that lies about it.
        proxy.lie(lie, devnet.tip_height() + 1);
        devnet.mine(2);
        let st = app.wait_status(Duration::from_secs(60), "the lying server dropped", |s| {
            s["electrum"]["connected"] == false
                && s["electrum"]["last_error"]
                    .as_str()
                    .is_some_and(|e| e.contains("not using this server"))
        });
        assert_eq!(st["healthy"], false, "{st}");
        std::thread::sleep(Duration::from_secs(3));
        let (_, during) = app.get(&format!("/api/payments/{id}"));
        assert_eq!(status(&during), "unconfirmed", "{lie:?}: {during}");
        assert!(
            proxy.rewritten.load(std::sync::atomic::Ordering::SeqCst) > 0,
            "the proxy did lie"
        );
        assert!(
            app.log().contains("not using this server"),
            "{lie:?}: the refusal is logged:\n{}",
            app.log_tail()
        );

        // Honest again: the same payment confirms with verified data.
        proxy.lie(Lie::Honest, 0);
        let after = app.wait_payment(&id, Duration::from_secs(90), "confirmed", |v| {
            status(v) == "confirmed"
        });
        assert_eq!(after["received_sat"], 70_000);
    }
}

/// Our proxy answers transactions and histories with garbage, or every script's status
/// as `null` (no real server does either on demand).
#[test]
fn a_server_that_answers_garbage_or_null_statuses_neither_crashes_nor_spins_the_daemon() {
    let (devnet, proxy, _dir, app) = behind_lying_proxy();
    let p = app.create_payment(20_000, "garbage-in", None);
    let id = p["id"].as_str().unwrap().to_owned();
    proxy.lie(Lie::Garbage, 0);
    devnet.pay(p["address"].as_str().unwrap(), 20_000);
    app.wait_status(Duration::from_secs(30), "the garbage refused", |s| {
        s["electrum"]["last_error"].is_string()
    });
    // CPU used over a few seconds of garbage: backoff, not a busy loop.
    let cpu = |pid: u32| -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap()
            .split_whitespace()
            .collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    };
    let pid = app.pid().unwrap();
    let ticks = 100; // USER_HZ
    let before = cpu(pid);
    std::thread::sleep(Duration::from_secs(5));
    let used = cpu(pid) - before;
    assert!(
        used < 5 * ticks / 2,
        "{used} ticks of CPU in 5 s: the daemon spins"
    );
    let (code, v) = app.get(&format!("/api/payments/{id}"));
    assert_eq!(code, 200, "still serving");
    assert_eq!(status(&v), "pending", "garbage never counts as money: {v}");

    proxy.lie(Lie::Honest, 0);
    app.wait_payment(
        &id,
        Duration::from_secs(90),
        "seen once the server is sane",
        |v| status(v) == "unconfirmed",
    );

    // Null statuses: every script claims no history, notifications included.
    let q = app.create_payment(21_000, "null-status", None);
    let qid = q["id"].as_str().unwrap().to_owned();
    proxy.lie(Lie::NullStatus, 0);
    devnet.pay(q["address"].as_str().unwrap(), 21_000);
    let before = cpu(pid);
    std::thread::sleep(Duration::from_secs(5));
    let used = cpu(pid) - before;
    assert!(
        used < 5 * ticks / 2,
        "{used} ticks of CPU in 5 s under null statuses"
    );
    assert_eq!(app.pid(), Some(pid), "no crash");
    proxy.lie(Lie::Honest, 0);
    app.wait_payment(
        &qid,
        Duration::from_secs(120),
        "seen once statuses are real",
        |v| status(v) == "unconfirmed",
    );
}

/// The crash is a fault injector of ours, compiled into debug builds only
/// (`SNAKKAZ_PAY_FAULT_PANIC_ON_SYNC`): the chain thread panics on the first admin resync.
#[test]
fn a_crashed_chain_thread_is_seen_and_restarted() {
    let (devnet, _dir, app) =
        Appliance::on_fresh_devnet_with(&[("SNAKKAZ_PAY_FAULT_PANIC_ON_SYNC", "1")]);
    let (code, _) = app.request(
        "POST",
        "/api/admin/sync",
        Some(common::appliance::ADMIN_TOKEN),
        Some(b"{}"),
    );
    assert_eq!(code, 202);
    let st = app.wait_status(Duration::from_secs(20), "the restart", |s| {
        s["electrum"]["thread_restarts"] == 1 && s["electrum"]["connected"] == true
    });
    assert_eq!(st["healthy"], true, "{st}");
    assert!(
        app.log()
            .contains("the chain thread stopped unexpectedly; restarting it")
    );
    // Detection works again.
    let p = app.create_payment(15_000, "after-the-crash", None);
    devnet.pay(p["address"].as_str().unwrap(), 15_000);
    app.wait_payment(
        p["id"].as_str().unwrap(),
        Duration::from_secs(30),
        "detected after the restart",
        |v| status(v) == "unconfirmed",
    );
}

/// Same fault injector, for the processor (`SNAKKAZ_PAY_FAULT_PROCESSOR_PANIC_ON_SYNC`).
#[test]
fn a_crashed_processor_is_started_again_by_the_daemon() {
    let (devnet, _dir, app) =
        Appliance::on_fresh_devnet_with(&[("SNAKKAZ_PAY_FAULT_PROCESSOR_PANIC_ON_SYNC", "1")]);
    let p = app.create_payment(16_000, "across-a-processor-crash", None);
    let (code, _) = app.request(
        "POST",
        "/api/admin/sync",
        Some(common::appliance::ADMIN_TOKEN),
        Some(b"{}"),
    );
    assert_eq!(code, 202);
    let (code, audit, _) = app.cli(&["audit", "--action", "processor.restart"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut audit = (code, audit);
    while !audit.1.contains("stopped unexpectedly") && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        let (c, out, _) = app.cli(&["audit", "--action", "processor.restart"]);
        audit = (c, out);
    }
    assert!(audit.1.contains("stopped unexpectedly"), "{}", audit.1);
    devnet.pay(p["address"].as_str().unwrap(), 16_000);
    app.wait_payment(
        p["id"].as_str().unwrap(),
        Duration::from_secs(30),
        "detected by the new processor",
        |v| status(v) == "unconfirmed",
    );
    app.wait_status(Duration::from_secs(10), "one connection thread", |s| {
        s["electrum"]["connected"] == true
    });
}
