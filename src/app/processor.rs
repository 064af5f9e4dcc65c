//! The payment processor: applies chain updates to the wallet, runs the lifecycle over the
//! payments they touch, expires payments on fresh data, and commits all of it atomically.
//!
//! Its work follows change: an update touches the payments of the scripts it synced; a new
//! block touches only payments whose state depends on depth (unconfirmed, or confirmed
//! awaiting auto-completion); expiries come from a deadline queue. Nothing here reads every
//! payment or walks the wallet's whole history.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bdk_wallet::KeychainKind;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{App, CONFLICT_RETRIES, ProcessorMsg};
use crate::chain::{ChainCommand, ChainEvent, ChainHandle, ChainSettings, Key, Server, Watched};
use crate::payments::receipt::{self, Receipt};
use crate::payments::{Observation, Payment, Status, lifecycle};
use crate::store::{ReceiptWrite, StoreError, TxCacheEntry, WriteBatch};

/// How often deadlines (expiry, end of the late-payment window) are looked at.
const TICK: Duration = Duration::from_secs(1);
/// The chain thread gets this long to stop; a network call in flight is abandoned.
const CHAIN_STOP: Duration = Duration::from_secs(3);
/// An expiry check that got no fresh data is asked for again after this long.
const EXPIRY_RECHECK: Duration = Duration::from_secs(30);
/// Expiry checks outstanding at once: thousands of payments expiring together (a batch
/// of requests, a long downtime) are checked in deadline order, a bounded slice at a
/// time, instead of one burst the server charges for at once.
const MAX_EXPIRY_CHECKS: usize = 200;
/// Receive addresses of closed payments watched for unattributed receipts: the newest
/// ones. Every one is a subscription each session makes again on connect; with the
/// default ElectrumX limits (about 2,300 subscriptions at once, then about one a second)
/// thousands of old addresses would hold back new payments' subscriptions after every
/// reconnect.
const MAX_CLOSED_WATCHED: u32 = 1_000;
/// First and longest wait before the chain thread is started again after a crash.
const CHAIN_RESTART_MIN: Duration = Duration::from_secs(1);
const CHAIN_RESTART_MAX: Duration = Duration::from_secs(60);
/// Wait before syncing again the scripts of a commit that failed.
const COMMIT_RETRY: Duration = Duration::from_secs(2);

/// What the processor remembers of a watched payment.
#[derive(Debug, Clone)]
struct Tracked {
    id: String,
    expires_at: u64,
}

/// Spawns the processor task.
pub(super) fn spawn(
    app: Arc<App>,
    rx: mpsc::UnboundedReceiver<ProcessorMsg>,
    cancel: CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let mut p = Processor {
        app: app.clone(),
        watched: BTreeMap::new(),
        expiries: BTreeSet::new(),
        unwatch_at: BTreeSet::new(),
        depth: BTreeSet::new(),
        expiry_asked: BTreeMap::new(),
        unsaved: None,
        chain: None,
        floor: app.store.receipts_floor()?,
        retry: None,
    };
    let now = crate::clock::now();
    if p.floor.is_none() && !app.scan_pending() {
        p.set_floor_from_tip();
    }
    let mut unwatch = Vec::new();
    for (i, payment) in app.store.watched_payments()? {
        if p.should_watch(&payment, now) {
            p.track(i, &payment);
        } else {
            unwatch.push(i);
        }
    }
    if !unwatch.is_empty() {
        app.store.commit_blocking(WriteBatch {
            unwatch,
            ..Default::default()
        })?;
    }
    let ev_rx = p.spawn_chain()?;
    Ok(tokio::spawn(p.run(rx, ev_rx, cancel)))
}

