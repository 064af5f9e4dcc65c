//! The only module that talks to Electrum servers.
//!
//! A dedicated thread owns the connection (electrum-client is blocking). Its work follows
//! change, not history: each watched script's Electrum status hash is kept in the store
//! with the chain data it summarises, so a (re)connect subscribes in batches and syncs
//! only the scripts whose status moved; the safety net re-checks statuses, not histories.
//! Requests are paced within a cost budget modelled on ElectrumX's session accounting
//! (`budget`), and detection always goes first: commands (a new payment's subscription,
//! shutdown) and notified scripts are handled between every slice of background work.
//! On any failure it moves to the next server with backoff and jitter.

pub mod budget;
mod conn;
pub mod headers;
pub mod lookup;
mod status;
mod verified;
mod worker;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bdk_electrum::electrum_client::ElectrumApi;
use bdk_wallet::bitcoin::ScriptBuf;
use bdk_wallet::{Update, Wallet};
use tokio::sync::mpsc;

pub use crate::wallet::Key;
pub use status::of_history as status_of_history;

/// An Electrum server address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// Host name or IP.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// TLS (`ssl://`) or plain (`tcp://`).
    pub tls: bool,
}

impl std::fmt::Display for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls { "ssl" } else { "tcp" };
        write!(f, "{scheme}://{}:{}", self.host, self.port)
    }
}

/// Failures of the chain connection.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ChainError {
    /// TCP connect, resolution or protocol negotiation failed.
    #[error("cannot connect to Electrum server {server}: {detail}")]
    Connect {
        /// Server address.
        server: String,
        /// What went wrong.
        detail: String,
    },
    /// The TLS handshake failed (untrusted or invalid certificate...).
    #[error(
        "TLS with Electrum server failed: {0}; check the certificate or SNAKKAZ_PAY_ELECTRUM_CA_FILE"
    )]
    Tls(String),
    /// The CA file could not be used.
    #[error("Electrum CA file {path}: {detail}")]
    CaFile {
        /// File path.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// A request failed or timed out on an open session.
    #[error("Electrum request {op} failed: {detail}")]
    Request {
        /// Request.
        op: &'static str,
        /// Client's message.
        detail: String,
    },
    /// A watched script's history became empty; the session must be reopened.
    #[error("a watched address lost its only transaction (replaced or reorganised away)")]
    HistoryEmptied,
    /// The connection thread stopped.
    #[error("chain thread stopped")]
    Stopped,
}

fn req<T>(
    op: &'static str,
    r: Result<T, bdk_electrum::electrum_client::Error>,
) -> Result<T, ChainError> {
    r.map_err(|e| match e {
        // electrum-client types a script status as non-null, so the notification that a
        // watched script's history became empty (its only transaction replaced or
        // reorganised away) fails to parse and poisons the session. It is news, not a
        // fault: the worker reopens the session at once and resyncs.
        bdk_electrum::electrum_client::Error::JSON(ref j)
            if j.to_string().contains("invalid type: null") =>
        {
            ChainError::HistoryEmptied
        }
        e => ChainError::Request {
            op,
            detail: e.to_string(),
        },
    })
}

/// Settings of the chain thread.
#[derive(Debug, Clone)]
pub struct ChainSettings {
    /// Servers in order of preference.
    pub servers: Vec<Server>,
    /// PEM trust anchors for TLS servers; system roots when `None`.
    pub ca_file: Option<PathBuf>,
    /// Timeout of each request.
    pub timeout: Duration,
    /// How often the safety net starts re-checking every watched script's status.
    pub check_interval: Duration,
    /// Session cost background work may reach (ElectrumX units); 0 = unlimited server.
    pub cost_budget: u64,
    /// Scan both keychains for used addresses before anything else, with this stop gap
    /// (a new, restored or imported wallet); `None` once done.
    pub full_scan: Option<u32>,
}

