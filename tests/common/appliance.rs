//! Runs the built `snakkaz-pay` binary as a daemon against a devnet, and talks to its API.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::devnet::Devnet;

/// A regtest watch-only descriptor (BDK's test tpub); the faucet pays its addresses.
pub const DESCRIPTOR: &str = "wpkh([41f2aed0/84h/1h/0h]tpubDDFSdQWw75hk1ewbwnNpPp5DvXFRKt68ioPoyJDY752cNHKkFxPWqkqCyCf4hxrEfpuxh46QisehL3m8Bi6MsAv394QVLopwbtfvryFQNUH/0/*)";
/// Its change descriptor.
pub const CHANGE_DESCRIPTOR: &str = "wpkh([41f2aed0/84h/1h/0h]tpubDDFSdQWw75hk1ewbwnNpPp5DvXFRKt68ioPoyJDY752cNHKkFxPWqkqCyCf4hxrEfpuxh46QisehL3m8Bi6MsAv394QVLopwbtfvryFQNUH/1/*)";
/// Token the tests use for the payment API.
pub const API_TOKEN: &str = "test-api-token-0123456789abcdef";
/// Token the tests use for admin actions.
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdef";

/// How long the daemon may take to start serving.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running appliance daemon.
pub struct Appliance {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`.
    pub addr: String,
    /// State directory (database, token files, log).
    pub dir: PathBuf,
    env: Vec<(String, String)>,
    log: PathBuf,
    /// Runs the daemon through this command (e.g. `nsenter` into a mount namespace).
    prefix: Vec<String>,
}

/// Path of the built binary (cargo builds it for integration tests).
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_snakkaz-pay"))
}

/// The environment a daemon needs to talk to an Electrum server at `host:port`.
pub fn base_env(dir: &Path, host: &str, port: u16, tls: bool) -> Vec<(String, String)> {
    std::fs::create_dir_all(dir).expect("create appliance dir");
    let api = dir.join("api-token");
    let admin = dir.join("admin-token");
    write_private(&api, API_TOKEN);
    write_private(&admin, ADMIN_TOKEN);
    [
        ("SNAKKAZ_PAY_NETWORK", "regtest".to_owned()),
        ("SNAKKAZ_PAY_DESCRIPTOR", DESCRIPTOR.to_owned()),
        (
            "SNAKKAZ_PAY_CHANGE_DESCRIPTOR",
            CHANGE_DESCRIPTOR.to_owned(),
        ),
        ("ELECTRUM_HOST", host.to_owned()),
        ("ELECTRUM_PORT", port.to_string()),
        (
            "ELECTRUM_PROTOCOL",
            if tls { "tls" } else { "tcp" }.to_owned(),
        ),
        (
            "ELECTRUM_WALLET_PATH",
            dir.join("snakkaz-pay.redb").display().to_string(),
        ),
        ("ELECTRUM_CHECK_INTERVAL", "60000".to_owned()),
        ("ELECTRUM_MIN_CONFIRMATIONS", "2".to_owned()),
        ("SNAKKAZ_PAY_LISTEN", "127.0.0.1:0".to_owned()),
        ("SNAKKAZ_PAY_API_TOKEN_FILE", api.display().to_string()),
        ("SNAKKAZ_PAY_ADMIN_TOKEN_FILE", admin.display().to_string()),
        (
            "SNAKKAZ_PAY_LOG",
            "info,snakkaz_pay=debug,snakkaz_pay::web=info".to_owned(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// The environment of a daemon whose Electrum server is unreachable (port 9), for tests of
/// what works without one. Its descriptor is declared never used before
/// (`SNAKKAZ_PAY_SCAN_STOP_GAP=0`), since the first chain scan needs a server.
pub fn offline_env(dir: &Path) -> Vec<(String, String)> {
    let mut env = base_env(dir, "127.0.0.1", 9, false);
    env.push(("SNAKKAZ_PAY_SCAN_STOP_GAP".into(), "0".into()));
    env
}

/// Writes a secret file with mode 0600, as the daemon requires of token files.
pub fn write_private(path: &Path, contents: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, contents).expect("write secret file");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod 600");
}

impl Appliance {
    /// Starts a daemon with this environment; panics with its log if it does not serve.
    pub fn start(dir: &Path, env: Vec<(String, String)>) -> Appliance {
        let mut a = Appliance {
            child: None,
            addr: String::new(),
            dir: dir.to_owned(),
            env,
            log: dir.join("daemon.log"),
            prefix: Vec::new(),
        };
        a.spawn();
        a
    }

    /// `start`, with the daemon run through `prefix` (its last element runs the binary).
    pub fn start_with_prefix(
        dir: &Path,
        env: Vec<(String, String)>,
        prefix: Vec<String>,
    ) -> Appliance {
        let mut a = Appliance {
            child: None,
            addr: String::new(),
            dir: dir.to_owned(),
            env,
            log: dir.join("daemon.log"),
            prefix,
        };
        a.spawn();
        a
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open daemon log");
        // An empty file keeps a host's /etc/snakkaz-pay/config.toml out of the test.
        let config = self.dir.join("config.toml");
        if !config.exists() {
            std::fs::write(&config, "").expect("write empty config");
        }
        let mut cmd = match self.prefix.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(binary());
                c
            }
            None => Command::new(binary()),
        };
        cmd.arg("--config")
            .arg(&config)
            .arg("run")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        let mut child = cmd.spawn().expect("spawn snakkaz-pay");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("snakkaz-pay listening on ") {
                    let _receiver_may_be_gone = tx.send(
                        url.trim()
                            .trim_start_matches("http://")
                            .trim_start_matches("https://")
                            .to_owned(),
                    );
                }
            }
        });
        self.child = Some(child);
        match rx.recv_timeout(START_TIMEOUT) {
            Ok(addr) => self.addr = addr,
            Err(_) => panic!("snakkaz-pay did not start serving:\n{}", self.log_tail()),
        }
    }

    /// Runs a `snakkaz-pay` subcommand with the daemon's configuration, pointed at the
    /// daemon's real address; returns (exit code, stdout, stderr).
    pub fn cli(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(binary())
            .arg("--config")
            .arg(self.dir.join("config.toml"))
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("SNAKKAZ_PAY_LISTEN", &self.addr)
            .output()
            .expect("run snakkaz-pay");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `cli` with `input` on stdin (codes the CLI reads there, never from argv).
    pub fn cli_with_input(&self, args: &[&str], input: &str) -> (i32, String, String) {
        let mut child = Command::new(binary())
            .arg("--config")
            .arg(self.dir.join("config.toml"))
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("SNAKKAZ_PAY_LISTEN", &self.addr)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run snakkaz-pay");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(format!("{input}\n").as_bytes())
            .expect("write stdin");
        let out = child.wait_with_output().expect("wait snakkaz-pay");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Process id of the running daemon.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// The last lines of the daemon's log.
    pub fn log_tail(&self) -> String {
        let s = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }

    /// The whole daemon log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then waits (bounded) and returns the exit status code.
    pub fn stop(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(st) = child.try_wait().expect("wait daemon") {
                return st.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "daemon did not stop within 15 s of SIGTERM:\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, no chance to clean up.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the daemon again with the same directory and environment.
    pub fn restart(&mut self) {
        self.spawn();
    }

    /// Replaces one environment variable for the next (re)start.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.to_owned()));
    }

    /// Sends a request; returns the status code and the body parsed as JSON (Null if empty).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&[u8]>,
    ) -> (u16, Value) {
        let (code, raw) = http(&self.addr, method, path, token, body);
        let v = if raw.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&raw)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&raw).into_owned()))
        };
        (code, v)
    }

    /// GET with the API token.
    pub fn get(&self, path: &str) -> (u16, Value) {
        self.request("GET", path, Some(API_TOKEN), None)
    }

    /// POST JSON with the API token.
    pub fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.request(
            "POST",
            path,
            Some(API_TOKEN),
            Some(body.to_string().as_bytes()),
        )
    }

    /// The Prometheus exposition at `/api/metrics/bitcoin` (API token), as text.
    pub fn metrics_text(&self) -> String {
        let (_, body) = http(
            &self.addr,
            "GET",
            "/api/metrics/bitcoin",
            Some(API_TOKEN),
            None,
        );
        String::from_utf8(body).expect("metrics are UTF-8")
    }

    /// Creates a payment and returns its JSON.
    pub fn create_payment(
        &self,
        amount_sat: u64,
        reference: &str,
        expires_in_secs: Option<u64>,
    ) -> Value {
        let mut body = serde_json::json!({"amount_sat": amount_sat, "reference": reference});
        if let Some(e) = expires_in_secs {
            body["expires_in_secs"] = e.into();
        }
        let (code, v) = self.post("/api/payments", &body);
        assert_eq!(code, 201, "create payment: {v}");
        v
    }

    /// Polls a payment until `pred` holds; panics with the last state and log on timeout.
    pub fn wait_payment(
        &self,
        id: &str,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        self.wait_get(&format!("/api/payments/{id}"), timeout, what, pred)
    }

    /// Polls /api/status until `pred` holds.
    pub fn wait_status(
        &self,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        self.wait_get("/api/status", timeout, what, pred)
    }

    /// Polls a GET endpoint until it answers 200 with a body satisfying `pred`.
    pub fn wait_get(
        &self,
        path: &str,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        let mut last = Value::Null;
        while Instant::now() < deadline {
            let (code, v) = self.get(path);
            if code == 200 && pred(&v) {
                return v;
            }
            last = v;
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "timed out waiting for {what}; last answer of {path}: {last:#}\nlog:\n{}",
            self.log_tail()
        );
    }

    /// Starts a fresh devnet and a daemon connected to it over TCP, waiting for the session.
    pub fn on_fresh_devnet() -> (Devnet, tempfile::TempDir, Appliance) {
        Appliance::on_fresh_devnet_with(&[])
    }

    /// `on_fresh_devnet` with extra environment for the daemon.
    pub fn on_fresh_devnet_with(extra: &[(&str, &str)]) -> (Devnet, tempfile::TempDir, Appliance) {
        let devnet = Devnet::start();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut env = base_env(
            dir.path(),
            devnet.electrum_host(),
            devnet.electrum_tcp_port(),
            false,
        );
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let app = Appliance::start(dir.path(), env);
        app.wait_status(Duration::from_secs(20), "Electrum connection", |s| {
            s["electrum"]["connected"] == true
        });
        (devnet, dir, app)
    }
}

impl Drop for Appliance {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A minimal HTTP/1.1 client (one request per connection) so tests see raw status codes.
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&[u8]>,
) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).expect("connect to daemon");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let body = body.unwrap_or_default();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        head.push_str("Content-Type: application/json\r\n");
    }
    if let Some(t) = token {
        head.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).expect("write request");
    // The server may answer (e.g. 413) before reading a large body; ignore a reset here.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw);
    let code: u16 = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in response: {text:?}"));
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(raw.len(), |p| p + 4);
    let (headers, mut rest) = (
        String::from_utf8_lossy(&raw[..split]).to_lowercase(),
        raw[split..].to_vec(),
    );
    if headers.contains("transfer-encoding: chunked") {
        rest = dechunk(&rest);
    }
    (code, rest)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let n = usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + n]);
        b = &b[eol + 2 + n + 2..];
    }
    out
}
