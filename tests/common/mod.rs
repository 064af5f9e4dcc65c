//! Shared harness of the integration tests.

#![allow(dead_code)] // Each test binary uses a different part of the harness.

pub mod appliance;
pub mod browser;
pub mod devnet;
pub mod electrum;
pub mod lying_proxy;
pub mod postgres;
pub mod signer;
pub mod tmpfs;

use std::time::{Duration, Instant};

/// Pause between two polls.
pub const POLL: Duration = Duration::from_millis(50);

/// Polls `f` until it returns `Some`, for at most `timeout`; panics naming `what`.
pub fn wait_until<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(POLL);
    }
}

/// Runs `snakkaz-pay --json ARGS`; panics with the output when it is not JSON.
pub fn json_out(app: &appliance::Appliance, args: &[&str]) -> (i32, serde_json::Value, String) {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let (code, out, err) = app.cli(&all);
    let v = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"));
    (code, v, err)
}
