//! `scripts/devnet up|down|status`: the devnet and ElectrumX as background
//! processes, described by files in a state directory.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::client::RpcClient;
use crate::electrumx::{self, ElectrumX};
use crate::error::Error;
use crate::{probe, tls};

/// Blocks mined at start: 101 makes the first coinbase spendable; a few more give
/// the faucet several mature coins so payments need not chain on unconfirmed change.
pub const INITIAL_BLOCKS: u32 = 120;
/// How long each start-up step may take.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(50);
/// How long `down` waits for a process to exit before killing it.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Files of a state directory.
pub struct StateDir(pub PathBuf);

impl StateDir {
    /// `KEY=VALUE` lines describing the running stack.
    pub fn env(&self) -> PathBuf {
        self.0.join("env")
    }
    /// Pids of the processes `up` started.
    pub fn pids(&self) -> PathBuf {
        self.0.join("pids")
    }
    /// Written by `devnet serve` once it listens: its RPC URL.
    pub fn rpc_url_file(&self) -> PathBuf {
        self.0.join("devnet.url")
    }
    /// The devnet's own log.
    pub fn devnet_log(&self) -> PathBuf {
        self.0.join("devnet.log")
    }

    /// A client for the running devnet, from the env file.
    pub fn client(&self) -> Result<RpcClient, Error> {
        let url = self.env_value("DEVNET_RPC_URL")?;
        RpcClient::new(&url)
    }

    /// One value of the env file.
    pub fn env_value(&self, key: &str) -> Result<String, Error> {
        let text = fs::read_to_string(self.env()).map_err(|_| {
            Error::Usage(format!(
                "nothing running in {} (no env file); run `scripts/devnet up`",
                self.0.display()
            ))
        })?;
        text.lines()
            .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
            .map(str::to_owned)
            .ok_or_else(|| Error::Usage(format!("{} has no {key}", self.env().display())))
    }
}

fn write_atomic(path: &Path, text: &str) -> Result<(), Error> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, text).map_err(Error::io(format!("write {}", tmp.display())))?;
    fs::rename(&tmp, path).map_err(Error::io(format!("rename to {}", path.display())))
}

/// Writes the file `devnet serve` uses to report its URL.
pub fn report_rpc_url(dir: &StateDir, url: &str) -> Result<(), Error> {
    write_atomic(&dir.rpc_url_file(), url)
}

