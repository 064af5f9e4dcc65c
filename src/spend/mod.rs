//! Moving money: cold-storage transfers built as PSBTs (BIP174 v0) for an offline signer,
//! checked against what was built before they are broadcast, each broadcast confirmed by
//! a TOTP code. Pure checks live in `check` and `totp`; `build` uses BDK's TxBuilder.

pub mod broadcast;
pub mod build;
pub mod bump;
pub mod check;
pub mod cpfp;
pub mod facts;
pub mod hot;
pub mod totp;
pub mod watch;

use bdk_wallet::bitcoin::{Psbt, Transaction};

/// Lowest fee rate accepted, sat per 1000 vB (Bitcoin Core's default relay fee).
pub const MIN_FEE_RATE_KVB: u64 = 1_000;
/// Highest fee rate accepted, sat per 1000 vB (a typo guard: 1000 sat/vB).
pub const MAX_FEE_RATE_KVB: u64 = 1_000_000;

/// Why moving money was refused.
#[derive(Debug, thiserror::Error)]
pub enum SpendError {
    /// No cold-storage destination is configured.
    #[error(
        "no cold-storage destination is configured: set SNAKKAZ_PAY_COLD_STORAGE (configuration only, never the API) and restart"
    )]
    NoDestination,
    /// The fee rate is outside the accepted bounds.
    #[error(
        "fee rate {rate} sat/vB is out of bounds: give between {} and {} sat/vB (see `snakkaz-pay fees`)",
        crate::ops::rate::display(MIN_FEE_RATE_KVB),
        crate::ops::rate::display(MAX_FEE_RATE_KVB)
    )]
    FeeRate {
        /// The rate asked for, sat/vB.
        rate: String,
    },
    /// Not enough confirmed money.
    #[error(
        "insufficient funds: {needed} sat needed, {available} sat confirmed and spendable; lower the amount or wait for confirmations"
    )]
    InsufficientFunds {
        /// Needed (amount + fee, or the amount kept).
        needed: u64,
        /// Confirmed balance.
        available: u64,
    },
    /// Neither or both of `--keep-sat` / `--amount-sat`, or a zero amount.
    #[error("{0}")]
    Invalid(String),
    /// BDK could not build the transaction.
    #[error("building the transaction failed: {0}")]
    Build(String),
    /// The signed transaction is not the built one.
    #[error(transparent)]
    Check(#[from] check::CheckError),
    /// The TOTP code was refused.
    #[error(transparent)]
    Totp(#[from] totp::TotpError),
    /// The TOTP secret is missing or unreadable.
    #[error(
        "TOTP secret {path}: {detail}; run `snakkaz-pay totp setup` on the box (every broadcast needs a code)"
    )]
    TotpSecret {
        /// The file.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// The transaction was not built by this appliance.
    #[error(
        "this transaction was not built by `snakkaz-pay transfer create` on this appliance; refused"
    )]
    NotBuilt,
    /// The input is neither a PSBT nor a raw transaction.
    #[error("{0}")]
    Parse(String),
    /// No payment has this id.
    #[error("unknown payment {0}: check the id with `snakkaz-pay payment list`")]
    UnknownPayment(String),
    /// The wallet knows no such transaction.
    #[error(
        "unknown transaction {0}: this wallet has no such transaction (check the txid with `snakkaz-pay transfer list`)"
    )]
    UnknownTx(String),
    /// The payment does not need a CPFP.
    #[error("payment {id} is not stuck: {why}; nothing to do")]
    NotStuck {
        /// Payment id.
        id: String,
        /// Why (confirmed, already at the rate, nothing received).
        why: String,
    },
    /// The received output cannot pay the child's fee.
    #[error(
        "the received output of {value} sat is too small to pay a child fee of {fee} sat and leave a spendable output; ask for a lower --fee-rate"
    )]
    TooSmall {
        /// Value of the output(s) spent.
        value: u64,
        /// Fee the child would have to pay.
        fee: u64,
    },
    /// The transaction cannot be bumped.
    #[error("{0}")]
    NotBumpable(String),
    /// The asked rate does not beat the transaction's.
    #[error(
        "fee rate {asked} sat/vB is not higher than the transaction's {current} sat/vB (a replacement must also pay at least 1 sat/vB more over its own size); give a higher --fee-rate"
    )]
    RateNotHigher {
        /// The transaction's rate now, sat/vB.
        current: String,
        /// The rate asked for, sat/vB.
        asked: String,
    },
    /// The Electrum look-up needed for the package failed.
    #[error("{0}")]
    Lookup(String),
    /// Signing was asked for but hot mode is not configured.
    #[error(
        "hot mode is off: this appliance is watch-only; sign the PSBT offline, or set SNAKKAZ_PAY_HOT_SEED_FILE and run `snakkaz-pay hot import`"
    )]
    HotOff,
    /// The hot seed or its password could not be used.
    #[error("hot mode: {0}")]
    Hot(String),
    /// The hot key refuses to sign this transaction.
    #[error("hot mode: {0}")]
    HotRefused(String),
}

