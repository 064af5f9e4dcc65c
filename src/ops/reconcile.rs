//! `snakkaz-pay reconcile [--fix]`: the store compared with the chain (every payment's
//! address history through the Electrum server, paced within the request budget) and,
//! when a sink is configured, with the Supabase rows.
//!
//! The work goes in slices of a bounded duration; after every page of payments the cursor
//! is committed to the store, so an interrupted run (or the next slice) continues where
//! the last one stopped. What the chain says is judged by the payment lifecycle itself
//! (`payments::lifecycle::evaluate`): reconcile never has its own idea of a status.
//! The pure parts (classification, evidence) are below the I/O and unit-tested.

mod compare;

use std::collections::HashMap;
use std::str::FromStr;
use std::time::{Duration, Instant};

use bdk_wallet::bitcoin::{Address, Network, Transaction, Txid};
use serde::{Deserialize, Serialize};

use super::OpsError;
use crate::chain::budget::{Budget, cost};
use crate::chain::lookup::Lookup;
use crate::config::Config;
use crate::payments::{Event, Observation, Payment, SeenTx, lifecycle};
use crate::sink::reconcile::SinkReader;
use crate::store::{AuditEntry, Store, StoreError, WriteBatch};
pub use compare::{DiffKind, Difference, classify, sink_difference};

/// Payments checked between two commits of the cursor.
pub const PAGE: usize = 50;
/// Longest slice of work per call (the admin API answers within the CLI's request
/// timeout; the CLI calls again until the run is complete).
pub const SLICE: Duration = Duration::from_secs(20);
/// Most differences listed in a report (the counts stay exact).
pub const MAX_LISTED: usize = 1000;
/// Reason prefix of the event a fix records.
pub const REASON_RECONCILED: &str = "reconciled";

/// A run in progress: committed after every page, removed when the run finishes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Unix seconds the run started.
    pub started_at: u64,
    /// The next payment (store sequence number) to check.
    pub next_seq: u64,
    /// Payments checked so far.
    pub checked: u64,
    /// Differences found so far.
    pub differences_found: u64,
    /// Differences fixed so far.
    pub fixed: u64,
    /// The differences (at most `MAX_LISTED`).
    pub differences: Vec<Difference>,
    /// Why the Supabase rows could not be compared, if they could not.
    pub sink_error: Option<String>,
    /// Slices this run took.
    pub slices: u32,
    /// Estimated cost of our requests on the server at `cost_at`, in thousandths of a
    /// unit: the next slice starts from it (ElectrumX charges an address's sessions
    /// together, so a new session does not start from nothing).
    #[serde(default)]
    pub cost_milli: u64,
    /// Unix seconds of `cost_milli`.
    #[serde(default)]
    pub cost_at: u64,
}

/// The report of a run: complete, or how far it got.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// The whole store was compared.
    pub complete: bool,
    /// Differences were fixed as they were found (`--fix`).
    pub fix: bool,
    /// Unix seconds the run started.
    pub started_at: u64,
    /// Unix seconds the run finished (`None` while in progress).
    pub finished_at: Option<u64>,
    /// Payments checked.
    pub checked: u64,
    /// Payments in the store.
    pub total: u64,
    /// Differences found.
    pub differences_found: u64,
    /// Of them, fixed.
    pub fixed: u64,
    /// Found and not fixed.
    pub unfixed: u64,
    /// The differences (at most `MAX_LISTED`).
    pub differences: Vec<Difference>,
    /// The Electrum server asked.
    pub server: Option<String>,
    /// Its tip during the last slice.
    pub tip_height: Option<u32>,
    /// `compared` (the Supabase rows were checked), `not_configured`, or `failed`.
    pub sink: String,
    /// Why the Supabase rows could not be compared.
    pub sink_error: Option<String>,
    /// Requests' estimated cost on the server in the last slice (ElectrumX units).
    pub electrum_cost: u64,
    /// Slices the run took (more than one: it was paced, interrupted or continued).
    pub slices: u32,
}

