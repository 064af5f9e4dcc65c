//! Hot mode (off unless `SNAKKAZ_PAY_HOT_SEED_FILE` is set): the account's extended private
//! key, encrypted with age's passphrase mode (scrypt) under the wallet password, decrypted
//! into zeroizing memory only while one PSBT is signed. It signs only what the appliance
//! built as a transfer to cold storage or a CPFP child, after the same output checks a
//! broadcast meets; broadcasting still takes `transfer broadcast` and a TOTP code.

use std::io::{Read as _, Write as _};
use std::path::Path;
use std::str::FromStr;

use age::secrecy::SecretString;
use bdk_wallet::bitcoin::bip32::{Xpriv, Xpub};
use bdk_wallet::bitcoin::secp256k1::Secp256k1;
use bdk_wallet::bitcoin::{Address, Psbt, ScriptBuf};
use bdk_wallet::descriptor::{Descriptor, DescriptorPublicKey};
use bdk_wallet::miniscript::ForEachKey as _;
use bdk_wallet::{SignOptions, Wallet};
use zeroize::Zeroizing;

use super::SpendError;
use crate::config::Config;
use crate::config::spend::HotMode;
use crate::secret::Secret;
use crate::store::TransferRecord;

/// Name of the systemd credential holding the password (the Electrum wallet's).
pub const PASSWORD_CREDENTIAL: &str = "electrum-wallet-password";
/// Largest seed or password file read.
const MAX_FILE_BYTES: u64 = 64 * 1024;

fn hot_err(detail: impl Into<String>) -> SpendError {
    SpendError::Hot(detail.into())
}

/// The password: the configured file, else the systemd credential, else the environment.
pub fn password(hot: &HotMode, cfg: &Config) -> Result<Secret, SpendError> {
    if let Some(p) = &hot.password_file {
        return read_private(p).map(|b| secret_text(&b));
    }
    if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") {
        let p = Path::new(&dir).join(PASSWORD_CREDENTIAL);
        if p.exists() {
            return read_private(&p).map(|b| secret_text(&b));
        }
    }
    cfg.wallet_password.clone().ok_or_else(|| {
        hot_err(
            "no password for the hot seed: set SNAKKAZ_PAY_HOT_PASSWORD_FILE, the systemd credential electrum-wallet-password, or ELECTRUM_WALLET_PASSWORD",
        )
    })
}

fn secret_text(bytes: &[u8]) -> Secret {
    let text = String::from_utf8_lossy(bytes);
    let t = text.strip_suffix('\n').unwrap_or(&text);
    Secret::new(t.strip_suffix('\r').unwrap_or(t))
}

/// Reads a file that must not be readable by others.
fn read_private(path: &Path) -> Result<Zeroizing<Vec<u8>>, SpendError> {
    let fail = |d: String| hot_err(format!("{}: {d}", path.display()));
    let f = std::fs::File::open(path).map_err(|e| fail(format!("cannot open: {e}")))?;
    let meta = f.metadata().map_err(|e| fail(e.to_string()))?;
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(fail(format!(
                "readable by others (mode {mode:o}); chmod 600 it"
            )));
        }
    }
    let mut bytes = Zeroizing::new(Vec::new());
    f.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(e.to_string()))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(fail("too large".into()));
    }
    Ok(bytes)
}

/// The extended private key the operator gives, checked: it must be the key behind the
/// watched descriptor (same fingerprint, same account public key at the origin path).
pub fn check_key(text: &str, descriptor: &str) -> Result<Xpriv, SpendError> {
    let xprv = Xpriv::from_str(text.trim()).map_err(|_| {
        hot_err("not an extended private key (xprv/tprv of the wallet's root); nothing written")
    })?;
    let d = Descriptor::<DescriptorPublicKey>::from_str(descriptor)
        .map_err(|e| hot_err(format!("the watched descriptor cannot be read: {e}")))?;
    let secp = Secp256k1::new();
    let fp = xprv.fingerprint(&secp);
    let matches = d.for_any_key(|k| match k {
        DescriptorPublicKey::XPub(x) => match &x.origin {
            Some((origin_fp, path)) if *origin_fp == fp => xprv
                .derive_priv(&secp, path)
                .map(|p| Xpub::from_priv(&secp, &p) == x.xkey)
                .unwrap_or(false),
            None => Xpub::from_priv(&secp, &xprv) == x.xkey,
            _ => false,
        },
        _ => false,
    });
    if !matches {
        return Err(hot_err(
            "this key is not the one behind SNAKKAZ_PAY_DESCRIPTOR (fingerprint or account key differ); nothing written",
        ));
    }
    Ok(xprv)
}

