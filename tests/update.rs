//! `snakkaz-pay update` on a system laid out as the appliance's (A/B root slots, ESP
//! entries, baked-in public key) under a temporary directory: real bundles signed with
//! the real `minisign` tool and a key made for this test, the real binary installing
//! them. The partitions are plain files here; image/test-boot runs the same command on
//! a booted appliance. The daemon's side (migrations on trial, the rollback of a newer
//! database, the version and update shown) runs the real daemon on such a tree.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

mod common;
use common::appliance::{API_TOKEN, Appliance, http, offline_env};

/// Size of each fake root slot (the bundle's root image is smaller).
const SLOT_BYTES: usize = 256 * 1024;

struct Box_ {
    dir: tempfile::TempDir,
}

impl Box_ {
    /// A box running `version` from slot A, its entry blessed, an older B beside it.
    fn new(version: &str) -> Box_ {
        let dir = tempfile::tempdir().unwrap();
        let b = Box_ { dir };
        let r = b.root();
        for d in [
            "proc",
            "etc",
            "usr/share/snakkaz-pay",
            "dev/disk/by-partlabel",
            "efi/EFI/Linux",
            "keys",
        ] {
            std::fs::create_dir_all(r.join(d)).unwrap();
        }
        std::fs::write(
            r.join("proc/cmdline"),
            "root=PARTLABEL=snakkaz-root-a ro quiet\n",
        )
        .unwrap();
        std::fs::write(
            r.join("etc/os-release"),
            format!("PRETTY_NAME=\"snakkaz-pay\"\nIMAGE_ID=snakkaz-pay\nIMAGE_VERSION={version}\n"),
        )
        .unwrap();
        std::fs::write(
            r.join("dev/disk/by-partlabel/snakkaz-root-a"),
            vec![b'A'; SLOT_BYTES],
        )
        .unwrap();
        std::fs::write(
            r.join("dev/disk/by-partlabel/snakkaz-root-b"),
            vec![b'B'; SLOT_BYTES],
        )
        .unwrap();
        std::fs::write(
            r.join(format!("efi/EFI/Linux/snakkaz-pay-{version}-a.efi")),
            "running uki",
        )
        .unwrap();
        std::fs::write(r.join("efi/EFI/Linux/snakkaz-pay-0.0.1-b.efi"), "old uki").unwrap();
        b.make_key("trusted");
        std::fs::copy(
            r.join("keys/trusted.pub"),
            r.join("usr/share/snakkaz-pay/update.pub"),
        )
        .unwrap();
        b
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    /// A minisign key pair without a password, made by the real tool.
    fn make_key(&self, name: &str) {
        let k = self.root().join("keys");
        run_ok(
            Command::new("minisign")
                .args(["-G", "-W", "-f", "-p"])
                .arg(k.join(format!("{name}.pub")))
                .arg("-s")
                .arg(k.join(format!("{name}.key"))),
        );
    }

    /// A bundle of `version` in a new directory, signed with key `key`.
    fn bundle(&self, name: &str, version: &str, key: &str) -> PathBuf {
        let d = self.root().join("bundles").join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("VERSION"), format!("{version}\n")).unwrap();
        std::fs::write(d.join("root.img"), root_image(version)).unwrap();
        std::fs::write(d.join("snakkaz-pay-a.efi"), format!("uki {version} root=a")).unwrap();
        std::fs::write(d.join("snakkaz-pay-b.efi"), format!("uki {version} root=b")).unwrap();
        let sums = run_ok(
            Command::new("sha256sum")
                .args([
                    "VERSION",
                    "root.img",
                    "snakkaz-pay-a.efi",
                    "snakkaz-pay-b.efi",
                ])
                .current_dir(&d),
        );
        std::fs::write(d.join("SHA256SUMS"), sums.stdout).unwrap();
        self.sign(&d, key);
        d
    }

    fn sign(&self, bundle: &Path, key: &str) {
        run_ok(
            Command::new("minisign")
                .args(["-S", "-s"])
                .arg(self.root().join(format!("keys/{key}.key")))
                .arg("-m")
                .arg(bundle.join("SHA256SUMS"))
                .args(["-t", "snakkaz-pay test bundle"]),
        );
    }

    fn update(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_snakkaz-pay"))
            .arg("--config")
            .arg(self.root().join("no-config.toml"))
            .arg("update")
            .args(args)
            .env("SNAKKAZ_PAY_UPDATE_SYSROOT", self.root())
            .output()
            .unwrap()
    }

