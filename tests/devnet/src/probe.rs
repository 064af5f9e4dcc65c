//! A minimal Electrum-protocol probe: asks a server for its tip height.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::error::Error;

/// How long a single probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause between probes while waiting.
const POLL: Duration = Duration::from_millis(50);

/// The tip height the Electrum server at `addr` (plain TCP) reports.
pub fn electrum_height(addr: SocketAddr) -> Result<u64, Error> {
    let what = || format!("Electrum server at {addr}");
    let mut stream = TcpStream::connect_timeout(&addr, PROBE_TIMEOUT).map_err(Error::io(what()))?;
    stream
        .set_read_timeout(Some(PROBE_TIMEOUT))
        .map_err(Error::io(what()))?;
    stream
        .write_all(
            b"{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"server.version\",\"params\":[\"devnet-probe\",\"1.4\"]}\n\
              {\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"blockchain.headers.subscribe\",\"params\":[]}\n",
        )
        .map_err(Error::io(what()))?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).map_err(Error::io(what()))? == 0 {
            return Err(Error::Protocol {
                from: what(),
                detail: "closed the connection".into(),
            });
        }
        let v: Value = serde_json::from_str(&line).map_err(|e| Error::Protocol {
            from: what(),
            detail: format!("not JSON: {e}"),
        })?;
        if v.get("id").and_then(Value::as_u64) != Some(1) {
            continue;
        }
        return v
            .pointer("/result/height")
            .and_then(Value::as_u64)
            .ok_or_else(|| Error::Protocol {
                from: what(),
                detail: format!("no height in {v}"),
            });
    }
}

/// Polls the server at `addr` until it reports `height` (or more), at most `timeout`.
pub fn wait_height(addr: SocketAddr, height: u64, timeout: Duration) -> Result<(), Error> {
    let deadline = Instant::now() + timeout;
    let mut last = String::from("no answer yet");
    while Instant::now() < deadline {
        match electrum_height(addr) {
            Ok(h) if h >= height => return Ok(()),
            Ok(h) => last = format!("at height {h}"),
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(POLL);
    }
    Err(Error::Timeout {
        what: format!("Electrum server at {addr} to reach height {height} ({last})"),
        secs: timeout.as_secs(),
    })
}