impl Report {
    fn from_cursor(c: &Cursor, fix: bool, total: u64, sink_configured: bool) -> Report {
        Report {
            complete: false,
            fix,
            started_at: c.started_at,
            finished_at: None,
            checked: c.checked,
            total,
            differences_found: c.differences_found,
            fixed: c.fixed,
            unfixed: c.differences_found.saturating_sub(c.fixed),
            differences: c.differences.clone(),
            server: None,
            tip_height: None,
            sink: if c.sink_error.is_some() {
                "failed"
            } else if sink_configured {
                "compared"
            } else {
                "not_configured"
            }
            .to_owned(),
            sink_error: c.sink_error.clone(),
            electrum_cost: 0,
            slices: c.slices,
        }
    }
}

/// The reconciliation section of `/api/status` and the page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReconcileStatus {
    /// Unix seconds the last complete run finished.
    pub last_run_at: Option<u64>,
    /// Seconds since then.
    pub age_secs: Option<u64>,
    /// Payments it checked.
    pub checked: Option<u64>,
    /// Differences it found.
    pub differences: Option<u64>,
    /// Of them, fixed.
    pub fixed: Option<u64>,
    /// Found and not fixed.
    pub unfixed: Option<u64>,
    /// The Supabase rows could not be compared: why.
    pub sink_error: Option<String>,
    /// A run is unfinished (it continues at the next `snakkaz-pay reconcile`).
    pub in_progress: bool,
}

/// The status from what the store keeps.
pub fn status(store: &Store, now: u64) -> Result<ReconcileStatus, StoreError> {
    let report: Option<Report> = store.reconcile_report()?;
    let cursor: Option<Cursor> = store.reconcile_cursor()?;
    Ok(match report {
        Some(r) => ReconcileStatus {
            last_run_at: r.finished_at,
            age_secs: r.finished_at.map(|t| now.saturating_sub(t)),
            checked: Some(r.checked),
            differences: Some(r.differences_found),
            fixed: Some(r.fixed),
            unfixed: Some(r.unfixed),
            sink_error: r.sink_error,
            in_progress: cursor.is_some(),
        },
        None => ReconcileStatus {
            in_progress: cursor.is_some(),
            ..Default::default()
        },
    })
}

/// Held while a slice runs.
static RUNNING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// What the chain shows for one address: the transactions that count for the payment.
struct ChainView {
    txs: Vec<SeenTx>,
}

/// One slice's session: the Electrum server paced by the budget, and the transactions
/// already fetched.
struct Session {
    lookup: Lookup,
    budget: Budget,
    network: Network,
    deadline: Instant,
    txs: HashMap<Txid, Transaction>,
}

/// The slice ran out of time before the next request.
struct OutOfTime;

impl Session {
    /// Waits for the budget to allow `units`; `Err` when that would pass the deadline
    /// (after waiting out the slice, so that the next slice finds the budget recovered).
    fn pace(&mut self, units: f64) -> Result<(), OutOfTime> {
        self.budget.tick(Instant::now(), 0);
        let wait = self.budget.wait_for(units, 0);
        if Instant::now() + wait >= self.deadline {
            std::thread::sleep(self.deadline.saturating_duration_since(Instant::now()));
            return Err(OutOfTime);
        }
        std::thread::sleep(wait);
        self.budget.tick(Instant::now(), 0);
        self.budget.charge(units);
        Ok(())
    }