    /// Every file of the system (not the bundles and keys), for "nothing was written".
    fn state(&self) -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        for top in ["dev", "efi", "etc", "proc", "usr", "var"] {
            walk(&self.root().join(top), &mut out);
        }
        out
    }

    fn slot(&self, s: &str) -> Vec<u8> {
        std::fs::read(
            self.root()
                .join(format!("dev/disk/by-partlabel/snakkaz-root-{s}")),
        )
        .unwrap()
    }

    fn entries(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.root().join("efi/EFI/Linux"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

fn walk(p: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
    let Ok(dir) = std::fs::read_dir(p) else {
        return; // var/ exists only once an update was recorded
    };
    for e in dir {
        let e = e.unwrap().path();
        if e.is_dir() {
            walk(&e, out);
        } else {
            out.insert(e.display().to_string(), std::fs::read(&e).unwrap());
        }
    }
}

fn root_image(version: &str) -> Vec<u8> {
    let mut v = format!("ext4 image of {version}|").into_bytes();
    v.resize(100 * 1024, 0x5a);
    v
}

fn run_ok(c: &mut Command) -> Output {
    let out = c
        .output()
        .unwrap_or_else(|e| panic!("{c:?}: {e} (install minisign / coreutils)"));
    assert!(
        out.status.success(),
        "{c:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_good_bundle_is_written_to_the_other_slot_and_put_on_trial() {
    let b = Box_::new("0.2.0");
    let bundle = b.bundle("good", "0.3.0", "trusted");

    // --check reads only.
    let before = b.state();
    let out = b.update(&["--check", bundle.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("would install snakkaz-pay-0.3.0-b+3.efi")
    );
    assert_eq!(b.state(), before, "--check wrote something");

    // The SHA256SUMS file names the bundle as well as its directory.
    let out = b.update(&[
        "--json",
        "--no-reboot",
        bundle.join("SHA256SUMS").to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["from"], "0.2.0");
    assert_eq!(r["to"], "0.3.0");
    assert_eq!(r["direction"], "upgrade");
    assert_eq!(r["running_slot"], "a");
    assert_eq!(r["target_slot"], "b");
    assert_eq!(r["rebooting"], false);

    let image = root_image("0.3.0");
    let slot_b = b.slot("b");
    assert_eq!(
        &slot_b[..image.len()],
        &image[..],
        "slot B holds the new root"
    );
    assert_eq!(slot_b.len(), SLOT_BYTES);
    assert_eq!(
        b.slot("a"),
        vec![b'A'; SLOT_BYTES],
        "the running slot is untouched"
    );
    assert_eq!(
        b.entries(),
        ["snakkaz-pay-0.2.0-a.efi", "snakkaz-pay-0.3.0-b+3.efi"],
        "the old B entry is gone, the running one kept, the new one counting"
    );
    let uki = std::fs::read(b.root().join("efi/EFI/Linux/snakkaz-pay-0.3.0-b+3.efi")).unwrap();
    assert_eq!(
        uki, b"uki 0.3.0 root=b",
        "the UKI naming slot B was installed"
    );

    // While the new entry is on trial, the box runs it (say it booted): no second update.
    std::fs::write(
        b.root().join("proc/cmdline"),
        "root=PARTLABEL=snakkaz-root-b ro\n",
    )
    .unwrap();
    let next = b.bundle("next", "0.4.0", "trusted");
    let out = b.update(&["--no-reboot", next.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("still on trial"), "{}", stderr(&out));
}

#[test]
fn bad_signatures_and_changed_files_are_refused_before_anything_is_written() {
    let b = Box_::new("0.2.0");
    let before = b.state();

    b.make_key("stranger");
    let foreign = b.bundle("foreign", "0.3.0", "stranger");
    let out = b.update(&["--no-reboot", foreign.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("signed with another key"),
        "{}",
        stderr(&out)
    );

    let changed_root = b.bundle("changed-root", "0.3.0", "trusted");
    let mut img = root_image("0.3.0");
    img[5000] ^= 0xff;
    std::fs::write(changed_root.join("root.img"), img).unwrap();
    let out = b.update(&["--no-reboot", changed_root.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("root.img does not match SHA256SUMS"),
        "{}",
        stderr(&out)
    );

    let changed_sums = b.bundle("changed-sums", "0.3.0", "trusted");
    let text = std::fs::read_to_string(changed_sums.join("SHA256SUMS")).unwrap();
    std::fs::write(
        changed_sums.join("SHA256SUMS"),
        text.replacen(&text[..1], if &text[..1] == "0" { "1" } else { "0" }, 1),
    )
    .unwrap();
    let out = b.update(&["--no-reboot", changed_sums.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("signature of SHA256SUMS is not valid"),
        "{}",
        stderr(&out)
    );

    let unsigned = b.bundle("unsigned", "0.3.0", "trusted");
    std::fs::remove_file(unsigned.join("SHA256SUMS.minisig")).unwrap();
    let out = b.update(&["--no-reboot", unsigned.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("SHA256SUMS.minisig"),
        "{}",
        stderr(&out)
    );

    assert_eq!(b.state(), before, "a refused bundle wrote something");
}

#[test]
fn a_downgrade_needs_force() {
    let b = Box_::new("0.2.0");
    let before = b.state();
    let old = b.bundle("old", "0.1.9", "trusted");
    let out = b.update(&["--no-reboot", old.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("older than the running 0.2.0") && stderr(&out).contains("--force"),
        "{}",
        stderr(&out)
    );
    let same = b.bundle("same", "0.2.0", "trusted");
    let out = b.update(&["--no-reboot", same.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("already running"), "{}", stderr(&out));
    assert_eq!(b.state(), before);

    let out = b.update(&["--no-reboot", "--force", "--json", old.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["direction"], "downgrade");
    assert_eq!(
        b.entries(),
        ["snakkaz-pay-0.1.9-b+3.efi", "snakkaz-pay-0.2.0-a.efi"]
    );
}

#[test]
fn a_version_that_failed_its_boot_checks_is_not_installed_again_and_status_says_so() {
    let b = Box_::new("0.2.0");
    let bundle = b.bundle("bad", "0.3.0", "trusted");
    let out = b.update(&["--no-reboot", bundle.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    // What systemd-boot leaves after three failed boots; the box is back on slot A.
    let esp = b.root().join("efi/EFI/Linux");
    std::fs::rename(
        esp.join("snakkaz-pay-0.3.0-b+3.efi"),
        esp.join("snakkaz-pay-0.3.0-b+0-3.efi"),
    )
    .unwrap();

    let out = b.update(&["--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["version"], "0.2.0");
    assert_eq!(s["slot"], "a");
    assert_eq!(s["last_update"]["to"], "0.3.0");
    assert_eq!(s["last_update_outcome"]["outcome"], "failed_fell_back");
    let out = b.update(&[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "last update: FAILED: 0.3.0 did not pass its boot checks; fell back to 0.2.0"
        ),
        "{text}"
    );
    assert!(
        text.contains("snakkaz-pay-0.3.0-b+0-3.efi bad (failed 3 boots)"),
        "{text}"
    );

    let before = b.state();
    let out = b.update(&["--no-reboot", bundle.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("failed its boot checks"),
        "{}",
        stderr(&out)
    );
    assert_eq!(b.state(), before);
    let out = b.update(&["--no-reboot", "--force", bundle.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// Moves the box to `version` on `slot`, as a reboot into that entry does.
fn boot_into(b: &Box_, version: &str, slot: &str) {
    let r = b.root();
    std::fs::write(
        r.join("proc/cmdline"),
        format!("root=PARTLABEL=snakkaz-root-{slot} ro quiet\n"),
    )
    .unwrap();
    std::fs::write(
        r.join("etc/os-release"),
        format!("PRETTY_NAME=\"snakkaz-pay\"\nIMAGE_ID=snakkaz-pay\nIMAGE_VERSION={version}\n"),
    )
    .unwrap();
}

fn publish(b: &Box_) -> Value {
    let out = b.update(&["--publish", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let file: Value = serde_json::from_slice(
        &std::fs::read(b.root().join("var/lib/snakkaz-pay-update/status.json")).unwrap(),
    )
    .unwrap();
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(file["last_update_outcome"], shown["last_update_outcome"]);
    file
}

#[test]
fn publish_follows_an_update_and_keeps_when_each_outcome_began() {
    let b = Box_::new("0.2.0");
    let bundle = b.bundle("good", "0.3.0", "trusted");
    let p = publish(&b);
    assert_eq!(p["last_update_outcome"]["outcome"], "none");
    let out = b.update(&["--no-reboot", bundle.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let installed = publish(&b);
    assert_eq!(installed["last_update_outcome"]["outcome"], "pending");
    assert_eq!(
        (&installed["version"], &installed["slot"]),
        (&"0.2.0".into(), &"a".into())
    );

    // The loader starts the new entry and counts the try.
    let esp = b.root().join("efi/EFI/Linux");
    std::fs::rename(
        esp.join("snakkaz-pay-0.3.0-b+3.efi"),
        esp.join("snakkaz-pay-0.3.0-b+2-1.efi"),
    )
    .unwrap();
    boot_into(&b, "0.3.0", "b");
    let trial = publish(&b);
    assert_eq!(trial["last_update_outcome"]["outcome"], "on_trial");
    assert_ne!(trial["outcome_since"], installed["outcome_since"]);
    // Published again (the daemon restarted, the unit ran again): the same outcome
    // keeps its start.
    let again = publish(&b);
    assert_eq!(again["outcome_since"], trial["outcome_since"]);
    assert_ne!(again["published_at"], trial["published_at"]);

    // systemd-bless-boot drops the counter.
    std::fs::rename(
        esp.join("snakkaz-pay-0.3.0-b+2-1.efi"),
        esp.join("snakkaz-pay-0.3.0-b.efi"),
    )
    .unwrap();
    let good = publish(&b);
    assert_eq!(good["last_update_outcome"]["outcome"], "good");
    assert_ne!(good["outcome_since"], trial["outcome_since"]);
    assert_eq!(
        (&good["version"], &good["slot"]),
        (&"0.3.0".into(), &"b".into())
    );
}

/// Rewrites the schema version a database file records (what a newer binary's migration
/// leaves), with the redb crate directly: no binary of ours writes a newer one.
fn mark_schema(db: &Path, v: u64) {
    const META: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("meta");
    let d = redb::Database::open(db).unwrap();
    let w = d.begin_write().unwrap();
    w.open_table(META)
        .unwrap()
        .insert("schema_version", v.to_le_bytes().as_slice())
        .unwrap();
    w.commit().unwrap();
}

/// The daemon on `b`'s data partition, with its database where the appliance keeps it
/// and reading the update status `b` publishes: (data directory, database, daemon).
fn daemon_on(b: &Box_) -> (PathBuf, PathBuf, Appliance) {
    let dir = b.root().join("var/lib/snakkaz-pay");
    let db = dir.join("snakkaz-pay.redb");
    let mut env = offline_env(&dir);
    env.retain(|(k, _)| k != "ELECTRUM_WALLET_PATH");
    env.push(("ELECTRUM_WALLET_PATH".into(), db.display().to_string()));
    env.push((
        "SNAKKAZ_PAY_UPDATE_SYSROOT".into(),
        b.root().display().to_string(),
    ));
    let app = Appliance::start(&dir, env);
    (dir, db, app)
}

/// Creates a payment over the API; its id.
fn create_payment(app: &Appliance, reference: &str) -> String {
    let (code, v) = app.post(
        "/api/payments",
        &serde_json::json!({"amount_sat": 21_000, "reference": reference}),
    );
    assert_eq!(code, 201, "{v}");
    v["id"].as_str().unwrap().to_owned()
}

#[test]
fn after_a_failed_update_the_daemon_restores_the_pre_update_snapshot_and_shows_what_was_lost() {
    let b = Box_::new("0.2.0");
    let (dir, db, mut app) = daemon_on(&b);
    let kept = create_payment(&app, "before-update");
    // `snakkaz-pay update` took its snapshot here (the daemon stopped: a copy of the
    // closed file is the same).
    app.stop();
    let pre = dir.join("pre-update");
    std::fs::create_dir_all(&pre).unwrap();
    std::fs::copy(&db, pre.join("snakkaz-pay-20261127T080000.000Z.redb")).unwrap();

    // The new version ran, took a payment and migrated the database; then the box fell
    // back (three failed boots of 0.3.0 on slot B).
    let bundle = b.bundle("new", "0.3.0", "trusted");
    let out = b.update(&["--no-reboot", bundle.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    app.restart();
    let lost = create_payment(&app, "during-the-new-version");
    app.stop();
    mark_schema(&db, 99);
    let esp = b.root().join("efi/EFI/Linux");
    std::fs::rename(
        esp.join("snakkaz-pay-0.3.0-b+3.efi"),
        esp.join("snakkaz-pay-0.3.0-b+0-3.efi"),
    )
    .unwrap();
    assert_eq!(
        publish(&b)["last_update_outcome"]["outcome"],
        "failed_fell_back"
    );

    // The previous version starts instead of refusing the newer file.
    app.restart();
    assert_eq!(app.get(&format!("/api/payments/{kept}")).0, 200);
    assert_eq!(app.get(&format!("/api/payments/{lost}")).0, 404);
    let (code, s) = app.get("/api/status");
    assert_eq!(code, 200, "{s}");
    let u = &s["update"];
    assert_eq!(u["binary_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        (&u["image_version"], &u["slot"]),
        (&"0.2.0".into(), &"a".into())
    );
    assert_eq!(u["last_outcome"], "failed_fell_back");
    assert_eq!(u["last_update"]["to"], "0.3.0");
    assert_eq!(u["database"]["kind"], "rolled_back");
    assert_eq!(u["database"]["lost_payments"], serde_json::json!([lost]));
    let problems = s["problems"].to_string();
    assert!(
        problems.contains("update to 0.3.0 FAILED its boot checks"),
        "{problems}"
    );
    assert!(
        problems.contains("database rolled back") && problems.contains(&lost),
        "{problems}"
    );
    assert!(
        app.log().contains("Restored the pre-update snapshot"),
        "the log says it too"
    );
    let kept_files: Vec<_> = std::fs::read_dir(&pre)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("rolled-back-schema99-"))
        .collect();
    assert_eq!(kept_files.len(), 1, "the newer database is kept");

    let m = app.metrics_text();
    let build = format!(
        "snakkaz_pay_build_info{{version=\"{}\",image_version=\"0.2.0\",slot=\"a\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    assert!(m.contains(&build), "{m}");
    assert!(
        m.contains("snakkaz_pay_update_outcome{outcome=\"failed_fell_back\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("snakkaz_pay_update_outcome{outcome=\"good\"} 0"),
        "{m}"
    );
    assert!(
        m.contains("snakkaz_pay_update_database_lost_payments 1"),
        "{m}"
    );

    let (code, out, err) = app.cli(&["status"]);
    assert_eq!(
        code, 2,
        "degraded: the failed update and the rollback are problems; {err}"
    );
    assert!(out.contains("system:    image 0.2.0, root slot a"), "{out}");
    assert!(
        out.contains("update:    FAILED: 0.3.0 did not pass its boot checks; fell back to 0.2.0"),
        "{out}"
    );
    assert!(
        out.contains("database:  the database had schema 99"),
        "{out}"
    );
    let (code, audit, err) = app.cli(&["audit", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert!(audit.contains("update.database.rolled_back"), "{audit}");

    let (code, page) = http(&app.addr, "GET", "/page/overview", Some(API_TOKEN), None);
    let page = String::from_utf8(page).unwrap();
    assert_eq!(code, 200);
    assert!(
        page.contains("id=system data-outcome=failed_fell_back"),
        "{page}"
    );
    assert!(
        page.contains("FAILED: 0.3.0 did not pass its boot checks"),
        "{page}"
    );
    assert!(page.contains("id=database-notice>rolled back"), "{page}");
    app.stop();
}

#[test]
fn a_version_on_trial_runs_on_a_migrated_copy_until_it_is_blessed() {
    let b = Box_::new("0.2.0");
    let (dir, db, mut app) = daemon_on(&b);
    create_payment(&app, "before");
    app.stop();
    // The database as the previous version (schema 1) left it.
    mark_schema(&db, 1);
    let original = std::fs::read(&db).unwrap();

    // 0.3.0 installed and booted, not yet assessed.
    let bundle = b.bundle("new", "0.3.0", "trusted");
    let out = b.update(&["--no-reboot", bundle.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let esp = b.root().join("efi/EFI/Linux");
    std::fs::rename(
        esp.join("snakkaz-pay-0.3.0-b+3.efi"),
        esp.join("snakkaz-pay-0.3.0-b+2-1.efi"),
    )
    .unwrap();
    boot_into(&b, "0.3.0", "b");
    assert_eq!(publish(&b)["last_update_outcome"]["outcome"], "on_trial");
    app.restart();
    create_payment(&app, "on-trial");
    let (_, s) = app.get("/api/status");
    assert_eq!(s["update"]["last_outcome"], "on_trial");
    app.stop();
    assert!(
        std::fs::read(&db).unwrap() == original,
        "the previous version's database is not written while the new one is on trial"
    );
    assert!(dir.join("snakkaz-pay.redb.trial").exists());

    // Blessed: published again, the daemon restarted: the copy is the database now.
    std::fs::rename(
        esp.join("snakkaz-pay-0.3.0-b+2-1.efi"),
        esp.join("snakkaz-pay-0.3.0-b.efi"),
    )
    .unwrap();
    assert_eq!(publish(&b)["last_update_outcome"]["outcome"], "good");
    app.restart();
    let (_, s) = app.get("/api/status");
    assert_eq!(s["payments"]["pending"], 2, "{s}");
    assert_eq!(s["update"]["database"]["kind"], "migrated");
    assert_eq!(s["update"]["last_outcome"], "good");
    assert!(!dir.join("snakkaz-pay.redb.trial").exists());
    app.stop();
}
