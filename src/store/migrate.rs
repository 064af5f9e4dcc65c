//! Schema migrations across appliance updates, and the way back after a rollback.
//!
//! A new version on trial (its boot not yet assessed good) must leave the database the
//! previous version can open: if the box falls back, that version starts on it. So:
//!
//! - **On trial**, a binary whose schema is newer than the file's migrates a *copy*
//!   (`<db>.trial`, described by `<db>.trial.json`) and runs on it; the original is not
//!   written at all.
//! - **Once blessed** (or anywhere that is not an appliance on trial), the next open
//!   promotes the copy: the original moves to `pre-update/before-migration-*.redb`
//!   (kept), the copy takes its name.
//! - **After a fallback**, the previous binary finds a copy of a schema newer than its
//!   own: the trial's changes cannot be kept (it cannot read them safely), so the copy
//!   moves to `pre-update/failed-trial-*.redb` and the loss is said loudly.
//! - A binary that finds the database itself at a newer schema (migrated by a blessed
//!   newer version, then downgraded; or by a version before this scheme) restores the
//!   newest pre-update snapshot that `snakkaz-pay update` took and that it can read,
//!   keeps the newer file aside, and says what was lost, instead of refusing forever.
//!
//! Whatever is lost is said in the log, as an audit entry and as a notice (META
//! `update_notice`) the status page and `/api/status` show; addresses handed out by the
//! lost version are skipped (restore marker) and the chain is scanned again.

use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, ReadableTable};
use serde::{Deserialize, Serialize};

use super::tables::*;
use super::{DbResultExt, StoreError, decode, encode};

/// The update status the appliance publishes (see `crate::update::publish`), under the
/// system root.
pub const UPDATE_STATUS_FILE: &str = "var/lib/snakkaz-pay-update/status.json";
/// Points the system root elsewhere (tests, offline updates).
pub const SYSROOT_ENV: &str = "SNAKKAZ_PAY_UPDATE_SYSROOT";
/// Beside the database: the snapshots `snakkaz-pay update` takes and the files kept here.
pub const PRE_UPDATE_DIR: &str = "pre-update";
/// META key of the last notice about a migration or a rollback of the database.
pub const UPDATE_NOTICE_KEY: &str = "update_notice";
/// Addresses skipped after a rollback lost payments (as `restore`'s default): none
/// handed out by the lost version is handed out again.
pub const ROLLBACK_SKIP_AHEAD: u32 = 1_000;

/// The system root the published update status is read under (`/`, or `SYSROOT_ENV`).
pub fn sysroot() -> PathBuf {
    std::env::var_os(SYSROOT_ENV).map_or_else(|| PathBuf::from("/"), PathBuf::from)
}

/// Whether schema migrations may run on the database itself now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Migrate in place (a blessed version, or no appliance update going on).
    Migrate,
    /// This version is on trial: migrate a copy, keep the original for a fallback.
    Defer,
}

impl Policy {
    /// The policy the published update status asks for: `Defer` while the running
    /// version is on trial, else `Migrate` (also when nothing is published: not an
    /// appliance, or no update installed).
    pub fn of_system() -> Policy {
        Policy::from_status_file(&sysroot().join(UPDATE_STATUS_FILE))
    }

    /// The policy from a published status file.
    pub fn from_status_file(path: &Path) -> Policy {
        #[derive(Deserialize)]
        struct Outcome {
            outcome: String,
        }
        #[derive(Deserialize)]
        struct Published {
            last_update_outcome: Outcome,
        }
        match std::fs::read(path) {
            Ok(bytes) => match serde_json::from_slice::<Published>(&bytes) {
                Ok(p) if p.last_update_outcome.outcome == "on_trial" => Policy::Defer,
                Ok(_) => Policy::Migrate,
                Err(e) => {
                    // Unreadable: assume the safe side (a copy can always be promoted).
                    tracing::warn!(path = %path.display(), error = %e, "the update status file is unreadable; schema migrations wait");
                    Policy::Defer
                }
            },
            Err(_) => Policy::Migrate,
        }
    }
}

