//! `snakkaz-pay backup`: snapshot → check → encrypt → atomic write → manifest →
//! retention → off-site copy.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, bail};
use bdk_wallet::bitcoin::hashes::{Hash, HashEngine, sha256};
use serde::Serialize;

use super::crypt::{Encryption, create_private, encrypt_file};
use super::manifest::{self, Manifest};
use super::{offsite, retention};
use crate::config::Config;
use crate::store::Store;

/// What `backup` did.
#[derive(Debug, Clone, Serialize)]
pub struct TakeReport {
    /// The encrypted backup.
    pub file: PathBuf,
    /// Its manifest.
    pub manifest_file: PathBuf,
    /// The manifest's contents.
    pub manifest: Manifest,
    /// `running daemon` or `database file`.
    pub via: String,
    /// Size of the plaintext snapshot.
    pub snapshot_bytes: u64,
    /// Milliseconds the whole backup took.
    pub took_ms: u64,
    /// Old backups removed by retention.
    pub removed: Vec<String>,
    /// The off-site copy, when a remote is configured.
    pub offsite: Option<offsite::OffsiteReport>,
}

/// Takes a backup into `dir`. `snapshot` writes a consistent snapshot to the path it is
/// given (through the daemon or from the stopped database) and says which.
pub fn take(
    cfg: &Config,
    dir: &Path,
    snapshot: impl FnOnce(&Path) -> anyhow::Result<String>,
) -> anyhow::Result<TakeReport> {
    let started = Instant::now();
    let enc = Encryption::from_config(&cfg.backup)?;
    create_private_dir(dir)?;
    // A private temporary directory beside the backups: the plaintext snapshot never
    // leaves this box's backup directory and is removed on every path out.
    let tmp = tempfile::Builder::new()
        .prefix(".snakkaz-pay-tmp-")
        .tempdir_in(dir)
        .with_context(|| format!("creating a temporary directory in {}", dir.display()))?;
    let created_ms = manifest::now_ms();
    let snap = tmp.path().join("snapshot.redb");
    let via = snapshot(&snap)?;
    let snapshot_bytes = std::fs::metadata(&snap)
        .with_context(|| format!("reading {}", snap.display()))?
        .len();
    // Reopening checks the copy once more (and that it is a snakkaz-pay database).
    crate::store::check_snapshot(&snap).context("the snapshot failed its check")?;
    let facts = {
        let s = Store::open_file(&snap).context("opening the snapshot")?;
        super::facts(&s)?
    };

    let checksum = manifest::checksum_of(&facts.descriptor);
    let network = facts.network.to_string();
    let name = manifest::backup_name(&network, created_ms, &checksum);
    let file = dir.join(&name);
    if file.exists() {
        bail!(
            "{} exists already; wait a moment and run backup again",
            file.display()
        );
    }
    let partial = dir.join(format!(".{name}.tmp"));
    // A leftover of an interrupted run, usually absent.
    let _stale = std::fs::remove_file(&partial);
    encrypt_file(&snap, &partial, &enc)?;
    let (encrypted_bytes, sha) = sha256_file(&partial)?;
    drop(tmp);
    std::fs::rename(&partial, &file)
        .with_context(|| format!("renaming {} to {}", partial.display(), file.display()))?;

    let m = Manifest {
        format_version: manifest::FORMAT_VERSION,
        created_at: manifest::rfc3339(created_ms),
        created_at_unix_ms: created_ms,
        app_version: env!("CARGO_PKG_VERSION").to_owned(),
        schema_version: facts.schema_version,
        network: network.clone(),
        descriptor_checksum: checksum,
        change_descriptor_checksum: facts
            .change_descriptor
            .as_deref()
            .map(manifest::checksum_of),
        payment_count: facts.payment_count,
        tip_height: Some(facts.tip_height),
        last_revealed_index: facts.last_revealed_index,
        encryption: enc.scheme().to_owned(),
        encrypted_file: name.clone(),
        encrypted_bytes,
        sha256: sha,
    };
    let manifest_file = dir.join(manifest::manifest_name(&name));
    write_atomic(
        &manifest_file,
        &serde_json::to_vec_pretty(&m).expect("manifest serializes"),
    )?;
    sync_dir(dir)?;

    let removed = apply_retention(dir, &network, cfg.backup.keep_daily, cfg.backup.keep_weekly)?;
    let offsite = cfg
        .backup
        .remote
        .as_deref()
        .map(|remote| offsite::copy(dir, remote, cfg.backup.rclone_config.as_deref()));
    Ok(TakeReport {
        file,
        manifest_file,
        manifest: m,
        via,
        snapshot_bytes,
        took_ms: started.elapsed().as_millis() as u64,
        removed,
        offsite,
    })
}

/// Hex SHA-256 and size of a file.
pub fn sha256_file(path: &Path) -> anyhow::Result<(u64, String)> {
    let mut f = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut engine = sha256::Hash::engine();
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        engine.input(&buf[..n]);
        total += n as u64;
    }
    Ok((total, sha256::Hash::from_engine(engine).to_string()))
}

/// Backups in `dir` of this network, with their times (newest last not guaranteed).
pub fn list_backups(dir: &Path, network: Option<&str>) -> anyhow::Result<Vec<(String, u64)>> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))?;
    for e in entries {
        let e = e.with_context(|| format!("listing {}", dir.display()))?;
        let Some(name) = e.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if let Some(p) = manifest::parse_backup_name(&name)
            && network.is_none_or(|n| n == p.network)
        {
            out.push((name, p.unix_ms));
        }
    }
    Ok(out)
}

fn apply_retention(
    dir: &Path,
    network: &str,
    daily: u32,
    weekly: u32,
) -> anyhow::Result<Vec<String>> {
    let all = list_backups(dir, Some(network))?;
    let times: Vec<u64> = all.iter().map(|(_, t)| *t).collect();
    let keep = retention::keep(&times, daily, weekly);
    let mut removed = Vec::new();
    for (i, (name, _)) in all.iter().enumerate() {
        if keep.contains(&i) {
            continue;
        }
        for f in [name.clone(), manifest::manifest_name(name)] {
            match std::fs::remove_file(dir.join(&f)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("removing old backup {f}"));
                }
            }
        }
        removed.push(name.clone());
    }
    removed.sort();
    Ok(removed)
}

/// Writes `bytes` to `path` through a temporary file, fsync and rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.tmp"));
    // A leftover of an interrupted run, usually absent.
    let _stale = std::fs::remove_file(&tmp);
    let mut f = create_private(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming into {}", path.display()))?;
    Ok(())
}

/// fsync of a directory, so renames in it are durable.
pub fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing directory {}", dir.display()))
}

/// Creates `dir` (and its parents) with mode 0700.
pub fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
        .with_context(|| format!("creating the backup directory {}", dir.display()))
}
