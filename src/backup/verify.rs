//! `snakkaz-pay verify-backup`: decrypt into a private temporary directory, check the
//! snapshot's integrity and schema, rebuild the wallet, derive addresses, and compare
//! everything with the running configuration and the manifest.

use std::path::{Path, PathBuf};

use bdk_wallet::{KeychainKind, Wallet};
use serde::Serialize;

use super::crypt::{DecryptOutcome, DecryptProblem, Identities, decrypt_file};
use super::manifest::{self, Manifest};
use crate::config::Config;
use crate::store::{SCHEMA_VERSION_SUPPORTED, Store, StoreError};

/// Receive addresses derived and compared.
pub const FIRST_ADDRESSES: u32 = 3;

/// Why a backup failed verification; `code()` is the stable name for programs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// No manifest beside the backup.
    #[error(
        "no manifest beside the backup ({0}); a backup is the .redb.age file and its .manifest.json"
    )]
    MissingManifest(String),
    /// The file is shorter than the manifest says.
    #[error(
        "truncated: the file has {found} bytes, its manifest says {expected}; copy it again from the off-site store"
    )]
    Truncated {
        /// Bytes on disk.
        found: u64,
        /// Bytes in the manifest.
        expected: u64,
    },
    /// The file's checksum differs from the manifest's.
    #[error(
        "altered: SHA-256 {found} differs from the manifest's {expected}; copy it again from the off-site store"
    )]
    Altered {
        /// Checksum of the file.
        found: String,
        /// Checksum in the manifest.
        expected: String,
    },
    /// Decryption failed.
    #[error("{0}")]
    Decrypt(DecryptProblem),
    /// The decrypted snapshot is damaged.
    #[error("corrupt snapshot: {0}")]
    Corrupt(String),
    /// The decrypted file is not a snakkaz-pay database.
    #[error("foreign file: the decrypted data is not a snakkaz-pay database")]
    Foreign,
    /// Written by a newer snakkaz-pay.
    #[error(
        "schema version {found} is newer than this binary's {supported}; upgrade snakkaz-pay first"
    )]
    SchemaTooNew {
        /// In the backup.
        found: u64,
        /// Supported here.
        supported: u64,
    },
    /// Another network than configured.
    #[error(
        "other network: the backup is of {backup}, this appliance is configured for {configured}"
    )]
    OtherNetwork {
        /// In the backup.
        backup: String,
        /// Configured.
        configured: String,
    },
    /// Another wallet than configured.
    #[error(
        "other descriptor: the backup's {keychain} descriptor has checksum {backup}, the configured one {configured}"
    )]
    OtherDescriptor {
        /// receive or change.
        keychain: &'static str,
        /// Checksum in the backup.
        backup: String,
        /// Checksum configured.
        configured: String,
    },
    /// The snapshot disagrees with its manifest.
    #[error("manifest mismatch: {field} is {inside} in the backup but {manifest} in its manifest")]
    ManifestMismatch {
        /// Which fact.
        field: &'static str,
        /// Value in the snapshot.
        inside: String,
        /// Value in the manifest.
        manifest: String,
    },
    /// The rebuilt wallet derives other addresses than the configuration.
    #[error("address mismatch at index {index}: backup {backup}, configuration {configured}")]
    AddressMismatch {
        /// Receive index.
        index: u32,
        /// Derived from the backup.
        backup: String,
        /// Derived from the configuration.
        configured: String,
    },
    /// This machine failed (temporary directory, disk), not the backup.
    #[error("local error: {0}")]
    Local(String),
}

impl Failure {
    /// Stable short name of the failure.
    pub fn code(&self) -> &'static str {
        match self {
            Failure::MissingManifest(_) => "missing_manifest",
            Failure::Truncated { .. } => "truncated",
            Failure::Altered { .. } => "altered",
            Failure::Decrypt(DecryptProblem::OtherKey) => "other_key",
            Failure::Decrypt(DecryptProblem::Truncated(_)) => "truncated",
            Failure::Decrypt(DecryptProblem::NotAge(_)) => "not_age",
            Failure::Decrypt(DecryptProblem::Passphrase(_)) => "wrong_passphrase",
            Failure::Corrupt(_) => "corrupt",
            Failure::Foreign => "foreign",
            Failure::SchemaTooNew { .. } => "schema_too_new",
            Failure::OtherNetwork { .. } => "other_network",
            Failure::OtherDescriptor { .. } => "other_descriptor",
            Failure::ManifestMismatch { .. } => "manifest_mismatch",
            Failure::AddressMismatch { .. } => "address_mismatch",
            Failure::Local(_) => "local_error",
        }
    }
}