/// What happened to the database before it was opened, for the operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateNotice {
    /// Unix seconds.
    pub at: u64,
    /// `migrated` (a trial copy promoted), `trial_discarded` (a fallback) or
    /// `rolled_back` (a newer database replaced by the pre-update snapshot).
    pub kind: String,
    /// Whether data was lost (shown as a problem).
    pub lost: bool,
    /// What happened and what was lost, in words.
    pub detail: String,
    /// Payments (ids) the lost database had that this one does not; at most
    /// `LOST_LISTED`, `lost_payments_total` counts them all (`None`: unreadable).
    pub lost_payments: Vec<String>,
    /// All lost payments, when they could be counted.
    pub lost_payments_total: Option<u64>,
    /// Where the file that was replaced is kept.
    pub kept_at: Option<PathBuf>,
}

/// Lost payment ids listed by name in a notice.
const LOST_LISTED: usize = 20;

/// `<db>.trial` and `<db>.trial.json`.
pub fn trial_paths(db: &Path) -> (PathBuf, PathBuf) {
    let mut copy = db.as_os_str().to_owned();
    copy.push(".trial");
    let mut marker = copy.clone();
    marker.push(".json");
    (PathBuf::from(copy), PathBuf::from(marker))
}

/// The trial copy's description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrialMarker {
    /// Unix seconds it was made.
    pub created_at: u64,
    /// The original's schema.
    pub from_schema: u64,
    /// The copy's schema (the binary's that made it).
    pub to_schema: u64,
    /// The version of the binary that made it.
    pub binary: String,
}

/// The file to open, and what was done to get there.
pub(super) struct Prepared {
    pub file: PathBuf,
    pub notices: Vec<UpdateNotice>,
}

fn io<'a>(path: &'a Path, op: &'static str) -> impl Fn(std::io::Error) -> StoreError + 'a {
    super::io_failure(path, op)
}

/// Decides which file to open at `db` under `policy`: promotes, discards or makes the
/// trial copy, or restores the pre-update snapshot over a too-new database.
pub(super) fn prepare(db: &Path, policy: Policy) -> Result<Prepared, StoreError> {
    let mut notices = Vec::new();
    let (copy, marker_path) = trial_paths(db);
    // Nothing is moved while a process (the daemon) has either file open.
    ensure_unused(db)?;
    ensure_unused(&copy)?;
    if let Some(m) = read_marker(&marker_path)? {
        if m.to_schema > SCHEMA_VERSION || !copy.exists() {
            notices.push(discard_trial(db, &m)?);
        } else if policy == Policy::Defer {
            tracing::warn!(copy = %copy.display(), "on trial: running on the migrated copy of the database; the original waits for the blessing");
            return Ok(Prepared {
                file: copy,
                notices,
            });
        } else {
            notices.push(promote(db, &m)?);
        }
    }
    match peek_schema(db)? {
        Some(found) if found > SCHEMA_VERSION => {
            notices.push(restore_pre_update(db, found)?);
        }
        Some(found) if found < SCHEMA_VERSION && policy == Policy::Defer => {
            make_trial_copy(db, found)?;
            return Ok(Prepared {
                file: copy,
                notices,
            });
        }
        _ => {}
    }
    Ok(Prepared {
        file: db.to_owned(),
        notices,
    })
}

fn ensure_unused(path: &Path) -> Result<(), StoreError> {
    match Database::builder().open_read_only(path) {
        Err(redb::DatabaseError::DatabaseAlreadyOpen)
        | Err(redb::DatabaseError::LockProtocolMismatch) => Err(StoreError::Locked {
            path: path.to_owned(),
        }),
        // Free, missing, or for the normal open to judge.
        _ => Ok(()),
    }
}

fn read_marker(path: &Path) -> Result<Option<TrialMarker>, StoreError> {
    match std::fs::read(path) {
        Ok(b) => decode("trial marker", &b).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(path, "read the trial marker")(e)),
    }
}

