//! Hot mode on the devnet + ElectrumX: the wallet's key imported from stdin into an
//! age-encrypted 0600 seed file, transfers to cold storage and CPFP children signed on the
//! box, broadcast on a TOTP code and mined; a wrong key, a wrong password and watch-only
//! mode are refused by name, and neither key nor password reaches the log.

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::time::Duration;

use common::appliance::{Appliance, write_private};
use common::devnet::Devnet;
use common::signer::{
    COLD, TEST_TPRV, broadcast, cli_json, code, psbt, totp_secret, watch_descriptors,
};
use serde_json::Value;

const PASSWORD: &str = "hot wallet password";

/// An appliance in hot mode: (devnet, its dir, the secrets' dir, the appliance).
fn hot() -> (Devnet, tempfile::TempDir, tempfile::TempDir, Appliance) {
    let secrets = tempfile::tempdir().unwrap();
    let seed = secrets.path().join("hot-seed.age");
    let pw = secrets.path().join("hot-password");
    write_private(&pw, &format!("{PASSWORD}\n"));
    let (receive, change) = watch_descriptors();
    let (devnet, dir, app) = Appliance::on_fresh_devnet_with(&[
        ("SNAKKAZ_PAY_COLD_STORAGE", COLD),
        ("SNAKKAZ_PAY_DESCRIPTOR", &receive),
        ("SNAKKAZ_PAY_CHANGE_DESCRIPTOR", &change),
        ("SNAKKAZ_PAY_HOT_SEED_FILE", seed.to_str().unwrap()),
        ("SNAKKAZ_PAY_HOT_PASSWORD_FILE", pw.to_str().unwrap()),
    ]);
    (devnet, dir, secrets, app)
}

fn import(app: &Appliance, key: &str, extra: &[&str]) -> (i32, Value, String) {
    let mut args = vec!["hot", "import", "--json"];
    args.extend_from_slice(extra);
    let (c, out, err) = app.cli_with_input(&args, &format!("{key}\n"));
    (c, serde_json::from_str(&out).unwrap_or(Value::Null), err)
}

/// A payment paid by the faucet and seen: (payment id, funding txid).
fn paid(app: &Appliance, devnet: &Devnet, amount: u64, reference: &str) -> (String, String) {
    let p = app.create_payment(amount, reference, None);
    let funding = devnet.pay(p["address"].as_str().unwrap(), amount);
    let id = p["id"].as_str().unwrap().to_owned();
    app.wait_payment(&id, Duration::from_secs(60), "seen", |v| {
        v["status"] == "unconfirmed"
    });
    (id, funding)
}

fn confirmations(app: &Appliance, txid: &str) -> Value {
    let (c, v, err) = cli_json(app, &["tx", txid]);
    assert_eq!(c, 0, "{err}");
    v["transactions"][0]["confirmations"].clone()
}

