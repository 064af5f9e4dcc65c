//! Backup file names and the plaintext manifest beside each backup (no secrets in it).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Version of the manifest format.
pub const FORMAT_VERSION: u32 = 1;
/// Start of every backup file name.
pub const PREFIX: &str = "snakkaz-pay-";
/// End of an encrypted backup's name.
pub const SUFFIX: &str = ".redb.age";
/// End of a manifest's name.
pub const MANIFEST_SUFFIX: &str = ".manifest.json";

/// What a backup holds, readable without the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// RFC 3339 UTC time of the snapshot.
    pub created_at: String,
    /// Unix milliseconds of the snapshot.
    pub created_at_unix_ms: u64,
    /// snakkaz-pay version that wrote it.
    pub app_version: String,
    /// Database layout version inside.
    pub schema_version: u64,
    /// Bitcoin network of the wallet inside.
    pub network: String,
    /// Checksum of the receive descriptor (identifies the wallet without its keys).
    pub descriptor_checksum: String,
    /// Checksum of the change descriptor.
    pub change_descriptor_checksum: Option<String>,
    /// Payments inside.
    pub payment_count: u64,
    /// Wallet tip height inside.
    pub tip_height: Option<u32>,
    /// Last receive index revealed inside.
    pub last_revealed_index: Option<u32>,
    /// `age-x25519` (to recipients) or `age-scrypt` (passphrase).
    pub encryption: String,
    /// Name of the encrypted file.
    pub encrypted_file: String,
    /// Its size in bytes.
    pub encrypted_bytes: u64,
    /// Hex SHA-256 of the encrypted file.
    pub sha256: String,
}

/// The compact UTC time used in names: `20261127T040500.123Z`.
pub fn compact_time(unix_ms: u64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(unix_ms);
    humantime::format_rfc3339_millis(t)
        .to_string()
        .replace(['-', ':'], "")
}

/// RFC 3339 UTC time with milliseconds.
pub fn rfc3339(unix_ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(unix_ms)).to_string()
}

fn parse_compact_time(s: &str) -> Option<u64> {
    // 20261127T040500.123Z → 2026-11-27T04:05:00.123Z
    let b = s.as_bytes();
    if b.len() < 16 || b[8] != b'T' {
        return None;
    }
    let full = format!(
        "{}-{}-{}T{}:{}:{}",
        &s[0..4],
        &s[4..6],
        &s[6..8],
        &s[9..11],
        &s[11..13],
        &s[13..]
    );
    let t = humantime::parse_rfc3339(&full).ok()?;
    Some(t.duration_since(UNIX_EPOCH).ok()?.as_millis() as u64)
}

/// `snakkaz-pay-<network>-<UTC time>-<descriptor checksum>.redb.age`.
pub fn backup_name(network: &str, unix_ms: u64, checksum: &str) -> String {
    format!(
        "{PREFIX}{network}-{}-{checksum}{SUFFIX}",
        compact_time(unix_ms)
    )
}

/// The manifest's name beside a backup.
pub fn manifest_name(backup: &str) -> String {
    format!(
        "{}{MANIFEST_SUFFIX}",
        backup.strip_suffix(SUFFIX).unwrap_or(backup)
    )
}

/// A backup's name taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedName {
    /// Network.
    pub network: String,
    /// Unix milliseconds.
    pub unix_ms: u64,
    /// Descriptor checksum.
    pub checksum: String,
}

/// Parses a name made by [`backup_name`]; `None` for any other file.
pub fn parse_backup_name(name: &str) -> Option<ParsedName> {
    let core = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    let (rest, checksum) = core.rsplit_once('-')?;
    let (network, time) = rest.split_once('-')?;
    if network.is_empty() || checksum.is_empty() {
        return None;
    }
    Some(ParsedName {
        network: network.to_owned(),
        unix_ms: parse_compact_time(time)?,
        checksum: checksum.to_owned(),
    })
}

/// The checksum after `#` of a descriptor string.
pub fn checksum_of(descriptor: &str) -> String {
    descriptor
        .rsplit_once('#')
        .map_or_else(String::new, |(_, c)| c.to_owned())
}

/// Now in Unix milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let ms = 1_795_752_300_123; // 2026-11-27T04:05:00.123Z
        let name = backup_name("regtest", ms, "abcd1234");
        assert_eq!(
            name,
            "snakkaz-pay-regtest-20261127T040500.123Z-abcd1234.redb.age"
        );
        assert_eq!(
            parse_backup_name(&name),
            Some(ParsedName {
                network: "regtest".into(),
                unix_ms: ms,
                checksum: "abcd1234".into()
            })
        );
        assert_eq!(
            manifest_name(&name),
            "snakkaz-pay-regtest-20261127T040500.123Z-abcd1234.manifest.json"
        );
    }

    #[test]
    fn other_files_are_not_backups() {
        for n in [
            "snakkaz-pay.redb",
            "snakkaz-pay-regtest-x-abcd.redb.age",
            "snakkaz-pay-regtest-20261127T040500.123Z-abcd1234.manifest.json",
            ".snakkaz-pay-regtest-20261127T040500.123Z-abcd1234.redb.age.tmp",
        ] {
            assert_eq!(parse_backup_name(n), None, "{n}");
        }
    }

    #[test]
    fn checksum_is_what_follows_the_hash() {
        assert_eq!(checksum_of("wpkh(tpub/0/*)#q0lkqlq8"), "q0lkqlq8");
        assert_eq!(checksum_of("wpkh(tpub/0/*)"), "");
    }
}