/// Encrypts the key text with the password (age passphrase, scrypt) and writes it to a new
/// owner-only file (an existing one is replaced only with `force`).
pub fn write_seed(
    path: &Path,
    key: &str,
    password: &Secret,
    force: bool,
) -> Result<(), SpendError> {
    let fail = |d: String| hot_err(format!("{}: {d}", path.display()));
    if path.exists() && !force {
        return Err(fail(
            "exists: a hot seed is already imported; use --force to replace it".into(),
        ));
    }
    let enc =
        age::Encryptor::with_user_passphrase(SecretString::from(password.expose().to_owned()));
    let mut out = Vec::new();
    let mut w = enc
        .wrap_output(&mut out)
        .map_err(|e| fail(format!("encrypting: {e}")))?;
    w.write_all(key.trim().as_bytes())
        .and_then(|()| w.finish().map(|_| ()))
        .map_err(|e| fail(format!("encrypting: {e}")))?;
    if force {
        std::fs::remove_file(path).ok();
    }
    crate::secret::write_secret_file(path, &out).map_err(|e| fail(e.to_string()))
}

/// Decrypts the seed file into zeroizing memory.
fn read_seed(path: &Path, password: &Secret) -> Result<Zeroizing<String>, SpendError> {
    let fail = |d: String| hot_err(format!("{}: {d}", path.display()));
    let bytes = read_private(path)?;
    let d =
        age::Decryptor::new(&bytes[..]).map_err(|e| fail(format!("not a hot seed file: {e}")))?;
    let id = age::scrypt::Identity::new(SecretString::from(password.expose().to_owned()));
    let mut r = d
        .decrypt(std::iter::once(&id as &dyn age::Identity))
        .map_err(|_| fail("cannot decrypt: wrong password, or not a hot seed file".into()))?;
    let mut text = Zeroizing::new(String::new());
    r.read_to_string(&mut text)
        .map_err(|e| fail(format!("damaged: {e}")))?;
    Ok(text)
}

/// Checks that the built `psbt` of `record` may be signed by the hot key: a transfer or a
/// CPFP child, spending only this wallet's coins, paying only the cold destination and
/// this wallet's own scripts.
pub fn check_signable(
    wallet: &Wallet,
    cold: &[ScriptBuf],
    record: &TransferRecord,
    psbt: &Psbt,
) -> Result<(), SpendError> {
    if !matches!(record.kind.as_str(), "transfer" | "cpfp") {
        return Err(SpendError::HotRefused(format!(
            "hot mode signs only transfers to cold storage and CPFP children, not a {}; sign it offline",
            record.kind
        )));
    }
    for o in &psbt.unsigned_tx.output {
        if !cold.contains(&o.script_pubkey) && !wallet.is_mine(o.script_pubkey.clone()) {
            let address = Address::from_script(&o.script_pubkey, wallet.network())
                .map_or_else(|_| o.script_pubkey.to_hex_string(), |a| a.to_string());
            return Err(SpendError::HotRefused(format!(
                "the transaction pays {address}, neither cold storage nor this wallet; not signed"
            )));
        }
    }
    for (i, input) in psbt.inputs.iter().enumerate() {
        let own = input
            .witness_utxo
            .as_ref()
            .is_some_and(|o| wallet.is_mine(o.script_pubkey.clone()));
        if !own {
            return Err(SpendError::HotRefused(format!(
                "input {i} is not this wallet's coin; not signed"
            )));
        }
    }
    Ok(())
}

/// The hot key, decrypted. Erased when dropped.
pub struct HotKey(Xpriv);

impl Drop for HotKey {
    fn drop(&mut self) {
        self.0.private_key.non_secure_erase();
    }
}

/// Decrypts the hot key (scrypt: about a second), before the wallet is locked for
/// signing so that detection never waits on it.
pub fn unlock(cfg: &Config) -> Result<HotKey, SpendError> {
    let hot = cfg.hot.as_ref().ok_or(SpendError::HotOff)?;
    let password = password(hot, cfg)?;
    let text = read_seed(&hot.seed_file, &password)?;
    drop(password);
    let key = Xpriv::from_str(text.trim())
        .map_err(|_| hot_err("the hot seed file does not hold an extended private key"))?;
    Ok(HotKey(key))
}

/// The cold destination's scripts of the configuration.
fn cold_scripts(cfg: &Config) -> Vec<ScriptBuf> {
    cfg.cold_storage
        .iter()
        .flat_map(|c| c.addresses.iter().map(Address::script_pubkey))
        .collect()
}

/// [`check_signable`] against the configured cold destination.
pub fn check(
    wallet: &Wallet,
    cfg: &Config,
    record: &TransferRecord,
    psbt: &Psbt,
) -> Result<(), SpendError> {
    cfg.hot.as_ref().ok_or(SpendError::HotOff)?;
    check_signable(wallet, &cold_scripts(cfg), record, psbt)
}