#[test]
fn hot_mode_signs_transfers_and_cpfp_children_on_the_box_and_they_are_mined() {
    let (devnet, dir, secrets, app) = hot();
    let seed = secrets.path().join("hot-seed.age");

    // Another wallet's key is refused and nothing is written.
    let other = "tprv8ZgxMBicQKsPd9TeAdPADNnSyH9SSUUbTVeFszDE23Ki6TBB5nCefAdHkK8Fm3qMQR6sHwA56zqRmKmxnHk37JkiFzvncDqoKmPWubu7hDF";
    let (c, v, err) = import(&app, other, &[]);
    assert_eq!(c, 1, "{err}");
    assert_eq!(v["error"]["code"], "hot_mode_failed");
    assert!(
        err.contains("not the one behind SNAKKAZ_PAY_DESCRIPTOR"),
        "{err}"
    );
    assert!(!seed.exists());
    // The wallet's own key: encrypted, owner-only; a second import needs --force.
    let (c, v, err) = import(&app, TEST_TPRV, &[]);
    assert_eq!(c, 0, "{err}");
    assert_eq!(v["file"], seed.to_str().unwrap());
    let mode = std::fs::metadata(&seed).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let raw = std::fs::read(&seed).unwrap();
    assert!(raw.starts_with(b"age-encryption.org/v1"), "an age file");
    assert!(!String::from_utf8_lossy(&raw).contains("tprv"), "encrypted");
    let (c, _, err) = import(&app, TEST_TPRV, &[]);
    assert_eq!(c, 1, "{err}");
    assert!(err.contains("--force"), "{err}");

    let secret = totp_secret(&app);
    for (n, amount) in [(1, 60_000u64), (2, 40_000)] {
        paid(&app, &devnet, amount, &format!("order-hot-{n}"));
    }
    devnet.mine(2);
    app.wait_status(Duration::from_secs(60), "confirmed balance", |s| {
        s["wallet"]["confirmed_sat"] == 100_000
    });

    // A transfer to cold storage, signed on the box; broadcasting still takes a TOTP code.
    let out = dir.path().join("hot-transfer.psbt");
    let (c, v, err) = cli_json(
        &app,
        &[
            "transfer",
            "create",
            "--amount-sat",
            "30000",
            "--fee-rate",
            "3",
            "--sign",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(c, 0, "{err}");
    let signed = v["signed_psbt"].as_str().unwrap().to_owned();
    assert_eq!(std::fs::read_to_string(&out).unwrap().trim(), signed);
    let p = psbt(&signed);
    assert!(
        p.inputs.iter().all(|i| i.final_script_witness.is_some()),
        "finalized"
    );
    let (c, b, err) = broadcast(&app, out.to_str().unwrap(), &code(&secret, 0));
    assert_eq!(c, 0, "{err}");
    let transfer = b["broadcast_txid"].as_str().unwrap().to_owned();
    assert_eq!(transfer, v["txid"].as_str().unwrap());

    // A stuck payment's CPFP child, signed on the box.
    let (id, funding) = paid(&app, &devnet, 25_000, "order-hot-stuck");
    let out = dir.path().join("hot-cpfp.psbt");
    let (c, v, err) = cli_json(
        &app,
        &[
            "cpfp",
            &id,
            "--fee-rate",
            "10",
            "--sign",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(c, 0, "{err}");
    assert!(v["signed_psbt"].is_string(), "{v}");
    let (c, b, err) = broadcast(&app, out.to_str().unwrap(), &code(&secret, 1));
    assert_eq!(c, 0, "{err}");
    let child = b["broadcast_txid"].as_str().unwrap().to_owned();
    devnet.mine(1);
    for t in [&transfer, &funding, &child] {
        assert_eq!(confirmations(&app, t), 1, "{t}");
    }

    // A wrong password: nothing signed, the built transfer is kept for offline signing.
    write_private(&secrets.path().join("hot-password"), "not the password\n");
    let (c, v, err) = cli_json(
        &app,
        &[
            "transfer",
            "create",
            "--amount-sat",
            "10000",
            "--sign",
            "--out",
            dir.path().join("x.psbt").to_str().unwrap(),
        ],
    );
    assert_eq!(c, 1, "{err}");
    assert_eq!(v["error"]["code"], "hot_mode_failed");
    assert!(err.contains("cannot decrypt: wrong password"), "{err}");
    let (_, list, _) = cli_json(&app, &["transfer", "list"]);
    assert_eq!(list["transfers"].as_array().unwrap().len(), 3, "{list}");
    let (_, audit, _) = app.cli(&["audit", "--action", "transfer.hot_sign", "--json"]);
    assert!(audit.contains("\"transfer.hot_sign\""), "{audit}");
    assert!(audit.contains("\"transfer.hot_sign.refused\""), "{audit}");

    // Neither the key nor the password ever reaches the log.
    let log = app.log();
    assert!(
        !log.contains(TEST_TPRV) && !log.contains(PASSWORD),
        "secret in the log"
    );
}

#[test]
fn a_watch_only_appliance_refuses_to_sign() {
    let (receive, change) = watch_descriptors();
    let (devnet, dir, app) = Appliance::on_fresh_devnet_with(&[
        ("SNAKKAZ_PAY_COLD_STORAGE", COLD),
        ("SNAKKAZ_PAY_DESCRIPTOR", &receive),
        ("SNAKKAZ_PAY_CHANGE_DESCRIPTOR", &change),
    ]);
    let (c, v, err) = import(&app, TEST_TPRV, &[]);
    assert_eq!(c, 2, "{err}");
    assert_eq!(v["error"]["code"], "hot_mode_off");
    assert!(err.contains("SNAKKAZ_PAY_HOT_SEED_FILE"), "{err}");
    paid(&app, &devnet, 20_000, "order-watch-only");
    devnet.mine(1);
    app.wait_status(Duration::from_secs(60), "confirmed balance", |s| {
        s["wallet"]["confirmed_sat"] == 20_000
    });
    let (c, v, err) = cli_json(
        &app,
        &[
            "transfer",
            "create",
            "--amount-sat",
            "10000",
            "--sign",
            "--out",
            dir.path().join("x.psbt").to_str().unwrap(),
        ],
    );
    assert_eq!(c, 2, "{err}");
    assert_eq!(v["error"]["code"], "hot_mode_off");
    assert!(err.contains("watch-only; sign the PSBT offline"), "{err}");
}
