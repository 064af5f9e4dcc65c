//! SLIP-132 extended keys (xpub/ypub/zpub, tpub/upub/vpub) as Electrum prints them, turned
//! into the receive and change descriptors of the same account.
//!
//! The version bytes of a SLIP-132 key say which script type the account uses; the key
//! material is a plain BIP-32 xpub. Errors never quote the key.

use std::fmt;
use std::str::FromStr;

use bdk_wallet::bitcoin::NetworkKind;
use bdk_wallet::bitcoin::base58;
use bdk_wallet::bitcoin::bip32::{DerivationPath, Fingerprint, Xpub};

/// The single-signature script an account key is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptKind {
    /// Legacy P2PKH (`xpub`/`tpub`): `pkh(...)`.
    P2pkh,
    /// Nested segwit P2SH-P2WPKH (`ypub`/`upub`): `sh(wpkh(...))`.
    P2shP2wpkh,
    /// Native segwit P2WPKH (`zpub`/`vpub`): `wpkh(...)`.
    P2wpkh,
}

impl ScriptKind {
    /// Electrum's name for the script type (`txin_type`).
    pub fn electrum_name(self) -> &'static str {
        match self {
            ScriptKind::P2pkh => "p2pkh",
            ScriptKind::P2shP2wpkh => "p2wpkh-p2sh",
            ScriptKind::P2wpkh => "p2wpkh",
        }
    }

    fn wrap(self, key: &str) -> String {
        match self {
            ScriptKind::P2pkh => format!("pkh({key})"),
            ScriptKind::P2shP2wpkh => format!("sh(wpkh({key}))"),
            ScriptKind::P2wpkh => format!("wpkh({key})"),
        }
    }
}

/// Why a string is not a usable single-signature account key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Slip132Error {
    /// Not base58check, or not 78 bytes.
    #[error("is not a valid extended public key (base58 checksum or length is wrong)")]
    Malformed,
    /// Version bytes no SLIP-132 single-signature key uses.
    #[error("has unknown version bytes {version:08x}; expected xpub/ypub/zpub or tpub/upub/vpub")]
    UnknownVersion {
        /// The four version bytes.
        version: u32,
    },
    /// A multisig key (Ypub/Zpub/Upub/Vpub).
    #[error(
        "is a {prefix} key of a multisig wallet; one cosigner's key cannot receive money alone: build a sortedmulti descriptor with every cosigner's key, or export the key of a single-signature wallet"
    )]
    Multisig {
        /// The prefix, e.g. "Zpub".
        prefix: &'static str,
    },
    /// A private key (xprv/yprv/zprv, ...).
    #[error(
        "is a private key ({prefix}); this appliance is watch-only: give the public key (electrum getmpk prints it)"
    )]
    Private {
        /// The prefix, e.g. "zprv".
        prefix: &'static str,
    },
    /// The key data inside is not a valid BIP-32 key.
    #[error("holds an invalid BIP-32 key")]
    InvalidKey,
}

/// A single-signature account key: script type, network kind and the BIP-32 key.
#[derive(Clone, PartialEq, Eq)]
pub struct AccountKey {
    /// Script type from the version bytes.
    pub script: ScriptKind,
    /// The key with standard xpub/tpub version bytes.
    pub xpub: Xpub,
}

impl fmt::Debug for AccountKey {
    // Public, but it identifies the wallet: keep it out of debug logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountKey")
            .field("script", &self.script)
            .field("network", &self.xpub.network)
            .finish_non_exhaustive()
    }
}