/// The schema version recorded in the file, without writing it; `None` when the file
/// cannot be read this way (missing, not ours: the normal open decides).
fn peek_schema(path: &Path) -> Result<Option<u64>, StoreError> {
    if !path.exists() {
        return Ok(None);
    }
    let ro = match Database::builder().open_read_only(path) {
        Ok(ro) => ro,
        Err(redb::DatabaseError::RepairAborted) => {
            // Left by a crash: let redb repair it (this writes no data of ours), then look.
            drop(
                Database::builder()
                    .open(path)
                    .map_err(|e| super::classify_open_error(path, e))?,
            );
            Database::builder()
                .open_read_only(path)
                .map_err(|e| super::classify_open_error(path, e))?
        }
        Err(_) => return Ok(None),
    };
    let rtx = ro.begin_read().db("begin read")?;
    let Ok(meta) = rtx.open_table(META) else {
        return Ok(None);
    };
    Ok(meta
        .get("schema_version")
        .db("read meta")?
        .and_then(|v| v.value().try_into().ok().map(u64::from_le_bytes)))
}

/// A copy of `db` next to it under `<db>.trial`, complete or absent (written under a
/// temporary name, synced, renamed), and its marker.
fn make_trial_copy(db: &Path, found: u64) -> Result<(), StoreError> {
    let (copy, marker_path) = trial_paths(db);
    let tmp = copy.with_extension("trial.tmp");
    // Nobody may write the original while it is copied: hold redb's lock, read-only so
    // that not even redb's header is rewritten.
    let lock = Database::builder()
        .open_read_only(db)
        .map_err(|e| super::classify_open_error(db, e))?;
    std::fs::copy(db, &tmp).map_err(io(&tmp, "copy the database for the trial"))?;
    drop(lock);
    sync_file(&tmp)?;
    let marker = TrialMarker {
        created_at: crate::clock::now(),
        from_schema: found,
        to_schema: SCHEMA_VERSION,
        binary: env!("CARGO_PKG_VERSION").to_owned(),
    };
    write_atomic(&marker_path, &encode(&marker))?;
    std::fs::rename(&tmp, &copy).map_err(io(&copy, "move the trial copy into place"))?;
    sync_parent(db)?;
    tracing::warn!(
        from = found,
        to = SCHEMA_VERSION,
        copy = %copy.display(),
        "this version is on trial: its schema migration runs on a copy of the database; the original stays for a fallback until the boot is blessed"
    );
    Ok(())
}

/// The trial is over and good: the original is kept under `pre-update/`, the copy
/// takes its place.
fn promote(db: &Path, m: &TrialMarker) -> Result<UpdateNotice, StoreError> {
    let (copy, marker_path) = trial_paths(db);
    let kept = kept_path(db, &format!("before-migration-schema{}", m.from_schema))?;
    if db.exists() {
        std::fs::rename(db, &kept)
            .map_err(io(db, "keep the database from before the migration"))?;
    }
    std::fs::rename(&copy, db).map_err(io(db, "put the migrated database in place"))?;
    std::fs::remove_file(&marker_path).map_err(io(&marker_path, "remove the trial marker"))?;
    sync_parent(db)?;
    sync_parent(&kept)?;
    let detail = format!(
        "version {} was blessed: its migrated database (schema {} -> {}) is now the database; the one from before the migration is kept at {}",
        m.binary,
        m.from_schema,
        m.to_schema,
        kept.display()
    );
    tracing::info!("{detail}");
    Ok(UpdateNotice {
        at: crate::clock::now(),
        kind: "migrated".into(),
        lost: false,
        detail,
        lost_payments: Vec::new(),
        lost_payments_total: Some(0),
        kept_at: Some(kept),
    })
}

