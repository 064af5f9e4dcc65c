//! Runs ElectrumX (from the devnet virtualenv) in front of the devnet.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::error::Error;
use crate::tls::CertFiles;

/// The launcher that patches ElectrumX before running it (see the file's header).
const LAUNCHER: &str = include_str!("electrumx_launcher.py");
/// How often we look for the ports file or a dead child.
const POLL: Duration = Duration::from_millis(50);
/// How long a graceful stop may take before the process is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// How to run ElectrumX.
#[derive(Debug, Clone)]
pub struct Config {
    /// The virtualenv holding `e-x` and `plyvel`.
    pub venv: PathBuf,
    /// State directory: DB, log, ports file and launcher go here.
    pub dir: PathBuf,
    /// The devnet's RPC URL with credentials.
    pub daemon_url: String,
    /// Certificate and key of the SSL service.
    pub certs: CertFiles,
    /// TCP port to bind, 0 for any.
    pub tcp_port: u16,
    /// SSL port to bind, 0 for any.
    pub ssl_port: u16,
    /// Keep ElectrumX's default polling and padding (for benchmarks).
    pub realistic: bool,
    /// Exit when the spawning process dies (tests); off for `scripts/devnet up`.
    pub watch_parent: bool,
    /// ElectrumX's session cost limits. `Default` keeps ElectrumX's own defaults, as
    /// public and most private servers run; `Unlimited` turns throttling off and must be
    /// asked for explicitly by a test that says why.
    pub cost_limits: CostLimits,
}

/// ElectrumX's per-session resource limits (`COST_SOFT_LIMIT`, `COST_HARD_LIMIT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CostLimits {
    /// ElectrumX 2.0's defaults (soft 1,000, hard 10,000): what real servers run.
    #[default]
    Default,
    /// No throttling, no disconnection for cost (`0`/`0`).
    Unlimited,
    /// Explicit soft and hard limits.
    Custom {
        /// `COST_SOFT_LIMIT`.
        soft: u32,
        /// `COST_HARD_LIMIT`.
        hard: u32,
    },
}

impl Config {
    /// ElectrumX's log file.
    pub fn log(&self) -> PathBuf {
        self.dir.join("electrumx.log")
    }

    fn ports_file(&self) -> PathBuf {
        self.dir.join("electrumx.ports")
    }
}

/// The ports ElectrumX really listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    /// Plain TCP.
    pub tcp: u16,
    /// TLS.
    pub ssl: u16,
}

/// A running ElectrumX; dropping it kills the process unless detached.
pub struct ElectrumX {
    child: Option<Child>,
    /// Where it listens.
    pub ports: Ports,
    log: PathBuf,
}

/// The last `lines` lines of a log file (for error messages).
pub fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// ElectrumX refuses port 0 in `SERVICES`: the launcher reads ports 1 and 2 (never
/// ours to bind) as "any free port".
fn services(tcp: u16, ssl: u16) -> String {
    let tcp = if tcp == 0 { 1 } else { tcp };
    let ssl = if ssl == 0 { 2 } else { ssl };
    format!("tcp://127.0.0.1:{tcp},ssl://127.0.0.1:{ssl}")
}

