//! `scripts/bench`: throughput of payment creation (group commit), detection latency
//! (Electrum notification to API), and memory, measured on the real daemon against the
//! devnet behind ElectrumX. Prints a Markdown table; compare ratios within one run, the
//! machines are shared and noisy.

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::appliance::Appliance;

fn creates(app: &Arc<Appliance>, total: usize, threads: usize, tag: &str) -> Duration {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let app = app.clone();
            let next = next.clone();
            let tag = tag.to_owned();
            std::thread::spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= total {
                        break;
                    }
                    app.create_payment(1_000 + i as u64, &format!("{tag}-{i}"), None);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("bench thread");
    }
    start.elapsed()
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

fn main() {
    let (devnet, _dir, app) = Appliance::on_fresh_devnet();
    let app = Arc::new(app);
    let pid = app.pid().expect("daemon pid");
    let rss_start = rss_kib(pid);

    let seq_n = 200;
    let seq = creates(&app, seq_n, 1, "seq");
    let par_n = 2_000;
    let par = creates(&app, par_n, 32, "par");
    let seq_rate = seq_n as f64 / seq.as_secs_f64();
    let par_rate = par_n as f64 / par.as_secs_f64();

    let mut latencies = Vec::new();
    for i in 0..20 {
        let p = app.create_payment(10_000, &format!("lat-{i}"), None);
        let id = p["id"].as_str().expect("id").to_owned();
        devnet.pay(p["address"].as_str().expect("address"), 10_000);
        let paid = Instant::now();
        app.wait_payment(&id, Duration::from_secs(10), "detected", |v| {
            v["status"] == "unconfirmed"
        });
        latencies.push(paid.elapsed());
    }
    latencies.sort();
    let rss_end = rss_kib(pid);
    let (_, status) = app.get("/api/status");

    println!("| measure | value |");
    println!("|---|---|");
    println!("| sequential creates (1 client, {seq_n}) | {seq_rate:.0}/s |");
    println!("| concurrent creates (32 clients, {par_n}) | {par_rate:.0}/s |");
    println!(
        "| group-commit speed-up (concurrent / sequential) | {:.1}x |",
        par_rate / seq_rate
    );
    println!(
        "| pay → `unconfirmed` in the API (20 payments, p50 / p90 / max) | {} / {} / {} ms |",
        percentile(&latencies, 50).as_millis(),
        percentile(&latencies, 90).as_millis(),
        latencies.last().expect("latencies").as_millis()
    );
    println!(
        "| daemon RSS at start / after {} payments | {} / {} MiB |",
        seq_n + par_n + 20,
        rss_start / 1024,
        rss_end / 1024
    );
    println!(
        "| addresses in use | {} |",
        status["wallet"]["addresses_in_use"]
    );
}