/// What a version prefix means.
enum Version {
    Single(ScriptKind, NetworkKind),
    Multisig(&'static str),
    Private(&'static str),
}

/// SLIP-132 registered version bytes (https://github.com/satoshilabs/slips/blob/master/slip-0132.md).
fn version(v: u32) -> Option<Version> {
    use NetworkKind::{Main, Test};
    use ScriptKind::*;
    Some(match v {
        0x0488_b21e => Version::Single(P2pkh, Main),      // xpub
        0x049d_7cb2 => Version::Single(P2shP2wpkh, Main), // ypub
        0x04b2_4746 => Version::Single(P2wpkh, Main),     // zpub
        0x0435_87cf => Version::Single(P2pkh, Test),      // tpub
        0x044a_5262 => Version::Single(P2shP2wpkh, Test), // upub
        0x045f_1cf6 => Version::Single(P2wpkh, Test),     // vpub
        0x0295_b43f => Version::Multisig("Ypub"),
        0x02aa_7ed3 => Version::Multisig("Zpub"),
        0x0242_89ef => Version::Multisig("Upub"),
        0x0257_5483 => Version::Multisig("Vpub"),
        0x0488_ade4 => Version::Private("xprv"),
        0x049d_7878 => Version::Private("yprv"),
        0x04b2_430c => Version::Private("zprv"),
        0x0435_8394 => Version::Private("tprv"),
        0x044a_4e28 => Version::Private("uprv"),
        0x045f_18bc => Version::Private("vprv"),
        0x0295_b005 => Version::Private("Yprv"),
        0x02aa_7a99 => Version::Private("Zprv"),
        0x0242_85b5 => Version::Private("Uprv"),
        0x0257_5048 => Version::Private("Vprv"),
        _ => return None,
    })
}

/// Whether `text` looks like a bare extended key rather than a descriptor.
///
/// Descriptors contain `(`; a bare key is one base58 word.
pub fn looks_like_bare_key(text: &str) -> bool {
    let t = text.trim();
    t.len() > 100 && t.len() < 120 && t.chars().all(|c| c.is_ascii_alphanumeric())
}

impl FromStr for AccountKey {
    type Err = Slip132Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let data = zeroize::Zeroizing::new(
            base58::decode_check(s.trim()).map_err(|_| Slip132Error::Malformed)?,
        );
        if data.len() != 78 {
            return Err(Slip132Error::Malformed);
        }
        let v = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
        let (script, kind) = match version(v) {
            Some(Version::Single(s, k)) => (s, k),
            Some(Version::Multisig(prefix)) => return Err(Slip132Error::Multisig { prefix }),
            Some(Version::Private(prefix)) => return Err(Slip132Error::Private { prefix }),
            None => return Err(Slip132Error::UnknownVersion { version: v }),
        };
        let standard: u32 = match kind {
            NetworkKind::Main => 0x0488_b21e,
            NetworkKind::Test => 0x0435_87cf,
        };
        let mut plain = [0u8; 78];
        plain[..4].copy_from_slice(&standard.to_be_bytes());
        plain[4..].copy_from_slice(&data[4..]);
        let xpub = Xpub::decode(&plain).map_err(|_| Slip132Error::InvalidKey)?;
        Ok(AccountKey { script, xpub })
    }
}

/// Where the account key sits under its wallet's master key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyOrigin {
    /// Fingerprint of the master key.
    pub fingerprint: Fingerprint,
    /// Path from the master key to the account key (e.g. m/84h/1h/0h).
    pub path: DerivationPath,
}

impl AccountKey {
    /// Network kind of the key (mainnet or the test networks).
    pub fn network_kind(&self) -> NetworkKind {
        self.xpub.network
    }

    /// The origin when only the key is known, as Electrum does: a depth-1 key's parent is
    /// the master (its fingerprint and child number are in the key); otherwise the key's
    /// own fingerprint with path m.
    pub fn own_origin(&self) -> KeyOrigin {
        if self.xpub.depth == 1 {
            return KeyOrigin {
                fingerprint: self.xpub.parent_fingerprint,
                path: DerivationPath::from(vec![self.xpub.child_number]),
            };
        }
        KeyOrigin {
            fingerprint: self.xpub.fingerprint(),
            path: DerivationPath::master(),
        }
    }

    /// The account key of a single-key `pkh`/`sh(wpkh)`/`wpkh` descriptor, if it is one.
    pub fn from_descriptor(desc: &str) -> Option<AccountKey> {
        use bdk_wallet::miniscript::descriptor::{Descriptor, DescriptorPublicKey, ShInner};
        let d = Descriptor::<DescriptorPublicKey>::from_str(desc).ok()?;
        let (script, key) = match &d {
            Descriptor::Pkh(p) => (ScriptKind::P2pkh, p.as_inner().clone()),
            Descriptor::Wpkh(w) => (ScriptKind::P2wpkh, w.as_inner().clone()),
            Descriptor::Sh(sh) => match sh.as_inner() {
                ShInner::Wpkh(w) => (ScriptKind::P2shP2wpkh, w.as_inner().clone()),
                _ => return None,
            },
            _ => return None,
        };
        match key {
            // The account key is the xpub before the /0/* (or /1/*) steps.
            DescriptorPublicKey::XPub(x) if x.derivation_path.len() == 1 => Some(AccountKey {
                script,
                xpub: x.xkey,
            }),
            _ => None,
        }
    }