/// A newer version's trial copy after a fallback: moved aside; what it had that the
/// original lacks is lost, and said.
fn discard_trial(db: &Path, m: &TrialMarker) -> Result<UpdateNotice, StoreError> {
    let (copy, marker_path) = trial_paths(db);
    let mut kept_at = None;
    let (ids, total) = if copy.exists() {
        let lost = lost_payments(&copy, db);
        let kept = kept_path(db, &format!("failed-trial-{}", m.binary))?;
        std::fs::rename(&copy, &kept).map_err(io(&copy, "keep the failed trial's database"))?;
        kept_at = Some(kept);
        lost
    } else {
        (Vec::new(), Some(0))
    };
    std::fs::remove_file(&marker_path).map_err(io(&marker_path, "remove the trial marker"))?;
    sync_parent(db)?;
    let detail = format!(
        "version {} did not stay (the box fell back to this version): it ran on a migrated copy of the database since {}; {} created during its trial {} not in this database{}",
        m.binary,
        crate::clock::rfc3339(m.created_at),
        count_words(total),
        if total == Some(1) { "is" } else { "are" },
        kept_at
            .as_ref()
            .map(|k| format!("; its database is kept at {}", k.display()))
            .unwrap_or_default()
    );
    tracing::error!(lost_payments = ?ids, "{detail}");
    Ok(UpdateNotice {
        at: crate::clock::now(),
        kind: "trial_discarded".into(),
        lost: total != Some(0),
        detail,
        lost_payments: ids,
        lost_payments_total: total,
        kept_at,
    })
}

/// The database is newer than this binary: the newest readable pre-update snapshot
/// replaces it; it is kept aside.
fn restore_pre_update(db: &Path, found: u64) -> Result<UpdateNotice, StoreError> {
    let Some(snap) = newest_usable_snapshot(db)? else {
        return Err(StoreError::TooNew {
            path: db.to_owned(),
            found,
            supported: SCHEMA_VERSION,
        });
    };
    let lost = lost_payments(db, &snap);
    let kept = kept_path(db, &format!("rolled-back-schema{found}"))?;
    let tmp = db.with_extension("restoring.tmp");
    std::fs::copy(&snap, &tmp).map_err(io(&tmp, "copy the pre-update snapshot"))?;
    sync_file(&tmp)?;
    std::fs::rename(db, &kept).map_err(io(db, "keep the newer database aside"))?;
    std::fs::rename(&tmp, db).map_err(io(db, "put the pre-update snapshot in place"))?;
    sync_parent(db)?;
    sync_parent(&kept)?;
    let taken = std::fs::metadata(&snap)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or_else(|| "?".into(), |d| crate::clock::rfc3339(d.as_secs()));
    let detail = format!(
        "the database had schema {found}, newer than this version understands ({SCHEMA_VERSION}): a newer version ran and was rolled back. Restored the pre-update snapshot {} (taken {taken}); everything recorded after it is lost here: {} created after it, and every status change since. The newer database is kept at {}",
        snap.display(),
        count_words(lost.1),
        kept.display()
    );
    tracing::error!(lost_payments = ?lost.0, "{detail}");
    Ok(UpdateNotice {
        at: crate::clock::now(),
        kind: "rolled_back".into(),
        lost: true,
        detail,
        lost_payments: lost.0,
        lost_payments_total: lost.1,
        kept_at: Some(kept),
    })
}

fn count_words(total: Option<u64>) -> String {
    match total {
        Some(1) => "1 payment".into(),
        Some(n) => format!("{n} payments"),
        None => "an unknown number of payments (the newer file could not be read)".into(),
    }
}

/// The newest `pre-update/snakkaz-pay-*.redb` whose schema this binary reads.
fn newest_usable_snapshot(db: &Path) -> Result<Option<PathBuf>, StoreError> {
    let dir = pre_update_dir(db);
    let mut names: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("snakkaz-pay-") && n.ends_with(".redb"))
            })
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(&dir, "list the pre-update snapshots")(e)),
    };
    // Names carry the compact UTC time: newest last.
    names.sort();
    for p in names.into_iter().rev() {
        match peek_schema(&p) {
            Ok(Some(s)) if s <= SCHEMA_VERSION => return Ok(Some(p)),
            other => {
                tracing::warn!(file = %p.display(), schema = ?other.ok().flatten(), "pre-update snapshot not usable by this version")
            }
        }
    }
    Ok(None)
}

