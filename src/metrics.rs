//! Prometheus metrics for `/api/metrics/bitcoin`, produced with `prometheus-client`.
//!
//! Gauges are rebuilt from the status report (store, wallet, chain) at every scrape so
//! they can never drift from the source of truth; only the two latency histograms live
//! across scrapes, because their observations happen at moments a scrape cannot see.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

pub mod hourly;

use crate::alerts::Alert;
use crate::app::StatusReport;

/// Content type of the exposition (OpenMetrics text, which Prometheus negotiates).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Buckets of the first-seen → confirmed histogram: one block is ~10 minutes.
const CONFIRMATION_BUCKETS: [f64; 10] = [
    60.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0, 14400.0, 43200.0, 86400.0,
];
/// Buckets of the notification → commit histogram (the target is well under a second).
const UPDATE_BUCKETS: [f64; 10] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

type Labels = Vec<(&'static str, String)>;

/// The histograms that outlive a scrape; everything else is recomputed.
#[derive(Debug, Clone)]
pub struct Metrics {
    confirmation: Histogram,
    notification_to_update: Histogram,
    /// (sum, count) of both histograms for the page: the library does not expose its own.
    totals: Arc<Mutex<[(f64, u64); 2]>>,
    /// Notification → update per hour over the last day, for the page's chart.
    detection: Arc<Mutex<hourly::Hourly>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            confirmation: Histogram::new(CONFIRMATION_BUCKETS),
            notification_to_update: Histogram::new(UPDATE_BUCKETS),
            totals: Arc::default(),
            detection: Arc::default(),
        }
    }
}

/// Summary of the latency histograms since start.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timings {
    /// Payments confirmed since start.
    pub confirmations: u64,
    /// Mean seconds from first seen to confirmed.
    pub mean_confirmation_secs: Option<f64>,
    /// Notifications that changed a payment since start.
    pub updates: u64,
    /// Mean seconds from notification to committed change.
    pub mean_update_secs: Option<f64>,
}

/// Facts about the machine and process read at scrape time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostFacts {
    /// Free bytes on the database's file system (for unprivileged users).
    pub data_disk_free_bytes: Option<u64>,
    /// Process statistics from /proc.
    pub process: Option<ProcessStats>,
}

/// The standard `process_*` metrics' values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcessStats {
    /// User + system CPU time in seconds.
    pub cpu_seconds: f64,
    /// Resident memory in bytes.
    pub resident_memory_bytes: u64,
    /// Virtual memory in bytes.
    pub virtual_memory_bytes: u64,
    /// Start time, Unix seconds.
    pub start_time_seconds: f64,
    /// Open file descriptors.
    pub open_fds: u64,
    /// Limit of open file descriptors.
    pub max_fds: Option<u64>,
    /// OS threads.
    pub threads: u64,
}

impl Metrics {
    /// Records how long a payment took from first seen to confirmed.
    pub fn observe_confirmation(&self, secs: u64) {
        self.confirmation.observe(secs as f64);
        self.total(0, secs as f64);
    }

    /// Records the delay from an Electrum notification to the committed payment change.
    pub fn observe_notification_to_update(&self, d: Duration) {
        self.notification_to_update.observe(d.as_secs_f64());
        self.total(1, d.as_secs_f64());
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        self.detection
            .lock()
            .expect("metrics detection lock")
            .record(crate::clock::now(), ms);
    }

    /// Notification → update latency per hour over the last day, oldest hour first.
    pub fn detection_last_day(&self) -> [hourly::HourStat; hourly::HOURS] {
        self.detection
            .lock()
            .expect("metrics detection lock")
            .last_day(crate::clock::now())
    }

    fn total(&self, which: usize, v: f64) {
        let mut t = self.totals.lock().expect("metrics totals lock");
        t[which].0 += v;
        t[which].1 += 1;
    }

