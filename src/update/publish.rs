//! The update status, published for the daemon. The ESP is root's alone (mounted 0700),
//! so a root unit runs `snakkaz-pay update --publish`, which writes what `update` shows
//! into a file the daemon reads: before the daemon starts (a version on trial makes
//! schema migrations wait, see `store::migrate`) and again once the boot is blessed.
//! The daemon shows it on the page, in `/api/status`, the metrics and `status`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::slot::Slot;
use super::state::{Outcome, Record};
use super::{Status, System, UpdateError};
use crate::store::migrate::UpdateNotice;

/// The published status file, under the system root.
pub use crate::store::migrate::UPDATE_STATUS_FILE as STATUS_FILE;

/// How long a failed update or a database rollback stays a problem on the status page
/// (it stays in the update section, the audit log and the metrics after that).
pub const PROBLEM_SECS: u64 = 7 * 24 * 3600;

/// What `--publish` writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    /// The status `snakkaz-pay update` shows.
    #[serde(flatten)]
    pub status: Status,
    /// When it was written (RFC 3339).
    pub published_at: String,
    /// When the last update's outcome was first published: when it was installed,
    /// blessed, or found failed (RFC 3339).
    pub outcome_since: String,
}

/// Writes the status of `sys` for the daemon (world-readable: nothing secret in it).
pub fn publish(sys: &System, cmdline: &str) -> Result<Published, UpdateError> {
    let status = super::status(sys, cmdline)?;
    let path = sys.path(STATUS_FILE);
    let now = crate::backup::manifest::rfc3339(crate::backup::manifest::now_ms());
    let outcome_since = match read_file(&path) {
        Some(prev)
            if prev.status.last_update == status.last_update
                && prev.status.last_update_outcome == status.last_update_outcome =>
        {
            prev.outcome_since
        }
        _ => now.clone(),
    };
    let p = Published {
        status,
        published_at: now,
        outcome_since,
    };
    write(&path, &p)?;
    Ok(p)
}

fn write(path: &Path, p: &Published) -> Result<(), UpdateError> {
    // The daemon runs as its own user: it must read this.
    super::write_json(path, p, Some(0o644))
}

fn read_file(path: &Path) -> Option<Published> {
    let bytes = std::fs::read(path).ok()?;
    match serde_json::from_slice(&bytes) {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "the published update status is unreadable");
            None
        }
    }
}

/// The system root the daemon reads the published status under.
pub use crate::store::migrate::sysroot;

/// What the daemon shows about its version, the system and the last update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpdateReport {
    /// The running binary's version.
    pub binary_version: &'static str,
    /// The appliance image's version (`IMAGE_VERSION`); `None` off the appliance.
    pub image_version: Option<String>,
    /// The root slot running; `None` off the appliance.
    pub slot: Option<Slot>,
    /// The last update's outcome: `none`, `pending` (installed, not booted),
    /// `on_trial`, `good` (blessed) or `failed_fell_back`; `None` off the appliance.
    pub last_outcome: Option<&'static str>,
    /// The last update installed.
    pub last_update: Option<Record>,
    /// When that outcome was first seen (installed, blessed, fallen back; RFC 3339).
    pub outcome_since: Option<String>,
    /// The outcome in one line.
    pub summary: Option<String>,
    /// The last migration or rollback of the database (`store::migrate`).
    pub database: Option<UpdateNotice>,
}

impl UpdateReport {
    /// The report from the status published under `root` and the store's notice.
    pub fn read(root: &Path, database: Option<UpdateNotice>) -> UpdateReport {
        UpdateReport::of(read_file(&root.join(STATUS_FILE)), database)
    }

    /// The report from a published status (`None`: not an appliance).
    pub fn of(p: Option<Published>, database: Option<UpdateNotice>) -> UpdateReport {
        let version = env!("CARGO_PKG_VERSION");
        match p {
            None => UpdateReport {
                binary_version: version,
                image_version: None,
                slot: None,
                last_outcome: None,
                last_update: None,
                outcome_since: None,
                summary: None,
                database,
            },
            Some(p) => UpdateReport {
                binary_version: version,
                image_version: Some(p.status.version.to_string()),
                slot: Some(p.status.slot),
                last_outcome: Some(outcome_name(&p.status.last_update_outcome)),
                last_update: p.status.last_update,
                outcome_since: Some(p.outcome_since),
                summary: Some(p.status.summary),
                database,
            },
        }
    }

