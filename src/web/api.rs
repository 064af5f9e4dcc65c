//! Request routing and the JSON API handlers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde::Deserialize;
use serde_json::json;

use super::json::PaymentJson;
use super::{Access, Shared, page};
use crate::access::Presented;
use crate::app::{AppError, CreatePayment};
use crate::config::PageAuth;
use crate::store::{ListQuery, WriteBatch};

/// Largest request body accepted.
pub const MAX_BODY: usize = 64 * 1024;
/// Default page size of the payment list.
const DEFAULT_LIMIT: usize = 50;

pub(crate) type Resp = Response<Full<Bytes>>;

/// A JSON error body `{"error": {"code", "message"}}`.
pub(crate) fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Resp {
    json_response(
        status,
        &json!({"error": {"code": code, "message": message.into()}}),
    )
}

pub(crate) fn json_response(status: StatusCode, body: &impl serde::Serialize) -> Resp {
    let bytes = serde_json::to_vec(body).expect("API values serialize to JSON");
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-store")
        .body(Full::new(Bytes::from(bytes)))
        .expect("static response parts are valid")
}

/// Tells the client the connection closes after this response (its request was cut short).
pub(crate) fn closing(mut r: Resp) -> Resp {
    r.headers_mut().insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    r
}

/// Reads a request body: at most [`MAX_BODY`] bytes within [`super::BODY_TIMEOUT`].
pub(crate) async fn read_body(req: Request<Incoming>) -> Result<Bytes, Resp> {
    let collect = Limited::new(req.into_body(), MAX_BODY).collect();
    match tokio::time::timeout(super::BODY_TIMEOUT, collect).await {
        Err(_) => Err(closing(error(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!(
                "the request body did not arrive within {} s",
                super::BODY_TIMEOUT.as_secs()
            ),
        ))),
        Ok(Ok(b)) => Ok(b.to_bytes()),
        Ok(Err(e))
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("request body exceeds {MAX_BODY} bytes"),
            ))
        }
        Ok(Err(e)) => Err(error(
            StatusCode::BAD_REQUEST,
            "bad_body",
            format!("could not read body: {e}"),
        )),
    }
}

fn unauthorized(message: &str) -> Resp {
    let mut r = error(StatusCode::UNAUTHORIZED, "unauthorized", message);
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    r
}

/// Whether a path needs a bearer token (the page's data only when the page asks for one).
fn needs_token(shared: &Shared, segments: &[&str]) -> bool {
    let page_open = shared.app.cfg.page_auth == PageAuth::None;
    match segments {
        ["api", "metrics", "bitcoin"] | ["page", ..] => !page_open,
        ["api", ..] => true,
        _ => false,
    }
}

/// Longest part of a request path kept in the audit log.
const AUDIT_PATH_CHARS: usize = 120;

/// Records a wrong token and answers for a blocked source; `None`: carry on.
async fn guard_auth(
    shared: &Shared,
    presented: Presented,
    peer: SocketAddr,
    path: &str,
) -> Option<Resp> {
    let now = Instant::now();
    let ip = peer.ip().to_canonical();
    let failure = {
        let mut limiter = shared.limiter.lock().expect("limiter lock");
        if let Some(wait) = limiter.blocked(ip, now) {
            return Some(too_many(wait));
        }
        match presented {
            Presented::Wrong => limiter.failure(ip, now),
            Presented::Valid(_) => {
                limiter.success(ip);
                return None;
            }
            Presented::Nothing => return None,
        }
    };
    let path: String = path.chars().take(AUDIT_PATH_CHARS).collect();
    let mut detail = format!(
        "wrong bearer token for {path} (failure {} from this source)",
        failure.failures
    );
    if let Some(d) = failure.blocked_for {
        detail.push_str(&format!("; source blocked for {} s", d.as_secs()));
    }
    tracing::warn!(%peer, %path, failures = failure.failures, "failed authentication");
    audit(shared, crate::access::AUTH_FAILED, &ip.to_string(), detail).await;
    None
}

