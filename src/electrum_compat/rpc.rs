//! The Electrum-compatible JSON-RPC endpoint: Electrum 4.3's daemon protocol (HTTP POST of
//! `{"id","method","params"}`, Basic auth with 401/403 as Electrum answers them, errors as
//! `{"error":{"code":1,"message":…}}`) over snakkaz-pay's wallet and payments.
//!
//! Off unless `SNAKKAZ_PAY_ELECTRUM_RPC_LISTEN` is set; loopback only (see config).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::rpc_methods;
use crate::app::App;
use crate::secret::Secret;

/// Largest request body (Electrum requests are small).
const MAX_BODY_BYTES: usize = 1 << 20;
/// Concurrent connections served.
const MAX_CONNECTIONS: usize = 64;
/// Time a client gets to send its headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after wrong credentials, as Electrum does (slows guessing).
const BAD_CREDENTIALS_DELAY: Duration = Duration::from_millis(50);

/// The Basic-auth credentials clients must send.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// User name (Electrum's rpcuser).
    pub user: String,
    /// Password (Electrum's rpcpassword).
    pub password: Secret,
}

/// Reads the password file named in the configuration (mode 0600, not group-writable).
pub fn load_credentials(
    cfg: &crate::config::ElectrumRpc,
) -> Result<Credentials, crate::secret::SecretError> {
    Ok(Credentials {
        user: cfg.user.clone(),
        password: crate::secret::read_token_file(&cfg.password_file)?,
    })
}

struct Shared {
    app: Arc<App>,
    creds: Credentials,
    cache: rpc_methods::Cache,
}

/// Serves until `shutdown`, then gives open connections `drain` to finish.
pub async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    creds: Credentials,
    shutdown: CancellationToken,
    drain: Duration,
) {
    let shared = Arc::new(Shared {
        app,
        creds,
        cache: rpc_methods::Cache::default(),
    });
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "Electrum JSON-RPC: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let shared = shared.clone();
        let svc = hyper::service::service_fn(move |req| {
            let shared = shared.clone();
            async move { Ok::<_, Infallible>(handle(&shared, req).await) }
        });
        let conn = http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT)
            .serve_connection(TokioIo::new(stream), svc);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(peer = %peer, error = %e, "Electrum JSON-RPC connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("Electrum JSON-RPC connections still open after {drain:?}; closing them");
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// What the Authorization header says, in Electrum's terms.
#[derive(Debug, PartialEq, Eq)]
enum Auth {
    Ok,
    /// Missing or not Basic: 401 with a challenge.
    Missing,
    /// Wrong user or password: 403.
    Invalid,
}

fn authenticate(headers: &http::HeaderMap, creds: &Credentials) -> Auth {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Auth::Missing;
    };
    let (scheme, encoded) = value.split_once(' ').unwrap_or((value, ""));
    if scheme != "Basic" {
        return Auth::Missing;
    }
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return Auth::Invalid;
    };
    let decoded = zeroize::Zeroizing::new(decoded);
    let Ok(text) = std::str::from_utf8(&decoded) else {
        return Auth::Invalid;
    };
    let (user, password) = text.split_once(':').unwrap_or((text, ""));
    // Both compared in full, so timing does not tell which one was wrong.
    let user_ok = subtle::ConstantTimeEq::ct_eq(user.as_bytes(), creds.user.as_bytes());
    let pw_ok = creds.password.constant_time_eq(password.as_bytes());
    if bool::from(user_ok) & pw_ok {
        Auth::Ok
    } else {
        Auth::Invalid
    }
}

async fn handle(shared: &Shared, req: Request<Incoming>) -> Response<Full<Bytes>> {
    match authenticate(req.headers(), &shared.creds) {
        Auth::Ok => {}
        Auth::Missing => {
            let mut r = text(StatusCode::UNAUTHORIZED, "Unauthorized");
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Basic realm=Electrum"),
            );
            return r;
        }
        Auth::Invalid => {
            tokio::time::sleep(BAD_CREDENTIALS_DELAY).await;
            return text(StatusCode::FORBIDDEN, "Forbidden");
        }
    }
    if req.method() != Method::POST {
        return text(StatusCode::METHOD_NOT_ALLOWED, "405: Method Not Allowed");
    }
    // A locked-down appliance keeps watching payments but answers nothing here: the
    // endpoint hands out addresses and wallet facts (issue 14's incident procedure).
    match shared.app.store.lockdown() {
        Ok(None) => {}
        Ok(Some(_)) => {
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                "the appliance is locked down; the Electrum-compatible RPC is disabled until `snakkaz-pay unlock`",
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "reading the lock-down state for the Electrum RPC");
            return text(StatusCode::SERVICE_UNAVAILABLE, "database unreadable");
        }
    }
    let body = match Limited::new(req.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(_) => return text(StatusCode::INTERNAL_SERVER_ERROR, "Invalid Request"),
    };
    // Electrum answers 500 "Invalid Request" for bad JSON, a missing id or an unknown method.
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return text(StatusCode::INTERNAL_SERVER_ERROR, "Invalid Request");
    };
    let (Some(method), Some(id)) = (request["method"].as_str(), request.get("id")) else {
        return text(StatusCode::INTERNAL_SERVER_ERROR, "Invalid Request");
    };
    if !rpc_methods::is_known(method) {
        return text(StatusCode::INTERNAL_SERVER_ERROR, "Invalid Request");
    }
    let params = request
        .get("params")
        .cloned()
        .unwrap_or(Value::Array(Vec::new()));
    let mut response = json!({"id": id, "jsonrpc": "2.0"});
    match rpc_methods::call(&shared.app, &shared.cache, method, &params).await {
        Ok(result) => response["result"] = result,
        Err(message) => response["error"] = json!({"code": 1, "message": message}),
    }
    let mut r = Response::new(Full::new(Bytes::from(response.to_string())));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json; charset=utf-8"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(auth: Option<&str>) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        if let Some(a) = auth {
            h.insert(header::AUTHORIZATION, a.parse().unwrap());
        }
        h
    }

    fn basic(s: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(s)
        )
    }

    #[test]
    fn auth_answers_as_electrum_does() {
        let creds = Credentials {
            user: "user".into(),
            password: Secret::new("pw:with:colons"),
        };
        assert_eq!(
            authenticate(&headers(Some(&basic("user:pw:with:colons"))), &creds),
            Auth::Ok
        );
        assert_eq!(authenticate(&headers(None), &creds), Auth::Missing);
        assert_eq!(
            authenticate(&headers(Some("Bearer x")), &creds),
            Auth::Missing
        );
        assert_eq!(
            authenticate(&headers(Some(&basic("user:nope"))), &creds),
            Auth::Invalid
        );
        assert_eq!(
            authenticate(&headers(Some(&basic("other:pw:with:colons"))), &creds),
            Auth::Invalid
        );
        assert_eq!(
            authenticate(&headers(Some("Basic !!!")), &creds),
            Auth::Invalid
        );
    }
}