    /// The transactions paying `p`'s address now, as the lifecycle counts them.
    fn view(&mut self, p: &Payment) -> Result<Result<ChainView, OutOfTime>, OpsError> {
        let address = Address::from_str(&p.address)
            .ok()
            .and_then(|a| a.require_network(self.network).ok())
            .ok_or_else(|| {
                OpsError::Invalid(format!(
                    "payment {} has address {} that is not a {} address",
                    p.id, p.address, self.network
                ))
            })?;
        let script = address.script_pubkey();
        if let Err(o) = self.pace(cost::SCRIPT) {
            return Ok(Err(o));
        }
        let history = self.lookup.history(&script)?;
        // Money confirmed at or below the tip at creation was there before the payment
        // and is never credited to it (as the daemon's own evaluation does).
        let counted: Vec<(Txid, Option<u32>)> = history
            .iter()
            .map(|h| {
                let height = u32::try_from(h.height).ok().filter(|&h| h > 0);
                (h.tx_hash, height)
            })
            .filter(|(_, h)| !matches!((h, p.created_height), (Some(h), Some(c)) if *h <= c))
            .collect();
        // A txid commits to its outputs: when the chain shows exactly the one transaction
        // the store counts, its value is the stored amount and needs no fetch.
        if counted.len() == 1 && p.txids.len() == 1 && counted[0].0.to_string() == p.txids[0] {
            return Ok(Ok(ChainView {
                txs: vec![SeenTx {
                    txid: p.txids[0].clone(),
                    value_sat: p.received_sat,
                    height: counted[0].1,
                }],
            }));
        }
        let mut txs = Vec::with_capacity(counted.len());
        for (txid, height) in counted {
            let tx = match self.txs.get(&txid) {
                Some(tx) => tx.clone(),
                None => {
                    if let Err(o) = self.pace(cost::TX) {
                        return Ok(Err(o));
                    }
                    // Listed in the history but unknown by the time we ask: it left the
                    // mempool in between; it does not count.
                    let Some(tx) = self.lookup.transaction(&txid)? else {
                        continue;
                    };
                    self.txs.insert(txid, tx.clone());
                    tx
                }
            };
            let value_sat: u64 = tx
                .output
                .iter()
                .filter(|o| o.script_pubkey == script)
                .map(|o| o.value.to_sat())
                .sum();
            txs.push(SeenTx {
                txid: txid.to_string(),
                value_sat,
                height,
            });
        }
        Ok(Ok(ChainView { txs }))
    }
}

/// Runs one slice of a reconciliation (starting one, or continuing the unfinished one)
/// and returns where it stands. Call again until `complete`.
pub fn run_slice(cfg: &Config, store: &Store, fix: bool) -> Result<Report, OpsError> {
    run_slice_until(cfg, store, fix, Instant::now() + SLICE)
}

/// `run_slice` with an explicit deadline.
pub fn run_slice_until(
    cfg: &Config,
    store: &Store,
    fix: bool,
    deadline: Instant,
) -> Result<Report, OpsError> {
    // One run at a time in this process (the daemon's admin API); another process cannot
    // open the database while we hold it.
    let _one_at_a_time = match RUNNING.try_lock() {
        Ok(g) => g,
        // A slice that panicked left nothing half-written (pages commit whole).
        Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
        Err(std::sync::TryLockError::WouldBlock) => {
            return Err(OpsError::Invalid(
                "a reconciliation is already running; wait for it (see `snakkaz-pay status`)"
                    .into(),
            ));
        }
    };
    let now = crate::clock::now();
    let mut cursor: Cursor = store.reconcile_cursor()?.unwrap_or(Cursor {
        started_at: now,
        ..Default::default()
    });
    cursor.slices = cursor.slices.saturating_add(1);
    let total = store.payment_count()?;
    let lookup = super::open_lookup(cfg)?;
    let server = lookup.server().to_string();
    let tip = lookup.tip()?;
    let mut session = Session {
        lookup,
        budget: carried_budget(cfg.electrum_cost_budget, &cursor, now),
        network: cfg.network,
        deadline,
        txs: HashMap::new(),
    };
    let sink_settings = match crate::sink::settings(cfg) {
        Ok(s) => s,
        Err(e) => {
            cursor.sink_error = Some(e.to_string());
            None
        }
    };
    let sink_configured = cfg.supabase_db_url_file.is_some();
    let rt = SinkRuntime::new()?;
    let reader = match &sink_settings {
        Some(s) if cursor.sink_error.is_none() => match rt.block_on(SinkReader::connect(s)) {
            Ok(r) => Some(r),
            Err(e) => {
                cursor.sink_error = Some(e.to_string());
                None
            }
        },
        _ => None,
    };
    let policy = cfg.policy();
    let mut out_of_time = false;
    loop {
        let page = store.payments_from(cursor.next_seq, PAGE)?;
        if page.is_empty() {
            break;
        }
        let mut found: Vec<Found> = Vec::new();
        let mut done = 0usize;
        for p in &page {
            let view = match session.view(p)? {
                Ok(v) => v,
                Err(OutOfTime) => {
                    out_of_time = true;
                    break;
                }
            };
            done += 1;
            let obs = Observation {
                txs: view.txs,
                tip_height: tip,
                now: crate::clock::now(),
            };
            if let Some((diff, t)) = classify(p, &obs, &policy, &server) {
                found.push(Found {
                    payment: p.clone(),
                    diff,
                    transition: Some(t),
                    obs: Some(obs),
                });
            }
        }
        let checked_page = &page[..done];
        // The Supabase rows of the payments the chain did not change (a changed one is
        // sent again by its fix anyway).
        if let Some(r) = &reader
            && cursor.sink_error.is_none()
            && !checked_page.is_empty()
        {
            let ids: Vec<String> = checked_page
                .iter()
                .filter(|p| !found.iter().any(|f| f.payment.id == p.id))
                .map(|p| p.id.clone())
                .collect();
            match rt.block_on(r.rows(&ids)) {
                Ok(rows) => {
                    for p in checked_page.iter().filter(|p| ids.contains(&p.id)) {
                        if let Some(diff) = sink_difference(p, rows.get(&p.id), r.label()) {
                            found.push(Found {
                                payment: p.clone(),
                                diff,
                                transition: None,
                                obs: None,
                            });
                        }
                    }
                }
                Err(e) => cursor.sink_error = Some(e.to_string()),
            }
        }
        cursor.cost_milli = (session.budget.spent() * 1000.0).round() as u64;
        cursor.cost_at = crate::clock::now();
        let fixed = commit_page(store, &mut cursor, found, fix, checked_page, |p, obs| {
            classify(p, obs, &policy, &server)
        })?;
        tracing::debug!(checked = done, fixed, "reconcile page");
        if out_of_time {
            break;
        }
    }
    let mut report = Report::from_cursor(&cursor, fix, total, sink_configured);
    report.server = Some(server);
    report.tip_height = Some(tip);
    report.electrum_cost = session.budget.spent().round() as u64;
    if out_of_time {
        return Ok(report);
    }
    let finished = crate::clock::now();
    report.complete = true;
    report.finished_at = Some(finished);
    let batch = WriteBatch {
        meta: vec![crate::store::reconcile_report_entry(&report)],
        meta_remove: vec![crate::store::RECONCILE_CURSOR_KEY],
        audit: vec![AuditEntry {
            at: finished,
            action: "reconcile".into(),
            detail: format!(
                "{} payment(s) checked, {} difference(s), {} fixed{}",
                report.checked,
                report.differences_found,
                report.fixed,
                report
                    .sink_error
                    .as_ref()
                    .map(|e| format!("; Supabase not compared: {e}"))
                    .unwrap_or_default()
            ),
            source: "cli".into(),
        }],
        ..Default::default()
    };
    store.commit_blocking(batch)?;
    Ok(report)
}

