//! Fee bumping end to end on the devnet + ElectrumX: a CPFP child for a stuck incoming
//! payment and an RBF replacement of a broadcast transfer, built by the appliance as PSBTs,
//! signed by the real Electrum and by BDK, broadcast through the appliance on a TOTP code
//! and mined together with what they bump. Bad requests are named with their exit codes.

mod common;

use std::time::Duration;

use common::appliance::Appliance;
use common::devnet::Devnet;
use common::signer::{
    COLD, THIEF, b64, bdk_sign, broadcast, cli_json, code, electrum_signer, psbt, spk, totp_secret,
    watch_descriptors,
};
use serde_json::Value;

fn appliance() -> (Devnet, tempfile::TempDir, Appliance) {
    let (receive, change) = watch_descriptors();
    Appliance::on_fresh_devnet_with(&[
        ("SNAKKAZ_PAY_COLD_STORAGE", COLD),
        ("SNAKKAZ_PAY_DESCRIPTOR", &receive),
        ("SNAKKAZ_PAY_CHANGE_DESCRIPTOR", &change),
    ])
}

/// A payment paid by the faucet (2 sat/vB) and seen unconfirmed: (payment id, funding txid).
fn paid(app: &Appliance, devnet: &Devnet, amount: u64, reference: &str) -> (String, String) {
    let p = app.create_payment(amount, reference, None);
    let funding = devnet.pay(p["address"].as_str().unwrap(), amount);
    let id = p["id"].as_str().unwrap().to_owned();
    app.wait_payment(&id, Duration::from_secs(60), "seen", |v| {
        v["status"] == "unconfirmed"
    });
    (id, funding)
}

fn tx(app: &Appliance, txid: &str) -> Value {
    let (c, v, err) = cli_json(app, &["tx", txid]);
    assert_eq!(c, 0, "{err}");
    v["transactions"][0].clone()
}

