//! Incident response and access security: safe web defaults on the LAN (Host check,
//! connection flood, stalled bodies), lock-down, token rotation, and failed logins that
//! are audited, rate limited and alert.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use common::appliance::{ADMIN_TOKEN, API_TOKEN, Appliance, offline_env};
use serde_json::{Value, json};

/// A daemon with no Electrum server behind it (port 9 refuses): the web side needs none.
fn offline(extra: &[(&str, &str)]) -> (tempfile::TempDir, Appliance) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut env = offline_env(dir.path());
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let app = Appliance::start(dir.path(), env);
    (dir, app)
}

/// An answer read off the wire.
struct Answer {
    code: u16,
    head: String,
    body: Value,
}

/// Connects to `addr` from the loopback address `from` (so tests can play several sources).
fn connect_from(from: &str, addr: &str) -> TcpStream {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let sock = tokio::net::TcpSocket::new_v4().expect("socket");
    sock.bind(format!("{from}:0").parse().unwrap())
        .expect("bind a loopback source address");
    let stream = rt
        .block_on(sock.connect(addr.parse().unwrap()))
        .expect("connect to daemon");
    let s = stream.into_std().expect("std stream");
    s.set_nonblocking(false).expect("blocking");
    s
}

/// Sends `request` on `s` and reads the whole answer (the request asks to close).
fn exchange(mut s: TcpStream, request: &[u8], timeout: Duration) -> Answer {
    s.set_read_timeout(Some(timeout)).expect("timeout");
    s.write_all(request).expect("write request");
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {text:?}"));
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    Answer {
        code,
        head: head.to_ascii_lowercase(),
        body: serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_owned())),
    }
}

/// A request from source `from` with this Host and token.
fn req_from(
    from: &str,
    addr: &str,
    method: &str,
    path: &str,
    host: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Answer {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut r = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        r.push_str("Content-Type: application/json\r\n");
    }
    if let Some(t) = token {
        r.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    r.push_str("\r\n");
    r.push_str(&body);
    exchange(
        connect_from(from, addr),
        r.as_bytes(),
        Duration::from_secs(30),
    )
}

fn req(app: &Appliance, method: &str, path: &str, token: Option<&str>) -> Answer {
    req_from("127.0.0.1", &app.addr, method, path, &app.addr, token, None)
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

fn read_token(path: &Path) -> String {
    std::fs::read_to_string(path)
        .expect("read token file")
        .trim()
        .to_owned()
}

/// The flood needs more descriptors than a default soft limit of 1024.
fn raise_fd_limit(want: u64) {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let cur = getrlimit(Resource::Nofile);
    if cur.current.is_some_and(|c| c < want) {
        let max = cur.maximum.map_or(want, |m| m.min(want));
        setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(max),
                maximum: cur.maximum,
            },
        )
        .expect("raise the open-file limit");
    }
}

#[test]
fn a_request_naming_a_foreign_host_is_refused() {
    // DNS rebinding: a page the operator visits makes its own name resolve to the box and
    // would read references and balances from the (token-free on loopback) page.
    let (_dir, app) = offline(&[("SNAKKAZ_PAY_ALLOWED_HOSTS", "pay.lan")]);
    let port = app.addr.rsplit(':').next().unwrap().to_owned();
    for (host, expected) in [
        ("evil.example".to_owned(), 421),
        (format!("evil.example:{port}"), 421),
        (format!("localhost.evil.example:{port}"), 421),
        (format!("0.0.0.0:{port}"), 421),
        (format!("localhost:{port}"), 200),
        ("pay.lan".to_owned(), 200),
        (app.addr.clone(), 200),
    ] {
        for path in ["/healthz", "/page/overview", "/api/payments"] {
            let a = req_from(
                "127.0.0.1",
                &app.addr,
                "GET",
                path,
                &host,
                Some(API_TOKEN),
                None,
            );
            assert_eq!(a.code, expected, "Host {host} {path}: {}", a.body);
            if expected == 421 {
                assert_eq!(code(&a.body), "misdirected_request");
                assert!(
                    a.body["error"]["message"]
                        .as_str()
                        .unwrap()
                        .contains("SNAKKAZ_PAY_ALLOWED_HOSTS")
                );
            }
        }
    }
    // HTTP/1.0 without a Host header names nothing and is refused too.
    let a = exchange(
        TcpStream::connect(&app.addr).unwrap(),
        b"GET /page/overview HTTP/1.0\r\n\r\n",
        Duration::from_secs(10),
    );
    assert_eq!(a.code, 421);
}

