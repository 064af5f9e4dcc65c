//! The payment processor: applies chain updates to the wallet, runs the lifecycle over the
//! payments they touch, expires payments on time, and commits all of it atomically.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{App, CONFLICT_RETRIES, ProcessorMsg};
use crate::chain::{ChainCommand, ChainEvent, ChainHandle, ChainSettings, Server};
use crate::payments::{Observation, Payment, Status, lifecycle};
use crate::store::{StoreError, TxCacheEntry, WriteBatch};

/// How often expiries and the late-payment window are checked.
const TICK: Duration = Duration::from_secs(1);

/// Spawns the processor task.
pub(super) fn spawn(
    app: Arc<App>,
    rx: mpsc::UnboundedReceiver<ProcessorMsg>,
    cancel: CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let mut p = Processor {
        app: app.clone(),
        watched: BTreeMap::new(),
    };
    p.load_watched()?;
    let (ev_tx, ev_rx) = mpsc::channel(64);
    let chain = if app.cfg.enabled && !app.cfg.servers.is_empty() {
        let spks = {
            let w = app.wallet.lock().expect("wallet lock");
            p.watched
                .keys()
                .map(|&i| (i, crate::wallet::receive_spk(&w, i)))
                .collect()
        };
        Some(ChainHandle::spawn(
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
            },
            app.wallet.clone(),
            spks,
            app.chain_status.clone(),
            ev_tx,
        )?)
    } else {
        None
    };
    Ok(tokio::spawn(p.run(chain, rx, ev_rx, cancel)))
}

struct Processor {
    app: Arc<App>,
    /// Receive index → payment id, for every payment whose address is watched.
    watched: BTreeMap<u32, String>,
}

impl Processor {
    fn load_watched(&mut self) -> Result<(), StoreError> {
        let now = crate::clock::now();
        for p in self.app.store.all_payments()? {
            if self.should_watch(&p, now) {
                self.watched.insert(p.derivation_index, p.id);
            }
        }
        Ok(())
    }

    /// Open payments, and closed ones still inside the late-payment window.
    fn should_watch(&self, p: &Payment, now: u64) -> bool {
        match p.status {
            Status::Pending | Status::Unconfirmed | Status::Confirmed => true,
            Status::Completed | Status::Expired | Status::Underpaid => {
                now < p
                    .expires_at
                    .saturating_add(self.app.cfg.late_payment_window.as_secs())
            }
        }
    }

