//! Migration from the Electrum-daemon stack: its account keys (SLIP-132), its wallet
//! files and its JSON-RPC.

pub mod import;
pub mod rpc;
pub mod rpc_fees;
pub mod rpc_history;
pub mod rpc_methods;
pub mod rpc_shapes;
pub mod slip132;
pub mod wallet_file;
