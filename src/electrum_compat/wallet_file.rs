//! Electrum 4.x wallet files: storage decryption (`BIE1`) and the parts of the JSON a
//! watch-only migration needs. Pure: bytes and a password in, a typed wallet out.
//!
//! The decryption follows Electrum 4.3's `storage.py` and `ecc.py` exactly:
//! the file is base64 of `"BIE1" || ephemeral pubkey (33) || AES-128-CBC ciphertext || MAC (32)`;
//! the private key is PBKDF2-HMAC-SHA512(password, salt "", 1024 rounds) reduced modulo the
//! curve order; `SHA512(compressed(ephemeral · key))` gives IV, AES key and MAC key; the MAC
//! is HMAC-SHA256 over everything before it; the plaintext is zlib-compressed JSON.
//! Private keys and seeds in the file are never deserialised into memory we keep.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read as _;

use aes::cipher::{BlockDecryptMut, KeyIvInit, block_padding::Pkcs7};
use base64::Engine as _;
use bdk_wallet::bitcoin::bip32::{DerivationPath, Fingerprint};
use bdk_wallet::bitcoin::secp256k1::{self, PublicKey, Scalar, Secp256k1, SecretKey};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde::de::IgnoredAny;
use sha2::{Digest, Sha256, Sha512};
use zeroize::Zeroizing;

use super::slip132::{AccountKey, KeyOrigin, Slip132Error};
use crate::secret::Secret;

/// Largest wallet file read (Electrum files with long histories reach tens of MB).
pub const MAX_FILE_BYTES: usize = 512 * 1024 * 1024;

/// Why a wallet file cannot be imported. Never carries key material or the password.
#[derive(Debug, thiserror::Error)]
pub enum WalletFileError {
    /// Encrypted with a hardware wallet's key (`BIE2`).
    #[error(
        "is encrypted by a hardware wallet (BIE2); its key never leaves the device: open the wallet in Electrum with the device, turn off file encryption (or run `electrum getmpk` and use `snakkaz-pay init --descriptor`), then import again"
    )]
    HardwareEncrypted,
    /// Encrypted (`BIE1`) and no password was given.
    #[error(
        "is encrypted with a password (BIE1); give it with --password-file, the systemd credential electrum-wallet-password, or ELECTRUM_WALLET_PASSWORD"
    )]
    PasswordNeeded,
    /// The MAC does not match: the password is wrong (or the file was altered).
    #[error(
        "could not be decrypted: wrong password (or the file was altered); check the password Electrum asks for when opening this wallet"
    )]
    WrongPassword,
    /// The bytes are not an Electrum wallet file.
    #[error(
        "is not a readable Electrum wallet file ({what}); give the file from Electrum's wallets directory, unmodified"
    )]
    Corrupt {
        /// What was wrong.
        what: String,
    },
    /// A kind of wallet that cannot be continued from an account key.
    #[error("cannot be imported: {reason}")]
    Unsupported {
        /// Why, and what to do instead.
        reason: &'static str,
    },
    /// The keystore's master public key cannot be used.
    #[error("has a master public key that {0}")]
    Key(Slip132Error),
}

/// One unpaid request of the Electrum wallet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Electrum's request id (its key in `payment_requests`).
    pub id: String,
    /// The on-chain address of the request.
    pub address: String,
    /// Amount asked for, in satoshis (0: any amount).
    pub amount_sat: u64,
    /// Unix seconds of creation.
    pub created_at: u64,
    /// Seconds from creation until expiry; 0: never expires.
    pub expiry_secs: u64,
    /// The request's description.
    pub message: String,
}

impl Request {
    /// Unix seconds at which it expires, if it does.
    pub fn expires_at(&self) -> Option<u64> {
        (self.expiry_secs != 0).then(|| self.created_at.saturating_add(self.expiry_secs))
    }
}

/// What a watch-only migration takes from an Electrum wallet file.
#[derive(Debug, Clone)]
pub struct ElectrumWallet {
    /// Whether the file was storage-encrypted.
    pub encrypted: bool,
    /// The account key and its script type.
    pub account: AccountKey,
    /// Master fingerprint and account path, when the file records them.
    pub origin: Option<KeyOrigin>,
    /// The file holds private keys (an xprv or a seed); they were not read.
    pub had_private_keys: bool,
    /// Electrum's receive addresses, index order.
    pub receiving: Vec<String>,
    /// Electrum's change addresses, index order.
    pub change: Vec<String>,
    /// Addresses with at least one transaction in `addr_history`.
    pub with_history: BTreeSet<String>,
    /// On-chain payment requests.
    pub requests: Vec<Request>,
    /// The file's `seed_version`.
    pub seed_version: u64,
}

