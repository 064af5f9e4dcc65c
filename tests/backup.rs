//! Backups as the operator runs them: `backup` while payments are created and paid,
//! `verify-backup` on good and bad backups, `restore` with the daemon stopped, the
//! off-site copy with a real rclone, and `export-mpk`. The encrypted files are checked
//! with the real `age` command-line tool.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::appliance::{ADMIN_TOKEN, Appliance, CHANGE_DESCRIPTOR, DESCRIPTOR};
use serde_json::{Value, json};

/// The backup verification alert's name.
const ALERT: &str = "SnakkazPayBackupVerification";

/// An age key pair made with the real `age-keygen`: (identity file, public key).
fn age_key(dir: &Path, name: &str) -> (PathBuf, String) {
    let path = dir.join(name);
    let out = Command::new("age-keygen")
        .arg("-o")
        .arg(&path)
        .output()
        .expect("age-keygen is installed (apt-get install age)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let public = Command::new("age-keygen")
        .arg("-y")
        .arg(&path)
        .output()
        .expect("age-keygen -y");
    (
        path,
        String::from_utf8(public.stdout).unwrap().trim().to_owned(),
    )
}

/// A daemon on a fresh devnet whose backups go to `<dir>/backups`, encrypted to a new key.
struct Setup {
    devnet: common::devnet::Devnet,
    dir: tempfile::TempDir,
    app: Appliance,
    /// The age identity, in its own directory: off the box, as it should be.
    identity: PathBuf,
    _keys: tempfile::TempDir,
}

fn appliance_with_backups(extra: &[(&str, &str)]) -> Setup {
    let keys = tempfile::tempdir().unwrap();
    let (identity, public) = age_key(keys.path(), "identity.txt");
    let mut env: Vec<(&str, &str)> = vec![("SNAKKAZ_PAY_BACKUP_RECIPIENTS", &public)];
    env.extend_from_slice(extra);
    let (devnet, dir, mut app) = Appliance::on_fresh_devnet_with(&env);
    let backups = dir.path().join("backups");
    app.set_env("SNAKKAZ_PAY_BACKUP_DIR", &backups.display().to_string());
    Setup {
        devnet,
        dir,
        app,
        identity,
        _keys: keys,
    }
}

/// Names of the alerts firing now.
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

fn json_of(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

fn backup(app: &Appliance) -> Value {
    let (code, out, err) = app.cli(&["--json", "backup"]);
    assert_eq!(code, 0, "backup failed: {out}{err}\n{}", app.log_tail());
    json_of(&out)
}

/// Every payment with its full history, by id, through the API.
fn all_payments(app: &Appliance) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/payments?limit=500&cursor={c}"),
            None => "/api/payments?limit=500".to_owned(),
        };
        let (code, v) = app.get(&path);
        assert_eq!(code, 200, "{v}");
        for p in v["payments"].as_array().unwrap() {
            let id = p["id"].as_str().unwrap();
            let (code, full) = app.get(&format!("/api/payments/{id}"));
            assert_eq!(code, 200);
            out.insert(id.to_owned(), full);
        }
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}

/// What must survive a restore unchanged (confirmations move with the chain tip).
fn essence(p: &Value) -> Value {
    json!({
        "reference": p["reference"], "address": p["address"], "amount_sat": p["amount_sat"],
        "status": p["status"], "received_sat": p["received_sat"], "events": p["events"],
        "description": p["description"], "expires_at": p["expires_at"],
    })
}