/// Payments in `newer` that `older` does not have (by seq): their ids (at most
/// `LOST_LISTED`) and count; the count is `None` when `newer` cannot be read.
fn lost_payments(newer: &Path, older: &Path) -> (Vec<String>, Option<u64>) {
    let last_seq = |p: &Path| -> Option<u64> {
        let db = Database::builder().open_read_only(p).ok()?;
        let rtx = db.begin_read().ok()?;
        let t = rtx.open_table(PAYMENTS).ok()?;
        Some(t.last().ok()?.map_or(0, |(k, _)| k.value()))
    };
    let read = || -> Option<(Vec<String>, u64)> {
        let floor = last_seq(older).unwrap_or(0);
        let db = Database::builder().open_read_only(newer).ok()?;
        let rtx = db.begin_read().ok()?;
        let t = rtx.open_table(PAYMENTS).ok()?;
        let mut ids = Vec::new();
        let mut n = 0u64;
        for r in t.range(floor + 1..).ok()? {
            let (_, v) = r.ok()?;
            n += 1;
            if ids.len() < LOST_LISTED {
                // A newer format may not decode: still counted.
                if let Ok(p) = decode::<crate::payments::Payment>("payment", v.value()) {
                    ids.push(p.id);
                }
            }
        }
        Some((ids, n))
    };
    match read() {
        Some((ids, n)) => (ids, Some(n)),
        None => (Vec::new(), None),
    }
}

fn pre_update_dir(db: &Path) -> PathBuf {
    db.parent().unwrap_or(Path::new(".")).join(PRE_UPDATE_DIR)
}

/// A new name under `pre-update/` for a file kept there.
fn kept_path(db: &Path, what: &str) -> Result<PathBuf, StoreError> {
    let dir = pre_update_dir(db);
    std::fs::create_dir_all(&dir).map_err(io(&dir, "create the pre-update directory"))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        // It holds whole databases: owner only.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io(&dir, "restrict the pre-update directory"))?;
    }
    let stamp = crate::clock::rfc3339(crate::clock::now()).replace(['-', ':'], "");
    let mut p = dir.join(format!("{what}-{stamp}.redb"));
    let mut n = 1;
    while p.exists() {
        n += 1;
        p = dir.join(format!("{what}-{stamp}-{n}.redb"));
    }
    Ok(p)
}

fn sync_file(p: &Path) -> Result<(), StoreError> {
    std::fs::File::open(p)
        .and_then(|f| f.sync_all())
        .map_err(io(p, "sync"))
}

fn sync_parent(p: &Path) -> Result<(), StoreError> {
    match p.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(d) => std::fs::File::open(d)
            .and_then(|f| f.sync_all())
            .map_err(io(d, "sync the directory")),
        None => Ok(()),
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, bytes).map_err(io(&tmp, "write"))?;
    sync_file(&tmp)?;
    std::fs::rename(&tmp, path).map_err(io(path, "rename into place"))?;
    sync_parent(path)
}

impl super::Store {
    /// The last notice about a migration or rollback of the database, if any.
    pub fn update_notice(&self) -> Result<Option<UpdateNotice>, StoreError> {
        let rtx = self.db()?.begin_read().db("begin read")?;
        let t = rtx.open_table(META).db("open meta")?;
        t.get(UPDATE_NOTICE_KEY)
            .db("read meta")?
            .map(|v| decode("update notice", v.value()))
            .transpose()
    }

    /// Records the notices of `prepare` (META, audit) and, when payments were lost,
    /// makes the next wallet load skip past the lost version's addresses and rescan.
    pub(super) fn record_notices(&self, notices: Vec<UpdateNotice>) -> Result<(), StoreError> {
        let Some(last) = notices.last().cloned() else {
            return Ok(());
        };
        let lost = notices.iter().any(|n| n.lost);
        let mut batch = super::WriteBatch {
            meta: vec![(UPDATE_NOTICE_KEY, encode(&last))],
            audit: notices
                .iter()
                .map(|n| super::AuditEntry {
                    at: n.at,
                    action: format!("update.database.{}", n.kind),
                    detail: n.detail.clone(),
                    source: "daemon".into(),
                })
                .collect(),
            ..Default::default()
        };
        if lost {
            batch
                .meta
                .push(super::restore_marker_entry(&super::RestoreMarker {
                    restored_at: last.at,
                    file: last
                        .kept_at
                        .as_ref()
                        .and_then(|p| p.file_name())
                        .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
                    skip_ahead: ROLLBACK_SKIP_AHEAD,
                    applied_at: None,
                    revealed_to: None,
                }));
            batch.meta_remove.push(super::rescan_key());
        }
        self.commit_blocking(batch).map(drop)
    }
}

