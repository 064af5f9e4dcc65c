//! The application service: what the API and the CLI can ask of the appliance.
//!
//! It owns the store handle, the wallet and the payment processor task, and is the only
//! place where a payment is created or acknowledged.

mod health;
mod processor;
mod receipts;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bdk_wallet::Wallet;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::chain::ChainStatus;
use crate::config::Config;
use crate::payments::{Event, Payment, Status, lifecycle};
use crate::store::{AuditEntry, ListQuery, Outcome, Store, StoreError, WriteBatch};

/// Longest a reference may be.
pub const MAX_REFERENCE_LEN: usize = 128;
/// Longest a description may be.
pub const MAX_DESCRIPTION_LEN: usize = 512;
/// Largest page of `list_payments`.
pub const MAX_PAGE: usize = 500;
/// A create arriving during the first chain scan waits this long before it is refused.
const SCAN_WAIT: Duration = Duration::from_secs(10);
/// Retries of an update that lost a race with another writer of the same payment.
const CONFLICT_RETRIES: usize = 5;

/// Why a request to the application failed.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request is malformed; `field` names the culprit.
    #[error("{field}: {message}")]
    Invalid {
        /// Offending field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// No such payment.
    #[error("no payment with id {0}")]
    NotFound(String),
    /// The request conflicts with the payment's state.
    #[error("{0}")]
    Conflict(String),
    /// The first chain scan has not finished: addresses used before are not known yet.
    #[error(
        "the wallet is still scanning the chain for addresses used before this appliance; retry in a few seconds (the Electrum server must be reachable)"
    )]
    Scanning,
    /// Payment processing is turned off (ENABLE_ELECTRUM_PAYMENTS=false).
    #[error("payments are disabled on this appliance (ENABLE_ELECTRUM_PAYMENTS=false)")]
    Disabled,
    /// The appliance is locked down (see `access::lockdown`); the message says by whom and how to lift it.
    #[error("{0}")]
    LockedDown(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A request to create a payment.
#[derive(Debug, Clone)]
pub struct CreatePayment {
    /// Amount in satoshis.
    pub amount_sat: u64,
    /// Application reference (idempotency key).
    pub reference: String,
    /// Seconds until expiry; the configured default when `None`.
    pub expires_in_secs: Option<u64>,
    /// Free text.
    pub description: Option<String>,
}

/// The appliance's health, for `/api/status`, the page and `snakkaz-pay status`.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    /// True when the appliance does its job: Electrum connected (if enabled), store readable.
    pub healthy: bool,
    /// What is wrong, in operator words.
    pub problems: Vec<String>,
    /// Binary version.
    pub version: &'static str,
    /// Bitcoin network.
    pub network: String,
    /// Whether payments are enabled.
    pub payments_enabled: bool,
    /// Seconds since start.
    pub uptime_secs: u64,
    /// Electrum connection.
    pub electrum: ElectrumReport,
    /// Wallet summary.
    pub wallet: WalletReport,
    /// Number of payments per status.
    pub payments: BTreeMap<String, u64>,
    /// Downstream sink queue.
    pub outbox: OutboxReport,
    /// Supabase sink.
    pub sink: crate::sink::SinkReport,
    /// The last backup verification (`snakkaz-pay verify-backup`).
    pub backup_verification: crate::backup::status::VerificationStatus,
    /// Money no open payment counts, waiting for the operator (`snakkaz-pay receipts`).
    pub receipts: crate::payments::receipt::ReceiptTotals,
    /// The last reconciliation of the store with the chain (`snakkaz-pay reconcile`).
    pub reconcile: crate::ops::reconcile::ReconcileStatus,
    /// The running version and root slot, the last update's outcome, the database's
    /// last migration or rollback.
    pub update: crate::update::publish::UpdateReport,
}

