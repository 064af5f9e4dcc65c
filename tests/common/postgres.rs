//! A private PostgreSQL server for one test: Debian's PostgreSQL 15 binaries, a fresh
//! cluster in a temporary directory, TLS with a throw-away CA, SCRAM passwords, on a
//! loopback port it reports back.
//!
//! ```ignore
//! let mut pg = Postgres::start();
//! let url = pg.url(Some("verify-full"));        // postgresql://postgres:PW@127.0.0.1:PORT/postgres?...
//! pg.query_json("SELECT count(*) FROM electrum_payments");
//! pg.stop(); pg.start_again();                  // an outage, same port and data
//! ```
//!
//! Needs the server binaries: `apt-get install -y postgresql` (Debian's package; the
//! harness looks in /usr/lib/postgresql/*/bin). initdb and postgres refuse to run as
//! root, so as root they run as the `postgres` user the package creates.
//!
//! Port: postgres cannot pick a free port itself (`-p 0` is not supported) and binding a
//! port here to hand it over would race, so the harness tries random ports in
//! 20000..60000 and starts again on another when postgres reports it could not bind,
//! at most `PORT_ATTEMPTS` times.

#![allow(dead_code)] // Each test binary uses a different part of the harness.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

/// Ports tried before giving up.
const PORT_ATTEMPTS: usize = 8;
/// How long postgres may take to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a fast shutdown may take.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// A running (or stopped) private PostgreSQL server.
pub struct Postgres {
    child: Option<Child>,
    bin: PathBuf,
    data: PathBuf,
    sock: PathBuf,
    log: PathBuf,
    /// The CA that signed the server's certificate (for SNAKKAZ_PAY_SUPABASE_CA_FILE).
    pub ca_file: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    /// The loopback port it listens on.
    pub port: u16,
    /// The `postgres` superuser's password.
    pub password: String,
    owner: Option<(u32, u32)>,
    dir: TempDir,
}

/// The directory of the server binaries, or a panic saying how to install them.
pub fn bin_dir() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|b| b.join("postgres").exists() && b.join("initdb").exists())
        .collect();
    // Prefer 15 (Supabase's major version), else the newest installed.
    found.sort_by_key(|b| (b.starts_with("/usr/lib/postgresql/15"), b.clone()));
    found.pop().unwrap_or_else(|| {
        panic!("PostgreSQL server binaries not found in /usr/lib/postgresql/*/bin; install them with `apt-get install -y postgresql`")
    })
}

fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).expect("OS random numbers");
    u64::from_le_bytes(b)
}

fn id_of(flag: &str) -> u32 {
    let out = Command::new("id")
        .args([flag, "postgres"])
        .output()
        .expect("run id");
    assert!(
        out.status.success(),
        "no `postgres` user: install Debian's postgresql package"
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("numeric id")
}

fn chown_tree(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).expect("chown");
    if path.is_dir() {
        for e in std::fs::read_dir(path).expect("read dir") {
            chown_tree(&e.expect("dir entry").path(), uid, gid);
        }
    }
}

