//! Operator look-ups and routine procedures: transactions, fees (and, later, reconcile
//! and archive). Electrum is reached through `chain::lookup` sessions, the store through
//! its typed API; the arithmetic lives in pure functions beside each command.

pub mod archive;
pub mod fees;
pub mod rate;
pub mod reconcile;
pub mod txinfo;

use std::time::Duration;

use crate::chain::lookup::Lookup;
use crate::chain::{ChainError, Server};
use crate::config::Config;
use crate::store::StoreError;

/// Longest an operator look-up may take in all (many small Electrum requests).
pub const LOOKUP_DEADLINE: Duration = Duration::from_secs(60);

/// Why a look-up failed.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// The server does not know this transaction.
    #[error(
        "unknown transaction {0}: the Electrum server has no such transaction (check the txid; a dropped or replaced transaction is gone)"
    )]
    UnknownTx(String),
    /// The query names nothing this appliance or the chain knows.
    #[error("{0}")]
    NotFound(String),
    /// The request is malformed.
    #[error("{0}")]
    Invalid(String),
    /// The Electrum server could not be reached or refused.
    #[error("{0}; check ELECTRUM_HOST / SNAKKAZ_PAY_ELECTRUM_SERVERS and that the server is up")]
    Chain(#[from] ChainError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl OpsError {
    /// A stable machine-readable code for the API and `--json`.
    pub fn code(&self) -> &'static str {
        match self {
            OpsError::UnknownTx(_) => "unknown_txid",
            OpsError::NotFound(_) => "not_found",
            OpsError::Invalid(_) => "invalid_request",
            OpsError::Chain(_) => "electrum_unavailable",
            OpsError::Store(_) => "internal",
        }
    }
}

/// The Electrum servers of the configuration, in failover order.
pub fn servers(cfg: &Config) -> Vec<Server> {
    cfg.servers
        .iter()
        .map(|s| Server {
            host: s.host.clone(),
            port: s.port,
            tls: s.tls,
        })
        .collect()
}

/// Opens a look-up session on the configured servers.
pub fn open_lookup(cfg: &Config) -> Result<Lookup, OpsError> {
    Ok(Lookup::open(
        &servers(cfg),
        cfg.ca_file.as_deref(),
        cfg.electrum_timeout,
    )?)
}
