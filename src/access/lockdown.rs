//! Lock-down: a persistent state in which the appliance keeps watching and recording
//! payments but refuses new ones, admin actions and spending.
//!
//! It is set through the admin API or on the file, and lifted only with local access:
//! the CLI on the file while the daemon is stopped, or a request file next to the database
//! (see `local`) that the running daemon picks up.
//! The network API cannot lift it, so a stolen admin token cannot undo an incident response.

use crate::store::{LockdownChange, LockdownRecord, WriteBatch};

/// Longest lock-down reason kept.
pub const MAX_REASON_LEN: usize = 500;
/// Reason recorded when the operator gives none.
pub const DEFAULT_REASON: &str = "incident response";

/// Admin API paths (after `/api/admin/`) still served during a lock-down: the lock-down
/// itself, token rotation (revoking credentials is part of containment), the audit log
/// and read-only chain look-ups (`tx`, `fees`: an incident needs them; they move nothing).
pub fn admin_allowed_while_locked(rest: &[&str]) -> bool {
    matches!(
        rest,
        ["lockdown"] | ["unlock"] | ["tokens", "reload"] | ["audit"] | ["tx", _] | ["fees"]
    )
}

/// What a refused request is told.
pub fn refusal_message(rec: &LockdownRecord) -> String {
    format!(
        "the appliance is locked down since {} ({}); new payments, admin actions and spending \
         are refused while open payments are still watched; lift it on the box with `snakkaz-pay unlock`",
        crate::clock::rfc3339(rec.since),
        rec.reason
    )
}

/// A reason as stored: trimmed, control characters refused, length bounded.
pub fn clean_reason(reason: Option<&str>) -> Result<String, String> {
    let r = reason.map(str::trim).filter(|r| !r.is_empty());
    let Some(r) = r else {
        return Ok(DEFAULT_REASON.to_owned());
    };
    if r.chars().any(char::is_control) {
        return Err("reason: must not contain control characters".into());
    }
    if r.chars().count() > MAX_REASON_LEN {
        return Err(format!("reason: at most {MAX_REASON_LEN} characters"));
    }
    Ok(r.to_owned())
}

/// The write that locks down (kept as is when already locked), with its audit entry.
pub fn lock_batch(reason: &str, source: &str) -> WriteBatch {
    let now = crate::clock::now();
    WriteBatch {
        lockdown: Some(LockdownChange::Lock(LockdownRecord {
            since: now,
            reason: reason.to_owned(),
            source: source.to_owned(),
        })),
        audit: vec![super::audit(
            "lockdown",
            source,
            format!("reason: {reason}"),
        )],
        ..Default::default()
    }
}

/// The write that lifts the lock-down, with its audit entry.
pub fn unlock_batch(source: &str, how: &str) -> WriteBatch {
    WriteBatch {
        lockdown: Some(LockdownChange::Unlock),
        audit: vec![super::audit("unlock", source, how)],
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_containment_stays_open_during_lockdown() {
        assert!(admin_allowed_while_locked(&["lockdown"]));
        assert!(admin_allowed_while_locked(&["tokens", "reload"]));
        assert!(admin_allowed_while_locked(&["audit"]));
        assert!(!admin_allowed_while_locked(&["restart-payment-processor"]));
        assert!(!admin_allowed_while_locked(&["sync"]));
        assert!(!admin_allowed_while_locked(&["sink", "resync"]));
    }

    #[test]
    fn reasons_are_cleaned() {
        assert_eq!(clean_reason(None).unwrap(), DEFAULT_REASON);
        assert_eq!(clean_reason(Some("  ")).unwrap(), DEFAULT_REASON);
        assert_eq!(
            clean_reason(Some(" hot wallet drained ")).unwrap(),
            "hot wallet drained"
        );
        assert!(clean_reason(Some("a\u{1b}[31m")).is_err());
        assert!(clean_reason(Some(&"x".repeat(MAX_REASON_LEN + 1))).is_err());
    }
}
