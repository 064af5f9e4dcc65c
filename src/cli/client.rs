//! A small HTTP client for the CLI to ask the running daemon.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

use crate::secret::Secret;

/// Time limit of one CLI request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Time limit of a snapshot download (a large database takes a while to copy).
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Talks to the daemon's API.
pub struct DaemonClient {
    addr: SocketAddr,
    token: Secret,
    tls: Option<tokio_rustls::TlsConnector>,
}

/// Why a request to the daemon failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The daemon did not answer.
    #[error(
        "the daemon is not reachable at {addr}: {detail} (is `snakkaz-pay run` running? check SNAKKAZ_PAY_LISTEN)"
    )]
    Unreachable {
        /// Address tried.
        addr: SocketAddr,
        /// Socket error.
        detail: String,
    },
    /// The daemon answered with an error.
    #[error("{code}: {message} (HTTP {status})")]
    Api {
        /// HTTP status.
        status: u16,
        /// Error code.
        code: String,
        /// Error message.
        message: String,
    },
}

/// An HTTP/1 client session over `io`, its connection task spawned.
async fn handshake<I>(
    io: I,
) -> Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>, hyper::Error>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(io).await?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "daemon connection closed");
        }
    });
    Ok(sender)
}

impl DaemonClient {
    /// A client for the daemon listening on `addr`.
    pub fn new(addr: SocketAddr, token: Secret) -> Self {
        // A daemon listening on all interfaces is reachable on loopback.
        let addr = if addr.ip().is_unspecified() {
            let ip = if addr.is_ipv4() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            };
            SocketAddr::new(ip, addr.port())
        } else {
            addr
        };
        DaemonClient {
            addr,
            token,
            tls: None,
        }
    }

    /// Talks HTTPS, trusting only the certificate with this fingerprint.
    pub fn with_pinned_tls(mut self, fingerprint: &str) -> Self {
        let config = crate::web::tls::pinned_client_config(fingerprint);
        self.tls = Some(tokio_rustls::TlsConnector::from(std::sync::Arc::new(
            config,
        )));
        self
    }

    /// Sends a request and returns the status and JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<(StatusCode, serde_json::Value)> {
        tokio::time::timeout(REQUEST_TIMEOUT, self.call_inner(method, path, body))
            .await
            .map_err(|_| ClientError::Unreachable {
                addr: self.addr,
                detail: "timed out".into(),
            })?
    }

    /// Sends a request and returns the raw body of a successful answer (snapshots).
    pub async fn download(&self, method: Method, path: &str) -> anyhow::Result<Bytes> {
        let (status, body) = tokio::time::timeout(DOWNLOAD_TIMEOUT, self.send(method, path, None))
            .await
            .map_err(|_| ClientError::Unreachable {
                addr: self.addr,
                detail: "timed out".into(),
            })??;
        if !status.is_success() {
            let value: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let e = &value["error"];
            bail!(ClientError::Api {
                status: status.as_u16(),
                code: e["code"].as_str().unwrap_or("error").to_owned(),
                message: e["message"].as_str().unwrap_or("").to_owned(),
            });
        }
        Ok(body)
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let unreachable = |e: &dyn std::fmt::Display| ClientError::Unreachable {
            addr: self.addr,
            detail: e.to_string(),
        };
        let stream = tokio::net::TcpStream::connect(self.addr)
            .await
            .map_err(|e| unreachable(&e))?;
        let mut sender = match &self.tls {
            None => handshake(TokioIo::new(stream)).await,
            Some(connector) => {
                let name = rustls::pki_types::ServerName::IpAddress(self.addr.ip().into());
                let tls = connector
                    .connect(name, stream)
                    .await
                    .map_err(|e| unreachable(&e))?;
                handshake(TokioIo::new(tls)).await
            }
        }
        .map_err(|e| unreachable(&e))?;
        let bytes = body.map(|b| serde_json::to_vec(&b)).transpose()?;
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, self.addr.to_string())
            .header(
                header::AUTHORIZATION,
                format!("Bearer {}", self.token.expose()),
            )
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(bytes.unwrap_or_default())))
            .context("building the request")?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| unreachable(&e))?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| unreachable(&e))?
            .to_bytes();
        Ok((status, body))
    }

    async fn call_inner(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<(StatusCode, serde_json::Value)> {
        let (status, body) = self.send(method, path, body).await?;
        let value: serde_json::Value = serde_json::from_slice(&body).with_context(|| {
            format!("the daemon answered HTTP {status} with a body that is not JSON")
        })?;
        if !status.is_success() {
            let e = &value["error"];
            bail!(ClientError::Api {
                status: status.as_u16(),
                code: e["code"].as_str().unwrap_or("error").to_owned(),
                message: e["message"].as_str().unwrap_or("").to_owned(),
            });
        }
        Ok((status, value))
    }
}
