//! The chain thread: one session at a time, work in small slices, detection first.
//!
//! Each turn of the session loop: commands (shutdown, a new payment's subscription),
//! then notifications, then one chunk of scripts whose status moved, and only when none
//! of that is waiting, one slice of background work (subscribing the rest of the watched
//! scripts after a connect, newest first, or the safety net's status checks), paced by
//! the cost budget. A slice is small, so nothing waits behind background work for longer
//! than about one round trip.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bdk_electrum::electrum_client::ElectrumApi;
use bdk_wallet::bitcoin::ScriptBuf;
use bdk_wallet::{KeychainKind, Wallet};
use tokio::sync::mpsc;

use super::budget::{Budget, cost};
use super::status::{self, Status};
use super::{ChainCommand, ChainError, ChainEvent, ChainSettings, ChainStatus, Key, Server};
use super::{Watched, conn, jitter, req};

/// Scripts per BDK sync: bounds the time a sync holds the session and the size of the
/// batches electrum-client answers (its reader wakes every waiter per answer, so a batch
/// of n costs n² wake-ups).
const SYNC_CHUNK: usize = 25;
/// Scripts per Electrum batch request inside a sync.
const SYNC_BATCH_SIZE: usize = 25;
/// Scripts per background slice (subscribe or status check).
const SLICE: usize = 25;
/// Scripts per foreground subscribe batch (new payments arriving together).
const FOREGROUND_BATCH: usize = 100;
/// Safety-net checks per second at most, whatever the budget allows.
const SWEEP_MAX_PER_SEC: f64 = 20.0;
/// A notification can hide in the client's read buffer behind a response, where a socket
/// peek cannot see it (it happens when the server notifies right after answering, as after
/// a block). A ping after every sync reads most of them; one at least this often bounds
/// the rest, at 0.05 cost units per second.
const BUFFER_SWEEP: Duration = Duration::from_secs(2);
/// ElectrumX closes sessions idle for 600 s.
const KEEPALIVE: Duration = Duration::from_secs(60);
/// Longest wait between looks at the command queue.
const COMMAND_POLL: Duration = Duration::from_millis(50);
/// Least time between two passes over every subscription's notification queue (each
/// pass hashes every subscribed script).
const POP_INTERVAL: Duration = Duration::from_millis(200);
/// Backoff after a failed connection: first step and ceiling.
const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Immediate reopenings for an emptied history allowed within `EMPTIED_WINDOW`.
const EMPTIED_BURST: usize = 3;
const EMPTIED_WINDOW: Duration = Duration::from_secs(10);
/// Round trips measured before the smoothed request time is reported.
const MIN_REQUEST_SAMPLES: u32 = 8;
/// Session failures are remembered this long for health.
const FAILURE_MEMORY_SECS: u64 = 600;

enum Exit {
    Shutdown,
    /// Could not open a session (the server is away): an outage, reported as such.
    Unreachable(ChainError),
    /// An open session ended: counted, since a server that keeps dropping us is a problem
    /// of its own even while reconnects succeed.
    Dropped(ChainError),
}

/// The state of one session.
struct Session {
    tip: u32,
    new_tip: Option<u32>,
    subscribed: HashMap<ScriptBuf, Key>,
    /// Watched scripts still to subscribe, highest priority last (popped first).
    to_subscribe: Vec<Key>,
    /// Scripts to sync, with the status the server reported (the one to record).
    dirty: BTreeMap<Key, Status>,
    /// Scripts to re-check for the safety net, highest priority last.
    sweep: Vec<Key>,
    sweep_started: Instant,
    notified_at: Option<Instant>,
    last_request: Instant,
    last_pop: Instant,
    pop_due: bool,
    last_sweep_slice: Instant,
    served: bool,
}

/// Priority of a script for subscription and checks: newest receive addresses first
/// (the ones customers are paying now), then change.
fn priority((keychain, index): Key) -> (bool, u32) {
    (keychain == KeychainKind::External, index)
}

