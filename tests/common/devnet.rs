//! Test harness for the devnet: a regtest chain (in this process) behind a real
//! ElectrumX (a child process), both private to one test.
//!
//! ```ignore
//! let devnet = Devnet::start();                 // ≥ 101 blocks, ElectrumX serving
//! let txid = devnet.pay("bcrt1q...", 50_000);   // faucet payment, in the mempool
//! devnet.mine(1);                               // confirms it; ElectrumX caught up
//! ```
//!
//! Every process started here is killed when the `Devnet` is dropped (also on a
//! panic); ElectrumX additionally exits by itself if the test process dies.

#![allow(dead_code)] // Each test binary uses a different part of the harness.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Once;
use std::time::Duration;

use devnet::client::RpcClient;
pub use devnet::electrumx::CostLimits;
use devnet::electrumx::{self, ElectrumX, Ports};
use devnet::http::RpcServer;
use devnet::node::Node;
use devnet::tls::{self, CertFiles};
use devnet::{error, probe};
use serde_json::json;
use tempfile::TempDir;

/// Blocks mined before ElectrumX starts: the first coinbases are then spendable.
pub const INITIAL_BLOCKS: u32 = devnet::stack::INITIAL_BLOCKS;
/// How long ElectrumX may take to start and catch up.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long ElectrumX may take to follow a new block or a reorg.
pub const FOLLOW_TIMEOUT: Duration = Duration::from_secs(30);

/// The loopback address ElectrumX listens on.
const HOST: &str = "127.0.0.1";

/// A private devnet + ElectrumX for one test.
pub struct Devnet {
    // Field order is drop order: ElectrumX goes before the node it polls, the
    // temporary directory last.
    electrumx: Option<ElectrumX>,
    server: RpcServer,
    rpc: RpcClient,
    config: electrumx::Config,
    ports: Ports,
    dir: TempDir,
}

/// The ElectrumX virtualenv shared by all tests (`$DEVNET_VENV` or `target/devnet-venv`).
pub fn venv() -> PathBuf {
    std::env::var_os("DEVNET_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/devnet-venv"))
}

/// Installs the virtualenv once per test process unless it is complete already (the
/// script checks that cheaply, and serialises concurrent installs with a lock).
fn ensure_venv() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/devnet");
        let status = Command::new(&script)
            .arg("install")
            .env("DEVNET_VENV", venv())
            .status()
            .unwrap_or_else(|e| panic!("run {} install: {e}", script.display()));
        assert!(
            status.success(),
            "`scripts/devnet install` failed ({status})"
        );
    });
}

impl Devnet {
    /// Starts a fresh devnet with [`INITIAL_BLOCKS`] blocks and ElectrumX (TCP and
    /// SSL) in front of it, and returns once ElectrumX serves the tip. Panics, with
    /// the tail of ElectrumX's log, when anything fails.
    pub fn start() -> Devnet {
        Self::start_with(CostLimits::Default)
    }

    /// As [`Devnet::start`], with ElectrumX's session cost limits set explicitly. Every
    /// test runs against ElectrumX's defaults unless it says why it needs otherwise.
    pub fn start_with(cost_limits: CostLimits) -> Devnet {
        Self::try_start(cost_limits).unwrap_or_else(|e| panic!("devnet failed to start: {e}"))
    }