fn too_many(wait: Duration) -> Resp {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut r = error(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_failed_logins",
        format!("too many wrong tokens from this address; try again in {secs} s"),
    );
    if let Ok(v) = header::HeaderValue::from_str(&secs.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// Appends to the audit log; a failure to record is logged, not fatal to the request.
pub(crate) async fn audit(shared: &Shared, action: &str, source: &str, detail: String) {
    let batch = WriteBatch {
        audit: vec![crate::access::audit(action, source, detail)],
        ..Default::default()
    };
    if let Err(e) = shared.app.store.commit(batch).await {
        tracing::error!(error = %e, action, "could not record an audit entry");
    }
}

fn app_error(e: AppError) -> Resp {
    match e {
        AppError::Invalid { .. } => {
            error(StatusCode::BAD_REQUEST, "invalid_request", e.to_string())
        }
        AppError::NotFound(_) => error(StatusCode::NOT_FOUND, "not_found", e.to_string()),
        AppError::Conflict(_) => error(StatusCode::CONFLICT, "conflict", e.to_string()),
        AppError::Disabled => error(StatusCode::SERVICE_UNAVAILABLE, "disabled", e.to_string()),
        AppError::Scanning => error(StatusCode::SERVICE_UNAVAILABLE, "scanning", e.to_string()),
        AppError::LockedDown(_) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "locked_down",
            e.to_string(),
        ),
        AppError::Store(ref inner) if inner.is_io() => {
            tracing::error!(error = %inner, "storage failure while serving a request");
            error(
                if inner.is_disk_full() {
                    StatusCode::INSUFFICIENT_STORAGE
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                },
                "storage",
                format!(
                    "the appliance cannot write its database right now{} ({inner}); nothing was recorded, retry later: it recovers by itself once the disk accepts writes",
                    if inner.is_disk_full() {
                        ": the disk is full"
                    } else {
                        ""
                    }
                ),
            )
        }
        AppError::Store(ref inner) => {
            tracing::error!(error = %inner, "store failure while serving a request");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the appliance could not read or write its database; see the log",
            )
        }
    }
}

/// Routes one request.
pub(crate) async fn route(
    shared: Arc<Shared>,
    req: Request<Incoming>,
    peer: SocketAddr,
    local: SocketAddr,
) -> Resp {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok());
    if !shared.hosts.allows(host, local) {
        tracing::info!(%peer, host = host.unwrap_or(""), "request for a foreign Host refused");
        return closing(error(
            StatusCode::MISDIRECTED_REQUEST,
            "misdirected_request",
            format!(
                "this appliance does not answer to the Host {:?}; if that name is yours, add it to SNAKKAZ_PAY_ALLOWED_HOSTS",
                host.unwrap_or("")
            ),
        ));
    }
    let presented = shared.tokens.check(
        req.headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
        Instant::now(),
    );
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    if needs_token(&shared, &segments)
        && let Some(resp) = guard_auth(&shared, presented, peer, &path).await
    {
        return resp;
    }
    let access = presented.access();
    let resp = match (&method, segments.as_slice()) {
        (&Method::GET, ["healthz"]) => json_response(StatusCode::OK, &json!({"status": "ok"})),
        (&Method::GET, ["api", "metrics", "bitcoin"]) => {
            // Prometheus scrapes like the page reads: open when the page is, else a bearer token.
            if page::may_read(&shared, access) {
                super::monitoring::metrics(&shared.app)
            } else {
                error(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "missing or wrong bearer token",
                )
            }
        }
        (&Method::GET, [first, ..]) if *first != "api" => page::route(&shared, access, &segments)
            .unwrap_or_else(|| {
                error(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    format!("no route for {method} {path}"),
                )
            }),
        (_, ["api", ..]) => {
            let needed = if segments.get(1) == Some(&"admin") {
                Access::Admin
            } else {
                Access::Api
            };
            if access < needed {
                if access > Access::None {
                    let detail = format!(
                        "the API token was used for {}",
                        path.chars().take(AUDIT_PATH_CHARS).collect::<String>()
                    );
                    audit(
                        &shared,
                        "auth.denied",
                        &peer.ip().to_canonical().to_string(),
                        detail,
                    )
                    .await;
                    unauthorized("this needs the admin token")
                } else {
                    unauthorized("missing or wrong bearer token")
                }
            } else {
                api(&shared, req, &segments, peer).await
            }
        }
        _ => error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no route for {method} {path}"),
        ),
    };
    tracing::debug!(%peer, %method, %path, status = resp.status().as_u16(), "request");
    resp
}