#[test]
fn two_thousand_idle_connections_leave_healthz_answering_within_a_second() {
    raise_fd_limit(8192);
    let (_dir, app) = offline(&[]);
    let mut flood = Vec::with_capacity(2000);
    for i in 0..2000 {
        let mut s = TcpStream::connect(&app.addr).expect("flood connect");
        // Every tenth one trickles half a request header (slowloris); the rest say nothing.
        if i % 10 == 0 {
            let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        }
        flood.push(s);
    }
    let mut worst = Duration::ZERO;
    for _ in 0..5 {
        let t = Instant::now();
        let a = exchange(
            TcpStream::connect(&app.addr).expect("probe connect"),
            format!(
                "GET /healthz HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                app.addr
            )
            .as_bytes(),
            Duration::from_secs(5),
        );
        let took = t.elapsed();
        assert_eq!(a.code, 200);
        worst = worst.max(took);
    }
    eprintln!("healthz under a flood of 2000 idle connections: worst of 5 took {worst:?}");
    assert!(
        worst < Duration::from_secs(1),
        "healthz took {worst:?} under the flood"
    );
    // The API still works, and the daemon holds a bounded number of sockets.
    assert_eq!(req(&app, "GET", "/api/payments", Some(API_TOKEN)).code, 200);
    let fds = std::fs::read_dir(format!("/proc/{}/fd", app.pid().unwrap()))
        .unwrap()
        .count();
    eprintln!("daemon open files with 2000 flood sockets: {fds}");
    assert!(fds < 600, "the daemon holds {fds} files");
    drop(flood);
}

#[test]
fn a_stalled_request_body_is_cut() {
    let (_dir, app) = offline(&[]);
    let mut s = TcpStream::connect(&app.addr).unwrap();
    let head = format!(
        "POST /api/payments HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {API_TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: 200\r\n\r\n{{\"amount_sat\":",
        app.addr
    );
    s.write_all(head.as_bytes()).unwrap();
    let t = Instant::now();
    // Meanwhile the appliance answers others.
    assert_eq!(req(&app, "GET", "/healthz", None).code, 200);
    let a = exchange(s, b"", Duration::from_secs(30));
    let took = t.elapsed();
    eprintln!("stalled body cut after {took:?}");
    assert_eq!(a.code, 408, "{}", a.body);
    assert_eq!(code(&a.body), "body_timeout");
    assert!(a.head.contains("connection: close"), "{}", a.head);
    assert!(
        took >= Duration::from_secs(9) && took < Duration::from_secs(20),
        "{took:?}"
    );
}