    /// Count and mean of both histograms, for the status page.
    pub fn timings(&self) -> Timings {
        let t = *self.totals.lock().expect("metrics totals lock");
        let mean = |(sum, n): (f64, u64)| (n > 0).then(|| sum / n as f64);
        Timings {
            confirmations: t[0].1,
            mean_confirmation_secs: mean(t[0]),
            updates: t[1].1,
            mean_update_secs: mean(t[1]),
        }
    }

    /// Renders the full exposition for one scrape.
    pub fn render(
        &self,
        s: &StatusReport,
        flagged: &[(&'static str, u64)],
        alerts: &[Alert],
        host: &HostFacts,
        security: &crate::access::SecurityFacts,
    ) -> String {
        let mut r = Registry::default();
        gauge(
            &mut r,
            "snakkaz_pay_lockdown",
            "1 while the appliance is locked down (new payments and admin actions refused)",
            i64::from(security.lockdown.is_some()),
        );
        gauge(
            &mut r,
            "snakkaz_pay_failed_logins_recent",
            "Failed authentications (wrong bearer tokens) within the alert window, from the audit log",
            sat_i64(security.failed_logins),
        );
        gauge(
            &mut r,
            "snakkaz_pay_unattributed_receipts",
            "Receipts (money at addresses no open payment owns) not yet assigned to a payment",
            sat_i64(s.receipts.unassigned),
        );
        gauge(
            &mut r,
            "snakkaz_pay_unattributed_receipts_sat",
            "Satoshis of the unassigned unattributed receipts",
            sat_i64(s.receipts.unassigned_sat),
        );
        let e = &s.electrum;
        gauge(
            &mut r,
            "snakkaz_pay_healthy",
            "1 when the appliance reports itself healthy (no problems on the status page)",
            i64::from(s.healthy),
        );
        gauge(
            &mut r,
            "snakkaz_pay_electrum_connected",
            "1 while a session to an Electrum server is up",
            i64::from(e.connected),
        );
        gauge(
            &mut r,
            "snakkaz_pay_electrum_tls",
            "1 when the Electrum session uses TLS",
            i64::from(e.tls),
        );
        if let Some(t) = e.tip_height {
            gauge(
                &mut r,
                "snakkaz_pay_chain_tip_height",
                "Tip height reported by the Electrum server",
                i64::from(t),
            );
        }
        gauge(
            &mut r,
            "snakkaz_pay_wallet_tip_height",
            "Tip height the wallet has synced to",
            i64::from(s.wallet.tip_height),
        );
        if let Some(n) = e.secs_since_last_notification {
            gauge(
                &mut r,
                "snakkaz_pay_electrum_seconds_since_last_notification",
                "Seconds since the Electrum server last pushed a notification",
                sat_i64(n),
            );
        }
        r.register(
            "snakkaz_pay_electrum_reconnects",
            "Electrum sessions opened after the first (failovers and reconnections)",
            ConstCounter::new(e.reconnects),
        );
        gauge(
            &mut r,
            "snakkaz_pay_electrum_subscriptions",
            "Scripts subscribed on the current Electrum session",
            sat_i64(e.subscriptions),
        );
        gauge(
            &mut r,
            "snakkaz_pay_electrum_watched_scripts",
            "Scripts the appliance watches (open payments, late windows, change)",
            sat_i64(e.watched),
        );
        gauge(
            &mut r,
            "snakkaz_pay_detection_backlog",
            "Watched scripts not yet subscribed, or whose change is not yet synced",
            sat_i64(e.backlog),
        );
        gauge(
            &mut r,
            "snakkaz_pay_detection_backlog_age_seconds",
            "How long the detection backlog has been non-empty (0 when empty)",
            sat_i64(e.backlog_age_secs.unwrap_or(0)),
        );
        r.register(
            "snakkaz_pay_electrum_request_seconds",
            "Smoothed duration of one Electrum round trip (server throttling shows here; 0 until measured)",
            ConstGauge::new(e.request_ms.unwrap_or(0) as f64 / 1000.0),
        );
        gauge(
            &mut r,
            "snakkaz_pay_electrum_session_cost",
            "Estimated cost of the session on the server, in ElectrumX cost units",
            sat_i64(e.session_cost),
        );
        gauge(
            &mut r,
            "snakkaz_pay_electrum_session_failures",
            "Electrum sessions that ended with an error in the last 10 minutes",
            sat_i64(e.session_failures_10m),
        );
        if let Some(ms) = e.last_sync_ms {
            r.register(
                "snakkaz_pay_sync_duration_seconds",
                "Duration of the last wallet sync with the Electrum server",
                ConstGauge::new(ms as f64 / 1000.0),
            );
        }
        let balance = Family::<Labels, Gauge>::default();
        balance
            .get_or_create(&vec![("state", "confirmed".to_owned())])
            .set(sat_i64(s.wallet.confirmed_sat));
        balance
            .get_or_create(&vec![("state", "unconfirmed".to_owned())])
            .set(sat_i64(s.wallet.unconfirmed_sat));
        r.register(
            "snakkaz_pay_wallet_balance_sat",
            "Wallet balance in satoshis by state (confirmed, unconfirmed)",
            balance,
        );
        gauge(
            &mut r,
            "snakkaz_pay_addresses_in_use",
            "Receive addresses handed out to payments",
            i64::from(s.wallet.addresses_in_use),
        );
        let payments = Family::<Labels, Gauge>::default();
        for st in crate::payments::Status::ALL {
            let n = s.payments.get(st.as_str()).copied().unwrap_or(0);
            payments
                .get_or_create(&vec![("status", st.as_str().to_owned())])
                .set(sat_i64(n));
        }
        r.register(
            "snakkaz_pay_payments",
            "Payments in the store by status (recomputed from the store at every scrape)",
            payments,
        );
        let flags = Family::<Labels, Gauge>::default();
        for (flag, n) in flagged {
            flags
                .get_or_create(&vec![("flag", (*flag).to_owned())])
                .set(sat_i64(*n));
        }
        r.register(
            "snakkaz_pay_payments_flagged",
            "Payments carrying a flag (overpaid, late_payment, reorged)",
            flags,
        );
        r.register(
            "snakkaz_pay_payment_confirmation_seconds",
            "Seconds from a payment's transaction first seen to the payment confirmed",
            self.confirmation.clone(),
        );
        r.register(
            "snakkaz_pay_notification_to_update_seconds",
            "Seconds from an Electrum notification to the payment change committed",
            self.notification_to_update.clone(),
        );
        gauge(
            &mut r,
            "snakkaz_pay_sink_pending",
            "Payment changes waiting in the outbox for the Supabase sink",
            sat_i64(s.outbox.pending),
        );
        gauge(
            &mut r,
            "snakkaz_pay_sink_oldest_pending_seconds",
            "Age of the oldest change waiting for the sink (0 when none)",
            sat_i64(s.outbox.oldest_age_secs.unwrap_or(0)),
        );
        r.register(
            "snakkaz_pay_sink_errors",
            "Supabase sink failures since start",
            ConstCounter::new(s.sink.errors_total),
        );
        let bv = &s.backup_verification;
        if let (Some(age), Some(ok)) = (bv.age_secs, bv.ok) {
            gauge(
                &mut r,
                "snakkaz_pay_backup_verification_age_seconds",
                "Seconds since the last backup verification (verify-backup)",
                sat_i64(age),
            );
            gauge(
                &mut r,
                "snakkaz_pay_backup_verification_ok",
                "1 when the last backup verification passed, 0 when it failed",
                i64::from(ok),
            );
        }
        let rc = &s.reconcile;
        if let Some(at) = rc.last_run_at {
            gauge(
                &mut r,
                "snakkaz_pay_reconcile_last_run_timestamp_seconds",
                "Unix time the last complete reconciliation finished (snakkaz-pay reconcile)",
                sat_i64(at),
            );
            gauge(
                &mut r,
                "snakkaz_pay_reconcile_differences",
                "Differences between store, chain and Supabase found by the last reconciliation",
                sat_i64(rc.differences.unwrap_or(0)),
            );
            gauge(
                &mut r,
                "snakkaz_pay_reconcile_unfixed",
                "Differences the last reconciliation found and did not fix",
                sat_i64(rc.unfixed.unwrap_or(0)),
            );
        }
        gauge(
            &mut r,
            "snakkaz_pay_unexpected_spends",
            "Transactions that spent this wallet's coins without being built by the appliance (until acknowledged)",
            sat_i64(security.unexpected_spends.len() as u64),
        );
        let firing = Family::<Labels, Gauge>::default();
        for rule in crate::alerts::RULES {
            firing
                .get_or_create(&vec![("alertname", rule.to_owned())])
                .set(i64::from(alerts.iter().any(|a| a.name == rule)));
        }
        r.register(
            "snakkaz_pay_alert_firing",
            "1 while the appliance's own evaluation of an alert rule fires",
            firing,
        );
        gauge(
            &mut r,
            "snakkaz_pay_uptime_seconds",
            "Seconds since the daemon started",
            sat_i64(s.uptime_secs),
        );
        register_update(&mut r, &s.update);
        if let Some(free) = host.data_disk_free_bytes {
            gauge(
                &mut r,
                "snakkaz_pay_data_disk_free_bytes",
                "Free bytes on the file system holding the database",
                sat_i64(free),
            );
        }
        if let Some(p) = &host.process {
            register_process(&mut r, p);
        }
        let mut out = String::new();
        encode(&mut out, &r).expect("writing to a String cannot fail");
        out
    }
}

/// The running version and slot, and the last update's outcome (a state set: 1 for the
/// current outcome, 0 for the others).
fn register_update(r: &mut Registry, u: &crate::update::publish::UpdateReport) {
    let info = Family::<Labels, Gauge>::default();
    info.get_or_create(&vec![
        ("version", u.binary_version.to_owned()),
        ("image_version", u.image_version.clone().unwrap_or_default()),
        (
            "slot",
            u.slot.map_or_else(String::new, |s| s.letter().to_owned()),
        ),
    ])
    .set(1);
    r.register(
        "snakkaz_pay_build_info",
        "Always 1; the running binary's version, the appliance image's version and its root slot (empty off the appliance)",
        info,
    );
    if let Some(current) = u.last_outcome {
        let outcome = Family::<Labels, Gauge>::default();
        for o in crate::update::publish::OUTCOMES {
            outcome
                .get_or_create(&vec![("outcome", o.to_owned())])
                .set(i64::from(o == current));
        }
        r.register(
            "snakkaz_pay_update_outcome",
            "1 for the last update's outcome: none, pending, on_trial, good (blessed) or failed_fell_back",
            outcome,
        );
        if let Some(t) = u.outcome_since.as_deref().and_then(|t| {
            humantime::parse_rfc3339_weak(t)
                .ok()?
                .duration_since(std::time::UNIX_EPOCH)
                .ok()
        }) {
            gauge(
                r,
                "snakkaz_pay_update_outcome_timestamp_seconds",
                "Unix time the last update's outcome was first seen (installed, blessed, fallen back)",
                sat_i64(t.as_secs()),
            );
        }
    }
    if let Some(n) = &u.database {
        gauge(
            r,
            "snakkaz_pay_update_database_lost_payments",
            "Payments the last database rollback after an update could not keep (0 after a plain migration)",
            sat_i64(n.lost_payments_total.unwrap_or(u64::from(n.lost))),
        );
    }
}

fn register_process(r: &mut Registry, p: &ProcessStats) {
    r.register(
        "process_cpu_seconds",
        "Total user and system CPU time spent in seconds",
        ConstCounter::new(p.cpu_seconds),
    );
    gauge(
        r,
        "process_resident_memory_bytes",
        "Resident memory size in bytes",
        sat_i64(p.resident_memory_bytes),
    );
    gauge(
        r,
        "process_virtual_memory_bytes",
        "Virtual memory size in bytes",
        sat_i64(p.virtual_memory_bytes),
    );
    r.register(
        "process_start_time_seconds",
        "Start time of the process since the Unix epoch in seconds",
        ConstGauge::new(p.start_time_seconds),
    );
    gauge(
        r,
        "process_open_fds",
        "Number of open file descriptors",
        sat_i64(p.open_fds),
    );
    if let Some(m) = p.max_fds {
        gauge(
            r,
            "process_max_fds",
            "Maximum number of open file descriptors",
            sat_i64(m),
        );
    }
    gauge(
        r,
        "process_threads",
        "Number of OS threads",
        sat_i64(p.threads),
    );
}

fn gauge(r: &mut Registry, name: &str, help: &str, v: i64) {
    r.register(name, help, ConstGauge::new(v));
}

/// Prometheus gauges are signed; a count never reaches 2^63, but saturate rather than wrap.
fn sat_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Reads the host facts: disk space under `db_path` and this process's /proc entries.
pub fn host_facts(db_path: &Path) -> HostFacts {
    let dir = db_path.parent().filter(|p| !p.as_os_str().is_empty());
    let data_disk_free_bytes = rustix::fs::statvfs(dir.unwrap_or(Path::new(".")))
        .ok()
        .map(|v| v.f_bavail.saturating_mul(v.f_frsize));
    HostFacts {
        data_disk_free_bytes,
        process: read_process(),
    }
}

fn read_process() -> Option<ProcessStats> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let boot = std::fs::read_to_string("/proc/stat").ok()?;
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let open_fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64);
    let mut p = parse_stat(&stat, &boot, rustix::param::clock_ticks_per_second())?;
    p.open_fds = open_fds;
    p.max_fds = parse_max_fds(&limits);
    Some(p)
}

