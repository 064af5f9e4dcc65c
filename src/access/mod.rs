//! Access security: bearer tokens and their rotation, the failed-authentication limiter,
//! the lock-down state and its local-only lifting, and audit records.
//!
//! The policies here are plain functions over plain data; `web` and the CLI move requests
//! in and out, and `store` keeps what must survive a restart (lock-down, audit log).

pub mod limiter;
pub mod local;
pub mod lockdown;
pub mod tokens;

pub use limiter::Limiter;
pub use lockdown::refusal_message;
pub use tokens::{Access, LiveTokens, Presented, Tokens};

use serde_json::{Value, json};

use crate::store::{AuditEntry, LockdownRecord, Store, StoreError};

/// Audit action of a wrong bearer token.
pub const AUTH_FAILED: &str = "auth.failed";
/// Most failed logins counted for the alert and the metric (the limiter bounds them anyway).
const FAILED_LOGINS_COUNT_CAP: usize = 10_000;

/// What the page, the alerts and the metrics show about access security.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecurityFacts {
    /// The lock-down in force.
    pub lockdown: Option<LockdownRecord>,
    /// Failed authentications within the alert window.
    pub failed_logins: u64,
    /// Outgoing transactions the appliance did not build, not acknowledged.
    pub unexpected_spends: Vec<String>,
}

/// Reads the security facts from the store; `window` bounds the failed-login count.
pub fn security_facts(
    store: &Store,
    window: std::time::Duration,
) -> Result<SecurityFacts, StoreError> {
    let since = crate::clock::now().saturating_sub(window.as_secs());
    let failed = store.audit_since(since, FAILED_LOGINS_COUNT_CAP, |e| e.action == AUTH_FAILED)?;
    Ok(SecurityFacts {
        lockdown: store.lockdown()?,
        failed_logins: failed.len() as u64,
        unexpected_spends: store
            .unexpected_spends()?
            .into_iter()
            .filter(|u| u.acknowledged_at.is_none())
            .map(|u| u.txid)
            .collect(),
    })
}

/// An audit entry stamped now.
pub fn audit(action: &str, source: &str, detail: impl Into<String>) -> AuditEntry {
    AuditEntry {
        at: crate::clock::now(),
        action: action.to_owned(),
        detail: detail.into(),
        source: source.to_owned(),
    }
}

/// JSON of one audit entry (API and CLI).
pub fn audit_json(e: &AuditEntry) -> Value {
    json!({
        "at": crate::clock::rfc3339(e.at),
        "at_unix": e.at,
        "action": e.action,
        "source": e.source,
        "detail": e.detail,
    })
}

/// JSON of the lock-down state (API and CLI).
pub fn lockdown_json(rec: Option<&LockdownRecord>) -> Value {
    match rec {
        None => json!({"locked": false}),
        Some(r) => json!({
            "locked": true,
            "since": crate::clock::rfc3339(r.since),
            "reason": r.reason,
            "source": r.source,
        }),
    }
}
