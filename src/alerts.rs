//! The operational guide's five alert rules and the security chapter's two (lock-down,
//! failed logins), evaluated inside the appliance.
//!
//! A box nobody scrapes must still show its alerts, so the same rules that ship in
//! `monitoring/prometheus-rules.yml` are evaluated here over a short in-memory history of
//! samples. [`evaluate`] is pure; [`Tracker`] only keeps the samples it needs.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

use crate::app::{App, AppError, StatusReport};

/// Alert names, shared with the Prometheus rules file and the metrics.
pub const SERVICE_DOWN: &str = "SnakkazPayServiceDown";
/// Wallet balance moved by more than the threshold within the window.
pub const BALANCE_CHANGE: &str = "SnakkazPayWalletBalanceChange";
/// Too many payments ended expired or underpaid within the window.
pub const FAILED_PAYMENTS: &str = "SnakkazPayFailedPaymentsHigh";
/// Electrum disconnected too long, or reconnecting too often.
pub const ELECTRUM_CONNECTION: &str = "SnakkazPayElectrumConnection";
/// Overpaid, late or reorganised/double-spent payments piling up.
pub const ABNORMAL_TRANSACTIONS: &str = "SnakkazPayAbnormalTransactions";
/// Payment detection is connected but cannot keep up (backlog, throttling, refusals).
pub const DETECTION_DEGRADED: &str = "SnakkazPayDetectionDegraded";
/// The appliance is locked down (incident response in progress).
pub const LOCKDOWN: &str = "SnakkazPayLockdown";
/// A burst of failed logins (wrong bearer tokens) within the window.
pub const FAILED_LOGINS: &str = "SnakkazPayFailedLogins";
/// The last backup verification failed or is too old (the guide's backup chapter).
pub const BACKUP_VERIFICATION: &str = "SnakkazPayBackupVerification";
/// A confirmed or completed payment's money left the chain; stays until acknowledged.
pub const MONEY_LOST: &str = "SnakkazPayMoneyLost";
/// Money arrived that no open payment counts (see `payments::receipt`).
pub const UNATTRIBUTED_RECEIPT: &str = "SnakkazPayUnattributedReceipt";
/// A transaction the appliance did not build spent the wallet's coins; stays until acknowledged.
pub const UNEXPECTED_SPEND: &str = "SnakkazPayUnexpectedSpend";
/// Every rule: the guide's five in its order, then the appliance's own, then the
/// security chapter's two, then the backup chapter's, then lost and unattributed money,
/// then spends the appliance did not build.
pub const RULES: [&str; 12] = [
    SERVICE_DOWN,
    BALANCE_CHANGE,
    FAILED_PAYMENTS,
    ELECTRUM_CONNECTION,
    ABNORMAL_TRANSACTIONS,
    DETECTION_DEGRADED,
    LOCKDOWN,
    FAILED_LOGINS,
    BACKUP_VERIFICATION,
    MONEY_LOST,
    UNATTRIBUTED_RECEIPT,
    UNEXPECTED_SPEND,
];

/// Failed logins within the window that raise [`FAILED_LOGINS`] (same as the rules file).
pub const FAILED_LOGINS_BURST: u64 = 10;

/// Seconds between two history samples (finer samples add nothing to hour-long windows).
const SAMPLE_EVERY_SECS: u64 = 10;
/// The payment processor ticks every second; this long without a tick means it is stuck.
pub const PROCESSOR_STALL: Duration = Duration::from_secs(30);

/// Configurable thresholds (see `config::keys::ALERT_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Window of the rate rules (balance change, failed payments, reconnects, abnormal).
    pub window: Duration,
    /// Electrum disconnected at least this long fires.
    pub electrum_down: Duration,
    /// More reconnections than this within the window fires.
    pub electrum_reconnects: u64,
    /// Balance change in percent of the balance at the window's start.
    pub balance_change_pct: u64,
    /// Share of failed (expired, underpaid) among finished payments, in percent.
    pub failed_payments_pct: u64,
    /// At least this many failures within the window before the share counts.
    pub failed_payments_min: u64,
    /// At least this many newly flagged payments within the window fires.
    pub abnormal_transactions: u64,
}