impl Processor {
    /// Starts the chain thread (when payments are on); its events arrive on the returned
    /// channel.
    fn spawn_chain(&mut self) -> anyhow::Result<mpsc::Receiver<ChainEvent>> {
        let (ev_tx, ev_rx) = mpsc::channel(64);
        let app = self.app.clone();
        if !app.cfg.enabled || app.cfg.servers.is_empty() {
            return Ok(ev_rx);
        }
        let watched = self.chain_watch_list()?;
        self.chain = Some(ChainHandle::spawn(
            ChainSettings {
                servers: app
                    .cfg
                    .servers
                    .iter()
                    .map(|s| Server {
                        host: s.host.clone(),
                        port: s.port,
                        tls: s.tls,
                    })
                    .collect(),
                ca_file: app.cfg.ca_file.clone(),
                timeout: app.cfg.electrum_timeout,
                check_interval: app.cfg.check_interval,
                cost_budget: app.cfg.electrum_cost_budget,
                full_scan: app.scan_pending().then_some(app.cfg.scan_stop_gap),
            },
            app.wallet.clone(),
            watched,
            app.chain_status.clone(),
            ev_tx,
        )?);
        Ok(ev_rx)
    }
}

struct Processor {
    app: Arc<App>,
    /// Receive index → the payment whose address it is.
    watched: BTreeMap<u32, Tracked>,
    /// (expires_at, index) of pending payments.
    expiries: BTreeSet<(u64, u32)>,
    /// (end of late window, index) of closed payments still watched.
    unwatch_at: BTreeSet<(u64, u32)>,
    /// Indices whose payments change with depth alone.
    depth: BTreeSet<u32>,
    /// Expiry checks asked of the chain thread and when.
    expiry_asked: BTreeMap<u32, Instant>,
    /// Wallet changes applied in memory but not yet committed: merged into the next
    /// commit until one succeeds, so the store never loses what the wallet holds.
    unsaved: Option<bdk_wallet::ChangeSet>,
    chain: Option<ChainHandle>,
    /// What the wallet knew when its watch began is never an unattributed receipt;
    /// `None` until the wallet knows a chain.
    floor: Option<receipt::Floor>,
    /// Scripts to sync again after a failed commit, and when: a full disk must not turn
    /// into a loop of syncs and failed writes.
    retry: Option<(Instant, BTreeSet<Key>)>,
}

impl Processor {
    /// Open payments, and closed ones still inside the late-payment window.
    fn should_watch(&self, p: &Payment, now: u64) -> bool {
        match p.status {
            Status::Pending | Status::Unconfirmed | Status::Confirmed => true,
            Status::Completed | Status::Expired | Status::Underpaid => now < self.watch_end(p),
        }
    }

    fn watch_end(&self, p: &Payment) -> u64 {
        p.expires_at
            .saturating_add(self.app.cfg.late_payment_window.as_secs())
    }

    /// Files a payment under the queues its status calls for.
    fn track(&mut self, i: u32, p: &Payment) {
        self.untrack_queues(i);
        match p.status {
            Status::Pending => {
                self.expiries.insert((p.expires_at, i));
            }
            Status::Unconfirmed => {
                self.depth.insert(i);
            }
            Status::Confirmed => {
                if self.app.cfg.auto_complete_depth.is_some() {
                    self.depth.insert(i);
                }
            }
            Status::Completed | Status::Expired | Status::Underpaid => {
                self.unwatch_at.insert((self.watch_end(p), i));
            }
        }
        self.watched.insert(
            i,
            Tracked {
                id: p.id.clone(),
                expires_at: p.expires_at,
            },
        );
    }

    fn untrack_queues(&mut self, i: u32) {
        if let Some(t) = self.watched.get(&i) {
            self.expiries.remove(&(t.expires_at, i));
            let end = t
                .expires_at
                .saturating_add(self.app.cfg.late_payment_window.as_secs());
            self.unwatch_at.remove(&(end, i));
        }
        self.depth.remove(&i);
        self.expiry_asked.remove(&i);
    }