async fn api(shared: &Shared, req: Request<Incoming>, segments: &[&str], peer: SocketAddr) -> Resp {
    let app = &shared.app;
    let method = req.method().clone();
    if let ["admin", rest @ ..] = &segments[1..] {
        if let Some(refused) = super::admin::refused_while_locked(shared, rest) {
            return refused;
        }
        if super::admin::handles(&method, rest) {
            return super::admin::route(shared, req, rest, peer).await;
        }
    }
    match (&method, &segments[1..]) {
        (&Method::GET, ["status"]) => match app.status() {
            Ok(s) => json_response(StatusCode::OK, &s),
            Err(e) => app_error(e),
        },
        (&Method::GET, ["alerts"]) => super::monitoring::alerts(app),
        (&Method::POST, ["payments"]) => create(shared, req).await,
        (&Method::GET, ["payments"]) => list(shared, req.uri().query().unwrap_or("")),
        (&Method::GET, ["payments", id]) => match app.payment(id) {
            Ok((p, evs)) => {
                let mut j = PaymentJson::new(&p, Some(&evs)).with_fee_facts(app, &p);
                match app.store.archived(p.seq) {
                    Ok(a) => j.archived_at = a.map(|a| crate::clock::rfc3339(a.archived_at)),
                    Err(e) => return app_error(e.into()),
                }
                json_response(StatusCode::OK, &j)
            }
            Err(e) => app_error(e),
        },
        (&Method::POST, ["payments", id, "complete"]) => match app.complete_payment(id).await {
            Ok(p) => json_response(StatusCode::OK, &PaymentJson::new(&p, None)),
            Err(e) => app_error(e),
        },
        (&Method::POST, ["admin", "payments", id, "acknowledge-loss"]) => {
            match app.acknowledge_loss(id).await {
                Ok(p) => json_response(StatusCode::OK, &PaymentJson::new(&p, None)),
                Err(e) => app_error(e),
            }
        }
        (&Method::GET, ["receipts"]) => match app.receipts() {
            Ok(v) => json_response(StatusCode::OK, &json!({ "receipts": v })),
            Err(e) => app_error(e),
        },
        (&Method::POST, ["admin", "receipts", outpoint, "assign"]) => {
            assign_receipt(shared, req, outpoint, peer).await
        }
        (&Method::POST, ["admin", "restart-payment-processor"]) => {
            match app.restart_processor().await {
                Ok(()) => json_response(StatusCode::OK, &json!({"restarted": true})),
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "restarting the payment processor failed");
                    error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "internal",
                        format!("{e:#}"),
                    )
                }
            }
        }
        (&Method::GET, ["admin", "tx", query]) => super::ops::tx(app, query).await,
        (&Method::GET, ["admin", "fees"]) => super::ops::fees(app).await,
        (&Method::POST, ["admin", "reconcile"]) => super::reconcile::slice(app, false).await,
        (&Method::POST, ["admin", "reconcile", "fix"]) => super::reconcile::slice(app, true).await,
        (&Method::POST, ["admin", "archive", secs]) => {
            super::reconcile::archive(app, secs, false).await
        }
        (&Method::POST, ["admin", "archive", secs, "dry-run"]) => {
            super::reconcile::archive(app, secs, true).await
        }
        (&Method::POST, ["admin", "transfers"]) => super::spend::create(shared, req, peer).await,
        (&Method::GET, ["admin", "transfers"]) => super::spend::list(shared),
        (&Method::POST, ["admin", "spends", "acknowledge"]) => {
            super::spend::acknowledge_spends(shared, peer).await
        }
        (&Method::POST, ["admin", "cpfp"]) => super::spend::cpfp(shared, req, peer).await,
        (&Method::POST, ["admin", "bump"]) => super::spend::bump(shared, req, peer).await,
        (&Method::POST, ["admin", "transfers", "broadcast"]) => {
            super::spend::broadcast(shared, req, peer).await
        }
        (&Method::POST, ["admin", "backup"]) => super::backup::snapshot(app).await,
        (&Method::POST, ["admin", "backup", "verification"]) => {
            super::backup::record_verification(app, req).await
        }
        (&Method::POST, ["admin", "sync"]) => {
            let source = format!("admin-api {}", peer.ip().to_canonical());
            audit(
                shared,
                "admin.sync",
                &source,
                "resync of every address requested".into(),
            )
            .await;
            app.sync_all().await;
            json_response(StatusCode::ACCEPTED, &json!({"sync": "requested"}))
        }
        (&Method::POST, ["admin", "sink", "resync"]) => {
            let requeued = app
                .store
                .commit(crate::sink::resync_batch("admin API"))
                .await;
            match requeued.and_then(|_| app.store.outbox_stats()) {
                Ok((pending, _)) => json_response(
                    StatusCode::ACCEPTED,
                    &json!({"resync": "queued", "pending": pending}),
                ),
                Err(e) => app_error(e.into()),
            }
        }
        (_, ["status"] | ["payments"] | ["payments", _] | ["payments", _, "complete"])
        | (_, ["admin", "restart-payment-processor"] | ["admin", "sync"]) => error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{method} is not allowed here"),
        ),
        _ => error(StatusCode::NOT_FOUND, "not_found", "no such API endpoint"),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AssignBody {
    payment_id: String,
    #[serde(default)]
    note: Option<String>,
}

