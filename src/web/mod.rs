//! The only module that speaks HTTP: status page, JSON API and health check (hyper).

mod api;
mod json;
mod monitoring;
mod page;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::secret::Secret;

/// Most connections served at once; further ones wait for a slot.
const MAX_CONNECTIONS: usize = 256;
/// A client must send its request headers within this time.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Bearer tokens accepted by the API.
pub struct Tokens {
    /// Token for the payment API.
    pub api: Option<Secret>,
    /// Token for everything, including admin actions.
    pub admin: Option<Secret>,
}

/// What a request is allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Access {
    /// No valid token.
    None,
    /// The API token.
    Api,
    /// The admin token.
    Admin,
}

impl Tokens {
    pub(crate) fn access(&self, header: Option<&str>) -> Access {
        let Some(token) = header.and_then(|h| h.strip_prefix("Bearer ")) else {
            return Access::None;
        };
        let token = token.trim().as_bytes();
        // Both comparisons run every time so the answer's timing says nothing about which matched.
        let admin = self
            .admin
            .as_ref()
            .is_some_and(|s| s.constant_time_eq(token));
        let api = self.api.as_ref().is_some_and(|s| s.constant_time_eq(token));
        if admin {
            Access::Admin
        } else if api {
            Access::Api
        } else {
            Access::None
        }
    }
}

pub(crate) struct Shared {
    pub app: Arc<App>,
    pub tokens: Tokens,
}

/// Serves HTTP on `listener` until `shutdown`, then drains in-flight requests (at most `drain`).
pub async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    tokens: Tokens,
    shutdown: CancellationToken,
    drain: Duration,
) {
    let shared = Arc::new(Shared { app, tokens });
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
                    // EMFILE and friends: back off briefly instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let shared = shared.clone();
        let svc = hyper::service::service_fn(move |req| {
            let shared = shared.clone();
            async move { Ok::<_, std::convert::Infallible>(api::route(shared, req, peer).await) }
        });
        let conn = http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT)
            .serve_connection(TokioIo::new(stream), svc);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(peer = %peer, error = %e, "HTTP connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("in-flight HTTP requests did not finish within {drain:?}");
    }
}

/// Binds the listening socket.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}
