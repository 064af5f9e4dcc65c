//! The sink's connection: TLS verified against the operator's CA, refused without it,
//! and failures (wrong password, unreachable host) shown clearly without the secret.
//! Also the schema itself: idempotent, RLS on, no policies, version-guarded upserts.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::appliance::{ADMIN_TOKEN, Appliance, binary, offline_env};
use common::postgres::{Postgres, sink_env, wait_mirrored};
use serde_json::Value;

/// An appliance whose Electrum server is unreachable (the sink does not need one).
fn appliance(dir: &Path, url: &str, ca: Option<&Path>) -> Appliance {
    let mut env = offline_env(dir);
    sink_env(&mut env, dir, url, ca);
    Appliance::start(dir, env)
}

fn sink_error(app: &Appliance, what: &str, needle: &str) -> Value {
    let s = app.wait_status(Duration::from_secs(20), what, |s| {
        s["sink"]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains(needle))
    });
    assert_eq!(s["sink"]["connected"], false, "{s:#}");
    assert!(s["sink"]["errors_total"].as_u64() >= Some(1));
    s
}

#[test]
fn tls_is_verified_and_failures_are_clear_without_the_secret() {
    let pg = Postgres::start();
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let wrong_password = "wrong-pw-7f3a9c1e55";
    let wrong_url = pg
        .url(Some("verify-full"))
        .replace(&pg.password, wrong_password);
    let verified = appliance(
        dirs[0].path(),
        &pg.url(Some("verify-full")),
        Some(&pg.ca_file),
    );
    let untrusted = appliance(dirs[1].path(), &pg.url(Some("verify-full")), None);
    let wrong = appliance(dirs[2].path(), &wrong_url, Some(&pg.ca_file));
    // Port 1 on loopback: nothing listens there.
    let unreachable = appliance(
        dirs[3].path(),
        &pg.url(None).replace(&format!(":{}/", pg.port), ":1/"),
        None,
    );

    let p = verified.create_payment(12_345, "tls-ok", None);
    untrusted.create_payment(1_000, "never-delivered", None);
    let s = verified.wait_status(Duration::from_secs(20), "sink connected", |s| {
        s["sink"]["connected"] == true
    });
    assert!(
        s["sink"]["target"]
            .as_str()
            .unwrap()
            .ends_with("(sslmode=verify-full)"),
        "{s:#}"
    );
    wait_mirrored(&verified, &pg, Duration::from_secs(20), "verified TLS");
    assert_eq!(
        pg.exec("SELECT count(*) FROM pg_stat_ssl WHERE ssl"),
        "1",
        "the sink's session is encrypted"
    );
    assert_eq!(
        pg.query_json("SELECT id FROM electrum_payments")[0]["id"],
        p["id"]
    );

    let s = sink_error(&untrusted, "certificate refused", "certificate");
    assert!(
        s["sink"]["last_error"]
            .as_str()
            .unwrap()
            .contains("UnknownIssuer"),
        "{s:#}"
    );
    assert!(
        s["sink"]["pending"].as_u64() >= Some(1),
        "the change waits in the outbox: {s:#}"
    );
    assert!(s["problems"].to_string().contains("Supabase sink"), "{s:#}");

    sink_error(
        &wrong,
        "password refused",
        "password authentication failed for user",
    );
    sink_error(&unreachable, "connection refused", "Connection refused");

    // The secret appears nowhere an operator or a log shipper can see.
    for (app, secret) in [
        (&verified, &pg.password),
        (&untrusted, &pg.password),
        (&wrong, &wrong_password.to_owned()),
    ] {
        let (_, status) = app.get("/api/status");
        let page = common::appliance::http(&app.addr, "GET", "/", Some(ADMIN_TOKEN), None).1;
        for (what, text) in [
            ("log", app.log()),
            ("status", status.to_string()),
            ("page", String::from_utf8_lossy(&page).into_owned()),
        ] {
            assert!(
                !text.contains(secret.as_str()),
                "the password leaked into the {what}:\n{text}"
            );
        }
    }
    assert!(
        wrong.log().contains("password authentication failed"),
        "the log names the failure"
    );
    let page = common::appliance::http(&wrong.addr, "GET", "/", Some(ADMIN_TOKEN), None).1;
    let page = String::from_utf8_lossy(&page);
    assert!(
        page.contains("Supabase sink not connected")
            && page.contains("password authentication failed"),
        "the page shows the failure: {page}"
    );

    // The schema: applying the printed script again is harmless; RLS on, no policies.
    let out = Command::new(binary())
        .args(["sink", "schema"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let script = String::from_utf8(out.stdout).unwrap();
    pg.exec(&script);
    pg.exec(&script);
    assert_eq!(
        pg.exec(
            "SELECT string_agg(version::text, ',' ORDER BY version) FROM snakkaz_pay_migrations"
        ),
        "1,2"
    );
    assert_eq!(
        pg.exec("SELECT count(*) FROM pg_class WHERE relrowsecurity AND relname IN ('electrum_payments', \
                 'electrum_payments_archive', 'bitcoin_wallets', 'electrum_transaction_cache', \
                 'electrum_receipts')"),
        "5"
    );
    assert_eq!(pg.exec("SELECT count(*) FROM pg_policies"), "0");

    // The upsert never lets an older version replace a newer one.
    let upsert = |version: i64, status: &str| {
        let row = serde_json::json!([{
            "id": "pay_guard", "reference": "guard", "description": null, "bitcoin_address": "bcrt1qguard",
            "amount_sat": 1000, "received_sat": 0, "status": status, "confirmations": 0, "txids": [],
            "flags": [], "created_at": 1, "updated_at": version, "expires_at": 100,
            "first_seen_at": null, "confirmed_at": null, "version": version
        }]);
        let sql = snakkaz_pay::sink::row::UPSERT_SQL.replace("$1", &format!("'{row}'"));
        pg.exec(&sql);
        pg.exec("SELECT status || ':' || version FROM electrum_payments WHERE id = 'pay_guard'")
    };
    assert_eq!(upsert(5, "unconfirmed"), "unconfirmed:5");
    assert_eq!(
        upsert(4, "pending"),
        "unconfirmed:5",
        "a stale version was written"
    );
    assert_eq!(
        upsert(5, "pending"),
        "unconfirmed:5",
        "an equal version is a no-op"
    );
    assert_eq!(upsert(6, "confirmed"), "confirmed:6");
}
