//! Operator look-ups against the real ElectrumX in front of the devnet: `tx` (by txid,
//! address, payment id and reference; with the daemon running and stopped) and `fees`.

mod common;

use std::time::Duration;

use common::appliance::Appliance;
use serde_json::{Value, json};

fn json_out(app: &Appliance, args: &[&str]) -> (i32, Value, String) {
    let mut all = args.to_vec();
    all.push("--json");
    let (code, out, err) = app.cli(&all);
    let v = serde_json::from_str(&out).unwrap_or(Value::Null);
    (code, v, err)
}

#[test]
fn tx_reports_fee_rate_rbf_parents_and_the_payment_it_pays() {
    let (devnet, _dir, mut app) = Appliance::on_fresh_devnet();
    let p = app.create_payment(40_000, "order-fees-1", None);
    let id = p["id"].as_str().unwrap().to_owned();
    let address = p["address"].as_str().unwrap().to_owned();
    let first = devnet.pay(&address, 40_000);
    app.wait_payment(&id, Duration::from_secs(10), "unconfirmed", |v| {
        v["status"] == "unconfirmed"
    });
    // A second faucet payment may spend the first one's change: an unconfirmed parent.
    let other = app.create_payment(30_000, "order-fees-2", None);
    let second = devnet.pay(other["address"].as_str().unwrap(), 30_000);

    let (code, v, err) = json_out(&app, &["tx", &first]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["kind"], "txid");
    let t = &v["transactions"][0];
    assert_eq!(t["txid"], first.as_str());
    assert_eq!(t["confirmations"], 0);
    assert_eq!(t["block_height"], Value::Null);
    assert_eq!(t["rbf"], true, "the faucet signals RBF");
    // The devnet's own view of the same transaction: its fee and size.
    let raw = devnet.rpc().call("getrawmempool", json!([true])).unwrap();
    let entry = &raw[&first];
    let fee_sat = (entry["fees"]["base"].as_f64().unwrap() * 1e8).round() as u64;
    assert_eq!(t["fee_sat"], fee_sat);
    assert_eq!(t["vsize"], entry["vsize"]);
    let vsize = t["vsize"].as_u64().unwrap();
    assert_eq!(t["fee_rate_sat_per_kvb"], fee_sat * 1000 / vsize);
    assert_eq!(t["pays"], json!({ id.clone(): 40_000 }));
    let paying: Vec<&Value> = t["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["payment_id"] == id.as_str())
        .collect();
    assert_eq!(paying.len(), 1);
    assert_eq!(paying[0]["reference"], "order-fees-1");
    assert_eq!(paying[0]["address"], address.as_str());

    // The second transaction's unconfirmed ancestors are exactly its unconfirmed inputs.
    let (_, v2, _) = json_out(&app, &["tx", &second]);
    let t2 = &v2["transactions"][0];
    let decoded = devnet
        .rpc()
        .call("getrawtransaction", json!([second, 1]))
        .unwrap();
    let mempool: Vec<String> = raw.as_object().unwrap().keys().cloned().collect();
    let mut expected: Vec<String> = decoded["vin"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["txid"].as_str().unwrap().to_owned())
        .filter(|t| mempool.contains(t))
        .collect();
    expected.dedup();
    let got: Vec<String> = t2["unconfirmed_ancestors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["txid"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(got, expected);
    let own = t2["fee_sat"].as_u64().unwrap();
    let parents: u64 = t2["unconfirmed_ancestors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["fee_sat"].as_u64().unwrap())
        .sum();
    assert_eq!(t2["package_fee_sat"], own + parents);

    // By address, payment id and reference: the same transaction.
    for q in [address.as_str(), id.as_str(), "order-fees-1"] {
        let (code, v, err) = json_out(&app, &["tx", q]);
        assert_eq!(code, 0, "{q}: {err}");
        assert_eq!(v["address"], address.as_str(), "{q}");
        assert_eq!(v["transactions"][0]["txid"], first.as_str(), "{q}");
    }
    // The human form names the fee rate and the payment.
    let (code, human, _) = app.cli(&["tx", &first]);
    assert_eq!(code, 0);
    assert!(human.contains("sat/vB") && human.contains(&id), "{human}");
    assert!(human.contains("signals RBF"), "{human}");

    // Confirmed: block height and hash, no ancestors.
    let height = devnet.mine(1);
    let (_, v, _) = json_out(&app, &["tx", &first]);
    let t = &v["transactions"][0];
    assert_eq!(t["confirmations"], 1);
    assert_eq!(t["block_height"], height);
    assert_eq!(t["block_hash"].as_str().unwrap().len(), 64);
    assert_eq!(t["unconfirmed_ancestors"], json!([]));

    // Bad input: unknown txid (exit 3), unknown reference (3), another network (1).
    let unknown = "ab".repeat(32);
    let (code, v, err) = json_out(&app, &["tx", &unknown]);
    assert_eq!(code, 3, "{err}");
    assert_eq!(v["error"]["code"], "unknown_txid");
    assert!(err.contains("unknown transaction"), "{err}");
    let (code, _, err) = app.cli(&["tx", "no-such-order"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("not a txid, an address"), "{err}");
    let (code, _, err) = app.cli(&["tx", "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("another network"), "{err}");

    // With the daemon stopped, the CLI opens the database and the server itself.
    app.stop();
    let (code, v, err) = json_out(&app, &["tx", "order-fees-1"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["transactions"][0]["pays"], json!({ id: 40_000 }));
}

#[test]
fn fees_show_estimates_histogram_and_which_payment_is_stuck() {
    let (devnet, _dir, app) = Appliance::on_fresh_devnet();
    // Fees rise to 25 sat/vB; the faucet pays 2 sat/vB: the payment is stuck.
    devnet.fee(25);
    devnet.mine(1);
    let p = app.create_payment(50_000, "order-stuck", None);
    let id = p["id"].as_str().unwrap().to_owned();
    let txid = devnet.pay(p["address"].as_str().unwrap(), 50_000);
    app.wait_payment(&id, Duration::from_secs(10), "unconfirmed", |v| {
        v["status"] == "unconfirmed"
    });
    let (code, out, err) = app.cli(&["fees", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let blocks: Vec<u64> = v["estimates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["blocks"].as_u64().unwrap())
        .collect();
    assert_eq!(blocks, [1, 3, 6, 24, 144]);
    for e in v["estimates"].as_array().unwrap() {
        assert_eq!(e["sat_per_kvb"], 25_000, "{e}");
        assert_eq!(e["sat_vb"], "25.00");
    }
    assert_eq!(v["relay_fee_sat_per_kvb"], 1000);
    // ElectrumX recomputes its histogram only every 500 s, so a fresh devnet's is empty;
    // what is checked is that it is passed on whole and summed right.
    let buckets: u64 = v["mempool_histogram"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["vsize"].as_u64().unwrap())
        .sum();
    assert_eq!(v["mempool_vsize"], buckets);
    let stuck = v["unconfirmed_payments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["payment_id"] == id.as_str())
        .unwrap_or_else(|| panic!("payment missing: {v}"));
    assert_eq!(stuck["txid"], txid.as_str());
    assert_eq!(stuck["likely_soon"], false);
    assert_eq!(stuck["expected_within_blocks"], Value::Null);
    assert_eq!(stuck["rbf"], true);
    // The CPFP fee brings the package (parent + 110 vB child) to 25 sat/vB.
    let (_, tx, _) = json_out(&app, &["tx", &txid]);
    let t = &tx["transactions"][0];
    let pkg_fee = t["package_fee_sat"].as_u64().unwrap();
    let pkg_vsize = t["package_vsize"].as_u64().unwrap();
    let child = stuck["cpfp_fee_sat"].as_u64().unwrap();
    assert_eq!(child, (25 * (pkg_vsize + 110)) - pkg_fee);
    let (code, human, _) = app.cli(&["fees"]);
    assert_eq!(code, 0);
    assert!(
        human.contains("STUCK") && human.contains(&format!("{child} sat")),
        "{human}"
    );

    // Back to 1 sat/vB: the same payment now confirms soon, no CPFP needed.
    devnet.fee(1);
    devnet.mine(1);
    let p2 = app.create_payment(20_000, "order-cheap", None);
    let id2 = p2["id"].as_str().unwrap().to_owned();
    devnet.pay(p2["address"].as_str().unwrap(), 20_000);
    app.wait_payment(&id2, Duration::from_secs(10), "unconfirmed", |v| {
        v["status"] == "unconfirmed"
    });
    let (_, v, _) = json_out(&app, &["fees"]);
    let fine = v["unconfirmed_payments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["payment_id"] == id2.as_str())
        .unwrap_or_else(|| panic!("payment missing: {v}"));
    assert_eq!(fine["likely_soon"], true);
    assert_eq!(fine["expected_within_blocks"], 1);
    assert_eq!(fine["cpfp_fee_sat"], 0);
}

#[test]
fn lookups_say_when_the_electrum_server_is_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let env = common::appliance::offline_env(dir.path());
    let mut app = Appliance::start(dir.path(), env);
    app.stop();
    for args in [vec!["fees"], vec!["tx", &"ab".repeat(32)]] {
        let (code, _, err) = app.cli(&args);
        assert_eq!(code, 4, "{args:?}: {err}");
        assert!(err.contains("cannot connect to Electrum server"), "{err}");
        assert!(err.contains("check ELECTRUM_HOST"), "{err}");
    }
}