    /// The key with its SLIP-132 version bytes, as `electrum getmpk` prints it.
    pub fn to_slip132(&self) -> String {
        let v: u32 = match (self.script, self.xpub.network) {
            (ScriptKind::P2pkh, NetworkKind::Main) => 0x0488_b21e,
            (ScriptKind::P2shP2wpkh, NetworkKind::Main) => 0x049d_7cb2,
            (ScriptKind::P2wpkh, NetworkKind::Main) => 0x04b2_4746,
            (ScriptKind::P2pkh, NetworkKind::Test) => 0x0435_87cf,
            (ScriptKind::P2shP2wpkh, NetworkKind::Test) => 0x044a_5262,
            (ScriptKind::P2wpkh, NetworkKind::Test) => 0x045f_1cf6,
        };
        let mut data = self.xpub.encode();
        data[..4].copy_from_slice(&v.to_be_bytes());
        base58::encode_check(&data)
    }

    /// Receive (`/0/*`) and change (`/1/*`) descriptors, without checksums.
    pub fn descriptors(&self, origin: &KeyOrigin) -> (String, String) {
        let steps: String = origin.path.into_iter().map(|c| format!("/{c}")).collect();
        let prefix = format!("[{}{steps}]", origin.fingerprint);
        let key = |chain: u32| format!("{prefix}{}/{chain}/*", self.xpub);
        (self.script.wrap(&key(0)), self.script.wrap(&key(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bdk_wallet::bitcoin::Network;
    use bdk_wallet::miniscript::{Descriptor, DescriptorPublicKey};

    /// BIP-84 test vector (mnemonic "abandon ×11 about"), account 0.
    const BIP84_ZPUB: &str = "zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3EfH1r1ADqtfSdVCToUG868RvUUkgDKf31mGDtKsAYz2oz2AGutZYs";

    fn address(desc: &str, index: u32, network: Network) -> String {
        let d = Descriptor::<DescriptorPublicKey>::from_str(desc).unwrap();
        d.at_derivation_index(index)
            .unwrap()
            .address(network)
            .unwrap()
            .to_string()
    }

    #[test]
    fn bip84_vector_derives_the_published_addresses() {
        let k: AccountKey = BIP84_ZPUB.parse().unwrap();
        assert_eq!(k.script, ScriptKind::P2wpkh);
        assert_eq!(k.network_kind(), NetworkKind::Main);
        let (recv, change) = k.descriptors(&k.own_origin());
        assert!(recv.starts_with("wpkh(["), "{recv}");
        let n = Network::Bitcoin;
        assert_eq!(
            address(&recv, 0, n),
            "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu"
        );
        assert_eq!(
            address(&recv, 1, n),
            "bc1qnjg0jd8228aq7egyzacy8cys3knf9xvrerkf9g"
        );
        assert_eq!(
            address(&change, 0, n),
            "bc1q8c6fshw2dlwun7ekn9qwf37cu2rn755upcp6el"
        );
    }

    #[test]
    fn origin_with_path_is_written_without_m() {
        let k: AccountKey = BIP84_ZPUB.parse().unwrap();
        let origin = KeyOrigin {
            fingerprint: "73c5da0a".parse().unwrap(),
            path: "m/84'/0'/0'".parse().unwrap(),
        };
        let (recv, _) = k.descriptors(&origin);
        assert!(recv.starts_with("wpkh([73c5da0a/84'/0'/0']xpub6"), "{recv}");
        assert_eq!(
            address(&recv, 0, Network::Bitcoin),
            "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu"
        );
    }

    #[test]
    fn keys_round_trip_through_their_descriptors() {
        for v in [0x0488_b21e, 0x049d_7cb2, 0x04b2_4746] {
            let s = with_version(v);
            let k: AccountKey = s.parse().unwrap();
            let (recv, change) = k.descriptors(&k.own_origin());
            assert_eq!(AccountKey::from_descriptor(&recv).unwrap().to_slip132(), s);
            assert_eq!(AccountKey::from_descriptor(&change).unwrap(), k);
        }
        assert!(AccountKey::from_descriptor("tr(xpub6CatWdiZiodmUeTDp8LT5or8nmbKNcuyvz7WyksVFkKB4RHwCD3XyuvPEbvqAQY3rAPshWcMLoP2fMFMKHPJ4ZeZXYVUhLv1VMrjPC7PW6V/0/*)").is_none());
    }

    #[test]
    fn a_depth_one_key_names_its_parent_as_the_master() {
        // Electrum's own segwit seeds derive the account at m/0h (depth 1).
        let k: AccountKey = "vpub5VkqJw2EHh9G38BbCM4dgphNmnfXsCxzvMAM68kfeXecqDmqw7YHk72t3xbA1pbKQ4fbxVRdKYhwtyonjgmQXAbBPg5gMJtxShUxQifzffe".parse().unwrap();
        let o = k.own_origin();
        // What Electrum 4.3.4 wrote as root_fingerprint and derivation for this key.
        assert_eq!(o.fingerprint.to_string(), "d072b306");
        assert_eq!(o.path.to_string(), "0'");
        let bip84: AccountKey = BIP84_ZPUB.parse().unwrap();
        assert_eq!(bip84.own_origin().fingerprint, bip84.xpub.fingerprint());
        assert!(bip84.own_origin().path.is_master());
    }

    /// Re-encodes the BIP-84 key with other version bytes.
    fn with_version(v: u32) -> String {
        let mut data = base58::decode_check(BIP84_ZPUB).unwrap();
        data[..4].copy_from_slice(&v.to_be_bytes());
        base58::encode_check(&data)
    }

    #[test]
    fn every_single_sig_prefix_maps_to_its_script_and_network() {
        let cases = [
            (0x0488_b21e, "xpub", ScriptKind::P2pkh, NetworkKind::Main),
            (
                0x049d_7cb2,
                "ypub",
                ScriptKind::P2shP2wpkh,
                NetworkKind::Main,
            ),
            (0x04b2_4746, "zpub", ScriptKind::P2wpkh, NetworkKind::Main),
            (0x0435_87cf, "tpub", ScriptKind::P2pkh, NetworkKind::Test),
            (
                0x044a_5262,
                "upub",
                ScriptKind::P2shP2wpkh,
                NetworkKind::Test,
            ),
            (0x045f_1cf6, "vpub", ScriptKind::P2wpkh, NetworkKind::Test),
        ];
        for (v, prefix, script, kind) in cases {
            let s = with_version(v);
            assert!(s.starts_with(prefix), "{s} for {prefix}");
            let k: AccountKey = s.parse().unwrap();
            assert_eq!((k.script, k.network_kind()), (script, kind), "{prefix}");
            let (recv, change) = k.descriptors(&k.own_origin());
            let std_prefix = if kind == NetworkKind::Main {
                "xpub"
            } else {
                "tpub"
            };
            assert!(recv.contains(&format!("]{std_prefix}")), "{recv}");
            assert!(recv.contains("/0/*") && change.contains("/1/*"));
        }
    }

    #[test]
    fn multisig_and_private_prefixes_are_refused_with_a_reason() {
        for (v, prefix) in [
            (0x0295_b43f, "Ypub"),
            (0x02aa_7ed3, "Zpub"),
            (0x0242_89ef, "Upub"),
            (0x0257_5483, "Vpub"),
        ] {
            let s = with_version(v);
            assert!(s.starts_with(prefix), "{s}");
            let e = s.parse::<AccountKey>().unwrap_err();
            assert_eq!(e, Slip132Error::Multisig { prefix });
            assert!(e.to_string().contains("cosigner"));
        }
        // Version bytes of a private key over public key data: refused before decoding.
        let e = with_version(0x04b2_430c).parse::<AccountKey>().unwrap_err();
        assert_eq!(e, Slip132Error::Private { prefix: "zprv" });
    }

    #[test]
    fn malformed_keys_are_refused_without_quoting_them() {
        let mut bad = BIP84_ZPUB.to_owned();
        bad.pop();
        bad.push('t');
        let e = bad.parse::<AccountKey>().unwrap_err();
        assert_eq!(e, Slip132Error::Malformed);
        assert!(!e.to_string().contains("zpub6r"));
        let e = with_version(0x1234_5678).parse::<AccountKey>().unwrap_err();
        assert_eq!(
            e,
            Slip132Error::UnknownVersion {
                version: 0x1234_5678
            }
        );
    }

    #[test]
    fn bare_keys_are_told_apart_from_descriptors() {
        assert!(looks_like_bare_key(BIP84_ZPUB));
        assert!(looks_like_bare_key(&format!("  {BIP84_ZPUB}\n")));
        assert!(!looks_like_bare_key(&format!("wpkh({BIP84_ZPUB}/0/*)")));
        assert!(!looks_like_bare_key("xpub"));
    }
}
