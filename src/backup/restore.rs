//! `snakkaz-pay restore FILE` (daemon stopped) and the skip-ahead the daemon applies at
//! its next start, so no address handed out after the backup is handed out again.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use bdk_wallet::{KeychainKind, Wallet};
use serde::Serialize;

use super::crypt::Identities;
use super::verify::{self, Failure};
use crate::config::Config;
use crate::store::{
    AuditEntry, RestoreMarker, Store, StoreError, WriteBatch, rescan_key, restore_marker_entry,
    resync_when_sink_starts_entry,
};

/// What `restore` did.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    /// The backup restored.
    pub file: PathBuf,
    /// The database now in place.
    pub database: PathBuf,
    /// Where the previous database was kept (never deleted).
    pub previous_kept_at: Option<PathBuf>,
    /// Payments restored.
    pub payment_count: u64,
    /// Last receive index revealed in the backup.
    pub last_revealed_index: Option<u32>,
    /// Addresses the daemon will skip at its next start.
    pub skip_ahead: u32,
    /// Every payment was queued for the Supabase sink (`false`: no sink is configured; a
    /// sink configured later starts with a full resync).
    pub sink_requeued: bool,
    /// Warnings (a forced restore of another wallet).
    pub warnings: Vec<String>,
}

/// Restores `file` over the configured database. The daemon must be stopped.
pub fn restore(
    cfg: &Config,
    file: &Path,
    ids: &Identities,
    force: bool,
) -> anyhow::Result<RestoreReport> {
    let db = &cfg.db_path;
    // The store's file lock tells whether the daemon holds the database.
    if db.exists() {
        match Store::open(db) {
            Ok(s) => drop(s),
            Err(StoreError::Locked { .. }) => bail!(
                "the daemon holds {}: stop it first (systemctl stop snakkaz-pay), then run restore again",
                db.display()
            ),
            // A damaged current database is exactly what a restore is for; it is kept aside.
            Err(e) => {
                tracing::warn!(error = %e, "the current database does not open; restoring over it")
            }
        }
    }
    let dir = db
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    // Decrypt beside the database so the final rename stays on one file system.
    let tmp = tempfile::Builder::new()
        .prefix(".snakkaz-pay-restore-")
        .tempdir_in(dir)
        .with_context(|| format!("creating a temporary directory in {}", dir.display()))?;
    let snap = tmp.path().join("restored.redb");
    let m = verify::read_manifest(file)?;
    verify::decrypt_checked(file, &m, ids, &snap).map_err(refusal)?;
    let mut warnings = Vec::new();
    let sink_configured = cfg.supabase_db_url_file.is_some();
    let (payment_count, last_revealed_index) = {
        let store = verify::open_snapshot(&snap).map_err(refusal)?;
        let facts = super::facts(&store)?;
        if let Err(f) = verify::check_identity(&facts, cfg) {
            if !force {
                return Err(refusal(f)).context(
                    "refusing to restore a backup of another wallet (add --force only if you mean to replace this wallet with it)",
                );
            }
            let w = format!("--force: restoring despite: {f}");
            eprintln!("WARNING: {w}");
            warnings.push(w);
        }
        let now = crate::clock::now();
        let marker = RestoreMarker {
            restored_at: now,
            file: file_name(file),
            skip_ahead: cfg.backup.restore_skip_ahead,
            applied_at: None,
            revealed_to: None,
        };
        // The downstream database may be older or newer than the backup: resend all, now
        // when a sink is configured, else when one first starts.
        let mut meta = vec![restore_marker_entry(&marker)];
        if !sink_configured {
            meta.push(resync_when_sink_starts_entry());
        }
        store
            .commit_blocking(WriteBatch {
                meta,
                // Addresses may have been used after the backup: scan the chain again.
                meta_remove: vec![rescan_key()],
                requeue_all: sink_configured,
                audit: vec![AuditEntry {
                    at: now,
                    action: "backup.restore".into(),
                    source: "cli".into(),
                    detail: format!(
                        "restored from {}; skip-ahead {} addresses at next start",
                        marker.file, marker.skip_ahead
                    ),
                }],
                ..Default::default()
            })
            .context("writing the restore marker")?;
        (facts.payment_count, facts.last_revealed_index)
    };
    wait_closed(&snap)?;
    std::fs::File::open(&snap)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("syncing {}", snap.display()))?;

    let previous_kept_at = if db.exists() {
        let aside = aside_name(db, crate::clock::now());
        std::fs::rename(db, &aside)
            .with_context(|| format!("moving the current database aside to {}", aside.display()))?;
        Some(aside)
    } else {
        None
    };
    std::fs::rename(&snap, db)
        .with_context(|| format!("moving the restored database to {}", db.display()))?;
    super::take::sync_dir(dir)?;
    Ok(RestoreReport {
        file: file.to_owned(),
        database: db.clone(),
        previous_kept_at,
        payment_count,
        last_revealed_index,
        skip_ahead: cfg.backup.restore_skip_ahead,
        sink_requeued: sink_configured,
        warnings,
    })
}

