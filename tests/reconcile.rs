//! `snakkaz-pay reconcile` against the real ElectrumX (default cost limits) in front of the
//! devnet and a real PostgreSQL: a payment paid while the daemon was stopped is found on
//! the stopped database and fixed with a "reconciled" event; a deleted Supabase row is
//! found through the running daemon and re-sent; Electrum or Postgres away is said so.

mod common;

use std::time::Duration;

use common::appliance::{Appliance, base_env, binary};
use common::devnet::Devnet;
use common::json_out;
use common::postgres::{Postgres, sink_env, wait_mirrored};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn kinds(v: &Value) -> Vec<String> {
    v["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["kind"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_payment_paid_while_the_daemon_was_stopped_is_found_and_fixed_on_the_stopped_database() {
    let (devnet, _dir, mut app) = Appliance::on_fresh_devnet();
    let paid = app.create_payment(40_000, "order-rec-1", None);
    let quiet = app.create_payment(10_000, "order-rec-2", None);
    let id = paid["id"].as_str().unwrap().to_owned();
    let address = paid["address"].as_str().unwrap().to_owned();

    // Nothing to find while the daemon watches.
    let (code, v, err) = json_out(&app, &["reconcile"]);
    assert_eq!(code, 0, "{v:#} {err}");
    assert_eq!(v["complete"], true);
    assert_eq!(v["checked"], 2);
    assert_eq!(v["differences_found"], 0);
    assert_eq!(v["sink"], "not_configured");

    app.stop();
    let txid = devnet.pay(&address, 40_000);
    // Two blocks: the tests' ELECTRUM_MIN_CONFIRMATIONS.
    let tip = devnet.mine(2);
    devnet.wait_electrum_height(tip);
    let height = tip - 1;

    // Found, not fixed: exit 6, the store untouched.
    let (code, v, err) = json_out(&app, &["reconcile"]);
    assert_eq!(code, 6, "{v:#} {err}");
    assert_eq!(v["complete"], true);
    assert_eq!(kinds(&v), ["paid_not_recorded"]);
    let d = &v["differences"][0];
    assert_eq!(d["payment_id"], id.as_str());
    assert_eq!(d["store_status"], "pending");
    assert_eq!(d["store_received_sat"], 0);
    assert_eq!(d["other_status"], "confirmed");
    assert_eq!(d["other_received_sat"], 40_000);
    assert_eq!(d["fixed"], false);
    let evidence = d["evidence"].as_str().unwrap();
    assert!(
        evidence.contains(&format!("40000 sat in {txid}@{height}")),
        "{evidence}"
    );
    assert!(v["electrum_cost"].as_u64().unwrap() > 0);

    // The human form names it too.
    let (code, out, _) = app.cli(&["reconcile"]);
    assert_eq!(code, 6);
    assert!(out.contains("paid_not_recorded"), "{out}");
    assert!(out.contains("reconcile --fix"), "{out}");

    // Fixed with --fix: the lifecycle's answer and a "reconciled" event.
    let (code, v, err) = json_out(&app, &["reconcile", "--fix"]);
    assert_eq!(code, 0, "{v:#} {err}");
    assert_eq!(v["fixed"], 1);
    assert_eq!(v["unfixed"], 0);
    assert_eq!(v["differences"][0]["fixed"], true);
    let (code, v, _) = json_out(&app, &["reconcile"]);
    assert_eq!(code, 0, "fixed stays fixed: {v:#}");
    assert_eq!(v["differences_found"], 0);

    app.restart();
    app.wait_status(Duration::from_secs(30), "Electrum connection", |s| {
        s["electrum"]["connected"] == true
    });
    let p = app.wait_payment(&id, Duration::from_secs(20), "confirmed", |p| {
        p["status"] == "confirmed"
    });
    assert_eq!(p["received_sat"], 40_000);
    let events = p["events"].as_array().expect("events");
    let rec = events
        .iter()
        .find(|e| e["reason"].as_str().unwrap_or("").starts_with("reconciled"))
        .unwrap_or_else(|| panic!("no reconciled event: {events:#?}"));
    assert!(
        rec["reason"]
            .as_str()
            .unwrap()
            .contains("paid_not_recorded"),
        "{rec}"
    );
    let (_, q) = app.get(&format!("/api/payments/{}", quiet["id"].as_str().unwrap()));
    assert_eq!(q["status"], "pending", "the unpaid payment is untouched");

    // The report of the last run on the status API and in the metrics.
    let (_, s) = app.get("/api/status");
    assert_eq!(s["reconcile"]["differences"], 0, "{:#}", s["reconcile"]);
    assert_eq!(s["reconcile"]["in_progress"], false);
    assert!(s["reconcile"]["last_run_at"].as_u64().unwrap() > 0);
    let m = app.metrics_text();
    assert!(
        m.contains("snakkaz_pay_reconcile_last_run_timestamp_seconds "),
        "{m}"
    );
    assert!(m.contains("snakkaz_pay_reconcile_differences 0"), "{m}");
}

#[test]
fn electrum_away_and_bad_arguments_fail_clearly() {
    let (mut devnet, _dir, mut app) = Appliance::on_fresh_devnet();
    app.create_payment(10_000, "order-rec-3", None);
    let (code, _, err) = app.cli(&["reconcile", "--fixx"]);
    assert_eq!(code, 64, "{err}");
    assert!(err.contains("--fixx"), "{err}");

    devnet.stop_electrumx();
    // Through the daemon.
    let (code, v, err) = json_out(&app, &["reconcile"]);
    assert_eq!(code, 4, "{v:#} {err}");
    assert_eq!(v["error"]["code"], "electrum_unavailable");
    assert!(err.contains("ELECTRUM_HOST"), "{err}");
    assert!(err.contains("continues where it left off"), "{err}");
    // On the stopped database.
    app.stop();
    let (code, v, err) = json_out(&app, &["reconcile"]);
    assert_eq!(code, 4, "{v:#} {err}");
    assert_eq!(v["error"]["code"], "electrum_unavailable");
}

#[test]
fn a_deleted_supabase_row_is_found_through_the_daemon_and_sent_again() {
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
    let app = Appliance::start(dir.path(), env);
    app.wait_status(
        Duration::from_secs(30),
        "Electrum and Postgres connected",
        |s| s["electrum"]["connected"] == true && s["sink"]["connected"] == true,
    );
    let a = app.create_payment(20_000, "order-sink-1", None);
    let b = app.create_payment(30_000, "order-sink-2", None);
    let a_id = a["id"].as_str().unwrap().to_owned();
    wait_mirrored(&app, &pg, Duration::from_secs(30), "created");

    let (code, v, err) = json_out(&app, &["reconcile"]);
    assert_eq!(code, 0, "{v:#} {err}");
    assert_eq!(v["sink"], "compared");
    assert_eq!(v["differences_found"], 0);

    pg.exec(&format!(
        "DELETE FROM electrum_payments WHERE id = '{a_id}'"
    ));
    pg.exec(&format!(
        "UPDATE electrum_payments SET version = 0, status = 'expired' WHERE id = '{}'",
        b["id"].as_str().unwrap()
    ));
    let (code, v, err) = json_out(&app, &["reconcile"]);
    assert_eq!(code, 6, "{v:#} {err}");
    let mut k = kinds(&v);
    k.sort();
    assert_eq!(k, ["sink_row_missing", "sink_row_stale"]);
    let stale = v["differences"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["kind"] == "sink_row_stale")
        .unwrap();
    assert_eq!(stale["other_status"], "expired");
    assert_eq!(stale["store_status"], "pending");

    let (code, v, err) = json_out(&app, &["reconcile", "--fix"]);
    assert_eq!(code, 0, "{v:#} {err}");
    assert_eq!(v["fixed"], 2);
    wait_mirrored(&app, &pg, Duration::from_secs(30), "re-sent by --fix");
    let rows = pg.query_json(&format!(
        "SELECT status FROM electrum_payments WHERE id = '{a_id}'"
    ));
    assert_eq!(rows.len(), 1, "the deleted row is back");

    // Postgres away: the chain is still compared, the sink's failure said (exit 5).
    pg.stop();
    let (code, v, err) = json_out(&app, &["reconcile"]);
    assert_eq!(code, 5, "{v:#} {err}");
    assert_eq!(v["complete"], true);
    assert_eq!(v["sink"], "failed");
    assert!(
        v["sink_error"].as_str().unwrap().contains("Postgres"),
        "{v:#}"
    );
    assert!(!v["sink_error"].as_str().unwrap().contains("password"));
    let (_, s) = app.get("/api/status");
    assert!(
        s["reconcile"]["sink_error"].is_string(),
        "{:#}",
        s["reconcile"]
    );
}

#[test]
fn an_interrupted_run_continues_where_it_stopped() {
    let devnet = Devnet::start();
    let dir = tempfile::tempdir().unwrap();
    let mut env = base_env(
        dir.path(),
        devnet.electrum_host(),
        devnet.electrum_tcp_port(),
        false,
    );
    // A budget of 20 ElectrumX units: about 40 address histories, then reconcile must
    // wait for the server to forgive them (0.02 units per second).
    env.push(("SNAKKAZ_PAY_ELECTRUM_COST_BUDGET".into(), "20".into()));
    let mut app = Appliance::start(dir.path(), env.clone());
    app.wait_status(Duration::from_secs(30), "Electrum connection", |s| {
        s["electrum"]["connected"] == true
    });
    let payments: Vec<Value> = (0..45)
        .map(|i| app.create_payment(10_000 + i, &format!("order-resume-{i}"), None))
        .collect();
    app.stop();
    let first = payments[0]["address"].as_str().unwrap();
    let last = payments[44]["address"].as_str().unwrap();
    devnet.pay(first, 10_000);
    devnet.pay(last, 10_044);

    // The first run spends the budget, waits out its slice, reports its progress, and is
    // killed while it waits again.
    let mut child = Command::new(binary())
        .arg("--config")
        .arg(dir.path().join("config.toml"))
        .arg("reconcile")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("SNAKKAZ_PAY_LISTEN", &app.addr)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run snakkaz-pay reconcile");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let progress = loop {
        match rx.recv_timeout(Duration::from_secs(90)) {
            Ok(line) if line.contains("payment(s) checked") => break line,
            Ok(_) => continue,
            Err(e) => {
                let _ = child.kill();
                panic!("no progress line from the first run: {e}");
            }
        }
    };
    child.kill().expect("kill the first run");
    child.wait().expect("reap the first run");
    let checked: u64 = progress
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{progress}"));
    assert!(checked > 0 && checked < 45, "{progress}");
    assert!(progress.contains("1 difference(s)"), "{progress}");

    // The operator lifts the budget (0: the server has no limits); the next run
    // continues from the cursor and reports the whole run.
    app.set_env("SNAKKAZ_PAY_ELECTRUM_COST_BUDGET", "0");
    let (code, v, err) = json_out(&app, &["reconcile"]);
    assert_eq!(code, 6, "{v:#} {err}");
    assert_eq!(v["complete"], true);
    assert_eq!(v["checked"], 45, "{v:#}");
    assert!(v["slices"].as_u64().unwrap() >= 2, "{v:#}");
    let found: Vec<&str> = v["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["payment_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        found,
        [
            payments[0]["id"].as_str().unwrap(),
            payments[44]["id"].as_str().unwrap()
        ],
        "the first run's finding is kept: {v:#}"
    );
}
