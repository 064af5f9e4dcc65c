//! Headless Chromium (Debian's `chromium`) driven over the DevTools protocol: open a page,
//! evaluate JavaScript in it, wait for conditions, take screenshots.

#![allow(dead_code)]

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

/// The browser binary (Debian's package path unless `CHROMIUM` says otherwise).
pub fn chromium_path() -> PathBuf {
    std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// A running headless Chromium with one page attached.
pub struct Browser {
    child: Child,
    ws: WebSocket<TcpStream>,
    next_id: u64,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts Chromium on `url` (a phone-sized or desktop window: `width`×`height`).
    pub fn open(url: &str, width: u32, height: u32) -> Browser {
        let profile = tempfile::tempdir().expect("profile dir");
        let child = Command::new(chromium_path())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                // Port 0: Chromium picks a free port and writes it to DevToolsActivePort.
                "--remote-debugging-port=0",
                "--remote-allow-origins=*",
            ])
            .arg(format!("--window-size={width},{height}"))
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(url)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {}: {e} (apt-get install chromium)",
                    chromium_path().display()
                )
            });
        let port = wait_for_port(&profile.path().join("DevToolsActivePort"));
        let ws_url = page_target(port, url);
        let host = ws_url
            .strip_prefix("ws://")
            .and_then(|r| r.split('/').next())
            .expect("ws:// DevTools URL")
            .to_owned();
        let stream = TcpStream::connect(&host).expect("connect to DevTools");
        let (ws, _) =
            tungstenite::client::client(ws_url.as_str(), stream).expect("DevTools websocket");
        let mut b = Browser {
            child,
            ws,
            next_id: 1,
            _profile: profile,
        };
        b.call("Page.enable", json!({}));
        b.call("Runtime.enable", json!({}));
        b
    }

    /// Sends a DevTools command and returns its result, skipping events in between.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let msg = json!({"id": id, "method": method, "params": params}).to_string();
        self.ws
            .send(Message::text(msg))
            .expect("send DevTools command");
        loop {
            let m = self.ws.read().expect("read DevTools message");
            let Message::Text(t) = m else { continue };
            let v: Value = serde_json::from_str(t.as_str()).expect("DevTools JSON");
            if v["id"].as_u64() == Some(id) {
                if let Some(e) = v.get("error") {
                    panic!("{method} failed: {e}");
                }
                return v["result"].clone();
            }
        }
    }

    /// Evaluates a JavaScript expression in the page and returns its JSON value.
    pub fn eval(&mut self, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
        );
        if let Some(e) = r.get("exceptionDetails") {
            panic!("{expr} threw: {e}");
        }
        r["result"]["value"].clone()
    }

    /// Polls `expr` until it is truthy; panics naming `what` with the page text on timeout.
    /// An exception counts as "not yet" (the page may still be loading).
    pub fn wait_for(&mut self, expr: &str, timeout: Duration, what: &str) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let r = self.call(
                "Runtime.evaluate",
                json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
            );
            let v = if r.get("exceptionDetails").is_some() {
                Value::Null
            } else {
                r["result"]["value"].clone()
            };
            if !(v.is_null() || v == false || v == "" || v == 0) {
                return v;
            }
            if Instant::now() > deadline {
                let text = self.eval("document.body ? document.body.innerText : ''");
                panic!("timed out waiting for {what}; page text:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Navigates to `url` and waits for the load event.
    pub fn goto(&mut self, url: &str) {
        self.call("Page.navigate", json!({"url": url}));
        self.wait_for(
            "document.readyState === 'complete' && location.href",
            Duration::from_secs(10),
            "page load",
        );
    }

    /// Saves a PNG of the full page under `target/screenshots/`.
    pub fn screenshot(&mut self, name: &str) -> PathBuf {
        self.save_screenshot(
            name,
            json!({"format": "png", "captureBeyondViewport": true}),
        )
    }

    /// Saves a PNG of the top `width` × `height` CSS pixels at `scale` (small, for docs/).
    pub fn screenshot_top(&mut self, name: &str, width: u32, height: u32, scale: f64) -> PathBuf {
        self.save_screenshot(
            name,
            json!({"format": "png", "captureBeyondViewport": true,
                   "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": scale}}),
        )
    }

    fn save_screenshot(&mut self, name: &str, params: Value) -> PathBuf {
        let r = self.call("Page.captureScreenshot", params);
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().expect("screenshot data"))
            .expect("base64 screenshot");
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for_port(file: &Path) -> u16 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(s) = std::fs::read_to_string(file)
            && let Some(port) = s.lines().next().and_then(|l| l.trim().parse().ok())
        {
            return port;
        }
        assert!(
            Instant::now() < deadline,
            "Chromium did not open its DevTools port"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The websocket URL of the page target showing `url`.
fn page_target(port: u16, url: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let addr = format!("127.0.0.1:{port}");
        if let Some(body) = get_json_list(&addr)
            && let Ok(Value::Array(targets)) = serde_json::from_slice::<Value>(&body)
            && let Some(t) = targets.iter().find(|t| {
                t["type"] == "page" && t["url"].as_str().is_some_and(|u| u.starts_with(url))
            })
        {
            return t["webSocketDebuggerUrl"]
                .as_str()
                .expect("target websocket")
                .to_owned();
        }
        assert!(Instant::now() < deadline, "no page target for {url}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `GET /json/list` from the DevTools HTTP server, which keeps the connection open after
/// answering: read exactly Content-Length bytes instead of waiting for the close.
fn get_json_list(addr: &str) -> Option<Vec<u8>> {
    use std::io::{BufRead, BufReader, Read, Write};
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET /json/list HTTP/1.1\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut r = BufReader::new(s);
    let mut len = None;
    let mut ok = false;
    loop {
        let mut line = String::new();
        r.read_line(&mut line).ok()?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if l.starts_with("HTTP/1.1 200") {
            ok = true;
        }
        if let Some(v) = l.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse::<usize>().ok();
        }
    }
    let mut body = vec![0; len?];
    r.read_exact(&mut body).ok()?;
    ok.then_some(body)
}