fn by_priority(mut keys: Vec<Key>) -> Vec<Key> {
    keys.sort_by_key(|k| priority(*k));
    keys
}

/// The chain thread's long-lived state.
pub(super) struct Worker {
    settings: ChainSettings,
    tls: Arc<rustls::ClientConfig>,
    /// The verified header chain, shared by every session to every server.
    guard: Arc<super::verified::Guard>,
    wallet: Arc<Mutex<Wallet>>,
    watched: BTreeMap<Key, ScriptBuf>,
    /// The status each script's delivered chain data matches (absent: no history).
    known: HashMap<Key, String>,
    status: Arc<Mutex<ChainStatus>>,
    events: mpsc::Sender<ChainEvent>,
    cmds: std::sync::mpsc::Receiver<ChainCommand>,
    /// Cost estimate per server, carried across sessions: ElectrumX keeps charging a
    /// closed session's cost to the next one from the same address.
    budgets: HashMap<String, Budget>,
    request_ms: Option<f64>,
    request_samples: u32,
}

impl Worker {
    pub(super) fn new(
        settings: ChainSettings,
        tls: Arc<rustls::ClientConfig>,
        wallet: Arc<Mutex<Wallet>>,
        watched: BTreeMap<Key, Watched>,
        status: Arc<Mutex<ChainStatus>>,
        events: mpsc::Sender<ChainEvent>,
        cmds: std::sync::mpsc::Receiver<ChainCommand>,
    ) -> Worker {
        let known = watched
            .iter()
            .filter_map(|(k, w)| w.status.clone().map(|s| (*k, s)))
            .collect();
        let guard = {
            let w = wallet.lock().expect("wallet lock");
            // The wallet's blocks near its tip, lowest first: the first server's chain
            // must contain one of them.
            let tip = w.local_chain().tip().height();
            let mut blocks: Vec<_> = w
                .local_chain()
                .iter_checkpoints()
                .take_while(|cp| tip - cp.height() <= super::headers::MAX_REORG)
                .map(|cp| (cp.height(), cp.hash()))
                .collect();
            blocks.reverse();
            super::verified::Guard::new(w.network(), blocks)
        };
        Worker {
            settings,
            tls,
            guard,
            wallet,
            watched: watched.into_iter().map(|(k, w)| (k, w.spk)).collect(),
            known,
            status,
            events,
            cmds,
            budgets: HashMap::new(),
            request_ms: None,
            request_samples: 0,
        }
    }

    pub(super) fn run(mut self) {
        let mut backoff = BACKOFF_MIN;
        let mut attempt: usize = 0;
        let mut sessions: u64 = 0;
        if self.settings.servers.is_empty() {
            return;
        }
        // Reopenings for an emptied history: a server that keeps sending them gets the
        // ordinary backoff instead of a busy loop.
        let mut emptied: Vec<Instant> = Vec::new();
        loop {
            emptied.retain(|t| t.elapsed() < EMPTIED_WINDOW);
            let server = self.settings.servers[attempt % self.settings.servers.len()].clone();
            attempt += 1;
            let mut served = false;
            match self.session(&server, &mut sessions, &mut served) {
                Exit::Shutdown => return,
                Exit::Dropped(ChainError::HistoryEmptied) if emptied.len() < EMPTIED_BURST => {
                    emptied.push(Instant::now());
                    tracing::info!(server = %server, "a watched address lost its only transaction; reopening the session to resync");
                    // Same server, no backoff, and not a reconnect an operator should count.
                    attempt -= 1;
                    sessions = sessions.saturating_sub(1);
                    continue;
                }
                Exit::Unreachable(e) => {
                    if !self.ended(&server, &e, false) {
                        return;
                    }
                }
                Exit::Dropped(e) => {
                    if !self.ended(&server, &e, true) {
                        return;
                    }
                }
            }
            // A session that did its job resets the backoff: the next failure is fresh.
            if served {
                backoff = BACKOFF_MIN;
            }
            let wait = jitter(backoff);
            backoff = (backoff * 2).min(BACKOFF_MAX);
            if self.sleep_or_shutdown(wait) {
                return;
            }
        }
    }

