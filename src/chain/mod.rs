//! The only module that talks to Electrum servers.
//!
//! A dedicated thread owns the connection (electrum-client is blocking): it subscribes to
//! headers and to the scripts it is told to watch, waits for the server to push a
//! notification, syncs just the scripts that changed through BDK, and hands the result
//! to the payment processor as a `ChainEvent`. On any failure it moves to the next
//! server with backoff and jitter and catches up on everything it may have missed.

mod conn;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bdk_electrum::electrum_client::ElectrumApi;
use bdk_wallet::bitcoin::ScriptBuf;
use bdk_wallet::{Update, Wallet};
use tokio::sync::mpsc;

/// Scripts per Electrum batch request during sync.
const SYNC_BATCH_SIZE: usize = 50;
/// Longest time without a request. A notification that arrives in the same read as a
/// response sits in the client's buffer where a socket peek cannot see it; a ping makes
/// the client process it, so this bounds the delay of that rare case. It also keeps the
/// session alive (ElectrumX drops sessions idle for 600 s).
const SWEEP: Duration = Duration::from_secs(1);
/// Longest wait between looks at the command queue.
const COMMAND_POLL: Duration = Duration::from_millis(50);
/// Backoff after a failed connection: first step and ceiling.
const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

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
    /// Safety-net resync of all watched scripts.
    pub check_interval: Duration,
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
    /// New chain data for these receive indices (all watched ones when `full`).
    Update {
        /// To apply to the wallet.
        update: Box<Update>,
        /// Receive indices whose scripts were synced.
        indices: BTreeSet<u32>,
        /// When the notification that caused this arrived (None for polls/catch-up).
        notified_at: Option<Instant>,
        /// New tip height, if the tip moved.
        tip: Option<u32>,
    },
}