#[cfg(test)]
mod tests {
    //! Real redb files at different schema versions: a schema-1 file (no watch index,
    //! the migration this binary carries builds it) and a file marked with a schema newer
    //! than this binary's.
    use redb::{Database, ReadableTableMetadata};

    use super::super::tests::{created, payment};
    use super::super::{Store, WriteBatch};
    use super::*;

    fn add(store: &Store, seq: u64) {
        let p = payment(seq, &format!("order-{seq}"));
        store
            .commit_blocking(WriteBatch {
                create: Some((p.clone(), created(&p))),
                ..Default::default()
            })
            .unwrap();
    }

    /// Opens, retrying while the previous handle's writer thread still holds the file.
    fn open(path: &Path, policy: Option<Policy>) -> Result<Store, StoreError> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match Store::open_with(path, policy) {
                Err(StoreError::Locked { .. }) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(10))
                }
                other => return other,
            }
        }
    }

    /// A database with payments 1..=n, closed.
    fn database(path: &Path, n: u64) {
        let s = open(path, Some(Policy::Migrate)).unwrap();
        for seq in 1..=n {
            add(&s, seq);
        }
        drop(s);
        wait_closed(path);
    }

    /// Rewrites the file's schema version; for 1, also removes what schema 2 added.
    fn set_schema(path: &Path, v: u64) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let db = loop {
            match Database::create(path) {
                Ok(db) => break db,
                Err(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(10))
                }
                Err(e) => panic!("{e}"),
            }
        };
        let w = db.begin_write().unwrap();
        {
            let mut meta = w.open_table(META).unwrap();
            meta.insert("schema_version", v.to_le_bytes().as_slice())
                .unwrap();
            if v == 1 {
                w.open_table(WATCH).unwrap().retain(|_, _| false).unwrap();
            }
        }
        w.commit().unwrap();
    }

    fn digest(path: &Path) -> [u8; 32] {
        use sha2::Digest as _;
        sha2::Sha256::digest(std::fs::read(path).unwrap()).into()
    }

    /// Waits until the last store's writer thread has released the file.
    fn wait_closed(path: &Path) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while Database::builder().open_read_only(path).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "{} still open",
                path.display()
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    fn schema(path: &Path) -> u64 {
        wait_closed(path);
        peek_schema(path).unwrap().unwrap()
    }

    fn watch_rows(path: &Path) -> u64 {
        wait_closed(path);
        let db = Database::builder().open_read_only(path).unwrap();
        let r = db.begin_read().unwrap();
        r.open_table(WATCH).unwrap().len().unwrap()
    }

    fn payment_rows(path: &Path) -> u64 {
        wait_closed(path);
        let db = Database::builder().open_read_only(path).unwrap();
        let rtx = db.begin_read().unwrap();
        rtx.open_table(PAYMENTS).unwrap().len().unwrap()
    }

    fn kept(dir: &Path, prefix: &str) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join(PRE_UPDATE_DIR))
            .map(|rd| {
                rd.map(|e| e.unwrap().path())
                    .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    #[test]
    fn on_trial_the_migration_runs_on_a_copy_and_blessing_promotes_it() {
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("pay.redb");
        database(&db, 2);
        set_schema(&db, 1);
        let before = digest(&db);
        let (copy, marker) = trial_paths(&db);
        {
            let s = open(&db, Some(Policy::Defer)).unwrap();
            assert_eq!(s.all_payments().unwrap().len(), 2);
            assert_eq!(
                s.path(),
                db,
                "the store still answers to its configured path"
            );
            add(&s, 3);
        }
        // The original is byte for byte what the previous version left.
        wait_closed(&db);
        assert_eq!(digest(&db), before);
        assert_eq!((schema(&db), watch_rows(&db)), (1, 0));
        assert_eq!((schema(&copy), payment_rows(&copy)), (SCHEMA_VERSION, 3));
        assert_eq!(watch_rows(&copy), 3, "the copy was migrated");
        let m: TrialMarker = serde_json::from_slice(&std::fs::read(&marker).unwrap()).unwrap();
        assert_eq!((m.from_schema, m.to_schema), (1, SCHEMA_VERSION));
        // A restart during the trial goes on with the copy, not a new one.
        {
            let s = open(&db, Some(Policy::Defer)).unwrap();
            assert_eq!(s.all_payments().unwrap().len(), 3);
        }
        wait_closed(&db);
        assert_eq!(digest(&db), before);
        // Blessed: the copy becomes the database; the original is kept.
        let s = open(&db, Some(Policy::Migrate)).unwrap();
        assert_eq!(s.all_payments().unwrap().len(), 3);
        assert!(!copy.exists() && !marker.exists());
        let n = s.update_notice().unwrap().unwrap();
        assert_eq!((n.kind.as_str(), n.lost), ("migrated", false));
        let k = kept(d.path(), "before-migration-schema1-");
        assert_eq!(k.len(), 1);
        assert_eq!(digest(&k[0]), before);
        assert!(
            s.audit_log(5)
                .unwrap()
                .iter()
                .any(|a| a.action == "update.database.migrated")
        );
        drop(s);
        wait_closed(&db);
        assert_eq!(schema(&db), SCHEMA_VERSION);
    }

    #[test]
    fn a_current_schema_needs_no_copy_on_trial() {
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("pay.redb");
        database(&db, 1);
        let s = open(&db, Some(Policy::Defer)).unwrap();
        add(&s, 2);
        drop(s);
        wait_closed(&db);
        assert!(!trial_paths(&db).0.exists());
        assert_eq!(payment_rows(&db), 2);
    }

    #[test]
    fn after_a_fallback_the_failed_trial_is_set_aside_and_its_payments_named() {
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("pay.redb");
        let (copy, marker) = trial_paths(&db);
        // The failed version's copy: the same payments and one made during its trial,
        // at a schema newer than this binary's.
        database(&copy, 3);
        set_schema(&copy, SCHEMA_VERSION + 1);
        database(&db, 2);
        let m = TrialMarker {
            created_at: 1_700_000_000,
            from_schema: SCHEMA_VERSION,
            to_schema: SCHEMA_VERSION + 1,
            binary: "9.9.9".into(),
        };
        std::fs::write(&marker, encode(&m)).unwrap();
        let s = open(&db, Some(Policy::Migrate)).unwrap();
        assert_eq!(s.all_payments().unwrap().len(), 2);
        let n = s.update_notice().unwrap().unwrap();
        assert_eq!((n.kind.as_str(), n.lost), ("trial_discarded", true));
        assert_eq!(n.lost_payments, [payment(3, "order-3").id]);
        assert_eq!(n.lost_payments_total, Some(1));
        assert!(
            n.detail.contains("9.9.9") && n.detail.contains("1 payment created"),
            "{}",
            n.detail
        );
        assert!(!copy.exists() && !marker.exists());
        let k = kept(d.path(), "failed-trial-9.9.9-");
        assert_eq!(k.len(), 1);
        assert_eq!(
            payment_rows(&k[0]),
            3,
            "the failed version's file is kept whole"
        );
        // Its addresses are not handed out again: skipped, and the chain scanned anew.
        let marker = s.restore_marker().unwrap().unwrap();
        assert_eq!(marker.skip_ahead, ROLLBACK_SKIP_AHEAD);
        assert!(!s.chain_scanned().unwrap());
        assert!(
            s.audit_log(5)
                .unwrap()
                .iter()
                .any(|a| a.action == "update.database.trial_discarded")
        );
    }

    #[test]
    fn a_newer_database_is_replaced_by_the_pre_update_snapshot_and_the_loss_said() {
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("pay.redb");
        database(&db, 2);
        let pre = d.path().join(PRE_UPDATE_DIR);
        std::fs::create_dir(&pre).unwrap();
        // An older snapshot, and the one `snakkaz-pay update` took last.
        let old = pre.join("snakkaz-pay-20261101T000000.000Z.redb");
        let snap = pre.join("snakkaz-pay-20261127T080000.000Z.redb");
        {
            let s = open(&db, Some(Policy::Migrate)).unwrap();
            s.snapshot_to(&old).unwrap();
            add(&s, 3);
            s.snapshot_to(&snap).unwrap();
            add(&s, 4);
            add(&s, 5);
        }
        // The newer version migrated the database and was then rolled back.
        set_schema(&db, SCHEMA_VERSION + 1);
        let s = open(&db, Some(Policy::Migrate)).unwrap();
        assert_eq!(s.all_payments().unwrap().len(), 3, "the newest snapshot");
        let n = s.update_notice().unwrap().unwrap();
        assert_eq!((n.kind.as_str(), n.lost), ("rolled_back", true));
        assert_eq!(n.lost_payments_total, Some(2));
        assert_eq!(
            n.lost_payments,
            [payment(4, "order-4").id, payment(5, "order-5").id]
        );
        assert!(
            n.detail.contains("2 payments created after it"),
            "{}",
            n.detail
        );
        let k = kept(
            d.path(),
            &format!("rolled-back-schema{}-", SCHEMA_VERSION + 1),
        );
        assert_eq!(k.len(), 1);
        assert_eq!(n.kept_at.as_deref(), Some(k[0].as_path()));
        assert_eq!(schema(&k[0]), SCHEMA_VERSION + 1);
        assert_eq!(
            payment_rows(&k[0]),
            5,
            "nothing of the newer file is destroyed"
        );
        assert!(snap.exists(), "the snapshot itself stays");
        assert_eq!(
            s.restore_marker().unwrap().unwrap().skip_ahead,
            ROLLBACK_SKIP_AHEAD
        );
        assert!(
            s.audit_log(5)
                .unwrap()
                .iter()
                .any(|a| a.action == "update.database.rolled_back")
        );
        drop(s);
        // A second start finds nothing more to do.
        let s = open(&db, Some(Policy::Migrate)).unwrap();
        assert_eq!(s.all_payments().unwrap().len(), 3);
        assert_eq!(kept(d.path(), "rolled-back-").len(), 1);
    }

    #[test]
    fn a_newer_database_without_a_usable_snapshot_is_refused_and_left_alone() {
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("pay.redb");
        database(&db, 1);
        set_schema(&db, SCHEMA_VERSION + 1);
        // A snapshot this binary cannot read either is no way back.
        let pre = d.path().join(PRE_UPDATE_DIR);
        std::fs::create_dir(&pre).unwrap();
        std::fs::copy(&db, pre.join("snakkaz-pay-20261127T080000.000Z.redb")).unwrap();
        let before = digest(&db);
        assert!(matches!(
            open(&db, Some(Policy::Migrate)),
            Err(StoreError::TooNew { .. })
        ));
        assert_eq!(digest(&db), before);
        // A snapshot or backup file is never rolled back: it is refused as it is.
        assert!(matches!(open(&db, None), Err(StoreError::TooNew { .. })));
    }

    #[test]
    fn the_published_update_status_decides_the_policy() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("status.json");
        assert_eq!(
            Policy::from_status_file(&f),
            Policy::Migrate,
            "no appliance"
        );
        let write = |o: &str| {
            std::fs::write(
                &f,
                format!(r#"{{"version":"0.2.0","last_update_outcome":{{"outcome":"{o}"}}}}"#),
            )
            .unwrap()
        };
        write("on_trial");
        assert_eq!(Policy::from_status_file(&f), Policy::Defer);
        for o in ["good", "none", "pending", "failed_fell_back"] {
            write(o);
            assert_eq!(Policy::from_status_file(&f), Policy::Migrate, "{o}");
        }
        std::fs::write(&f, "{not json").unwrap();
        assert_eq!(Policy::from_status_file(&f), Policy::Defer, "unsure: wait");
    }
}