    /// Sets the receipts floor to the wallet's tip, once it knows a chain.
    fn set_floor_from_tip(&mut self) {
        let tip = crate::wallet::tip_height(&self.app.wallet.lock().expect("wallet lock"));
        if tip == 0 {
            return;
        }
        let floor = receipt::Floor {
            height: tip,
            at: crate::clock::now(),
            unconfirmed: crate::wallet::unconfirmed_txids(
                &self.app.wallet.lock().expect("wallet lock"),
            ),
        };
        match self.app.store.commit_blocking(WriteBatch {
            meta: vec![crate::store::receipts_floor_entry(&floor)],
            ..Default::default()
        }) {
            Ok(_) => {
                tracing::info!(
                    height = tip,
                    "money arriving from now on at addresses no open payment owns is recorded as an unattributed receipt"
                );
                self.floor = Some(floor);
            }
            Err(e) => {
                tracing::warn!(error = %e, "recording the receipts floor; tried again with the next update")
            }
        }
    }

    /// Every script the chain thread should watch, with its stored status.
    fn chain_watch_list(&self) -> Result<BTreeMap<Key, Watched>, StoreError> {
        let w = self.app.wallet.lock().expect("wallet lock");
        // Receive addresses stay watched after their payment closed: money arriving there
        // later is an unattributed receipt, not something to miss. A subscription costs
        // nothing until the address changes, but servers cap them per session (ElectrumX:
        // 50,000), so beyond open payments only the newest closed addresses are kept.
        let next = w.next_derivation_index(KeychainKind::External);
        let oldest_closed = next.saturating_sub(MAX_CLOSED_WATCHED);
        let mut keys: Vec<Key> = self
            .watched
            .keys()
            .copied()
            .filter(|&i| i < oldest_closed)
            .chain(oldest_closed..next)
            .map(|i| (KeychainKind::External, i))
            .collect();
        // Change comes back to the wallet: watch every revealed change script, so a spend
        // shows in the balance when it happens.
        keys.extend(
            w.spk_index()
                .revealed_keychain_spks(KeychainKind::Internal)
                .map(|(i, _)| (KeychainKind::Internal, i)),
        );
        let stored = self
            .app
            .store
            .script_statuses(keys.iter().map(|k| store_key(*k)))?;
        Ok(keys
            .into_iter()
            .map(|k| {
                (
                    k,
                    Watched {
                        spk: crate::wallet::spk(&w, k),
                        status: stored.get(&store_key(k)).cloned().flatten(),
                    },
                )
            })
            .collect())
    }

    fn send(&self, cmd: ChainCommand) {
        if let Some(c) = &self.chain
            && !c.send(cmd)
        {
            tracing::error!("the chain thread has stopped; payments are not being watched");
        }
    }

