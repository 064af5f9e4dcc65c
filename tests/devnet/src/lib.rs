//! `devnet`: a regtest chain that plays bitcoind's JSON-RPC for ElectrumX, with a
//! faucet, RBF and reorgs on request. Used by the tests and the demo, never shipped.

pub mod chain;
pub mod client;
pub mod electrumx;
pub mod error;
pub mod faucet;
pub mod http;
pub mod mempool;
pub mod mining;
pub mod node;
pub mod probe;
pub mod rpc;
pub mod stack;
pub mod tls;
pub mod validation;
