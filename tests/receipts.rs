//! Money no open payment counts is never silent: it becomes an unattributed receipt the
//! operator sees (status, page, metrics, alert) and assigns to a payment.

mod common;

use std::time::Duration;

use common::appliance::Appliance;

#[test]
fn money_sent_to_a_closed_payment_after_its_window_is_an_unattributed_receipt() {
    // No late window: the payment is closed for good at expiry.
    let (devnet, _dir, app) =
        Appliance::on_fresh_devnet_with(&[("SNAKKAZ_PAY_LATE_PAYMENT_WINDOW_SECS", "0")]);
    let p = app.create_payment(40_000, "closed-then-paid", Some(2));
    let id = p["id"].as_str().unwrap().to_owned();
    let address = p["address"].as_str().unwrap().to_owned();
    app.wait_payment(&id, Duration::from_secs(30), "expired", |v| {
        v["status"] == "expired"
    });
    // The late window (none) ends at the next deadline tick.
    std::thread::sleep(Duration::from_secs(2));
    let (_, healthy) = app.get("/api/status");
    assert_eq!(healthy["receipts"]["unassigned"], 0, "{healthy}");

    let txid = devnet.pay(&address, 25_000);
    let st = app.wait_status(Duration::from_secs(30), "the receipt", |s| {
        s["receipts"]["unassigned"] == 1
    });
    assert_eq!(st["receipts"]["unassigned_sat"], 25_000, "{st}");
    assert_eq!(
        st["healthy"], false,
        "an unassigned receipt is a problem: {st}"
    );
    assert!(
        st["problems"].to_string().contains("unattributed receipt"),
        "{st}"
    );
    // The payment itself stays as it was: the money came after its window.
    let (_, pay) = app.get(&format!("/api/payments/{id}"));
    assert_eq!(pay["status"], "expired", "{pay}");
    assert_eq!(pay["received_sat"], 0, "{pay}");

    let (code, list) = app.get("/api/receipts");
    assert_eq!(code, 200);
    let r = &list["receipts"][0];
    assert_eq!(r["txid"], txid.as_str(), "{list}");
    assert_eq!(r["address"], address.as_str());
    assert_eq!(r["amount_sat"], 25_000);
    assert_eq!(r["cause"], "closed_payment");
    assert_eq!(r["address_payment_id"], id.as_str());
    let outpoint = r["outpoint"].as_str().unwrap().to_owned();

    let metrics = app.metrics_text();
    assert!(
        metrics.contains("snakkaz_pay_unattributed_receipts 1"),
        "{metrics}"
    );
    assert!(metrics.contains("snakkaz_pay_unattributed_receipts_sat 25000"));
    let (_, alerts) = app.get("/api/alerts");
    assert!(
        alerts.to_string().contains("SnakkazPayUnattributedReceipt"),
        "{alerts}"
    );
    let (code, page) = common::appliance::http(&app.addr, "GET", "/", None, None);
    assert_eq!(code, 200);
    let page = String::from_utf8_lossy(&page);
    assert!(
        page.contains("Unattributed receipts") && page.contains(&outpoint),
        "the page lists the receipt"
    );

    // The CLI lists it and exits 2 while it waits for the operator.
    let (code, out, err) = app.cli(&["receipts"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        out.contains(&outpoint) && out.contains("unassigned"),
        "{out}"
    );

    // Confirmation moves it, and it stays a receipt.
    devnet.mine(1);
    app.wait_get(
        "/api/receipts",
        Duration::from_secs(30),
        "confirmed receipt",
        |v| v["receipts"][0]["height"].is_u64(),
    );

    // Bad input is named; nothing changes.
    let (code, _, err) = app.cli(&["receipts", "assign", "00:0", &id]);
    assert_ne!(code, 0);
    assert!(err.contains("no unattributed receipt"), "{err}");
    let (code, _, err) = app.cli(&["receipts", "assign", &outpoint, "pay_nosuch"]);
    assert_ne!(code, 0);
    assert!(err.contains("pay_nosuch"), "{err}");

    // The operator assigns it: the problem goes, the payment's history records it.
    let (code, out, err) = app.cli(&[
        "receipts",
        "assign",
        &outpoint,
        &id,
        "--note",
        "customer paid a week late; delivered by hand",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let st = app.wait_status(Duration::from_secs(10), "receipt assigned", |s| {
        s["receipts"]["unassigned"] == 0
    });
    assert_eq!(st["healthy"], true, "{st}");
    let (_, pay) = app.get(&format!("/api/payments/{id}"));
    assert!(
        pay["events"]
            .to_string()
            .contains(&format!("operator assigned receipt {outpoint}")),
        "{pay}"
    );
    let (code, _, _) = app.cli(&["receipts"]);
    assert_eq!(code, 0);
    let (code, audit, _) = app.cli(&["audit", "--action", "receipt.assign"]);
    assert_eq!(code, 0);
    assert!(audit.contains(&outpoint), "{audit}");
}

#[test]
fn a_receipt_whose_transaction_leaves_the_chain_is_marked_gone() {
    let (devnet, _dir, app) =
        Appliance::on_fresh_devnet_with(&[("SNAKKAZ_PAY_LATE_PAYMENT_WINDOW_SECS", "0")]);
    let p = app.create_payment(10_000, "closed-then-reorged", Some(2));
    let id = p["id"].as_str().unwrap().to_owned();
    app.wait_payment(&id, Duration::from_secs(30), "expired", |v| {
        v["status"] == "expired"
    });
    std::thread::sleep(Duration::from_secs(2));
    let txid = devnet.pay(p["address"].as_str().unwrap(), 12_000);
    devnet.mine(1);
    app.wait_status(Duration::from_secs(30), "the receipt", |s| {
        s["receipts"]["unassigned"] == 1
    });
    // A reorg that drops the transaction: the money is gone, so is the problem.
    devnet.reorg(1, &[&txid]);
    let list = app.wait_get(
        "/api/receipts",
        Duration::from_secs(60),
        "receipt gone",
        |v| v["receipts"][0]["gone"] == true,
    );
    assert_eq!(list["receipts"][0]["txid"], txid.as_str());
    let (_, st) = app.get("/api/status");
    assert_eq!(st["receipts"]["unassigned"], 0, "{st}");
}
