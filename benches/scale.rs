//! `scripts/bench scale`: the chain engine at scale, on the real daemon against the devnet
//! behind ElectrumX. For each size (`SCALE_SIZES`, default `1000,10000`; `SCALE_KINDS`
//! picks `settled`, `open`, `capacity`, default all three):
//!
//! - settled: that many payments paid, confirmed, completed and out of their late window;
//!   then detection latency of new payments, idle CPU, RSS, start-up time and RSS after a
//!   restart, and detection after it;
//! - open: that many unpaid payments, all subscribed; detection, idle CPU, RSS, and the
//!   time from an ElectrumX restart to caught up.
//!
//! Setting thousands of payments up needs an ElectrumX without session cost limits (a
//! default-limits server drops a session subscribing 30,000 scripts); the last part
//! measures what a default-limits server holds. Also the appliance's detection latency
//! next to a bare electrum-client subscribed to the same script. Prints Markdown tables;
//! compare ratios within one run: the machines are shared and noisy.

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bdk_electrum::electrum_client::{self, ElectrumApi};
use common::appliance::{Appliance, base_env};
use common::devnet::{CostLimits, Devnet};
use serde_json::Value;

/// Detection samples per measurement.
const SAMPLES: usize = 30;
/// Idle CPU is measured over this long.
const IDLE: Duration = Duration::from_secs(20);

fn creates(app: &Arc<Appliance>, total: usize, tag: &str, expires: u64) -> Vec<Value> {
    let next = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..32)
        .map(|_| {
            let app = app.clone();
            let next = next.clone();
            let tag = tag.to_owned();
            std::thread::spawn(move || {
                let mut out = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= total {
                        break;
                    }
                    out.push(app.create_payment(1_000, &format!("{tag}-{i}"), Some(expires)));
                }
                out
            })
        })
        .collect();
    handles
        .into_iter()
        .flat_map(|h| h.join().expect("bench thread"))
        .collect()
}

fn proc_field(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn rss_mib(pid: u32) -> u64 {
    proc_field(pid, "VmRSS:") / 1024
}

/// CPU ticks (user + system) of the process.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    let get = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // Fields 14 and 15 of stat; after the name, index 11 and 12.
    get(11) + get(12)
}

