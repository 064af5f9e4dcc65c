//! `snakkaz-pay archive` against the real ElectrumX in front of the devnet and a real
//! PostgreSQL: a completed payment past its late window moves to the archive and its
//! Supabase row to `electrum_payments_archive`; it stays readable (marked archived) and its
//! address still names it when late money arrives; with Postgres away the store moves and
//! the Supabase move waits for the next run; bad ages are refused.

mod common;

use std::time::Duration;

use common::appliance::{Appliance, base_env};
use common::devnet::Devnet;
use common::json_out;
use common::postgres::{Postgres, sink_env, wait_mirrored};
use common::wait_until;
use serde_json::{Value, json};

fn ids(v: &Value) -> Vec<String> {
    v["payments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn completed_payments_move_to_the_archive_here_and_in_supabase_and_stay_readable() {
    let devnet = Devnet::start();
    let mut pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let mut env = base_env(
        dir.path(),
        devnet.electrum_host(),
        devnet.electrum_tcp_port(),
        false,
    );
    sink_env(&mut env, dir.path(), &pg.url(None), None);
    // No late window: a payment leaves the watch list at its expiry.
    env.push(("SNAKKAZ_PAY_LATE_PAYMENT_WINDOW_SECS".into(), "0".into()));
    // Completed by the daemon at the confirmation depth, so its watch ends at expiry
    // without a restart.
    env.push(("SNAKKAZ_PAY_AUTO_COMPLETE_DEPTH".into(), "2".into()));
    let mut app = Appliance::start(dir.path(), env);
    app.wait_status(
        Duration::from_secs(30),
        "Electrum and Postgres connected",
        |s| s["electrum"]["connected"] == true && s["sink"]["connected"] == true,
    );

    let done = app.create_payment(20_000, "order-arch-1", Some(10));
    let unpaid = app.create_payment(15_000, "order-arch-2", Some(3));
    let open = app.create_payment(30_000, "order-arch-3", None);
    let done_id = done["id"].as_str().unwrap().to_owned();
    let unpaid_id = unpaid["id"].as_str().unwrap().to_owned();
    let address = done["address"].as_str().unwrap().to_owned();
    devnet.pay(&address, 20_000);
    devnet.mine(2);
    app.wait_payment(&done_id, Duration::from_secs(30), "completed", |p| {
        p["status"] == "completed"
    });
    app.wait_payment(&unpaid_id, Duration::from_secs(30), "expired", |p| {
        p["status"] == "expired"
    });
    wait_mirrored(&app, &pg, Duration::from_secs(30), "before archiving");

    // Bad ages are refused before anything happens.
    for bad in ["soon", "90x", "1.5d"] {
        let (code, _, err) = app.cli(&["archive", "--older-than", bad]);
        assert_eq!(code, 64, "{bad}: {err}");
        assert!(err.contains("--older-than"), "{err}");
        assert!(err.contains("90d"), "{err}");
    }

    // Nothing is 90 days old.
    let (code, v, err) = json_out(&app, &["archive", "--dry-run"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["older_than_secs"], 90 * 86_400);
    assert_eq!(v["archived"], 0);

    // The completed payment becomes eligible once the daemon stops watching it (its
    // expiry passed, no late window); the expired one is not archived by default.
    let v = wait_until(
        Duration::from_secs(90),
        "the completed payment eligible",
        || {
            let (code, v, _) = json_out(&app, &["archive", "--older-than", "0s", "--dry-run"]);
            assert_eq!(code, 0, "{v:#}");
            (v["archived"] == 1).then_some(v)
        },
    );
    assert_eq!(ids(&v), [done_id.as_str()]);
    assert_eq!(v["dry_run"], true);
    assert_eq!(v["statuses"], json!(["completed"]));
    let (_, list) = app.get("/api/payments?limit=10");
    assert_eq!(
        list["payments"].as_array().unwrap().len(),
        3,
        "a dry run moves nothing"
    );

    // Through the running daemon.
    let (code, v, err) = json_out(&app, &["archive", "--older-than", "0s"]);
    assert_eq!(code, 0, "{v:#} {err}");
    assert_eq!(v["archived"], 1);
    assert_eq!(ids(&v), [done_id.as_str()]);
    assert_eq!(v["sink"], "moved");
    assert_eq!(v["sink_moved"], 1);
    assert_eq!(v["sink_pending"], 0);
    assert_eq!(v["archive_total"], 1);
    let live = pg.query_json(&format!(
        "SELECT id FROM electrum_payments WHERE id = '{done_id}'"
    ));
    assert!(live.is_empty(), "the live row is gone: {live:?}");
    let archived = pg.query_json(&format!(
        "SELECT status, received_sat FROM electrum_payments_archive WHERE id = '{done_id}'"
    ));
    assert_eq!(
        archived,
        [json!({"status": "completed", "received_sat": 20_000})]
    );

    // Still readable, marked archived; gone from lists and counts.
    let (code, p) = app.get(&format!("/api/payments/{done_id}"));
    assert_eq!(code, 200, "{p}");
    assert_eq!(p["status"], "completed");
    assert!(p["archived_at"].is_string(), "{p:#}");
    assert!(!p["events"].as_array().unwrap().is_empty());
    let (code, out, err) = app.cli(&["payment", "show", &done_id]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("archived"), "{out}");
    let (_, list) = app.get("/api/payments?limit=10");
    let listed: Vec<&str> = list["payments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert!(!listed.contains(&done_id.as_str()), "{listed:?}");
    assert!(listed.contains(&open["id"].as_str().unwrap()));
    let (_, s) = app.get("/api/status");
    assert_eq!(s["payments"]["completed"], 0, "{:#}", s["payments"]);
    // The mirror still equals the API: the archived row left electrum_payments.
    wait_mirrored(&app, &pg, Duration::from_secs(30), "after archiving");

    // Its address stays used: late money there is an unattributed receipt naming it.
    devnet.pay(&address, 7_000);
    let r = wait_until(
        Duration::from_secs(30),
        "the late money as a receipt",
        || {
            let (_, v) = app.get("/api/receipts");
            v["receipts"]
                .as_array()
                .and_then(|a| a.iter().find(|r| r["amount_sat"] == 7_000).cloned())
        },
    );
    assert_eq!(r["address_payment_id"], done_id.as_str(), "{r:#}");
    assert_eq!(r["cause"], "closed_payment", "{r:#}");

    // Expired payments too when configured; Postgres away: the store moves, the Supabase
    // move waits (exit 5) and the next run does it. On the stopped database this time.
    app.stop();
    app.set_env("SNAKKAZ_PAY_ARCHIVE_UNPAID", "true");
    pg.stop();
    let (code, v, err) = json_out(&app, &["archive", "--older-than", "0s"]);
    assert_eq!(code, 5, "{v:#} {err}");
    assert_eq!(ids(&v), [unpaid_id.as_str()]);
    assert_eq!(v["sink"], "failed");
    assert_eq!(v["sink_pending"], 1);
    assert!(
        v["sink_error"].as_str().unwrap().contains("Postgres"),
        "{v:#}"
    );
    let (code, out, _) = app.cli(&["archive", "--older-than", "0s"]);
    assert_eq!(code, 5);
    assert!(out.contains("moved by the next"), "{out}");
    pg.start_again();
    let (code, v, err) = json_out(&app, &["archive", "--older-than", "0s"]);
    assert_eq!(code, 0, "{v:#} {err}");
    assert_eq!(v["archived"], 0);
    assert_eq!(v["sink_moved"], 1);
    assert_eq!(v["sink_pending"], 0);
    assert_eq!(v["archive_total"], 2);
    let archived = pg.query_json(&format!(
        "SELECT status FROM electrum_payments_archive WHERE id = '{unpaid_id}'"
    ));
    assert_eq!(archived, [json!({"status": "expired"})]);
    assert!(
        pg.query_json(&format!(
            "SELECT id FROM electrum_payments WHERE id = '{unpaid_id}'"
        ))
        .is_empty()
    );
}