/// The budget of a new slice: the last slice's estimate, decayed over the time since,
/// plus this session's opening.
fn carried_budget(limit: u64, cursor: &Cursor, now: u64) -> Budget {
    if cursor.cost_at == 0 {
        return Budget::new(limit, Instant::now());
    }
    let elapsed = Duration::from_secs(now.saturating_sub(cursor.cost_at));
    let then = Instant::now()
        .checked_sub(elapsed)
        .unwrap_or_else(Instant::now);
    let mut b = Budget::new(limit, then);
    b.charge(cursor.cost_milli as f64 / 1000.0 - cost::SESSION);
    b.tick(Instant::now(), 0);
    b.charge(cost::SESSION);
    b
}

/// A difference found in a page, with what is needed to judge it again.
struct Found {
    payment: Payment,
    diff: Difference,
    /// The lifecycle's answer (`None` for a sink row).
    transition: Option<lifecycle::Transition>,
    /// The chain evidence it was judged on.
    obs: Option<Observation>,
}

/// Records a page's differences (applying the fixes when asked) and advances the cursor,
/// in one commit. A payment the daemon changed meanwhile is judged again.
fn commit_page(
    store: &Store,
    cursor: &mut Cursor,
    mut found: Vec<Found>,
    fix: bool,
    checked: &[Payment],
    judge: impl Fn(&Payment, &Observation) -> Option<(Difference, lifecycle::Transition)>,
) -> Result<u64, OpsError> {
    let Some(last) = checked.last() else {
        return Ok(0);
    };
    const ATTEMPTS: usize = 3;
    for attempt in 1..=ATTEMPTS {
        let now = crate::clock::now();
        let mut next = cursor.clone();
        next.next_seq = last.seq + 1;
        next.checked += checked.len() as u64;
        let mut updates = Vec::new();
        for f in &mut found {
            f.diff.fixed = fix;
            if fix {
                updates.push(fix_update(&f.payment, &f.diff, f.transition.as_ref(), now));
            }
            next.differences_found += 1;
            next.fixed += u64::from(fix);
            if next.differences.len() < MAX_LISTED {
                next.differences.push(f.diff.clone());
            }
        }
        let batch = WriteBatch {
            updates,
            meta: vec![crate::store::reconcile_cursor_entry(&next)],
            ..Default::default()
        };
        match store.commit_blocking(batch) {
            Ok(_) => {
                let fixed = next.fixed - cursor.fixed;
                *cursor = next;
                return Ok(fixed);
            }
            Err(StoreError::Conflict { id, .. }) if attempt < ATTEMPTS => {
                // The daemon moved this payment while we looked: the lifecycle judges
                // its fresh copy on the same chain evidence (a sink row is compared
                // again at the next run).
                let Some(pos) = found.iter().position(|f| f.payment.id == id) else {
                    return Err(OpsError::Invalid(format!(
                        "payment {id} changed while reconcile fixed it; run reconcile again"
                    )));
                };
                let old = found.remove(pos);
                if let (Some(obs), Some(fresh)) = (old.obs, store.payment(&id)?)
                    && let Some((diff, t)) = judge(&fresh, &obs)
                {
                    found.push(Found {
                        payment: fresh,
                        diff,
                        transition: Some(t),
                        obs: Some(obs),
                    });
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(OpsError::Invalid(
        "payments kept changing while reconcile fixed them; run reconcile again".into(),
    ))
}

/// The update that fixes a difference: the lifecycle's transition (or, for a sink row,
/// the unchanged payment) with a "reconciled" event carrying the evidence. Its new version
/// queues it for the sink again.
fn fix_update(
    p: &Payment,
    d: &Difference,
    t: Option<&lifecycle::Transition>,
    now: u64,
) -> (Payment, Vec<Event>) {
    let (mut next, mut events) = match t {
        Some(t) => (t.payment.clone(), t.events.clone()),
        None => {
            let mut n = p.clone();
            n.version = n.version.saturating_add(1);
            n.updated_at = now;
            (n, Vec::new())
        }
    };
    next.updated_at = next.updated_at.max(now);
    events.push(Event {
        at: now,
        from: Some(p.status),
        to: next.status,
        reason: format!("{REASON_RECONCILED}: {}: {}", d.kind.as_str(), d.evidence),
        txids: next.txids.clone(),
    });
    (next, events)
}

/// A small runtime for the Postgres reads: the daemon's (the slice runs on one of its
/// blocking threads) or, in the CLI, a current-thread one of our own.
pub(crate) enum SinkRuntime {
    Handle(tokio::runtime::Handle),
    Own(tokio::runtime::Runtime),
}

impl SinkRuntime {
    pub(crate) fn new() -> Result<SinkRuntime, OpsError> {
        match tokio::runtime::Handle::try_current() {
            Ok(h) => Ok(SinkRuntime::Handle(h)),
            Err(_) => tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map(SinkRuntime::Own)
                .map_err(|e| OpsError::Invalid(format!("starting a runtime: {e}"))),
        }
    }

    pub(crate) fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        match self {
            SinkRuntime::Handle(h) => h.block_on(f),
            SinkRuntime::Own(rt) => rt.block_on(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_slice_starts_from_the_last_slices_cost_decayed() {
        let now = 1_000_000;
        let spent = Cursor {
            cost_milli: 800_000,
            cost_at: now,
            ..Default::default()
        };
        // Just spent the whole default budget: the next request must wait.
        assert!(carried_budget(800, &spent, now).wait_for(cost::SCRIPT, 0) > Duration::ZERO);
        // An hour later ElectrumX has forgiven it (0.8 units per second).
        let later = carried_budget(800, &spent, now + 3_600);
        assert_eq!(later.wait_for(cost::SCRIPT, 0), Duration::ZERO);
        assert!(
            (later.spent() - cost::SESSION).abs() < 1e-6,
            "{}",
            later.spent()
        );
        // A fresh run starts with only the session's opening.
        let fresh = carried_budget(800, &Cursor::default(), now);
        assert!((fresh.spent() - cost::SESSION).abs() < 1e-6);
    }
}
