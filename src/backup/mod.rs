//! Backups: snapshot, age encryption, manifest, retention, off-site copy (rclone),
//! verification, restore and the master-public-key export.
//!
//! The snapshot itself comes from `store` (one read transaction); this module never
//! opens redb. Functions here run on behalf of CLI commands; the daemon only takes the
//! snapshot (admin API) and shows the last verification.

pub mod crypt;
pub mod manifest;
pub mod mpk;
pub mod offsite;
pub mod restore;
pub mod retention;
pub mod status;
pub mod take;
pub mod verify;

use anyhow::Context as _;
use bdk_wallet::bitcoin::Network;
use bdk_wallet::{KeychainKind, Wallet};

use crate::store::Store;

/// What a snapshot holds, read from the snapshot itself.
#[derive(Debug, Clone)]
pub struct Facts {
    /// Database layout version.
    pub schema_version: u64,
    /// Network of the wallet.
    pub network: Network,
    /// Receive descriptor (public).
    pub descriptor: String,
    /// Change descriptor (public).
    pub change_descriptor: Option<String>,
    /// Payments stored.
    pub payment_count: u64,
    /// Wallet tip height.
    pub tip_height: u32,
    /// Last receive index revealed.
    pub last_revealed_index: Option<u32>,
}

/// The wallet stored in `store`, loaded without checking it against any configuration.
pub fn stored_wallet(store: &Store) -> anyhow::Result<Wallet> {
    let cs = store.wallet_changeset()?;
    Wallet::load()
        .load_wallet_no_persist(cs)
        .map_err(|e| anyhow::anyhow!("the stored wallet cannot be loaded: {e}"))?
        .context("the database holds no wallet (was `snakkaz-pay run` ever started on it?)")
}

/// Reads the facts of a (snapshot) store.
pub fn facts(store: &Store) -> anyhow::Result<Facts> {
    let w = stored_wallet(store)?;
    Ok(Facts {
        schema_version: store.schema_version()?,
        network: w.network(),
        descriptor: w.public_descriptor(KeychainKind::External).to_string(),
        change_descriptor: w
            .keychains()
            .any(|(k, _)| k == KeychainKind::Internal)
            .then(|| w.public_descriptor(KeychainKind::Internal).to_string()),
        payment_count: store.payment_count()?,
        tip_height: w.latest_checkpoint().height(),
        last_revealed_index: w.derivation_index(KeychainKind::External),
    })
}