/// Signs and finalizes `psbt` with the unlocked hot `key` after [`check_signable`].
pub fn sign(
    wallet: &Wallet,
    cfg: &Config,
    record: &TransferRecord,
    mut psbt: Psbt,
    key: &HotKey,
) -> Result<Psbt, SpendError> {
    check(wallet, cfg, record, &psbt)?;
    let secp = Secp256k1::new();
    let signed = psbt.sign(&key.0, &secp).map_err(|(_, errors)| {
        hot_err(format!(
            "signing failed for {} input(s); is the hot seed the key of this wallet?",
            errors.len()
        ))
    })?;
    if signed.len() != psbt.inputs.len() {
        return Err(hot_err(
            "the hot key signed only some inputs; is the hot seed the key of this wallet?",
        ));
    }
    let done = wallet
        .finalize_psbt(&mut psbt, SignOptions::default())
        .map_err(|e| hot_err(format!("finalizing the signed PSBT failed: {e}")))?;
    if !done {
        return Err(hot_err("the signed PSBT could not be finalized"));
    }
    Ok(psbt)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TPRV: &str = "tprv8ZgxMBicQKsPdy6LMhUtFHAgpocR8GC6QmwMSFpZs7h6Eziw3SpThFfczTDh5rW2krkqffa11UpX3XkeTTB2FvzZKWXqPY54Y6Rq4AQ5R8L";

    fn watched() -> String {
        let secp = Secp256k1::new();
        let root = Xpriv::from_str(TPRV).unwrap();
        let path = bdk_wallet::bitcoin::bip32::DerivationPath::from_str("m/84h/1h/0h").unwrap();
        let acct = Xpub::from_priv(&secp, &root.derive_priv(&secp, &path).unwrap());
        format!("wpkh([{}/84h/1h/0h]{acct}/0/*)", root.fingerprint(&secp))
    }

    #[test]
    fn only_the_key_behind_the_descriptor_is_accepted() {
        assert!(check_key(TPRV, &watched()).is_ok());
        let other = "tprv8ZgxMBicQKsPd9TeAdPADNnSyH9SSUUbTVeFszDE23Ki6TBB5nCefAdHkK8Fm3qMQR6sHwA56zqRmKmxnHk37JkiFzvncDqoKmPWubu7hDF";
        let e = check_key(other, &watched()).unwrap_err().to_string();
        assert!(e.contains("not the one behind"), "{e}");
        let e = check_key("abandon abandon", &watched())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("not an extended private key") && !e.contains("abandon"),
            "{e}"
        );
    }

    #[test]
    fn the_seed_round_trips_under_its_password_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seed.age");
        let pw = Secret::new("correct horse");
        write_seed(&path, TPRV, &pw, false).unwrap();
        let raw = std::fs::read(&path).unwrap();
        assert!(!String::from_utf8_lossy(&raw).contains("tprv"), "encrypted");
        assert_eq!(read_seed(&path, &pw).unwrap().as_str(), TPRV);
        let e = read_seed(&path, &Secret::new("wrong"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot decrypt"), "{e}");
        let e = write_seed(&path, TPRV, &pw, false).unwrap_err().to_string();
        assert!(e.contains("--force"), "{e}");
    }

    #[test]
    fn the_hot_key_signs_only_transfers_and_children_paying_cold_or_own() {
        use bdk_wallet::bitcoin::hashes::Hash as _;
        use bdk_wallet::bitcoin::{Amount, FeeRate};
        let (mut w, _) = bdk_wallet::test_utils::get_funded_wallet_wpkh();
        let cold =
            ScriptBuf::new_p2wpkh(&bdk_wallet::bitcoin::WPubkeyHash::from_byte_array([7; 20]));
        let thief =
            ScriptBuf::new_p2wpkh(&bdk_wallet::bitcoin::WPubkeyHash::from_byte_array([9; 20]));
        let build = |w: &mut Wallet, to: &ScriptBuf| {
            let mut b = w.build_tx();
            b.add_recipient(to.clone(), Amount::from_sat(10_000))
                .fee_rate(FeeRate::from_sat_per_vb_u32(2));
            b.finish().unwrap()
        };
        let record = |kind: &str| TransferRecord {
            txid: "t".into(),
            kind: kind.into(),
            psbt: String::new(),
            destination: String::new(),
            amount_sat: 10_000,
            change_sat: 0,
            fee_sat: 0,
            fee_rate_sat_per_kvb: 2_000,
            inputs: vec![],
            created_at: 0,
            broadcast_at: None,
            source: "test".into(),
            replaces: None,
        };
        let to_cold = build(&mut w, &cold);
        let allowed = [cold.clone()];
        assert!(check_signable(&w, &allowed, &record("transfer"), &to_cold).is_ok());
        assert!(check_signable(&w, &allowed, &record("cpfp"), &to_cold).is_ok());
        let e = check_signable(&w, &allowed, &record("bump"), &to_cold).unwrap_err();
        assert!(e.to_string().contains("not a bump"), "{e}");
        let stolen = build(&mut w, &thief);
        let e = check_signable(&w, &allowed, &record("transfer"), &stolen).unwrap_err();
        assert!(
            e.to_string()
                .contains("neither cold storage nor this wallet"),
            "{e}"
        );
        // The same transaction with cold storage no longer configured.
        let e = check_signable(&w, &[], &record("transfer"), &to_cold).unwrap_err();
        assert!(matches!(e, SpendError::HotRefused(_)), "{e}");
    }
}