#[test]
fn backup_under_traffic_restores_exactly_the_acknowledged_payments() {
    let Setup {
        devnet,
        dir,
        mut app,
        identity,
        _keys,
    } = appliance_with_backups(&[]);

    // A history worth restoring: paid, confirmed, completed and pending payments.
    let mut settled = Vec::new();
    for i in 0..4 {
        let p = app.create_payment(10_000 + i, &format!("before-{i}"), None);
        settled.push(p["id"].as_str().unwrap().to_owned());
        if i < 3 {
            devnet.pay(p["address"].as_str().unwrap(), 10_000 + i);
        }
    }
    devnet.mine(2);
    for id in &settled[..3] {
        app.wait_payment(id, Duration::from_secs(30), "confirmed", |v| {
            v["status"] == "confirmed"
        });
    }
    let (code, v) = app.request(
        "POST",
        &format!("/api/payments/{}/complete", settled[0]),
        Some(common::appliance::API_TOKEN),
        None,
    );
    assert_eq!(code, 200, "{v}");

    // Payments keep being created (and some paid) while the backup runs.
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = {
        let stop = stop.clone();
        let addr = app.addr.clone();
        std::thread::spawn(move || {
            let mut acked: Vec<(Instant, String, String)> = Vec::new();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) && n < 400 {
                let body = json!({"amount_sat": 5_000 + n, "reference": format!("during-{n}")});
                let (code, raw) = common::appliance::http(
                    &addr,
                    "POST",
                    "/api/payments",
                    Some(common::appliance::API_TOKEN),
                    Some(body.to_string().as_bytes()),
                );
                assert_eq!(code, 201, "{}", String::from_utf8_lossy(&raw));
                let v: Value = serde_json::from_slice(&raw).unwrap();
                acked.push((
                    Instant::now(),
                    v["id"].as_str().unwrap().to_owned(),
                    v["address"].as_str().unwrap().to_owned(),
                ));
                n += 1;
            }
            acked
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let before = all_payments(&app);
    let started = Instant::now();
    let report = backup(&app);
    let finished = Instant::now();
    // Keep the traffic going a little past the backup, then stop it.
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let acked = traffic.join().unwrap();
    assert_eq!(report["via"], "running daemon");
    let file = PathBuf::from(report["file"].as_str().unwrap());
    let manifest = &report["manifest"];
    assert!(file.exists() && Path::new(report["manifest_file"].as_str().unwrap()).exists());
    let name = file.file_name().unwrap().to_str().unwrap();
    assert!(
        name.starts_with("snakkaz-pay-regtest-") && name.ends_with(".redb.age"),
        "{name}"
    );
    // No secret in the manifest (or anywhere in the backup's plaintext, checked below).
    let manifest_text = std::fs::read_to_string(report["manifest_file"].as_str().unwrap()).unwrap();
    for secret in [common::appliance::API_TOKEN, ADMIN_TOKEN] {
        assert!(!manifest_text.contains(secret));
    }

    // The standard `age` tool decrypts it; the plaintext is a snakkaz-pay database.
    let plain = dir.path().join("decrypted.redb");
    let out = Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(&identity)
        .arg("-o")
        .arg(&plain)
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&plain).unwrap();
    assert!(bytes.windows(11).any(|w| w == b"snakkaz-pay"));
    for secret in [common::appliance::API_TOKEN, ADMIN_TOKEN] {
        assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()));
    }
    let in_backup = {
        let s = snakkaz_pay::store::Store::open(&plain).unwrap();
        s.all_payments().unwrap()
    };
    assert_eq!(
        in_backup.len() as u64,
        manifest["payment_count"].as_u64().unwrap()
    );
    let in_backup_ids: BTreeSet<String> = in_backup.iter().map(|p| p.id.clone()).collect();
    // Every payment the API had answered for before the backup started is in it.
    for (at, id, _) in &acked {
        if *at < started {
            assert!(
                in_backup_ids.contains(id),
                "acknowledged {id} missing from the backup"
            );
        }
    }
    for id in before.keys() {
        assert!(in_backup_ids.contains(id), "{id} missing from the backup");
    }
    let during: usize = acked
        .iter()
        .filter(|(at, ..)| *at >= started && *at <= finished)
        .count();
    eprintln!(
        "backup of {} payments took {} ms ({} created meanwhile)",
        in_backup.len(),
        report["took_ms"],
        during
    );

    // verify-backup passes and is recorded on /api/status.
    let (code, out, err) = app.cli(&[
        "--json",
        "verify-backup",
        "--latest",
        "--identity",
        identity.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let v = json_of(&out);
    assert_eq!(v["ok"], true);
    assert_eq!(v["recorded"], true);
    assert_eq!(v["payment_count"], manifest["payment_count"]);
    let s = app.wait_status(Duration::from_secs(5), "verification shown", |s| {
        s["backup_verification"]["ok"] == true
    });
    assert_eq!(s["backup_verification"]["file"].as_str(), Some(name));

    // restore refuses while the daemon holds the database.
    let (code, _, err) = app.cli(&[
        "restore",
        file.to_str().unwrap(),
        "--identity",
        identity.to_str().unwrap(),
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("stop it first"), "{err}");

    let all_addresses: BTreeSet<String> = all_payments(&app)
        .values()
        .map(|p| p["address"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(app.stop(), Some(0));
    // With the daemon stopped, a backup is taken from the file itself.
    let elsewhere = dir.path().join("stopped-backups");
    let (code, out, err) = app.cli(&["--json", "backup", "--to", elsewhere.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    let stopped = json_of(&out);
    assert_eq!(stopped["via"], "database file");
    assert!(stopped["manifest"]["payment_count"].as_u64().unwrap() >= in_backup.len() as u64);

    let (code, out, err) = app.cli(&[
        "--json",
        "restore",
        file.to_str().unwrap(),
        "--identity",
        identity.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let r = json_of(&out);
    let aside = PathBuf::from(r["previous_kept_at"].as_str().unwrap());
    assert!(aside.exists(), "the replaced database is kept");
    assert_eq!(r["skip_ahead"], 1000);

    app.restart();
    app.wait_status(Duration::from_secs(30), "Electrum connection", |s| {
        s["electrum"]["connected"] == true
    });
    let restored = all_payments(&app);
    assert_eq!(
        restored.keys().cloned().collect::<BTreeSet<_>>(),
        in_backup_ids,
        "exactly the payments of the backup"
    );
    for (id, p) in &before {
        assert_eq!(
            essence(&restored[id]),
            essence(p),
            "payment {id} changed in the restore"
        );
    }
    // New payments after the restore never reuse an address handed out before it,
    // including those handed out after the backup was taken.
    for i in 0..3 {
        let p = app.create_payment(7_000, &format!("after-{i}"), None);
        let a = p["address"].as_str().unwrap();
        assert!(
            !all_addresses.contains(a),
            "address {a} reused after restore"
        );
    }
    let s = app.get("/api/status").1;
    assert!(
        s["wallet"]["addresses_in_use"].as_u64().unwrap() > 1000,
        "skipped ahead: {s}"
    );
    // No sink here: nothing queued now, a full resync when one is configured.
    assert_eq!(r["sink_requeued"], false);
    assert!(app.log().contains("skipped ahead"));
    // The restored database scans the chain again (the first start scanned once too).
    assert!(
        app.log().matches("wait for a chain scan").count() >= 2,
        "no chain scan after the restore:\n{}",
        app.log_tail()
    );
}

#[test]
fn verify_backup_names_what_is_wrong_and_the_alert_follows() {
    // Every field is bound: a dropped devnet or key directory would end the test early.
    let Setup {
        devnet: _devnet,
        dir,
        mut app,
        identity,
        _keys,
    } = appliance_with_backups(&[]);
    let p = app.create_payment(12_345, "mpk-check", None);
    let report = backup(&app);
    let file = PathBuf::from(report["file"].as_str().unwrap());
    let id = identity.to_str().unwrap();

    let verify = |app: &Appliance, file: &Path, identity: &str| {
        app.cli(&[
            "--json",
            "verify-backup",
            file.to_str().unwrap(),
            "--identity",
            identity,
        ])
    };
    let (code, out, err) = verify(&app, &file, id);
    assert_eq!(code, 0, "{out}{err}");
    let good = json_of(&out);
    assert_eq!(good["first_addresses"][0], p["address"]);

    // Truncated: a copy (with its manifest) cut short.
    let bad = dir.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    let name = file.file_name().unwrap();
    let manifest = PathBuf::from(report["manifest_file"].as_str().unwrap());
    let cut = bad.join(name);
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
    std::fs::copy(&manifest, bad.join(manifest.file_name().unwrap())).unwrap();
    let (code, out, _) = verify(&app, &cut, id);
    assert_eq!(code, 1);
    assert_eq!(json_of(&out)["reason_code"], "truncated", "{out}");
    assert!(
        json_of(&out)["reason"]
            .as_str()
            .unwrap()
            .contains("truncated")
    );

    // The failure is recorded and raises the alert; metrics show it.
    assert!(firing(&app).contains(&ALERT.to_owned()));
    let metrics = app.metrics_text();
    assert!(
        metrics.contains("snakkaz_pay_backup_verification_ok 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("snakkaz_pay_alert_firing{alertname=\"SnakkazPayBackupVerification\"} 1")
    );

    let (_, page) = common::appliance::http(&app.addr, "GET", "/", None, None);
    let page = String::from_utf8(page).unwrap();
    assert!(
        page.contains("Backup verified") && page.contains("FAILED"),
        "the status page shows the failed verification"
    );

    // Another key.
    let (other, _) = age_key(dir.path(), "other-identity.txt");
    let (code, out, _) = verify(&app, &file, other.to_str().unwrap());
    assert_eq!(code, 1);
    assert_eq!(json_of(&out)["reason_code"], "other_key", "{out}");

    // A configuration of another descriptor (the change branch as receive descriptor).
    app.set_env("SNAKKAZ_PAY_DESCRIPTOR", CHANGE_DESCRIPTOR);
    app.set_env("SNAKKAZ_PAY_CHANGE_DESCRIPTOR", DESCRIPTOR);
    let (code, out, _) = verify(&app, &file, id);
    assert_eq!(code, 1);
    assert_eq!(json_of(&out)["reason_code"], "other_descriptor", "{out}");
    app.set_env("SNAKKAZ_PAY_DESCRIPTOR", DESCRIPTOR);
    app.set_env("SNAKKAZ_PAY_CHANGE_DESCRIPTOR", CHANGE_DESCRIPTOR);

    // And of another network (the tpub is valid on testnet too).
    app.set_env("SNAKKAZ_PAY_NETWORK", "testnet");
    let (code, out, _) = verify(&app, &file, id);
    assert_eq!(code, 1);
    let v = json_of(&out);
    assert_eq!(v["reason_code"], "other_network", "{out}");
    assert!(v["reason"].as_str().unwrap().contains("regtest"));
    app.set_env("SNAKKAZ_PAY_NETWORK", "regtest");

    // A good verification clears the alert.
    let (code, _, err) = verify(&app, &file, id);
    assert_eq!(code, 0, "{err}");
    assert!(!firing(&app).contains(&ALERT.to_owned()));

    // One older than the limit raises it again. The record is written through the admin
    // endpoint with an old time: waiting 8 days is not an option (a fault injector).
    let old = json!({"at": snakkaz_pay::clock::now() - 9 * 86_400, "file": "x.redb.age", "ok": true, "reason": null});
    let (code, v) = app.request(
        "POST",
        "/api/admin/backup/verification",
        Some(ADMIN_TOKEN),
        Some(old.to_string().as_bytes()),
    );
    assert_eq!(code, 200, "{v}");
    let s = app.get("/api/status").1;
    assert!(
        s["backup_verification"]["problem"]
            .as_str()
            .unwrap()
            .contains("9 days old"),
        "{s}"
    );
    assert!(firing(&app).contains(&ALERT.to_owned()));

    // export-mpk: the account tpub, its SLIP-132 vpub, the first addresses, last index.
    let (code, out, err) = app.cli(&["--json", "export-mpk"]);
    assert_eq!(code, 0, "{err}");
    let m = json_of(&out);
    let k = &m["keys"][0];
    assert_eq!(k["origin"], "[41f2aed0/84'/1'/0']");
    assert!(DESCRIPTOR.contains(k["xpub"].as_str().unwrap()));
    assert!(k["slip132"].as_str().unwrap().starts_with("vpub"), "{m}");
    assert_eq!(k["derivation"], "/0/*");
    assert_eq!(m["keys"][1]["keychain"], "change");
    assert_eq!(m["first_addresses"][0], p["address"]);
    assert_eq!(m["last_revealed_index"], 0);
}

/// `rclone serve webdav` on a loopback port rclone picks and reports.
struct Webdav {
    child: Child,
    url: String,
}

impl Webdav {
    fn start(root: &Path, addr: &str) -> Option<Webdav> {
        let mut child = Command::new("rclone")
            .args(["serve", "webdav"])
            .arg(root)
            .args(["--addr", addr, "--config", "/dev/null"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("rclone is installed (apt-get install rclone)");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(i) = line.find("started on ") {
                    let _ = tx.send(Some(line[i + 11..].trim().to_owned()));
                }
                if line.contains("address already in use") {
                    let _ = tx.send(None);
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(Some(url)) => Some(Webdav { child, url }),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                None
            }
        }
    }

    fn port(&self) -> String {
        self.url
            .trim_end_matches('/')
            .rsplit(':')
            .next()
            .unwrap()
            .to_owned()
    }
}

impl Drop for Webdav {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn offsite_copy_with_rclone_and_a_dead_remote_reported() {
    let served = tempfile::tempdir().unwrap();
    let dav = Webdav::start(served.path(), "127.0.0.1:0").expect("rclone serve webdav");
    let port = dav.port();
    let conf_dir = tempfile::tempdir().unwrap();
    let conf = conf_dir.path().join("rclone.conf");
    std::fs::write(
        &conf,
        format!("[dav]\ntype = webdav\nurl = {}\nvendor = other\n", dav.url),
    )
    .unwrap();
    let conf_s = conf.display().to_string();
    let Setup {
        devnet: _devnet,
        dir: _dir,
        app,
        identity: _,
        _keys,
    } = appliance_with_backups(&[
        ("SNAKKAZ_PAY_BACKUP_REMOTE", "dav:snakkaz"),
        ("SNAKKAZ_PAY_BACKUP_RCLONE_CONFIG", &conf_s),
    ]);
    app.create_payment(1_000, "offsite", None);

    let first = backup(&app);
    assert_eq!(first["offsite"]["ok"], true, "{first}");
    let name = |v: &Value| {
        PathBuf::from(v["file"].as_str().unwrap())
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned()
    };
    let remote = served.path().join("snakkaz");
    assert_eq!(
        std::fs::read(remote.join(name(&first))).unwrap(),
        std::fs::read(first["file"].as_str().unwrap()).unwrap()
    );

    // The remote dies: the backup is still written, the failure reported, exit code 3.
    drop(dav);
    let (code, out, err) = app.cli(&["--json", "backup"]);
    assert_eq!(code, 3, "{out}{err}");
    let second = json_of(&out);
    assert_eq!(second["offsite"]["ok"], false);
    assert!(
        second["offsite"]["error"]
            .as_str()
            .unwrap()
            .contains("local backup is kept"),
        "{second}"
    );
    assert!(Path::new(second["file"].as_str().unwrap()).exists());
    assert!(!remote.join(name(&second)).exists());

    // Back on the same port (bounded retries while the old socket is released), the next
    // run copies what the failed one missed.
    let deadline = Instant::now() + Duration::from_secs(30);
    let _dav = loop {
        if let Some(d) = Webdav::start(served.path(), &format!("127.0.0.1:{port}")) {
            break d;
        }
        assert!(Instant::now() < deadline, "port {port} not free again");
        std::thread::sleep(Duration::from_millis(500));
    };
    let third = backup(&app);
    assert_eq!(third["offsite"]["ok"], true, "{third}");
    // Retention keeps the newest of the day locally (the second was superseded); the
    // remote holds every backup and manifest the box holds, and older ones too.
    let local_dir = PathBuf::from(third["file"].as_str().unwrap())
        .parent()
        .unwrap()
        .to_owned();
    let mut local = Vec::new();
    for e in std::fs::read_dir(&local_dir).unwrap() {
        let n = e.unwrap().file_name().to_string_lossy().into_owned();
        if n.starts_with("snakkaz-pay-") {
            local.push(n);
        }
    }
    assert!(local.contains(&name(&third)), "{local:?}");
    for n in &local {
        assert!(remote.join(n).exists(), "{n} not copied");
    }
    assert!(
        remote.join(name(&first)).exists(),
        "the remote never loses a copy"
    );
}
