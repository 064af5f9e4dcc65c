//! `import-electrum-wallet`: continue an Electrum wallet's account in snakkaz-pay without
//! handing out any address Electrum already gave to someone.
//!
//! Runs with the daemon stopped, on the database file (created like `run` creates it).

use std::collections::BTreeSet;
use std::str::FromStr;

use bdk_wallet::bitcoin::{Network, NetworkKind};
use bdk_wallet::miniscript::{Descriptor, DescriptorPublicKey};
use bdk_wallet::{KeychainKind, Wallet};
use serde::Serialize;

use super::wallet_file::{ElectrumWallet, Request, WalletFileError};
use crate::payments::{Flags, Payment, Status, lifecycle};
use crate::store::{AuditEntry, ImportOutcome, Store, StoreError, WriteBatch};
use crate::wallet::WalletError;

/// Why an import was refused. Nothing was written when one of these is returned before
/// the store step.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file cannot be read as an Electrum wallet.
    #[error("the wallet file {0}")]
    File(WalletFileError),
    /// The file's keys are for the other kind of network.
    #[error(
        "the wallet file is a {file} wallet but the configured network is {network}; set SNAKKAZ_PAY_NETWORK to the network Electrum ran on"
    )]
    Network {
        /// "mainnet" or "test-network".
        file: &'static str,
        /// The configured network.
        network: Network,
    },
    /// The file's key derives another address than the file lists: altered or damaged.
    #[error(
        "the wallet file lists {address} as {list} address {index}, but its master public key derives {derived}; the file is damaged or was edited: nothing was imported"
    )]
    FileMismatch {
        /// "receive" or "change".
        list: &'static str,
        /// Index in the list.
        index: u32,
        /// The listed address.
        address: String,
        /// The derived address.
        derived: String,
    },
    /// The configured descriptors are for another account.
    #[error(
        "the configured {keychain} descriptor derives {derived} at index {index}, but the wallet file has {address} there: the configuration is for another wallet; run `snakkaz-pay init --descriptor` with the key `electrum getmpk` prints for this wallet (nothing was imported)"
    )]
    DifferentAccount {
        /// "receive" or "change".
        keychain: &'static str,
        /// Index.
        index: u32,
        /// The file's address.
        address: String,
        /// What the configuration derives.
        derived: String,
    },
    /// A descriptor cannot derive an address at some index.
    #[error("the {what} descriptor cannot derive address {index}: {reason}")]
    Derive {
        /// Which descriptor.
        what: &'static str,
        /// Index.
        index: u32,
        /// Why.
        reason: String,
    },
    /// Opening or creating the wallet in the database failed.
    #[error(transparent)]
    Wallet(#[from] WalletError),
    /// Writing the database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

// Not `#[from]`: that would also make it the `source()`, and the CLI's `{:#}` would print
// the message twice.
impl From<WalletFileError> for ImportError {
    fn from(e: WalletFileError) -> Self {
        ImportError::File(e)
    }
}

/// One Electrum request and what became of it.
#[derive(Debug, Clone, Serialize)]
pub struct RequestResult {
    /// Electrum's request id.
    pub request_id: String,
    /// Its address.
    pub address: String,
    /// Amount in satoshis.
    pub amount_sat: u64,
    /// The snakkaz-pay payment id, when imported.
    pub payment_id: Option<String>,
    /// Why it was not imported.
    pub skipped: Option<String>,
}

/// What an import did.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    /// The file was storage-encrypted.
    pub encrypted: bool,
    /// The file held private keys, which were not read (imported watch-only).
    pub had_private_keys: bool,
    /// Electrum's script type name.
    pub script_type: &'static str,
    /// Receive descriptor built from the file's keystore.
    pub file_descriptor: String,
    /// Change descriptor built from the file's keystore.
    pub file_change_descriptor: String,
    /// Receive addresses Electrum listed (all re-derived and checked).
    pub receive_addresses_listed: usize,
    /// Change addresses Electrum listed (all re-derived and checked).
    pub change_addresses_listed: usize,
    /// Listed addresses with transactions.
    pub addresses_with_history: usize,
    /// The first receive index snakkaz-pay will hand out.
    pub next_receive_index: u32,
    /// The first change index snakkaz-pay will use, when it has a change keychain.
    pub next_change_index: Option<u32>,
    /// Requests considered (`--with-requests`).
    pub requests: Vec<RequestResult>,
}

/// Checks the network, every listed address against the file's own key and the
/// configured descriptors against the file: the same account, same addresses.
pub fn verify(
    file: &ElectrumWallet,
    network: Network,
    receive: &str,
    change: Option<&str>,
) -> Result<(), ImportError> {
    let kind = file.account.network_kind();
    if kind != NetworkKind::from(network) {
        return Err(ImportError::Network {
            file: match kind {
                NetworkKind::Main => "mainnet",
                NetworkKind::Test => "test-network",
            },
            network,
        });
    }
    let (file_recv, file_change) = file.descriptors();
    let lists = [
        ("receive", &file.receiving, file_recv, Some(receive)),
        ("change", &file.change, file_change, change),
    ];
    for (name, list, own, configured) in lists {
        let own = parse_desc(&own, "wallet file's")?;
        let configured = configured
            .map(|c| parse_desc(c, "configured"))
            .transpose()?;
        for (index, address) in (0u32..).zip(list.iter()) {
            let derived = derive(&own, index, network, "wallet file's")?;
            if &derived != address {
                return Err(ImportError::FileMismatch {
                    list: name,
                    index,
                    address: address.clone(),
                    derived,
                });
            }
            if let Some(c) = &configured {
                let derived = derive(c, index, network, "configured")?;
                if &derived != address {
                    return Err(ImportError::DifferentAccount {
                        keychain: name,
                        index,
                        address: address.clone(),
                        derived,
                    });
                }
            }
        }
    }
    Ok(())
}

