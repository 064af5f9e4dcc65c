//! The last backup verification as the status page, `/api/status`, metrics and alerts show it.

use std::time::Duration;

use serde::Serialize;

use crate::store::VerificationRecord;

/// The last `verify-backup` result and whether it needs attention.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerificationStatus {
    /// Unix seconds of the last verification; `None`: never verified.
    pub last_at: Option<u64>,
    /// Seconds since then.
    pub age_secs: Option<u64>,
    /// Whether it passed.
    pub ok: Option<bool>,
    /// The backup it verified.
    pub file: Option<String>,
    /// Why it failed.
    pub reason: Option<String>,
    /// Age after which it is stale.
    pub max_age_secs: u64,
    /// What needs attention (failed or stale), in operator words; `None`: all well or never run.
    pub problem: Option<String>,
}

/// Pure: the status of `last` at `now` with the configured maximum age.
pub fn verification_status(
    last: Option<&VerificationRecord>,
    max_age: Duration,
    now: u64,
) -> VerificationStatus {
    let max = max_age.as_secs();
    let Some(r) = last else {
        return VerificationStatus {
            last_at: None,
            age_secs: None,
            ok: None,
            file: None,
            reason: None,
            max_age_secs: max,
            problem: None,
        };
    };
    let age = now.saturating_sub(r.at);
    let problem = if !r.ok {
        Some(format!(
            "the last backup verification failed ({}): {}; take a new backup and run verify-backup",
            r.file,
            r.reason.as_deref().unwrap_or("no reason recorded")
        ))
    } else if age > max {
        Some(format!(
            "the last backup verification is {} days old (limit {} days); run verify-backup (is its timer enabled?)",
            age / 86_400,
            max / 86_400
        ))
    } else {
        None
    };
    VerificationStatus {
        last_at: Some(r.at),
        age_secs: Some(age),
        ok: Some(r.ok),
        file: Some(r.file.clone()),
        reason: r.reason.clone(),
        max_age_secs: max,
        problem,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 86_400;

    fn rec(at: u64, ok: bool) -> VerificationRecord {
        VerificationRecord {
            at,
            file: "b.redb.age".into(),
            ok,
            reason: (!ok).then(|| "truncated".into()),
        }
    }

    #[test]
    fn fresh_ok_is_quiet_failed_or_stale_is_a_problem() {
        let max = Duration::from_secs(8 * DAY);
        let now = 100 * DAY;
        assert_eq!(verification_status(None, max, now).problem, None);
        assert_eq!(
            verification_status(Some(&rec(now - DAY, true)), max, now).problem,
            None
        );
        assert_eq!(
            verification_status(Some(&rec(now - 8 * DAY, true)), max, now).problem,
            None,
            "exactly the limit is not stale yet"
        );
        let stale = verification_status(Some(&rec(now - 9 * DAY, true)), max, now);
        assert!(stale.problem.unwrap().contains("9 days old"));
        let failed = verification_status(Some(&rec(now, false)), max, now);
        assert!(failed.problem.unwrap().contains("failed"));
        assert_eq!(failed.age_secs, Some(0));
    }
}