impl ElectrumWallet {
    /// Receive and change descriptors, with the file's key origin (or the key's own).
    pub fn descriptors(&self) -> (String, String) {
        let origin = self
            .origin
            .clone()
            .unwrap_or_else(|| self.account.own_origin());
        self.account.descriptors(&origin)
    }

    /// First receive index Electrum never handed out: past its receive list and past every
    /// index with history.
    pub fn next_receive_index(&self) -> u32 {
        next_index(&self.receiving, &self.with_history)
    }

    /// First change index past Electrum's change list and its used change addresses.
    pub fn next_change_index(&self) -> u32 {
        next_index(&self.change, &self.with_history)
    }
}

fn next_index(list: &[String], used: &BTreeSet<String>) -> u32 {
    let past_used = list
        .iter()
        .rposition(|a| used.contains(a))
        .map_or(0, |i| i + 1);
    u32::try_from(list.len().max(past_used)).unwrap_or(u32::MAX)
}

/// Decrypts (if needed) and parses an Electrum wallet file.
pub fn parse(bytes: &[u8], password: Option<&Secret>) -> Result<ElectrumWallet, WalletFileError> {
    let text = trim_ascii(bytes);
    if text.first() == Some(&b'{') {
        return parse_json(text, false);
    }
    let raw = Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|_| corrupt("neither JSON nor base64"))?,
    );
    match raw.get(..4) {
        Some(b"BIE2") => Err(WalletFileError::HardwareEncrypted),
        Some(b"BIE1") => {
            let password = password.ok_or(WalletFileError::PasswordNeeded)?;
            let compressed = decrypt_bie1(&raw, password)?;
            let mut json = Zeroizing::new(Vec::new());
            flate2::read::ZlibDecoder::new(compressed.as_slice())
                .take(MAX_FILE_BYTES as u64)
                .read_to_end(&mut json)
                .map_err(|_| corrupt("the decrypted data is not zlib data"))?;
            parse_json(&json, true)
        }
        _ => Err(corrupt("unknown encryption magic bytes")),
    }
}

fn corrupt(what: &str) -> WalletFileError {
    WalletFileError::Corrupt {
        what: what.to_owned(),
    }
}

fn trim_ascii(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &b[start..end]
}

/// Electrum's `ECPrivkey.decrypt_message` with the key from `get_eckey_from_password`.
fn decrypt_bie1(raw: &[u8], password: &Secret) -> Result<Zeroizing<Vec<u8>>, WalletFileError> {
    if raw.len() < 85 {
        return Err(corrupt("the encrypted data is too short"));
    }
    let key = password_key(password)?;
    let ephemeral = PublicKey::from_slice(&raw[4..37])
        .map_err(|_| corrupt("the ephemeral public key is invalid"))?;
    let (body, mac) = raw.split_at(raw.len() - 32);
    let secp = Secp256k1::verification_only();
    let shared = ephemeral
        .mul_tweak(&secp, &Scalar::from(key))
        .map_err(|_| corrupt("the ephemeral public key is invalid"))?;
    let mut k = Zeroizing::new([0u8; 64]);
    k.copy_from_slice(&Sha512::digest(shared.serialize()));
    let (iv, key_e, key_m) = (&k[0..16], &k[16..32], &k[32..64]);
    let mut h = <Hmac<Sha256> as Mac>::new_from_slice(key_m).expect("HMAC takes any key length");
    h.update(body);
    // Electrum raises InvalidPassword exactly here.
    h.verify_slice(mac)
        .map_err(|_| WalletFileError::WrongPassword)?;
    let ciphertext = &raw[37..raw.len() - 32];
    let dec = cbc::Decryptor::<aes::Aes128>::new_from_slices(key_e, iv)
        .expect("AES-128 key and IV are 16 bytes");
    dec.decrypt_padded_vec_mut::<Pkcs7>(ciphertext)
        .map(Zeroizing::new)
        .map_err(|_| corrupt("the decrypted data has invalid padding"))
}

/// PBKDF2-HMAC-SHA512(password, "", 1024) as an integer modulo the curve order.
fn password_key(password: &Secret) -> Result<SecretKey, WalletFileError> {
    let mut secret = Zeroizing::new([0u8; 64]);
    pbkdf2::pbkdf2_hmac::<Sha512>(password.expose().as_bytes(), b"", 1024, secret.as_mut());
    reduce_mod_n(&secret).ok_or_else(|| corrupt("the password gives a zero key"))
}

