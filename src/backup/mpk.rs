//! `snakkaz-pay export-mpk`: the wallet's master public keys in the forms wallets import.
//!
//! SLIP-132 keys (zpub/vpub for native segwit, ypub/upub for nested segwit) are the same
//! extended key with other version bytes; Electrum shows and imports them.

use std::str::FromStr;

use bdk_wallet::KeychainKind;
use bdk_wallet::bitcoin::Network;
use bdk_wallet::bitcoin::base58;
use bdk_wallet::miniscript::descriptor::{DescriptorPublicKey, DescriptorType};
use bdk_wallet::miniscript::{Descriptor, ForEachKey};
use serde::Serialize;

use crate::config::Config;

/// The script type a SLIP-132 version encodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptKind {
    /// P2PKH: xpub/tpub.
    Legacy,
    /// P2SH-P2WPKH: ypub/upub.
    NestedSegwit,
    /// P2WPKH: zpub/vpub.
    NativeSegwit,
}

/// A key that is not a base58check extended public key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an extended public key: {0}")]
pub struct Slip132Error(String);

fn version(kind: ScriptKind, mainnet: bool) -> [u8; 4] {
    match (kind, mainnet) {
        (ScriptKind::Legacy, true) => [0x04, 0x88, 0xb2, 0x1e],
        (ScriptKind::Legacy, false) => [0x04, 0x35, 0x87, 0xcf],
        (ScriptKind::NestedSegwit, true) => [0x04, 0x9d, 0x7c, 0xb2],
        (ScriptKind::NestedSegwit, false) => [0x04, 0x4a, 0x52, 0x62],
        (ScriptKind::NativeSegwit, true) => [0x04, 0xb2, 0x47, 0x46],
        (ScriptKind::NativeSegwit, false) => [0x04, 0x5f, 0x1c, 0xf6],
    }
}

/// Re-encodes an xpub/tpub with the SLIP-132 version of `kind`.
pub fn slip132(xpub: &str, kind: ScriptKind, mainnet: bool) -> Result<String, Slip132Error> {
    let mut data = base58::decode_check(xpub).map_err(|e| Slip132Error(e.to_string()))?;
    if data.len() != 78 {
        return Err(Slip132Error(format!("{} bytes, expected 78", data.len())));
    }
    data[..4].copy_from_slice(&version(kind, mainnet));
    Ok(base58::encode_check(&data))
}

/// One descriptor's public key material.
#[derive(Debug, Clone, Serialize)]
pub struct KeyExport {
    /// `receive` or `change`.
    pub keychain: &'static str,
    /// The descriptor with its checksum.
    pub descriptor: String,
    /// Its checksum.
    pub checksum: String,
    /// Key origin `[fingerprint/path]`, when the descriptor has one.
    pub origin: Option<String>,
    /// The account extended public key (xpub/tpub).
    pub xpub: Option<String>,
    /// The same key in SLIP-132 form (zpub/vpub, ypub/upub), when the script type has one.
    pub slip132: Option<String>,
    /// Derivation below the account key, e.g. `/0/*`.
    pub derivation: Option<String>,
}

/// Everything `export-mpk` prints.
#[derive(Debug, Clone, Serialize)]
pub struct MpkExport {
    /// Network.
    pub network: String,
    /// Receive and change keys.
    pub keys: Vec<KeyExport>,
    /// The first receive addresses.
    pub first_addresses: Vec<String>,
    /// Index of the last receive address revealed, when known.
    pub last_revealed_index: Option<u32>,
}