#[test]
fn rotation_makes_the_old_token_fail_at_once_and_the_new_one_work() {
    let (dir, app) = offline(&[]);
    let pid = app.pid();
    assert_eq!(req(&app, "GET", "/api/payments", Some(API_TOKEN)).code, 200);

    let (rc, out, err) = app.cli(&["--json", "tokens", "rotate", "all"]);
    assert_eq!(rc, 0, "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["daemon"], "took the new tokens", "{v}");
    let (api, admin) = (
        read_token(&dir.path().join("api-token")),
        read_token(&dir.path().join("admin-token")),
    );
    assert_ne!(api, API_TOKEN);
    assert_ne!(admin, ADMIN_TOKEN);
    for f in ["api-token", "admin-token"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(f))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }
    // At once: no restart, no waiting.
    assert_eq!(req(&app, "GET", "/api/payments", Some(API_TOKEN)).code, 401);
    assert_eq!(
        req(&app, "GET", "/api/admin/audit", Some(ADMIN_TOKEN)).code,
        401
    );
    assert_eq!(req(&app, "GET", "/api/payments", Some(&api)).code, 200);
    assert_eq!(req(&app, "GET", "/api/admin/audit", Some(&admin)).code, 200);
    assert_eq!(app.pid(), pid, "the daemon was not restarted");

    // With a grace period the replaced token works on for a while, beside the new one.
    let (rc, out, err) = app.cli(&["tokens", "rotate", "api", "--grace-secs", "300"]);
    assert_eq!(rc, 0, "{out}{err}");
    let api2 = read_token(&dir.path().join("api-token"));
    assert_eq!(req(&app, "GET", "/api/payments", Some(&api)).code, 200);
    assert_eq!(req(&app, "GET", "/api/payments", Some(&api2)).code, 200);
    // A rotation without grace revokes everything replaced, the one in grace included.
    let (rc, out, err) = app.cli(&["tokens", "rotate", "api"]);
    assert_eq!(rc, 0, "{out}{err}");
    let api3 = read_token(&dir.path().join("api-token"));
    assert_eq!(req(&app, "GET", "/api/payments", Some(&api)).code, 401);
    assert_eq!(req(&app, "GET", "/api/payments", Some(&api2)).code, 401);
    assert_eq!(req(&app, "GET", "/api/payments", Some(&api3)).code, 200);

    // SIGHUP re-reads the files (an operator who edited them by hand).
    let hand = "hand-written-token-0123456789";
    common::appliance::write_private(&dir.path().join("api-token"), hand);
    let status = std::process::Command::new("kill")
        .args(["-HUP", &pid.unwrap().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    common::wait_until(Duration::from_secs(10), "SIGHUP token reload", || {
        (req(&app, "GET", "/api/payments", Some(hand)).code == 200).then_some(())
    });
    assert_eq!(req(&app, "GET", "/api/payments", Some(&api3)).code, 401);
    assert_eq!(app.pid(), pid);
    // So does the admin API (for a token file changed by other means).
    let hand2 = "hand-written-token-2-0123456789";
    common::appliance::write_private(&dir.path().join("api-token"), hand2);
    let a = req_from(
        "127.0.0.1",
        &app.addr,
        "POST",
        "/api/admin/tokens/reload",
        &app.addr,
        Some(&admin),
        Some(&json!({"grace_secs": 0})),
    );
    assert_eq!(a.code, 200, "{}", a.body);
    assert_eq!(a.body["api_replaced"], true);
    assert_eq!(req(&app, "GET", "/api/payments", Some(hand2)).code, 200);
    assert_eq!(req(&app, "GET", "/api/payments", Some(hand)).code, 401);

    // Every rotation is in the audit log, and no token ever reached the log file.
    let (rc, out, err) = app.cli(&["--json", "audit", "--action", "tokens.rotate"]);
    assert_eq!(rc, 0, "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let sources: Vec<&str> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["source"].as_str().unwrap())
        .collect();
    assert_eq!(
        sources,
        ["admin-api 127.0.0.1", "signal", "local", "local", "local"],
        "{v}"
    );
    let log = app.log();
    for t in [&api, &api2, &api3, &admin] {
        assert!(!log.contains(t.as_str()), "a token reached the log");
    }
}

#[test]
fn failed_logins_are_audited_rate_limited_and_alert() {
    let (_dir, app) = offline(&[]);
    let wrong = "wrong-token-0123456789abcdef";
    for i in 1..=6 {
        let a = req(&app, "GET", "/api/payments", Some(wrong));
        assert_eq!(a.code, 401, "failure {i}");
    }
    // Blocked now: even the right token gets 429 (a guesser learns nothing from it).
    let a = req(&app, "GET", "/api/payments", Some(wrong));
    assert_eq!(a.code, 429, "{}", a.body);
    assert_eq!(code(&a.body), "too_many_failed_logins");
    assert!(a.head.contains("retry-after: 1"), "{}", a.head);
    assert_eq!(req(&app, "GET", "/api/payments", Some(API_TOKEN)).code, 429);
    // Another source is not affected.
    let other = |path: &str, token: &str| {
        req_from(
            "127.0.0.2",
            &app.addr,
            "GET",
            path,
            &app.addr,
            Some(token),
            None,
        )
    };
    assert_eq!(other("/api/payments", API_TOKEN).code, 200);
    // After the block, the right token works again.
    common::wait_until(Duration::from_secs(5), "the 1 s block to end", || {
        (req(&app, "GET", "/api/payments", Some(API_TOKEN)).code == 200).then_some(())
    });
    for _ in 0..4 {
        assert_eq!(other("/api/payments", wrong).code, 401);
    }
    // The API token on an admin endpoint is denied and recorded, not counted as a guess.
    assert_eq!(
        req(&app, "GET", "/api/admin/audit", Some(API_TOKEN)).code,
        401
    );

    // Ten failed logins within the window: the alert fires and the metric shows them.
    let alerts = app.wait_get(
        "/api/alerts",
        Duration::from_secs(10),
        "failed-login alert",
        |v| {
            v["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["name"] == "SnakkazPayFailedLogins")
        },
    );
    eprintln!("alerts: {alerts}");
    let metrics = app.metrics_text();
    assert!(
        metrics.contains("snakkaz_pay_failed_logins_recent 10"),
        "{metrics}"
    );
    assert!(metrics.contains("snakkaz_pay_alert_firing{alertname=\"SnakkazPayFailedLogins\"} 1"));

    let (rc, out, err) = app.cli(&["--json", "audit", "--since", "1h", "--action", "auth."]);
    assert_eq!(rc, 0, "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let entries = v["entries"].as_array().unwrap();
    let from = |action: &str, src: &str| {
        entries
            .iter()
            .filter(|e| e["action"] == action && e["source"] == src)
            .count()
    };
    assert_eq!(from("auth.failed", "127.0.0.1"), 6, "{v}");
    assert_eq!(from("auth.failed", "127.0.0.2"), 4, "{v}");
    assert_eq!(from("auth.denied", "127.0.0.1"), 1, "{v}");
    let (rc, human, _) = app.cli(&["audit", "--action", "auth.failed"]);
    assert_eq!(rc, 0);
    assert!(
        human.contains("127.0.0.2") && human.contains("wrong bearer token"),
        "{human}"
    );

    // The page shows the recent failures and their sources.
    let page = req(&app, "GET", "/page/overview", None);
    let html = page.body.as_str().unwrap_or_default().to_owned();
    assert!(html.contains("id=failed-logins data-count=5"), "{html}");
    assert!(html.contains("127.0.0.2"), "{html}");
}

fn pay_status(p: &Value) -> &str {
    p["status"].as_str().unwrap_or("")
}

#[test]
fn lockdown_refuses_new_payments_and_admin_actions_but_still_confirms_payments() {
    let (devnet, _dir, mut app) = Appliance::on_fresh_devnet();
    let open = app.create_payment(40_000, "before-incident", None);
    let id = open["id"].as_str().unwrap().to_owned();

    let (rc, out, err) = app.cli(&["lockdown", "--reason", "admin token leaked"]);
    assert_eq!(rc, 0, "{out}{err}");
    assert!(out.contains("LOCKED DOWN"), "{out}");

    let (status, v) = app.post(
        "/api/payments",
        &json!({"amount_sat": 1000, "reference": "during-incident"}),
    );
    assert_eq!((status, code(&v)), (503, "locked_down"), "{v}");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("admin token leaked") && msg.contains("snakkaz-pay unlock"),
        "{msg}"
    );
    for path in ["/api/admin/sync", "/api/admin/restart-payment-processor"] {
        let a = req(&app, "POST", path, Some(ADMIN_TOKEN));
        assert_eq!((a.code, code(&a.body)), (503, "locked_down"), "{path}");
    }
    // The network API cannot lift it, even with the admin token.
    let a = req(&app, "POST", "/api/admin/unlock", Some(ADMIN_TOKEN));
    assert_eq!((a.code, code(&a.body)), (403, "unlock_needs_local_access"));

    // No money goes unnoticed: a payment paid during the lock-down is detected and confirmed.
    devnet.pay(open["address"].as_str().unwrap(), 40_000);
    app.wait_payment(&id, Duration::from_secs(20), "detected while locked", |p| {
        pay_status(p) == "unconfirmed"
    });
    devnet.mine(2);
    app.wait_payment(
        &id,
        Duration::from_secs(20),
        "confirmed while locked",
        |p| pay_status(p) == "confirmed",
    );

    // Red banner, metric and alert.
    let page = req(&app, "GET", "/page/overview", None);
    let html = page.body.as_str().unwrap_or_default().to_owned();
    assert!(html.contains("id=lockdown data-locked=true"), "{html}");
    assert!(html.contains("admin token leaked"));
    let metrics = app.metrics_text();
    assert!(metrics.contains("snakkaz_pay_lockdown 1"), "{metrics}");
    let (_, alerts) = app.get("/api/alerts");
    assert!(
        alerts["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"] == "SnakkazPayLockdown"),
        "{alerts}"
    );

    // It survives a restart.
    app.stop();
    app.restart();
    let (status, v) = app.post(
        "/api/payments",
        &json!({"amount_sat": 1000, "reference": "after-restart"}),
    );
    assert_eq!((status, code(&v)), (503, "locked_down"), "{v}");

    // Lifted locally while the daemon runs: the CLI leaves a request file it picks up.
    let (rc, out, err) = app.cli(&["unlock"]);
    assert_eq!(rc, 0, "{out}{err}");
    assert!(out.contains("lifted"), "{out}");
    let (status, v) = app.post(
        "/api/payments",
        &json!({"amount_sat": 1000, "reference": "after-unlock"}),
    );
    assert_eq!(status, 201, "{v}");

    // With the daemon stopped, both work on the file.
    app.stop();
    let (rc, out, err) = app.cli(&["--json", "lockdown", "--reason", "offline drill"]);
    assert_eq!(rc, 0, "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (v["locked"].clone(), v["source"].clone()),
        (json!(true), json!("cli"))
    );
    app.restart();
    let (status, _) = app.post(
        "/api/payments",
        &json!({"amount_sat": 1000, "reference": "offline-locked"}),
    );
    assert_eq!(status, 503);
    app.stop();
    let (rc, out, err) = app.cli(&["unlock"]);
    assert_eq!(rc, 0, "{out}{err}");
    // A configuration change between starts is recorded as such.
    app.set_env("SNAKKAZ_PAY_ALLOWED_HOSTS", "pay.lan");
    app.restart();
    let (status, v) = app.post(
        "/api/payments",
        &json!({"amount_sat": 1000, "reference": "offline-unlocked"}),
    );
    assert_eq!(status, 201, "{v}");

    // Every step is in the audit log with where it came from.
    let (rc, out, err) = app.cli(&["--json", "audit"]);
    assert_eq!(rc, 0, "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let actions: Vec<(String, String)> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["source"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for (action, source) in [
        ("lockdown", "admin-api 127.0.0.1"),
        ("unlock.refused", "admin-api 127.0.0.1"),
        ("unlock", "local"),
        ("lockdown", "cli"),
        ("unlock", "cli"),
        ("config.start", "daemon"),
        ("config.changed", "daemon"),
    ] {
        assert!(
            actions.iter().any(|(a, s)| a == action && s == source),
            "{action} from {source} missing in {actions:?}"
        );
    }
}

/// What the fake Postgres server got after asking for the password in cleartext.
#[derive(Debug, PartialEq, Eq)]
enum Asked {
    /// The client sent a password message.
    GotPassword(String),
    /// The client hung up without one.
    Refused,
}

/// Fault injector: a "Postgres" that completes TLS with a certificate nobody checks and
/// asks for the password in cleartext, as a man in the middle would. Real PostgreSQL
/// cannot be made to do this on demand. Serves `connections` connections, then stops.
fn fake_postgres(dir: &Path, connections: usize) -> (u16, std::sync::mpsc::Receiver<Asked>) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = devnet::tls::generate(dir).expect("generate certificates");
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&certs.cert)
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    let key = PrivateKeyDer::from_pem_file(&certs.key).unwrap();
    let config = std::sync::Arc::new(
        rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap(),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for _ in 0..connections {
            let Ok((mut tcp, _)) = listener.accept() else {
                return;
            };
            tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut ssl_request = [0u8; 8];
            if tcp.read_exact(&mut ssl_request).is_err() || tcp.write_all(b"S").is_err() {
                continue;
            }
            let conn = rustls::ServerConnection::new(config.clone()).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            let read_message = |tls: &mut rustls::StreamOwned<_, _>, typed: bool| {
                let mut ty = [0u8; 1];
                if typed {
                    tls.read_exact(&mut ty).ok()?;
                }
                let mut len = [0u8; 4];
                tls.read_exact(&mut len).ok()?;
                let mut body = vec![0u8; (u32::from_be_bytes(len) as usize).saturating_sub(4)];
                tls.read_exact(&mut body).ok()?;
                Some((ty[0], body))
            };
            if read_message(&mut tls, false).is_none() {
                continue; // no startup message
            }
            // AuthenticationCleartextPassword.
            let _ = tls.write_all(&[b'R', 0, 0, 0, 8, 0, 0, 0, 3]);
            let _ = tls.flush();
            let asked = match read_message(&mut tls, true) {
                Some((b'p', body)) => Asked::GotPassword(
                    String::from_utf8_lossy(&body)
                        .trim_end_matches('\0')
                        .to_owned(),
                ),
                _ => Asked::Refused,
            };
            if tx.send(asked).is_err() {
                return;
            }
        }
    });
    (port, rx)
}

