//! BDK's `WalletPersister` over the store, so BDK's own persistence tests can check it.
//!
//! The daemon itself persists wallet changesets inside its payment write batches; this
//! impl uses the same table and merge order, one batch per call.

use bdk_wallet::{ChangeSet, WalletPersister};

use super::{Store, StoreError, WriteBatch};

impl WalletPersister for Store {
    type Error = StoreError;

    fn initialize(persister: &mut Self) -> Result<ChangeSet, Self::Error> {
        persister.wallet_changeset()
    }

    fn persist(persister: &mut Self, changeset: &ChangeSet) -> Result<(), Self::Error> {
        persister
            .commit_blocking(WriteBatch {
                wallet: Some(changeset.clone()),
                ..Default::default()
            })
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use bdk_wallet::persist_test_utils::*;

    use super::Store;

    fn create(path: &std::path::Path) -> anyhow::Result<Store> {
        Ok(Store::open(path)?)
    }

    #[test]
    fn bdk_persists_wallet_changeset() {
        persist_wallet_changeset("wallet.redb", create);
    }

    // BDK's `persist_multiple_wallet_changesets` keeps two wallets in one file; a
    // snakkaz-pay database holds exactly one wallet by design, so that case does not apply.

    #[test]
    fn bdk_persists_network() {
        persist_network("wallet.redb", create);
    }

    #[test]
    fn bdk_persists_keychains() {
        persist_keychains("wallet.redb", create);
    }

    #[test]
    fn bdk_persists_single_keychain() {
        persist_single_keychain("wallet.redb", create);
    }
}
