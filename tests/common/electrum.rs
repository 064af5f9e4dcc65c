//! The real Electrum wallet (Debian's `electrum`, 4.3.x) as a test peer: offline commands
//! in a private `-D` directory, and an online daemon on the devnet's ElectrumX.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

/// Bound on one Electrum command (it starts a Python interpreter each time).
pub const ELECTRUM_TIMEOUT: Duration = Duration::from_secs(120);
/// The password of the encrypted test wallets.
const PASSWORD: &str = "correct horse battery staple";

/// One Electrum data directory (`-D`), on regtest.
pub struct Electrum {
    /// The `-D` directory.
    pub dir: tempfile::TempDir,
}

impl Electrum {
    pub fn new() -> Electrum {
        Electrum {
            dir: tempfile::Builder::new()
                .prefix("electrum-")
                .tempdir()
                .unwrap(),
        }
    }

    /// Runs `electrum --regtest -D DIR [--offline] ARGS`; panics with its output on failure.
    pub fn run(&self, offline: bool, args: &[&str]) -> String {
        self.run_with_input(offline, args, None)
    }

    /// `run` with `input` on stdin (Electrum reads an encrypted wallet's password there).
    pub fn run_with_input(&self, offline: bool, args: &[&str], input: Option<&str>) -> String {
        let mut cmd = Command::new("electrum");
        cmd.arg("--regtest").arg("-D").arg(self.dir.path());
        if offline {
            cmd.arg("--offline");
        }
        // UTC as on the appliance: Electrum prints dates in its process's time zone.
        cmd.args(args).env("HOME", self.dir.path()).env("TZ", "UTC");
        let out = run_bounded(cmd, ELECTRUM_TIMEOUT, input);
        assert!(
            out.status.success(),
            "electrum {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    pub fn offline(&self, args: &[&str]) -> String {
        self.run(true, args)
    }

    pub fn json(&self, offline: bool, args: &[&str]) -> Value {
        let s = self.run(offline, args);
        serde_json::from_str(&s).unwrap_or_else(|e| panic!("electrum {args:?}: {e}: {s}"))
    }

    pub fn addresses(&self, which: &str) -> Vec<String> {
        serde_json::from_value(self.json(true, &["listaddresses", which])).unwrap()
    }

    pub fn wallet_file(&self) -> PathBuf {
        self.dir.path().join("regtest/wallets/default_wallet")
    }
}

/// Runs `cmd` to completion, killing it after `timeout`.
pub fn run_bounded(
    mut cmd: Command,
    timeout: Duration,
    input: Option<&str>,
) -> std::process::Output {
    use std::io::Write as _;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn (is Debian's `electrum` package installed? .ci/run installs it)");
    let mut stdin = child.stdin.take().expect("stdin");
    if let Some(text) = input {
        stdin
            .write_all(format!("{text}\n").as_bytes())
            .expect("write stdin");
    }
    drop(stdin);
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let out = child.wait_with_output();
        let _receiver_may_be_gone = tx.send(());
        out
    });
    if rx.recv_timeout(timeout).is_err() {
        // Still running: end it (by its own pid) so the test fails instead of hanging.
        let _already_gone = Command::new("kill").arg("-9").arg(pid.to_string()).status();
        panic!("{cmd:?} did not finish within {timeout:?}");
    }
    waiter.join().unwrap().expect("wait for child")
}

/// Stops an online Electrum daemon when dropped, so a failing test leaves none behind.
pub struct OnlineDaemon<'a>(pub &'a Electrum);

impl Drop for OnlineDaemon<'_> {
    fn drop(&mut self) {
        let mut cmd = Command::new("electrum");
        cmd.arg("--regtest")
            .arg("-D")
            .arg(self.0.dir.path())
            .arg("stop")
            .env("HOME", self.0.dir.path());
        let _stopped_or_already_gone = run_bounded(cmd, ELECTRUM_TIMEOUT, None);
    }
}