/// Instructions to the chain thread.
#[derive(Debug)]
pub enum ChainCommand {
    /// Subscribe to this receive index's script.
    Watch(u32, ScriptBuf),
    /// Stop watching.
    Unwatch(u32),
    /// Sync every revealed script now (reconcile).
    SyncAll,
    /// Close the session and end the thread.
    Shutdown,
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
        watched: BTreeMap<u32, ScriptBuf>,
        status: Arc<Mutex<ChainStatus>>,
        events: mpsc::Sender<ChainEvent>,
    ) -> Result<ChainHandle, ChainError> {
        let tls = conn::tls_config(settings.ca_file.as_deref())?;
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("chain".into())
            .spawn(move || {
                Worker {
                    settings,
                    tls,
                    wallet,
                    watched,
                    status,
                    events,
                    cmds: rx,
                }
                .run()
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

    /// Asks the thread to stop and waits for it (at most one request timeout).
    pub fn shutdown(mut self) {
        let _already_stopped = self.cmds.send(ChainCommand::Shutdown);
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
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
    let c = conn::connect(server, &tls, timeout)?;
    let h = req(
        "headers subscribe",
        c.client.inner.block_headers_subscribe(),
    )?;
    Ok(h.height as u32)
}

enum Exit {
    Shutdown,
    Failed(ChainError),
}

struct Worker {
    settings: ChainSettings,
    tls: Arc<rustls::ClientConfig>,
    wallet: Arc<Mutex<Wallet>>,
    watched: BTreeMap<u32, ScriptBuf>,
    status: Arc<Mutex<ChainStatus>>,
    events: mpsc::Sender<ChainEvent>,
    cmds: std::sync::mpsc::Receiver<ChainCommand>,
}

impl Worker {
    fn run(mut self) {
        let mut backoff = BACKOFF_MIN;
        let mut attempt: usize = 0;
        let mut sessions: u64 = 0;
        if self.settings.servers.is_empty() {
            return;
        }
        loop {
            let server = self.settings.servers[attempt % self.settings.servers.len()].clone();
            attempt += 1;
            let started = Instant::now();
            match self.session(&server, &mut sessions) {
                Exit::Shutdown => return,
                Exit::Failed(ChainError::HistoryEmptied) => {
                    tracing::info!(server = %server, "a watched address lost its only transaction; reopening the session to resync");
                    // Same server, no backoff, and not a reconnect an operator should count.
                    attempt -= 1;
                    sessions = sessions.saturating_sub(1);
                    continue;
                }
                Exit::Failed(e) => {
                    tracing::warn!(server = %server, error = %e, "Electrum session ended");
                    {
                        let mut st = self.status.lock().expect("status lock");
                        st.connected = false;
                        st.last_error = Some(e.to_string());
                    }
                    if self
                        .events
                        .blocking_send(ChainEvent::Disconnected {
                            server: server.to_string(),
                            error: e.to_string(),
                        })
                        .is_err()
                    {
                        return;
                    }
                }
            }
            // A session that lasted a while resets the backoff: the failure is fresh.
            if started.elapsed() > BACKOFF_MAX {
                backoff = BACKOFF_MIN;
            }
            let wait = jitter(backoff);
            backoff = (backoff * 2).min(BACKOFF_MAX);
            if self.sleep_or_shutdown(wait) {
                return;
            }
        }
    }

    /// Sleeps while still obeying commands; true when asked to shut down.
    fn sleep_or_shutdown(&mut self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            match self.cmds.recv_timeout(deadline - now) {
                Ok(ChainCommand::Shutdown)
                | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    return true;
                }
                Ok(ChainCommand::Watch(i, spk)) => {
                    self.watched.insert(i, spk);
                }
                Ok(ChainCommand::Unwatch(i)) => {
                    self.watched.remove(&i);
                }
                Ok(ChainCommand::SyncAll) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => return false,
            }
        }
    }

    fn session(&mut self, server: &Server, sessions: &mut u64) -> Exit {
        let c = match conn::connect(server, &self.tls, self.settings.timeout) {
            Ok(c) => c,
            Err(e) => return Exit::Failed(e),
        };
        match self.serve(server, &c, sessions) {
            Ok(()) => Exit::Shutdown,
            Err(e) => Exit::Failed(e),
        }
    }

    fn serve(
        &mut self,
        server: &Server,
        c: &conn::Conn,
        sessions: &mut u64,
    ) -> Result<(), ChainError> {
        let api = &c.client.inner;
        let header = req("headers subscribe", api.block_headers_subscribe())?;
        let mut tip = header.height as u32;
        let mut subscribed: BTreeMap<ScriptBuf, u32> = BTreeMap::new();
        for (&i, spk) in &self.watched {
            req("script subscribe", api.script_subscribe(spk))?;
            subscribed.insert(spk.clone(), i);
        }
        *sessions += 1;
        {
            let mut st = self.status.lock().expect("status lock");
            st.connected = true;
            st.server = Some(server.to_string());
            st.tls = server.tls;
            st.tip_height = Some(tip);
            st.last_error = None;
            if *sessions > 1 {
                st.reconnects += 1;
            }
        }
        tracing::info!(server = %server, tip, "connected to Electrum server");
        if self
            .events
            .blocking_send(ChainEvent::Connected {
                server: server.to_string(),
                tls: server.tls,
                tip,
            })
            .is_err()
        {
            return Ok(());
        }
        // Catch up on everything that happened while we were not listening.
        if !self.sync_all(c, None, Some(tip))? {
            return Ok(());
        }
        let mut last_request = Instant::now();
        let mut last_full = Instant::now();
        // Notifications that arrived while a request was in flight were read into the
        // client's buffers, where a socket peek cannot see them: look after every request.
        let mut drain = true;
        loop {
            // Commands first: a new payment's script must be watched before anyone pays it.
            let mut changed: BTreeSet<u32> = BTreeSet::new();
            let mut full = false;
            let mut notified_at = None;
            while let Ok(cmd) = self.cmds.try_recv() {
                match cmd {
                    ChainCommand::Shutdown => return Ok(()),
                    ChainCommand::Watch(i, spk) => {
                        if subscribed.contains_key(&spk) {
                            continue;
                        }
                        let status = req("script subscribe", api.script_subscribe(&spk))?;
                        last_request = Instant::now();
                        drain = true;
                        subscribed.insert(spk.clone(), i);
                        self.watched.insert(i, spk);
                        tracing::debug!(index = i, has_history = status.is_some(), "subscribed");
                        // Already has history: paid before we subscribed.
                        if status.is_some() {
                            changed.insert(i);
                            notified_at.get_or_insert_with(Instant::now);
                        }
                    }
                    ChainCommand::Unwatch(i) => {
                        if let Some(spk) = self.watched.remove(&i) {
                            subscribed.remove(&spk);
                            // Old servers lack unsubscribe; a stale subscription is harmless.
                            let _unsupported_is_fine = api.script_unsubscribe(&spk);
                            last_request = Instant::now();
                        }
                    }
                    ChainCommand::SyncAll => full = true,
                }
            }
            let mut new_tip = None;
            let readable = drain
                || (changed.is_empty()
                    && !full
                    && c.wait_readable(COMMAND_POLL)
                        .map_err(|e| ChainError::Request {
                            op: "wait",
                            detail: e.to_string(),
                        })?);
            drain = false;
            if readable || last_request.elapsed() >= SWEEP {
                // A ping makes the client read whatever the server pushed.
                loop {
                    req("ping", api.ping())?;
                    last_request = Instant::now();
                    let mut got = false;
                    while let Some(h) = req("headers pop", api.block_headers_pop())? {
                        got = true;
                        tip = h.height as u32;
                        new_tip = Some(tip);
                    }
                    for (spk, &i) in &subscribed {
                        if req("script pop", api.script_pop(spk))?.is_some() {
                            got = true;
                            changed.insert(i);
                        }
                    }
                    if !got {
                        break;
                    }
                    tracing::debug!(?changed, ?new_tip, "notification");
                    notified_at.get_or_insert_with(Instant::now);
                }
                if notified_at.is_some() {
                    self.status
                        .lock()
                        .expect("status lock")
                        .last_notification_at = Some(crate::clock::now());
                }
            }
            if last_full.elapsed() >= self.settings.check_interval {
                full = true;
            }
            if full {
                last_full = Instant::now();
                if !self.sync_all(c, notified_at, new_tip.or(Some(tip)))? {
                    return Ok(());
                }
                last_request = Instant::now();
                drain = true;
            } else if !changed.is_empty() || new_tip.is_some() {
                if !self.sync(c, &changed, notified_at, new_tip)? {
                    return Ok(());
                }
                last_request = Instant::now();
                drain = true;
            }
            if let Some(t) = new_tip {
                self.status.lock().expect("status lock").tip_height = Some(t);
            }
        }
    }

    /// Syncs every revealed script. Returns false when the processor is gone.
    fn sync_all(
        &mut self,
        c: &conn::Conn,
        notified_at: Option<Instant>,
        tip: Option<u32>,
    ) -> Result<bool, ChainError> {
        let request = {
            let w = self.wallet.lock().expect("wallet lock");
            crate::wallet::sync_all_request(&w, crate::clock::now())
        };
        let indices: BTreeSet<u32> = self.watched.keys().copied().collect();
        self.run_sync(c, request, indices, notified_at, tip)
    }

    fn sync(
        &mut self,
        c: &conn::Conn,
        indices: &BTreeSet<u32>,
        notified_at: Option<Instant>,
        tip: Option<u32>,
    ) -> Result<bool, ChainError> {
        let request = {
            let w = self.wallet.lock().expect("wallet lock");
            crate::wallet::sync_request(&w, indices, crate::clock::now())
        };
        self.run_sync(c, request, indices.clone(), notified_at, tip)
    }

    fn run_sync(
        &mut self,
        c: &conn::Conn,
        request: bdk_wallet::chain::spk_client::SyncRequest<(bdk_wallet::KeychainKind, u32)>,
        indices: BTreeSet<u32>,
        notified_at: Option<Instant>,
        tip: Option<u32>,
    ) -> Result<bool, ChainError> {
        let started = Instant::now();
        let response = req("sync", c.client.sync(request, SYNC_BATCH_SIZE, false))?;
        tracing::debug!(
            ?indices,
            ?tip,
            txs = response.tx_update.txs.len(),
            ms = started.elapsed().as_millis() as u64,
            "synced"
        );
        {
            let mut st = self.status.lock().expect("status lock");
            st.last_sync_at = Some(crate::clock::now());
            st.last_sync_ms = Some(started.elapsed().as_millis() as u64);
        }
        Ok(self
            .events
            .blocking_send(ChainEvent::Update {
                update: Box::new(response.into()),
                indices,
                notified_at,
                tip,
            })
            .is_ok())
    }
}

/// Backoff with ±50 % jitter so that many appliances do not reconnect in step.
fn jitter(d: Duration) -> Duration {
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