/// Electrum part of the status.
#[derive(Debug, Clone, Serialize)]
pub struct ElectrumReport {
    /// Session up.
    pub connected: bool,
    /// Server in use.
    pub server: Option<String>,
    /// TLS in use.
    pub tls: bool,
    /// Server's tip.
    pub tip_height: Option<u32>,
    /// Seconds since the last notification.
    pub secs_since_last_notification: Option<u64>,
    /// Times the connection thread crashed and was started again.
    pub thread_restarts: u64,
    /// Reconnections since start.
    pub reconnects: u64,
    /// Duration of the last sync.
    pub last_sync_ms: Option<u64>,
    /// Scripts subscribed on the current session.
    pub subscriptions: u64,
    /// Scripts watched (open payments, late windows, change).
    pub watched: u64,
    /// Watched scripts not yet subscribed, or whose change is not yet synced.
    pub backlog: u64,
    /// How long the backlog has been non-empty.
    pub backlog_age_secs: Option<u64>,
    /// Smoothed time per Electrum round trip.
    pub request_ms: Option<u64>,
    /// Estimated cost of the session on the server (ElectrumX units).
    pub session_cost: u64,
    /// Sessions that ended with an error in the last 10 minutes.
    pub session_failures_10m: u64,
    /// Why detection is degraded while connected (empty when it is not).
    pub degraded: Vec<String>,
    /// Seconds without a session (None while connected).
    pub down_secs: Option<u64>,
    /// Last error.
    pub last_error: Option<String>,
}

/// Wallet part of the status.
#[derive(Debug, Clone, Serialize)]
pub struct WalletReport {
    /// Confirmed balance.
    pub confirmed_sat: u64,
    /// Unconfirmed balance (trusted + untrusted pending).
    pub unconfirmed_sat: u64,
    /// Receive addresses handed out.
    pub addresses_in_use: u32,
    /// The wallet's tip height.
    pub tip_height: u32,
}

/// Outbox part of the status.
#[derive(Debug, Clone, Serialize)]
pub struct OutboxReport {
    /// Changes waiting for the sink.
    pub pending: u64,
    /// Age of the oldest, in seconds.
    pub oldest_age_secs: Option<u64>,
}

/// Messages to the processor task.
#[derive(Debug)]
pub(crate) enum ProcessorMsg {
    /// A new payment to watch.
    Watch {
        /// Receive index.
        index: u32,
        /// The payment as created.
        payment: Box<Payment>,
    },
    /// Resync everything.
    SyncAll,
}

struct ProcessorSlot {
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    tx: mpsc::UnboundedSender<ProcessorMsg>,
}

/// The running application.
pub struct App {
    /// Validated configuration.
    pub cfg: Arc<Config>,
    /// The database.
    pub store: Store,
    wallet: Arc<Mutex<Wallet>>,
    /// The wallet's balance, kept per script and refreshed with each chain update.
    balances: Arc<Mutex<crate::wallet::Balances>>,
    /// The wallet's tip height, readable without the wallet lock.
    tip: AtomicU32,
    /// References being created right now, each with the lock its retries wait on.
    creating: Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// False until the first chain scan is recorded (no address is handed out before).
    scanned: tokio::sync::watch::Sender<bool>,
    chain_status: Arc<Mutex<ChainStatus>>,
    next_seq: AtomicU64,
    started: Instant,
    processor: tokio::sync::Mutex<Option<ProcessorSlot>>,
    /// The Supabase sink's state, written by the sink task (see `daemon`).
    pub sink_status: crate::sink::SharedStatus,
    /// Latency histograms for `/api/metrics/bitcoin` (see `metrics`).
    pub metrics: crate::metrics::Metrics,
    /// History for the appliance's own alert evaluation (see `alerts`).
    pub alert_tracker: crate::alerts::Tracker,
}

