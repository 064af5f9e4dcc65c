//! A fault injector of ours: a TCP proxy in front of the devnet's ElectrumX that forwards
//! everything and, when told to, rewrites block headers at one height or merkle proofs in
//! the server's answers. No real server lies on demand; this one does, on loopback only.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;

/// What the proxy does to answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Lie {
    /// Forward unchanged.
    Honest = 0,
    /// Rewrite the merkle root of the block header at the target height, wherever a
    /// header at that height passes.
    Header = 1,
    /// Rewrite every merkle proof.
    Merkle = 2,
    /// Answer transactions and histories with garbage.
    Garbage = 3,
    /// Report every script as having no history (`null` status), in answers and
    /// notifications.
    NullStatus = 4,
}

/// A running proxy; stops accepting when dropped.
pub struct LyingProxy {
    /// `127.0.0.1:port` to point the daemon at.
    pub port: u16,
    mode: Arc<AtomicU8>,
    height: Arc<AtomicU32>,
    stop: Arc<AtomicBool>,
    /// Answers rewritten so far.
    pub rewritten: Arc<AtomicU32>,
}

impl LyingProxy {
    /// Starts a proxy to `upstream_port` on loopback.
    pub fn start(upstream_port: u16) -> LyingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().unwrap().port();
        let p = LyingProxy {
            port,
            mode: Arc::new(AtomicU8::new(Lie::Honest as u8)),
            height: Arc::new(AtomicU32::new(u32::MAX)),
            stop: Arc::new(AtomicBool::new(false)),
            rewritten: Arc::new(AtomicU32::new(0)),
        };
        let (mode, height, stop, rewritten) = (
            p.mode.clone(),
            p.height.clone(),
            p.stop.clone(),
            p.rewritten.clone(),
        );
        listener.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        let Ok(server) = TcpStream::connect(("127.0.0.1", upstream_port)) else {
                            continue;
                        };
                        pipe(client, server, &mode, &height, &rewritten);
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
                }
            }
        });
        p
    }

    /// Sets what the proxy does from now on (`height` for [`Lie::Header`]).
    pub fn lie(&self, lie: Lie, height: u32) {
        self.height.store(height, Ordering::SeqCst);
        self.mode.store(lie as u8, Ordering::SeqCst);
    }
}

impl Drop for LyingProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Forwards both ways; answers pass through `rewrite`.
fn pipe(
    client: TcpStream,
    server: TcpStream,
    mode: &Arc<AtomicU8>,
    height: &Arc<AtomicU32>,
    rewritten: &Arc<AtomicU32>,
) {
    // Request id → (method, params), so answers can be recognised.
    let asked: Arc<Mutex<HashMap<String, (String, Value)>>> = Arc::default();
    {
        let (mut to_server, from_client) =
            (server.try_clone().unwrap(), client.try_clone().unwrap());
        let asked = asked.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(from_client).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    let mut a = asked.lock().unwrap();
                    for req in v.as_array().cloned().unwrap_or_else(|| vec![v.clone()]) {
                        if let (Some(id), Some(m)) = (req.get("id"), req["method"].as_str()) {
                            a.insert(id.to_string(), (m.to_owned(), req["params"].clone()));
                        }
                    }
                }
                if to_server.write_all(format!("{line}\n").as_bytes()).is_err() {
                    break;
                }
            }
            let _ = to_server.shutdown(Shutdown::Both);
        });
    }
    let (mode, height, rewritten) = (mode.clone(), height.clone(), rewritten.clone());
    std::thread::spawn(move || {
        let mut to_client = client;
        for line in BufReader::new(server).lines().map_while(Result::ok) {
            let lie = mode.load(Ordering::SeqCst);
            let out = if lie == Lie::Honest as u8 {
                line
            } else {
                match serde_json::from_str::<Value>(&line) {
                    Ok(mut v) => {
                        let a = asked.lock().unwrap();
                        let n = if let Some(items) = v.as_array_mut() {
                            items
                                .iter_mut()
                                .map(|i| rewrite(i, &a, lie, height.load(Ordering::SeqCst)))
                                .sum()
                        } else {
                            rewrite(&mut v, &a, lie, height.load(Ordering::SeqCst))
                        };
                        rewritten.fetch_add(n, Ordering::SeqCst);
                        v.to_string()
                    }
                    Err(_) => line,
                }
            };
            if to_client.write_all(format!("{out}\n").as_bytes()).is_err() {
                break;
            }
        }
        let _ = to_client.shutdown(Shutdown::Both);
    });
}