    /// Records a session's end; false when the processor is gone.
    fn ended(&mut self, server: &Server, e: &ChainError, dropped: bool) -> bool {
        tracing::warn!(server = %server, error = %e, "Electrum session ended");
        let now = crate::clock::now();
        {
            let mut st = self.status.lock().expect("status lock");
            st.connected = false;
            st.subscriptions = 0;
            st.last_error = Some(e.to_string());
            st.down_since.get_or_insert(now);
            if dropped {
                st.recent_failures.push(now);
            }
            st.recent_failures
                .retain(|&t| now.saturating_sub(t) < FAILURE_MEMORY_SECS);
        }
        self.events
            .blocking_send(ChainEvent::Disconnected {
                server: server.to_string(),
                error: e.to_string(),
            })
            .is_ok()
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
                Ok(ChainCommand::Watch(k, spk)) => {
                    self.watched.insert(k, spk);
                }
                Ok(ChainCommand::Unwatch(k)) => {
                    self.watched.remove(&k);
                    self.known.remove(&k);
                }
                Ok(ChainCommand::Refresh(_) | ChainCommand::SyncAll) => {
                    // Every session starts by checking every watched script.
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => return false,
            }
        }
    }

    fn session(&mut self, server: &Server, sessions: &mut u64, served: &mut bool) -> Exit {
        let c = match conn::connect(server, &self.tls, &self.guard, self.settings.timeout) {
            Ok(c) => c,
            Err(e) => return Exit::Unreachable(e),
        };
        let r = self.serve(server, &c, sessions, served);
        self.status.lock().expect("status lock").subscriptions = 0;
        match r {
            Ok(()) => Exit::Shutdown,
            Err(e) => Exit::Dropped(e),
        }
    }

    /// Charges a new session's opening to the server's estimate (a first estimate starts
    /// with it already counted).
    fn open_session(&mut self, server: &Server) {
        let limit = self.settings.cost_budget;
        match self.budgets.entry(server.to_string()) {
            std::collections::hash_map::Entry::Occupied(mut e) => e.get_mut().charge(cost::SESSION),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(Budget::new(limit, Instant::now()));
            }
        }
    }

    fn serve(
        &mut self,
        server: &Server,
        c: &conn::Conn,
        sessions: &mut u64,
        served: &mut bool,
    ) -> Result<(), ChainError> {
        let key = server.to_string();
        self.open_session(server);
        let api = &c.client.inner;
        let header = req("headers subscribe", api.block_headers_subscribe())?;
        // Everything the wallet knows is handed to the client, so that no known
        // transaction or proof is downloaded again.
        let (txs, anchors) = {
            let w = self.wallet.lock().expect("wallet lock");
            crate::wallet::cache_seed(&w)
        };
        c.client.populate_tx_cache(txs);
        c.client.populate_anchor_cache(anchors);
        if let Some(gap) = self.settings.full_scan {
            // Before anything is handed out: which addresses were used before us.
            let request = {
                let w = self.wallet.lock().expect("wallet lock");
                w.start_full_scan_at(crate::clock::now()).build()
            };
            let started = Instant::now();
            let response = req(
                "full scan",
                c.client
                    .full_scan(request, gap as usize, SYNC_BATCH_SIZE, false),
            )?;
            self.charge(&key, cost::SCRIPT * 2.0 * f64::from(gap));
            tracing::info!(
                found = %crate::wallet::words::last_used(&response.last_active_indices),
                txs = response.tx_update.txs.len(),
                ms = started.elapsed().as_millis() as u64,
                "scanned the chain for addresses used before"
            );
            if self
                .events
                .blocking_send(ChainEvent::Scanned {
                    update: Box::new(response.into()),
                })
                .is_err()
            {
                return Ok(());
            }
            self.settings.full_scan = None;
        }
        let now = Instant::now();
        let mut s = Session {
            tip: header.height as u32,
            new_tip: Some(header.height as u32),
            subscribed: HashMap::new(),
            to_subscribe: by_priority(self.watched.keys().copied().collect()),
            dirty: BTreeMap::new(),
            sweep: Vec::new(),
            sweep_started: now,
            notified_at: None,
            last_request: now,
            last_pop: now,
            pop_due: false,
            last_sweep_slice: now,
            served: false,
        };
        *sessions += 1;
        {
            let mut st = self.status.lock().expect("status lock");
            st.connected = true;
            st.down_since = None;
            st.server = Some(key.clone());
            st.tls = server.tls;
            st.tip_height = Some(s.tip);
            st.last_error = None;
            st.refused = None;
            if *sessions > 1 {
                st.reconnects += 1;
            }
        }
        tracing::info!(server = %server, tip = s.tip, watched = self.watched.len(), "connected to Electrum server");
        if self
            .events
            .blocking_send(ChainEvent::Connected {
                server: key.clone(),
                tls: server.tls,
                tip: s.tip,
            })
            .is_err()
        {
            return Ok(());
        }
        loop {
            *served |= s.served;
            self.publish(&key, &s);
            if !self.commands(c, &key, &mut s)? {
                return Ok(());
            }
            self.notifications(c, &mut s)?;
            if !s.dirty.is_empty() || s.new_tip.is_some() {
                if !self.sync_chunk(c, &key, &mut s)? {
                    return Ok(());
                }
                // Read what the server pushed while it answered (see BUFFER_SWEEP).
                self.ping(c, &mut s)?;
                self.charge(&key, cost::PING);
                continue;
            }
            let wait = self.background(c, &key, &mut s)?;
            if wait.is_zero() {
                continue;
            }
            if s.last_request.elapsed() >= KEEPALIVE {
                self.ping(c, &mut s)?;
                continue;
            }
            let readable =
                c.wait_readable(wait.min(COMMAND_POLL))
                    .map_err(|e| ChainError::Request {
                        op: "wait",
                        detail: e.to_string(),
                    })?;
            if readable {
                self.ping(c, &mut s)?;
            }
        }
    }

    /// Publishes the session's facts for status, page and metrics.
    fn publish(&mut self, key: &str, s: &Session) {
        let subs = s.subscribed.len();
        let spent = self.budgets.get_mut(key).map_or(0.0, |b| {
            b.tick(Instant::now(), subs);
            b.spent()
        });
        let backlog = (s.to_subscribe.len() + s.dirty.len()) as u64;
        let mut st = self.status.lock().expect("status lock");
        st.subscriptions = subs as u64;
        st.watched = self.watched.len() as u64;
        st.session_cost = spent as u64;
        // One slow answer (a busy machine, a cold cache) is not throttling: report the
        // average once it rests on a few round trips.
        st.request_ms = self
            .request_ms
            .filter(|_| self.request_samples >= MIN_REQUEST_SAMPLES)
            .map(|ms| ms as u64);
        if backlog == 0 {
            st.backlog_since = None;
        } else if st.backlog == 0 || st.backlog_since.is_none() {
            st.backlog_since = Some(crate::clock::now());
        }
        st.backlog = backlog;
    }

    /// Times a round trip for the throttling estimate (ElectrumX delays each request of a
    /// session over its soft limit).
    fn timed<T>(&mut self, s: &mut Session, f: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let r = f();
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        self.request_samples = self.request_samples.saturating_add(1);
        self.request_ms = Some(match self.request_ms {
            None => ms,
            Some(avg) => avg * 0.8 + ms * 0.2,
        });
        s.last_request = Instant::now();
        s.pop_due = true;
        r
    }

    fn charge(&mut self, key: &str, units: f64) {
        if let Some(b) = self.budgets.get_mut(key) {
            b.charge(units);
        }
    }

    /// Handles queued commands. Returns false on shutdown.
    fn commands(&mut self, c: &conn::Conn, key: &str, s: &mut Session) -> Result<bool, ChainError> {
        let mut new = Vec::new();
        let mut refresh = BTreeSet::new();
        loop {
            let cmd = match self.cmds.try_recv() {
                Ok(cmd) => cmd,
                Err(std::sync::mpsc::TryRecvError::Empty) => break,
                // The processor that owned this thread is gone (a crash it recovers
                // from starts a new one): this thread must not live on beside it.
                Err(std::sync::mpsc::TryRecvError::Disconnected) => return Ok(false),
            };
            match cmd {
                ChainCommand::Shutdown => return Ok(false),
                ChainCommand::Watch(k, spk) => {
                    self.watched.insert(k, spk.clone());
                    if !s.subscribed.contains_key(&spk) {
                        new.push(k);
                    }
                }
                ChainCommand::Unwatch(k) => {
                    self.known.remove(&k);
                    s.dirty.remove(&k);
                    if let Some(spk) = self.watched.remove(&k)
                        && s.subscribed.remove(&spk).is_some()
                    {
                        // Old servers lack unsubscribe; a stale subscription is harmless.
                        let _unsupported_is_fine = c.client.inner.script_unsubscribe(&spk);
                        self.charge(key, cost::PING);
                    }
                }
                ChainCommand::Refresh(keys) => refresh.extend(keys),
                ChainCommand::SyncAll => {
                    crate::fault::panic_once("SNAKKAZ_PAY_FAULT_PANIC_ON_SYNC");
                    s.sweep = by_priority(self.watched.keys().copied().collect());
                    s.sweep_started = Instant::now();
                    // An operator asked: check at full speed, within the budget.
                    s.last_sweep_slice = Instant::now() - Duration::from_secs(3600);
                }
            }
        }
        for chunk in new.chunks(FOREGROUND_BATCH) {
            self.subscribe(c, key, s, chunk)?;
        }
        if !refresh.is_empty() {
            let keys: Vec<Key> = refresh
                .into_iter()
                .filter(|k| self.watched.contains_key(k))
                .collect();
            for chunk in keys.chunks(SYNC_CHUNK) {
                // A forced sync needs the current status to record with its data.
                for (k, st) in self.check(c, key, s, chunk)? {
                    s.dirty.insert(k, st);
                }
            }
        }
        Ok(true)
    }

    /// Subscribes these scripts; those whose status differs from what is stored are
    /// queued for a sync.
    fn subscribe(
        &mut self,
        c: &conn::Conn,
        key: &str,
        s: &mut Session,
        keys: &[Key],
    ) -> Result<(), ChainError> {
        let keys: Vec<Key> = keys
            .iter()
            .copied()
            .filter(|k| {
                self.watched
                    .get(k)
                    .is_some_and(|spk| !s.subscribed.contains_key(spk))
            })
            .collect();
        if keys.is_empty() {
            return Ok(());
        }
        let spks: Vec<ScriptBuf> = keys.iter().map(|k| self.watched[k].clone()).collect();
        self.charge(key, cost::SCRIPT * keys.len() as f64);
        let api = &c.client.inner;
        let r = self.timed(s, || {
            api.batch_script_subscribe(spks.iter().map(|s| s.as_script()))
        });
        let statuses = match r {
            Ok(v) => v,
            Err(bdk_electrum::electrum_client::Error::Protocol(e)) => {
                // The server refuses (a subscription limit): the safety net checks these
                // scripts instead, and health says why.
                let msg = e.to_string();
                tracing::warn!(error = %msg, scripts = keys.len(), "Electrum server refused subscriptions");
                self.status.lock().expect("status lock").refused = Some(msg);
                s.sweep.extend(keys.iter().copied());
                return Ok(());
            }
            Err(e) => return req("script subscribe", Err(e)),
        };
        for ((k, spk), st) in keys.into_iter().zip(spks).zip(statuses) {
            s.subscribed.insert(spk, k);
            let st = status::hex(st);
            if st.as_ref() != self.known.get(&k) {
                s.dirty.insert(k, st);
                s.notified_at.get_or_insert_with(Instant::now);
            }
        }
        Ok(())
    }

    /// Current statuses of these scripts, from their histories (no subscription).
    fn check(
        &mut self,
        c: &conn::Conn,
        key: &str,
        s: &mut Session,
        keys: &[Key],
    ) -> Result<Vec<(Key, Status)>, ChainError> {
        let spks: Vec<ScriptBuf> = keys
            .iter()
            .filter_map(|k| self.watched.get(k).cloned())
            .collect();
        let keys: Vec<Key> = keys
            .iter()
            .copied()
            .filter(|k| self.watched.contains_key(k))
            .collect();
        self.charge(key, cost::SCRIPT * keys.len() as f64);
        let api = &c.client.inner;
        let histories = self.timed(s, || {
            api.batch_script_get_history(spks.iter().map(|s| s.as_script()))
        });
        let histories = req("script history", histories)?;
        Ok(keys
            .into_iter()
            .zip(histories)
            .map(|(k, h)| (k, status::of_history(&h)))
            .collect())
    }

    fn ping(&mut self, c: &conn::Conn, s: &mut Session) -> Result<(), ChainError> {
        let api = &c.client.inner;
        let r = self.timed(s, || api.ping());
        req("ping", r)?;
        s.last_pop = Instant::now() - POP_INTERVAL;
        Ok(())
    }

    /// Takes the notifications the client has read. After a ping (or a peek that saw
    /// data) and at most every `POP_INTERVAL` after other requests.
    fn notifications(&mut self, c: &conn::Conn, s: &mut Session) -> Result<(), ChainError> {
        if s.last_request.elapsed() >= BUFFER_SWEEP {
            self.ping(c, s)?;
        }
        if !s.pop_due || s.last_pop.elapsed() < POP_INTERVAL {
            return Ok(());
        }
        s.pop_due = false;
        s.last_pop = Instant::now();
        let api = &c.client.inner;
        let mut got = false;
        while let Some(h) = req("headers pop", api.block_headers_pop())? {
            let height = h.height as u32;
            s.tip = height;
            s.new_tip = Some(height);
            got = true;
        }
        for (spk, &k) in &s.subscribed {
            let mut latest = None;
            while let Some(st) = req("script pop", api.script_pop(spk))? {
                latest = Some(st);
            }
            if let Some(st) = latest {
                got = true;
                let st = status::hex(Some(st));
                if st.as_ref() != self.known.get(&k) {
                    s.dirty.insert(k, st);
                }
            }
        }
        if got {
            s.notified_at.get_or_insert_with(Instant::now);
            self.status
                .lock()
                .expect("status lock")
                .last_notification_at = Some(crate::clock::now());
            tracing::debug!(dirty = s.dirty.len(), tip = ?s.new_tip, "notification");
        }
        Ok(())
    }

    /// Syncs one chunk of scripts whose status moved (or just the tip). Returns false
    /// when the processor is gone.
    fn sync_chunk(
        &mut self,
        c: &conn::Conn,
        key: &str,
        s: &mut Session,
    ) -> Result<bool, ChainError> {
        let keys: Vec<Key> = {
            // Newest scripts first: what customers are paying now.
            let mut ordered: Vec<Key> = s.dirty.keys().copied().collect();
            ordered.sort_by_key(|k| std::cmp::Reverse(priority(*k)));
            ordered.truncate(SYNC_CHUNK);
            ordered
        };
        let fetched_at = crate::clock::now();
        let request = {
            let w = self.wallet.lock().expect("wallet lock");
            if keys.is_empty() {
                crate::wallet::tip_request(&w, fetched_at)
            } else {
                crate::wallet::sync_request(&w, &keys.iter().copied().collect(), fetched_at)
            }
        };
        self.charge(key, cost::SYNC + cost::SCRIPT * keys.len() as f64);
        let started = Instant::now();
        let r = self.timed(s, || c.client.sync(request, SYNC_BATCH_SIZE, false));
        let response = req("sync", r)?;
        let new_txs = response.tx_update.txs.len() as f64;
        let proofs = response.tx_update.anchors.len() as f64;
        self.charge(key, cost::TX * new_txs * 0.5 + cost::PROOF * proofs * 0.5);
        let ms = started.elapsed().as_millis() as u64;
        tracing::debug!(scripts = keys.len(), txs = new_txs, ms, "synced");
        {
            let mut st = self.status.lock().expect("status lock");
            st.last_sync_at = Some(crate::clock::now());
            st.last_sync_ms = Some(ms);
            st.tip_height = Some(s.tip);
        }
        let statuses: Vec<(Key, Status)> = keys
            .iter()
            .map(|k| (*k, s.dirty.remove(k).flatten()))
            .collect();
        for (k, st) in &statuses {
            match st {
                Some(st) => self.known.insert(*k, st.clone()),
                None => self.known.remove(k),
            };
        }
        let tip = s.new_tip.take();
        let notified_at = if s.dirty.is_empty() {
            s.notified_at.take()
        } else {
            s.notified_at
        };
        s.served = true;
        Ok(self
            .events
            .blocking_send(ChainEvent::Update {
                update: Box::new(response.into()),
                statuses,
                notified_at,
                tip,
                fetched_at,
            })
            .is_ok())
    }

    /// One slice of background work if the budget allows. Returns how long to wait
    /// before the next slice (zero: work was done, go again).
    fn background(
        &mut self,
        c: &conn::Conn,
        key: &str,
        s: &mut Session,
    ) -> Result<Duration, ChainError> {
        let subs = s.subscribed.len();
        while s.to_subscribe.last().is_some_and(|k| {
            self.watched
                .get(k)
                .is_none_or(|spk| s.subscribed.contains_key(spk))
        }) {
            s.to_subscribe.pop();
        }
        if !s.to_subscribe.is_empty() {
            let n = s.to_subscribe.len().min(SLICE);
            let wait = self.wait_for(key, cost::SCRIPT * n as f64, subs);
            if !wait.is_zero() {
                return Ok(wait);
            }
            let slice: Vec<Key> = s.to_subscribe.split_off(s.to_subscribe.len() - n);
            self.subscribe(c, key, s, &slice)?;
            return Ok(Duration::ZERO);
        }
        if s.sweep.is_empty() {
            if s.sweep_started.elapsed() < self.settings.check_interval {
                return Ok(COMMAND_POLL);
            }
            s.sweep = by_priority(self.watched.keys().copied().collect());
            s.sweep_started = Instant::now();
            if s.sweep.is_empty() {
                return Ok(COMMAND_POLL);
            }
        }
        let n = s.sweep.len().min(SLICE);
        let pace = Duration::from_secs_f64(n as f64 / SWEEP_MAX_PER_SEC);
        let since = s.last_sweep_slice.elapsed();
        if since < pace {
            return Ok(pace - since);
        }
        let wait = self.wait_for(key, cost::SCRIPT * n as f64, subs);
        if !wait.is_zero() {
            return Ok(wait);
        }
        let slice: Vec<Key> = s.sweep.split_off(s.sweep.len() - n);
        s.last_sweep_slice = Instant::now();
        for (k, st) in self.check(c, key, s, &slice)? {
            if st.as_ref() != self.known.get(&k) {
                tracing::info!(
                    keychain = crate::wallet::words::keychain(k.0),
                    index = k.1,
                    "safety net found a change no notification reported"
                );
                s.dirty.insert(k, st);
            }
        }
        Ok(Duration::ZERO)
    }

    fn wait_for(&mut self, key: &str, units: f64, subs: usize) -> Duration {
        match self.budgets.get_mut(key) {
            Some(b) => {
                b.tick(Instant::now(), subs);
                b.wait_for(units, subs)
            }
            None => Duration::ZERO,
        }
    }
}