/// Defaults from the operational guide.
pub const DEFAULT_THRESHOLDS: Thresholds = Thresholds {
    window: Duration::from_secs(3600),
    electrum_down: Duration::from_secs(60),
    electrum_reconnects: 5,
    balance_change_pct: 10,
    failed_payments_pct: 25,
    failed_payments_min: 5,
    abnormal_transactions: 3,
};

/// The figures one sample keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sample {
    /// Unix seconds.
    pub at: u64,
    /// Confirmed + unconfirmed balance.
    pub balance_sat: u64,
    /// Payments expired or underpaid.
    pub failed: u64,
    /// Payments in a final or confirmed status (confirmed, completed, expired, underpaid).
    pub finished: u64,
    /// Payments carrying any flag.
    pub flagged: u64,
    /// Electrum reconnections since start.
    pub reconnects: u64,
}

/// What is known right now besides the sample.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Now {
    /// The current figures.
    pub sample: Sample,
    /// Payments are enabled (otherwise Electrum is not expected to be connected).
    pub payments_enabled: bool,
    /// Seconds Electrum has been disconnected, when it is.
    pub electrum_down_secs: Option<u64>,
    /// Seconds since the payment processor last ticked.
    pub processor_idle_secs: Option<u64>,
    /// The store could not be read.
    pub store_error: Option<String>,
    /// Why detection cannot be trusted while connected (see `app::health`).
    pub detection_problems: Vec<String>,
    /// Payments whose money left the chain after confirmation, not yet acknowledged.
    pub money_lost: u64,
    /// Unattributed receipts not yet assigned: (count, satoshis).
    pub unattributed_receipts: (u64, u64),
    /// The lock-down reason, while locked down.
    pub locked_down: Option<String>,
    /// Failed logins within the window.
    pub failed_logins: u64,
    /// The last backup verification failed or is stale (see `backup::status`).
    pub backup_problem: Option<String>,
    /// Outgoing transactions the appliance did not build, not acknowledged (newest last).
    pub unexpected_spends: Vec<String>,
}

/// A firing alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alert {
    /// Rule name (as in the Prometheus rules file).
    pub name: &'static str,
    /// `critical` or `warning`.
    pub severity: &'static str,
    /// What is wrong, in operator words.
    pub summary: String,
}

fn alert(name: &'static str, severity: &'static str, summary: String) -> Alert {
    Alert {
        name,
        severity,
        summary,
    }
}