impl SpendError {
    /// A stable machine-readable code for the API and `--json`.
    pub fn code(&self) -> &'static str {
        match self {
            SpendError::NoDestination => "destination_not_configured",
            SpendError::FeeRate { .. } => "fee_rate_out_of_bounds",
            SpendError::InsufficientFunds { .. } => "insufficient_funds",
            SpendError::Invalid(_) | SpendError::Parse(_) => "invalid_request",
            SpendError::Build(_) => "build_failed",
            SpendError::Check(_) | SpendError::NotBuilt => "not_the_built_transaction",
            SpendError::Totp(_) => "wrong_totp",
            SpendError::TotpSecret { .. } => "totp_not_set_up",
            SpendError::UnknownPayment(_) => "unknown_payment",
            SpendError::UnknownTx(_) => "unknown_txid",
            SpendError::NotStuck { .. } => "not_stuck",
            SpendError::TooSmall { .. } => "insufficient_funds",
            SpendError::NotBumpable(_) => "not_bumpable",
            SpendError::RateNotHigher { .. } => "fee_rate_not_higher",
            SpendError::Lookup(_) => "electrum_unavailable",
            SpendError::HotOff => "hot_mode_off",
            SpendError::Hot(_) => "hot_mode_failed",
            SpendError::HotRefused(_) => "hot_sign_refused",
        }
    }
}

/// Checks a fee rate (sat/kvB) against the bounds.
pub fn check_fee_rate(kvb: u64) -> Result<(), SpendError> {
    if (MIN_FEE_RATE_KVB..=MAX_FEE_RATE_KVB).contains(&kvb) {
        Ok(())
    } else {
        Err(SpendError::FeeRate {
            rate: crate::ops::rate::display(kvb),
        })
    }
}

/// A signed transaction from what the operator hands back: a PSBT (base64 or binary,
/// finalized by the signer) or a raw transaction in hex.
pub fn parse_signed(input: &[u8]) -> Result<Transaction, SpendError> {
    use base64::Engine as _;
    use bdk_wallet::bitcoin::consensus::encode::deserialize;
    let text = std::str::from_utf8(input).map(str::trim).unwrap_or("");
    let psbt_bytes = if input.starts_with(b"psbt\xff") {
        Some(input.to_vec())
    } else if text.starts_with("cHNidP") {
        Some(
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|e| SpendError::Parse(format!("the PSBT's base64 is damaged: {e}")))?,
        )
    } else {
        None
    };
    if let Some(bytes) = psbt_bytes {
        let psbt = Psbt::deserialize(&bytes)
            .map_err(|e| SpendError::Parse(format!("not a valid PSBT: {e}")))?;
        let unfinished = psbt
            .inputs
            .iter()
            .position(|i| i.final_script_witness.is_none() && i.final_script_sig.is_none());
        if let Some(index) = unfinished {
            return Err(SpendError::Check(check::CheckError::Unsigned { index }));
        }
        // The fee is checked against the built transfer, not against a generic sanity limit.
        return Ok(psbt.extract_tx_unchecked_fee_rate());
    }
    let raw = hex::decode(text).map_err(|_| {
        SpendError::Parse(
            "give a signed PSBT (base64 or binary) or a signed raw transaction in hex".into(),
        )
    })?;
    deserialize(&raw).map_err(|e| SpendError::Parse(format!("not a valid transaction: {e}")))
}
