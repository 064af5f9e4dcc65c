//! The backup keys: where backups go, who can read them, how many are kept, off-site copy,
//! verification age and the restore skip-ahead.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use super::source::{Layers, Raw};
use super::{ConfigError, keys, parse_in, parse_path};

/// Directory of the encrypted backups.
pub const DEFAULT_BACKUP_DIR: &str = "/var/lib/snakkaz-pay/backups";
/// Daily backups kept (the newest of each of the last N days with a backup).
pub const DEFAULT_KEEP_DAILY: u64 = 7;
/// Allowed `SNAKKAZ_PAY_BACKUP_KEEP_DAILY`.
pub const KEEP_DAILY_RANGE: (u64, u64) = (1, 3_650);
/// Weekly backups kept (the newest of each of the last M weeks with a backup).
pub const DEFAULT_KEEP_WEEKLY: u64 = 4;
/// Allowed `SNAKKAZ_PAY_BACKUP_KEEP_WEEKLY`.
pub const KEEP_WEEKLY_RANGE: (u64, u64) = (0, 520);
/// A last verification older than this (or failed) raises the backup alert: 8 days.
pub const DEFAULT_VERIFY_MAX_AGE_SECS: u64 = 8 * 86_400;
/// Allowed `SNAKKAZ_PAY_BACKUP_VERIFY_MAX_AGE_SECS` (1 hour to 90 days).
pub const VERIFY_MAX_AGE_RANGE_SECS: (u64, u64) = (3_600, 90 * 86_400);
/// Addresses skipped past the backup's last revealed one after a restore.
pub const DEFAULT_RESTORE_SKIP_AHEAD: u64 = 1_000;
/// Allowed `SNAKKAZ_PAY_RESTORE_SKIP_AHEAD`.
pub const RESTORE_SKIP_AHEAD_RANGE: (u64, u64) = (0, 1_000_000);

/// Backup settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupConfig {
    /// Directory of the encrypted backups and their manifests.
    pub dir: PathBuf,
    /// age X25519 public keys (`age1…`) the backups are encrypted to.
    pub recipients: Vec<String>,
    /// File holding a passphrase to encrypt with instead (scrypt), for those who want one.
    pub passphrase_file: Option<PathBuf>,
    /// age identity file for `verify-backup` and `restore` (keep it off the box).
    pub identity_file: Option<PathBuf>,
    /// Daily backups kept.
    pub keep_daily: u32,
    /// Weekly backups kept.
    pub keep_weekly: u32,
    /// rclone remote path (`remote:path`) new backups are copied to.
    pub remote: Option<String>,
    /// rclone configuration file.
    pub rclone_config: Option<PathBuf>,
    /// Age after which the last verification counts as stale.
    pub verify_max_age: Duration,
    /// Addresses skipped after a restore.
    pub restore_skip_ahead: u32,
}

impl Default for BackupConfig {
    fn default() -> Self {
        BackupConfig {
            dir: PathBuf::from(DEFAULT_BACKUP_DIR),
            recipients: Vec::new(),
            passphrase_file: None,
            identity_file: None,
            keep_daily: DEFAULT_KEEP_DAILY as u32,
            keep_weekly: DEFAULT_KEEP_WEEKLY as u32,
            remote: None,
            rclone_config: None,
            verify_max_age: Duration::from_secs(DEFAULT_VERIFY_MAX_AGE_SECS),
            restore_skip_ahead: DEFAULT_RESTORE_SKIP_AHEAD as u32,
        }
    }
}

/// Reads and checks the backup keys.
pub(super) fn build(layers: &Layers<'_>) -> Result<BackupConfig, ConfigError> {
    let d = BackupConfig::default();
    let recipients = match layers.get_list(keys::BACKUP_RECIPIENTS)? {
        None => Vec::new(),
        Some(list) => {
            for item in &list.items {
                check_recipient(item).map_err(|p| list.raw.invalid(p))?;
            }
            list.items
        }
    };
    let num = |key, range, unit, default: u64| -> Result<u64, ConfigError> {
        Ok(layers
            .parse(key, |r| parse_in(r, range, unit))?
            .unwrap_or(default))
    };
    Ok(BackupConfig {
        dir: layers.parse(keys::BACKUP_DIR, parse_path)?.unwrap_or(d.dir),
        recipients,
        passphrase_file: layers.parse(keys::BACKUP_PASSPHRASE_FILE, parse_path)?,
        identity_file: layers.parse(keys::BACKUP_IDENTITY_FILE, parse_path)?,
        keep_daily: num(
            keys::BACKUP_KEEP_DAILY,
            KEEP_DAILY_RANGE,
            "",
            DEFAULT_KEEP_DAILY,
        )? as u32,
        keep_weekly: num(
            keys::BACKUP_KEEP_WEEKLY,
            KEEP_WEEKLY_RANGE,
            "",
            DEFAULT_KEEP_WEEKLY,
        )? as u32,
        remote: layers.parse(keys::BACKUP_REMOTE, parse_remote)?,
        rclone_config: layers.parse(keys::BACKUP_RCLONE_CONFIG, parse_path)?,
        verify_max_age: Duration::from_secs(num(
            keys::BACKUP_VERIFY_MAX_AGE_SECS,
            VERIFY_MAX_AGE_RANGE_SECS,
            " s",
            DEFAULT_VERIFY_MAX_AGE_SECS,
        )?),
        restore_skip_ahead: num(
            keys::RESTORE_SKIP_AHEAD,
            RESTORE_SKIP_AHEAD_RANGE,
            "",
            DEFAULT_RESTORE_SKIP_AHEAD,
        )? as u32,
    })
}

/// An age X25519 public key; anything else (a secret key above all) is refused.
fn check_recipient(item: &str) -> Result<(), String> {
    if item.to_ascii_uppercase().starts_with("AGE-SECRET-KEY-") {
        return Err(
            "an age SECRET key was given; give the public key (age1…, from `age-keygen -y`) and keep the identity off this box".into(),
        );
    }
    age::x25519::Recipient::from_str(item)
        .map(drop)
        .map_err(|e| format!("{item:?} is not an age X25519 public key (age1…): {e}"))
}

/// An rclone remote path: `name:path` (or an absolute local path for a mounted disk).
fn parse_remote(raw: &Raw) -> Result<String, ConfigError> {
    let t = raw.text.trim();
    let ok = t.starts_with('/') || t.split_once(':').is_some_and(|(name, _)| !name.is_empty());
    if !ok || t.starts_with('-') {
        return Err(raw.invalid(format!(
            "{t:?} is not an rclone remote path (remote:path, e.g. offsite:snakkaz-pay)"
        )));
    }
    Ok(t.to_owned())
}
