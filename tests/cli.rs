//! The operator's commands: `init`, the daily `status` check and `payment ...`, run as
//! the real binary against the real daemon.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use common::appliance::{Appliance, DESCRIPTOR, binary};
use serde_json::Value;

#[test]
fn status_exit_code_follows_the_daemon_and_the_electrum_connection() {
    let (mut devnet, _dir, mut app) = Appliance::on_fresh_devnet();
    let (code, out, err) = app.cli(&["status"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("health:    OK"), "{out}");

    let (code, out, _) = app.cli(&["--json", "status"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).expect("status --json is JSON");
    assert_eq!(v["electrum"]["connected"], true);

    devnet.stop_electrumx();
    app.wait_status(Duration::from_secs(10), "disconnect", |s| {
        s["electrum"]["connected"] == false
    });
    let (code, out, _) = app.cli(&["status"]);
    assert_eq!(code, 2, "Electrum lost is a failed check: {out}");
    assert!(
        out.contains("DEGRADED") && out.contains("Electrum"),
        "{out}"
    );

    assert_eq!(app.stop(), Some(0));
    let (code, _, err) = app.cli(&["status"]);
    assert_eq!(code, 1, "daemon down is a failed check");
    assert!(err.contains("not reachable"), "{err}");
}

#[test]
fn payments_through_the_cli() {
    let (devnet, _dir, app) = Appliance::on_fresh_devnet();
    let (code, out, err) = app.cli(&[
        "--json",
        "payment",
        "create",
        "--amount-sat",
        "21000",
        "--reference",
        "cli-1",
    ]);
    assert_eq!(code, 0, "{err}");
    let p: Value = serde_json::from_str(&out).unwrap();
    let id = p["id"].as_str().unwrap();
    devnet.pay(p["address"].as_str().unwrap(), 21_000);
    devnet.mine(2);
    app.wait_payment(id, Duration::from_secs(5), "confirmed", |v| {
        v["status"] == "confirmed"
    });

    let (code, out, _) = app.cli(&["payment", "show", id]);
    assert_eq!(code, 0);
    assert!(
        out.contains("status:        confirmed") && out.contains("- -> pending  created"),
        "{out}"
    );
    let (code, out, _) = app.cli(&["--json", "payment", "list", "--status", "confirmed"]);
    assert_eq!(code, 0);
    let list: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list["payments"][0]["id"], id);
    let (code, _, _) = app.cli(&["payment", "complete", id]);
    assert_eq!(code, 0);
    let (_, v) = app.get(&format!("/api/payments/{id}"));
    assert_eq!(v["status"], "completed");

    let (code, _, err) = app.cli(&["payment", "show", "pay_nope"]);
    assert_eq!(code, 1);
    assert!(err.contains("not_found"), "{err}");
    let (code, _, err) = app.cli(&["payment", "create", "--amount-sat", "0", "--reference", "x"]);
    assert_eq!(code, 1);
    assert!(err.contains("amount_sat"), "{err}");
}

#[test]
fn init_checks_the_descriptor_writes_private_tokens_and_shows_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("etc/config.toml");
    let run = |args: &[&str]| {
        let out = Command::new(binary())
            .arg("--config")
            .arg(&config)
            .args(args)
            .env_clear()
            .output()
            .expect("run init");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = run(&[
        "--json",
        "init",
        "--descriptor",
        DESCRIPTOR,
        "--network",
        "regtest",
        "--electrum-host",
        "electrum.example",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    // The first address of BDK's test descriptor, as any wallet derives it.
    assert_eq!(
        v["first_addresses"][0],
        "bcrt1qydxkft2nfu5t9yczhejte9d3wx9jtv08hp7urv"
    );
    assert_eq!(v["first_addresses"].as_array().unwrap().len(), 5);
    for t in ["api-token", "admin-token"] {
        let meta = std::fs::metadata(dir.path().join("etc").join(t)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{t}");
    }
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(
        text.contains("electrum_host = \"electrum.example\""),
        "{text}"
    );

    // The written file is a valid configuration for the daemon's own loader.
    let (code, _, err) = run(&["init", "--descriptor", DESCRIPTOR, "--network", "regtest"]);
    assert_eq!(
        code, 1,
        "an existing config is not overwritten without --force"
    );
    assert!(err.contains("--force"), "{err}");

    let tprv = "wpkh(tprv8ZgxMBicQKsPd9TeAdPADNnSyH9SSUUbTVeFszDE23Ki6TBB5nCefAdHkK8Fm3qMQR6sHwA56zqRmKmxnHk37JkiFzvncDqoKmPWubu7hDF/0/*)";
    let (code, _, err) = run(&[
        "init",
        "--descriptor",
        tprv,
        "--network",
        "regtest",
        "--force",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("private key"), "{err}");
    assert!(
        !err.contains("tprv8Zgx"),
        "the secret must not be echoed: {err}"
    );
    let (code, _, err) = run(&[
        "init",
        "--descriptor",
        DESCRIPTOR,
        "--network",
        "bitcoin",
        "--force",
    ]);
    assert_eq!(code, 1, "a tpub on mainnet is refused: {err}");
}
