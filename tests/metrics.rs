//! Prometheus metrics and the appliance's own alerts, against a real ElectrumX + devnet:
//! the scrape agrees with the API through a payment's life, promtool accepts it, every
//! metric the shipped rules and dashboards use is exported, and alerts fire and clear.

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::appliance::{Appliance, http};
use common::devnet::Devnet;
use common::wait_until;
use serde_json::Value;

fn start(extra: &[(&str, &str)]) -> (Devnet, tempfile::TempDir, Appliance) {
    Appliance::on_fresh_devnet_with(extra)
}

/// One scrape as raw text and as `name{labels}` → value.
fn scrape(app: &Appliance) -> (String, BTreeMap<String, f64>) {
    // Loopback listens with page_auth=none: Prometheus needs no token here.
    let (code, body) = http(&app.addr, "GET", "/api/metrics/bitcoin", None, None);
    let text = String::from_utf8(body).unwrap();
    assert_eq!(code, 200, "{text}");
    let values = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_owned(), v.parse::<f64>().unwrap())
        })
        .collect();
    (text, values)
}

fn metric(m: &BTreeMap<String, f64>, key: &str) -> f64 {
    *m.get(key)
        .unwrap_or_else(|| panic!("{key} not exported; have: {:#?}", m.keys()))
}

fn payments(m: &BTreeMap<String, f64>, status: &str) -> f64 {
    metric(m, &format!("snakkaz_pay_payments{{status=\"{status}\"}}"))
}

/// The scrape and /api/status agree on everything both report.
fn assert_agrees(app: &Appliance) -> (Value, BTreeMap<String, f64>) {
    // Both are recomputed on request; retry over the short moment a block moves one of them.
    wait_until(
        Duration::from_secs(10),
        "scrape agreeing with /api/status",
        || {
            let (_, s) = app.get("/api/status");
            let (_, m) = scrape(app);
            let w = &s["wallet"];
            let ok = metric(&m, "snakkaz_pay_electrum_connected")
                == f64::from(s["electrum"]["connected"] == true)
                && Some(metric(&m, "snakkaz_pay_chain_tip_height") as u64)
                    == s["electrum"]["tip_height"].as_u64()
                && Some(metric(&m, "snakkaz_pay_wallet_balance_sat{state=\"confirmed\"}") as u64)
                    == w["confirmed_sat"].as_u64()
                && Some(metric(&m, "snakkaz_pay_wallet_balance_sat{state=\"unconfirmed\"}") as u64)
                    == w["unconfirmed_sat"].as_u64()
                && Some(metric(&m, "snakkaz_pay_addresses_in_use") as u64)
                    == w["addresses_in_use"].as_u64()
                && [
                    "pending",
                    "unconfirmed",
                    "confirmed",
                    "completed",
                    "expired",
                    "underpaid",
                ]
                .iter()
                .all(|st| Some(payments(&m, st) as u64) == s["payments"][st].as_u64().or(Some(0)));
            ok.then_some((s, m))
        },
    )
}

/// promtool's `check metrics` reads the Prometheus 0.0.4 text format, where a counter's
/// metadata names the `_total` series; OpenMetrics names the family without it. Renaming
/// the metadata is exactly what Prometheus itself does when it ingests OpenMetrics.
fn as_prometheus_text(openmetrics: &str) -> String {
    let counters: Vec<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    openmetrics
        .lines()
        .filter(|l| *l != "# EOF")
        .map(|l| {
            for c in &counters {
                for kind in ["# HELP ", "# TYPE "] {
                    if let Some(rest) = l.strip_prefix(&format!("{kind}{c} ")) {
                        return format!("{kind}{c}_total {rest}\n");
                    }
                }
            }
            format!("{l}\n")
        })
        .collect()
}

fn promtool() -> Option<&'static str> {
    Command::new("promtool")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
        .then_some("promtool")
}

