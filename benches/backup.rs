//! `scripts/bench` (backup part): time and size of a backup of a database with many
//! payments (100,000 by default, `BENCH_BACKUP_PAYMENTS` to change), taken through the
//! running daemon, and of its verification. Prints Markdown table rows.

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use common::appliance::Appliance;

fn main() {
    let total: usize = std::env::var("BENCH_BACKUP_PAYMENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let keys = tempfile::tempdir().expect("tempdir");
    let identity = keys.path().join("identity.txt");
    let out = Command::new("age-keygen")
        .arg("-o")
        .arg(&identity)
        .output()
        .expect("age-keygen (apt-get install age)");
    assert!(out.status.success());
    let public = Command::new("age-keygen")
        .arg("-y")
        .arg(&identity)
        .output()
        .expect("age-keygen -y");
    let public = String::from_utf8(public.stdout).expect("utf-8");
    let (_devnet, dir, mut app) =
        Appliance::on_fresh_devnet_with(&[("SNAKKAZ_PAY_BACKUP_RECIPIENTS", public.trim())]);
    app.set_env(
        "SNAKKAZ_PAY_BACKUP_DIR",
        &dir.path().join("backups").display().to_string(),
    );
    let app = Arc::new(app);

    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..32)
        .map(|_| {
            let app = app.clone();
            let next = next.clone();
            std::thread::spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= total {
                        break;
                    }
                    app.create_payment(1_000 + i as u64, &format!("bulk-{i}"), None);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("bench thread");
    }
    let fill = started.elapsed();
    let db = std::fs::metadata(dir.path().join("snakkaz-pay.redb"))
        .expect("database")
        .len();

    let t = Instant::now();
    let (code, out, err) = app.cli(&["--json", "backup"]);
    let took = t.elapsed();
    assert_eq!(code, 0, "{out}{err}");
    let r: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    let file = r["file"].as_str().expect("file").to_owned();

    let t = Instant::now();
    let (code, out, err) = app.cli(&[
        "verify-backup",
        &file,
        "--identity",
        identity.to_str().expect("path"),
    ]);
    let verified = t.elapsed();
    assert_eq!(code, 0, "{out}{err}");

    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    println!(
        "| payments in the database (created in {:.0} s) | {total} |",
        fill.as_secs_f64()
    );
    println!(
        "| database file / snapshot / encrypted backup | {:.1} / {:.1} / {:.1} MiB |",
        mib(db),
        mib(r["snapshot_bytes"].as_u64().unwrap_or(0)),
        mib(r["manifest"]["encrypted_bytes"].as_u64().unwrap_or(0))
    );
    println!(
        "| `backup` through the running daemon (snapshot + encrypt + write) | {:.1} s |",
        took.as_secs_f64()
    );
    println!(
        "| `verify-backup` (decrypt + integrity check + wallet rebuild) | {:.1} s |",
        verified.as_secs_f64()
    );
}
