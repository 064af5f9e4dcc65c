//! The test account the appliance watches (public keys only) and its signers: BDK and the
//! real Electrum (Debian's `electrum`), the TOTP codes that confirm broadcasts, and the
//! cold destination of the fee-bump and hot-mode tests.

use std::str::FromStr;

use base64::Engine as _;
use bdk_wallet::bitcoin::bip32::{DerivationPath, Xpriv, Xpub};
use bdk_wallet::bitcoin::secp256k1::Secp256k1;
use bdk_wallet::bitcoin::{Address, Network, Psbt, ScriptBuf};
use bdk_wallet::{SignOptions, Wallet};
use serde_json::Value;

use super::appliance::Appliance;
use super::electrum::Electrum;

/// BDK's test key (`test_utils::get_test_wpkh_and_change_desc`).
pub const TEST_TPRV: &str = "tprv8ZgxMBicQKsPdy6LMhUtFHAgpocR8GC6QmwMSFpZs7h6Eziw3SpThFfczTDh5rW2krkqffa11UpX3XkeTTB2FvzZKWXqPY54Y6Rq4AQ5R8L";
/// The cold-storage destination (BIP173's regtest P2WPKH vector: nobody's key here).
pub const COLD: &str = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";
/// Somebody else's address a tampered PSBT pays.
pub const THIEF: &str = "bcrt1qzyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygs2ns5wu";

/// The script of a regtest address.
pub fn spk(address: &str) -> ScriptBuf {
    Address::from_str(address)
        .unwrap()
        .assume_checked()
        .script_pubkey()
}

/// The account key m/84'/1'/0'.
pub fn account_xprv() -> Xpriv {
    let secp = Secp256k1::new();
    let root = Xpriv::from_str(TEST_TPRV).unwrap();
    root.derive_priv(&secp, &DerivationPath::from_str("m/84h/1h/0h").unwrap())
        .unwrap()
}

/// The appliance's watch-only descriptors of the test account: (receive, change).
pub fn watch_descriptors() -> (String, String) {
    let secp = Secp256k1::new();
    let root = Xpriv::from_str(TEST_TPRV).unwrap();
    let fp = root.fingerprint(&secp);
    let tpub = Xpub::from_priv(&secp, &account_xprv());
    (
        format!("wpkh([{fp}/84h/1h/0h]{tpub}/0/*)"),
        format!("wpkh([{fp}/84h/1h/0h]{tpub}/1/*)"),
    )
}

/// BDK holding the private descriptors of the same account.
pub fn bdk_signer() -> Wallet {
    let d = format!("wpkh({TEST_TPRV}/84'/1'/0'/0/*)");
    let c = format!("wpkh({TEST_TPRV}/84'/1'/0'/1/*)");
    Wallet::create(d, c)
        .network(Network::Regtest)
        .create_wallet_no_persist()
        .unwrap()
}

/// A PSBT from base64.
pub fn psbt(b64: &str) -> Psbt {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .unwrap();
    Psbt::deserialize(&bytes).unwrap()
}

/// Base64 of a PSBT.
pub fn b64(psbt: &Psbt) -> String {
    base64::engine::general_purpose::STANDARD.encode(psbt.serialize())
}

/// Signs every input with the account key (rust-bitcoin) and finalizes (BDK).
pub fn bdk_sign(psbt_b64: &str) -> Psbt {
    let mut p = psbt(psbt_b64);
    let secp = Secp256k1::new();
    let root = Xpriv::from_str(TEST_TPRV).unwrap();
    let signed = p.sign(&root, &secp).expect("every input signed");
    assert_eq!(signed.len(), p.inputs.len());
    let finalized = bdk_signer()
        .finalize_psbt(&mut p, SignOptions::default())
        .unwrap();
    assert!(finalized, "BDK finalized every input");
    p
}

/// The real Electrum, offline, holding the account key.
pub fn electrum_signer() -> Electrum {
    let electrum = Electrum::new();
    let vprv = electrum.offline(&["convert_xkey", &account_xprv().to_string(), "p2wpkh"]);
    electrum.offline(&["restore", &vprv]);
    electrum
}

/// The code of the current step plus `step_offset` (a used step cannot be used again).
pub fn code(secret: &[u8], step_offset: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    snakkaz_pay::spend::totp::code_at(secret, now / 30 + step_offset)
}

/// Runs `totp setup --json` and returns the secret.
pub fn totp_secret(app: &Appliance) -> Vec<u8> {
    let (code, out, err) = app.cli(&["totp", "setup", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let uri = v["otpauth_uri"].as_str().unwrap();
    let b32 = uri
        .split("secret=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    snakkaz_pay::spend::totp::decode_secret(b32)
        .unwrap()
        .to_vec()
}

/// `transfer broadcast --json SIGNED` with the TOTP code on stdin.
pub fn broadcast(app: &Appliance, signed: &str, totp: &str) -> (i32, Value, String) {
    let (code, out, err) = app.cli_with_input(&["transfer", "broadcast", "--json", signed], totp);
    (code, serde_json::from_str(&out).unwrap_or(Value::Null), err)
}

/// Runs a command with `--json` and parses its standard output (Null when none).
pub fn cli_json(app: &Appliance, args: &[&str]) -> (i32, Value, String) {
    let mut all = args.to_vec();
    all.push("--json");
    let (code, out, err) = app.cli(&all);
    (code, serde_json::from_str(&out).unwrap_or(Value::Null), err)
}