    async fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<ProcessorMsg>,
        mut events: mpsc::Receiver<ChainEvent>,
        cancel: CancellationToken,
    ) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let has_chain = self.chain.is_some();
        let mut chain_backoff = CHAIN_RESTART_MIN;
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                msg = rx.recv() => match msg {
                    Some(ProcessorMsg::Watch { index, payment }) => {
                        let spk = {
                            let w = self.app.wallet.lock().expect("wallet lock");
                            crate::wallet::spk(&w, (KeychainKind::External, index))
                        };
                        self.send(ChainCommand::Watch((KeychainKind::External, index), spk));
                        self.track(index, &payment);
                    }
                    Some(ProcessorMsg::SyncAll) => {
                        crate::fault::panic_once("SNAKKAZ_PAY_FAULT_PROCESSOR_PANIC_ON_SYNC");
                        self.send(ChainCommand::SyncAll)
                    }
                    None => break,
                },
                ev = events.recv(), if has_chain => match ev {
                    Some(ChainEvent::Update { update, statuses, notified_at, tip, fetched_at }) => {
                        self.on_update(*update, statuses, notified_at, tip.is_some(), fetched_at).await;
                    }
                    Some(ChainEvent::Scanned { update }) => self.on_scanned(*update).await,
                    Some(ChainEvent::Connected { .. }) => chain_backoff = CHAIN_RESTART_MIN,
                    Some(ChainEvent::Disconnected { .. }) => {}
                    None => {
                        // A crash of the chain thread (a bug) must not end detection:
                        // start it again, with backoff, and say so on the status.
                        self.chain = None;
                        self.app.chain_status.lock().unwrap_or_else(std::sync::PoisonError::into_inner).thread_restarts += 1;
                        tracing::error!(backoff_secs = chain_backoff.as_secs(), "the chain thread stopped unexpectedly; restarting it");
                        tokio::select! {
                            _ = cancel.cancelled() => break,
                            _ = tokio::time::sleep(chain_backoff) => {}
                        }
                        chain_backoff = (chain_backoff * 2).min(CHAIN_RESTART_MAX);
                        match self.spawn_chain() {
                            Ok(rx) => events = rx,
                            Err(e) => tracing::error!(error = %format!("{e:#}"), "restarting the chain thread failed; trying again"),
                        }
                    }
                },
                _ = tick.tick() => self.on_tick().await,
            }
            self.app.alert_tracker.heartbeat(crate::clock::now());
        }
        if let Some(c) = self.chain.take() {
            // The chain thread blocks on network I/O with a timeout; wait off the runtime,
            // and not for longer than the shutdown allows.
            let joined = tokio::task::spawn_blocking(move || c.shutdown(CHAIN_STOP)).await;
            if joined.is_err() {
                tracing::error!("chain thread shutdown panicked");
            }
        }
    }

    async fn on_update(
        &mut self,
        update: bdk_wallet::Update,
        statuses: Vec<(Key, Option<String>)>,
        notified_at: Option<Instant>,
        tip_moved: bool,
        fetched_at: u64,
    ) {
        let keys: Vec<Key> = statuses.iter().map(|(k, _)| *k).collect();
        let (changeset, tip) = {
            let mut w = self.app.wallet.lock().expect("wallet lock");
            if let Err(e) = w.apply_update(update) {
                tracing::warn!(error = %e, "chain update does not connect to the wallet's chain; asking again");
                drop(w);
                if !keys.is_empty() {
                    self.send(ChainCommand::Refresh(keys));
                }
                return;
            }
            let cs = w.take_staged();
            self.app
                .balances
                .lock()
                .expect("balances lock")
                .refresh(&w, keys.iter().copied());
            (cs, crate::wallet::tip_height(&w))
        };
        self.app.set_tip(tip);
        crate::wallet::merge_into(&mut self.unsaved, changeset);
        if self.floor.is_none() && !self.app.scan_pending() {
            self.set_floor_from_tip();
        }
        let mut eval: BTreeSet<u32> = keys
            .iter()
            .filter(|(k, _)| *k == KeychainKind::External)
            .map(|(_, i)| *i)
            .filter(|i| self.watched.contains_key(i))
            .collect();
        if tip_moved {
            eval.extend(self.depth.iter().copied());
        }
        for i in &eval {
            self.expiry_asked.remove(i);
        }
        let statuses = statuses
            .into_iter()
            .map(|(k, s)| (store_key(k), s))
            .collect();
        let changed = self.evaluate(eval, statuses, fetched_at, keys).await;
        if let Some(at) = notified_at {
            tracing::debug!(
                ms = at.elapsed().as_millis() as u64,
                "notification to commit"
            );
            // Only notifications that changed a payment measure the detection path.
            if changed > 0 {
                self.app
                    .metrics
                    .observe_notification_to_update(at.elapsed());
            }
        }
    }

    /// Applies the first scan: reveals every used index so the next payment gets a fresh
    /// address, then lets payment creation in.
    async fn on_scanned(&mut self, update: bdk_wallet::Update) {
        let (changeset, next, tip) = {
            let mut w = self.app.wallet.lock().expect("wallet lock");
            if let Err(e) = w.apply_update(update) {
                tracing::error!(error = %e, "the chain scan does not connect to the wallet's chain; payments stay refused until a restart scans again");
                return;
            }
            let cs = w.take_staged();
            *self.app.balances.lock().expect("balances lock") =
                crate::wallet::Balances::compute(&w);
            (
                cs,
                (
                    w.next_derivation_index(KeychainKind::External),
                    w.next_derivation_index(KeychainKind::Internal),
                ),
                crate::wallet::tip_height(&w),
            )
        };
        crate::wallet::merge_into(&mut self.unsaved, changeset);
        // What the scan found is history, not news: only money after it is a receipt.
        let floor = receipt::Floor {
            height: tip,
            at: crate::clock::now(),
            unconfirmed: crate::wallet::unconfirmed_txids(
                &self.app.wallet.lock().expect("wallet lock"),
            ),
        };
        let batch = WriteBatch {
            wallet: self.unsaved.clone(),
            mark_scanned: true,
            meta: vec![crate::store::receipts_floor_entry(&floor)],
            ..Default::default()
        };
        match self.app.store.commit(batch).await {
            Ok(_) => {
                self.unsaved = None;
                self.floor = Some(floor);
                // Addresses the scan found used stay watched: new money there is a receipt.
                let revealed: Vec<(Key, bdk_wallet::bitcoin::ScriptBuf)> = {
                    let w = self.app.wallet.lock().expect("wallet lock");
                    let oldest = next.0.saturating_sub(MAX_CLOSED_WATCHED);
                    w.spk_index()
                        .revealed_spks(..)
                        .filter(|((k, i), _)| *k == KeychainKind::Internal || *i >= oldest)
                        .collect()
                };
                for (k, spk) in revealed {
                    self.send(ChainCommand::Watch(k, spk));
                }
                tracing::info!(
                    next_receive_index = next.0,
                    next_change_index = next.1,
                    "chain scan recorded: new payments start after every used address"
                );
                self.app.scan_done();
            }
            Err(e) => {
                tracing::error!(error = %e, "recording the chain scan failed; payments stay refused until a restart scans again");
            }
        }
    }

    /// Stores a fresh wallet summary when payments were created since the last one.
    fn summary_if_addresses_moved(&self) -> Option<crate::store::WalletSummary> {
        let stored = match self.app.store.wallet_summary() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "reading the wallet summary");
                return None;
            }
        };
        let w = self.app.wallet.lock().expect("wallet lock");
        let in_use = w.next_derivation_index(KeychainKind::External);
        if stored.is_some_and(|s| s.addresses_in_use == in_use) {
            return None;
        }
        let b = self.app.balances.lock().expect("balances lock");
        Some(crate::wallet::summary(&w, &b, crate::clock::now()))
    }

    fn retry_later(&mut self, keys: Vec<Key>) {
        if keys.is_empty() {
            return;
        }
        let (_, set) = self
            .retry
            .get_or_insert_with(|| (Instant::now() + COMMIT_RETRY, BTreeSet::new()));
        set.extend(keys);
    }

    async fn on_tick(&mut self) {
        if self
            .retry
            .as_ref()
            .is_some_and(|(at, _)| *at <= Instant::now())
            && let Some((_, keys)) = self.retry.take()
        {
            self.send(ChainCommand::Refresh(keys.into_iter().collect()));
        }
        let now = crate::clock::now();
        // Expiry only on fresh data: ask the chain thread for the script's current
        // history; the payment expires when that answer (fetched after expiry) arrives.
        let outstanding = self
            .expiry_asked
            .values()
            .filter(|at| at.elapsed() < EXPIRY_RECHECK)
            .count();
        let room = if self.chain.is_some() {
            MAX_EXPIRY_CHECKS.saturating_sub(outstanding)
        } else {
            usize::MAX
        };
        let due: Vec<u32> = self
            .expiries
            .range(..=(now, u32::MAX))
            .map(|&(_, i)| i)
            .filter(|i| {
                self.expiry_asked
                    .get(i)
                    .is_none_or(|at| at.elapsed() >= EXPIRY_RECHECK)
            })
            .take(room)
            .collect();
        if !due.is_empty() {
            if self.chain.is_some() {
                for &i in &due {
                    self.expiry_asked.insert(i, Instant::now());
                }
                self.send(ChainCommand::Refresh(
                    due.iter().map(|&i| (KeychainKind::External, i)).collect(),
                ));
            } else {
                // Payments disabled: no chain data can arrive, the clock alone decides.
                self.evaluate(due.into_iter().collect(), Vec::new(), now, Vec::new())
                    .await;
            }
        }
        let ended: Vec<u32> = self
            .unwatch_at
            .range(..=(now, u32::MAX))
            .map(|&(_, i)| i)
            .collect();
        if !ended.is_empty() {
            // The chain keeps watching the newest of these addresses: what arrives there
            // now is a receipt. Older ones leave the chain's list.
            let next = {
                let w = self.app.wallet.lock().expect("wallet lock");
                w.next_derivation_index(KeychainKind::External)
            };
            for &i in &ended {
                self.untrack_queues(i);
                self.watched.remove(&i);
                if i.saturating_add(MAX_CLOSED_WATCHED) < next {
                    self.send(ChainCommand::Unwatch((KeychainKind::External, i)));
                }
            }
            if let Err(e) = self.app.store.commit_blocking(WriteBatch {
                unwatch: ended,
                ..Default::default()
            }) {
                tracing::warn!(error = %e, "recording the end of late-payment windows; retried at next start");
            }
        }
        if let Some(summary) = self.summary_if_addresses_moved()
            && let Err(e) = self.app.store.commit_blocking(WriteBatch {
                wallet_summary: Some(summary),
                ..Default::default()
            })
        {
            tracing::warn!(error = %e, "storing the wallet summary");
        }
    }

    /// Transactions of these payments whose cached summary is missing or out of date.
    fn tx_cache_changes(
        &self,
        seen: &BTreeMap<u32, Vec<crate::payments::SeenTx>>,
        now: u64,
    ) -> Vec<TxCacheEntry> {
        // txid → (entry as seen now, entry as cached): the cache is read once per txid.
        let mut out: BTreeMap<&str, (TxCacheEntry, Option<TxCacheEntry>)> = BTreeMap::new();
        for tx in seen.values().flatten() {
            if let Some((e, _)) = out.get_mut(tx.txid.as_str()) {
                // One transaction may pay several payments' addresses.
                e.received_sat = e.received_sat.saturating_add(tx.value_sat);
                continue;
            }
            let cached = match self.app.store.cached_tx(&tx.txid) {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, txid = %tx.txid, "reading the transaction cache");
                    None
                }
            };
            let entry = TxCacheEntry {
                txid: tx.txid.clone(),
                height: tx.height,
                fee_sat: cached.as_ref().and_then(|c| c.fee_sat),
                received_sat: tx.value_sat,
                seen_at: cached.as_ref().map_or(now, |c| c.seen_at),
            };
            out.insert(&tx.txid, (entry, cached));
        }
        out.into_values()
            .filter(|(e, cached)| {
                cached
                    .as_ref()
                    .is_none_or(|c| c.height != e.height || c.received_sat != e.received_sat)
            })
            .map(|(e, _)| e)
            .collect()
    }

    /// Runs the lifecycle over these receive indices with data fetched at `fetched_at`
    /// and commits the changes together with the unsaved wallet changes and the synced
    /// scripts' statuses, retrying when a concurrent acknowledgement won the race.
    /// Returns how many payments changed.
    async fn evaluate(
        &mut self,
        indices: BTreeSet<u32>,
        statuses: Vec<(crate::store::ScriptKey, Option<String>)>,
        fetched_at: u64,
        synced: Vec<Key>,
    ) -> usize {
        let policy = self.app.cfg.policy();
        for attempt in 0..CONFLICT_RETRIES {
            let (seen, tip, summary) = {
                let w = self.app.wallet.lock().expect("wallet lock");
                let b = self.app.balances.lock().expect("balances lock");
                (
                    crate::wallet::seen_txs(&w, &indices),
                    crate::wallet::tip_height(&w),
                    // Balances only move with chain data: refresh the summary with it.
                    self.unsaved
                        .is_some()
                        .then(|| crate::wallet::summary(&w, &b, crate::clock::now())),
                )
            };
            // The clock of this evaluation is when its data was fetched: an expiry after
            // that moment waits for data fetched after it.
            let now = fetched_at.min(crate::clock::now());
            let tx_cache = self.tx_cache_changes(&seen, now);
            let receipts = self.receipt_writes(&synced, now);
            let mut updates = Vec::new();
            for (i, txs) in seen {
                let Some(t) = self.watched.get(&i) else {
                    continue;
                };
                let p = match self.app.store.payment(&t.id) {
                    Ok(Some(p)) => p,
                    Ok(None) => continue,
                    Err(e) => {
                        tracing::error!(error = %e, payment = %t.id, "reading payment");
                        continue;
                    }
                };
                let (txs, prior): (Vec<_>, Vec<_>) = txs.into_iter().partition(
                    |t| !matches!((t.height, p.created_height), (Some(h), Some(c)) if h <= c),
                );
                if !prior.is_empty() && p.status == Status::Pending && p.received_sat == 0 {
                    tracing::warn!(payment = %p.id, address = %p.address, txs = prior.len(), "the payment's address had money before the payment was created (used beyond the scan's stop gap); that money is not credited to it");
                }
                let obs = Observation {
                    txs,
                    tip_height: tip,
                    now,
                };
                if let Some(t) = lifecycle::evaluate(&p, &obs, &policy) {
                    for ev in &t.events {
                        tracing::info!(payment = %p.id, change = %ev, "payment changed");
                    }
                    updates.push((t.payment, t.events));
                }
            }
            if updates.is_empty()
                && self.unsaved.is_none()
                && tx_cache.is_empty()
                && statuses.is_empty()
                && receipts.is_empty()
            {
                return 0;
            }
            let changed = updates.len();
            let confirmations: Vec<u64> = updates
                .iter()
                .filter(|(p, evs)| {
                    evs.iter().any(|e| e.to == Status::Confirmed) && p.status == Status::Confirmed
                })
                .filter_map(|(p, _)| Some(p.confirmed_at?.saturating_sub(p.first_seen_at?)))
                .collect();
            let new_states: Vec<(u32, Payment)> = updates
                .iter()
                .map(|(p, _)| (p.derivation_index, p.clone()))
                .collect();
            let batch = WriteBatch {
                updates,
                wallet: self.unsaved.clone(),
                tx_cache,
                wallet_summary: summary,
                script_status: statuses.clone(),
                receipts,
                ..Default::default()
            };
            match self.app.store.commit(batch).await {
                Ok(_) => {
                    self.unsaved = None;
                    for (i, p) in new_states {
                        self.track(i, &p);
                    }
                    for secs in confirmations {
                        self.app.metrics.observe_confirmation(secs);
                    }
                    return changed;
                }
                Err(StoreError::Conflict { id, .. }) => {
                    tracing::debug!(payment = %id, attempt, "payment changed concurrently; re-evaluating");
                }
                Err(e) => {
                    // The wallet changes stay in `unsaved` for the next commit; the synced
                    // scripts are synced again, a little later, so their statuses are
                    // recorded with data.
                    tracing::error!(error = %e, "committing payment updates failed; will retry");
                    self.retry_later(synced);
                    return 0;
                }
            }
        }
        tracing::error!("payment updates kept conflicting; giving up until the next change");
        self.retry_later(synced);
        0
    }
}