impl Postgres {
    /// Creates a cluster and starts it with TLS; panics with the server log on failure.
    pub fn start() -> Postgres {
        let bin = bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("snakkaz-pg-")
            .tempdir()
            .expect("temp dir");
        let root = dir.path().to_owned();
        let certs = devnet::tls::generate(&root).expect("generate certificates");
        let owner = (Command::new("id")
            .arg("-u")
            .output()
            .map(|o| o.stdout.starts_with(b"0\n"))
            .unwrap_or(false))
        .then(|| (id_of("-u"), id_of("-g")));
        let password = format!("pgpw-{:016x}", random_u64());
        let pwfile = root.join("pwfile");
        std::fs::write(&pwfile, &password).expect("write pwfile");
        let sock = root.join("sock");
        std::fs::create_dir(&sock).expect("socket dir");
        if let Some((uid, gid)) = owner {
            chown_tree(&root, uid, gid);
        }
        let mut pg = Postgres {
            child: None,
            data: root.join("data"),
            sock,
            log: root.join("postgres.log"),
            ca_file: certs.ca,
            cert: certs.cert,
            key: certs.key,
            port: 0,
            password,
            owner,
            bin,
            dir,
        };
        std::fs::set_permissions(&pg.key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .expect("key mode");
        let out = pg
            .command("initdb")
            .arg("-D")
            .arg(&pg.data)
            .args([
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // TLS only: there is no `host` line, so a plain-text connection is refused.
        std::fs::write(
            pg.data.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\nhostssl all all ::1/128 scram-sha-256\n",
        )
        .expect("write pg_hba.conf");
        for _ in 0..PORT_ATTEMPTS {
            pg.port = 20000 + (random_u64() % 40000) as u16;
            match pg.spawn() {
                Ok(()) => return pg,
                Err(PortTaken) => continue,
            }
        }
        panic!(
            "postgres could not bind any of {PORT_ATTEMPTS} random ports:\n{}",
            pg.log_tail()
        );
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(self.bin.join(program));
        c.current_dir(self.dir.path());
        if let Some((uid, gid)) = self.owner {
            c.uid(uid).gid(gid);
        }
        c
    }

    fn spawn(&mut self) -> Result<(), PortTaken> {
        // Each attempt appends to one log; only what this attempt wrote is read.
        let offset = std::fs::metadata(&self.log).map_or(0, |m| m.len());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open postgres log");
        if let Some((uid, gid)) = self.owner {
            std::os::unix::fs::chown(&self.log, Some(uid), Some(gid)).expect("chown log");
        }
        let child = self
            .command("postgres")
            .arg("-D")
            .arg(&self.data)
            .args(["-p", &self.port.to_string(), "-h", "127.0.0.1", "-k"])
            .arg(&self.sock)
            .args([
                "-c",
                "ssl=on",
                "-c",
                &format!("ssl_cert_file={}", self.cert.display()),
            ])
            .args(["-c", &format!("ssl_key_file={}", self.key.display())])
            // A test database needs no durability; this keeps commits cheap on a shared machine.
            .args([
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("dup log")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn postgres");
        self.child = Some(child);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let text = std::fs::read(&self.log).unwrap_or_default();
            let fresh = String::from_utf8_lossy(&text[offset as usize..]).into_owned();
            if fresh.contains("database system is ready to accept connections") {
                return Ok(());
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().expect("wait postgres"))
                .is_some();
            if exited {
                self.child = None;
                if fresh.contains("could not bind") || fresh.contains("Address already in use") {
                    return Err(PortTaken);
                }
                panic!("postgres exited at start:\n{}", self.log_tail());
            }
            assert!(
                Instant::now() < deadline,
                "postgres not ready within {READY_TIMEOUT:?}:\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `postgresql://postgres:PASSWORD@127.0.0.1:PORT/postgres`, with `sslmode` if given.
    pub fn url(&self, sslmode: Option<&str>) -> String {
        let mut u = format!(
            "postgresql://postgres:{}@127.0.0.1:{}/postgres",
            self.password, self.port
        );
        if let Some(m) = sslmode {
            u.push_str("?sslmode=");
            u.push_str(m);
        }
        u
    }

    /// Runs SQL as the superuser over the Unix socket; panics on error.
    pub fn exec(&self, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args([
                "-X",
                "-A",
                "-t",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-h",
            ])
            .arg(&self.sock)
            .args(["-p", &self.port.to_string(), "-c", sql])
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql {sql:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// The rows of a query as JSON objects.
    pub fn query_json(&self, sql: &str) -> Vec<Value> {
        let text = self.exec(&format!(
            "SELECT coalesce(json_agg(q), '[]') FROM ({sql}) q"
        ));
        match serde_json::from_str(&text).expect("psql printed JSON") {
            Value::Array(rows) => rows,
            other => panic!("expected an array, got {other}"),
        }
    }

    /// Holds an exclusive lock on `table` from another session until the returned guard
    /// is released; writers to the table block meanwhile (a batch "in flight").
    pub fn lock_table(&self, table: &str) -> TableLock<'_> {
        let child = Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-U", "postgres", "-d", "postgres", "-h"])
            .arg(&self.sock)
            .args(["-p", &self.port.to_string(), "-c"])
            .arg(format!(
                "BEGIN; LOCK TABLE {table} IN EXCLUSIVE MODE; SELECT pg_sleep(120); COMMIT;"
            ))
            .env("PGAPPNAME", "test-locker")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn psql");
        let lock = TableLock { pg: self, child };
        self.wait_sql(
            Duration::from_secs(10),
            "the table lock",
            "SELECT count(*) > 0 FROM pg_stat_activity WHERE application_name = 'test-locker' AND query LIKE '%pg_sleep%' AND state = 'active'",
        );
        lock
    }

    /// Polls until a boolean query returns true.
    pub fn wait_sql(&self, timeout: Duration, what: &str, sql: &str) {
        let deadline = Instant::now() + timeout;
        while self.exec(sql) != "t" {
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the server runs.
    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    /// Fast shutdown (SIGINT): sessions are cut, the port closes; the data stays.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        signal(&child, "-INT");
        let deadline = Instant::now() + STOP_TIMEOUT;
        while child.try_wait().expect("wait postgres").is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "postgres did not stop within {STOP_TIMEOUT:?}:\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the stopped server again on the same port with the same data.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "postgres is already running");
        if self.spawn().is_err() {
            panic!(
                "port {} was taken while postgres was stopped:\n{}",
                self.port,
                self.log_tail()
            );
        }
    }

    /// The last lines of the server log.
    pub fn log_tail(&self) -> String {
        let s = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

/// An exclusive table lock held by another session; released on drop.
pub struct TableLock<'a> {
    pg: &'a Postgres,
    child: Child,
}

impl Drop for TableLock<'_> {
    fn drop(&mut self) {
        // Ending the session rolls its transaction back and frees the lock at once.
        self.pg.exec("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'test-locker'");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Postgres reported that its port was in use.
struct PortTaken;

fn signal(child: &Child, sig: &str) {
    let _ = Command::new("kill")
        .arg(sig)
        .arg(child.id().to_string())
        .status();
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Immediate shutdown: the postmaster takes its backends down with it.
            signal(&child, "-QUIT");
            let deadline = Instant::now() + Duration::from_secs(5);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Adds the sink's settings to an appliance environment: the connection string goes to
/// a 0600 file in `dir`, as in production.
pub fn sink_env(env: &mut Vec<(String, String)>, dir: &Path, url: &str, ca_file: Option<&Path>) {
    use std::os::unix::fs::PermissionsExt;
    let file = dir.join("supabase-url");
    std::fs::write(&file, format!("{url}\n")).expect("write url file");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("url file mode");
    env.retain(|(k, _)| !k.starts_with("SNAKKAZ_PAY_SUPABASE_"));
    env.push((
        "SNAKKAZ_PAY_SUPABASE_DB_URL_FILE".into(),
        file.display().to_string(),
    ));
    if let Some(ca) = ca_file {
        env.push((
            "SNAKKAZ_PAY_SUPABASE_CA_FILE".into(),
            ca.display().to_string(),
        ));
    }
}

/// The `electrum_payments` rows in the API's shape (times as RFC 3339 UTC), by id.
pub const ROWS_AS_API: &str = "SELECT id, reference, description, bitcoin_address AS address, amount_sat, \
    received_sat, status, confirmations, txids, flags, \
    to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS created_at, \
    to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS updated_at, \
    to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS expires_at, \
    to_char(first_seen_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS first_seen_at, \
    to_char(confirmed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS confirmed_at, \
    version FROM electrum_payments ORDER BY id";

/// Fields compared between the API's payments and the rows.
const FIELDS: [&str; 16] = [
    "id",
    "reference",
    "description",
    "address",
    "amount_sat",
    "received_sat",
    "status",
    "confirmations",
    "txids",
    "flags",
    "created_at",
    "updated_at",
    "expires_at",
    "first_seen_at",
    "confirmed_at",
    "version",
];

/// What differs between the API's view of every payment and `electrum_payments`, field
/// by field; `None` when they are equal (same ids, same values).
pub fn mirror_diff(app: &super::appliance::Appliance, pg: &Postgres) -> Option<String> {
    let (code, page) = app.get("/api/payments?limit=500");
    assert_eq!(code, 200, "{page}");
    let pick = |v: &Value| -> Value {
        FIELDS
            .iter()
            .map(|f| (f.to_string(), v.get(*f).cloned().unwrap_or(Value::Null)))
            .collect()
    };
    let mut api: Vec<Value> = page["payments"]
        .as_array()
        .expect("payments")
        .iter()
        .map(pick)
        .collect();
    api.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    let rows: Vec<Value> = pg.query_json(ROWS_AS_API).iter().map(pick).collect();
    if api == rows {
        return None;
    }
    let mut out = format!("{} payments in the API, {} rows\n", api.len(), rows.len());
    for a in &api {
        match rows.iter().find(|r| r["id"] == a["id"]) {
            None => out.push_str(&format!("missing row {}\n", a["id"])),
            Some(r) => {
                for f in FIELDS {
                    if a[f] != r[f] {
                        out.push_str(&format!("{} {f}: api {} row {}\n", a["id"], a[f], r[f]));
                    }
                }
            }
        }
    }
    for r in rows
        .iter()
        .filter(|r| !api.iter().any(|a| a["id"] == r["id"]))
    {
        out.push_str(&format!("extra row {}\n", r["id"]));
    }
    Some(out)
}

/// Polls until the mirror equals the API's view; returns how long that took.
pub fn wait_mirrored(
    app: &super::appliance::Appliance,
    pg: &Postgres,
    timeout: Duration,
    what: &str,
) -> Duration {
    let start = Instant::now();
    let mut last = None;
    while start.elapsed() < timeout {
        // Quiet outbox first: the API may be a step ahead of a batch in flight.
        let (_, s) = app.get("/api/status");
        if s["sink"]["pending"] == 0 {
            last = mirror_diff(app, pg);
            if last.is_none() {
                return start.elapsed();
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let (_, s) = app.get("/api/status");
    panic!(
        "mirror not equal to the API after {timeout:?} ({what}):\n{}\nsink status: {:#}\ndaemon log:\n{}",
        last.unwrap_or_else(|| "outbox never emptied".into()),
        s["sink"],
        app.log_tail()
    );
}
