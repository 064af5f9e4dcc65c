//! Cold-storage transfers end to end: the appliance builds a PSBT, the real Electrum wallet
//! (Debian's `electrum`, offline, holding the test account's key) and BDK sign it, the
//! appliance checks it is the built one and broadcasts it on a TOTP code, and the devnet
//! confirms it. Tampered transactions, wrong and replayed codes and lock-down are refused.

mod common;

use std::str::FromStr;
use std::time::Duration;

use base64::Engine as _;
use bdk_wallet::bitcoin::{Address, Amount, Psbt};
use common::appliance::Appliance;
use common::devnet::Devnet;
use common::electrum::Electrum;
use common::signer::{
    COLD, THIEF, account_xprv, b64, bdk_sign, bdk_signer, broadcast, code, watch_descriptors,
};
use serde_json::Value;

fn totp_secret(app: &Appliance) -> Vec<u8> {
    let (code, out, err) = app.cli(&["totp", "setup", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let uri = v["otpauth_uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/snakkaz-pay:"), "{uri}");
    let file = std::path::PathBuf::from(v["file"].as_str().unwrap());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the TOTP secret is private");
    let b32 = uri
        .split("secret=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let secret = snakkaz_pay::spend::totp::decode_secret(b32)
        .unwrap()
        .to_vec();
    // Set up once: a second setup without --force is refused and keeps the secret.
    let (code, _, err) = app.cli(&["totp", "setup"]);
    assert_eq!(code, 1);
    assert!(err.contains("already set up"), "{err}");
    secret
}

/// Two confirmed payments: 60 000 and 40 000 sat in the hot wallet.
fn funded() -> (Devnet, tempfile::TempDir, Appliance) {
    let (receive, change) = watch_descriptors();
    let (devnet, dir, app) = Appliance::on_fresh_devnet_with(&[
        ("SNAKKAZ_PAY_COLD_STORAGE", COLD),
        ("SNAKKAZ_PAY_DESCRIPTOR", &receive),
        ("SNAKKAZ_PAY_CHANGE_DESCRIPTOR", &change),
    ]);
    for (n, amount) in [(1, 60_000u64), (2, 40_000)] {
        let p = app.create_payment(amount, &format!("order-hot-{n}"), None);
        devnet.pay(p["address"].as_str().unwrap(), amount);
        let id = p["id"].as_str().unwrap().to_owned();
        app.wait_payment(&id, Duration::from_secs(30), "seen", |v| {
            v["status"] == "unconfirmed"
        });
    }
    devnet.mine(2);
    app.wait_status(Duration::from_secs(30), "confirmed balance", |s| {
        s["wallet"]["confirmed_sat"] == 100_000
    });
    (devnet, dir, app)
}

fn create(app: &Appliance, args: &[&str]) -> (i32, Value, String) {
    let mut all = vec!["transfer", "create", "--json"];
    all.extend_from_slice(args);
    // Never into the working directory (the default is `transfer-TXID.psbt` there).
    let default_out = app.dir.join("transfer.psbt").display().to_string();
    if !args.contains(&"--out") {
        all.extend_from_slice(&["--out", &default_out]);
    }
    let (code, out, err) = app.cli(&all);
    (code, serde_json::from_str(&out).unwrap_or(Value::Null), err)
}

#[test]
fn a_transfer_signed_by_electrum_is_broadcast_on_a_totp_code_and_confirms() {
    let (devnet, dir, mut app) = funded();
    let secret = totp_secret(&app);
    let out = dir.path().join("t1.psbt");
    let (c, built, err) = create(
        &app,
        &[
            "--amount-sat",
            "70000",
            "--fee-rate",
            "3",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(c, 0, "{err}");
    assert_eq!(built["destination"], COLD);
    assert_eq!(built["amount_sat"], 70_000);
    let fee = built["fee_sat"].as_u64().unwrap();
    assert_eq!(built["change_sat"].as_u64().unwrap() + fee, 30_000);
    assert_eq!(
        built["inputs"].as_array().unwrap().len(),
        2,
        "needs both coins"
    );
    let psbt_text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(psbt_text.trim(), built["psbt"].as_str().unwrap());
    let unsigned = Psbt::deserialize(
        &base64::engine::general_purpose::STANDARD
            .decode(psbt_text.trim())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(unsigned.version, 0, "BIP174 v0");
    // Only the cold destination and the wallet's own change are paid.
    let cold_spk = Address::from_str(COLD)
        .unwrap()
        .assume_checked()
        .script_pubkey();
    for o in &unsigned.unsigned_tx.output {
        assert!(
            o.script_pubkey == cold_spk || bdk_signer().is_mine(o.script_pubkey.clone()),
            "pays only cold storage and own change"
        );
    }
    // Fee rate: the requested 3 sat/vB over the signed weight (signatures vary by a byte).
    let by_bdk = bdk_sign(&psbt_text).extract_tx().unwrap();
    let weight = by_bdk.weight().to_wu();
    assert!(
        fee * 4 >= 3 * weight && fee * 4 <= 3 * (weight + 16),
        "fee {fee} for {weight} WU"
    );

    // The real Electrum signs the appliance's PSBT offline with the account key.
    let electrum = Electrum::new();
    let vprv = electrum.offline(&["convert_xkey", &account_xprv().to_string(), "p2wpkh"]);
    electrum.offline(&["restore", &vprv]);
    let signed = electrum.offline(&["signtransaction", psbt_text.trim()]);
    assert!(!signed.is_empty());

    // Without the right code nothing is sent: wrong code, then the file is fine.
    let wrong = if code_eq(&secret, "000000") {
        "111111"
    } else {
        "000000"
    };
    let (c, v, err) = broadcast(&app, &signed, wrong);
    assert_eq!(c, 5, "{err}");
    assert_eq!(v["error"]["code"], "wrong_totp");
    assert!(err.contains("wrong TOTP code"), "{err}");

    let good = code(&secret, 0);
    let (c, v, err) = broadcast(&app, &signed, &good);
    assert_eq!(c, 0, "{err}");
    let txid = v["broadcast_txid"].as_str().unwrap().to_owned();
    assert_eq!(
        txid,
        built["txid"].as_str().unwrap(),
        "segwit: same txid signed"
    );
    assert_eq!(v["fee_sat"], fee);

    // The same code again is a replay, even for a valid transaction.
    let (c, v, err) = broadcast(&app, &signed, &good);
    assert_eq!(c, 5, "{err}");
    assert_eq!(v["error"]["code"], "wrong_totp");
    assert!(err.contains("already used"), "{err}");

    // Tracked to confirmation through the same Electrum server.
    devnet.mine(1);
    let (c, out, err) = app.cli(&["tx", &txid, "--json"]);
    assert_eq!(c, 0, "{err}");
    let t: Value = serde_json::from_str(&out).unwrap();
    let t = &t["transactions"][0];
    assert_eq!(t["confirmations"], 1);
    assert_eq!(t["fee_sat"], fee);
    assert!(
        t["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["address"] == COLD && o["value_sat"] == 70_000)
    );
    // A spend the appliance did not build (the key leaked): a lasting critical alert, a
    // metric and an audit entry; the transfer above is not one of them.
    let p = app.create_payment(25_000, "order-hot-3", None);
    let id = p["id"].as_str().unwrap().to_owned();
    let funding = devnet.pay(p["address"].as_str().unwrap(), 25_000);
    devnet.mine(2);
    app.wait_payment(&id, Duration::from_secs(30), "confirmed", |v| {
        v["status"] == "confirmed"
    });
    let thief_tx = steal(&devnet, &funding);
    let thief_txid = devnet
        .send_raw(&bdk_wallet::bitcoin::consensus::encode::serialize_hex(
            &thief_tx,
        ))
        .unwrap();
    devnet.mine(1);
    let alerts = app.wait_get(
        "/api/alerts",
        Duration::from_secs(60),
        "unexpected spend alert",
        |v| {
            v["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["name"] == "SnakkazPayUnexpectedSpend")
        },
    );
    let a = alerts["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "SnakkazPayUnexpectedSpend")
        .unwrap();
    assert_eq!(a["severity"], "critical");
    let summary = a["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("1 transaction(s)"),
        "only the thief's: {summary}"
    );
    assert!(summary.contains(&thief_txid), "{summary}");
    assert!(
        app.metrics_text()
            .contains("snakkaz_pay_unexpected_spends 1")
    );
    let (_, out, _) = app.cli(&["audit", "--action", "spend.unexpected", "--json"]);
    assert!(out.contains(&thief_txid), "{out}");
    // It lasts across a restart until acknowledged.
    app.stop();
    app.restart();
    assert!(firing(&app).contains(&"SnakkazPayUnexpectedSpend".to_owned()));
    let (c, v) = app.request(
        "POST",
        "/api/admin/spends/acknowledge",
        Some(common::appliance::ADMIN_TOKEN),
        None,
    );
    assert_eq!(c, 200, "{v}");
    assert_eq!(v["acknowledged"], serde_json::json!([thief_txid]));
    assert!(!firing(&app).contains(&"SnakkazPayUnexpectedSpend".to_owned()));
    assert!(
        app.metrics_text()
            .contains("snakkaz_pay_unexpected_spends 0")
    );

    // The transfer and its broadcast are in the list and the audit log.
    let (_, out, _) = app.cli(&["transfer", "list", "--json"]);
    let list: Value = serde_json::from_str(&out).unwrap();
    let rec = &list["transfers"][0];
    assert_eq!(rec["txid"], txid.as_str());
    assert!(rec["broadcast_at"].is_string());
    let (_, out, _) = app.cli(&["audit", "--action", "transfer", "--json"]);
    for action in [
        "transfer.create",
        "transfer.broadcast",
        "transfer.broadcast.refused",
    ] {
        assert!(out.contains(&format!("\"{action}\"")), "{action}: {out}");
    }
}

/// Names of the alerts firing now.
fn firing(app: &Appliance) -> Vec<String> {
    let (code, v) = app.get("/api/alerts");
    assert_eq!(code, 200, "{v}");
    v["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_owned())
        .collect()
}

/// The payment coin of `funding` spent to a thief with the account key, outside the appliance.
fn steal(devnet: &Devnet, funding: &str) -> bdk_wallet::bitcoin::Transaction {
    let hex = devnet
        .rpc()
        .call("getrawtransaction", serde_json::json!([funding, 0]))
        .unwrap();
    let tx: bdk_wallet::bitcoin::Transaction = bdk_wallet::bitcoin::consensus::encode::deserialize(
        &hex::decode(hex.as_str().unwrap()).unwrap(),
    )
    .unwrap();
    let mut w = bdk_signer();
    w.apply_unconfirmed_txs([(tx, 1)]);
    let thief = Address::from_str(THIEF)
        .unwrap()
        .assume_checked()
        .script_pubkey();
    let psbt = {
        let mut b = w.build_tx();
        b.drain_wallet()
            .drain_to(thief)
            .fee_rate(bdk_wallet::bitcoin::FeeRate::from_sat_per_vb_u32(2));
        b.finish().unwrap()
    };
    bdk_sign(&b64(&psbt)).extract_tx().unwrap()
}

fn code_eq(secret: &[u8], c: &str) -> bool {
    (0..3).any(|d| code(secret, d) == c || code(secret, d.saturating_sub(1)) == c)
}

#[test]
fn bdk_signs_too_and_tampered_transactions_are_refused() {
    let (devnet, dir, app) = funded();
    let secret = totp_secret(&app);
    let out = dir.path().join("t.psbt");
    let (code_, built, err) = create(
        &app,
        &[
            "--keep-sat",
            "20000",
            "--fee-rate",
            "2",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(code_, 0, "{err}");
    let fee = built["fee_sat"].as_u64().unwrap();
    assert_eq!(built["change_sat"], 20_000, "keeps what was asked");
    assert_eq!(
        built["amount_sat"].as_u64().unwrap(),
        100_000 - 20_000 - fee
    );
    let psbt_b64 = built["psbt"].as_str().unwrap();

    // Tampered: the cold output now pays a thief (signed by the real key all the same).
    let mut psbt = Psbt::deserialize(
        &base64::engine::general_purpose::STANDARD
            .decode(psbt_b64)
            .unwrap(),
    )
    .unwrap();
    let cold_spk = Address::from_str(COLD)
        .unwrap()
        .assume_checked()
        .script_pubkey();
    let thief_spk = Address::from_str(THIEF)
        .unwrap()
        .assume_checked()
        .script_pubkey();
    let i = psbt
        .unsigned_tx
        .output
        .iter()
        .position(|o| o.script_pubkey == cold_spk)
        .unwrap();
    let mut stolen = psbt.clone();
    stolen.unsigned_tx.output[i].script_pubkey = thief_spk;
    let stolen = bdk_sign(&b64(&stolen));
    let (c, v, err) = broadcast(&app, &b64(&stolen), &code(&secret, 0));
    assert_eq!(c, 5, "{err}");
    assert_eq!(v["error"]["code"], "not_the_built_transaction");
    assert!(
        err.contains(THIEF) && err.contains("neither the cold-storage"),
        "{err}"
    );

    // Tampered: 5 000 sat less to cold storage, i.e. a higher fee (as raw hex this time).
    psbt.unsigned_tx.output[i].value -= Amount::from_sat(5_000);
    let greedy = bdk_sign(&b64(&psbt)).extract_tx().unwrap();
    let hex = bdk_wallet::bitcoin::consensus::encode::serialize_hex(&greedy);
    let (c, _, err) = broadcast(&app, &hex, &code(&secret, 0));
    assert_eq!(c, 5, "{err}");
    assert!(
        err.contains(&format!(
            "fee of {} sat where {fee} sat were built",
            fee + 5_000
        )),
        "{err}"
    );
    // Nothing reached the server.
    let (c, _, _) = app.cli(&["tx", &greedy.compute_txid().to_string()]);
    assert_eq!(c, 3, "unknown to the Electrum server");

    // The untouched PSBT signed by BDK goes through; the refusals spent no code.
    let signed = bdk_sign(psbt_b64);
    let (c, v, err) = broadcast(&app, &b64(&signed), &code(&secret, 0));
    assert_eq!(c, 0, "{err}");
    let txid = v["broadcast_txid"].as_str().unwrap().to_owned();
    devnet.mine(1);
    let (_, out, _) = app.cli(&["tx", &txid, "--json"]);
    let t: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(t["transactions"][0]["confirmations"], 1);

    // A transaction the appliance never built is refused as such.
    let (c, _, err) = broadcast(&app, &b64(&unrelated()), &code(&secret, 1));
    assert_eq!(c, 5, "{err}");
    assert!(err.contains("not built by"), "{err}");
}

/// A finalized PSBT spending a coin no transfer spends.
fn unrelated() -> Psbt {
    let mut tx = bdk_wallet::bitcoin::Transaction {
        version: bdk_wallet::bitcoin::transaction::Version::TWO,
        lock_time: bdk_wallet::bitcoin::absolute::LockTime::ZERO,
        input: vec![bdk_wallet::bitcoin::TxIn::default()],
        output: vec![bdk_wallet::bitcoin::TxOut {
            value: Amount::from_sat(1_000),
            script_pubkey: Address::from_str(COLD)
                .unwrap()
                .assume_checked()
                .script_pubkey(),
        }],
    };
    tx.input[0].previous_output.vout = 7;
    let mut psbt = Psbt::from_unsigned_tx(tx).unwrap();
    psbt.inputs[0].final_script_witness = Some(bdk_wallet::bitcoin::Witness::from_slice(&[
        vec![1u8; 71],
        vec![2u8; 33],
    ]));
    psbt
}

#[test]
fn bad_requests_are_named_and_lock_down_refuses_transfers() {
    let (_devnet, _dir, app) = funded();
    // Fee rate out of bounds.
    let (c, v, err) = create(&app, &["--amount-sat", "10000", "--fee-rate", "0.5"]);
    assert_eq!(c, 2, "{err}");
    assert_eq!(v["error"]["code"], "fee_rate_out_of_bounds");
    assert!(
        err.contains("fee rate 0.50 sat/vB is out of bounds"),
        "{err}"
    );
    let (c, _, err) = create(&app, &["--amount-sat", "10000", "--fee-rate", "5000"]);
    assert_eq!(c, 2, "{err}");
    // Insufficient funds.
    let (c, v, err) = create(&app, &["--amount-sat", "1000000"]);
    assert_eq!(c, 2, "{err}");
    assert_eq!(v["error"]["code"], "insufficient_funds");
    assert!(
        err.contains("insufficient funds") && err.contains("100000 sat confirmed"),
        "{err}"
    );
    let (c, _, err) = create(&app, &["--keep-sat", "100000"]);
    assert_eq!(c, 2, "{err}");
    assert!(err.contains("insufficient funds"), "{err}");
    // Broadcast before `totp setup`: refused, nothing sent.
    let (c, built, err) = create(&app, &["--amount-sat", "10000"]);
    assert_eq!(c, 0, "{err}");
    let signed = bdk_sign(built["psbt"].as_str().unwrap());
    let (c, v, err) = broadcast(&app, &b64(&signed), "123456");
    assert_eq!(c, 5, "{err}");
    assert_eq!(v["error"]["code"], "totp_not_set_up");
    assert!(err.contains("snakkaz-pay totp setup"), "{err}");
    // Garbage is named before a code is asked for.
    let (c, _, err) = broadcast(&app, "not a transaction", "123456");
    assert_eq!(c, 2, "{err}");
    assert!(err.contains("signed PSBT"), "{err}");

    // Lock-down refuses building and broadcasting.
    let (c, _, err) = app.cli(&["lockdown", "--reason", "drill"]);
    assert_eq!(c, 0, "{err}");
    let (c, v, err) = create(&app, &["--amount-sat", "10000"]);
    assert_eq!(c, 5, "{err}");
    assert_eq!(v["error"]["code"], "locked_down");
    let (c, _, err) = broadcast(&app, &b64(&signed), "123456");
    assert_eq!(c, 5, "{err}");
    assert!(err.contains("locked down"), "{err}");
}

#[test]
fn without_a_cold_destination_transfers_are_refused() {
    let (_devnet, _dir, app) = Appliance::on_fresh_devnet();
    let (c, v, err) = create(&app, &["--amount-sat", "10000"]);
    assert_eq!(c, 2, "{err}");
    assert_eq!(v["error"]["code"], "destination_not_configured");
    assert!(err.contains("SNAKKAZ_PAY_COLD_STORAGE"), "{err}");
}

/// The signer's own fee bump of a broadcast transfer (BDK's `build_fee_bump` in the
/// signer's wallet, as Electrum's "Bump fee" would): accepted when it keeps the destination
/// and amount and pays more; a "bump" that takes the fee from the cold output is refused.
#[test]
fn a_replacement_the_signer_made_is_accepted_only_as_a_fee_bump() {
    let (devnet, dir, app) = funded();
    let secret = totp_secret(&app);
    let out = dir.path().join("t.psbt");
    let (c, built, err) = create(
        &app,
        &[
            "--amount-sat",
            "70000",
            "--fee-rate",
            "2",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(c, 0, "{err}");
    let signed = bdk_sign(built["psbt"].as_str().unwrap())
        .extract_tx()
        .unwrap();
    let (c, _, err) = broadcast(&app, &hex_tx(&signed), &code(&secret, 0));
    assert_eq!(c, 0, "{err}");
    let original = signed.compute_txid();

    // The signer's wallet learns the coins and the transfer, and bumps it itself.
    let mut w = bdk_signer();
    let raw = |txid: &str| -> bdk_wallet::bitcoin::Transaction {
        let hex = devnet
            .rpc()
            .call("getrawtransaction", serde_json::json!([txid, 0]))
            .unwrap();
        bdk_wallet::bitcoin::consensus::encode::deserialize(
            &hex::decode(hex.as_str().unwrap()).unwrap(),
        )
        .unwrap()
    };
    for i in &signed.input {
        w.apply_unconfirmed_txs([(raw(&i.previous_output.txid.to_string()), 1)]);
    }
    w.apply_unconfirmed_txs([(signed.clone(), 2)]);
    let bumped = {
        let mut b = w.build_fee_bump(original).unwrap();
        b.fee_rate(bdk_wallet::bitcoin::FeeRate::from_sat_per_vb_u32(5));
        b.finish().unwrap()
    };
    let cold = Address::from_str(COLD)
        .unwrap()
        .assume_checked()
        .script_pubkey();

    // Taking the higher fee from the cold output is not a fee bump.
    let mut cut = bumped.clone();
    let i = cut
        .unsigned_tx
        .output
        .iter()
        .position(|o| o.script_pubkey == cold)
        .unwrap();
    cut.unsigned_tx.output[i].value -= Amount::from_sat(3_000);
    let (c, v, err) = broadcast(&app, &b64(&bdk_sign(&b64(&cut))), &code(&secret, 1));
    assert_eq!(c, 5, "{err}");
    assert_eq!(v["error"]["code"], "not_the_built_transaction");
    assert!(
        err.contains("pays the destination 67000 sat where the transfer paid 70000 sat"),
        "{err}"
    );

    // The honest bump goes through and is mined instead of the transfer.
    let signed_bump = bdk_sign(&b64(&bumped));
    let (c, v, err) = broadcast(&app, &b64(&signed_bump), &code(&secret, 1));
    assert_eq!(c, 0, "{err}");
    assert_eq!(v["kind"], "bump");
    assert_eq!(v["replaces"], original.to_string());
    assert_eq!(v["amount_sat"], 70_000);
    let txid = v["broadcast_txid"].as_str().unwrap().to_owned();
    assert!(v["fee_sat"].as_u64().unwrap() > built["fee_sat"].as_u64().unwrap());
    devnet.mine(1);
    let (c, out, err) = app.cli(&["tx", &txid, "--json"]);
    assert_eq!(c, 0, "{err}");
    let t: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(t["transactions"][0]["confirmations"], 1);
    // Recorded as the appliance's own: no unexpected-spend alert.
    assert!(!firing(&app).contains(&"SnakkazPayUnexpectedSpend".to_owned()));
}

fn hex_tx(tx: &bdk_wallet::bitcoin::Transaction) -> String {
    bdk_wallet::bitcoin::consensus::encode::serialize_hex(tx)
}