fn parse_desc(
    text: &str,
    what: &'static str,
) -> Result<Descriptor<DescriptorPublicKey>, ImportError> {
    Descriptor::<DescriptorPublicKey>::from_str(text).map_err(|e| ImportError::Derive {
        what,
        index: 0,
        reason: e.to_string(),
    })
}

fn derive(
    d: &Descriptor<DescriptorPublicKey>,
    index: u32,
    network: Network,
    what: &'static str,
) -> Result<String, ImportError> {
    let err = |reason: String| ImportError::Derive {
        what,
        index,
        reason,
    };
    let at = d
        .at_derivation_index(index)
        .map_err(|e| err(e.to_string()))?;
    at.address(network)
        .map(|a| a.to_string())
        .map_err(|e| err(e.to_string()))
}

/// Marks receive indices below `next_receive` (and change below `next_change`, when the
/// wallet has a change keychain) as handed out, persisting the wallet's changeset with
/// an audit entry. Idempotent: revealing is monotonic.
pub fn record_used(
    wallet: &mut Wallet,
    store: &Store,
    next_receive: u32,
    next_change: u32,
    audit: AuditEntry,
) -> Result<Option<u32>, StoreError> {
    if let Some(last) = next_receive.checked_sub(1) {
        let _revealed: Vec<_> = wallet
            .reveal_addresses_to(KeychainKind::External, last)
            .collect();
    }
    let has_change = wallet.keychains().any(|(k, _)| k == KeychainKind::Internal);
    if has_change && let Some(last) = next_change.checked_sub(1) {
        let _revealed: Vec<_> = wallet
            .reveal_addresses_to(KeychainKind::Internal, last)
            .collect();
    }
    store.commit_blocking(WriteBatch {
        wallet: wallet.take_staged(),
        audit: vec![audit],
        ..Default::default()
    })?;
    Ok(has_change.then(|| wallet.next_derivation_index(KeychainKind::Internal)))
}

/// Brings the open, unpaid requests over as pending payments at their own addresses.
///
/// `default_expiry_secs` applies to requests that never expire in Electrum.
pub fn import_requests(
    file: &ElectrumWallet,
    store: &Store,
    now: u64,
    default_expiry_secs: u64,
) -> Result<Vec<RequestResult>, ImportError> {
    let mut out = Vec::with_capacity(file.requests.len());
    for r in &file.requests {
        let mut result = RequestResult {
            request_id: r.id.clone(),
            address: r.address.clone(),
            amount_sat: r.amount_sat,
            payment_id: None,
            skipped: None,
        };
        match payment_for(file, r, now, default_expiry_secs) {
            Err(reason) => result.skipped = Some(reason.to_owned()),
            Ok(payment) => {
                let event = lifecycle::created_event(&payment);
                let id = payment.id.clone();
                match store.import_payment(payment, event)? {
                    ImportOutcome::Imported(_) => result.payment_id = Some(id),
                    ImportOutcome::AddressTaken(p) | ImportOutcome::ReferenceTaken(p) => {
                        result.payment_id = Some(p);
                        result.skipped = Some("already imported".to_owned());
                    }
                }
            }
        }
        out.push(result);
    }
    Ok(out)
}

/// The payment for an open request, or why there is none.
fn payment_for(
    file: &ElectrumWallet,
    r: &Request,
    now: u64,
    default_expiry_secs: u64,
) -> Result<Payment, &'static str> {
    let index = file
        .receiving
        .iter()
        .position(|a| a == &r.address)
        .ok_or("its address is not one of the wallet's receive addresses")?;
    if file.with_history.contains(&r.address) {
        return Err(
            "its address has transactions (paid or partly paid): settle it in Electrum's history",
        );
    }
    if r.expires_at().is_some_and(|e| e <= now) {
        return Err("expired in Electrum (its address stays retired)");
    }
    if r.amount_sat == 0 {
        return Err("it has no amount; snakkaz-pay payments need one");
    }
    let expires_at = r
        .expires_at()
        .unwrap_or_else(|| now.saturating_add(default_expiry_secs));
    Ok(Payment {
        id: new_payment_id(),
        seq: 0,
        reference: format!("electrum:{}", r.id),
        description: (!r.message.is_empty()).then(|| r.message.clone()),
        address: r.address.clone(),
        derivation_index: u32::try_from(index).map_err(|_| "its index is out of range")?,
        amount_sat: r.amount_sat,
        received_sat: 0,
        status: Status::Pending,
        confirmations: 0,
        txids: Vec::new(),
        flags: Flags::default(),
        created_at: r.created_at.min(now),
        updated_at: now,
        expires_at,
        first_seen_at: None,
        confirmed_at: None,
        covered_height: None,
        created_height: None,
        version: 1,
    })
}

fn new_payment_id() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("the OS random number generator works");
    format!("pay_{}", hex::encode(b))
}

/// Addresses of the file that have history, restricted to its lists (for the report).
pub fn used_listed(file: &ElectrumWallet) -> usize {
    let listed: BTreeSet<&String> = file.receiving.iter().chain(&file.change).collect();
    file.with_history
        .iter()
        .filter(|a| listed.contains(a))
        .count()
}