/// `int(bytes) mod n` for 64 big-endian bytes: hi·2²⁵⁶ + lo ≡ hi·(2²⁵⁶ − n) + lo (mod n).
fn reduce_mod_n(b: &[u8; 64]) -> Option<SecretKey> {
    // 2^256 - n, the curve order's complement.
    const C: [u8; 32] = [
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x45, 0x51, 0x23, 0x19, 0x50, 0xb7, 0x5f,
        0xc4, 0x40, 0x2d, 0xa1, 0x73, 0x2f, 0xc9, 0xbe, 0xbf,
    ];
    let hi = reduce_once(b[..32].try_into().expect("32 bytes"));
    let lo = reduce_once(b[32..].try_into().expect("32 bytes"));
    let c = Scalar::from_be_bytes(C).expect("C < n");
    let hi_c = match SecretKey::from_slice(hi.as_slice()) {
        Ok(h) => Some(h.mul_tweak(&c).ok()?),
        Err(_) => None, // hi ≡ 0
    };
    let lo_s = Scalar::from_be_bytes(*lo).ok()?;
    match hi_c {
        Some(h) => h.add_tweak(&lo_s).ok(),
        None => SecretKey::from_slice(lo.as_slice()).ok(),
    }
}

/// `x mod n` for x < 2²⁵⁶ (one subtraction at most, since 2²⁵⁶ < 2n).
fn reduce_once(x: [u8; 32]) -> Zeroizing<[u8; 32]> {
    let n = secp256k1::constants::CURVE_ORDER;
    if x < n {
        return Zeroizing::new(x);
    }
    let mut out = Zeroizing::new([0u8; 32]);
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let d = i16::from(x[i]) - i16::from(n[i]) - borrow;
        borrow = i16::from(d < 0);
        out[i] = (d + 256 * borrow) as u8;
    }
    out
}

// The subset of Electrum 4.x's wallet JSON we read. Unknown fields are skipped by serde
// without being copied; `xprv` and `seed` are only checked for presence.
#[derive(Deserialize)]
struct FileJson {
    seed_version: Option<u64>,
    wallet_type: Option<String>,
    keystore: Option<KeystoreJson>,
    #[serde(default)]
    addresses: Option<AddressesJson>,
    #[serde(default)]
    addr_history: BTreeMap<String, Vec<IgnoredAny>>,
    #[serde(default)]
    payment_requests: BTreeMap<String, RequestJson>,
}

#[derive(Deserialize)]
struct KeystoreJson {
    #[serde(rename = "type")]
    kind: Option<String>,
    xpub: Option<String>,
    xprv: Option<IgnoredAny>,
    seed: Option<IgnoredAny>,
    derivation: Option<String>,
    root_fingerprint: Option<String>,
}

#[derive(Deserialize)]
struct AddressesJson {
    #[serde(default)]
    receiving: Vec<String>,
    #[serde(default)]
    change: Vec<String>,
}

#[derive(Deserialize)]
struct RequestJson {
    #[serde(default)]
    amount_msat: Option<u64>,
    #[serde(default)]
    exp: Option<u64>,
    #[serde(default)]
    time: Option<u64>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    outputs: Vec<(u64, String, u64)>,
    #[serde(default)]
    is_lightning: Option<bool>,
}