fn idle_cpu_pct(pid: u32) -> f64 {
    let t0 = cpu_ticks(pid);
    std::thread::sleep(IDLE);
    let t1 = cpu_ticks(pid);
    // 100 ticks per second on Linux.
    (t1 - t0) as f64 / IDLE.as_secs_f64()
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

/// Creates and pays `n` payments one by one; the time from pay to `unconfirmed` in the
/// API, and the time a bare client subscribed to the same script took to be notified.
fn detection(
    devnet: &Devnet,
    app: &Appliance,
    n: usize,
    tag: &str,
) -> (Vec<Duration>, Vec<Duration>) {
    let bare = electrum_client::Client::new(&devnet.electrum_tcp_url()).expect("bare client");
    let mut app_lat = Vec::new();
    let mut bare_lat = Vec::new();
    for i in 0..n {
        let p = app.create_payment(10_000, &format!("{tag}-{i}"), Some(86_400));
        let id = p["id"].as_str().expect("id").to_owned();
        let address: bdk_wallet::bitcoin::Address<bdk_wallet::bitcoin::address::NetworkUnchecked> =
            p["address"]
                .as_str()
                .expect("address")
                .parse()
                .expect("address");
        let spk = address.assume_checked().script_pubkey();
        bare.script_subscribe(&spk).expect("bare subscribe");
        devnet.pay(p["address"].as_str().expect("address"), 10_000);
        let paid = Instant::now();
        let (mut a, mut b) = (None, None);
        while a.is_none() || b.is_none() {
            assert!(
                paid.elapsed() < Duration::from_secs(120),
                "payment {id} not detected"
            );
            if b.is_none() {
                bare.ping().expect("ping");
                if bare.script_pop(&spk).expect("pop").is_some() {
                    b = Some(paid.elapsed());
                }
            }
            if a.is_none() {
                let (_, v) = app.get(&format!("/api/payments/{id}"));
                if v["status"] == "unconfirmed" {
                    a = Some(paid.elapsed());
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        app_lat.push(a.expect("measured"));
        bare_lat.push(b.expect("measured"));
    }
    app_lat.sort();
    bare_lat.sort();
    (app_lat, bare_lat)
}

fn status(app: &Appliance) -> Value {
    app.get("/api/status").1
}

fn start(devnet: &Devnet, dir: &std::path::Path, extra: &[(&str, &str)]) -> Appliance {
    let mut env = base_env(
        dir,
        devnet.electrum_host(),
        devnet.electrum_tcp_port(),
        false,
    );
    env.retain(|(k, _)| k != "SNAKKAZ_PAY_LOG" && k != "ELECTRUM_CHECK_INTERVAL");
    env.push(("SNAKKAZ_PAY_LOG".into(), "warn".into()));
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let app = Appliance::start(dir, env);
    app.wait_status(Duration::from_secs(60), "connection", |s| {
        s["electrum"]["connected"] == true
    });
    app
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

fn settled(n: usize) {
    let devnet = Devnet::start_with(CostLimits::Unlimited);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut app = start(
        &devnet,
        dir.path(),
        &[
            ("ELECTRUM_MIN_CONFIRMATIONS", "1"),
            ("SNAKKAZ_PAY_AUTO_COMPLETE_DEPTH", "1"),
            ("SNAKKAZ_PAY_LATE_PAYMENT_WINDOW_SECS", "0"),
            ("SNAKKAZ_PAY_ELECTRUM_COST_BUDGET", "0"),
        ],
    );
    let t = Instant::now();
    let app_arc = Arc::new(app);
    // Each thousand is paid as soon as it exists: on a loaded machine creating 100,000 takes
    // longer than their 120 s expiry (short, so that their late windows end soon after).
    for chunk in 0..n.div_ceil(1_000) {
        let size = 1_000.min(n - chunk * 1_000);
        let created = creates(&app_arc, size, &format!("s{chunk}"), 120);
        let to: Vec<(String, u64)> = created
            .iter()
            .map(|p| (p["address"].as_str().expect("address").to_owned(), 1_000))
            .collect();
        devnet.pay_many(&to);
    }
    app = Arc::try_unwrap(app_arc).unwrap_or_else(|_| panic!("threads done"));
    devnet.mine(1);
    let n64 = n as u64;
    app.wait_status(Duration::from_secs(600 + n64 / 20), "all completed", |s| {
        s["payments"]["completed"].as_u64() >= Some(n64)
    });
    // Settled payments' addresses stay watched for unattributed receipts: settled means
    // every payment completed and every address subscribed with its status stored.
    app.wait_status(Duration::from_secs(300), "late windows over", |s| {
        s["electrum"]["backlog"] == 0
    });
    eprintln!("settled {n}: set up in {:?}", t.elapsed());
    let pid = app.pid().expect("pid");
    let rss = rss_mib(pid);
    let cpu = idle_cpu_pct(pid);
    let (lat, bare) = detection(&devnet, &app, SAMPLES, "sd");

    assert_eq!(app.stop(), Some(0));
    let t = Instant::now();
    app.restart();
    app.wait_status(Duration::from_secs(600), "caught up after restart", |s| {
        s["electrum"]["connected"] == true && s["electrum"]["backlog"] == 0
    });
    let startup = t.elapsed();
    let pid = app.pid().expect("pid");
    let rss_restart = rss_mib(pid);
    let (lat2, _) = detection(&devnet, &app, 10, "sr");
    println!(
        "| {n} settled | {} / {} ms | {} / {} ms | {:.1} % | {rss} MiB | {} ms | {rss_restart} MiB | {} ms |",
        ms(percentile(&lat, 50)),
        ms(percentile(&lat, 99)),
        ms(percentile(&bare, 50)),
        ms(percentile(&bare, 99)),
        cpu,
        ms(startup),
        ms(percentile(&lat2, 99)),
    );
}

fn open(n: usize) {
    let mut devnet = Devnet::start_with(CostLimits::Unlimited);
    let dir = tempfile::tempdir().expect("tempdir");
    let app = Arc::new(start(
        &devnet,
        dir.path(),
        &[("SNAKKAZ_PAY_ELECTRUM_COST_BUDGET", "0")],
    ));
    let t = Instant::now();
    creates(&app, n, "o", 86_400);
    let n64 = n as u64;
    app.wait_status(Duration::from_secs(600), "all subscribed", |s| {
        s["electrum"]["subscriptions"].as_u64() >= Some(n64) && s["electrum"]["backlog"] == 0
    });
    eprintln!("open {n}: set up in {:?}", t.elapsed());
    let pid = app.pid().expect("pid");
    let cpu = idle_cpu_pct(pid);
    let rss = rss_mib(pid);
    let (lat, bare) = detection(&devnet, &app, SAMPLES, "od");
    devnet.stop_electrumx();
    app.wait_status(Duration::from_secs(60), "disconnected", |s| {
        s["electrum"]["connected"] == false
    });
    let t = Instant::now();
    devnet.start_electrumx();
    app.wait_status(Duration::from_secs(900), "caught up after reconnect", |s| {
        s["electrum"]["connected"] == true
            && s["electrum"]["backlog"] == 0
            && s["electrum"]["subscriptions"].as_u64() >= Some(n64)
    });
    let reconnect = t.elapsed();
    println!(
        "| {n} open | {} / {} ms | {} / {} ms | {:.1} % | {rss} MiB | reconnect → caught up {} ms |",
        ms(percentile(&lat, 50)),
        ms(percentile(&lat, 99)),
        ms(percentile(&bare, 50)),
        ms(percentile(&bare, 99)),
        cpu,
        ms(reconnect),
    );
}

/// Open payments on a default-limits ElectrumX, in steps, until detection p99 passes 1 s
/// or the server drops the session.
fn default_limits_capacity(steps: &[usize]) {
    let devnet = Devnet::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let app = Arc::new(start(&devnet, dir.path(), &[]));
    let mut total = 0;
    let mut held = 0;
    for &step in steps {
        creates(&app, step - total, &format!("cap{step}"), 86_400);
        total = step;
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            app.wait_status(Duration::from_secs(120), "subscribed", |s| {
                s["electrum"]["subscriptions"].as_u64() >= Some(total as u64)
            });
        }));
        if ok.is_err() {
            println!("| {step} open, default limits | not all subscribed within 120 s |");
            break;
        }
        let (lat, _) = detection(&devnet, &app, 10, &format!("capd{step}"));
        let st = status(&app);
        let p99 = percentile(&lat, 99);
        println!(
            "| {step} open, default limits | p99 {} ms | session cost ~{} | failures {} |",
            ms(p99),
            st["electrum"]["session_cost"],
            st["electrum"]["session_failures_10m"]
        );
        if p99 >= Duration::from_secs(1) || st["electrum"]["session_failures_10m"] != 0 {
            break;
        }
        held = step;
    }
    println!("| default-limits capacity (detection p99 < 1 s) | {held} open payments |");
}

fn main() {
    let sizes: Vec<usize> = std::env::var("SCALE_SIZES")
        .unwrap_or_else(|_| "1000,10000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    println!(
        "| payments | detection p50 / p99 | bare client p50 / p99 | idle CPU | RSS | start-up to caught up | RSS after restart | detection p99 after restart |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    // SCALE_KINDS picks the parts (settled, open, capacity), e.g. for one long run at 100k.
    let kinds = std::env::var("SCALE_KINDS").unwrap_or_else(|_| "settled,open,capacity".into());
    let kinds: Vec<&str> = kinds.split(',').map(str::trim).collect();
    if kinds.contains(&"settled") {
        for &n in &sizes {
            settled(n);
        }
    }
    if kinds.contains(&"open") {
        for &n in &sizes {
            open(n);
        }
    }
    if !kinds.contains(&"capacity") {
        return;
    }
    let steps: Vec<usize> = std::env::var("SCALE_CAPACITY_STEPS")
        .unwrap_or_else(|_| "1000,2000,3000,4000,6000,8000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    println!();
    println!("| default-limits server | detection | | |");
    println!("|---|---|---|---|");
    default_limits_capacity(&steps);
}
