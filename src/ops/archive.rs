//! `snakkaz-pay archive [--older-than 90d] [--dry-run]`: settled payments unchanged for
//! longer than the threshold move from the live table to the archive (completed ones;
//! expired and underpaid too with SNAKKAZ_PAY_ARCHIVE_UNPAID), and, when a sink is
//! configured, their Supabase rows from `electrum_payments` to `electrum_payments_archive`
//! in one Postgres transaction. The store moves first; a Supabase move that fails is kept
//! pending in the store and done by the next run.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::OpsError;
use super::reconcile::SinkRuntime;
use crate::config::Config;
use crate::payments::{Payment, Status};
use crate::store::{ArchiveMove, AuditEntry, Store, WriteBatch};

/// The default threshold: the guide archives payments older than 90 days.
pub const DEFAULT_OLDER_THAN: Duration = Duration::from_secs(90 * 86_400);
/// Payments moved per store transaction.
const CHUNK: usize = 500;
/// Most payments listed in a report (the counts stay exact).
pub const MAX_LISTED: usize = 1000;

/// Parses an age such as `90d`, `12h`, `30m`, `45s` or `2w` (a bare number is seconds).
pub fn parse_age(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| {
        format!("{s:?} is not an age; write a number and a unit, e.g. 90d, 12h, 30m, 45s")
    })?;
    let per = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        other => {
            return Err(format!(
                "{s:?}: unknown unit {other:?}; use s, m, h, d or w (e.g. 90d)"
            ));
        }
    };
    n.checked_mul(per)
        .filter(|&secs| secs <= 100 * 365 * 86_400)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{s:?} is too long; at most 100 years"))
}

/// One payment moved (or, in a dry run, to be moved).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchivedJson {
    /// Payment id.
    pub id: String,
    /// Its reference.
    pub reference: String,
    /// Its status.
    pub status: Status,
    /// Received amount.
    pub received_sat: u64,
    /// Unix seconds of its last change.
    pub updated_at: u64,
}