impl App {
    /// Opens the store and the wallet. Does not start the processor (see `start`).
    pub fn open(cfg: Config) -> anyhow::Result<Arc<App>> {
        use anyhow::Context as _;
        let store = Store::open(&cfg.db_path)
            .with_context(|| format!("opening database {}", cfg.db_path.display()))?;
        let wallet = crate::wallet::load_or_create(&store, &crate::wallet::WalletParams::of(&cfg))
            .context("loading the wallet")?;
        // After `snakkaz-pay restore`: skip past addresses handed out after the backup.
        let mut wallet = wallet;
        crate::backup::restore::apply_skip_ahead(&store, &mut wallet)
            .context("applying the restore skip-ahead")?;
        let next_seq = store.last_seq()? + 1;
        // Without a sink nobody drains the outbox: do not fill it (the store remembers
        // that it skipped, and a sink configured later starts with a full resync).
        store.set_outbox(cfg.supabase_db_url_file.is_some());
        let balances = crate::wallet::Balances::compute(&wallet);
        let tip = crate::wallet::tip_height(&wallet);
        // Payments disabled or no server: nothing to scan with and nothing handed out.
        let scanned = store.chain_scanned()?
            || !cfg.enabled
            || cfg.servers.is_empty()
            || cfg.scan_stop_gap == 0;
        if !scanned {
            tracing::info!(
                stop_gap = cfg.scan_stop_gap,
                "new wallet: payments wait for a chain scan for addresses used before"
            );
        } else if cfg.scan_stop_gap == 0 && !store.chain_scanned()? {
            tracing::warn!(
                "SNAKKAZ_PAY_SCAN_STOP_GAP=0: no scan for addresses used before; only correct for a descriptor never used elsewhere"
            );
        }
        Ok(Arc::new(App {
            cfg: Arc::new(cfg),
            store,
            wallet: Arc::new(Mutex::new(wallet)),
            balances: Arc::new(Mutex::new(balances)),
            tip: AtomicU32::new(tip),
            scanned: tokio::sync::watch::Sender::new(scanned),
            creating: Mutex::default(),
            chain_status: Arc::new(Mutex::new(ChainStatus::default())),
            next_seq: AtomicU64::new(next_seq),
            started: Instant::now(),
            processor: tokio::sync::Mutex::new(None),
            sink_status: crate::sink::SharedStatus::default(),
            metrics: crate::metrics::Metrics::default(),
            alert_tracker: crate::alerts::Tracker::default(),
        }))
    }

    /// Starts (or restarts) the payment processor and its Electrum connection.
    pub async fn start_processor(self: &Arc<Self>) -> anyhow::Result<()> {
        let mut slot = self.processor.lock().await;
        if let Some(old) = slot.take() {
            old.cancel.cancel();
            if tokio::time::timeout(Duration::from_secs(30), old.task)
                .await
                .is_err()
            {
                tracing::error!("old payment processor did not stop within 30 s");
            }
        }
        let cancel = CancellationToken::new();
        let (tx, rx) = mpsc::unbounded_channel();
        let task = processor::spawn(self.clone(), rx, cancel.clone())?;
        *slot = Some(ProcessorSlot { cancel, task, tx });
        Ok(())
    }

    /// Starts the processor again when its task ended without being asked to (a panic);
    /// true when it did.
    pub async fn revive_processor(self: &Arc<Self>) -> anyhow::Result<bool> {
        let ended = {
            let slot = self.processor.lock().await;
            slot.as_ref()
                .is_some_and(|p| p.task.is_finished() && !p.cancel.is_cancelled())
        };
        if !ended {
            return Ok(false);
        }
        tracing::error!("the payment processor stopped unexpectedly; starting it again");
        self.store
            .commit(WriteBatch {
                audit: vec![AuditEntry {
                    at: crate::clock::now(),
                    action: "processor.restart".into(),
                    detail: "payment processor restarted after it stopped unexpectedly".into(),
                    source: "daemon".into(),
                }],
                ..Default::default()
            })
            .await?;
        self.start_processor().await?;
        Ok(true)
    }

