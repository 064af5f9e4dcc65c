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

use super::verified::{Guard, Verified};
use super::{ChainError, Server};

/// Longest line (one JSON-RPC message) accepted from a server. The largest honest answer
/// the appliance asks for is a batch item of a few hundred kilobytes (a big transaction or
/// a long history); without a bound, a hostile server can make the daemon buffer one line
/// until it is out of memory.
pub const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// A plain or TLS socket.
pub enum Socket {
    /// Plain TCP.
    Tcp(TcpStream),
    /// TLS over TCP.
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.read(buf),
            Socket::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.write(buf),
            Socket::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => s.flush(),
            Socket::Tls(s) => s.flush(),
        }
    }
}

/// A stream that refuses a line longer than `limit` bytes (an I/O error ends the session).
pub struct Bounded<S> {
    inner: S,
    limit: usize,
    /// Bytes read since the last newline.
    line: usize,
}

impl<S> Bounded<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, limit: usize) -> Self {
        Bounded {
            inner,
            limit,
            line: 0,
        }
    }
}

impl<S: Read> Read for Bounded<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        for &b in &buf[..n] {
            if b == b'\n' {
                self.line = 0;
            } else {
                self.line += 1;
                if self.line > self.limit {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("the server sent a message longer than {} bytes", self.limit),
                    ));
                }
            }
        }
        Ok(n)
    }
}

impl<S: Write> Write for Bounded<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The stream every session reads: bounded lines over TCP or TLS.
pub type Stream = Bounded<Socket>;

/// The Electrum client type used everywhere.
pub type Client = BdkElectrumClient<Verified<RawClient<Stream>>>;

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
    guard: &Arc<Guard>,
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
        Socket::Tls(Box::new(s))
    } else {
        Socket::Tcp(tcp)
    };
    let raw = RawClient::from(Bounded::new(stream, MAX_LINE_BYTES));
    // `protocol_version` sends `server.version` (the mandatory first message) and caches
    // the answer, which the client needs to parse version-dependent responses.
    raw.protocol_version()
        .map_err(|e| fail(format!("protocol negotiation failed: {e}")))?;
    Ok(Conn {
        client: BdkElectrumClient::new(Verified::new(raw, guard.clone())),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(input: &[u8], limit: usize) -> io::Result<Vec<u8>> {
        let mut b = Bounded::new(io::Cursor::new(input.to_vec()), limit);
        let mut out = Vec::new();
        let mut chunk = [0u8; 7];
        loop {
            let n = b.read(&mut chunk)?;
            if n == 0 {
                return Ok(out);
            }
            out.extend_from_slice(&chunk[..n]);
        }
    }

    #[test]
    fn lines_within_the_limit_pass_whatever_the_total() {
        let input = b"0123456789\n0123456789\n0123456789\n";
        assert_eq!(read_all(input, 10).unwrap(), input);
    }

    #[test]
    fn a_line_over_the_limit_is_refused_before_it_is_buffered() {
        let mut input = vec![b'x'; 100];
        input.push(b'\n');
        let e = read_all(&input, 50).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("longer than 50 bytes"));
    }
}