fn refusal(f: Failure) -> anyhow::Error {
    anyhow::anyhow!("{f} [{}]", f.code())
}

fn file_name(p: &Path) -> String {
    p.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// `<db>.before-restore-<unix seconds>`; never an existing file.
fn aside_name(db: &Path, now: u64) -> PathBuf {
    let base = format!("{}.before-restore-{now}", db.display());
    let mut p = PathBuf::from(&base);
    let mut n = 1;
    while p.exists() {
        p = PathBuf::from(format!("{base}-{n}"));
        n += 1;
    }
    p
}

/// The store's writer thread releases the file shortly after the last handle is dropped.
fn wait_closed(path: &Path) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match Store::open_file(path) {
            Ok(s) => {
                drop(s);
                // Opened and dropped by us: give our own writer thread its moment too.
                std::thread::sleep(std::time::Duration::from_millis(50));
                return Ok(());
            }
            Err(StoreError::Locked { .. }) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => return Err(e).context("reopening the restored database"),
        }
    }
}

/// At start after a restore: reveals receive addresses up to the backup's last revealed
/// index plus the marker's skip-ahead, persists that with the marker marked applied, and
/// returns the last index revealed. Does nothing (returns `None`) without a pending marker.
pub fn apply_skip_ahead(store: &Store, wallet: &mut Wallet) -> Result<Option<u32>, StoreError> {
    let Some(mut marker) = store.restore_marker()? else {
        return Ok(None);
    };
    if marker.applied_at.is_some() {
        return Ok(None);
    }
    let target = skip_target(
        wallet.derivation_index(KeychainKind::External),
        marker.skip_ahead,
    );
    if let Some(target) = target {
        // Revealed, not used: they are skipped because the next payment takes the next index.
        let _revealed: Vec<_> = wallet
            .reveal_addresses_to(KeychainKind::External, target)
            .collect();
    }
    let now = crate::clock::now();
    marker.applied_at = Some(now);
    marker.revealed_to = wallet.derivation_index(KeychainKind::External);
    store.commit_blocking(WriteBatch {
        wallet: wallet.take_staged(),
        meta: vec![restore_marker_entry(&marker)],
        audit: vec![AuditEntry {
            at: now,
            action: "backup.skip_ahead".into(),
            source: "daemon".into(),
            detail: format!(
                "after restore of {}: receive addresses revealed up to index {:?}; new payments start after it",
                marker.file, marker.revealed_to
            ),
        }],
        ..Default::default()
    })?;
    tracing::warn!(
        skip_ahead = marker.skip_ahead,
        revealed_to = %marker.revealed_to.map_or("none".to_owned(), |i| i.to_string()),
        "database restored from a backup: skipped ahead so no address handed out after the backup is reused"
    );
    Ok(marker.revealed_to)
}

/// The last index to reveal: `last + skip` (or `skip - 1` from nothing revealed).
pub fn skip_target(last_revealed: Option<u32>, skip: u32) -> Option<u32> {
    match (last_revealed, skip) {
        (_, 0) => None,
        (Some(last), s) => Some(last.saturating_add(s)),
        (None, s) => Some(s - 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_target_moves_past_the_last_revealed() {
        assert_eq!(skip_target(Some(41), 1000), Some(1041));
        assert_eq!(skip_target(None, 1000), Some(999));
        assert_eq!(skip_target(Some(5), 0), None);
        assert_eq!(skip_target(Some(u32::MAX - 1), 10), Some(u32::MAX));
    }
}