/// What the chain thread reports.
#[derive(Debug)]
pub enum ChainEvent {
    /// A session is up.
    Connected {
        /// Server in use.
        server: String,
        /// Whether it is TLS.
        tls: bool,
        /// Server's tip height.
        tip: u32,
    },
    /// The session failed; the thread will try the next server.
    Disconnected {
        /// Server that failed.
        server: String,
        /// Why.
        error: String,
    },
    /// The first scan's findings: transactions of addresses used before, and the last
    /// used index of each keychain (applying the update reveals up to them).
    Scanned {
        /// To apply to the wallet.
        update: Box<Update>,
    },
    /// New chain data for these scripts.
    Update {
        /// To apply to the wallet.
        update: Box<Update>,
        /// The synced scripts and the Electrum status their data matches: persist them
        /// with the update, so that a reconnect knows they need no sync.
        statuses: Vec<(Key, status::Status)>,
        /// When the notification that caused this arrived (None for catch-up).
        notified_at: Option<Instant>,
        /// New tip height, if the tip moved.
        tip: Option<u32>,
        /// Unix seconds when the histories in this update were requested: an expiry
        /// before this moment was checked against fresh data.
        fetched_at: u64,
    },
}

/// Instructions to the chain thread.
#[derive(Debug)]
pub enum ChainCommand {
    /// Subscribe to this script now (a new payment's address: detection work).
    Watch(Key, ScriptBuf),
    /// Stop watching.
    Unwatch(Key),
    /// Sync these scripts now with fresh histories (expiry checks, failed commits).
    Refresh(Vec<Key>),
    /// Re-check every watched script's status now (admin resync).
    SyncAll,
    /// Close the session and end the thread.
    Shutdown,
}

/// A watched script as the processor hands it to the chain thread.
#[derive(Debug, Clone)]
pub struct Watched {
    /// Its script.
    pub spk: ScriptBuf,
    /// Its stored Electrum status (`None`: no history known).
    pub status: status::Status,
}

/// Live facts about the connection, for status, page and metrics.
#[derive(Debug, Clone, Default)]
pub struct ChainStatus {
    /// A session is up.
    pub connected: bool,
    /// Current or last server.
    pub server: Option<String>,
    /// Whether the session is TLS.
    pub tls: bool,
    /// Server's tip height.
    pub tip_height: Option<u32>,
    /// Unix seconds of the last notification received.
    pub last_notification_at: Option<u64>,
    /// Unix seconds of the last successful sync.
    pub last_sync_at: Option<u64>,
    /// Duration of the last sync in milliseconds.
    pub last_sync_ms: Option<u64>,
    /// Number of sessions opened after the first.
    pub reconnects: u64,
    /// Last connection error, if any.
    pub last_error: Option<String>,
    /// Scripts subscribed on the current session.
    pub subscriptions: u64,
    /// Scripts watched in all.
    pub watched: u64,
    /// Watched scripts not yet subscribed or whose change is not yet synced.
    pub backlog: u64,
    /// Unix seconds since which the backlog has been non-empty.
    pub backlog_since: Option<u64>,
    /// Smoothed time per Electrum request, in milliseconds (throttling shows here).
    pub request_ms: Option<u64>,
    /// Estimated session cost on the server (ElectrumX units).
    pub session_cost: u64,
    /// Unix seconds of recent session failures (last ten minutes).
    pub recent_failures: Vec<u64>,
    /// The server refused a subscription: its message.
    pub refused: Option<String>,
    /// The chain thread is running (false once it ended).
    pub thread_alive: bool,
    /// Times the chain thread was started again after it stopped unexpectedly.
    pub thread_restarts: u64,
    /// Unix seconds since which no session has been up (None while connected).
    pub down_since: Option<u64>,
}

/// Handle to the chain thread.
pub struct ChainHandle {
    cmds: std::sync::mpsc::Sender<ChainCommand>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ChainHandle {
    /// Starts the chain thread; events arrive on `events`.
    pub fn spawn(
        settings: ChainSettings,
        wallet: Arc<Mutex<Wallet>>,
        watched: BTreeMap<Key, Watched>,
        status: Arc<Mutex<ChainStatus>>,
        events: mpsc::Sender<ChainEvent>,
    ) -> Result<ChainHandle, ChainError> {
        let tls = conn::tls_config(settings.ca_file.as_deref())?;
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let mut st = status.lock().expect("status lock");
            st.thread_alive = true;
            st.down_since.get_or_insert_with(crate::clock::now);
        }
        let thread = std::thread::Builder::new()
            .name("chain".into())
            .spawn(move || {
                // Marks the thread dead however it ends, a panic included.
                let _alive = Alive(status.clone());
                worker::Worker::new(settings, tls, wallet, watched, status, events, rx).run();
            })
            .map_err(|e| ChainError::Connect {
                server: "-".into(),
                detail: format!("cannot start chain thread: {e}"),
            })?;
        Ok(ChainHandle {
            cmds: tx,
            thread: Some(thread),
        })
    }

