//! Admin API of access security: lock-down, token reload and the audit log.

use std::net::SocketAddr;
use std::time::Duration;

use http::{Method, Request, StatusCode};
use hyper::body::Incoming;
use serde_json::{Value, json};

use super::Shared;
use super::api::{Resp, audit, error, json_response, read_body};
use crate::access::{audit_json, lockdown, lockdown_json};
use crate::store::AuditEntry;

/// Largest page of the audit log.
pub(crate) const MAX_AUDIT_PAGE: usize = 1000;

/// Whether this module serves `method` on `/api/admin/{rest}`.
pub(crate) fn handles(method: &Method, rest: &[&str]) -> bool {
    matches!(
        (method, rest),
        (&Method::GET | &Method::POST, ["lockdown"])
            | (&Method::POST, ["unlock"] | ["tokens", "reload"])
            | (&Method::GET, ["audit"])
    )
}

/// 503 for an admin action while locked down; `None` when it may go ahead.
pub(crate) fn refused_while_locked(shared: &Shared, rest: &[&str]) -> Option<Resp> {
    if lockdown::admin_allowed_while_locked(rest) {
        return None;
    }
    match shared.app.store.lockdown() {
        Ok(None) => None,
        Ok(Some(rec)) => Some(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "locked_down",
            lockdown::refusal_message(&rec),
        )),
        Err(e) => {
            tracing::error!(error = %e, "could not read the lock-down state");
            Some(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the appliance could not read its lock-down state; see the log",
            ))
        }
    }
}

fn internal(e: impl std::fmt::Display) -> Resp {
    tracing::error!(error = %e, "store failure in the admin API");
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "the appliance could not read or write its database; see the log",
    )
}

async fn json_body(req: Request<Incoming>) -> Result<Value, Resp> {
    let body = read_body(req).await?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(&body).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("malformed JSON body: {e}"),
        )
    })
}

/// Serves an endpoint `handles` accepted.
pub(crate) async fn route(
    shared: &Shared,
    req: Request<Incoming>,
    rest: &[&str],
    peer: SocketAddr,
) -> Resp {
    let source = format!("admin-api {}", peer.ip().to_canonical());
    let store = &shared.app.store;
    match (req.method().clone(), rest) {
        (Method::GET, ["lockdown"]) => match store.lockdown() {
            Ok(rec) => json_response(StatusCode::OK, &lockdown_json(rec.as_ref())),
            Err(e) => internal(e),
        },
        (Method::POST, ["lockdown"]) => {
            let body = match json_body(req).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            let reason = match lockdown::clean_reason(body["reason"].as_str()) {
                Ok(r) => r,
                Err(m) => return error(StatusCode::BAD_REQUEST, "invalid_request", m),
            };
            tracing::warn!(%reason, %source, "lock-down requested through the admin API");
            if let Err(e) = store.commit(lockdown::lock_batch(&reason, &source)).await {
                return internal(e);
            }
            match store.lockdown() {
                Ok(rec) => json_response(StatusCode::OK, &lockdown_json(rec.as_ref())),
                Err(e) => internal(e),
            }
        }
        (Method::POST, ["unlock"]) => {
            audit(
                shared,
                "unlock.refused",
                &source,
                "unlock attempted through the network API".into(),
            )
            .await;
            error(
                StatusCode::FORBIDDEN,
                "unlock_needs_local_access",
                "a lock-down is lifted only on the box: run `snakkaz-pay unlock` there as root",
            )
        }
        (Method::POST, ["tokens", "reload"]) => {
            let body = match json_body(req).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            let grace = match &body["grace_secs"] {
                Value::Null => 0,
                v => match v.as_u64() {
                    Some(n) if n <= crate::access::tokens::MAX_GRACE.as_secs() => n,
                    _ => {
                        return error(
                            StatusCode::BAD_REQUEST,
                            "invalid_request",
                            format!(
                                "grace_secs: must be a whole number of seconds up to {}",
                                crate::access::tokens::MAX_GRACE.as_secs()
                            ),
                        );
                    }
                },
            };
            match shared
                .tokens
                .reload(&shared.app.cfg, Duration::from_secs(grace))
            {
                Ok(r) => {
                    let detail = format!(
                        "token files re-read: api {}, admin {}, old tokens valid for {grace} s",
                        if r.api { "replaced" } else { "unchanged" },
                        if r.admin { "replaced" } else { "unchanged" },
                    );
                    tracing::warn!(%source, %detail, "tokens reloaded");
                    audit(shared, "tokens.rotate", &source, detail).await;
                    json_response(
                        StatusCode::OK,
                        &json!({"api_replaced": r.api, "admin_replaced": r.admin, "grace_secs": grace}),
                    )
                }
                Err(e) => {
                    audit(shared, "tokens.rotate.failed", &source, e.to_string()).await;
                    error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "token_files",
                        format!("{e}; the tokens in force are unchanged"),
                    )
                }
            }
        }
        (Method::GET, ["audit"]) => {
            let mut since = 0;
            let mut limit = 100;
            let mut action: Option<String> = None;
            for (k, v) in form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()) {
                let bad = |m: &str| {
                    error(
                        StatusCode::BAD_REQUEST,
                        "invalid_request",
                        format!("{k}: {m}"),
                    )
                };
                match k.as_ref() {
                    "since" => match v.parse() {
                        Ok(n) => since = n,
                        Err(_) => return bad("must be unix seconds"),
                    },
                    "limit" => match v.parse() {
                        Ok(n) if (1..=MAX_AUDIT_PAGE).contains(&n) => limit = n,
                        _ => return bad(&format!("must be between 1 and {MAX_AUDIT_PAGE}")),
                    },
                    "action" => action = Some(v.into_owned()),
                    _ => return bad("unknown parameter"),
                }
            }
            let filter = |e: &AuditEntry| action.as_deref().is_none_or(|a| e.action.starts_with(a));
            match store.audit_since(since, limit, filter) {
                Ok(entries) => {
                    let items: Vec<Value> = entries.iter().map(audit_json).collect();
                    json_response(StatusCode::OK, &json!({"entries": items}))
                }
                Err(e) => internal(e),
            }
        }
        _ => error(StatusCode::NOT_FOUND, "not_found", "no such API endpoint"),
    }
}
