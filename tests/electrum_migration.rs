//! Migrating from the Electrum-daemon stack, against the real Electrum (Debian's
//! `electrum` package, 4.3.x): the key `electrum getmpk` prints is what `init` takes, and
//! the addresses match; Electrum's wallet files import with the right descriptors and next
//! index, and no address Electrum handed out is handed out again.

mod common;

/// The password of the encrypted test wallets.
const PASSWORD: &str = "correct horse battery staple";

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;
use std::time::Duration;

use bdk_wallet::bitcoin::Network;
use bdk_wallet::miniscript::{Descriptor, DescriptorPublicKey};
use common::appliance::{Appliance, base_env, binary, write_private};
use common::devnet::Devnet;
use common::electrum::{Electrum, OnlineDaemon, run_bounded};
use common::wait_until;
use serde_json::Value;

/// Runs snakkaz-pay with `--config CONFIG` and exactly `env`; returns (code, stdout, stderr).
fn snakkaz(config: &Path, env: &[(String, String)], args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(binary());
    cmd.arg("--config")
        .arg(config)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let out = run_bounded(cmd, Duration::from_secs(120), None);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn derive(desc: &str, n: usize) -> Vec<String> {
    let d = Descriptor::<DescriptorPublicKey>::from_str(desc).unwrap();
    (0..n as u32)
        .map(|i| {
            d.at_derivation_index(i)
                .unwrap()
                .address(Network::Regtest)
                .unwrap()
                .to_string()
        })
        .collect()
}

/// A configuration for `key` in `dir` (via init), and the environment to use it with.
fn init(dir: &Path, key: &str) -> (PathBuf, Vec<(String, String)>, Value) {
    let config = dir.join("config.toml");
    let db = dir.join("snakkaz-pay.redb");
    let (code, out, err) = snakkaz(
        &config,
        &[],
        &[
            "--json",
            "init",
            "--descriptor",
            key,
            "--network",
            "regtest",
            "--wallet-path",
            db.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "init failed: {err}");
    (config, Vec::new(), serde_json::from_str(&out).unwrap())
}

#[test]
fn init_takes_what_electrum_getmpk_prints_and_derives_electrums_addresses() {
    let seed_wallet = Electrum::new();
    seed_wallet.offline(&["create", "--seed_type", "segwit"]);
    let vpub = seed_wallet.offline(&["getmpk"]);
    // Electrum's regtest uses the test-network SLIP-132 prefixes.
    assert!(vpub.starts_with("vpub"), "{vpub}");
    let tpub = seed_wallet.offline(&["convert_xkey", &vpub, "standard"]);
    let upub = seed_wallet.offline(&["convert_xkey", &vpub, "p2wpkh-p2sh"]);
    for (key, prefix, script) in [
        (&vpub, "vpub", "wpkh("),
        (&upub, "upub", "sh(wpkh("),
        (&tpub, "tpub", "pkh("),
    ] {
        // A watch-only Electrum wallet of that account, as a migrating operator has.
        let watch = Electrum::new();
        watch.offline(&["restore", key]);
        let printed = watch.offline(&["getmpk"]);
        assert!(printed.starts_with(prefix), "{printed}");
        let receiving = watch.addresses("--receiving");
        let change = watch.addresses("--change");
        assert!(receiving.len() >= 20 && change.len() >= 6);

        let dir = tempfile::tempdir().unwrap();
        let (config, _, out) = init(dir.path(), &printed);
        let desc = out["descriptor"].as_str().unwrap();
        let change_desc = out["change_descriptor"].as_str().unwrap();
        assert!(desc.starts_with(script), "{desc}");
        let first: Vec<String> = serde_json::from_value(out["first_addresses"].clone()).unwrap();
        assert_eq!(first, receiving[..first.len()], "{prefix}: first addresses");
        assert_eq!(
            derive(desc, receiving.len()),
            receiving,
            "{prefix}: receive"
        );
        assert_eq!(
            derive(change_desc, change.len()),
            change,
            "{prefix}: change"
        );
        // The written configuration holds the descriptors, not the SLIP-132 key.
        let toml = std::fs::read_to_string(&config).unwrap();
        assert!(toml.contains(desc) && toml.contains(change_desc), "{toml}");
        if prefix != "tpub" {
            assert!(!toml.contains(&printed));
        }
    }

    // A multisig cosigner key, as Electrum prints it for a p2wsh wallet, is refused,
    // and the error names the flag the value came from.
    let vpub_multisig = seed_wallet.offline(&["convert_xkey", &vpub, "p2wsh"]);
    assert!(vpub_multisig.starts_with("Vpub"), "{vpub_multisig}");
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = snakkaz(
        &dir.path().join("config.toml"),
        &[],
        &[
            "init",
            "--descriptor",
            &vpub_multisig,
            "--network",
            "regtest",
        ],
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("--descriptor: the descriptor is a Vpub key of a multisig wallet"),
        "{err}"
    );
    assert!(
        !err.contains(&vpub_multisig[..30]),
        "the key is echoed: {err}"
    );
    // A test-network key on mainnet: the network, not the key, is wrong.
    let (code, _, err) = snakkaz(
        &dir.path().join("config.toml"),
        &[],
        &["init", "--descriptor", &vpub, "--network", "bitcoin"],
    );
    assert_ne!(code, 0);
    assert!(
        err.contains(
            "--descriptor: the descriptor has test-network (tpub) keys but the network is bitcoin"
        ),
        "{err}"
    );
}

fn import(config: &Path, env: &[(String, String)], args: &[&str]) -> (i32, Value, String) {
    let mut all = vec!["--json", "import-electrum-wallet"];
    all.extend_from_slice(args);
    let (code, out, err) = snakkaz(config, env, &all);
    let v = if code == 0 {
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    } else {
        Value::Null
    };
    (code, v, err)
}

/// Payments and the wallet's next receive index, read from the database file.
fn stored(db: &Path, config_out: &Value) -> (Vec<snakkaz_pay::payments::Payment>, u32) {
    let store = snakkaz_pay::store::Store::open(db).unwrap();
    let wallet = snakkaz_pay::wallet::load_or_create(
        &store,
        &snakkaz_pay::wallet::WalletParams {
            network: Network::Regtest,
            descriptor: config_out["descriptor"].as_str().unwrap().to_owned(),
            change_descriptor: config_out["change_descriptor"].as_str().map(str::to_owned),
        },
    )
    .unwrap();
    let next = wallet.next_derivation_index(bdk_wallet::KeychainKind::External);
    (store.all_payments().unwrap(), next)
}

#[test]
fn electrum_wallet_files_import_with_their_descriptors_and_next_index() {
    // A wallet from a seed, plain file, with two requests: one open, one that expires.
    let seeded = Electrum::new();
    seeded.offline(&["create", "--seed_type", "segwit"]);
    let key = seeded.offline(&["getmpk"]);
    let open: Value = seeded.json(
        true,
        &[
            "add_request",
            "0.00123",
            "--memo",
            "order 7",
            "--expiration",
            "3600",
        ],
    );
    let short: Value = seeded.json(
        true,
        &[
            "add_request",
            "0.005",
            "--memo",
            "order 8",
            "--expiration",
            "1",
        ],
    );
    let receiving = seeded.addresses("--receiving");
    let short_expiry = short["expiration"].as_u64().unwrap();
    wait_until(
        Duration::from_secs(10),
        "the short request to expire",
        || (snakkaz_pay::clock::now() > short_expiry).then_some(()),
    );

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("snakkaz-pay.redb");
    let (config, env, cfg_out) = init(dir.path(), &key);
    let file = seeded.wallet_file();
    let (code, v, err) = import(&config, &env, &[file.to_str().unwrap(), "--with-requests"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["encrypted"], false);
    assert_eq!(
        v["had_private_keys"], true,
        "a seed wallet is imported watch-only"
    );
    assert_eq!(v["script_type"], "p2wpkh");
    // Electrum records the seed's root fingerprint and the account path m/0h.
    let ks: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let fp = ks["keystore"]["root_fingerprint"].as_str().unwrap();
    let desc = v["file_descriptor"].as_str().unwrap();
    assert!(desc.starts_with(&format!("wpkh([{fp}/0']tpub")), "{desc}");
    assert_eq!(derive(desc, receiving.len()), receiving);
    assert_eq!(v["receive_addresses_listed"], receiving.len());
    assert_eq!(v["next_receive_index"], receiving.len());
    let requests = v["requests"].as_array().unwrap();
    assert_eq!(requests.len(), 2);
    let imported = requests
        .iter()
        .find(|r| r["address"] == open["address"])
        .unwrap();
    assert!(imported["payment_id"].is_string() && imported["skipped"].is_null());
    let expired = requests
        .iter()
        .find(|r| r["address"] == short["address"])
        .unwrap();
    assert!(expired["skipped"].as_str().unwrap().contains("expired"));

    let (payments, next) = stored(&db, &cfg_out);
    assert_eq!(next as usize, receiving.len());
    assert_eq!(payments.len(), 1);
    let p = &payments[0];
    assert_eq!(p.address, open["address"].as_str().unwrap());
    assert_eq!(p.amount_sat, 123_000);
    assert_eq!(p.expires_at, open["expiration"].as_u64().unwrap());
    assert_eq!(receiving[p.derivation_index as usize], p.address);
    assert_eq!(
        p.reference,
        format!("electrum:{}", open["request_id"].as_str().unwrap())
    );

    // Importing again changes nothing.
    let (code, v, err) = import(&config, &env, &[file.to_str().unwrap(), "--with-requests"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["next_receive_index"], receiving.len());
    assert_eq!(stored(&db, &cfg_out).0.len(), 1);

    // A watch-only wallet from the key, file encrypted with a password (BIE1).
    let watch = Electrum::new();
    watch.offline(&["restore", &key, "-W", PASSWORD]);
    let encrypted = watch.wallet_file();
    assert!(
        std::fs::read_to_string(&encrypted)
            .unwrap()
            .starts_with("QklFMQ")
    );
    let pw_file = dir.path().join("electrum-password");
    write_private(&pw_file, &format!("{PASSWORD}\n"));
    let enc = encrypted.to_str().unwrap();
    let (code, v, err) = import(
        &config,
        &env,
        &[enc, "--password-file", pw_file.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["encrypted"], true);
    assert_eq!(v["had_private_keys"], false);
    assert_eq!(v["file_descriptor"], desc);
    // The same from the environment variable and from a systemd credential.
    let with_env = vec![("ELECTRUM_WALLET_PASSWORD".to_owned(), PASSWORD.to_owned())];
    let (code, _, err) = import(&config, &with_env, &[enc]);
    assert_eq!(code, 0, "{err}");
    let creds = dir.path().join("creds");
    std::fs::create_dir(&creds).unwrap();
    write_private(&creds.join("electrum-wallet-password"), PASSWORD);
    let with_cred = vec![(
        "CREDENTIALS_DIRECTORY".to_owned(),
        creds.display().to_string(),
    )];
    let (code, _, err) = import(&config, &with_cred, &[enc]);
    assert_eq!(code, 0, "{err}");

    // A seed wallet with an encrypted file: its keys are not read.
    let locked_seed = Electrum::new();
    locked_seed.offline(&["create", "--seed_type", "segwit", "-W", PASSWORD]);
    let other_dir = tempfile::tempdir().unwrap();
    let (other_config, _, _) = init(
        other_dir.path(),
        &locked_seed.run_with_input(true, &["getmpk"], Some(PASSWORD)),
    );
    let (code, v, err) = import(
        &other_config,
        &with_env,
        &[locked_seed.wallet_file().to_str().unwrap()],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        (v["encrypted"].clone(), v["had_private_keys"].clone()),
        (true.into(), true.into())
    );
    // ...but it is another account than the first configuration: refused, nothing written.
    let (code, _, err) = import(
        &config,
        &with_env,
        &[locked_seed.wallet_file().to_str().unwrap()],
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("the configuration is for another wallet"),
        "{err}"
    );
}

#[test]
fn bad_wallet_files_are_refused_clearly_and_nothing_is_written() {
    let watch = Electrum::new();
    let seeded = Electrum::new();
    seeded.offline(&["create", "--seed_type", "segwit"]);
    let key = seeded.offline(&["getmpk"]);
    watch.offline(&["restore", &key, "-W", PASSWORD]);
    let dir = tempfile::tempdir().unwrap();
    let (config, _, _) = init(dir.path(), &key);
    let db = dir.path().join("snakkaz-pay.redb");
    let files = tempfile::tempdir().unwrap();
    let put = |name: &str, contents: &[u8]| {
        let p = files.path().join(name);
        std::fs::write(&p, contents).unwrap();
        p.display().to_string()
    };
    let wrong = vec![(
        "ELECTRUM_WALLET_PASSWORD".to_owned(),
        "not the password".to_owned(),
    )];
    let right = vec![("ELECTRUM_WALLET_PASSWORD".to_owned(), PASSWORD.to_owned())];
    let none = Vec::new();
    let enc = watch.wallet_file().display().to_string();
    let enc_text = std::fs::read_to_string(watch.wallet_file()).unwrap();

    // One byte of the ciphertext changed (a valid base64 character for another).
    let mut altered = enc_text.clone().into_bytes();
    let mid = altered.len() / 2;
    altered[mid] = if altered[mid] == b'A' { b'B' } else { b'A' };
    // A hardware wallet's file: same layout, magic BIE2 (its key is on the device).
    let mut bie2 = base64_decode(&enc_text);
    bie2[..4].copy_from_slice(b"BIE2");
    let bie2 = base64_encode(&bie2);
    let plain = std::fs::read_to_string(seeded.wallet_file()).unwrap();
    let old = Electrum::new();
    old.offline(&["restore", "0123456789abcdef0123456789abcdef"]);
    let imported = Electrum::new();
    imported.offline(&["restore", &seeded.addresses("--receiving")[..2].join(" ")]);

    // One receive address of the plain file replaced by another valid one of the same
    // network: the file no longer matches its own key.
    let mut edited: Value = serde_json::from_str(&plain).unwrap();
    edited["addresses"]["receiving"][5] = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080".into();
    let edited = edited.to_string();

    let cases: Vec<(String, &Env, &str)> = vec![
        (
            put("edited", edited.as_bytes()),
            &right,
            "as receive address 5, but its master public key derives",
        ),
        (
            enc.clone(),
            &wrong,
            "could not be decrypted: wrong password",
        ),
        (
            enc.clone(),
            &none,
            "is encrypted with a password (BIE1); give it with --password-file",
        ),
        (
            put("altered", &altered),
            &right,
            "wrong password (or the file was altered)",
        ),
        (
            put("bie2", bie2.as_bytes()),
            &right,
            "is encrypted by a hardware wallet (BIE2)",
        ),
        (
            put("truncated", &plain.as_bytes()[..plain.len() / 2]),
            &right,
            "is not a readable Electrum wallet file (invalid JSON",
        ),
        (
            put("garbage", b"\x89PNG not a wallet"),
            &right,
            "is not a readable Electrum wallet file",
        ),
        (
            old.wallet_file().display().to_string(),
            &right,
            "old-type wallet (Electrum 1.x seed)",
        ),
        (
            imported.wallet_file().display().to_string(),
            &right,
            "holds imported addresses or keys",
        ),
        (
            files.path().join("missing").display().to_string(),
            &right,
            "cannot open the wallet file",
        ),
    ];
    for (path, env, expected) in cases {
        let (code, _, err) = import(&config, env, &[&path]);
        assert_ne!(code, 0, "{path} was accepted");
        assert!(
            err.contains(expected),
            "{path}: expected «{expected}» in: {err}"
        );
        assert!(
            !err.contains(PASSWORD) && !err.contains("not the password"),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "one line: {err}");
    }
    assert!(!db.exists(), "a refused import created the database");
}

/// Environment variables for a snakkaz-pay run.
type Env = Vec<(String, String)>;

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .unwrap()
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

#[test]
fn after_import_no_address_electrum_handed_out_is_handed_out_again() {
    let devnet = Devnet::start();
    let electrum = Electrum::new();
    electrum.offline(&["create", "--seed_type", "segwit"]);
    electrum.offline(&["setconfig", "rpcport", "0"]);
    let key = electrum.offline(&["getmpk"]);
    let server = format!(
        "{}:{}:t",
        devnet.electrum_host(),
        devnet.electrum_tcp_port()
    );
    let handed_out: Vec<String>;
    let request: Value;
    {
        electrum.run(false, &["daemon", "-d", "--server", &server, "--oneserver"]);
        let _daemon = OnlineDaemon(&electrum);
        electrum.run(false, &["load_wallet"]);
        let receiving: Vec<String> =
            serde_json::from_value(electrum.json(false, &["listaddresses", "--receiving"]))
                .unwrap();
        // Customers paid two of Electrum's addresses, one near the end of its list.
        devnet.pay(&receiving[3], 150_000);
        devnet.pay(&receiving[18], 70_000);
        devnet.mine(1);
        wait_until(
            Duration::from_secs(90),
            "Electrum to see both payments",
            || {
                let h = electrum.json(false, &["getaddresshistory", &receiving[18]]);
                let synced = electrum.run(false, &["is_synchronized"]) == "true";
                (synced && h.as_array().is_some_and(|a| !a.is_empty())).then_some(())
            },
        );
        request = electrum.json(
            false,
            &[
                "add_request",
                "0.0004",
                "--memo",
                "shown before the switch",
                "--expiration",
                "86400",
            ],
        );
        handed_out =
            serde_json::from_value(electrum.json(false, &["listaddresses", "--receiving"]))
                .unwrap();
    }
    let req_address = request["address"].as_str().unwrap().to_owned();
    assert!(handed_out.contains(&req_address));

    // The box: configured from getmpk through the environment, database created by the import.
    let dir = tempfile::tempdir().unwrap();
    let mut env = base_env(
        dir.path(),
        devnet.electrum_host(),
        devnet.electrum_tcp_port(),
        false,
    );
    env.retain(|(k, _)| k != "SNAKKAZ_PAY_DESCRIPTOR" && k != "SNAKKAZ_PAY_CHANGE_DESCRIPTOR");
    env.push(("SNAKKAZ_PAY_DESCRIPTOR".to_owned(), key.clone()));
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "").unwrap();
    let file = electrum.wallet_file();
    let (code, v, err) = import(&config, &env, &[file.to_str().unwrap(), "--with-requests"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["addresses_with_history"], 2);
    let next = v["next_receive_index"].as_u64().unwrap() as usize;
    assert_eq!(next, handed_out.len().max(19));
    let imported = v["requests"][0]["payment_id"].as_str().unwrap().to_owned();

    let app = Appliance::start(dir.path(), env.clone());
    app.wait_status(Duration::from_secs(60), "Electrum connection", |s| {
        s["electrum"]["connected"] == true
    });
    // While the daemon holds the database, the import refuses and says what to do.
    let (code, _, err) = import(&config, &env, &[file.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(err.contains("stop the daemon first"), "{err}");
    let account: snakkaz_pay::electrum_compat::slip132::AccountKey = key.parse().unwrap();
    let (receive_desc, _) = account.descriptors(&account.own_origin());
    let below_next = derive(&receive_desc, next);
    let mut after: Vec<String> = Vec::new();
    for n in 0..5 {
        let p = app.create_payment(10_000, &format!("after-switch-{n}"), None);
        after.push(p["address"].as_str().unwrap().to_owned());
    }
    let electrum_era: BTreeSet<&String> = handed_out.iter().chain(&below_next).collect();
    for a in &after {
        assert!(!electrum_era.contains(a), "{a} was handed out by Electrum");
    }
    // They continue exactly after Electrum's last index.
    assert_eq!(after, derive(&receive_desc, next + 5)[next..]);
    // The customer who was shown the Electrum request pays it after the switch.
    devnet.pay(&req_address, 40_000);
    devnet.mine(2);
    let p = app.wait_payment(
        &imported,
        Duration::from_secs(90),
        "the imported request to confirm",
        |p| p["status"] == "confirmed",
    );
    assert_eq!(p["received_sat"], 40_000);
    assert_eq!(p["address"], req_address.as_str());

    // A returning customer pays an Electrum-era address again: no new payment counts it,
    // it is an unattributed receipt for the operator (its old money is history, not news).
    let old = &handed_out[3];
    let txid = devnet.pay(old, 25_000);
    let st = app.wait_status(Duration::from_secs(60), "the receipt", |s| {
        s["receipts"]["unassigned"] == 1
    });
    assert_eq!(st["receipts"]["unassigned_sat"], 25_000, "{st}");
    let (_, r) = app.get("/api/receipts");
    assert_eq!(r["receipts"][0]["txid"], txid.as_str(), "{r}");
    assert_eq!(r["receipts"][0]["address"], old.as_str());
    assert_eq!(r["receipts"][0]["cause"], "no_payment");
    for n in 0..5 {
        let (_, v) = app.get(&format!("/api/payments?reference=after-switch-{n}"));
        assert_eq!(v["payments"][0]["received_sat"], 0, "{v}");
    }
}
