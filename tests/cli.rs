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
    // The history reads in words, with the amounts in their unit and the paying txid.
    let txid = devnet_txid(&app, id);
    for want in [
        "status        confirmed, 2 confirmation(s)",
        "flags         none",
        "asked         21,000 sat (0.00021 BTC)",
        "received      21,000 sat\n",
        "new → pending (created)",
        &format!("transactions  {txid}"),
    ] {
        assert!(out.contains(want), "{want:?} missing:\n{out}");
    }
    assert!(
        !out.contains("pay with"),
        "a paid payment offers no payment link: {out}"
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
    // Out of range is refused before anything is asked, as a command-line error.
    let (code, _, err) = app.cli(&["payment", "create", "--amount-sat", "0", "--reference", "x"]);
    assert_eq!(code, 64, "{err}");
    assert!(
        err.contains("--amount-sat") && err.contains("1..="),
        "{err}"
    );
    let (code, _, err) = app.cli(&[
        "payment",
        "create",
        "--amount-sat",
        "5",
        "--reference",
        " x",
    ]);
    assert_eq!(code, 1, "the daemon's refusal is a failure: {err}");
    assert!(err.contains("reference"), "{err}");
}

fn devnet_txid(app: &Appliance, id: &str) -> String {
    let (_, v) = app.get(&format!("/api/payments/{id}"));
    v["txids"][0].as_str().expect("a paying txid").to_owned()
}

/// Regression: `status` asked for a descriptor (and exited 1, the code of "daemon down")
/// on a machine that had only the daemon's address and a token; `payment list` printed
/// nothing at all when there were no payments, and no header when there were.
#[test]
fn daemon_commands_need_only_the_address_and_a_token() {
    let (devnet, dir, app) = Appliance::on_fresh_devnet();
    let token = dir.path().join("only-token");
    common::appliance::write_private(&token, common::appliance::API_TOKEN);
    let bare = |args: &[&str]| {
        let out = Command::new(binary())
            .args(args)
            .env_clear()
            .env("SNAKKAZ_PAY_CONFIG", dir.path().join("absent.toml"))
            .output()
            .expect("run snakkaz-pay");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let t = token.to_str().unwrap();
    let addr = &app.addr.clone();
    // No configuration file at all: the flags are enough, without a descriptor.
    let none = dir.path().join("none.toml");
    std::fs::write(&none, "").unwrap();
    let with = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = vec!["--config".into(), none.display().to_string()];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let run = |args: Vec<String>| bare(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let (code, out, err) = run(with(&["status", "--listen", addr, "--token-file", t]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("health:    OK"), "{out}");
    assert!(
        !out.contains("outbox") && !out.contains("sink"),
        "no sink configured, none shown: {out}"
    );

    let (code, out, err) = run(with(&[
        "payment",
        "list",
        "--listen",
        addr,
        "--token-file",
        t,
    ]));
    assert_eq!((code, out.as_str()), (0, "No payments yet.\n"), "{err}");
    let p = app.create_payment(30_000, "cli-list-1", None);
    devnet.pay(p["address"].as_str().unwrap(), 10_000);
    app.wait_payment(
        p["id"].as_str().unwrap(),
        Duration::from_secs(10),
        "partial",
        |v| v["received_sat"] == 10_000,
    );
    let (code, out, _) = run(with(&[
        "payment",
        "list",
        "--listen",
        addr,
        "--token-file",
        t,
    ]));
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("RECEIVED"),
        "{out}"
    );
    assert!(
        lines[1].contains("pending")
            && lines[1].contains("30,000 sat")
            && lines[1].contains("10,000 sat"),
        "{out}"
    );
    let (code, out, _) = run(with(&[
        "payment",
        "show",
        p["id"].as_str().unwrap(),
        "--listen",
        addr,
        "--token-file",
        t,
    ]));
    assert_eq!(code, 0);
    // A partial payment asks for what is still missing.
    assert!(
        out.contains("received      10,000 sat (20,000 sat missing)"),
        "{out}"
    );
    assert!(
        out.contains("amount=0.0002"),
        "the link asks for the rest: {out}"
    );
    let (code, out, _) = run(with(&[
        "payment",
        "list",
        "--status",
        "expired",
        "--listen",
        addr,
        "--token-file",
        t,
    ]));
    assert_eq!((code, out.as_str()), (0, "No payments match.\n"));

    // Exit codes as documented: 78 configuration, 64 command line, 1 daemon down.
    let (code, _, err) = run(with(&["status", "--listen", addr]));
    assert_eq!(code, 78, "no token anywhere: {err}");
    assert!(err.contains("--token-file"), "{err}");
    let (code, _, err) = run(with(&["status", "--listen", "nowhere", "--token-file", t]));
    assert_eq!(code, 78, "{err}");
    assert!(err.contains("--listen"), "{err}");
    let (code, _, err) = run(with(&["status", "--frobnicate"]));
    assert_eq!(code, 64, "{err}");
    let (code, _, err) = run(with(&["--json", "run"]));
    assert_eq!(code, 64, "`run --json` is refused, not ignored: {err}");
    let (code, out, _) = run(with(&["status", "--help"]));
    assert_eq!(code, 0);
    assert!(
        out.contains("Exit codes: 0 healthy") && out.contains("Example:"),
        "{out}"
    );
    let mut app = app;
    assert_eq!(app.stop(), Some(0));
    let (code, _, err) = run(with(&["status", "--listen", addr, "--token-file", t]));
    assert_eq!(code, 1, "daemon down: {err}");
    assert!(err.contains("not reachable"), "{err}");
}

/// A mainnet account key as `electrum getmpk` prints it (public key only).
const MAINNET_ZPUB: &str = "zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3EfH1r1ADqtfSdVCToUG868RvUUkgDKf31mGDtKsAYz2oz2AGutZYs";

#[test]
fn mainnet_is_accepted_as_bitcoin() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    let out = Command::new(binary())
        .arg("--config")
        .arg(&config)
        .args(["init", "--descriptor", MAINNET_ZPUB, "--network", "mainnet"])
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("network = \"bitcoin\""), "{text}");
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
