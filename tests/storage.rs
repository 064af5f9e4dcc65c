//! The database file survives what a box meets: a kill at any moment of the first start.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::appliance::{Appliance, binary, offline_env};

#[test]
fn a_kill_9_during_the_first_start_never_leaves_an_unopenable_file() {
    // Kill points spread over the first start: before, during and after the database is
    // created (it takes a few milliseconds here).
    for round in 0..12u64 {
        let dir = tempfile::tempdir().unwrap();
        let env = offline_env(dir.path());
        std::fs::write(dir.path().join("config.toml"), "").unwrap();
        let mut child = Command::new(binary())
            .arg("--config")
            .arg(dir.path().join("config.toml"))
            .arg("run")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(round * round * 3));
        child.kill().unwrap();
        child.wait().unwrap();

        // Whatever the kill left, the next start serves and can take a payment record.
        let app = Appliance::start(dir.path(), env);
        let (code, v) = app.get("/api/status");
        assert_eq!(code, 200, "round {round}: {v}");
        let leftovers: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".creating"))
            .collect();
        assert!(leftovers.is_empty(), "round {round}: {leftovers:?}");
    }
}

/// A real tmpfs of our own (in a mount namespace the test makes) is filled on purpose.
#[test]
fn a_full_disk_refuses_creates_clearly_loses_nothing_and_recovers_by_itself() {
    use common::tmpfs::Tmpfs;
    let mut devnet = common::devnet::Devnet::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let disk = Tmpfs::mount(&data, "24m");
    let mut env = common::appliance::base_env(
        dir.path(),
        devnet.electrum_host(),
        devnet.electrum_tcp_port(),
        false,
    );
    env.retain(|(k, _)| k != "ELECTRUM_WALLET_PATH");
    env.push((
        "ELECTRUM_WALLET_PATH".into(),
        data.join("snakkaz-pay.redb").display().to_string(),
    ));
    let mut app = Appliance::start_with_prefix(dir.path(), env, disk.nsenter());
    app.wait_status(Duration::from_secs(20), "Electrum connection", |s| {
        s["electrum"]["connected"] == true
    });
    assert!(
        disk.path("snakkaz-pay.redb").exists(),
        "the database is on the tmpfs"
    );
    let paid = app.create_payment(30_000, "before-the-disk-filled", None);
    let id = paid["id"].as_str().unwrap().to_owned();

    // The disk fills up. A create is refused with a clear error and records nothing.
    let filler = disk.fill();
    // The database file has free pages of its own; creates use them up first.
    let (mut code, mut err) = (0, serde_json::Value::Null);
    for n in 0..2000 {
        let body =
            serde_json::json!({"amount_sat": 10_000, "reference": format!("while-full-{n}")});
        (code, err) = app.post("/api/payments", &body);
        if code != 201 {
            break;
        }
    }
    assert_eq!(code, 507, "{err}");
    let text = err.to_string();
    assert!(text.contains("full") && text.contains("retry"), "{text}");

    // Money arrives meanwhile: its commit may fail too (when it needs new pages), and the
    // change is then kept for the next one.
    devnet.pay(paid["address"].as_str().unwrap(), 30_000);
    std::thread::sleep(Duration::from_secs(3));
    let pid = app.pid().unwrap();
    assert!(
        std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the daemon is still running"
    );

    // Space returns: without a restart, creates work again and the payment is seen.
    std::fs::remove_file(&filler).unwrap();
    let v = app.wait_payment(&id, Duration::from_secs(60), "the payment recorded", |v| {
        v["status"] == "unconfirmed"
    });
    assert_eq!(v["received_sat"], 30_000);
    let again = app.create_payment(10_000, "after-space-returned-x", None);
    assert_eq!(again["status"], "pending");
    let st = app.wait_status(Duration::from_secs(10), "healthy again", |s| {
        !s["problems"].to_string().contains("database")
    });
    assert_eq!(st["electrum"]["connected"], true);

    // Nothing of the wallet was lost: after a kill -9 and a restart with the server gone,
    // the wallet still holds the transaction from its own database.
    devnet.stop_electrumx();
    app.kill9();
    app.restart();
    let st = app.wait_status(Duration::from_secs(20), "wallet from the database", |s| {
        s["wallet"]["unconfirmed_sat"] == 30_000
    });
    assert_eq!(st["payments"]["unconfirmed"], 1, "{st}");
}

/// A fault injector of ours, compiled into debug builds only
/// (`SNAKKAZ_PAY_FAULT_FAIL_UPDATE_COMMITS=3`): the first three commits of payment
/// updates with wallet changes fail.
#[test]
fn failed_commits_lose_no_wallet_change() {
    let (mut devnet, _dir, mut app) =
        Appliance::on_fresh_devnet_with(&[("SNAKKAZ_PAY_FAULT_FAIL_UPDATE_COMMITS", "3")]);
    let p = app.create_payment(27_000, "through-failed-commits", None);
    let id = p["id"].as_str().unwrap().to_owned();
    devnet.pay(p["address"].as_str().unwrap(), 27_000);
    let v = app.wait_payment(&id, Duration::from_secs(60), "recorded at last", |v| {
        v["status"] == "unconfirmed"
    });
    assert_eq!(v["received_sat"], 27_000);
    let failures = app
        .log()
        .matches("committing payment updates failed")
        .count();
    assert!(
        failures >= 3,
        "{failures} failed commits:\n{}",
        app.log_tail()
    );

    // What the failed commits carried reached the file: a restart without any server
    // finds the transaction in the wallet's own database.
    devnet.stop_electrumx();
    app.kill9();
    app.restart();
    let st = app.wait_status(
        Duration::from_secs(20),
        "the wallet from the database",
        |s| s["wallet"]["unconfirmed_sat"] == 27_000,
    );
    assert_eq!(st["payments"]["unconfirmed"], 1, "{st}");
}