fn cpfp(app: &Appliance, args: &[&str]) -> (i32, Value, String) {
    let out = app.dir.join("cpfp.psbt").display().to_string();
    let mut all = vec!["cpfp"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--out", &out]);
    cli_json(app, &all)
}

fn bump(app: &Appliance, args: &[&str]) -> (i32, Value, String) {
    let out = app.dir.join("bump.psbt").display().to_string();
    let mut all = vec!["bump"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--out", &out]);
    cli_json(app, &all)
}

#[test]
fn a_stuck_payment_is_pulled_by_a_cpfp_child_signed_by_electrum_and_both_are_mined() {
    let (devnet, _dir, app) = appliance();
    let secret = totp_secret(&app);
    let (id, funding) = paid(&app, &devnet, 50_000, "order-stuck");

    // The payment shows its fee facts (one Electrum look-up, then from memory).
    let v = app.wait_get(
        &format!("/api/payments/{id}"),
        Duration::from_secs(60),
        "fee facts looked up",
        |v| v["fee_facts"][0]["lookup"] == "done",
    );
    let f = &v["fee_facts"][0];
    let t = tx(&app, &funding);
    assert_eq!(f["txid"], funding.as_str());
    assert_eq!(f["fee_sat"], t["fee_sat"]);
    assert_eq!(f["vsize"], t["vsize"]);
    assert_eq!(f["rbf"], true, "the faucet signals RBF");
    assert!(
        f["fee_rate_sat_vb"].as_str().unwrap().starts_with("2."),
        "{f}"
    );
    assert_eq!(f["unconfirmed_parents"], serde_json::json!([]));
    assert_eq!(f["package_fee_rate_sat_vb"], f["fee_rate_sat_vb"]);
    let (_, list) = app.get("/api/payments?status=unconfirmed");
    assert_eq!(list["payments"][0]["fee_facts"][0]["fee_sat"], t["fee_sat"]);
    let (code_, page) = common::appliance::http(
        &app.addr,
        "GET",
        &format!("/page/payments/{id}"),
        Some(common::appliance::API_TOKEN),
        None,
    );
    assert_eq!(code_, 200);
    let page = String::from_utf8(page).unwrap();
    assert!(
        page.contains("Fee (unconfirmed)")
            && page.contains(&format!(
                "{} sat/vB",
                f["fee_rate_sat_vb"].as_str().unwrap()
            ))
            && page.contains("signals RBF")
            && page.contains("no unconfirmed parents"),
        "{page}"
    );

    // Bad requests first, each named with its exit code.
    let (c, v, err) = cpfp(
        &app,
        &["pay_00000000000000000000000000000000", "--fee-rate", "10"],
    );
    assert_eq!(c, 3, "{err}");
    assert_eq!(v["error"]["code"], "unknown_payment");
    assert!(err.contains("unknown payment pay_0000"), "{err}");
    let (c, v, err) = cpfp(&app, &[&id, "--fee-rate", "0.5"]);
    assert_eq!(c, 2, "{err}");
    assert_eq!(v["error"]["code"], "fee_rate_out_of_bounds");
    let (c, v, err) = cpfp(&app, &[&id, "--fee-rate", "1.5"]);
    assert_eq!(c, 2, "{err}");
    assert_eq!(v["error"]["code"], "not_stuck");
    assert!(
        err.contains("already pay 2.") && err.contains("at or above the asked 1.50 sat/vB"),
        "{err}"
    );
    let (c, _, err) = cpfp(&app, &[&id, "--fee-rate", "10", "--to", "thief"]);
    assert_eq!(c, 2, "{err}");
    assert!(err.contains("--to \"thief\""), "{err}");

    // The child: spends the payment's output to this wallet's change at package 10 sat/vB.
    let (c, child, err) = cpfp(&app, &[&id, "--fee-rate", "10"]);
    assert_eq!(c, 0, "{err}");
    assert_eq!(child["kind"], "cpfp");
    assert_eq!(child["parents"], serde_json::json!([funding]));
    let fee = child["fee_sat"].as_u64().unwrap();
    assert_eq!(child["amount_sat"].as_u64().unwrap() + fee, 50_000);
    assert!(
        child["package_fee_rate_before_sat_vb"]
            .as_str()
            .unwrap()
            .starts_with("2."),
        "{child}"
    );
    let file = std::fs::read_to_string(app.dir.join("cpfp.psbt")).unwrap();
    assert_eq!(file.trim(), child["psbt"].as_str().unwrap());
    let unsigned = psbt(&file);
    assert_eq!(unsigned.unsigned_tx.input.len(), 1);
    assert_eq!(
        unsigned.unsigned_tx.input[0]
            .previous_output
            .txid
            .to_string(),
        funding
    );
    assert!(
        common::signer::bdk_signer().is_mine(unsigned.unsigned_tx.output[0].script_pubkey.clone()),
        "pays this wallet's own change"
    );

    // The real Electrum signs it; the appliance broadcasts it on a TOTP code.
    let electrum = electrum_signer();
    let signed = electrum.offline(&["signtransaction", file.trim()]);
    let (c, v, err) = broadcast(&app, &signed, &code(&secret, 0));
    assert_eq!(c, 0, "{err}");
    let child_txid = v["broadcast_txid"].as_str().unwrap().to_owned();
    assert_eq!(child_txid, child["txid"].as_str().unwrap());

    // On the server: the child's package (with its unconfirmed parent) reaches 10 sat/vB.
    let t = tx(&app, &child_txid);
    assert_eq!(t["confirmations"], 0);
    assert_eq!(t["fee_sat"], fee);
    assert_eq!(t["unconfirmed_ancestors"][0]["txid"], funding.as_str());
    let package = t["package_fee_rate_sat_per_kvb"].as_u64().unwrap();
    assert!((10_000..10_200).contains(&package), "package {package}");

    // Mined together: both confirmed in the same block; a second CPFP is refused.
    devnet.mine(1);
    app.wait_payment(
        &id,
        Duration::from_secs(60),
        "confirmed by the block",
        |v| v["confirmations"].as_u64() >= Some(1),
    );
    let (p, c) = (tx(&app, &funding), tx(&app, &child_txid));
    assert_eq!(p["confirmations"], 1);
    assert_eq!(c["confirmations"], 1);
    assert_eq!(p["block_hash"], c["block_hash"]);
    let (_, v) = app.get(&format!("/api/payments/{id}"));
    assert!(v.get("fee_facts").is_none(), "confirmed: no fee facts {v}");
    let (code_, v, err) = cpfp(&app, &[&id, "--fee-rate", "10"]);
    assert_eq!(code_, 2, "{err}");
    assert_eq!(v["error"]["code"], "not_stuck");
    assert!(
        err.contains("no unconfirmed money") || err.contains("confirmed"),
        "{err}"
    );

    // A small payment cannot pay a 50 sat/vB child; a larger one goes to cold storage,
    // signed by BDK this time.
    let (small, _) = paid(&app, &devnet, 1_000, "order-small");
    let (c, v, err) = cpfp(&app, &[&small, "--fee-rate", "50"]);
    assert_eq!(c, 2, "{err}");
    assert_eq!(v["error"]["code"], "insufficient_funds");
    assert!(
        err.contains("received output of 1000 sat is too small"),
        "{err}"
    );
    let (cold, cold_funding) = paid(&app, &devnet, 30_000, "order-cold");
    let (c, child, err) = cpfp(&app, &[&cold, "--fee-rate", "8", "--to", "cold"]);
    assert_eq!(c, 0, "{err}");
    assert_eq!(child["destination"], COLD);
    // Tampered: the child's output now pays a thief. Refused, no code spent.
    let mut stolen = psbt(child["psbt"].as_str().unwrap());
    stolen.unsigned_tx.output[0].script_pubkey = spk(THIEF);
    let stolen = bdk_sign(&b64(&stolen));
    let (c, v, err) = broadcast(&app, &b64(&stolen), &code(&secret, 1));
    assert_eq!(c, 5, "{err}");
    assert_eq!(v["error"]["code"], "not_the_built_transaction");
    let signed = bdk_sign(child["psbt"].as_str().unwrap());
    let (c, v, err) = broadcast(&app, &b64(&signed), &code(&secret, 1));
    assert_eq!(c, 0, "{err}");
    let cold_child = v["broadcast_txid"].as_str().unwrap().to_owned();
    devnet.mine(1);
    assert_eq!(tx(&app, &cold_funding)["confirmations"], 1);
    let t = tx(&app, &cold_child);
    assert_eq!(t["confirmations"], 1);
    assert!(
        t["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["address"] == COLD)
    );
    // Recorded and audited as the appliance's own spends (no unexpected-spend alert).
    let (_, list, _) = cli_json(&app, &["transfer", "list"]);
    let kinds: Vec<&str> = list["transfers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.iter().filter(|k| **k == "cpfp").count(), 2, "{list}");
    let (_, out, _) = app.cli(&["audit", "--action", "transfer.cpfp", "--json"]);
    for action in [
        "transfer.cpfp",
        "transfer.cpfp.refused",
        "transfer.cpfp.broadcast",
    ] {
        assert!(out.contains(&format!("\"{action}\"")), "{action}: {out}");
    }
}

/// Two confirmed payments: 60 000 and 40 000 sat.
fn funded() -> (Devnet, tempfile::TempDir, Appliance, String) {
    let (devnet, dir, app) = appliance();
    let mut funding = String::new();
    for (n, amount) in [(1, 60_000u64), (2, 40_000)] {
        let (_, f) = paid(&app, &devnet, amount, &format!("order-fund-{n}"));
        funding = f;
    }
    devnet.mine(2);
    app.wait_status(Duration::from_secs(60), "confirmed balance", |s| {
        s["wallet"]["confirmed_sat"] == 100_000
    });
    (devnet, dir, app, funding)
}

#[test]
fn a_broadcast_transfer_is_replaced_by_a_higher_fee_and_the_replacement_is_mined() {
    let (devnet, dir, app, incoming) = funded();
    let secret = totp_secret(&app);
    let out = dir.path().join("t.psbt");
    let (c, built, err) = cli_json(
        &app,
        &[
            "transfer",
            "create",
            "--amount-sat",
            "70000",
            "--fee-rate",
            "2",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(c, 0, "{err}");
    let original = built["txid"].as_str().unwrap().to_owned();
    let original_fee = built["fee_sat"].as_u64().unwrap();
    // Not broadcast yet: nothing to bump.
    let (c, v, err) = bump(&app, &[&original, "--fee-rate", "6"]);
    assert_eq!(c, 2, "{err}");
    assert_eq!(v["error"]["code"], "not_bumpable");
    assert!(err.contains("never broadcast"), "{err}");
    let signed = bdk_sign(built["psbt"].as_str().unwrap());
    let (c, _, err) = broadcast(&app, &b64(&signed), &code(&secret, 0));
    assert_eq!(c, 0, "{err}");

    // Bad requests.
    let unknown = "ab".repeat(32);
    let (c, v, err) = bump(&app, &[&unknown, "--fee-rate", "6"]);
    assert_eq!(c, 3, "{err}");
    assert_eq!(v["error"]["code"], "unknown_txid");
    let (c, v, err) = bump(&app, &[&incoming, "--fee-rate", "6"]);
    assert_eq!(c, 2, "{err}");
    assert_eq!(v["error"]["code"], "not_bumpable");
    assert!(err.contains("not a transfer this appliance built"), "{err}");
    // Lower than the transfer's, and equal to what it was built at (BIP125 wants more).
    for rate in ["1.5", "2"] {
        let (c, v, err) = bump(&app, &[&original, "--fee-rate", rate]);
        assert_eq!(c, 2, "{err}");
        assert_eq!(v["error"]["code"], "fee_rate_not_higher");
        assert!(
            err.contains("is not higher than the transaction's"),
            "{err}"
        );
    }
    let (c, v, _) = bump(&app, &[&original, "--fee-rate", "5000"]);
    assert_eq!(c, 2);
    assert_eq!(v["error"]["code"], "fee_rate_out_of_bounds");
    let (c, _, err) = bump(&app, &["not-a-txid", "--fee-rate", "6"]);
    assert_eq!(c, 2, "{err}");
    assert!(err.contains("is not a transaction id"), "{err}");

    // The replacement: same coins, 70 000 sat to cold storage, a higher fee.
    let (c, b, err) = bump(&app, &[&original, "--fee-rate", "6"]);
    assert_eq!(c, 0, "{err}");
    assert_eq!(b["kind"], "bump");
    assert_eq!(b["replaces"], original.as_str());
    assert_eq!(b["destination"], COLD);
    assert_eq!(b["amount_sat"], 70_000);
    let new_fee = b["fee_sat"].as_u64().unwrap();
    assert!(new_fee >= 3 * original_fee, "{new_fee} vs {original_fee}");
    let replacement = psbt(b["psbt"].as_str().unwrap());
    let old_inputs: Vec<String> = built["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_str().unwrap().to_owned())
        .collect();
    assert!(
        replacement
            .unsigned_tx
            .input
            .iter()
            .any(|i| old_inputs.contains(&i.previous_output.to_string())),
        "spends the same coins"
    );

    // Tampered replacement: more to the thief than the change. Refused, no code spent.
    let mut stolen = replacement.clone();
    let i = stolen
        .unsigned_tx
        .output
        .iter()
        .position(|o| o.script_pubkey != spk(COLD))
        .unwrap();
    stolen.unsigned_tx.output[i].script_pubkey = spk(THIEF);
    let (c, v, err) = broadcast(&app, &b64(&bdk_sign(&b64(&stolen))), &code(&secret, 1));
    assert_eq!(c, 5, "{err}");
    assert_eq!(v["error"]["code"], "not_the_built_transaction");
    assert!(err.contains(THIEF), "{err}");

    // The real Electrum signs the replacement; broadcast on the next code; mined.
    let electrum = electrum_signer();
    let signed = electrum.offline(&["signtransaction", b["psbt"].as_str().unwrap()]);
    let (c, v, err) = broadcast(&app, &signed, &code(&secret, 1));
    assert_eq!(c, 0, "{err}");
    let bumped = v["broadcast_txid"].as_str().unwrap().to_owned();
    assert_eq!(bumped, b["txid"].as_str().unwrap());
    devnet.mine(1);
    let t = tx(&app, &bumped);
    assert_eq!(t["confirmations"], 1);
    assert_eq!(t["fee_sat"], new_fee);
    let (c, _, _) = app.cli(&["tx", &original]);
    assert_eq!(c, 3, "the replaced transfer is gone from the server");
    // Confirmed: nothing to bump any more.
    let (c, v, err) = wait_bump_refused(&app, &bumped);
    assert_eq!(c, 2, "{err}");
    assert_eq!(v["error"]["code"], "not_bumpable");
    assert!(err.contains("already confirmed"), "{err}");
    let (_, out, _) = app.cli(&["audit", "--action", "transfer.bump", "--json"]);
    for action in [
        "transfer.bump",
        "transfer.bump.refused",
        "transfer.bump.broadcast",
    ] {
        assert!(out.contains(&format!("\"{action}\"")), "{action}: {out}");
    }
}

/// Bumps `txid` until the wallet has seen its block (bounded): the refusal that follows.
fn wait_bump_refused(app: &Appliance, txid: &str) -> (i32, Value, String) {
    common::wait_until(Duration::from_secs(60), "wallet sees the block", || {
        let r = bump(app, &[txid, "--fee-rate", "20"]);
        r.2.contains("already confirmed").then_some(r)
    })
}
