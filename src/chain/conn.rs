//! One connection to one Electrum server, over TCP or TLS (rustls).
//!
//! electrum-client's own TLS constructor trusts only the webpki roots, so TLS sessions are
//! built here (system roots or the operator's CA file) and handed to `RawClient::from`.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bdk_electrum::BdkElectrumClient;
use bdk_electrum::electrum_client::{ElectrumApi, raw_client::RawClient};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};

use super::{ChainError, Server};

/// A plain or TLS stream; one type so the client type does not depend on the protocol.
pub enum Stream {
    /// Plain TCP.
    Tcp(TcpStream),
    /// TLS over TCP.
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// The Electrum client type used everywhere.
pub type Client = BdkElectrumClient<RawClient<Stream>>;

/// An open session: the client and a second handle on its socket, used only to wait for
/// the server to push something without sending a request.
pub struct Conn {
    /// The BDK-aware client.
    pub client: Client,
    /// Same socket as the client's; used for `peek` only.
    pub socket: TcpStream,
    /// Timeout of every request.
    pub timeout: Duration,
}

/// Builds the TLS trust store: the operator's CA file if given, else the system roots.
pub fn tls_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, ChainError> {
    let roots = crate::net::trust_anchors(ca_file).map_err(|e| ChainError::CaFile {
        path: e.path,
        detail: e.detail,
    })?;
    if roots.is_empty() {
        return Err(ChainError::CaFile {
            path: "system trust store".into(),
            detail: "no usable root certificates; install ca-certificates or set SNAKKAZ_PAY_ELECTRUM_CA_FILE".into(),
        });
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ChainError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Connects, completes the TLS handshake if any, and negotiates the protocol version.
pub fn connect(
    server: &Server,
    tls: &Arc<ClientConfig>,
    timeout: Duration,
) -> Result<Conn, ChainError> {
    let fail = |detail: String| ChainError::Connect {
        server: server.to_string(),
        detail,
    };
    let addrs: Vec<_> = (server.host.as_str(), server.port)
        .to_socket_addrs()
        .map_err(|e| fail(format!("cannot resolve host: {e}")))?
        .collect();
    let mut last = None;
    let mut tcp = None;
    for addr in &addrs {
        match TcpStream::connect_timeout(addr, timeout) {
            Ok(s) => {
                tcp = Some(s);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let tcp =
        tcp.ok_or_else(|| fail(last.map_or("no address for host".into(), |e| e.to_string())))?;
    tcp.set_read_timeout(Some(timeout))
        .and_then(|_| tcp.set_write_timeout(Some(timeout)))
        .and_then(|_| tcp.set_nodelay(true))
        .map_err(|e| fail(e.to_string()))?;
    let socket = tcp.try_clone().map_err(|e| fail(e.to_string()))?;
    let stream = if server.tls {
        let name = ServerName::try_from(server.host.clone())
            .map_err(|e| fail(format!("invalid TLS server name: {e}")))?;
        let conn = ClientConnection::new(tls.clone(), name).map_err(|e| fail(e.to_string()))?;
        let mut s = StreamOwned::new(conn, tcp);
        // Complete the handshake now so a bad certificate is reported as such.
        while s.conn.is_handshaking() {
            s.conn
                .complete_io(&mut s.sock)
                .map_err(|e| ChainError::Tls(format!("{server}: {e}")))?;
        }
        Stream::Tls(Box::new(s))
    } else {
        Stream::Tcp(tcp)
    };
    let raw = RawClient::from(stream);
    // `protocol_version` sends `server.version` (the mandatory first message) and caches
    // the answer, which the client needs to parse version-dependent responses.
    raw.protocol_version()
        .map_err(|e| fail(format!("protocol negotiation failed: {e}")))?;
    Ok(Conn {
        client: BdkElectrumClient::new(raw),
        socket,
        timeout,
    })
}

impl Conn {
    /// Waits up to `wait` for the server to send something unasked (a notification).
    /// Returns true when bytes are waiting or the connection closed.
    pub fn wait_readable(&self, wait: Duration) -> io::Result<bool> {
        // The socket options are shared with the client's handle; only this thread uses
        // either, so the short timeout is restored before any request is made.
        self.socket
            .set_read_timeout(Some(wait.max(Duration::from_millis(1))))?;
        let mut b = [0u8; 1];
        let r = match self.socket.peek(&mut b) {
            Ok(_) => Ok(true),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        };
        self.socket.set_read_timeout(Some(self.timeout))?;
        r
    }
}