fn parse_json(json: &[u8], encrypted: bool) -> Result<ElectrumWallet, WalletFileError> {
    let f: FileJson = serde_json::from_slice(json)
        .map_err(|e| corrupt(&format!("invalid JSON at line {}", e.line())))?;
    match f.wallet_type.as_deref() {
        Some("standard") => {}
        Some("imported") => {
            return Err(WalletFileError::Unsupported {
                reason: "it holds imported addresses or keys, which no account key derives; create a new Electrum wallet from a seed or xpub, or use init with that wallet's key",
            });
        }
        Some("2fa") => {
            return Err(WalletFileError::Unsupported {
                reason: "it is a 2FA (TrustedCoin) multisig wallet; a single account key cannot receive to its addresses",
            });
        }
        Some(t) if t.contains("of") => {
            return Err(WalletFileError::Unsupported {
                reason: "it is a multisig wallet; one cosigner's key cannot receive to its addresses: build a sortedmulti descriptor with every cosigner's key",
            });
        }
        _ => {
            return Err(WalletFileError::Unsupported {
                reason: "its wallet_type is missing or unknown; open it once in Electrum 4.x so that it is upgraded, then import again",
            });
        }
    }
    let ks = f.keystore.ok_or(WalletFileError::Unsupported {
        reason: "it has no keystore; open it once in Electrum 4.x so that it is upgraded, then import again",
    })?;
    match ks.kind.as_deref() {
        Some("bip32") | Some("hardware") => {}
        Some("old") => {
            return Err(WalletFileError::Unsupported {
                reason: "it is an old-type wallet (Electrum 1.x seed) whose addresses no BIP-32 descriptor derives; move the funds to a new wallet and use its key",
            });
        }
        Some("imported") => {
            return Err(WalletFileError::Unsupported {
                reason: "it holds imported keys, which no account key derives",
            });
        }
        _ => {
            return Err(WalletFileError::Unsupported {
                reason: "its keystore type is unknown to this importer (expected bip32 or hardware)",
            });
        }
    }
    let xpub = ks.xpub.ok_or(WalletFileError::Unsupported {
        reason: "its keystore has no master public key",
    })?;
    let account: AccountKey = xpub.parse().map_err(WalletFileError::Key)?;
    let origin = match (ks.root_fingerprint.as_deref(), ks.derivation.as_deref()) {
        (Some(fp), Some(path)) => {
            let fingerprint: Fingerprint = fp
                .parse()
                .map_err(|_| corrupt("keystore root_fingerprint is not 8 hex digits"))?;
            let path: DerivationPath = path
                .parse()
                .map_err(|_| corrupt("keystore derivation is not a BIP-32 path"))?;
            Some(KeyOrigin { fingerprint, path })
        }
        _ => None,
    };
    let (receiving, change) = f
        .addresses
        .map(|a| (a.receiving, a.change))
        .unwrap_or_default();
    let with_history = f
        .addr_history
        .into_iter()
        .filter(|(_, h)| !h.is_empty())
        .map(|(a, _)| a)
        .collect();
    let requests = f
        .payment_requests
        .into_iter()
        .filter_map(|(id, r)| {
            let (_, address, sat) = r.outputs.first()?.clone();
            // A lightning-only request has no on-chain output; 4.3 requests list one.
            let _ = r.is_lightning;
            Some(Request {
                id,
                address,
                amount_sat: r.amount_msat.map_or(sat, |m| m / 1000),
                created_at: r.time.unwrap_or(0),
                expiry_secs: r.exp.unwrap_or(0),
                message: r.message.unwrap_or_default(),
            })
        })
        .collect();
    Ok(ElectrumWallet {
        encrypted,
        account,
        origin,
        had_private_keys: ks.xprv.is_some() || ks.seed.is_some(),
        receiving,
        change,
        with_history,
        requests,
        seed_version: f.seed_version.unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_index_covers_the_list_and_every_used_index() {
        let list: Vec<String> = (0..5).map(|i| format!("a{i}")).collect();
        let none = BTreeSet::new();
        assert_eq!(next_index(&list, &none), 5);
        assert_eq!(next_index(&[], &none), 0);
        let used: BTreeSet<String> = ["a2".to_owned()].into();
        assert_eq!(next_index(&list, &used), 5);
        assert_eq!(next_index(&list[..2], &used), 2);
        let used: BTreeSet<String> = ["a4".to_owned()].into();
        assert_eq!(next_index(&list, &used), 5);
    }

    #[test]
    fn reduction_mod_n_matches_big_integer_arithmetic() {
        // 2^512 - 1 mod n, computed with Python: (2**512 - 1) % n.
        let all_ones = [0xffu8; 64];
        let k = reduce_mod_n(&all_ones).unwrap();
        assert_eq!(hex::encode(k.secret_bytes()), EXPECTED_ALL_ONES_MOD_N);
        // A value below n is unchanged.
        let mut small = [0u8; 64];
        small[63] = 7;
        assert_eq!(reduce_mod_n(&small).unwrap().secret_bytes()[31], 7);
        // Zero has no key.
        assert!(reduce_mod_n(&[0u8; 64]).is_none());
    }

    const EXPECTED_ALL_ONES_MOD_N: &str =
        "9d671cd581c69bc5e697f5e45bcd07c6741496c20e7cf878896cf21467d7d13f";

    #[test]
    fn hardware_encrypted_and_garbage_files_are_refused() {
        let bie2 = base64::engine::general_purpose::STANDARD
            .encode([b"BIE2".as_slice(), &[7u8; 100]].concat());
        assert!(matches!(
            parse(bie2.as_bytes(), None),
            Err(WalletFileError::HardwareEncrypted)
        ));
        let bie1 = base64::engine::general_purpose::STANDARD
            .encode([b"BIE1".as_slice(), &[7u8; 100]].concat());
        assert!(matches!(
            parse(bie1.as_bytes(), None),
            Err(WalletFileError::PasswordNeeded)
        ));
        assert!(matches!(
            parse(b"\x00\x01 not a wallet", None),
            Err(WalletFileError::Corrupt { .. })
        ));
        assert!(matches!(
            parse(b"{\"wallet_type\": \"standard\", ", None),
            Err(WalletFileError::Corrupt { .. })
        ));
    }
}