/// Evaluates the rules; `history` is oldest first and may be empty.
pub fn evaluate(th: &Thresholds, history: &[Sample], now: &Now) -> Vec<Alert> {
    let mut out = Vec::new();
    let cur = &now.sample;
    if let Some(reason) = &now.locked_down {
        out.push(alert(
            LOCKDOWN,
            "critical",
            format!(
                "the appliance is locked down ({reason}); new payments and admin actions are refused until `snakkaz-pay unlock` on the box"
            ),
        ));
    }
    if now.failed_logins >= FAILED_LOGINS_BURST {
        out.push(alert(
            FAILED_LOGINS,
            "warning",
            format!(
                "{} failed logins (wrong bearer tokens) in the last {}; see `snakkaz-pay audit --action auth.failed`",
                now.failed_logins,
                human(th.window.as_secs())
            ),
        ));
    }
    if let Some(e) = &now.store_error {
        out.push(alert(
            SERVICE_DOWN,
            "critical",
            format!("the database cannot be read: {e}"),
        ));
    } else if let Some(idle) = now
        .processor_idle_secs
        .filter(|&s| s >= PROCESSOR_STALL.as_secs())
    {
        out.push(alert(
            SERVICE_DOWN,
            "critical",
            format!("the payment processor has not run for {idle} s"),
        ));
    }
    // The window's baseline: the oldest sample not older than the window.
    let start = cur.at.saturating_sub(th.window.as_secs());
    let base = history.iter().find(|s| s.at >= start && s.at < cur.at);
    if let Some(b) = base {
        let old = b.balance_sat;
        let diff = old.abs_diff(cur.balance_sat);
        // From zero any change is "infinite"; a new box receiving its first payment is no alarm.
        if old > 0 && u128::from(diff) * 100 > u128::from(old) * u128::from(th.balance_change_pct) {
            out.push(alert(
                BALANCE_CHANGE,
                "warning",
                format!(
                    "wallet balance changed by {diff} sat ({}%) in {}",
                    u128::from(diff) * 100 / u128::from(old),
                    human(cur.at - b.at)
                ),
            ));
        }
        let failed = cur.failed.saturating_sub(b.failed);
        let finished = cur.finished.saturating_sub(b.finished).max(failed);
        if failed >= th.failed_payments_min
            && finished > 0
            && failed * 100 >= finished * th.failed_payments_pct
        {
            out.push(alert(
                FAILED_PAYMENTS,
                "warning",
                format!(
                    "{failed} of {finished} payments finished in the last {} expired or underpaid",
                    human(cur.at - b.at)
                ),
            ));
        }
        let reconnects = cur.reconnects.saturating_sub(b.reconnects);
        if reconnects > th.electrum_reconnects {
            out.push(alert(
                ELECTRUM_CONNECTION,
                "warning",
                format!(
                    "Electrum reconnected {reconnects} times in {}",
                    human(cur.at - b.at)
                ),
            ));
        }
        let flagged = cur.flagged.saturating_sub(b.flagged);
        if flagged >= th.abnormal_transactions {
            out.push(alert(
                ABNORMAL_TRANSACTIONS,
                "warning",
                format!(
                    "{flagged} payments were overpaid, paid late or reorganised/double spent in {}",
                    human(cur.at - b.at)
                ),
            ));
        }
    }
    if let Some(p) = &now.backup_problem {
        out.push(alert(BACKUP_VERIFICATION, "warning", p.clone()));
    }
    if now.money_lost > 0 {
        out.push(alert(
            MONEY_LOST,
            "critical",
            format!(
                "{} payment(s) lost their money after being confirmed; check what was delivered, then acknowledge each loss",
                now.money_lost
            ),
        ));
    }
    if now.unattributed_receipts.0 > 0 {
        out.push(alert(
            UNATTRIBUTED_RECEIPT,
            "warning",
            format!(
                "{} receipt(s), {} sat, arrived at addresses no open payment owns; assign each to a payment (`snakkaz-pay receipts`)",
                now.unattributed_receipts.0, now.unattributed_receipts.1
            ),
        ));
    }
    if let Some(last) = now.unexpected_spends.last() {
        out.push(alert(
            UNEXPECTED_SPEND,
            "critical",
            format!(
                "{} transaction(s) spent this wallet's coins without being built by `snakkaz-pay transfer` (latest {last}); if nobody here made them, run `snakkaz-pay lockdown` and move the remaining funds to cold storage",
                now.unexpected_spends.len()
            ),
        ));
    }
    if now.payments_enabled
        && now.electrum_down_secs.is_none()
        && let Some(first) = now.detection_problems.first()
    {
        out.push(alert(DETECTION_DEGRADED, "critical", first.clone()));
    }
    if now.payments_enabled
        && let Some(down) = now.electrum_down_secs
        && down >= th.electrum_down.as_secs()
    {
        // One alert per rule: the outage replaces a flapping warning.
        out.retain(|a| a.name != ELECTRUM_CONNECTION);
        out.push(alert(
            ELECTRUM_CONNECTION,
            "critical",
            format!("Electrum has been disconnected for {}", human(down)),
        ));
    }
    out
}

fn human(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s => format!("{} h", s / 3600),
    }
}

/// The in-memory history the appliance's own evaluation needs.
#[derive(Debug, Default)]
pub struct Tracker {
    inner: Mutex<TrackerState>,
    /// Outgoing transactions already examined (see `spend::watch`).
    spends: Mutex<crate::spend::watch::SpendWatch>,
}

#[derive(Debug, Default)]
struct TrackerState {
    history: VecDeque<Sample>,
    down_since: Option<u64>,
    last_tick: Option<u64>,
}

impl Tracker {
    /// Notes that the payment processor is alive and making progress.
    pub fn heartbeat(&self, now: u64) {
        self.inner.lock().expect("alert tracker lock").last_tick = Some(now);
    }

    /// Unix seconds of the processor's last heartbeat.
    pub fn last_heartbeat(&self) -> Option<u64> {
        self.inner.lock().expect("alert tracker lock").last_tick
    }

