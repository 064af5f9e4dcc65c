//! The chain engine against an ElectrumX that keeps its default session cost limits
//! (soft 1,000, hard 10,000), as public and most private servers run: thousands of open
//! payments, a restart that must re-subscribe all of them, detection that stays fast, a
//! backlog that health reports honestly, and a SIGTERM in the middle of the catch-up.

mod common;

use std::time::{Duration, Instant};

use common::appliance::Appliance;
use common::devnet::Devnet;
use serde_json::Value;

/// Open payments created before the restart.
const OPEN: usize = 3_000;
/// Concurrent API clients creating them.
const CLIENTS: usize = 20;
/// A paid payment must be `unconfirmed` in the API within this long.
const DETECTION: Duration = Duration::from_secs(3);

fn pay_and_time(devnet: &Devnet, app: &Appliance, p: &Value) -> Duration {
    let id = p["id"].as_str().unwrap();
    let t = Instant::now();
    devnet.pay(
        p["address"].as_str().unwrap(),
        p["amount_sat"].as_u64().unwrap(),
    );
    app.wait_payment(id, Duration::from_secs(30), "unconfirmed", |v| {
        v["status"] == "unconfirmed"
    });
    t.elapsed()
}

fn problems(s: &Value) -> String {
    s["problems"].to_string()
}

#[test]
fn three_thousand_open_payments_on_a_default_limits_server() {
    let devnet = Devnet::start();
    let (dir, mut app) = {
        let dir = tempfile::tempdir().unwrap();
        let mut env = common::appliance::base_env(
            dir.path(),
            devnet.electrum_host(),
            devnet.electrum_tcp_port(),
            false,
        );
        env.retain(|(k, _)| k != "ELECTRUM_CHECK_INTERVAL");
        env.push((
            "SNAKKAZ_PAY_DETECTION_BACKLOG_ALERT_SECS".into(),
            "3".into(),
        ));
        env.push(("SNAKKAZ_PAY_LOG".into(), "info".into()));
        let app = Appliance::start(dir.path(), env);
        (dir, app)
    };
    let _keep = &dir;
    app.wait_status(Duration::from_secs(20), "Electrum connection", |s| {
        s["electrum"]["connected"] == true
    });

    // 3,000 open payments, created by 20 clients at once; each is subscribed as it comes.
    let started = Instant::now();
    let mut created: Vec<Value> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let app = &app;
                scope.spawn(move || {
                    (0..OPEN / CLIENTS)
                        .map(|n| {
                            app.create_payment(1_000 + n as u64, &format!("c{c}-{n}"), Some(86_400))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    eprintln!(
        "created {} payments in {:?}",
        created.len(),
        started.elapsed()
    );
    created.sort_by_key(|p| p["created_at"].as_u64());
    let st = app.wait_status(Duration::from_secs(60), "every payment subscribed", |s| {
        s["electrum"]["subscriptions"].as_u64() >= Some(OPEN as u64)
            && s["electrum"]["backlog"] == 0
    });
    assert_eq!(st["healthy"], true, "{}", problems(&st));

    // Payments made one after another are each noticed within seconds.
    for p in [&created[OPEN - 1], &created[OPEN / 2], &created[0]] {
        let took = pay_and_time(&devnet, &app, p);
        eprintln!("detected in {took:?}");
        assert!(took < DETECTION, "payment noticed after {took:?}");
    }

    // A restart: ElectrumX forgets subscriptions, so all 3,000 are subscribed again,
    // newest first, within the budget. That takes minutes on a default-limits server:
    // health says so, and new payments are still noticed at once.
    let t = Instant::now();
    assert_eq!(app.stop(), Some(0), "{}", app.log_tail());
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "stop took {:?}",
        t.elapsed()
    );
    app.restart();
    let st = app.wait_status(Duration::from_secs(60), "the backlog to be reported", |s| {
        s["healthy"] == false && problems(s).contains("detection degraded")
    });
    let backlog = st["electrum"]["backlog"].as_u64().unwrap();
    assert!(backlog > 0, "{st}");
    assert!(
        problems(&st).contains("COST_SOFT_LIMIT"),
        "the problem names the fix: {}",
        problems(&st)
    );
    eprintln!("after restart: {}", st["electrum"]);
    let (_, alerts) = app.get("/api/alerts");
    assert!(
        alerts.to_string().contains("SnakkazPayDetectionDegraded"),
        "the detection alert fires: {alerts}"
    );

    let fresh = app.create_payment(77_000, "after-restart", None);
    let took = pay_and_time(&devnet, &app, &fresh);
    eprintln!("new payment during catch-up detected in {took:?}");
    assert!(
        took < DETECTION,
        "new payment during catch-up noticed after {took:?}"
    );
    // The newest of the old payments were subscribed first.
    let took = pay_and_time(&devnet, &app, &created[OPEN - 2]);
    assert!(
        took < DETECTION,
        "recent open payment noticed after {took:?}"
    );

    let st = app.wait_status(Duration::from_secs(5), "status", |_| true);
    assert_eq!(
        st["electrum"]["session_failures_10m"], 0,
        "no session may be dropped: {st}"
    );
    assert_eq!(st["electrum"]["reconnects"], 0, "{st}");
    assert!(
        st["electrum"]["backlog"].as_u64() > Some(0),
        "catch-up still running when SIGTERM comes: {st}"
    );

    // SIGTERM in the middle of the catch-up.
    let t = Instant::now();
    assert_eq!(app.stop(), Some(0), "{}", app.log_tail());
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "stop during catch-up took {:?}",
        t.elapsed()
    );
    let ex_log = std::fs::read_to_string(devnet.electrumx_log()).unwrap_or_default();
    assert!(
        !ex_log.contains("closing session over res usage"),
        "ElectrumX dropped a session for resource usage"
    );
}
