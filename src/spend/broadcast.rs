//! The broadcast path of a transfer: TOTP, "is it the built one", then the Electrum server.
//! Shared by the admin API (daemon running) — the only path that can broadcast.

use bdk_wallet::bitcoin::{Transaction, TxOut};

use super::check::{Built, check_signed};
use super::{SpendError, build, totp};
use crate::config::Config;
use crate::store::{Store, TransferRecord};

/// Reads and checks the TOTP secret file (0600, base32).
pub fn read_totp_secret(cfg: &Config) -> Result<zeroize::Zeroizing<Vec<u8>>, SpendError> {
    let path = &cfg.totp_secret_file;
    let fail = |detail: String| SpendError::TotpSecret {
        path: path.display().to_string(),
        detail,
    };
    let text = crate::secret::read_token_file(path).map_err(|e| {
        fail(match std::error::Error::source(&e) {
            Some(io) => format!("{e}: {io}"),
            None => e.to_string(),
        })
    })?;
    totp::decode_secret(text.expose())
        .ok_or_else(|| fail("not a base32 TOTP secret of at least 128 bits".into()))
}

/// Checks the code against the secret and the last used step; returns the step to store.
pub fn check_totp(cfg: &Config, store: &Store, code: &str, now: u64) -> Result<u64, SpendError> {
    let secret = read_totp_secret(cfg)?;
    let last = store
        .totp_last_step()
        .map_err(|e| SpendError::Build(e.to_string()))?;
    Ok(totp::verify(&secret, code, now, last)?)
}

/// The built transfer `signed` claims to be: by txid, else one spending the same coins
/// (a tampered transaction has another txid), else none.
pub fn find_record(store: &Store, signed: &Transaction) -> Result<TransferRecord, SpendError> {
    let txid = signed.compute_txid().to_string();
    let stored = |e: crate::store::StoreError| SpendError::Build(e.to_string());
    if let Some(r) = store.transfer(&txid).map_err(stored)? {
        return Ok(r);
    }
    let inputs: Vec<String> = signed
        .input
        .iter()
        .map(|i| i.previous_output.to_string())
        .collect();
    store
        .transfers()
        .map_err(stored)?
        .into_iter()
        .rev()
        .find(|r| r.inputs.iter().any(|i| inputs.contains(i)))
        .ok_or(SpendError::NotBuilt)
}

/// Checks `signed` against its built record; returns its fee.
pub fn check_against(
    record: &TransferRecord,
    signed: &Transaction,
    cfg: &Config,
) -> Result<u64, SpendError> {
    let psbt = build::record_psbt(record)?;
    let prevouts: Vec<TxOut> = psbt
        .inputs
        .iter()
        .zip(&psbt.unsigned_tx.input)
        .map(|(i, txin)| {
            i.witness_utxo.clone().or_else(|| {
                i.non_witness_utxo
                    .as_ref()
                    .and_then(|t| t.output.get(txin.previous_output.vout as usize).cloned())
            })
        })
        .collect::<Option<_>>()
        .ok_or_else(|| SpendError::Build("stored PSBT lacks an input's value".into()))?;
    let allowed = build::allowed_scripts(record, &psbt);
    // Only the configured cold storage and the record's own outputs are acceptable.
    let allowed: Vec<_> = allowed
        .into_iter()
        .filter(|s| {
            psbt.unsigned_tx
                .output
                .iter()
                .any(|o| &o.script_pubkey == s)
                || cfg
                    .cold_storage
                    .as_ref()
                    .is_some_and(|c| c.addresses.iter().any(|a| &a.script_pubkey() == s))
        })
        .collect();
    Ok(check_signed(
        &Built {
            tx: &psbt.unsigned_tx,
            prevouts: &prevouts,
            allowed: &allowed,
        },
        signed,
        cfg.network,
    )?)
}