#[test]
fn scrape_follows_a_payment_and_matches_the_api() {
    let (devnet, _dir, app) = start(&[]);
    let (_, m) = assert_agrees(&app);
    assert_eq!(payments(&m, "pending"), 0.0);

    let p = app.create_payment(40_000, "metrics-1", None);
    let id = p["id"].as_str().unwrap();
    let (_, m) = assert_agrees(&app);
    assert_eq!(payments(&m, "pending"), 1.0);

    devnet.pay(p["address"].as_str().unwrap(), 40_000);
    app.wait_payment(id, Duration::from_secs(5), "unconfirmed", |v| {
        v["status"] == "unconfirmed"
    });
    let (_, m) = assert_agrees(&app);
    assert_eq!(
        (payments(&m, "pending"), payments(&m, "unconfirmed")),
        (0.0, 1.0)
    );
    assert_eq!(
        metric(&m, "snakkaz_pay_wallet_balance_sat{state=\"unconfirmed\"}"),
        40_000.0
    );
    // The observation is recorded just after the commit the API already shows: poll.
    wait_until(
        Duration::from_secs(3),
        "the subscription path measured",
        || {
            let (_, m) = assert_agrees(&app);
            (metric(&m, "snakkaz_pay_notification_to_update_seconds_count") >= 1.0).then_some(())
        },
    );

    devnet.mine(2);
    app.wait_payment(id, Duration::from_secs(10), "confirmed", |v| {
        v["status"] == "confirmed"
    });
    let (s, m) = assert_agrees(&app);
    assert_eq!(payments(&m, "confirmed"), 1.0);
    assert_eq!(s["wallet"]["confirmed_sat"], 40_000);
    assert_eq!(
        metric(&m, "snakkaz_pay_payment_confirmation_seconds_count"),
        1.0
    );
    assert_eq!(
        metric(&m, "snakkaz_pay_chain_tip_height"),
        f64::from(devnet.tip_height())
    );
    for name in [
        "snakkaz_pay_electrum_reconnects_total",
        "snakkaz_pay_data_disk_free_bytes",
        "snakkaz_pay_sink_pending",
        "snakkaz_pay_sink_oldest_pending_seconds",
        "snakkaz_pay_sink_errors_total",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
    ] {
        metric(&m, name);
    }
    assert!(metric(&m, "process_resident_memory_bytes") > 1e6);

    let (code, done) = app.post(&format!("/api/payments/{id}/complete"), &Value::Null);
    assert_eq!(code, 200, "{done}");
    let (_, m) = assert_agrees(&app);
    assert_eq!(payments(&m, "completed"), 1.0);
    let (text, _) = scrape(&app);

    // No secret reaches the scrape.
    for secret in [common::appliance::API_TOKEN, common::appliance::ADMIN_TOKEN] {
        assert!(!text.contains(secret));
    }

    // Every metric the shipped rules and dashboards use is exported (after a confirmation,
    // so the histograms have samples; `up` is Prometheus's own).
    let mut used =
        snakkaz_pay::monitoring::referenced_metrics(snakkaz_pay::monitoring::PROMETHEUS_RULES);
    for (_, d) in snakkaz_pay::monitoring::GRAFANA_DASHBOARDS {
        used.extend(snakkaz_pay::monitoring::referenced_metrics(d));
    }
    let exported: std::collections::BTreeSet<&str> = m
        .keys()
        .map(|k| k.split('{').next().unwrap())
        .map(|k| {
            ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| k.strip_suffix(s))
                .unwrap_or(k)
        })
        .collect();
    let missing: Vec<_> = used
        .iter()
        .filter(|u| !exported.contains(u.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "referenced but not exported: {missing:?}"
    );

    // promtool lints the exposition (CI installs it; see scripts/check-monitoring).
    if let Some(tool) = promtool() {
        let mut child = Command::new(tool)
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(as_prometheus_text(&text).as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "promtool check metrics:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        eprintln!("promtool not installed: skipping its lint (apt-get install prometheus)");
    }
    let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/metrics-sample.txt");
    std::fs::write(&sample, &text).unwrap();
}

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

#[test]
fn electrum_outage_raises_the_connection_alert_in_time_and_clears() {
    let (mut devnet, _dir, app) = start(&[("SNAKKAZ_PAY_ALERT_ELECTRUM_DOWN_SECS", "3")]);
    assert!(firing(&app).is_empty(), "a healthy box raises nothing");

    let stopped = std::time::Instant::now();
    devnet.stop_electrumx();
    wait_until(Duration::from_secs(15), "Electrum connection alert", || {
        firing(&app)
            .contains(&"SnakkazPayElectrumConnection".to_owned())
            .then_some(())
    });
    let took = stopped.elapsed();
    eprintln!("alert after {took:?}");
    assert!(
        took >= Duration::from_secs(2),
        "the alert waits for the configured 3 s (counted in whole seconds)"
    );
    // The same alert is in the scrape and on the page.
    let (_, m) = scrape(&app);
    assert_eq!(
        metric(
            &m,
            "snakkaz_pay_alert_firing{alertname=\"SnakkazPayElectrumConnection\"}"
        ),
        1.0
    );
    assert_eq!(metric(&m, "snakkaz_pay_electrum_connected"), 0.0);
    let page = String::from_utf8(http(&app.addr, "GET", "/page/overview", None, None).1).unwrap();
    assert!(
        page.contains("data-alert=\"SnakkazPayElectrumConnection\""),
        "{page}"
    );

    devnet.start_electrumx();
    wait_until(Duration::from_secs(30), "the alert to clear", || {
        firing(&app).is_empty().then_some(())
    });
}

#[test]
fn an_overpayment_raises_the_abnormal_transactions_alert() {
    let (devnet, _dir, app) = start(&[("SNAKKAZ_PAY_ALERT_ABNORMAL_TRANSACTIONS", "1")]);
    let p = app.create_payment(10_000, "abnormal-1", None);
    // Let the tracker take its baseline sample before the flag appears.
    wait_until(Duration::from_secs(5), "a first alert sample", || {
        let (_, m) = scrape(&app);
        (metric(&m, "snakkaz_pay_uptime_seconds") >= 1.0).then_some(())
    });
    devnet.pay(p["address"].as_str().unwrap(), 25_000);
    app.wait_payment(
        p["id"].as_str().unwrap(),
        Duration::from_secs(5),
        "overpaid flag",
        |v| v["flags"].to_string().contains("overpaid"),
    );
    wait_until(
        Duration::from_secs(15),
        "abnormal transactions alert",
        || {
            firing(&app)
                .contains(&"SnakkazPayAbnormalTransactions".to_owned())
                .then_some(())
        },
    );
    let (_, m) = scrape(&app);
    assert_eq!(
        metric(&m, "snakkaz_pay_payments_flagged{flag=\"overpaid\"}"),
        1.0
    );
}
