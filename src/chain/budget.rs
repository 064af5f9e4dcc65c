//! How much the session costs the server, as ElectrumX counts it, so that background work
//! stays under the server's soft limit and detection is never throttled because of it.
//!
//! ElectrumX charges every request (a subscription or history about 0.3 units, a
//! transaction 1, a ping 0.1, plus bandwidth) and lets the total decay over time; past its
//! soft limit (1,000 by default) it delays the session's requests, past the hard limit
//! (10,000) it closes the session. The decay slows with the number of subscriptions the
//! session holds: `hard / (10_000 + 5 × subscriptions)` per second. Other servers
//! (electrs, Fulcrum) are cheaper; the model errs towards ElectrumX's defaults.
//!
//! Pure arithmetic over an explicit clock: unit-tested without a network.

use std::time::{Duration, Instant};

/// Cost units of ElectrumX requests (ElectrumX 2.0 `session.py`), rounded up, bandwidth
/// included.
pub mod cost {
    /// Opening a session (connection 5, `server.version` 0.5, headers subscribe 0.25).
    pub const SESSION: f64 = 6.0;
    /// `blockchain.scripthash.subscribe` or `get_history` of a script with short history.
    pub const SCRIPT: f64 = 0.35;
    /// `blockchain.transaction.get`.
    pub const TX: f64 = 1.1;
    /// A merkle proof and the header it needs, per transaction.
    pub const PROOF: f64 = 0.5;
    /// A sync's fixed part: tip and the last headers.
    pub const SYNC: f64 = 1.0;
    /// `server.ping`.
    pub const PING: f64 = 0.1;
}

/// The hard limit assumed per unit of budget: ElectrumX's defaults are 1,000 / 10,000 and
/// the default budget is 800, so a budget maps to the hard limit of a server configured in
/// the same proportion.
const HARD_PER_BUDGET: f64 = 12.5;
/// Share of the server's decay we allow ourselves to use, for its other costs (the
/// notifications it sends us are charged too).
const DECAY_SHARE: f64 = 0.8;
/// With an unlimited server, background work is still paced to this many units per
/// second, so a large catch-up does not monopolise the server or our CPU.
const UNLIMITED_RATE: f64 = 200.0;

/// The estimated cost of our session on the server.
#[derive(Debug, Clone)]
pub struct Budget {
    /// Ceiling of background work; 0 = the server has no limits.
    limit: f64,
    /// Estimated current session cost.
    spent: f64,
    at: Instant,
}

impl Budget {
    /// A new session (its opening cost already spent).
    pub fn new(limit: u64, now: Instant) -> Budget {
        Budget {
            limit: limit as f64,
            spent: cost::SESSION,
            at: now,
        }
    }

    fn unlimited(&self) -> bool {
        self.limit <= 0.0
    }

    /// Cost units per second the server forgives a session holding `subscriptions`.
    pub fn decay_per_sec(&self, subscriptions: usize) -> f64 {
        if self.unlimited() {
            return UNLIMITED_RATE;
        }
        let hard = self.limit * HARD_PER_BUDGET;
        DECAY_SHARE * hard / (10_000.0 + 5.0 * subscriptions as f64)
    }

    /// Lets time pass: the estimate decays as the server's does.
    pub fn tick(&mut self, now: Instant, subscriptions: usize) {
        let secs = now.saturating_duration_since(self.at).as_secs_f64();
        self.spent = (self.spent - secs * self.decay_per_sec(subscriptions)).max(0.0);
        self.at = now;
    }

    /// Records requests made.
    pub fn charge(&mut self, units: f64) {
        self.spent += units;
        if self.unlimited() {
            // Nothing accrues on an unlimited server: the estimate only paces background
            // work, and a burst of detection work must not stall it for minutes.
            self.spent = self.spent.min(UNLIMITED_RATE);
        }
    }

    /// The estimated session cost now.
    pub fn spent(&self) -> f64 {
        self.spent
    }

    /// How long background work costing `units` must wait; zero when it may go now.
    /// Detection work never asks: it always goes.
    pub fn wait_for(&self, units: f64, subscriptions: usize) -> Duration {
        let ceiling = if self.unlimited() {
            // Pace only: a burst of one second's worth.
            UNLIMITED_RATE
        } else {
            self.limit
        };
        let over = self.spent + units - ceiling;
        if over <= 0.0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64(over / self.decay_per_sec(subscriptions))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn background_work_waits_once_the_budget_is_spent_and_resumes_as_it_decays() {
        let t0 = Instant::now();
        let mut b = Budget::new(800, t0);
        assert_eq!(b.wait_for(100.0, 0), Duration::ZERO);
        b.charge(800.0);
        let wait = b.wait_for(10.0, 0);
        // Default limits: 0.8 × 10,000 / 10,000 = 0.8 units per second.
        assert!(
            wait > Duration::from_secs(15) && wait < Duration::from_secs(25),
            "{wait:?}"
        );
        b.tick(t0 + wait + Duration::from_millis(10), 0);
        assert_eq!(b.wait_for(10.0, 0), Duration::ZERO);
    }

    #[test]
    fn subscriptions_slow_the_decay_as_electrumx_does() {
        let b = Budget::new(800, Instant::now());
        let none = b.decay_per_sec(0);
        let many = b.decay_per_sec(10_000);
        // 10,000 / (10,000 + 50,000): six times slower.
        assert!((none / many - 6.0).abs() < 1e-9, "{none} {many}");
    }

    #[test]
    fn the_estimate_never_goes_negative() {
        let t0 = Instant::now();
        let mut b = Budget::new(800, t0);
        b.tick(t0 + Duration::from_secs(3600), 0);
        assert_eq!(b.spent(), 0.0);
    }

    #[test]
    fn an_unlimited_server_is_paced_not_capped() {
        let t0 = Instant::now();
        let mut b = Budget::new(0, t0);
        assert_eq!(b.wait_for(100.0, 100_000), Duration::ZERO);
        b.charge(10_000.0);
        // At most one second's worth of pacing, however big the burst was.
        let wait = b.wait_for(1.0, 100_000);
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(1_010),
            "{wait:?}"
        );
    }

    #[test]
    fn a_raised_budget_decays_proportionally_faster() {
        let small = Budget::new(800, Instant::now()).decay_per_sec(1000);
        let large = Budget::new(8000, Instant::now()).decay_per_sec(1000);
        assert!((large / small - 10.0).abs() < 1e-9);
    }
}
