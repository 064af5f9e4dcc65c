//! The only module that speaks HTTP: status page, JSON API and health check (hyper).
//!
//! Safe defaults on a LAN: the `Host` header must name the appliance (`host`), open
//! connections are counted after `accept` with a per-source cap (`conns`), and every
//! request has header, body and response time limits.

mod admin;
mod api;
mod backup;
mod conns;
mod host;
mod json;
mod monitoring;
mod ops;
mod page;
mod reconcile;
mod spend;
pub mod tls;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::access::{Limiter, LiveTokens};
use crate::app::App;

pub(crate) use crate::access::Access;
pub use crate::access::Tokens;

/// A client must send its request headers within this time.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// A client must send a whole request body within this time.
pub(crate) const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// A request must be answered within this time (body included).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) struct Shared {
    pub app: Arc<App>,
    pub tokens: Arc<LiveTokens>,
    pub hosts: host::HostPolicy,
    pub limiter: Mutex<Limiter>,
}

/// A client must finish the TLS handshake within this time.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves HTTP (HTTPS with `tls`) on `listener` until `shutdown`, then drains in-flight
/// requests (at most `drain`).
pub async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    tokens: Arc<LiveTokens>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: CancellationToken,
    drain: Duration,
) {
    let hosts = host::HostPolicy::new(app.cfg.listen, &app.cfg.allowed_hosts);
    let shared = Arc::new(Shared {
        app,
        tokens,
        hosts,
        limiter: Mutex::new(Limiter::default()),
    });
    let table = conns::Conns::new(conns::MAX_CONNECTIONS, conns::MAX_PER_SOURCE);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
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
        let Some(admitted) = table.admit(peer.ip().to_canonical()) else {
            tracing::debug!(%peer, "connection refused: every slot of this source is busy");
            continue;
        };
        let local = match stream.local_addr() {
            Ok(a) => a,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "connection gone before it was served");
                continue;
            }
        };
        let shared = shared.clone();
        let busy = admitted.busy.clone();
        let svc = hyper::service::service_fn(move |req| {
            let shared = shared.clone();
            let guard = conns::BusyGuard::new(&busy);
            async move {
                let resp = match tokio::time::timeout(
                    RESPONSE_TIMEOUT,
                    api::route(shared, req, peer, local),
                )
                .await
                {
                    Ok(r) => r,
                    Err(_) => {
                        tracing::warn!(%peer, "request not answered within {RESPONSE_TIMEOUT:?}");
                        api::closing(api::error(
                            http::StatusCode::SERVICE_UNAVAILABLE,
                            "timeout",
                            format!(
                                "the request was not answered within {RESPONSE_TIMEOUT:?}; try again"
                            ),
                        ))
                    }
                };
                drop(guard);
                Ok::<_, std::convert::Infallible>(resp)
            }
        });
        let watcher = graceful.watcher();
        let tls = tls.clone();
        tokio::spawn(async move {
            let kill = admitted.kill.clone();
            let served = async move {
                match tls {
                    None => serve_conn(TokioIo::new(stream), svc, watcher, peer).await,
                    Some(acceptor) => {
                        match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream))
                            .await
                        {
                            Ok(Ok(s)) => serve_conn(TokioIo::new(s), svc, watcher, peer).await,
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, error = %e, "TLS handshake failed")
                            }
                            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                        }
                    }
                }
            };
            tokio::select! {
                () = served => {}
                _ = kill.cancelled() => {
                    tracing::debug!(peer = %peer, "idle connection closed to make room");
                }
            }
            drop(admitted);
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

/// Serves one connection (plain or TLS) until it ends.
async fn serve_conn<I, S>(
    io: I,
    svc: S,
    watcher: hyper_util::server::graceful::Watcher,
    peer: SocketAddr,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::HttpService<hyper::body::Incoming> + Send + 'static,
    S::Future: Send + 'static,
    S::ResBody: Send + 'static,
    <S::ResBody as hyper::body::Body>::Data: Send,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let conn = http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(io, svc);
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(peer = %peer, error = %e, "HTTP connection ended with an error");
    }
}

/// Binds the listening socket.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}