impl ElectrumX {
    /// Starts ElectrumX and waits until its services listen (which it only does once
    /// it has caught up with the devnet), at most `timeout`.
    pub fn spawn(cfg: &Config, timeout: Duration) -> Result<ElectrumX, Error> {
        let db = cfg.dir.join("electrumx-db");
        fs::create_dir_all(&db).map_err(Error::io(format!("create {}", db.display())))?;
        let launcher = cfg.dir.join("electrumx_launcher.py");
        fs::write(&launcher, LAUNCHER)
            .map_err(Error::io(format!("write {}", launcher.display())))?;
        let ports_file = cfg.ports_file();
        match fs::remove_file(&ports_file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(format!("remove {}", ports_file.display()))(e)),
        }
        let log = cfg.log();
        let log_file = File::options()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(Error::io(format!("open {}", log.display())))?;
        let log_err = log_file
            .try_clone()
            .map_err(Error::io("clone log handle"))?;
        let python = cfg.venv.join("bin").join("python");
        if !python.exists() {
            return Err(Error::Usage(format!(
                "no ElectrumX virtualenv at {} (run `scripts/devnet install`)",
                cfg.venv.display()
            )));
        }
        let mut cmd = Command::new(&python);
        cmd.arg(&launcher)
            .env("COIN", "Bitcoin")
            .env("NET", "regtest")
            .env("DB_ENGINE", "leveldb")
            .env("DB_DIRECTORY", &db)
            .env("DAEMON_URL", &cfg.daemon_url)
            .env("SERVICES", services(cfg.tcp_port, cfg.ssl_port))
            .env("SSL_CERTFILE", &cfg.certs.cert)
            .env("SSL_KEYFILE", &cfg.certs.key)
            .env("PEER_DISCOVERY", "off")
            .env("PEER_ANNOUNCE", "")
            .env("ALLOW_ROOT", "1")
            .env("PYTHONUNBUFFERED", "1")
            .env("DEVNET_PORTS_FILE", &ports_file)
            .env_remove("DEVNET_PARENT_PID")
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err);
        match cfg.cost_limits {
            CostLimits::Default => {
                cmd.env_remove("COST_SOFT_LIMIT")
                    .env_remove("COST_HARD_LIMIT");
            }
            CostLimits::Unlimited => {
                cmd.env("COST_SOFT_LIMIT", "0").env("COST_HARD_LIMIT", "0");
            }
            CostLimits::Custom { soft, hard } => {
                cmd.env("COST_SOFT_LIMIT", soft.to_string())
                    .env("COST_HARD_LIMIT", hard.to_string());
            }
        }
        if !cfg.realistic {
            cmd.env("DAEMON_POLL_INTERVAL_BLOCKS", "100")
                .env("DAEMON_POLL_INTERVAL_MEMPOOL", "100")
                .env("DEVNET_FAST", "1");
        }
        if cfg.watch_parent {
            cmd.env("DEVNET_PARENT_PID", std::process::id().to_string());
        } else {
            // Its own process group, so a Ctrl-C in the shell that ran `up` spares it.
            std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        }
        let child = cmd
            .spawn()
            .map_err(Error::io(format!("start {}", python.display())))?;
        let mut ex = ElectrumX {
            child: Some(child),
            ports: Ports { tcp: 0, ssl: 0 },
            log,
        };
        ex.ports = ex.wait_ports(&ports_file, timeout)?;
        Ok(ex)
    }

    fn wait_ports(&mut self, ports_file: &Path, timeout: Duration) -> Result<Ports, Error> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(text) = fs::read_to_string(ports_file) {
                let v: Value = serde_json::from_str(&text).map_err(|e| Error::Protocol {
                    from: ports_file.display().to_string(),
                    detail: e.to_string(),
                })?;
                let port = |k: &str| {
                    v.get(k)
                        .and_then(Value::as_u64)
                        .and_then(|p| u16::try_from(p).ok())
                };
                if let (Some(tcp), Some(ssl)) = (port("tcp"), port("ssl")) {
                    return Ok(Ports { tcp, ssl });
                }
                return Err(Error::ProcessDied {
                    what: "ElectrumX".into(),
                    status: format!("listening on {text} only"),
                    log: self.log.clone(),
                    tail: tail(&self.log, 40),
                });
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(Error::ProcessDied {
                    what: "ElectrumX".into(),
                    status: status.to_string(),
                    log: self.log.clone(),
                    tail: tail(&self.log, 40),
                });
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    what: format!(
                        "ElectrumX to listen; last lines of {}:\n{}",
                        self.log.display(),
                        tail(&self.log, 40)
                    ),
                    secs: timeout.as_secs(),
                });
            }
            std::thread::sleep(POLL);
        }
    }

    /// The process id, if still owned.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Leaves the process running after this value is dropped; returns its pid.
    pub fn detach(mut self) -> Option<u32> {
        self.child.take().map(|c| c.id())
    }

    /// Stops ElectrumX gracefully (SIGTERM, so its DB is flushed and can be reopened),
    /// killing it if it takes longer than a few seconds.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let terminated = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        let deadline = Instant::now() + STOP_GRACE;
        while terminated && Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(POLL);
        }
        // Already gone or deaf to SIGTERM: kill and reap; errors mean it is gone.
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for ElectrumX {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Nothing to keep: kill outright rather than wait for a graceful stop.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