async fn assign_receipt(
    shared: &Shared,
    req: Request<Incoming>,
    outpoint: &str,
    peer: SocketAddr,
) -> Resp {
    let body = match read_body(req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let parsed: AssignBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                format!(
                    "malformed JSON body: {e}; send {{\"payment_id\": \"pay_…\", \"note\": \"…\"}}"
                ),
            );
        }
    };
    let source = format!("admin api {}", peer.ip().to_canonical());
    match shared
        .app
        .assign_receipt(outpoint, &parsed.payment_id, parsed.note, &source)
        .await
    {
        Ok((r, p)) => json_response(
            StatusCode::OK,
            &json!({ "receipt": r, "payment": PaymentJson::new(&p, None) }),
        ),
        Err(e) => app_error(e),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    amount_sat: serde_json::Value,
    reference: serde_json::Value,
    #[serde(default)]
    expires_in_secs: Option<serde_json::Value>,
    #[serde(default)]
    description: Option<String>,
}

fn invalid(field: &str, message: &str) -> Resp {
    error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        format!("{field}: {message}"),
    )
}

async fn create(shared: &Shared, req: Request<Incoming>) -> Resp {
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.starts_with("application/json"));
    if !is_json {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as application/json",
        );
    }
    let body = match read_body(req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let parsed: CreateBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                format!("malformed JSON body: {e}"),
            );
        }
    };
    // Money must be an exact integer: 1.5 or "1000" or 1e3 are refused, never rounded.
    let Some(amount_sat) = parsed.amount_sat.as_u64() else {
        return invalid("amount_sat", "must be an integer number of satoshis");
    };
    let Some(reference) = parsed.reference.as_str().map(str::to_owned) else {
        return invalid("reference", "must be a string");
    };
    let expires_in_secs = match parsed.expires_in_secs {
        None | Some(serde_json::Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(n) => Some(n),
            None => return invalid("expires_in_secs", "must be an integer number of seconds"),
        },
    };
    let req = CreatePayment {
        amount_sat,
        reference,
        expires_in_secs,
        description: parsed.description,
    };
    match shared.app.create_payment(req).await {
        Ok((p, created)) => {
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            let mut r = json_response(status, &PaymentJson::new(&p, None));
            if let Ok(v) = header::HeaderValue::from_str(&format!("/api/payments/{}", p.id)) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            r
        }
        Err(e) => app_error(e),
    }
}

fn list(shared: &Shared, query: &str) -> Resp {
    let mut q = ListQuery {
        limit: DEFAULT_LIMIT,
        ..Default::default()
    };
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "status" => match v.parse() {
                Ok(s) => q.status = Some(s),
                Err(msg) => return invalid("status", &msg),
            },
            "reference" => q.reference = Some(v.into_owned()),
            "limit" => match v.parse() {
                Ok(n) => q.limit = n,
                Err(_) => return invalid("limit", "must be a positive integer"),
            },
            "cursor" => match v.parse() {
                Ok(n) => q.before_seq = Some(n),
                Err(_) => return invalid("cursor", "must be a cursor returned by a previous page"),
            },
            other => return invalid("query", &format!("unknown parameter {other:?}")),
        }
    }
    match shared.app.list_payments(&q) {
        Ok((payments, next)) => {
            let items: Vec<_> = payments
                .iter()
                .map(|p| PaymentJson::new(p, None).with_fee_facts(&shared.app, p))
                .collect();
            json_response(
                StatusCode::OK,
                &json!({"payments": items, "next_cursor": next.map(|c| c.to_string())}),
            )
        }
        Err(e) => app_error(e),
    }
}