    /// Problems for the status page at `now` (unix seconds): a failed update and a
    /// database rollback that lost data, each for `PROBLEM_SECS`.
    pub fn problems(&self, now: u64) -> Vec<String> {
        let recent = |at: u64| now.saturating_sub(at) < PROBLEM_SECS;
        let mut out = Vec::new();
        if self.last_outcome == Some("failed_fell_back")
            && let Some(r) = &self.last_update
        {
            let since = self.outcome_since.as_deref().and_then(unix_secs);
            if since.is_none_or(recent) {
                out.push(format!(
                    "update to {} FAILED its boot checks; the box fell back to {} by itself ({}): install a fixed version; `snakkaz-pay update` on the box shows the boot entries",
                    r.to,
                    self.image_version.as_deref().unwrap_or("the previous version"),
                    self.outcome_since.as_deref().unwrap_or("time unknown"),
                ));
            }
        }
        if let Some(n) = &self.database
            && n.lost
            && recent(n.at)
        {
            out.push(format!(
                "database {}: {}{}",
                n.kind.replace('_', " "),
                n.detail,
                if n.lost_payments.is_empty() {
                    String::new()
                } else {
                    format!(
                        " (lost payments: {}); re-create them if still wanted",
                        n.lost_payments.join(", ")
                    )
                }
            ));
        }
        out
    }
}

/// The outcome's name as `/api/status` and the metrics write it.
pub fn outcome_name(o: &Outcome) -> &'static str {
    match o {
        Outcome::None => "none",
        Outcome::Pending => "pending",
        Outcome::OnTrial => "on_trial",
        Outcome::Good => "good",
        Outcome::FailedFellBack { .. } => "failed_fell_back",
    }
}

/// Every outcome name (the metrics' state set).
pub const OUTCOMES: [&str; 5] = ["none", "pending", "on_trial", "good", "failed_fell_back"];

fn unix_secs(rfc3339: &str) -> Option<u64> {
    humantime::parse_rfc3339_weak(rfc3339)
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use semver::Version;

    use super::super::slot::parse_entry;
    use super::*;

    fn published(outcome: Outcome, since: &str) -> Published {
        let rec = Record {
            from: Version::new(0, 2, 0),
            to: Version::new(0, 3, 0),
            slot: Slot::A,
            at: "2026-11-27T08:00:00.000Z".into(),
        };
        Published {
            status: Status {
                version: Version::new(0, 2, 0),
                slot: Slot::B,
                entries: vec![parse_entry("snakkaz-pay-0.2.0-b.efi").unwrap()],
                summary: outcome.describe(Some(&rec)),
                last_update: Some(rec),
                last_update_outcome: outcome,
            },
            published_at: since.into(),
            outcome_since: since.into(),
        }
    }

    #[test]
    fn off_the_appliance_only_the_binary_version_is_known() {
        let r = UpdateReport::of(None, None);
        assert_eq!(r.binary_version, env!("CARGO_PKG_VERSION"));
        assert_eq!(
            (&r.image_version, r.slot, r.last_outcome),
            (&None, None, None)
        );
        assert!(r.problems(0).is_empty());
    }

    #[test]
    fn a_failed_update_is_a_problem_for_a_week() {
        let since = "2026-11-27T09:00:00.000Z";
        let at = unix_secs(since).unwrap();
        let p = published(
            Outcome::FailedFellBack {
                running: Version::new(0, 2, 0),
            },
            since,
        );
        let r = UpdateReport::of(Some(p), None);
        assert_eq!(r.last_outcome, Some("failed_fell_back"));
        assert_eq!(r.slot, Some(Slot::B));
        let problems = r.problems(at + 60);
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].starts_with("update to 0.3.0 FAILED"),
            "{problems:?}"
        );
        assert!(problems[0].contains("fell back to 0.2.0"), "{problems:?}");
        assert!(r.problems(at + PROBLEM_SECS + 1).is_empty());
        // A good update is no problem.
        let r = UpdateReport::of(Some(published(Outcome::Good, since)), None);
        assert_eq!(r.last_outcome, Some("good"));
        assert!(r.problems(at + 60).is_empty());
    }

    #[test]
    fn a_database_rollback_that_lost_payments_is_a_problem_naming_them() {
        let notice = |lost: bool| UpdateNotice {
            at: 1_000,
            kind: "rolled_back".into(),
            lost,
            detail: "restored the pre-update snapshot".into(),
            lost_payments: if lost { vec!["pay_1".into()] } else { vec![] },
            lost_payments_total: Some(u64::from(lost)),
            kept_at: None,
        };
        let r = UpdateReport::of(None, Some(notice(true)));
        let p = r.problems(2_000);
        assert_eq!(p.len(), 1);
        assert!(
            p[0].starts_with("database rolled back: restored") && p[0].contains("pay_1"),
            "{p:?}"
        );
        assert!(r.problems(1_000 + PROBLEM_SECS).is_empty());
        assert!(
            UpdateReport::of(None, Some(notice(false)))
                .problems(2_000)
                .is_empty()
        );
    }

    #[test]
    fn the_status_file_is_readable_by_the_daemon_user() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("status.json");
        let first = published(Outcome::OnTrial, "2026-11-27T09:00:00.000Z");
        write(&path, &first).unwrap();
        assert_eq!(read_file(&path), Some(first.clone()));
        let mode = {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777
        };
        assert_eq!(mode, 0o644, "the daemon's user reads it");
    }
}
