//! The first hour of a new operator: a clean clone on a machine without the optional
//! packages gets an exact plan (or, not being root, an exact command) before anything is
//! built; `scripts/demo` run twice shows one consistent state; the "try it yourself"
//! commands it prints work as printed.
//!
//! "A machine without the optional packages" is this machine with a PATH holding only
//! the basic tools (a shell, coreutils, git, the Rust toolchain, Python, a C compiler):
//! chromium, promtool, electrum, rclone, age, systemd-analyze, openssl and cargo-nextest
//! are out of sight. The non-root case runs as the `nobody` user (setpriv).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::appliance::{binary, http};
use common::electrum::run_bounded;
use serde_json::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// What a basic Debian machine with Rust has: no optional package of the tests.
const BASIC_TOOLS: &[&str] = &[
    "bash", "env", "sh", "sed", "awk", "sort", "head", "tail", "grep", "cat", "dirname", "id",
    "tr", "od", "mkdir", "rm", "ls", "git", "cc", "flock", "date", "seq", "sleep", "kill",
    "basename", "readlink", "uname", "printf", "cut", "wc", "touch", "chmod",
];
const RUST_TOOLS: &[&str] = &[
    "cargo",
    "rustc",
    "rustup",
    "cargo-fmt",
    "cargo-clippy",
    "rustfmt",
    "clippy-driver",
];

fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(tool))
            .find(|p| p.is_file())
    })
}

/// A directory of links to the basic tools only, to be the whole PATH.
fn basic_path(dir: &Path) -> PathBuf {
    let bin = dir.join("basic-bin");
    std::fs::create_dir_all(&bin).unwrap();
    for tool in BASIC_TOOLS.iter().chain(RUST_TOOLS) {
        if let Some(p) = which(tool) {
            std::os::unix::fs::symlink(p, bin.join(tool)).unwrap();
        }
    }
    // The system Python (a version manager's shim would need its own tools on PATH).
    let python = ["/usr/bin/python3"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .or_else(|| which("python3"))
        .expect("python3");
    std::os::unix::fs::symlink(python, bin.join("python3")).unwrap();
    bin
}

/// A fresh clone of this repository's committed state, readable by everyone.
fn clean_clone(dir: &Path) -> PathBuf {
    let clone = dir.join("snakkaz-pay");
    let out = Command::new("git")
        .args(["clone", "--quiet", "--no-hardlinks", ROOT])
        .arg(&clone)
        .output()
        .expect("git clone");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    clone
}

#[test]
fn a_clean_clone_without_the_optional_packages_gets_an_exact_plan() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let clone = clean_clone(dir.path());
    let bin = basic_path(dir.path());

    let run = |args: &[&str], as_nobody: bool| {
        let program = clone.join(args[0]);
        let mut cmd = if as_nobody {
            let mut c = Command::new(which("setpriv").expect("setpriv (util-linux)"));
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]);
            c.arg(&program);
            c.args(&args[1..]);
            c
        } else {
            let mut c = Command::new(&program);
            c.args(&args[1..]);
            c
        };
        cmd.current_dir(&clone)
            .env_clear()
            .env("PATH", &bin)
            .env("HOME", std::env::var("HOME").unwrap_or_default());
        let started = Instant::now();
        let out = run_bounded(cmd, Duration::from_secs(60), None);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
            started.elapsed(),
        )
    };

    // The plan: one exact command a line, for the Debian packages, nextest and ElectrumX.
    let (code, plan, err, _) = run(&["scripts/install-deps", "--check", "--for", "test"], false);
    assert_eq!(code, 1, "something is missing: {plan}{err}");
    let apt = plan
        .lines()
        .find(|l| {
            l.trim_start()
                .starts_with("apt-get install -y --no-install-recommends")
        })
        .unwrap_or_else(|| panic!("no apt-get line in the plan:\n{plan}"));
    for pkg in [
        "chromium",
        "prometheus",
        "age",
        "rclone",
        "electrum",
        "systemd",
        "openssl",
    ] {
        assert!(
            apt.split_whitespace().any(|w| w == pkg),
            "{pkg} missing from {apt}"
        );
    }
    for pkg in ["build-essential", "python3", "python3-venv", "util-linux"] {
        assert!(
            !apt.split_whitespace().any(|w| w == pkg),
            "{pkg} is there already: {apt}"
        );
    }
    assert!(
        plan.lines()
            .any(|l| l.trim() == "cargo install --locked cargo-nextest"),
        "{plan}"
    );
    let venv_step = format!("{}/scripts/devnet install", clone.display());
    assert!(plan.lines().any(|l| l.trim() == venv_step), "{plan}");

    // The demo needs much less: only the ElectrumX virtualenv here.
    let (code, plan, _, _) = run(&["scripts/install-deps", "--check", "--for", "demo"], false);
    assert_eq!(code, 1);
    let steps: Vec<&str> = plan.lines().skip(1).map(str::trim).collect();
    assert_eq!(steps, [venv_step.as_str()], "{plan}");

    // Not root: the README's test command stops at once, before building anything, with
    // the command to run as root. (Rust is out of reach for `nobody` here too: it is
    // installed under root's home, so the plan also names rustup.)
    let (code, out, err, took) = run(&["scripts/test"], true);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        took < Duration::from_secs(30),
        "stopped at once, not after a build: {took:?}"
    );
    assert!(
        err.contains("sudo apt-get install -y --no-install-recommends"),
        "{err}"
    );
    assert!(
        err.contains("chromium") && err.contains("prometheus"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "sudo {}/scripts/install-deps --for test",
            clone.display()
        )),
        "{err}"
    );
    assert!(
        !out.contains("cargo fmt") && !clone.join("target").exists(),
        "nothing was built: {out}"
    );

    // This machine (set up by .ci/run) has everything: the installer has nothing to do.
    let out = Command::new(format!("{ROOT}/scripts/install-deps"))
        .args(["--check", "--for", "test"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Runs `scripts/demo` (or `scripts/demo stop`) on the built binary, bounded.
fn demo(dir: &Path, args: &[&str]) -> (String, String) {
    let mut cmd = Command::new(format!("{ROOT}/scripts/demo"));
    cmd.args(args)
        .env("DEMO_DIR", dir)
        .env("DEMO_LISTEN", "127.0.0.1:0")
        .env("DEMO_BIN", binary());
    let out = run_bounded(cmd, Duration::from_secs(180), None);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        out.status.success(),
        "scripts/demo {args:?}:\n{stdout}\n{stderr}"
    );
    (stdout, stderr)
}

/// Stops the demo whatever happens to the test.
struct DemoGuard<'a>(&'a Path);