    /// Stops the processor, waiting at most `limit`.
    pub async fn stop_processor(&self, limit: Duration) {
        let mut slot = self.processor.lock().await;
        if let Some(old) = slot.take() {
            old.cancel.cancel();
            if tokio::time::timeout(limit, old.task).await.is_err() {
                tracing::warn!("payment processor did not stop within {limit:?}");
            }
        }
    }

    async fn tell_processor(&self, msg: ProcessorMsg) {
        if let Some(slot) = self.processor.lock().await.as_ref() {
            // A stopped processor re-reads the store when it starts again.
            let _processor_restarting = slot.tx.send(msg);
        }
    }

    /// Creates a payment, or returns the existing one with the same reference (`false`).
    pub async fn create_payment(&self, req: CreatePayment) -> Result<(Payment, bool), AppError> {
        if let Some(rec) = self.store.lockdown()? {
            return Err(AppError::LockedDown(crate::access::refusal_message(&rec)));
        }
        validate_create(&req)?;
        if !self.cfg.enabled {
            return Err(AppError::Disabled);
        }
        if let Some(p) = self.store.payment_by_reference(&req.reference)? {
            same_request(&p, &req)?;
            return Ok((p, false));
        }
        // Concurrent retries of one reference: one reveals an address, the others wait
        // for it and answer with its payment; no address is burned.
        let reference = req.reference.clone();
        let slot = {
            let mut creating = self.creating.lock().expect("creating lock");
            creating.entry(reference.clone()).or_default().clone()
        };
        let result = {
            let _guard = slot.lock().await;
            self.create_locked(req).await
        };
        let mut creating = self.creating.lock().expect("creating lock");
        // Held by the map and by us only: nobody else waits on it.
        if creating
            .get(&reference)
            .is_some_and(|e| Arc::strong_count(e) <= 2)
        {
            creating.remove(&reference);
        }
        result
    }

    async fn create_locked(&self, req: CreatePayment) -> Result<(Payment, bool), AppError> {
        if let Some(p) = self.store.payment_by_reference(&req.reference)? {
            same_request(&p, &req)?;
            return Ok((p, false));
        }
        if self.scan_pending() {
            // Right after start the scan takes moments: wait a little rather than refuse.
            let mut rx = self.scanned.subscribe();
            let waited = tokio::time::timeout(SCAN_WAIT, rx.wait_for(|done| *done)).await;
            if !matches!(waited, Ok(Ok(_))) {
                return Err(AppError::Scanning);
            }
        }
        let now = crate::clock::now();
        let expires_in = req
            .expires_in_secs
            .unwrap_or(self.cfg.payment_expiry.as_secs());
        let (index, address, changeset) = {
            let mut w = self.wallet.lock().expect("wallet lock");
            crate::wallet::reveal_next(&mut w)
        };
        let payment = Payment {
            id: new_payment_id(),
            seq: self.next_seq.fetch_add(1, Ordering::SeqCst),
            reference: req.reference,
            description: req.description,
            address: address.to_string(),
            derivation_index: index,
            amount_sat: req.amount_sat,
            received_sat: 0,
            status: Status::Pending,
            confirmations: 0,
            txids: Vec::new(),
            flags: Default::default(),
            created_at: now,
            updated_at: now,
            expires_at: now.saturating_add(expires_in),
            first_seen_at: None,
            confirmed_at: None,
            covered_height: None,
            // The wallet's tip: money confirmed at or below it predates this payment.
            created_height: Some(self.tip()).filter(|h| *h > 0),
            version: 1,
        };
        let event = lifecycle::created_event(&payment);
        let outcome = self
            .store
            .commit(WriteBatch {
                create: Some((payment.clone(), event)),
                wallet: changeset,
                ..Default::default()
            })
            .await?;
        match outcome {
            Outcome::Committed => {
                self.tell_processor(ProcessorMsg::Watch {
                    index,
                    payment: Box::new(payment.clone()),
                })
                .await;
                Ok((payment, true))
            }
            Outcome::DuplicateReference(existing) => Ok((*existing, false)),
        }
    }

