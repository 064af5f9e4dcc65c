//! The database file survives what a box meets: a kill at any moment of the first start.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::appliance::{Appliance, binary, offline_env};

#[test]
fn a_kill_9_during_the_first_start_never_leaves_an_unopenable_file() {
    // Kill points spread over the first start: before, during and after the database is
    // created (it takes a few milliseconds here).
    for round in 0..12u64 {
        let dir = tempfile::tempdir().unwrap();
        let env = offline_env(dir.path());
        std::fs::write(dir.path().join("config.toml"), "").unwrap();
        let mut child = Command::new(binary())
            .arg("--config")
            .arg(dir.path().join("config.toml"))
            .arg("run")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(round * round * 3));
        child.kill().unwrap();
        child.wait().unwrap();

        // Whatever the kill left, the next start serves and can take a payment record.
        let app = Appliance::start(dir.path(), env);
        let (code, v) = app.get("/api/status");
        assert_eq!(code, 200, "round {round}: {v}");
        let leftovers: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".creating"))
            .collect();
        assert!(leftovers.is_empty(), "round {round}: {leftovers:?}");
    }
}