    async fn run(
        mut self,
        chain: Option<ChainHandle>,
        mut rx: mpsc::UnboundedReceiver<ProcessorMsg>,
        mut events: mpsc::Receiver<ChainEvent>,
        cancel: CancellationToken,
    ) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                msg = rx.recv() => match msg {
                    Some(ProcessorMsg::Watch { index, id }) => {
                        if let Some(c) = &chain {
                            let spk = {
                                let w = self.app.wallet.lock().expect("wallet lock");
                                crate::wallet::receive_spk(&w, index)
                            };
                            c.send(ChainCommand::Watch(index, spk));
                        }
                        self.watched.insert(index, id);
                    }
                    Some(ProcessorMsg::SyncAll) => {
                        if let Some(c) = &chain {
                            c.send(ChainCommand::SyncAll);
                        }
                    }
                    None => break,
                },
                ev = events.recv(), if chain.is_some() => match ev {
                    Some(ChainEvent::Update { update, indices, notified_at, tip }) => {
                        self.on_update(*update, indices, notified_at, tip.is_some()).await;
                    }
                    Some(ChainEvent::Connected { .. }) | Some(ChainEvent::Disconnected { .. }) => {}
                    None => {
                        tracing::error!("chain thread stopped unexpectedly");
                        break;
                    }
                },
                _ = tick.tick() => self.on_tick(&chain).await,
            }
        }
        if let Some(c) = chain {
            // The chain thread blocks on network I/O with a timeout; join it off the runtime.
            let joined = tokio::task::spawn_blocking(move || c.shutdown()).await;
            if joined.is_err() {
                tracing::error!("chain thread shutdown panicked");
            }
        }
    }

    async fn on_update(
        &mut self,
        update: bdk_wallet::Update,
        indices: BTreeSet<u32>,
        notified_at: Option<Instant>,
        tip_moved: bool,
    ) {
        let changeset = {
            let mut w = self.app.wallet.lock().expect("wallet lock");
            if let Err(e) = w.apply_update(update) {
                tracing::warn!(error = %e, "chain update does not connect to the wallet's chain; waiting for the next sync");
                return;
            }
            w.take_staged()
        };
        // A new block changes every open payment's depth, not only the notified ones.
        let mut eval: BTreeSet<u32> = indices
            .into_iter()
            .filter(|i| self.watched.contains_key(i))
            .collect();
        if tip_moved {
            eval.extend(self.watched.keys().copied());
        }
        let changed = self.evaluate(eval, changeset).await;
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

    /// Stores a fresh wallet summary when payments were created since the last one.
    async fn refresh_summary_if_addresses_moved(&self) {
        let stored = match self.app.store.wallet_summary() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "reading the wallet summary");
                return;
            }
        };
        let summary = {
            let w = self.app.wallet.lock().expect("wallet lock");
            let in_use = w.next_derivation_index(bdk_wallet::KeychainKind::External);
            if stored.is_some_and(|s| s.addresses_in_use == in_use) {
                return;
            }
            crate::wallet::summary(&w, crate::clock::now())
        };
        let batch = WriteBatch {
            wallet_summary: Some(summary),
            ..Default::default()
        };
        if let Err(e) = self.app.store.commit(batch).await {
            tracing::warn!(error = %e, "storing the wallet summary");
        }
    }

    async fn on_tick(&mut self, chain: &Option<ChainHandle>) {
        self.refresh_summary_if_addresses_moved().await;
        let now = crate::clock::now();
        crate::alerts::tick(&self.app, now);
        let mut due = BTreeSet::new();
        let mut drop = Vec::new();
        for (&i, id) in &self.watched {
            let p = match self.app.store.payment(id) {
                Ok(Some(p)) => p,
                Ok(None) => continue,
                Err(e) => {
                    tracing::error!(error = %e, "reading payment for expiry check");
                    return;
                }
            };
            if p.status == Status::Pending && now >= p.expires_at {
                due.insert(i);
            } else if !self.should_watch(&p, now) {
                drop.push(i);
            }
        }
        for i in drop {
            self.watched.remove(&i);
            if let Some(c) = chain {
                c.send(ChainCommand::Unwatch(i));
            }
        }
        if !due.is_empty() {
            self.evaluate(due, None).await;
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

    /// Runs the lifecycle over these receive indices and commits the changes together with
    /// the wallet changeset, retrying when a concurrent acknowledgement won the race.
    /// Returns how many payments changed.
    async fn evaluate(
        &mut self,
        indices: BTreeSet<u32>,
        changeset: Option<bdk_wallet::ChangeSet>,
    ) -> usize {
        let policy = self.app.cfg.policy();
        for attempt in 0..CONFLICT_RETRIES {
            let now = crate::clock::now();
            let (seen, tip, summary) = {
                let w = self.app.wallet.lock().expect("wallet lock");
                (
                    crate::wallet::seen_txs(&w, &indices),
                    crate::wallet::tip_height(&w),
                    // Balances only move with chain data: refresh the summary with it.
                    changeset.is_some().then(|| crate::wallet::summary(&w, now)),
                )
            };
            let tx_cache = self.tx_cache_changes(&seen, now);
            let mut updates = Vec::new();
            for (i, txs) in seen {
                let Some(id) = self.watched.get(&i) else {
                    continue;
                };
                let p = match self.app.store.payment(id) {
                    Ok(Some(p)) => p,
                    Ok(None) => continue,
                    Err(e) => {
                        tracing::error!(error = %e, payment = %id, "reading payment");
                        continue;
                    }
                };
                let obs = Observation {
                    txs,
                    tip_height: tip,
                    now,
                };
                if let Some(t) = lifecycle::evaluate(&p, &obs, &policy) {
                    for ev in &t.events {
                        tracing::info!(payment = %p.id, from = ?ev.from, to = %ev.to, reason = %ev.reason, "payment changed");
                    }
                    updates.push((t.payment, t.events));
                }
            }
            if updates.is_empty() && changeset.is_none() && tx_cache.is_empty() {
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
            let batch = WriteBatch {
                updates,
                wallet: changeset.clone(),
                tx_cache,
                wallet_summary: summary,
                ..Default::default()
            };
            match self.app.store.commit(batch).await {
                Ok(_) => {
                    for secs in confirmations {
                        self.app.metrics.observe_confirmation(secs);
                    }
                    return changed;
                }
                Err(StoreError::Conflict { id, .. }) => {
                    tracing::debug!(payment = %id, attempt, "payment changed concurrently; re-evaluating");
                }
                Err(e) => {
                    tracing::error!(error = %e, "committing payment updates failed; will retry on the next change");
                    return 0;
                }
            }
        }
        tracing::error!("payment updates kept conflicting; giving up until the next change");
        0
    }
}