    /// True while the first chain scan is still to be done.
    pub(crate) fn scan_pending(&self) -> bool {
        !*self.scanned.borrow()
    }

    pub(crate) fn scan_done(&self) {
        self.scanned.send_replace(true);
    }

    /// The wallet's tip height.
    pub fn tip(&self) -> u32 {
        self.tip.load(Ordering::Relaxed)
    }

    pub(crate) fn set_tip(&self, tip: u32) {
        self.tip.store(tip, Ordering::Relaxed);
    }

    /// A payment as read now: its confirmations derived from the current tip.
    fn live(&self, mut p: Payment) -> Payment {
        p.confirmations = p.confirmations_at(self.tip());
        p
    }

    /// A payment and its history.
    pub fn payment(&self, id: &str) -> Result<(Payment, Vec<Event>), AppError> {
        let p = self
            .store
            .payment(id)?
            .ok_or_else(|| AppError::NotFound(id.to_owned()))?;
        let events = self.store.events(p.seq)?;
        Ok((self.live(p), events))
    }

    /// A page of payments, newest first.
    pub fn list_payments(&self, q: &ListQuery) -> Result<(Vec<Payment>, Option<u64>), AppError> {
        if q.limit == 0 || q.limit > MAX_PAGE {
            return Err(AppError::Invalid {
                field: "limit",
                message: format!("must be between 1 and {MAX_PAGE}"),
            });
        }
        let (ps, next) = self.store.list_payments(q)?;
        Ok((ps.into_iter().map(|p| self.live(p)).collect(), next))
    }