#[test]
fn the_sink_never_sends_its_password_to_a_server_that_cannot_prove_itself() {
    let dir = tempfile::tempdir().unwrap();
    let password = "sink-password-9d2f7c41";
    let (port, asked) = fake_postgres(dir.path(), 3);
    let url = format!("postgresql://snakkaz:{password}@127.0.0.1:{port}/postgres?sslmode=require");

    // The injector works: a client that allows cleartext (psql, channel binding off)
    // hands the password over.
    let psql = common::postgres::bin_dir().join("psql");
    let out = std::process::Command::new(&psql)
        .arg(format!("{url}&channel_binding=disable&connect_timeout=5"))
        .args(["-c", "select 1"])
        .env_clear()
        .output()
        .expect("run psql");
    eprintln!("psql: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        asked.recv_timeout(Duration::from_secs(20)).unwrap(),
        Asked::GotPassword(password.to_owned())
    );

    // The appliance's sink with sslmode=require (no CA) hangs up instead.
    let mut env = offline_env(dir.path());
    common::postgres::sink_env(&mut env, dir.path(), &url, None);
    let app = Appliance::start(dir.path(), env);
    assert_eq!(
        asked.recv_timeout(Duration::from_secs(30)).unwrap(),
        Asked::Refused
    );
    let s = app.wait_status(Duration::from_secs(20), "the sink's error", |s| {
        s["sink"]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("channel binding"))
    });
    let shown = s.to_string() + &app.log();
    assert!(
        !shown.contains(password),
        "the password reached the status or log"
    );
}