fn alive(pid: u32) -> bool {
    Command::new("kill")
        .args(["-0", &pid.to_string()])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn signal(pid: u32, sig: &str) {
    // A failure means the process is already gone, which is what we want.
    let _ = Command::new("kill")
        .args([sig, &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

fn read_pids(dir: &StateDir) -> Vec<(String, u32)> {
    fs::read_to_string(dir.pids())
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (name, pid) = l.split_once(' ')?;
            Some((name.to_string(), pid.trim().parse().ok()?))
        })
        .collect()
}

/// Starts the devnet and ElectrumX in the background; returns the env lines.
/// On failure, stops whatever it had started.
pub fn up(dir: &StateDir, venv: &Path, realistic: bool, unlimited: bool) -> Result<String, Error> {
    let result = start(dir, venv, realistic, unlimited);
    if result.is_err() && !matches!(result, Err(Error::Usage(_))) {
        // Best effort: the error being reported matters more than a cleanup failure.
        let _ = down(dir);
    }
    result
}

fn start(dir: &StateDir, venv: &Path, realistic: bool, unlimited: bool) -> Result<String, Error> {
    fs::create_dir_all(&dir.0).map_err(Error::io(format!("create {}", dir.0.display())))?;
    // The env file's paths must work from any directory.
    let dir = &StateDir(
        fs::canonicalize(&dir.0).map_err(Error::io(format!("resolve {}", dir.0.display())))?,
    );
    let running: Vec<_> = read_pids(dir)
        .into_iter()
        .filter(|(_, pid)| alive(*pid))
        .collect();
    if !running.is_empty() {
        return Err(Error::Usage(format!(
            "already running in {} ({running:?}); run `scripts/devnet down` first",
            dir.0.display()
        )));
    }
    for stale in [dir.env(), dir.pids(), dir.rpc_url_file()] {
        let _ = fs::remove_file(stale);
    }
    let db = dir.0.join("electrumx-db");
    if db.exists() {
        fs::remove_dir_all(&db).map_err(Error::io(format!("remove {}", db.display())))?;
    }

    let exe = std::env::current_exe().map_err(Error::io("find the devnet executable"))?;
    let log = fs::File::create(dir.devnet_log()).map_err(Error::io("create devnet.log"))?;
    let log_err = log.try_clone().map_err(Error::io("clone log handle"))?;
    let mut cmd = Command::new(exe);
    cmd.arg("serve")
        .arg("--dir")
        .arg(&dir.0)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err);
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd.spawn().map_err(Error::io("start devnet serve"))?;
    let devnet_pid = child.id();
    let mut pids = format!("devnet {devnet_pid}\n");
    write_atomic(&dir.pids(), &pids)?;

    let deadline = Instant::now() + START_TIMEOUT;
    let url = loop {
        if let Ok(url) = fs::read_to_string(dir.rpc_url_file()) {
            break url;
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(Error::ProcessDied {
                what: "devnet serve".into(),
                status: status.to_string(),
                log: dir.devnet_log(),
                tail: electrumx::tail(&dir.devnet_log(), 20),
            });
        }
        if Instant::now() >= deadline {
            return Err(Error::Timeout {
                what: "devnet serve to listen".into(),
                secs: START_TIMEOUT.as_secs(),
            });
        }
        std::thread::sleep(POLL);
    };
    let rpc = RpcClient::new(&url)?;
    let height = rpc.call_u64("devnet_mine", json!([INITIAL_BLOCKS]))?;

    let certs = tls::generate(&dir.0)?;
    let cfg = electrumx::Config {
        venv: venv.to_path_buf(),
        dir: dir.0.clone(),
        daemon_url: url.clone(),
        certs: certs.clone(),
        tcp_port: 0,
        ssl_port: 0,
        realistic,
        watch_parent: false,
        cost_limits: if unlimited {
            electrumx::CostLimits::Unlimited
        } else {
            electrumx::CostLimits::Default
        },
    };
    let ex = ElectrumX::spawn(&cfg, START_TIMEOUT)?;
    let ports = ex.ports;
    if let Some(pid) = ex.detach() {
        pids.push_str(&format!("electrumx {pid}\n"));
        write_atomic(&dir.pids(), &pids)?;
    }
    probe::wait_height(
        SocketAddr::from(([127, 0, 0, 1], ports.tcp)),
        height,
        START_TIMEOUT,
    )?;

    let env = format!(
        "ELECTRUM_HOST=127.0.0.1\nELECTRUM_PORT={}\nELECTRUM_TLS_PORT={}\nELECTRUM_CA_FILE={}\nDEVNET_RPC_URL={url}\n",
        ports.tcp,
        ports.ssl,
        certs.ca.display()
    );
    write_atomic(&dir.env(), &env)?;
    Ok(env)
}

/// Stops every process `up` started (ElectrumX first, so it does not log the devnet
/// vanishing); returns what was stopped.
pub fn down(dir: &StateDir) -> Result<Vec<String>, Error> {
    let mut pids = read_pids(dir);
    if pids.is_empty() {
        return Err(Error::Usage(format!(
            "nothing running in {} (no pids file)",
            dir.0.display()
        )));
    }
    pids.reverse();
    let mut stopped = Vec::new();
    for (name, pid) in pids {
        if !alive(pid) {
            continue;
        }
        signal(pid, "-TERM");
        let deadline = Instant::now() + STOP_TIMEOUT;
        while alive(pid) && Instant::now() < deadline {
            std::thread::sleep(POLL);
        }
        if alive(pid) {
            signal(pid, "-KILL");
        }
        stopped.push(format!("{name} {pid}"));
    }
    for file in [dir.pids(), dir.env(), dir.rpc_url_file()] {
        let _ = fs::remove_file(file);
    }
    Ok(stopped)
}

/// A human summary of what runs in `dir`.
pub fn status(dir: &StateDir) -> Result<String, Error> {
    let rpc = dir.client()?;
    let s = rpc.call("devnet_status", json!([]))?;
    let mut out = format!(
        "devnet: height {} tip {} mempool {} fee {} sat/vB faucet {} sat ({})\n",
        s["height"],
        s["tip"],
        s["mempool"],
        s["fee_sat_per_vb"],
        s["faucet_sats"],
        s["faucet_address"]
    );
    let port: u16 = dir.env_value("ELECTRUM_PORT")?.parse().unwrap_or(0);
    match probe::electrum_height(SocketAddr::from(([127, 0, 0, 1], port))) {
        Ok(h) => out.push_str(&format!(
            "electrumx: serving on 127.0.0.1:{port}, height {h}\n"
        )),
        Err(e) => out.push_str(&format!("electrumx: not answering: {e}\n")),
    }
    for (name, pid) in read_pids(dir) {
        out.push_str(&format!(
            "{name}: pid {pid} {}\n",
            if alive(pid) { "running" } else { "gone" }
        ));
    }
    Ok(out)
}