/// What a successful verification found.
#[derive(Debug, Clone, Serialize)]
pub struct Verified {
    /// The backup file.
    pub file: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
    /// The first receive addresses derived from the restored wallet.
    pub first_addresses: Vec<String>,
    /// The next receive address the restored wallet would hand out.
    pub next_unused_address: String,
    /// Its index.
    pub next_unused_index: u32,
    /// Payments in the backup.
    pub payment_count: u64,
    /// Wallet tip in the backup.
    pub tip_height: u32,
}

fn local(e: impl std::fmt::Display) -> Failure {
    Failure::Local(e.to_string())
}

/// Reads the manifest beside `file`.
pub fn read_manifest(file: &Path) -> Result<Manifest, Failure> {
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Failure::MissingManifest(file.display().to_string()))?;
    let path = file.with_file_name(manifest::manifest_name(name));
    let text = std::fs::read(&path)
        .map_err(|e| Failure::MissingManifest(format!("{}: {e}", path.display())))?;
    serde_json::from_slice(&text)
        .map_err(|e| Failure::MissingManifest(format!("{} is not a manifest: {e}", path.display())))
}

/// Decrypts `file` into `dest` after checking its size and checksum against the manifest.
pub fn decrypt_checked(
    file: &Path,
    m: &Manifest,
    ids: &Identities,
    dest: &Path,
) -> Result<(), Failure> {
    let (len, sha) = super::take::sha256_file(file).map_err(local)?;
    if len < m.encrypted_bytes {
        return Err(Failure::Truncated {
            found: len,
            expected: m.encrypted_bytes,
        });
    }
    if sha != m.sha256 {
        return Err(Failure::Altered {
            found: sha,
            expected: m.sha256.clone(),
        });
    }
    decrypt_file(file, dest, ids).map_err(|e| match e {
        DecryptOutcome::Problem(p) => Failure::Decrypt(p),
        DecryptOutcome::Io(e) => local(e),
    })
}

/// Opens a decrypted snapshot: integrity, then schema and origin.
pub fn open_snapshot(path: &Path) -> Result<Store, Failure> {
    crate::store::check_snapshot(path).map_err(|e| match e {
        StoreError::Foreign { .. } => Failure::Foreign,
        other => Failure::Corrupt(other.to_string()),
    })?;
    Store::open_file(path).map_err(|e| match e {
        StoreError::Foreign { .. } => Failure::Foreign,
        StoreError::TooNew {
            found, supported, ..
        } => Failure::SchemaTooNew { found, supported },
        other => Failure::Corrupt(other.to_string()),
    })
}

/// A wallet made from the configuration alone, to compare with.
pub fn configured_wallet(cfg: &Config) -> Result<Wallet, Failure> {
    let created = match &cfg.change_descriptor {
        Some(change) => Wallet::create(cfg.descriptor.clone(), change.clone())
            .network(cfg.network)
            .create_wallet_no_persist(),
        None => Wallet::create_single(cfg.descriptor.clone())
            .network(cfg.network)
            .create_wallet_no_persist(),
    };
    created.map_err(|e| local(format!("the configured descriptor is unusable: {e}")))
}

