//! The spending keys: the cold-storage destination (configuration only, never the API)
//! and the TOTP secret file that confirms every broadcast.

use std::path::PathBuf;
use std::str::FromStr;

use bdk_wallet::bitcoin::{Address, Network};
use bdk_wallet::descriptor::{Descriptor, DescriptorPublicKey};

use super::source::Layers;
use super::{ConfigError, keys, parse_path};

/// File name of the TOTP secret, beside the database unless configured.
pub const DEFAULT_TOTP_SECRET_NAME: &str = "totp.secret";

/// Where transfers may go: the cold-storage addresses, the first being the one paid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColdStorage {
    /// Addresses in the configured order (a descriptor gives its first address).
    pub addresses: Vec<Address>,
}

/// `SNAKKAZ_PAY_COLD_STORAGE`: addresses, or one public descriptor (its address 0).
pub(super) fn cold_storage(
    layers: &Layers<'_>,
    network: Network,
) -> Result<Option<ColdStorage>, ConfigError> {
    let Some(list) = layers.get_list(keys::COLD_STORAGE)? else {
        return Ok(None);
    };
    let mut addresses: Vec<Address> = Vec::with_capacity(list.items.len());
    for item in &list.items {
        let a = parse_destination(item, network).map_err(|p| list.raw.invalid(p))?;
        if !addresses.contains(&a) {
            addresses.push(a);
        }
    }
    Ok((!addresses.is_empty()).then_some(ColdStorage { addresses }))
}

/// One destination: an address of `network`, or a public descriptor's first address.
pub fn parse_destination(item: &str, network: Network) -> Result<Address, String> {
    if item.contains('(') {
        if item.contains("prv") {
            return Err(format!(
                "{item:?}: holds a private key; give the cold wallet's public descriptor or addresses"
            ));
        }
        let d = Descriptor::<DescriptorPublicKey>::from_str(item)
            .map_err(|e| format!("{item:?}: not a descriptor: {e}"))?;
        let d = d
            .at_derivation_index(0)
            .map_err(|e| format!("{item:?}: {e}"))?;
        return d
            .address(network)
            .map_err(|e| format!("{item:?}: has no address: {e}"));
    }
    let a = Address::from_str(item)
        .map_err(|e| format!("{item:?}: not a Bitcoin address or descriptor: {e}"))?;
    a.require_network(network)
        .map_err(|_| format!("{item:?}: is not an address of the {network} network"))
}

/// `SNAKKAZ_PAY_TOTP_SECRET_FILE`, defaulting to `totp.secret` beside the database.
pub(super) fn totp_secret_file(
    layers: &Layers<'_>,
    db_path: &std::path::Path,
) -> Result<PathBuf, ConfigError> {
    Ok(layers
        .parse(keys::TOTP_SECRET_FILE, parse_path)?
        .unwrap_or_else(|| db_path.with_file_name(DEFAULT_TOTP_SECRET_NAME)))
}

/// Hot mode: the appliance may sign transfers to cold storage and CPFP children itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HotMode {
    /// The encrypted seed file (written by `snakkaz-pay hot import`, mode 0600).
    pub seed_file: PathBuf,
    /// A file holding its password; `None`: the systemd credential, else the environment.
    pub password_file: Option<PathBuf>,
}

/// `SNAKKAZ_PAY_HOT_SEED_FILE` (hot mode on when set) and `SNAKKAZ_PAY_HOT_PASSWORD_FILE`.
pub(super) fn hot_mode(layers: &Layers<'_>) -> Result<Option<HotMode>, ConfigError> {
    let seed_file = layers.parse(keys::HOT_SEED_FILE, parse_path)?;
    let password_file = layers.parse(keys::HOT_PASSWORD_FILE, parse_path)?;
    match seed_file {
        Some(seed_file) => Ok(Some(HotMode {
            seed_file,
            password_file,
        })),
        // A password without a seed file is a half-done set-up, not watch-only by intent.
        None if password_file.is_some() => Err(ConfigError::Missing {
            key: keys::HOT_SEED_FILE,
            hint: "SNAKKAZ_PAY_HOT_PASSWORD_FILE is set: set the seed file too (hot mode), or remove the password file (watch-only)",
        }),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_are_checked_against_the_network() {
        let a = parse_destination(
            "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080",
            Network::Regtest,
        )
        .unwrap();
        assert_eq!(
            a.to_string(),
            "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
        );
        let e = parse_destination(
            "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4",
            Network::Regtest,
        )
        .unwrap_err();
        assert!(e.contains("regtest"), "{e}");
        assert!(parse_destination("nonsense", Network::Regtest).is_err());
    }

    #[test]
    fn a_descriptor_gives_its_first_address_and_private_keys_are_refused() {
        let d = "wpkh([41f2aed0/84h/1h/0h]tpubDDFSdQWw75hk1ewbwnNpPp5DvXFRKt68ioPoyJDY752cNHKkFxPWqkqCyCf4hxrEfpuxh46QisehL3m8Bi6MsAv394QVLopwbtfvryFQNUH/0/*)";
        let a = parse_destination(d, Network::Regtest).unwrap();
        assert!(a.to_string().starts_with("bcrt1q"));
        let e = parse_destination("wpkh(tprv8ZgxMBicQKsPd9TeAdPADNnSyH9SSUUbTVeFszDE23Ki6TBB5nCefAdHkK8Fm3qMQR6sHwA56zqRmKmxnHk37JkiFzvncDqoKmPWubu7hDF/0/*)", Network::Regtest).unwrap_err();
        assert!(e.contains("private key"), "{e}");
    }
}
