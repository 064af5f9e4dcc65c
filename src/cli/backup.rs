//! `backup`, `verify-backup`, `restore` and `export-mpk`.
//!
//! The snapshot comes from the daemon (admin API) while it holds the database, else from
//! the file itself; the verification result is recorded the same way.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use http::Method;
use serde_json::json;

use crate::backup::{crypt::Identities, mpk, restore, take, verify};
use crate::config::Config;
use crate::store::{Store, StoreError, VerificationRecord, WriteBatch, verification_entry};

/// Exit code of a backup written locally whose off-site copy failed.
const EXIT_OFFSITE_FAILED: u8 = 3;
/// Receive addresses printed by `export-mpk`.
const MPK_ADDRESSES: u32 = 5;

/// `backup` arguments.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Directory to write to (default: SNAKKAZ_PAY_BACKUP_DIR).
    #[arg(long)]
    pub to: Option<PathBuf>,
}

/// `verify-backup` arguments.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The backup (.redb.age) to verify.
    #[arg(conflicts_with = "latest", required_unless_present = "latest")]
    pub file: Option<PathBuf>,
    /// Verify the newest backup in SNAKKAZ_PAY_BACKUP_DIR.
    #[arg(long)]
    pub latest: bool,
    /// age identity file (default: SNAKKAZ_PAY_BACKUP_IDENTITY_FILE).
    #[arg(long)]
    pub identity: Option<PathBuf>,
}

/// `restore` arguments.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup (.redb.age) to restore.
    pub file: PathBuf,
    /// age identity file (default: SNAKKAZ_PAY_BACKUP_IDENTITY_FILE).
    #[arg(long)]
    pub identity: Option<PathBuf>,
    /// Restore even a backup of another network or descriptor (replaces this wallet).
    #[arg(long)]
    pub force: bool,
}