    /// The operator has dealt with a payment whose money left the chain after it was
    /// confirmed (admin API); idempotent.
    pub async fn acknowledge_loss(&self, id: &str) -> Result<Payment, AppError> {
        for _ in 0..CONFLICT_RETRIES {
            let (p, _) = self.payment(id)?;
            let Some(t) = lifecycle::acknowledge_loss(&p, crate::clock::now()) else {
                return Ok(p);
            };
            let batch = WriteBatch {
                updates: vec![(t.payment.clone(), t.events)],
                audit: vec![AuditEntry {
                    at: crate::clock::now(),
                    action: "payment.acknowledge-loss".into(),
                    detail: format!("loss of payment {id} acknowledged"),
                    source: "admin api".into(),
                }],
                ..Default::default()
            };
            match self.store.commit(batch).await {
                Ok(_) => return Ok(self.live(t.payment)),
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(AppError::Conflict(format!(
            "payment {id} kept changing; try again"
        )))
    }

    /// Acknowledges a confirmed payment (idempotent for a completed one).
    pub async fn complete_payment(&self, id: &str) -> Result<Payment, AppError> {
        for _ in 0..CONFLICT_RETRIES {
            let (p, _) = self.payment(id)?;
            let t = match lifecycle::complete(&p, crate::clock::now()) {
                Ok(Some(t)) => t,
                Ok(None) => return Ok(p),
                Err(e) => return Err(AppError::Conflict(e.to_string())),
            };
            let batch = WriteBatch {
                updates: vec![(t.payment.clone(), t.events)],
                audit: vec![AuditEntry {
                    at: crate::clock::now(),
                    action: "payment.complete".into(),
                    detail: format!("payment {id} acknowledged"),
                    source: "api".into(),
                }],
                ..Default::default()
            };
            match self.store.commit(batch).await {
                Ok(_) => return Ok(t.payment),
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(AppError::Conflict(format!(
            "payment {id} kept changing; try again"
        )))
    }

    /// Restarts the processor (admin API), recording it in the audit log.
    pub async fn restart_processor(self: &Arc<Self>) -> anyhow::Result<()> {
        self.store
            .commit(WriteBatch {
                audit: vec![AuditEntry {
                    at: crate::clock::now(),
                    action: "processor.restart".into(),
                    detail: "payment processor restarted through the admin API".into(),
                    source: "admin-api".into(),
                }],
                ..Default::default()
            })
            .await?;
        self.start_processor().await
    }

    /// Runs `f` on the wallet under its lock (views for the Electrum-compatible JSON-RPC).
    pub fn with_wallet<R>(&self, f: impl FnOnce(&mut Wallet) -> R) -> R {
        f(&mut self.wallet.lock().expect("wallet lock"))
    }

    /// Asks the processor to resync every revealed address now.
    pub async fn sync_all(&self) {
        self.tell_processor(ProcessorMsg::SyncAll).await;
    }

    /// The appliance's health and summary.
    pub fn status(&self) -> Result<StatusReport, AppError> {
        let chain = self.chain_status.lock().expect("status lock").clone();
        let now = crate::clock::now();
        let next_index = {
            let w = self.wallet.lock().expect("wallet lock");
            w.next_derivation_index(bdk_wallet::KeychainKind::External)
        };
        let tip = self.tip();
        let (confirmed_sat, unconfirmed_sat) = {
            let b = self.balances.lock().expect("balances lock");
            (b.confirmed(), b.unconfirmed())
        };
        let counts = self.store.status_counts()?;
        let (outbox_len, oldest) = self.store.outbox_stats()?;
        let detection = health::detection(
            &chain,
            self.cfg.enabled,
            now,
            self.cfg.detection_backlog_alert.as_secs(),
        );
        let mut problems = detection.problems();
        if let Some(f) = self.store.io_failure() {
            problems.push(format!("database: {f}"));
        }
        let lost = self
            .store
            .flag_counts()?
            .get(crate::payments::FLAG_MONEY_LOST);
        if lost > 0 {
            problems.push(format!(
                "{lost} payment(s) lost their money after being confirmed (double spend or reorg): check what was delivered for them (payments flagged money_lost), then POST /api/admin/payments/ID/acknowledge-loss"
            ));
        }
        let receipts = crate::payments::receipt::ReceiptTotals::of(&self.store.receipts()?);
        if receipts.unassigned > 0 {
            problems.push(format!(
                "{} unattributed receipt(s), {} sat: money arrived at addresses no open payment owns; list them with `snakkaz-pay receipts` and assign each to a payment",
                receipts.unassigned, receipts.unassigned_sat
            ));
        }
        let (sink, sink_problem) = self
            .sink_status
            .report(outbox_len, oldest.map(|t| now.saturating_sub(t)));
        problems.extend(sink_problem);
        let update = crate::update::publish::UpdateReport::read(
            &crate::update::publish::sysroot(),
            self.store.update_notice()?,
        );
        problems.extend(update.problems(now));
        Ok(StatusReport {
            healthy: problems.is_empty(),
            problems,
            version: env!("CARGO_PKG_VERSION"),
            network: self.cfg.network.to_string(),
            payments_enabled: self.cfg.enabled,
            uptime_secs: self.started.elapsed().as_secs(),
            electrum: ElectrumReport {
                connected: chain.connected,
                server: chain.server,
                tls: chain.tls,
                tip_height: chain.tip_height,
                secs_since_last_notification: chain
                    .last_notification_at
                    .map(|t| now.saturating_sub(t)),
                reconnects: chain.reconnects,
                thread_restarts: chain.thread_restarts,
                last_sync_ms: chain.last_sync_ms,
                subscriptions: chain.subscriptions,
                watched: chain.watched,
                backlog: chain.backlog,
                backlog_age_secs: chain.backlog_since.map(|t| now.saturating_sub(t)),
                request_ms: chain.request_ms,
                session_cost: chain.session_cost,
                session_failures_10m: chain.recent_failures.len() as u64,
                degraded: detection.degraded,
                down_secs: chain.down_since.map(|t| now.saturating_sub(t)),
                last_error: chain.last_error,
            },
            wallet: WalletReport {
                confirmed_sat,
                unconfirmed_sat,
                addresses_in_use: next_index,
                tip_height: tip,
            },
            payments: counts
                .into_iter()
                .map(|(s, n)| (s.as_str().to_owned(), n))
                .collect(),
            outbox: OutboxReport {
                pending: outbox_len,
                oldest_age_secs: oldest.map(|t| now.saturating_sub(t)),
            },
            sink,
            backup_verification: crate::backup::status::verification_status(
                self.store.backup_verification()?.as_ref(),
                self.cfg.backup.verify_max_age,
                now,
            ),
            receipts,
            reconcile: crate::ops::reconcile::status(&self.store, now)?,
            update,
        })
    }
}

/// A create with a reference already used must ask for the same payment: a retry. Any
/// other amount, expiry or description is a different payment under the same name.
fn same_request(existing: &Payment, req: &CreatePayment) -> Result<(), AppError> {
    let differ = |field: &str, theirs: String, ours: String| {
        Err(AppError::Conflict(format!(
            "reference {:?} is already payment {} with {field} {ours}, not {theirs}; use a new reference for a new payment, or repeat the same {field} to get the existing one",
            existing.reference, existing.id
        )))
    };
    if req.amount_sat != existing.amount_sat {
        return differ(
            "amount_sat",
            req.amount_sat.to_string(),
            existing.amount_sat.to_string(),
        );
    }
    if let Some(secs) = req.expires_in_secs {
        let original = existing.expires_at.saturating_sub(existing.created_at);
        if secs != original {
            return differ("expires_in_secs", secs.to_string(), original.to_string());
        }
    }
    if req.description.is_some() && req.description != existing.description {
        let show = |d: &Option<String>| format!("{:?}", d.as_deref().unwrap_or(""));
        return differ(
            "description",
            show(&req.description),
            show(&existing.description),
        );
    }
    Ok(())
}

fn validate_create(req: &CreatePayment) -> Result<(), AppError> {
    if req.amount_sat == 0 || req.amount_sat > crate::payments::MAX_AMOUNT_SAT {
        return Err(AppError::Invalid {
            field: "amount_sat",
            message: format!(
                "must be an integer number of satoshis from 1 to {}",
                crate::payments::MAX_AMOUNT_SAT
            ),
        });
    }
    let r = &req.reference;
    if r.is_empty() || r.chars().count() > MAX_REFERENCE_LEN {
        return Err(AppError::Invalid {
            field: "reference",
            message: format!("must be 1 to {MAX_REFERENCE_LEN} characters"),
        });
    }
    if r.chars().any(|c| c.is_control() || is_bidi_control(c)) {
        return Err(AppError::Invalid {
            field: "reference",
            message: "must contain only printable characters (no control or bidirectional-override characters)".into(),
        });
    }
    if r.trim() != r {
        return Err(AppError::Invalid {
            field: "reference",
            message: "must not start or end with spaces".into(),
        });
    }
    if let Some(secs) = req.expires_in_secs
        && !(1..=30 * 24 * 3600).contains(&secs)
    {
        return Err(AppError::Invalid {
            field: "expires_in_secs",
            message: "must be between 1 and 2592000 (30 days)".into(),
        });
    }
    if let Some(d) = &req.description
        && (d.chars().count() > MAX_DESCRIPTION_LEN || d.chars().any(|c| c.is_control()))
    {
        return Err(AppError::Invalid {
            field: "description",
            message: format!("must be at most {MAX_DESCRIPTION_LEN} printable characters"),
        });
    }
    Ok(())
}

/// Characters that reorder text when shown (Trojan-Source style): a reference containing
/// them can look like another one on the page or in a log.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

fn new_payment_id() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("the OS random number generator works");
    format!("pay_{}", hex::encode(b))
}