/// Compares a snapshot's network and descriptors with the configuration.
pub fn check_identity(facts: &super::Facts, cfg: &Config) -> Result<(), Failure> {
    if facts.network != cfg.network {
        return Err(Failure::OtherNetwork {
            backup: facts.network.to_string(),
            configured: cfg.network.to_string(),
        });
    }
    let conf = configured_wallet(cfg)?;
    let configured = conf.public_descriptor(KeychainKind::External).to_string();
    if manifest::checksum_of(&configured) != manifest::checksum_of(&facts.descriptor) {
        return Err(Failure::OtherDescriptor {
            keychain: "receive",
            backup: manifest::checksum_of(&facts.descriptor),
            configured: manifest::checksum_of(&configured),
        });
    }
    let conf_change = cfg
        .change_descriptor
        .as_ref()
        .map(|_| conf.public_descriptor(KeychainKind::Internal).to_string());
    let sum = |d: &Option<String>| d.as_deref().map(manifest::checksum_of);
    if sum(&conf_change) != sum(&facts.change_descriptor) {
        return Err(Failure::OtherDescriptor {
            keychain: "change",
            backup: sum(&facts.change_descriptor).unwrap_or_else(|| "none".into()),
            configured: sum(&conf_change).unwrap_or_else(|| "none".into()),
        });
    }
    Ok(())
}

fn compare<T: PartialEq + ToString>(
    field: &'static str,
    inside: T,
    in_manifest: T,
) -> Result<(), Failure> {
    if inside == in_manifest {
        Ok(())
    } else {
        Err(Failure::ManifestMismatch {
            field,
            inside: inside.to_string(),
            manifest: in_manifest.to_string(),
        })
    }
}

/// Verifies one backup against the configuration and its manifest.
pub fn verify(cfg: &Config, file: &Path, ids: &Identities) -> Result<Verified, Failure> {
    let m = read_manifest(file)?;
    let tmp = tempfile::Builder::new()
        .prefix("snakkaz-pay-verify-")
        .tempdir()
        .map_err(local)?;
    let snap = tmp.path().join("snapshot.redb");
    decrypt_checked(file, &m, ids, &snap)?;
    let store = open_snapshot(&snap)?;
    let facts = super::facts(&store).map_err(|e| Failure::Corrupt(format!("{e:#}")))?;
    if facts.schema_version > SCHEMA_VERSION_SUPPORTED {
        return Err(Failure::SchemaTooNew {
            found: facts.schema_version,
            supported: SCHEMA_VERSION_SUPPORTED,
        });
    }
    check_identity(&facts, cfg)?;
    compare("network", facts.network.to_string(), m.network.clone())?;
    compare(
        "descriptor checksum",
        manifest::checksum_of(&facts.descriptor),
        m.descriptor_checksum.clone(),
    )?;
    compare("schema version", facts.schema_version, m.schema_version)?;
    compare("payment count", facts.payment_count, m.payment_count)?;
    compare(
        "tip height",
        facts.tip_height.to_string(),
        m.tip_height
            .map_or_else(|| "none".into(), |t| t.to_string()),
    )?;

    // Rebuild the wallet as the daemon would (with the configured descriptors checked)
    // and derive addresses from it and from the configuration alone.
    let wallet = crate::wallet::load_or_create(&store, &crate::wallet::WalletParams::of(cfg))
        .map_err(|e| Failure::Corrupt(format!("the wallet cannot be rebuilt: {e}")))?;
    let conf = configured_wallet(cfg)?;
    let mut first = Vec::new();
    for index in 0..FIRST_ADDRESSES {
        let backup = wallet.peek_address(KeychainKind::External, index).address;
        let configured = conf.peek_address(KeychainKind::External, index).address;
        if backup != configured {
            return Err(Failure::AddressMismatch {
                index,
                backup: backup.to_string(),
                configured: configured.to_string(),
            });
        }
        first.push(backup.to_string());
    }
    // Payment addresses are revealed and used at once: the next one is past the last revealed.
    let next = wallet.next_derivation_index(KeychainKind::External);
    let next_addr = wallet.peek_address(KeychainKind::External, next).address;
    drop(store);
    Ok(Verified {
        file: file.to_owned(),
        payment_count: facts.payment_count,
        tip_height: facts.tip_height,
        manifest: m,
        first_addresses: first,
        next_unused_address: next_addr.to_string(),
        next_unused_index: next,
    })
}

/// The newest backup in `dir` (any network).
pub fn latest(dir: &Path) -> anyhow::Result<PathBuf> {
    let mut all = super::take::list_backups(dir, None)?;
    all.sort_by_key(|(_, t)| *t);
    match all.pop() {
        Some((name, _)) => Ok(dir.join(name)),
        None => anyhow::bail!(
            "no backup in {} (run `snakkaz-pay backup`, or give the file)",
            dir.display()
        ),
    }
}