#[test]
fn sighup_rereads_the_supabase_connection_string() {
    // Containment: the database password was revoked and replaced; the sink takes the new
    // connection string without a restart.
    let pg = common::postgres::Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let revoked = pg
        .url(Some("verify-full"))
        .replace(&pg.password, "revoked-password-5c1d");
    let mut env = offline_env(dir.path());
    common::postgres::sink_env(&mut env, dir.path(), &revoked, Some(&pg.ca_file));
    let app = Appliance::start(dir.path(), env);
    app.create_payment(21_000, "after-revocation", None);
    app.wait_status(Duration::from_secs(30), "the sink failing", |s| {
        s["sink"]["last_error"].is_string() && s["sink"]["connected"] == false
    });

    common::appliance::write_private(
        &dir.path().join("supabase-url"),
        &format!("{}\n", pg.url(Some("verify-full"))),
    );
    let pid = app.pid().unwrap();
    let status = std::process::Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    app.wait_status(Duration::from_secs(30), "the sink connected", |s| {
        s["sink"]["connected"] == true
    });
    common::postgres::wait_mirrored(&app, &pg, Duration::from_secs(30), "after SIGHUP");
    assert_eq!(app.pid(), Some(pid), "no restart");
    let (rc, out, err) = app.cli(&["--json", "audit", "--action", "sink.reload"]);
    assert_eq!(rc, 0, "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["entries"][0]["action"], "sink.reload", "{v}");
}

/// Runs `openssl` with `stdin`; returns its standard output.
fn openssl(args: &[&str], stdin: &[u8]) -> String {
    use std::process::{Command, Stdio};
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run openssl (Debian package openssl)");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().expect("openssl output");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn https_serves_the_certificate_whose_fingerprint_was_printed() {
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("https.pem");
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "").unwrap();
    let out = std::process::Command::new(common::appliance::binary())
        .arg("--config")
        .arg(&config)
        .args(["--json", "tls", "generate", "--name", "pay.lan", "--out"])
        .arg(&pem)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let fp = v["sha256_fingerprint"].as_str().unwrap().to_owned();
    assert_eq!(v["names"], json!(["localhost", "127.0.0.1", "pay.lan"]));
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&pem).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the file holds the private key");
    }

    let mut env = offline_env(dir.path());
    env.push((
        "SNAKKAZ_PAY_TLS_CERT_FILE".into(),
        pem.display().to_string(),
    ));
    let app = Appliance::start(dir.path(), env);
    assert!(app.log().contains(&fp), "the daemon names its fingerprint");

    // What an independent client (openssl) sees is the certificate that was printed.
    let chain = openssl(
        &[
            "s_client",
            "-connect",
            &app.addr,
            "-servername",
            "localhost",
        ],
        b"",
    );
    let seen = openssl(
        &["x509", "-noout", "-fingerprint", "-sha256"],
        chain.as_bytes(),
    );
    let seen = seen.trim().rsplit('=').next().unwrap().to_ascii_uppercase();
    assert_eq!(seen, fp, "openssl saw {seen}");

    let answer = openssl(
        &["s_client", "-quiet", "-connect", &app.addr],
        format!(
            "GET /healthz HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            app.addr
        )
        .as_bytes(),
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // No plain HTTP on the HTTPS port.
    let mut s = TcpStream::connect(&app.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    assert!(
        !String::from_utf8_lossy(&raw).contains("200"),
        "plain HTTP answered"
    );

    // The CLI talks to its daemon over HTTPS, trusting exactly that certificate.
    let (rc, out, err) = app.cli(&["--json", "audit", "--action", "config."]);
    assert_eq!(rc, 0, "{out}{err}");
}

#[test]
fn local_commands_refuse_a_wrong_database_path() {
    // A typo in ELECTRUM_WALLET_PATH must not create (and lock or unlock) a stray database.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "").unwrap();
    let wrong = dir.path().join("typo.redb");
    for args in [&["unlock"][..], &["lockdown", "--reason", "x"]] {
        let out = std::process::Command::new(common::appliance::binary())
            .arg("--config")
            .arg(&config)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(offline_env(dir.path()))
            .env("ELECTRUM_WALLET_PATH", &wrong)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(err.contains("no database at"), "{err}");
        assert!(!wrong.exists());
    }
}

/// One POST to the Electrum-compatible JSON-RPC with Basic auth; (status, body).
fn electrum_rpc_post(addr: &str, user: &str, password: &str, body: &str) -> (u16, String) {
    use base64::Engine as _;
    use std::io::{Read, Write};
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST / HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Basic {auth}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    let _ = s.read_to_string(&mut raw);
    let code = raw
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, raw.split("\r\n\r\n").nth(1).unwrap_or("").to_owned())
}