    /// Sends a command; false when the thread has stopped.
    pub fn send(&self, cmd: ChainCommand) -> bool {
        self.cmds.send(cmd).is_ok()
    }

    /// Asks the thread to stop and waits for it at most `limit`; a thread stuck in a
    /// network call is left to end with the process.
    pub fn shutdown(mut self, limit: Duration) {
        let _already_stopped = self.cmds.send(ChainCommand::Shutdown);
        let Some(t) = self.thread.take() else { return };
        let deadline = Instant::now() + limit;
        while !t.is_finished() {
            if Instant::now() >= deadline {
                tracing::warn!(
                    "chain thread still in a network call; leaving it to exit with the process"
                );
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if t.join().is_err() {
            tracing::error!("chain thread panicked");
        }
    }
}

/// Verifies that a TLS server presents a certificate we trust (used by `init`/tests).
pub fn probe(
    server: &Server,
    ca_file: Option<&std::path::Path>,
    timeout: Duration,
) -> Result<u32, ChainError> {
    let tls = conn::tls_config(ca_file)?;
    // A probe checks that the server answers, not what it says: no header chain.
    let guard = verified::Guard::new(bdk_wallet::bitcoin::Network::Bitcoin, Vec::new());
    let c = conn::connect(server, &tls, &guard, timeout)?;
    let h = req(
        "headers subscribe",
        c.client.inner.inner.block_headers_subscribe(),
    )?;
    Ok(h.height as u32)
}

/// What a scan for addresses used before found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanFindings {
    /// Highest used index per keychain (`None`: none used).
    pub last_used: BTreeMap<bdk_wallet::KeychainKind, u32>,
    /// Transactions found.
    pub txs: usize,
}

/// Scans both keychains of `wallet` on `server` for addresses used before, with `gap`
/// unused ones in a row ending each keychain (what `init` reports; the daemon repeats the
/// scan at its first start and keeps what it finds).
pub fn scan_used(
    server: &Server,
    ca_file: Option<&std::path::Path>,
    timeout: Duration,
    wallet: &Wallet,
    gap: u32,
) -> Result<ScanFindings, ChainError> {
    let tls = conn::tls_config(ca_file)?;
    let guard = verified::Guard::new(wallet.network(), Vec::new());
    let c = conn::connect(server, &tls, &guard, timeout)?;
    let request = wallet.start_full_scan_at(crate::clock::now()).build();
    let response = req(
        "full scan",
        c.client.full_scan(request, gap as usize, 25, false),
    )?;
    Ok(ScanFindings {
        last_used: response.last_active_indices.into_iter().collect(),
        txs: response.tx_update.txs.len(),
    })
}

/// Clears `thread_alive` when the chain thread ends, by return or by panic.
struct Alive(Arc<Mutex<ChainStatus>>);

impl Drop for Alive {
    fn drop(&mut self) {
        let mut st = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        st.thread_alive = false;
        st.connected = false;
        if std::thread::panicking() {
            st.last_error =
                Some("the chain thread crashed (see the log); it is being restarted".into());
        }
    }
}

/// Backoff with ±50 % jitter so that many appliances do not reconnect in step.
pub(crate) fn jitter(d: Duration) -> Duration {
    crate::net::jitter(d, 500, 1500)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_half_to_one_and_a_half() {
        for _ in 0..200 {
            let j = jitter(Duration::from_millis(1000));
            assert!(
                j >= Duration::from_millis(500) && j <= Duration::from_millis(1500),
                "{j:?}"
            );
        }
    }

    #[test]
    fn server_display_uses_guide_schemes() {
        let s = Server {
            host: "h".into(),
            port: 1,
            tls: true,
        };
        assert_eq!(s.to_string(), "ssl://h:1");
        let s = Server {
            host: "h".into(),
            port: 2,
            tls: false,
        };
        assert_eq!(s.to_string(), "tcp://h:2");
    }
}