impl Processor {
    /// Receipts among these synced scripts: money no open payment counts, and recorded
    /// receipts whose transaction left the chain.
    fn receipt_writes(&self, synced: &[Key], now: u64) -> Vec<ReceiptWrite> {
        let Some(floor) = &self.floor else {
            return Vec::new();
        };
        let keys: Vec<Key> = synced
            .iter()
            .filter(|(k, i)| *k == KeychainKind::Internal || !self.watched.contains_key(i))
            .copied()
            .collect();
        if keys.is_empty() {
            return Vec::new();
        }
        let outputs =
            crate::wallet::outputs_at(&self.app.wallet.lock().expect("wallet lock"), &keys);
        let stored: BTreeMap<String, Receipt> = match self.app.store.receipts() {
            Ok(v) => v.into_iter().map(|r| (r.outpoint.clone(), r)).collect(),
            Err(e) => {
                tracing::error!(error = %e, "reading receipts; money at closed or foreign addresses is looked at again with the next change");
                return Vec::new();
            }
        };
        let mut writes = Vec::new();
        let current: BTreeSet<&str> = outputs.iter().map(|o| o.outpoint.as_str()).collect();
        for r in stored.values() {
            let key = (
                if r.change {
                    KeychainKind::Internal
                } else {
                    KeychainKind::External
                },
                r.derivation_index,
            );
            if !r.gone && keys.contains(&key) && !current.contains(r.outpoint.as_str()) {
                tracing::warn!(outpoint = %r.outpoint, amount_sat = r.amount_sat, "an unattributed receipt's transaction left the chain");
                writes.push(ReceiptWrite::Gone {
                    outpoint: r.outpoint.clone(),
                    at: now,
                });
            }
        }
        let mut owners: BTreeMap<u32, Option<Payment>> = BTreeMap::new();
        for o in outputs {
            let change = o.key.0 == KeychainKind::Internal;
            let owner = if change {
                None
            } else {
                owners
                    .entry(o.key.1)
                    .or_insert_with(|| self.app.store.payment_by_address(&o.address).ok().flatten())
                    .as_ref()
            };
            let Some(cause) = receipt::classify(
                change,
                o.from_outside,
                floor.predates(&o.txid, o.height, o.first_seen),
                owner.map(|p| p.txids.contains(&o.txid)),
            ) else {
                continue;
            };
            let prior = stored.get(&o.outpoint);
            if prior.is_none() {
                tracing::warn!(outpoint = %o.outpoint, address = %o.address, amount_sat = o.value_sat, cause = cause.describe(), "unattributed receipt: money no open payment counts");
            }
            writes.push(ReceiptWrite::Seen(Receipt {
                outpoint: o.outpoint,
                txid: o.txid,
                address: o.address,
                change,
                derivation_index: o.key.1,
                amount_sat: o.value_sat,
                height: o.height,
                cause,
                address_payment_id: owner.map(|p| p.id.clone()),
                first_seen_at: prior.map_or(now, |r| r.first_seen_at),
                updated_at: now,
                gone: false,
                assigned_to: None,
                note: None,
            }));
        }
        // Unchanged receipts need no write (the writer would skip them anyway).
        writes.retain(|w| match w {
            ReceiptWrite::Seen(r) => stored
                .get(&r.outpoint)
                .is_none_or(|old| old.gone || old.height != r.height),
            _ => true,
        });
        writes
    }
}

/// The store's form of a script key.
fn store_key((keychain, index): Key) -> crate::store::ScriptKey {
    let k = match keychain {
        KeychainKind::External => 0,
        KeychainKind::Internal => 1,
    };
    (k, index)
}