/// Changes one hex digit inside a serialized header's merkle root (bytes 36..68).
fn forge_header(hex: &str) -> String {
    let mut b: Vec<u8> = hex.bytes().collect();
    let i = 36 * 2 + 1;
    b[i] = if b[i] == b'0' { b'1' } else { b'0' };
    String::from_utf8(b).unwrap()
}

fn rewrite(msg: &mut Value, asked: &HashMap<String, (String, Value)>, lie: u8, target: u32) -> u32 {
    if lie == Lie::NullStatus as u8 && msg["method"] == "blockchain.scripthash.subscribe" {
        msg["params"][1] = Value::Null;
        return 1;
    }
    // Notifications of a new tip carry the header too.
    if msg["method"] == "blockchain.headers.subscribe" {
        if lie == Lie::Header as u8 {
            let n = &mut msg["params"][0];
            if n["height"].as_u64() == Some(u64::from(target))
                && let Some(h) = n["hex"].as_str()
            {
                n["hex"] = Value::String(forge_header(h));
                return 1;
            }
        }
        return 0;
    }
    let Some(id) = msg.get("id").map(|i| i.to_string()) else {
        return 0;
    };
    let Some((method, params)) = asked.get(&id) else {
        return 0;
    };
    let result = &mut msg["result"];
    match (lie, method.as_str()) {
        (l, "blockchain.block.header") if l == Lie::Header as u8 => {
            if params[0].as_u64() == Some(u64::from(target))
                && let Some(h) = result.as_str()
            {
                *result = Value::String(forge_header(h));
                return 1;
            }
            0
        }
        (l, "blockchain.block.headers") if l == Lie::Header as u8 => {
            let start = params[0].as_u64().unwrap_or(0) as u32;
            if target < start {
                return 0;
            }
            let i = (target - start) as usize;
            if let Some(list) = result.get_mut("headers").and_then(Value::as_array_mut) {
                if let Some(h) = list.get_mut(i).and_then(|h| h.as_str().map(forge_header)) {
                    list[i] = Value::String(h);
                    return 1;
                }
            } else if let Some(hex) = result.get("hex").and_then(Value::as_str)
                && hex.len() >= (i + 1) * 160
            {
                let mut s = hex.to_owned();
                let forged = forge_header(&s[i * 160..(i + 1) * 160]);
                s.replace_range(i * 160..(i + 1) * 160, &forged);
                result["hex"] = Value::String(s);
                return 1;
            }
            0
        }
        (l, "blockchain.headers.subscribe") if l == Lie::Header as u8 => {
            if result["height"].as_u64() == Some(u64::from(target))
                && let Some(h) = result["hex"].as_str()
            {
                result["hex"] = Value::String(forge_header(h));
                return 1;
            }
            0
        }
        (l, "blockchain.transaction.get_merkle") if l == Lie::Merkle as u8 => {
            if let Some(pos) = result["pos"].as_u64() {
                // The proof of another position in the block: it no longer leads to the root.
                result["pos"] = Value::from(pos ^ 1);
                if let Some(first) = result["merkle"]
                    .get_mut(0)
                    .and_then(|m| m.as_str().map(forge_header_hash))
                {
                    result["merkle"][0] = Value::String(first);
                }
                return 1;
            }
            0
        }
        (l, "blockchain.scripthash.subscribe") if l == Lie::NullStatus as u8 => {
            *result = Value::Null;
            1
        }
        (l, "blockchain.transaction.get") if l == Lie::Garbage as u8 => {
            *result = Value::String("0badc0de".into());
            1
        }
        (l, "blockchain.scripthash.get_history") if l == Lie::Garbage as u8 => {
            *result = serde_json::json!([{"tx_hash": "zz", "height": "high"}, 7]);
            1
        }
        _ => 0,
    }
}

/// Changes one hex digit of a 32-byte hash.
fn forge_header_hash(hex: &str) -> String {
    let mut b: Vec<u8> = hex.bytes().collect();
    b[0] = if b[0] == b'0' { b'1' } else { b'0' };
    String::from_utf8(b).unwrap()
}
