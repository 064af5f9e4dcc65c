//! The Supabase mirror end to end: a real ElectrumX in front of the devnet, the real
//! daemon, a real PostgreSQL 15. Every row must equal the API's view, field by field,
//! through reorgs, double spends, expiry, a Postgres outage, `kill -9` and a resync.

mod common;

use std::process::Command;
use std::time::Duration;

use common::appliance::{Appliance, base_env, binary, offline_env};
use common::devnet::Devnet;
use common::postgres::{Postgres, sink_env, wait_mirrored};
use serde_json::Value;

/// The bound: converged within 30 s of Postgres coming back.
const CONVERGE: Duration = Duration::from_secs(30);

fn status(p: &Value) -> &str {
    p["status"].as_str().unwrap_or("")
}

fn id(p: &Value) -> &str {
    p["id"].as_str().unwrap()
}

fn addr(p: &Value) -> &str {
    p["address"].as_str().unwrap()
}

fn rows(pg: &Postgres) -> u64 {
    pg.exec("SELECT count(*) FROM electrum_payments")
        .parse()
        .unwrap()
}

/// `snakkaz-pay sink resync` with the appliance's environment.
fn cli_resync(app: &Appliance, env: &[(String, String)]) -> Value {
    let out = Command::new(binary())
        .arg("--config")
        .arg(app.dir.join("config.toml"))
        .args(["--json", "sink", "resync"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("SNAKKAZ_PAY_LISTEN", &app.addr)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sink resync failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn mirror_equals_the_api_through_reorg_double_spend_expiry_and_an_outage() {
    let devnet = Devnet::start();
    let mut pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let mut env = base_env(
        dir.path(),
        devnet.electrum_host(),
        devnet.electrum_tcp_port(),
        false,
    );
    // The default mode: sslmode=require, no CA file.
    sink_env(&mut env, dir.path(), &pg.url(None), None);
    let app = Appliance::start(dir.path(), env);
    app.wait_status(
        Duration::from_secs(20),
        "Electrum and Postgres connected",
        |s| s["electrum"]["connected"] == true && s["sink"]["connected"] == true,
    );

    let paid = app.create_payment(50_000, "paid", None);
    let reorged = app.create_payment(40_000, "reorged", None);
    let rbf = app.create_payment(25_000, "double-spent", None);
    let expiring = app.create_payment(10_000, "expires", Some(3));
    devnet.pay(addr(&paid), 50_000);
    let reorg_txid = devnet.pay(addr(&reorged), 40_000);
    let rbf_txid = devnet.pay(addr(&rbf), 25_000);
    for p in [&paid, &reorged, &rbf] {
        app.wait_payment(id(p), Duration::from_secs(5), "unconfirmed", |v| {
            status(v) == "unconfirmed"
        });
    }
    wait_mirrored(&app, &pg, CONVERGE, "paid");

    // Postgres goes away in the middle: the appliance keeps serving and processing.
    pg.stop();
    devnet.replace(&rbf_txid, None);
    app.wait_payment(
        id(&rbf),
        Duration::from_secs(5),
        "double spend back to pending",
        |v| status(v) == "pending",
    );
    devnet.mine(2);
    for p in [&paid, &reorged] {
        app.wait_payment(id(p), Duration::from_secs(5), "confirmed", |v| {
            status(v) == "confirmed"
        });
    }
    app.wait_payment(id(&expiring), Duration::from_secs(6), "expired", |v| {
        status(v) == "expired"
    });
    app.create_payment(5_000, "created-during-outage", None);
    let s = app.wait_status(Duration::from_secs(20), "the outage visible", |s| {
        s["sink"]["connected"] == false && s["sink"]["last_error"].is_string()
    });
    let pending = s["sink"]["pending"].as_u64().unwrap();
    assert!(pending >= 5, "every change waits in the outbox: {s:#}");
    assert!(s["sink"]["oldest_age_secs"].is_u64(), "{s:#}");
    assert_eq!(s["outbox"]["pending"], pending);

    pg.start_again();
    let took = wait_mirrored(&app, &pg, CONVERGE, "after the outage");
    eprintln!("converged {took:?} after Postgres came back");

    // Back online: a reorg drops one payment's transaction, and the other completes.
    devnet.reorg(2, &[reorg_txid.as_str()]);
    app.wait_payment(
        id(&reorged),
        Duration::from_secs(5),
        "reorged back to pending",
        |v| status(v) == "pending",
    );
    devnet.mine(2);
    app.wait_payment(id(&paid), Duration::from_secs(5), "confirmed again", |v| {
        status(v) == "confirmed"
    });
    let (code, done) = app.post(
        &format!("/api/payments/{}/complete", id(&paid)),
        &Value::Null,
    );
    assert_eq!((code, status(&done)), (200, "completed"), "{done}");
    wait_mirrored(&app, &pg, CONVERGE, "final");
    let row = &pg.query_json(&format!(
        "SELECT status, flags FROM electrum_payments WHERE id = '{}'",
        id(&reorged)
    ))[0];
    assert_eq!(row["status"], "pending");
    // It had been confirmed: the money leaving the chain is a loss the mirror shows too.
    assert_eq!(row["flags"], serde_json::json!(["reorged", "money_lost"]));
    assert_eq!(rows(&pg), 5, "one row per payment, no duplicates");

    // Beside the payments: every transaction they name, and the wallet's summary.
    let (_, paid_now) = app.get(&format!("/api/payments/{}", id(&paid)));
    let txid = paid_now["txids"][0].as_str().unwrap().to_owned();
    let sql = format!(
        "SELECT EXISTS (SELECT 1 FROM electrum_transaction_cache WHERE txid = '{txid}' AND height IS NOT NULL \
         AND received_sat = {})",
        paid_now["received_sat"]
    );
    pg.wait_sql(CONVERGE, "the paying transaction cached downstream", &sql);
    let (_, st) = app.get("/api/status");
    let w = &st["wallet"];
    let sql = format!(
        "SELECT EXISTS (SELECT 1 FROM bitcoin_wallets WHERE network = 'regtest' AND addresses_in_use = {} \
         AND confirmed_sat = {} AND unconfirmed_sat = {})",
        w["addresses_in_use"], w["confirmed_sat"], w["unconfirmed_sat"]
    );
    pg.wait_sql(CONVERGE, "the wallet summary mirrored", &sql);
    assert_eq!(pg.query_json("SELECT * FROM bitcoin_wallets").len(), 1);
}

#[test]
fn kill_9_mid_batch_converges_and_resync_rebuilds_an_emptied_database() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    // No Electrum server: payments are created and mirrored without one.
    let mut env = offline_env(dir.path());
    sink_env(
        &mut env,
        dir.path(),
        &pg.url(Some("verify-full")),
        Some(&pg.ca_file),
    );
    let mut app = Appliance::start(dir.path(), env.clone());
    app.wait_status(Duration::from_secs(20), "sink connected", |s| {
        s["sink"]["connected"] == true
    });

    // Another session locks the table, so the sink's next batch hangs in Postgres; the
    // appliance is killed right then, with the batch sent and nothing acknowledged.
    let lock = pg.lock_table("electrum_payments");
    for i in 0..300 {
        app.create_payment(1_000 + i, &format!("backlog-{i}"), None);
    }
    pg.wait_sql(
        Duration::from_secs(10),
        "the sink's batch waiting on the lock",
        "SELECT count(*) > 0 FROM pg_stat_activity WHERE application_name = 'snakkaz-pay' AND wait_event_type = 'Lock'",
    );
    app.kill9();
    drop(lock);
    app.restart();
    let took = wait_mirrored(&app, &pg, CONVERGE, "after kill -9");
    eprintln!("converged {took:?} after the restart");
    assert_eq!(rows(&pg), 300);

    // A replaced downstream database, with the daemon running: resync through its API.
    pg.exec("TRUNCATE electrum_payments");
    let r = cli_resync(&app, &env);
    assert_eq!(r["via"], "running daemon", "{r}");
    wait_mirrored(&app, &pg, CONVERGE, "resync through the daemon");

    // And with the daemon stopped: resync straight on the database file.
    assert_eq!(app.stop(), Some(0));
    pg.exec("TRUNCATE electrum_payments");
    let r = cli_resync(&app, &env);
    assert_eq!(r["via"], "database file", "{r}");
    assert_eq!(r["pending"], 300);
    app.restart();
    wait_mirrored(&app, &pg, CONVERGE, "resync on the file");
    assert_eq!(rows(&pg), 300);
}