/// Parses /proc/self/stat (see proc(5)); `boot` is /proc/stat for the boot time.
fn parse_stat(stat: &str, boot: &str, ticks: u64) -> Option<ProcessStats> {
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state), so field n is f[n - 3].
    let num = |n: usize| f.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    let ticks = ticks.max(1) as f64;
    let btime: u64 = boot
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())?;
    let page = rustix::param::page_size() as u64;
    Some(ProcessStats {
        cpu_seconds: (num(14)? + num(15)?) as f64 / ticks,
        threads: num(20)?,
        start_time_seconds: btime as f64 + num(22)? as f64 / ticks,
        virtual_memory_bytes: num(23)?,
        resident_memory_bytes: num(24)?.saturating_mul(page),
        open_fds: 0,
        max_fds: None,
    })
}

fn parse_max_fds(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_read_after_the_command_name() {
        // A command name with spaces and a ')' must not shift the fields.
        let stat = "42 (we ird) x) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 7 0 1000 123456789 300 18446744073709551615";
        let p = parse_stat(stat, "cpu 1 2 3\nbtime 1700000000\n", 100).unwrap();
        assert_eq!(p.cpu_seconds, 3.0);
        assert_eq!(p.threads, 7);
        assert_eq!(p.start_time_seconds, 1_700_000_010.0);
        assert_eq!(p.virtual_memory_bytes, 123_456_789);
        assert_eq!(
            p.resident_memory_bytes,
            300 * rustix::param::page_size() as u64
        );
    }

    #[test]
    fn max_fds_comes_from_the_soft_limit() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 524288               files\n";
        assert_eq!(parse_max_fds(limits), Some(1024));
    }

    #[test]
    fn this_process_can_be_read() {
        let p = read_process().expect("/proc is readable on Linux");
        assert!(p.resident_memory_bytes > 0 && p.open_fds > 0 && p.threads > 0);
    }
}