#[test]
fn lockdown_disables_the_electrum_compatible_rpc() {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("rpc-password");
    common::appliance::write_private(&pw, "rpc-password-0123456789");
    let mut env = offline_env(dir.path());
    env.push((
        "SNAKKAZ_PAY_ELECTRUM_RPC_LISTEN".into(),
        "127.0.0.1:0".into(),
    ));
    env.push(("SNAKKAZ_PAY_ELECTRUM_RPC_USER".into(), "user".into()));
    env.push((
        "SNAKKAZ_PAY_ELECTRUM_RPC_PASSWORD_FILE".into(),
        pw.display().to_string(),
    ));
    let app = Appliance::start(dir.path(), env);
    let addr = common::wait_until(Duration::from_secs(10), "the RPC address", || {
        app.log()
            .lines()
            .find(|l| l.contains("Electrum JSON-RPC serving"))
            .and_then(|l| l.split("listen=").nth(1))
            .map(|a| a.split_whitespace().next().unwrap().to_owned())
    });
    let version = r#"{"id": 1, "method": "version", "params": []}"#;
    let (code, _) = electrum_rpc_post(&addr, "user", "rpc-password-0123456789", version);
    assert_eq!(code, 200);

    let lock = req_json(&app, "/api/admin/lockdown", r#"{"reason": "drill"}"#);
    assert_eq!(lock, 200);
    let (code, body) = electrum_rpc_post(&addr, "user", "rpc-password-0123456789", version);
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("locked down"), "{body}");
}

fn req_json(app: &Appliance, path: &str, body: &str) -> u16 {
    app.request("POST", path, Some(ADMIN_TOKEN), Some(body.as_bytes()))
        .0
}
