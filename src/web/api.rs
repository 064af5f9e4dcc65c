//! Request routing and the JSON API handlers.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde::Deserialize;
use serde_json::json;

use super::json::PaymentJson;
use super::{Access, Shared, page};
use crate::app::{AppError, CreatePayment};
use crate::store::ListQuery;

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

fn app_error(e: AppError) -> Resp {
    match e {
        AppError::Invalid { .. } => {
            error(StatusCode::BAD_REQUEST, "invalid_request", e.to_string())
        }
        AppError::NotFound(_) => error(StatusCode::NOT_FOUND, "not_found", e.to_string()),
        AppError::Conflict(_) => error(StatusCode::CONFLICT, "conflict", e.to_string()),
        AppError::Disabled => error(StatusCode::SERVICE_UNAVAILABLE, "disabled", e.to_string()),
        AppError::Scanning => error(StatusCode::SERVICE_UNAVAILABLE, "scanning", e.to_string()),
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
pub(crate) async fn route(shared: Arc<Shared>, req: Request<Incoming>, peer: SocketAddr) -> Resp {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let access = shared.tokens.access(
        req.headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
    );
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
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
                let mut r = error(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "missing or wrong bearer token",
                );
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static("Bearer"),
                );
                r
            } else {
                api(&shared, req, &segments).await
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

async fn api(shared: &Shared, req: Request<Incoming>, segments: &[&str]) -> Resp {
    let app = &shared.app;
    let method = req.method().clone();
    match (&method, &segments[1..]) {
        (&Method::GET, ["status"]) => match app.status() {
            Ok(s) => json_response(StatusCode::OK, &s),
            Err(e) => app_error(e),
        },
        (&Method::GET, ["alerts"]) => super::monitoring::alerts(app),
        (&Method::POST, ["payments"]) => create(shared, req).await,
        (&Method::GET, ["payments"]) => list(shared, req.uri().query().unwrap_or("")),
        (&Method::GET, ["payments", id]) => match app.payment(id) {
            Ok((p, evs)) => json_response(StatusCode::OK, &PaymentJson::new(&p, Some(&evs))),
            Err(e) => app_error(e),
        },
        (&Method::POST, ["payments", id, "complete"]) => match app.complete_payment(id).await {
            Ok(p) => json_response(StatusCode::OK, &PaymentJson::new(&p, None)),
            Err(e) => app_error(e),
        },
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
        (&Method::POST, ["admin", "sync"]) => {
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
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("request body exceeds {MAX_BODY} bytes"),
            );
        }
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_body",
                format!("could not read body: {e}"),
            );
        }
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
            let items: Vec<_> = payments.iter().map(|p| PaymentJson::new(p, None)).collect();
            json_response(
                StatusCode::OK,
                &json!({"payments": items, "next_cursor": next.map(|c| c.to_string())}),
            )
        }
        Err(e) => app_error(e),
    }
}