    /// Notes Electrum's state now, and a sample when one is due (`sample` is only called
    /// then).
    pub fn tick(
        &self,
        now: u64,
        connected: bool,
        window: Duration,
        sample: impl FnOnce() -> Option<Sample>,
    ) {
        let due = {
            let mut st = self.inner.lock().expect("alert tracker lock");
            if connected {
                st.down_since = None;
            } else if st.down_since.is_none() {
                st.down_since = Some(now);
            }
            st.history
                .back()
                .is_none_or(|s| now >= s.at + SAMPLE_EVERY_SECS)
        };
        if !due {
            return;
        }
        if let Some(s) = sample() {
            let mut st = self.inner.lock().expect("alert tracker lock");
            st.history.push_back(s);
            // Keep one sample older than the window so a full window always has a baseline.
            let keep_from = now.saturating_sub(window.as_secs() + SAMPLE_EVERY_SECS);
            while st.history.len() > 1 && st.history[0].at < keep_from {
                st.history.pop_front();
            }
        }
    }

    /// The history (oldest first), seconds Electrum has been down, seconds since the last tick.
    pub fn snapshot(&self, now: u64) -> (Vec<Sample>, Option<u64>, Option<u64>) {
        let st = self.inner.lock().expect("alert tracker lock");
        (
            st.history.iter().copied().collect(),
            st.down_since.map(|t| now.saturating_sub(t)),
            st.last_tick.map(|t| now.saturating_sub(t)),
        )
    }
}

fn sample_of(s: &StatusReport, flagged: u64, at: u64) -> Sample {
    let count = |names: &[&str]| -> u64 {
        names
            .iter()
            .map(|n| s.payments.get(*n).copied().unwrap_or(0))
            .sum()
    };
    Sample {
        at,
        balance_sat: s.wallet.confirmed_sat + s.wallet.unconfirmed_sat,
        failed: count(&["expired", "underpaid"]),
        finished: count(&["confirmed", "completed", "expired", "underpaid"]),
        flagged,
        reconnects: s.electrum.reconnects,
    }
}

fn flagged_payments(app: &App) -> Result<u64, crate::store::StoreError> {
    Ok(app.store.flag_counts()?.flagged)
}

/// The alert sampler's hook (its own task, every few seconds): feeds the tracker.
pub fn tick(app: &App, now: u64) {
    let status = match app.status() {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "alert sampling could not read the status");
            return;
        }
    };
    let connected = status.electrum.connected || !app.cfg.enabled;
    crate::spend::watch::scan(
        app,
        &app.alert_tracker.spends,
        (
            status.wallet.confirmed_sat,
            status.wallet.unconfirmed_sat,
            status.wallet.tip_height,
        ),
        now,
    );
    app.alert_tracker.tick(
        now,
        connected,
        app.cfg.alerts.window,
        || match flagged_payments(app) {
            Ok(f) => Some(sample_of(&status, f, now)),
            Err(e) => {
                tracing::warn!(error = %e, "alert sampling could not read payments");
                None
            }
        },
    );
}

