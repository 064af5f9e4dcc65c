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
