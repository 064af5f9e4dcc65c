//! A small HTTP/1.1 JSON-RPC server with exactly the framing ElectrumX expects.
//!
//! Why hand-rolled: ElectrumX retries forever unless `Content-Type` is exactly
//! `application/json`, and a response split over two writes costs ~200 ms per poll
//! through delayed ACKs, so every response is one buffer written with TCP_NODELAY.

use std::net::{SocketAddr, TcpListener as StdListener};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use crate::error::{Error, code};
use crate::node::Node;
use crate::rpc;

/// Requests larger than this are refused (a block of ours is far smaller).
const MAX_REQUEST: usize = 32 * 1024 * 1024;
/// Credentials in the URLs we hand out; any are accepted, as on a local test node.
const USERPASS: &str = "devnet:devnet";

/// The running RPC server, on its own thread; dropping it stops it.
pub struct RpcServer {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl RpcServer {
    /// Binds `bind` (port 0 picks a free port) and serves `node` on a new thread.
    pub fn start(node: Node, bind: SocketAddr) -> Result<RpcServer, Error> {
        let listener =
            StdListener::bind(bind).map_err(Error::io(format!("bind RPC server on {bind}")))?;
        let addr = listener
            .local_addr()
            .map_err(Error::io("RPC server address"))?;
        listener
            .set_nonblocking(true)
            .map_err(Error::io("RPC listener non-blocking"))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(Error::io("RPC server runtime"))?;
        let (tx, rx) = oneshot::channel();
        let node = Arc::new(Mutex::new(node));
        let thread = std::thread::Builder::new()
            .name("devnet-rpc".into())
            .spawn(move || runtime.block_on(serve(listener, node, rx)))
            .map_err(Error::io("spawn RPC server thread"))?;
        Ok(RpcServer {
            addr,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL with credentials, as ElectrumX's `DAEMON_URL` wants it.
    pub fn url(&self) -> String {
        format!("http://{USERPASS}@{}/", self.addr)
    }

    /// Blocks until the server stops (it runs until the process is killed).
    pub fn wait(mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for RpcServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            // The receiver is gone only if the server already stopped: nothing to do.
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve(listener: StdListener, node: Arc<Mutex<Node>>, mut stop: oneshot::Receiver<()>) {
    let listener = match TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("devnet: RPC listener: {e}");
            return;
        }
    };
    loop {
        tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let node = Arc::clone(&node);
                    tokio::spawn(async move {
                        if let Err(e) = connection(stream, node).await {
                            eprintln!("devnet: RPC connection: {e}");
                        }
                    });
                }
                Err(e) => eprintln!("devnet: accept: {e}"),
            },
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

async fn connection(mut stream: TcpStream, node: Arc<Mutex<Node>>) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    loop {
        let header_end = loop {
            if let Some(pos) = find(&buf, b"\r\n\r\n") {
                break pos;
            }
            if buf.len() > MAX_REQUEST || stream.read_buf(&mut buf).await? == 0 {
                return Ok(());
            }
        };
        let head = String::from_utf8_lossy(&buf[..header_end]).to_string();
        let mut lines = head.split("\r\n");
        let request_line = lines.next().unwrap_or_default();
        let mut content_length = 0usize;
        let mut close = request_line.ends_with("HTTP/1.0");
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => content_length = value.parse().unwrap_or(0),
                "connection" => close = value.eq_ignore_ascii_case("close"),
                _ => {}
            }
        }
        let body_start = header_end + 4;
        if content_length > MAX_REQUEST {
            return Ok(());
        }
        while buf.len() < body_start + content_length {
            if stream.read_buf(&mut buf).await? == 0 {
                return Ok(());
            }
        }
        let body: Vec<u8> = buf[body_start..body_start + content_length].to_vec();
        buf.drain(..body_start + content_length);

        let (status, answer) = if request_line.starts_with("POST ") {
            ("200 OK", answer(&node, &body))
        } else {
            let err = json!({"result": null, "error": {"code": code::METHOD_NOT_FOUND, "message": "JSON-RPC wants POST"}, "id": null});
            ("405 Method Not Allowed", err)
        };
        let body = serde_json::to_vec(&answer).unwrap_or_default();
        let mut response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{}\r\n",
            body.len(),
            if close { "Connection: close\r\n" } else { "" }
        )
        .into_bytes();
        response.extend_from_slice(&body);
        stream.write_all(&response).await?;
        if close {
            return Ok(());
        }
    }
}

fn answer(node: &Mutex<Node>, body: &[u8]) -> Value {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(batch)) => {
            Value::Array(batch.iter().map(|r| rpc::handle_request(node, r)).collect())
        }
        Ok(request) => rpc::handle_request(node, &request),
        Err(e) => {
            json!({"result": null, "error": {"code": code::PARSE_ERROR, "message": format!("parse error: {e}")}, "id": null})
        }
    }
}