/// What the page, `/api/alerts` and the metrics need at one instant.
pub struct Assessment {
    /// The status report, or why it could not be built.
    pub status: Result<StatusReport, AppError>,
    /// Flagged payments by flag.
    pub flags: Vec<(&'static str, u64)>,
    /// Firing alerts.
    pub alerts: Vec<Alert>,
    /// Lock-down and failed logins (default when the store could not be read).
    pub security: crate::access::SecurityFacts,
}

/// Evaluates the alerts of a running appliance now.
pub fn assess(app: &App) -> Assessment {
    let at = crate::clock::now();
    let status = app.status();
    // Maintained counters: no pass over the payments per page view or scrape.
    let (flags, flagged_now, flags_err) = match app.store.flag_counts() {
        Ok(c) => (c.by_flag.to_vec(), c.flagged, None),
        Err(e) => (Vec::new(), 0, Some(e.to_string())),
    };
    let (history, down, idle) = app.alert_tracker.snapshot(at);
    let (security, security_err) =
        match crate::access::security_facts(&app.store, app.cfg.alerts.window) {
            Ok(f) => (f, None),
            Err(e) => (Default::default(), Some(e.to_string())),
        };
    let now = Now {
        sample: status
            .as_ref()
            .map(|s| sample_of(s, flagged_now, at))
            .unwrap_or_default(),
        payments_enabled: app.cfg.enabled,
        // The chain thread knows when the last session ended; the sampler only knows
        // when it looked.
        electrum_down_secs: match &status {
            Ok(s) => s.electrum.down_secs,
            Err(_) => down,
        },
        processor_idle_secs: idle,
        store_error: match &status {
            Err(e) => Some(e.to_string()),
            Ok(_) => flags_err.or(security_err),
        },
        detection_problems: status
            .as_ref()
            .map(|s| s.electrum.degraded.clone())
            .unwrap_or_default(),
        money_lost: flags
            .iter()
            .find(|(n, _)| *n == crate::payments::FLAG_MONEY_LOST)
            .map_or(0, |(_, c)| *c),
        unattributed_receipts: status.as_ref().map_or((0, 0), |s| {
            (s.receipts.unassigned, s.receipts.unassigned_sat)
        }),
        locked_down: security.lockdown.as_ref().map(|r| r.reason.clone()),
        failed_logins: security.failed_logins,
        backup_problem: status
            .as_ref()
            .ok()
            .and_then(|s| s.backup_verification.problem.clone()),
        unexpected_spends: security.unexpected_spends.clone(),
    };
    let alerts = evaluate(&app.cfg.alerts, &history, &now);
    Assessment {
        status,
        flags,
        alerts,
        security,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(
        at: u64,
        balance_sat: u64,
        failed: u64,
        finished: u64,
        flagged: u64,
        reconnects: u64,
    ) -> Sample {
        Sample {
            at,
            balance_sat,
            failed,
            finished,
            flagged,
            reconnects,
        }
    }

    fn now(sample: Sample) -> Now {
        Now {
            sample,
            payments_enabled: true,
            processor_idle_secs: Some(1),
            ..Default::default()
        }
    }

    fn names(a: &[Alert]) -> Vec<&str> {
        a.iter().map(|a| a.name).collect()
    }

    const T: Thresholds = DEFAULT_THRESHOLDS;

    #[test]
    fn a_quiet_box_raises_nothing() {
        let h = [s(1000, 100_000, 1, 10, 0, 0)];
        assert!(evaluate(&T, &h, &now(s(2000, 105_000, 1, 12, 0, 1))).is_empty());
        assert!(evaluate(&T, &[], &now(s(2000, 0, 0, 0, 0, 0))).is_empty());
    }

    #[test]
    fn backup_verification_problem_raises_its_alert() {
        let mut n = now(Sample::default());
        n.backup_problem = Some("the last backup verification failed".into());
        let a = evaluate(&T, &[], &n);
        assert_eq!(names(&a), [BACKUP_VERIFICATION]);
        assert_eq!(a[0].severity, "warning");
    }

    #[test]
    fn service_down_when_the_store_fails_or_the_processor_stalls() {
        let mut n = now(Sample::default());
        n.processor_idle_secs = Some(31);
        assert_eq!(names(&evaluate(&T, &[], &n)), [SERVICE_DOWN]);
        n.processor_idle_secs = Some(1);
        n.store_error = Some("disk".into());
        assert_eq!(names(&evaluate(&T, &[], &n)), [SERVICE_DOWN]);
    }

    #[test]
    fn balance_change_over_ten_percent_within_the_window() {
        let h = [s(0, 1_000_000, 0, 0, 0, 0), s(3000, 1_000_000, 0, 0, 0, 0)];
        assert_eq!(
            names(&evaluate(&T, &h, &now(s(3500, 1_100_001, 0, 0, 0, 0)))),
            [BALANCE_CHANGE]
        );
        assert!(evaluate(&T, &h, &now(s(3500, 1_100_000, 0, 0, 0, 0))).is_empty());
        assert_eq!(
            names(&evaluate(&T, &h, &now(s(3500, 800_000, 0, 0, 0, 0)))),
            [BALANCE_CHANGE],
            "a drop counts as much as a rise"
        );
        // Outside the window: the 0 s sample is too old, the 3000 s one is the baseline.
        let h = [s(0, 1, 0, 0, 0, 0), s(3000, 2_000_000, 0, 0, 0, 0)];
        assert!(evaluate(&T, &h, &now(s(3700, 2_000_000, 0, 0, 0, 0))).is_empty());
        // From an empty wallet the first payment is no alarm.
        let h = [s(0, 0, 0, 0, 0, 0)];
        assert!(evaluate(&T, &h, &now(s(10, 5_000, 0, 0, 0, 0))).is_empty());
    }

    #[test]
    fn failed_payments_need_both_a_count_and_a_share() {
        let h = [s(0, 0, 10, 100, 0, 0)];
        assert_eq!(
            names(&evaluate(&T, &h, &now(s(600, 0, 15, 110, 0, 0)))),
            [FAILED_PAYMENTS]
        );
        assert!(
            evaluate(&T, &h, &now(s(600, 0, 14, 109, 0, 0))).is_empty(),
            "4 failures are below the minimum count"
        );
        assert!(
            evaluate(&T, &h, &now(s(600, 0, 15, 130, 0, 0))).is_empty(),
            "5 of 30 is below 25 %"
        );
    }

    #[test]
    fn electrum_outage_and_flapping() {
        let mut n = now(Sample::default());
        n.electrum_down_secs = Some(59);
        assert!(evaluate(&T, &[], &n).is_empty());
        n.electrum_down_secs = Some(60);
        let a = evaluate(&T, &[], &n);
        assert_eq!(
            (names(&a), a[0].severity),
            (vec![ELECTRUM_CONNECTION], "critical")
        );
        n.payments_enabled = false;
        assert!(
            evaluate(&T, &[], &n).is_empty(),
            "disabled boxes do not connect"
        );

        let h = [s(0, 0, 0, 0, 0, 2)];
        assert_eq!(
            names(&evaluate(&T, &h, &now(s(100, 0, 0, 0, 0, 8)))),
            [ELECTRUM_CONNECTION]
        );
        assert!(evaluate(&T, &h, &now(s(100, 0, 0, 0, 0, 7))).is_empty());
        let mut both = now(s(100, 0, 0, 0, 0, 8));
        both.electrum_down_secs = Some(600);
        let a = evaluate(&T, &h, &both);
        assert_eq!((a.len(), a[0].severity), (1, "critical"));
    }

    #[test]
    fn abnormal_transactions_count_new_flags() {
        let h = [s(0, 0, 0, 0, 4, 0)];
        assert_eq!(
            names(&evaluate(&T, &h, &now(s(60, 0, 0, 0, 7, 0)))),
            [ABNORMAL_TRANSACTIONS]
        );
        assert!(evaluate(&T, &h, &now(s(60, 0, 0, 0, 6, 0))).is_empty());
    }

    #[test]
    fn lockdown_and_a_burst_of_failed_logins_alert() {
        let mut n = now(Sample::default());
        n.failed_logins = FAILED_LOGINS_BURST - 1;
        assert!(evaluate(&T, &[], &n).is_empty());
        n.failed_logins = FAILED_LOGINS_BURST;
        n.locked_down = Some("stolen token".into());
        let a = evaluate(&T, &[], &n);
        assert_eq!(names(&a), [LOCKDOWN, FAILED_LOGINS]);
        assert_eq!(a[0].severity, "critical");
        assert!(a[0].summary.contains("stolen token"), "{}", a[0].summary);
    }

    #[test]
    fn tracker_samples_every_ten_seconds_and_forgets_old_ones() {
        let t = Tracker::default();
        let w = Duration::from_secs(60);
        let mut calls = 0;
        for at in 0..200 {
            t.tick(at, at < 150, w, || {
                calls += 1;
                Some(Sample {
                    at,
                    ..Default::default()
                })
            });
        }
        assert_eq!(calls, 20);
        let (h, down, idle) = t.snapshot(200);
        assert_eq!(h.first().map(|s| s.at), Some(120));
        // Sampling is not the processor: only its heartbeat counts as progress.
        assert_eq!((down, idle), (Some(50), None));
        t.heartbeat(199);
        assert_eq!(t.snapshot(200).2, Some(1));
    }
}