/// `snakkaz-pay backup`.
pub fn backup(cli: &super::Cli, args: &BackupArgs) -> anyhow::Result<ExitCode> {
    let cfg = super::load_config(cli)?;
    let dir = args.to.clone().unwrap_or_else(|| cfg.backup.dir.clone());
    let report = take::take(&cfg, &dir, |dest| snapshot(&cfg, dest))?;
    let offsite_failed = report.offsite.as_ref().is_some_and(|o| !o.ok);
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let m = &report.manifest;
        println!("backup written: {}", report.file.display());
        println!("manifest:       {}", report.manifest_file.display());
        println!(
            "contents:       {} payments, tip {}, network {}, descriptor {}",
            m.payment_count,
            m.tip_height.map_or("-".into(), |t| t.to_string()),
            m.network,
            m.descriptor_checksum
        );
        println!(
            "size:           {} bytes encrypted ({} bytes snapshot) in {} ms, via the {}",
            m.encrypted_bytes, report.snapshot_bytes, report.took_ms, report.via
        );
        for r in &report.removed {
            println!("removed (retention): {r}");
        }
        match &report.offsite {
            Some(o) if o.ok => println!("off-site:       copied to {}", o.remote),
            Some(o) => eprintln!(
                "off-site copy FAILED: {}",
                o.error.as_deref().unwrap_or("unknown error")
            ),
            None => println!("off-site:       not configured (SNAKKAZ_PAY_BACKUP_REMOTE)"),
        }
    }
    Ok(if offsite_failed {
        ExitCode::from(EXIT_OFFSITE_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

/// A consistent snapshot into `dest`: from the file when no daemon holds it, else from the daemon.
pub(super) fn snapshot(cfg: &Config, dest: &Path) -> anyhow::Result<String> {
    if !cfg.db_path.exists() {
        anyhow::bail!(
            "ELECTRUM_WALLET_PATH: no database at {}; nothing to back up",
            cfg.db_path.display()
        );
    }
    match Store::open(&cfg.db_path) {
        Ok(store) => {
            store
                .snapshot_to(dest)
                .context("taking a snapshot of the database")?;
            Ok("database file".into())
        }
        Err(StoreError::Locked { .. }) => {
            let client = super::daemon_client(cfg)?;
            let bytes = super::runtime()?
                .block_on(client.download(Method::POST, "/api/admin/backup"))
                .context("asking the daemon for a snapshot (POST /api/admin/backup)")?;
            let mut f = crate::backup::crypt::create_private(dest)
                .with_context(|| format!("creating {}", dest.display()))?;
            std::io::Write::write_all(&mut f, &bytes)
                .and_then(|()| f.sync_all())
                .with_context(|| format!("writing {}", dest.display()))?;
            Ok("running daemon".into())
        }
        Err(e) => Err(e).with_context(|| format!("opening {}", cfg.db_path.display())),
    }
}

/// `snakkaz-pay verify-backup`.
pub fn verify_backup(cli: &super::Cli, args: &VerifyArgs) -> anyhow::Result<ExitCode> {
    let cfg = super::load_config(cli)?;
    let file = match (&args.file, args.latest) {
        (Some(f), _) => f.clone(),
        (None, _) => verify::latest(&cfg.backup.dir)?,
    };
    let ids = Identities::resolve(args.identity.as_deref(), &cfg.backup)?;
    let result = verify::verify(&cfg, &file, &ids);
    let name = file.file_name().map_or_else(
        || file.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let record = VerificationRecord {
        at: crate::clock::now(),
        file: name,
        ok: result.is_ok(),
        reason: result.as_ref().err().map(ToString::to_string),
    };
    let recorded = record_verification(&cfg, &record);
    if let Err(e) = &recorded {
        eprintln!("warning: the result could not be recorded: {e:#}");
    }
    match &result {
        Ok(v) if cli.json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "ok": true, "file": v.file, "manifest": v.manifest,
                "first_addresses": v.first_addresses,
                "next_unused_address": v.next_unused_address,
                "next_unused_index": v.next_unused_index,
                "payment_count": v.payment_count, "tip_height": v.tip_height,
                "recorded": recorded.is_ok(),
            }))?
        ),
        Ok(v) => {
            println!("backup OK: {}", v.file.display());
            println!(
                "  {} payments, tip {}, network {}, descriptor {}",
                v.payment_count, v.tip_height, v.manifest.network, v.manifest.descriptor_checksum
            );
            println!("  first addresses: {}", v.first_addresses.join(", "));
            println!(
                "  next unused address: {} (index {})",
                v.next_unused_address, v.next_unused_index
            );
        }
        Err(f) if cli.json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "ok": false, "file": file, "reason_code": f.code(), "reason": f.to_string(),
                "recorded": recorded.is_ok(),
            }))?
        ),
        Err(f) => eprintln!(
            "backup verification FAILED for {}: {f} [{}]",
            file.display(),
            f.code()
        ),
    }
    Ok(if result.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Records the verification in the store: directly when the daemon is stopped, else through it.
fn record_verification(cfg: &Config, r: &VerificationRecord) -> anyhow::Result<()> {
    if !cfg.db_path.exists() {
        anyhow::bail!(
            "no database at {} to record it in (ELECTRUM_WALLET_PATH)",
            cfg.db_path.display()
        );
    }
    match Store::open(&cfg.db_path) {
        Ok(store) => {
            store.commit_blocking(WriteBatch {
                meta: vec![verification_entry(r)],
                ..Default::default()
            })?;
            Ok(())
        }
        Err(StoreError::Locked { .. }) => {
            let client = super::daemon_client(cfg)?;
            super::runtime()?.block_on(client.call(
                Method::POST,
                "/api/admin/backup/verification",
                Some(serde_json::to_value(r)?),
            ))?;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// `snakkaz-pay restore FILE`.
pub fn restore(cli: &super::Cli, args: &RestoreArgs) -> anyhow::Result<ExitCode> {
    let cfg = super::load_config(cli)?;
    let ids = Identities::resolve(args.identity.as_deref(), &cfg.backup)?;
    let r = restore::restore(&cfg, &args.file, &ids, args.force)?;
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!(
            "restored {} into {}",
            r.file.display(),
            r.database.display()
        );
        match &r.previous_kept_at {
            Some(p) => println!("previous database kept at {}", p.display()),
            None => println!("there was no previous database"),
        }
        println!(
            "{} payments; last revealed receive index {}",
            r.payment_count,
            r.last_revealed_index.map_or("-".into(), |i| i.to_string())
        );
        println!(
            "at its next start the daemon skips {} addresses past it (SNAKKAZ_PAY_RESTORE_SKIP_AHEAD) and catches up with the chain",
            r.skip_ahead
        );
        if r.sink_requeued {
            println!("every payment is queued for the Supabase sink");
        } else {
            println!("no Supabase sink configured: one configured later starts with a full resync");
        }
        for w in &r.warnings {
            eprintln!("WARNING: {w}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `snakkaz-pay export-mpk`.
pub fn export_mpk(cli: &super::Cli) -> anyhow::Result<ExitCode> {
    let cfg = super::load_config(cli)?;
    let last = last_revealed(&cfg)?;
    let e = mpk::export(&cfg, last, MPK_ADDRESSES)?;
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&e)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("network: {}", e.network);
    for k in &e.keys {
        println!("{} descriptor: {}", k.keychain, k.descriptor);
        println!("  checksum:   {}", k.checksum);
        println!("  origin:     {}", k.origin.as_deref().unwrap_or("-"));
        println!("  xpub:       {}", k.xpub.as_deref().unwrap_or("-"));
        println!("  SLIP-132:   {}", k.slip132.as_deref().unwrap_or("-"));
        println!("  derivation: {}", k.derivation.as_deref().unwrap_or("-"));
    }
    println!("first receive addresses:");
    for (i, a) in e.first_addresses.iter().enumerate() {
        println!("  {i}: {a}");
    }
    println!(
        "last revealed receive index: {}",
        e.last_revealed_index
            .map_or("none".into(), |i| i.to_string())
    );
    Ok(ExitCode::SUCCESS)
}

/// From the database when the daemon is stopped, else from the daemon's status.
fn last_revealed(cfg: &Config) -> anyhow::Result<Option<u32>> {
    if !cfg.db_path.exists() {
        return Ok(None);
    }
    match Store::open(&cfg.db_path) {
        Ok(store) => Ok(crate::backup::facts(&store)
            .map(|f| f.last_revealed_index)
            .unwrap_or(None)),
        Err(StoreError::Locked { .. }) => {
            let client = super::daemon_client(cfg)?;
            let (_, s) =
                super::runtime()?.block_on(client.call(Method::GET, "/api/status", None))?;
            Ok(s["wallet"]["addresses_in_use"]
                .as_u64()
                .and_then(|n| n.checked_sub(1))
                .map(|n| n as u32))
        }
        Err(e) => Err(e).with_context(|| format!("opening {}", cfg.db_path.display())),
    }
}