impl From<&Payment> for ArchivedJson {
    fn from(p: &Payment) -> Self {
        ArchivedJson {
            id: p.id.clone(),
            reference: p.reference.clone(),
            status: p.status,
            received_sat: p.received_sat,
            updated_at: p.updated_at,
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveReport {
    /// Nothing was written.
    pub dry_run: bool,
    /// The threshold, in seconds.
    pub older_than_secs: u64,
    /// Payments unchanged since before this Unix time were eligible.
    pub before: u64,
    /// The statuses archived.
    pub statuses: Vec<Status>,
    /// Payments moved (or, in a dry run, that would be).
    pub archived: u64,
    /// Them (at most `MAX_LISTED`).
    pub payments: Vec<ArchivedJson>,
    /// Payments in the archive after the run.
    pub archive_total: u64,
    /// `moved`, `not_configured`, `failed` or `dry_run`.
    pub sink: String,
    /// Supabase rows moved to `electrum_payments_archive` in this run.
    pub sink_moved: u64,
    /// Why the Supabase move failed (it is retried by the next run).
    pub sink_error: Option<String>,
    /// Archived payments whose Supabase move is still to be done.
    pub sink_pending: u64,
}

/// The statuses a run archives.
pub fn statuses(cfg: &Config) -> Vec<Status> {
    if cfg.archive_unpaid {
        vec![Status::Completed, Status::Expired, Status::Underpaid]
    } else {
        vec![Status::Completed]
    }
}

/// Runs an archive pass.
pub fn run(
    cfg: &Config,
    store: &Store,
    older_than: Duration,
    dry_run: bool,
) -> Result<ArchiveReport, OpsError> {
    let now = crate::clock::now();
    let before = now.saturating_sub(older_than.as_secs());
    let statuses = statuses(cfg);
    let sink_configured = cfg.supabase_db_url_file.is_some();
    let mut report = ArchiveReport {
        dry_run,
        older_than_secs: older_than.as_secs(),
        before,
        statuses: statuses.clone(),
        archived: 0,
        payments: Vec::new(),
        archive_total: 0,
        sink: if dry_run {
            "dry_run"
        } else if sink_configured {
            "moved"
        } else {
            "not_configured"
        }
        .into(),
        sink_moved: 0,
        sink_error: None,
        sink_pending: 0,
    };
    if dry_run {
        let all = store.archive_candidates(&statuses, before, usize::MAX)?;
        report.archived = all.len() as u64;
        report.payments = all.iter().take(MAX_LISTED).map(Into::into).collect();
        report.archive_total = store.archived_count()?;
        report.sink_pending = store.archive_sink_pending()?.len() as u64;
        return Ok(report);
    }
    loop {
        let chunk = store.archive_candidates(&statuses, before, CHUNK)?;
        if chunk.is_empty() {
            break;
        }
        let mut meta = Vec::new();
        if sink_configured {
            let mut pending = store.archive_sink_pending()?;
            pending.extend(chunk.iter().map(|p| p.id.clone()));
            meta.push(crate::store::archive_sink_pending_entry(&pending));
        }
        let batch = WriteBatch {
            archive: ArchiveMove {
                seqs: chunk.iter().map(|p| p.seq).collect(),
                at: now,
            },
            meta,
            audit: vec![AuditEntry {
                at: now,
                action: "archive".into(),
                detail: format!(
                    "{} payment(s) unchanged for {} s moved to the archive",
                    chunk.len(),
                    older_than.as_secs()
                ),
                source: "cli".into(),
            }],
            ..Default::default()
        };
        store.commit_blocking(batch)?;
        report.archived += chunk.len() as u64;
        let room = MAX_LISTED.saturating_sub(report.payments.len());
        report
            .payments
            .extend(chunk.iter().take(room).map(ArchivedJson::from));
        if chunk.len() < CHUNK {
            break;
        }
    }
    if sink_configured {
        mirror(cfg, store, now, &mut report)?;
    }
    report.archive_total = store.archived_count()?;
    report.sink_pending = store.archive_sink_pending()?.len() as u64;
    Ok(report)
}

/// Moves the pending Supabase rows; clears the pending list once Postgres committed.
fn mirror(
    cfg: &Config,
    store: &Store,
    now: u64,
    report: &mut ArchiveReport,
) -> Result<(), OpsError> {
    let pending = store.archive_sink_pending()?;
    if pending.is_empty() {
        return Ok(());
    }
    let mut payments = Vec::with_capacity(pending.len());
    for id in &pending {
        if let Some(p) = store.payment(id)? {
            payments.push(p);
        }
    }
    let settings = match crate::sink::settings(cfg) {
        Ok(Some(s)) => s,
        Ok(None) => return Ok(()),
        Err(e) => {
            report.sink = "failed".into();
            report.sink_error = Some(e.to_string());
            return Ok(());
        }
    };
    let rt = SinkRuntime::new()?;
    match rt.block_on(crate::sink::archive::move_rows(&settings, &payments, now)) {
        Ok(_) => {
            report.sink_moved = payments.len() as u64;
            store.commit_blocking(WriteBatch {
                meta_remove: vec![crate::store::ARCHIVE_SINK_PENDING_KEY],
                ..Default::default()
            })?;
        }
        Err(e) => {
            report.sink = "failed".into();
            report.sink_error = Some(e.to_string());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_take_the_operators_units() {
        assert_eq!(parse_age("90d").unwrap(), Duration::from_secs(90 * 86_400));
        assert_eq!(parse_age("12h").unwrap(), Duration::from_secs(43_200));
        assert_eq!(parse_age("30m").unwrap(), Duration::from_secs(1_800));
        assert_eq!(parse_age("2w").unwrap(), Duration::from_secs(14 * 86_400));
        assert_eq!(parse_age("45").unwrap(), Duration::from_secs(45));
        assert_eq!(parse_age("0s").unwrap(), Duration::ZERO);
    }

    #[test]
    fn garbage_ages_are_refused_with_what_to_write() {
        let e = parse_age("soon").unwrap_err();
        assert!(e.contains("e.g. 90d"), "{e}");
        let e = parse_age("90x").unwrap_err();
        assert!(e.contains("unknown unit \"x\""), "{e}");
        assert!(parse_age("-1d").is_err());
        assert!(parse_age("").is_err());
        let e = parse_age("99999999999999d").unwrap_err();
        assert!(e.contains("too long"), "{e}");
    }

    #[test]
    fn only_settled_unchanged_payments_without_a_loss_are_archivable() {
        let mut p = Payment {
            id: "pay_1".into(),
            seq: 1,
            reference: "r".into(),
            description: None,
            address: "a".into(),
            derivation_index: 0,
            amount_sat: 1,
            received_sat: 1,
            status: Status::Completed,
            confirmations: 1,
            txids: vec![],
            flags: Default::default(),
            created_at: 0,
            updated_at: 100,
            expires_at: 0,
            first_seen_at: None,
            confirmed_at: None,
            covered_height: None,
            created_height: None,
            version: 1,
        };
        let completed = [Status::Completed];
        assert!(crate::store::archivable(&p, &completed, 101));
        assert!(
            !crate::store::archivable(&p, &completed, 100),
            "changed too recently"
        );
        p.flags.money_lost = true;
        assert!(
            !crate::store::archivable(&p, &completed, 101),
            "a loss waits for the operator"
        );
        p.flags.money_lost = false;
        p.status = Status::Expired;
        assert!(!crate::store::archivable(&p, &completed, 101));
        assert!(crate::store::archivable(
            &p,
            &[Status::Completed, Status::Expired],
            101
        ));
    }
}