    fn try_start(cost_limits: CostLimits) -> Result<Devnet, error::Error> {
        ensure_venv();
        let dir = tempfile::Builder::new()
            .prefix("devnet-")
            .tempdir()
            .map_err(error::Error::io("create devnet temp dir"))?;
        let server = RpcServer::start(Node::new(), SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let rpc = RpcClient::new(&server.url())?;
        let height = rpc.call_u64("devnet_mine", json!([INITIAL_BLOCKS]))?;
        let certs = tls::generate(dir.path())?;
        let config = electrumx::Config {
            venv: venv(),
            dir: dir.path().to_path_buf(),
            daemon_url: server.url(),
            certs,
            tcp_port: 0,
            ssl_port: 0,
            realistic: false,
            watch_parent: true,
            cost_limits,
        };
        let ex = ElectrumX::spawn(&config, START_TIMEOUT)?;
        let ports = ex.ports;
        let devnet = Devnet {
            electrumx: Some(ex),
            server,
            rpc,
            config,
            ports,
            dir,
        };
        devnet.try_wait_electrum_height(height as u32, START_TIMEOUT)?;
        Ok(devnet)
    }

    /// The host ElectrumX listens on (an IP literal; the certificate is also valid
    /// for `localhost`).
    pub fn electrum_host(&self) -> &str {
        HOST
    }

    /// ElectrumX's plain TCP port.
    pub fn electrum_tcp_port(&self) -> u16 {
        self.ports.tcp
    }

    /// ElectrumX's TLS port.
    pub fn electrum_tls_port(&self) -> u16 {
        self.ports.ssl
    }

    /// `tcp://127.0.0.1:PORT`, as electrum-client takes it.
    pub fn electrum_tcp_url(&self) -> String {
        format!("tcp://{HOST}:{}", self.ports.tcp)
    }

    /// PEM file of the CA that signed ElectrumX's certificate.
    pub fn ca_file(&self) -> &Path {
        &self.config.certs.ca
    }

    /// The generated certificate files.
    pub fn certs(&self) -> &CertFiles {
        &self.config.certs
    }

    /// The devnet's JSON-RPC URL (with credentials).
    pub fn rpc_url(&self) -> String {
        self.server.url()
    }

    /// A client for the devnet's JSON-RPC (bitcoind methods and `devnet_*`).
    pub fn rpc(&self) -> &RpcClient {
        &self.rpc
    }

    /// This test's temporary directory (ElectrumX's DB, log, certificates).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// ElectrumX's log file.
    pub fn electrumx_log(&self) -> PathBuf {
        self.config.log()
    }

    /// The last lines of ElectrumX's log.
    pub fn electrumx_log_tail(&self) -> String {
        electrumx::tail(&self.config.log(), 40)
    }

    fn call(&self, method: &str, params: serde_json::Value) -> serde_json::Value {
        self.rpc
            .call(method, params.clone())
            .unwrap_or_else(|e| panic!("devnet {method} {params}: {e}"))
    }

    /// Pays `sats` from the faucet to `address` (into the mempool); returns the txid.
    pub fn pay(&self, address: &str, sats: u64) -> String {
        self.call("devnet_pay", json!([address, sats]))
            .as_str()
            .expect("txid")
            .to_owned()
    }

    /// Pays every `(address, sats)` in one faucet transaction; returns the txid.
    pub fn pay_many(&self, to: &[(String, u64)]) -> String {
        self.call("devnet_pay_many", json!([to]))
            .as_str()
            .expect("txid")
            .to_owned()
    }

    /// Mines `n` blocks (the mempool goes into the first) and waits until ElectrumX
    /// (when running) serves the new tip; returns the new height.
    pub fn mine(&self, n: u32) -> u32 {
        let height = self
            .call("devnet_mine", json!([n]))
            .as_u64()
            .expect("height") as u32;
        self.follow(height);
        height
    }

    /// Replaces the last `depth` blocks with `depth + 1` empty ones; their transactions
    /// return to the mempool except those in `drop`. Waits for ElectrumX (when
    /// running); returns the new height.
    pub fn reorg(&self, depth: u32, drop: &[&str]) -> u32 {
        let height = self
            .call("devnet_reorg", json!([depth, drop]))
            .as_u64()
            .expect("height") as u32;
        self.follow(height);
        height
    }

    /// Double-spends the faucet payment `txid` with a higher fee, paying `address`
    /// (the faucet when `None`); returns the replacement's txid.
    pub fn replace(&self, txid: &str, address: Option<&str>) -> String {
        self.call("devnet_replace", json!([txid, address]))
            .as_str()
            .expect("txid")
            .to_owned()
    }

    /// Sets what `estimatesmartfee` answers (ElectrumX caches it until the next block).
    pub fn fee(&self, sat_per_vb: u64) {
        self.call("devnet_fee", json!([sat_per_vb]));
    }

    /// The devnet's tip height.
    pub fn tip_height(&self) -> u32 {
        self.call("getblockcount", json!([]))
            .as_u64()
            .expect("height") as u32
    }

    /// The faucet's own address (coinbases pay it).
    pub fn faucet_address(&self) -> String {
        self.call("devnet_status", json!([]))["faucet_address"]
            .as_str()
            .expect("address")
            .to_owned()
    }

    /// Submits a raw transaction straight to the devnet (`sendrawtransaction`).
    pub fn send_raw(&self, hex: &str) -> Result<String, error::Error> {
        self.rpc.call_str("sendrawtransaction", json!([hex]))
    }

    /// Polls ElectrumX until it reports tip height `height` (or more); panics after
    /// [`FOLLOW_TIMEOUT`].
    pub fn wait_electrum_height(&self, height: u32) {
        self.try_wait_electrum_height(height, FOLLOW_TIMEOUT)
            .unwrap_or_else(|e| panic!("{e}\nElectrumX log:\n{}", self.electrumx_log_tail()));
    }

    fn try_wait_electrum_height(&self, height: u32, timeout: Duration) -> Result<(), error::Error> {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.ports.tcp));
        probe::wait_height(addr, u64::from(height), timeout)
    }

    fn follow(&self, height: u32) {
        if self.electrumx.is_some() {
            self.wait_electrum_height(height);
        }
    }

    /// Whether ElectrumX is running.
    pub fn electrumx_running(&self) -> bool {
        self.electrumx.is_some()
    }

    /// Stops ElectrumX gracefully (its ports close; its DB is kept).
    pub fn stop_electrumx(&mut self) {
        if let Some(mut ex) = self.electrumx.take() {
            ex.stop();
        }
    }

    /// Starts ElectrumX again on the same ports with the same DB, and waits until it
    /// serves the devnet's tip.
    pub fn start_electrumx(&mut self) {
        assert!(self.electrumx.is_none(), "ElectrumX is already running");
        let mut config = self.config.clone();
        config.tcp_port = self.ports.tcp;
        config.ssl_port = self.ports.ssl;
        let ex = ElectrumX::spawn(&config, START_TIMEOUT)
            .unwrap_or_else(|e| panic!("ElectrumX failed to restart: {e}"));
        assert_eq!(ex.ports, self.ports, "ElectrumX came back on other ports");
        self.electrumx = Some(ex);
        let tip = self.tip_height();
        self.wait_electrum_height(tip);
    }
}