impl Drop for DemoGuard<'_> {
    fn drop(&mut self) {
        let mut cmd = Command::new(format!("{ROOT}/scripts/demo"));
        cmd.arg("stop").env("DEMO_DIR", self.0);
        let _stopped_or_never_started = run_bounded(cmd, Duration::from_secs(60), None);
    }
}

fn page_addr(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("Status page:  http://"))
        .and_then(|rest| rest.strip_suffix('/'))
        .unwrap_or_else(|| panic!("no status page line:\n{out}"))
        .to_owned()
}

fn api(addr: &str, token: &str, path: &str) -> Value {
    let (code, body) = http(addr, "GET", path, Some(token), None);
    assert_eq!(code, 200, "{path}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

/// Regression: a second `scripts/demo` kept the old database on a new chain, so the first
/// run's payment showed as `completed · reorged` with nothing received, while the page
/// said Healthy; paying by hand needed `--dir target/demo/devnet`, which nobody knew.
#[test]
fn the_demo_starts_over_consistently_and_its_commands_work_as_printed() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("demo");
    let _guard = DemoGuard(&state);

    let (out, _) = demo(&state, &[]);
    let addr = page_addr(&out);
    let token = std::fs::read_to_string(state.join("api-token")).unwrap();
    let list = api(&addr, &token, "/api/payments");
    assert_eq!(list["payments"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["payments"][0]["status"], "confirmed");

    // The printed block, run as printed in a new shell.
    let block: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("Try it yourself"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect();
    assert!(block.len() >= 5, "{out}");
    let script = block.join("\n");
    let mut cmd = Command::new("bash");
    cmd.args(["-euo", "pipefail", "-c", &script]);
    let ran = run_bounded(cmd, Duration::from_secs(120), None);
    let shown = String::from_utf8_lossy(&ran.stdout).into_owned();
    assert!(
        ran.status.success(),
        "{script}\n{shown}\n{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    assert!(
        shown.contains("health:    OK") && shown.contains("history"),
        "{shown}"
    );
    // The two blocks are mined; the confirmation follows the notification.
    let tried = common::wait_until(Duration::from_secs(20), "try-1 confirmed", || {
        let v = api(&addr, &token, "/api/payments?reference=try-1");
        (v["payments"][0]["status"] == "confirmed").then(|| v["payments"][0].clone())
    });
    assert_eq!(tried["received_sat"], 50_000);
    assert_eq!(
        tried["txids"].as_array().unwrap().len(),
        2,
        "partial, then the rest"
    );

    // Again: a new chain, so a new database; the earlier payments are gone, not reorged.
    let (out, _) = demo(&state, &[]);
    let addr = page_addr(&out);
    let list = api(&addr, &token, "/api/payments");
    let payments = list["payments"].as_array().unwrap();
    assert_eq!(payments.len(), 1, "only this run's payment: {list}");
    assert_eq!(payments[0]["reference"], "demo-1");
    assert_eq!(payments[0]["status"], "confirmed");
    assert_eq!(payments[0]["flags"], serde_json::json!([]));
    let status = api(&addr, &token, "/api/status");
    assert_eq!(status["healthy"], true, "{status}");
    assert_eq!(status["wallet"]["confirmed_sat"], 150_000, "{status}");
    let alerts = api(&addr, &token, "/api/alerts");
    assert_eq!(alerts["alerts"], serde_json::json!([]), "{alerts}");

    // Stop: nothing of the demo keeps running.
    let pid = std::fs::read_to_string(state.join("daemon.pid")).unwrap();
    demo(&state, &["stop"]);
    assert!(
        !Path::new(&format!("/proc/{}", pid.trim())).exists(),
        "daemon stopped"
    );
    assert!(!state.join("daemon.pid").exists());
}
