//! A blocking JSON-RPC client for the devnet's control methods (used by the CLI and
//! by the test harness).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use serde_json::{Value, json};

use crate::error::{Error, RpcError};

/// How long one call may take (mining a few hundred blocks takes well under this).
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// A client for one devnet RPC URL.
#[derive(Debug, Clone)]
pub struct RpcClient {
    addr: SocketAddr,
}

impl RpcClient {
    /// A client for `url` (`http://[user:pass@]host:port[/]`).
    pub fn new(url: &str) -> Result<RpcClient, Error> {
        let bad = |detail: &str| Error::Usage(format!("bad devnet RPC URL {url:?}: {detail}"));
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| bad("must start with http://"))?;
        let hostport = rest
            .rsplit('@')
            .next()
            .unwrap_or(rest)
            .trim_end_matches('/');
        let addr = hostport
            .to_socket_addrs()
            .map_err(|e| bad(&e.to_string()))?
            .next()
            .ok_or_else(|| bad("no address"))?;
        Ok(RpcClient { addr })
    }

    /// Calls `method` with `params` (a JSON array) and returns its result.
    pub fn call(&self, method: &str, params: Value) -> Result<Value, Error> {
        let what = || format!("devnet RPC {method} at {}", self.addr);
        let body = serde_json::to_vec(
            &json!({"jsonrpc": "1.0", "id": 1, "method": method, "params": params}),
        )
        .expect("JSON values serialise");
        let mut stream = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5))
            .map_err(Error::io(what()))?;
        stream
            .set_read_timeout(Some(CALL_TIMEOUT))
            .map_err(Error::io(what()))?;
        let mut request = format!(
            "POST / HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.addr,
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(&body);
        stream.write_all(&request).map_err(Error::io(what()))?;
        let mut response = Vec::new();
        stream
            .read_to_end(&mut response)
            .map_err(Error::io(what()))?;
        let protocol = |detail: String| Error::Protocol {
            from: what(),
            detail,
        };
        let split = response
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(|| protocol("no HTTP header".into()))?;
        let reply: Value = serde_json::from_slice(&response[split + 4..])
            .map_err(|e| protocol(format!("not JSON: {e}")))?;
        match reply.get("error") {
            Some(Value::Null) | None => Ok(reply.get("result").cloned().unwrap_or(Value::Null)),
            Some(err) => Err(Error::Rpc(RpcError::new(
                err.get("code").and_then(Value::as_i64).unwrap_or(-1),
                err.get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown error"),
            ))),
        }
    }

    /// Calls `method` and expects a string result.
    pub fn call_str(&self, method: &str, params: Value) -> Result<String, Error> {
        let v = self.call(method, params)?;
        v.as_str()
            .map(str::to_owned)
            .ok_or_else(|| Error::Protocol {
                from: format!("devnet RPC {method}"),
                detail: format!("expected a string, got {v}"),
            })
    }

    /// Calls `method` and expects an integer result.
    pub fn call_u64(&self, method: &str, params: Value) -> Result<u64, Error> {
        let v = self.call(method, params)?;
        v.as_u64().ok_or_else(|| Error::Protocol {
            from: format!("devnet RPC {method}"),
            detail: format!("expected an integer, got {v}"),
        })
    }
}
