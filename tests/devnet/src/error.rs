//! Error types shared across the devnet.

use std::io;
use std::path::PathBuf;

/// bitcoind's JSON-RPC error codes that ElectrumX and our tools look at.
pub mod code {
    /// Generic error (bitcoind's RPC_MISC_ERROR).
    pub const MISC: i64 = -1;
    /// Unexpected type or value of a parameter.
    pub const INVALID_PARAMS: i64 = -3;
    /// No such transaction, block or address.
    pub const INVALID_ADDRESS_OR_KEY: i64 = -5;
    /// Height out of range and similar.
    pub const INVALID_PARAMETER: i64 = -8;
    /// Transaction or block could not be decoded.
    pub const DESERIALIZATION: i64 = -22;
    /// Inputs missing or already spent.
    pub const VERIFY_ERROR: i64 = -25;
    /// Refused by policy or consensus (bad signature, fee too low...).
    pub const VERIFY_REJECTED: i64 = -26;
    /// Already in the chain.
    pub const VERIFY_ALREADY_IN_CHAIN: i64 = -27;
    /// Still starting up (ElectrumX retries on this one).
    pub const IN_WARMUP: i64 = -28;
    /// Unknown method (JSON-RPC standard).
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// Request was not valid JSON.
    pub const PARSE_ERROR: i64 = -32700;
}

/// An error answered to a JSON-RPC caller: bitcoind's code plus a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (code {code})")]
pub struct RpcError {
    /// bitcoind's numeric error code (see [`code`]).
    pub code: i64,
    /// Human-readable reason.
    pub message: String,
}

impl RpcError {
    /// Builds an error with the given code and message.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
        }
    }

    /// A parameter was missing or had the wrong type.
    pub fn params(message: impl Into<String>) -> Self {
        Self::new(code::INVALID_PARAMS, message)
    }
}

/// Errors of the devnet tooling (processes, files, network), as opposed to RPC answers.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or socket operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying I/O error.
        #[source]
        source: io::Error,
    },
    /// The devnet answered a control call with an error.
    #[error("{0}")]
    Rpc(#[from] RpcError),
    /// An answer could not be understood.
    #[error("bad answer from {from}: {detail}")]
    Protocol {
        /// Who answered.
        from: String,
        /// What was wrong with it.
        detail: String,
    },
    /// A wait ran out of time.
    #[error("timed out after {secs}s waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long we waited.
        secs: u64,
    },
    /// A child process stopped unexpectedly.
    #[error("{what} exited ({status}); last lines of {}:\n{tail}", log.display())]
    ProcessDied {
        /// Which process.
        what: String,
        /// Its exit status.
        status: String,
        /// Its log file.
        log: PathBuf,
        /// The last lines of its log.
        tail: String,
    },
    /// Generating the TLS certificates failed.
    #[error("certificate generation: {0}")]
    Cert(#[from] rcgen::Error),
    /// Something the user asked for does not exist or is not running.
    #[error("{0}")]
    Usage(String),
}

impl Error {
    /// Wraps an I/O error with what was being done.
    pub fn io(what: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
        let what = what.into();
        move |source| Error::Io { what, source }
    }
}