fn key_export(keychain: &'static str, desc: &str, network: Network) -> anyhow::Result<KeyExport> {
    let d = Descriptor::<DescriptorPublicKey>::from_str(desc)
        .map_err(|e| anyhow::anyhow!("the {keychain} descriptor does not parse: {e}"))?;
    let kind = match d.desc_type() {
        DescriptorType::Wpkh => Some(ScriptKind::NativeSegwit),
        DescriptorType::ShWpkh => Some(ScriptKind::NestedSegwit),
        DescriptorType::Pkh => Some(ScriptKind::Legacy),
        _ => None,
    };
    let mut xkey = None;
    d.for_each_key(|k| {
        if let DescriptorPublicKey::XPub(x) = k {
            xkey.get_or_insert_with(|| x.clone());
        }
        true
    });
    let full = d.to_string();
    let mainnet = network == Network::Bitcoin;
    let (origin, xpub, slip, derivation) = match xkey {
        Some(x) => {
            let origin = x.origin.as_ref().map(|(fp, path)| {
                let p = path.to_string();
                format!("[{fp}/{}]", p.trim_start_matches("m/"))
            });
            let xpub = x.xkey.to_string();
            let slip = kind
                .filter(|k| *k != ScriptKind::Legacy)
                .map(|k| slip132(&xpub, k, mainnet))
                .transpose()?;
            let wildcard = match x.wildcard {
                bdk_wallet::miniscript::descriptor::Wildcard::None => "",
                _ => "/*",
            };
            let path: String = x
                .derivation_path
                .into_iter()
                .map(|c| format!("/{c}"))
                .collect();
            (origin, Some(xpub), slip, Some(format!("{path}{wildcard}")))
        }
        None => (None, None, None, None),
    };
    Ok(KeyExport {
        keychain,
        checksum: super::manifest::checksum_of(&full),
        descriptor: full,
        origin,
        xpub,
        slip132: slip,
        derivation,
    })
}

/// The export for the configured wallet; `last_revealed_index` comes from the store or daemon.
pub fn export(
    cfg: &Config,
    last_revealed_index: Option<u32>,
    first: u32,
) -> anyhow::Result<MpkExport> {
    let mut keys = vec![key_export("receive", &cfg.descriptor, cfg.network)?];
    if let Some(c) = &cfg.change_descriptor {
        keys.push(key_export("change", c, cfg.network)?);
    }
    let wallet = super::verify::configured_wallet(cfg)?;
    let first_addresses = (0..first)
        .map(|i| {
            wallet
                .peek_address(KeychainKind::External, i)
                .address
                .to_string()
        })
        .collect();
    Ok(MpkExport {
        network: cfg.network.to_string(),
        keys,
        first_addresses,
        last_revealed_index,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// BIP-84's test vector: account 0 of "abandon … about".
    const BIP84_XPUB: &str = "xpub6CatWdiZiodmUeTDp8LT5or8nmbKNcuyvz7WyksVFkKB4RHwCD3XyuvPEbvqAQY3rAPshWcMLoP2fMFMKHPJ4ZeZXYVUhLv1VMrjPC7PW6V";
    const BIP84_ZPUB: &str = "zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3EfH1r1ADqtfSdVCToUG868RvUUkgDKf31mGDtKsAYz2oz2AGutZYs";

    #[test]
    fn bip84_vector_converts_to_zpub_and_back() {
        assert_eq!(
            slip132(BIP84_XPUB, ScriptKind::NativeSegwit, true).unwrap(),
            BIP84_ZPUB
        );
        assert_eq!(
            slip132(BIP84_ZPUB, ScriptKind::Legacy, true).unwrap(),
            BIP84_XPUB
        );
    }

    #[test]
    fn testnet_prefixes() {
        let tpub = slip132(BIP84_XPUB, ScriptKind::Legacy, false).unwrap();
        assert!(tpub.starts_with("tpub"), "{tpub}");
        assert!(
            slip132(&tpub, ScriptKind::NativeSegwit, false)
                .unwrap()
                .starts_with("vpub")
        );
        assert!(
            slip132(&tpub, ScriptKind::NestedSegwit, false)
                .unwrap()
                .starts_with("upub")
        );
        assert!(
            slip132(BIP84_XPUB, ScriptKind::NestedSegwit, true)
                .unwrap()
                .starts_with("ypub")
        );
    }

    #[test]
    fn garbage_is_refused() {
        assert!(slip132("xpubnotreally", ScriptKind::NativeSegwit, true).is_err());
    }

    #[test]
    fn export_reads_origin_and_derivation() {
        let desc = format!("wpkh([73c5da0a/84'/0'/0']{BIP84_XPUB}/0/*)");
        let k = key_export("receive", &desc, Network::Bitcoin).unwrap();
        assert_eq!(k.origin.as_deref(), Some("[73c5da0a/84'/0'/0']"));
        assert_eq!(k.xpub.as_deref(), Some(BIP84_XPUB));
        assert_eq!(k.slip132.as_deref(), Some(BIP84_ZPUB));
        assert_eq!(k.derivation.as_deref(), Some("/0/*"));
        assert_eq!(k.checksum.len(), 8);
    }
}
