//! Whether payment detection can be trusted right now, in operator words.
//!
//! Pure: the chain thread's facts and the thresholds in, problems out. The appliance is
//! healthy only when a payment made now would be noticed within about a minute.

use crate::chain::ChainStatus;

/// Smoothed request time above which the server is taken to be throttling the session.
pub const THROTTLED_MS: u64 = 2_000;
/// Session failures within the chain thread's memory (ten minutes) that count as a
/// server dropping the session repeatedly.
pub const FAILURES_TO_FLAG: usize = 3;

/// What the operator can do when the server cannot keep up.
pub const SERVER_FIX: &str = "run your own Electrum server or raise its limits (ElectrumX: COST_SOFT_LIMIT, COST_HARD_LIMIT; then SNAKKAZ_PAY_ELECTRUM_COST_BUDGET), or add servers to SNAKKAZ_PAY_ELECTRUM_SERVERS";

/// What is wrong with detection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Detection {
    /// No session (or no thread to hold one): nothing is detected.
    pub down: Option<String>,
    /// Connected, but a payment made now could go unnoticed for long.
    pub degraded: Vec<String>,
}

impl Detection {
    /// Every problem, the outage first.
    pub fn problems(&self) -> Vec<String> {
        self.down.iter().chain(&self.degraded).cloned().collect()
    }
}

/// Problems of the detection path; none when a payment made now would be noticed.
pub fn detection(c: &ChainStatus, enabled: bool, now: u64, backlog_alert_secs: u64) -> Detection {
    let mut d = Detection::default();
    if !enabled {
        return d;
    }
    if !c.thread_alive {
        d.down = Some(
            "payment detection stopped: the Electrum connection thread ended; restart the daemon (systemd does) and check the log".to_owned(),
        );
        return d;
    }
    if !c.connected {
        d.down = Some(match &c.last_error {
            Some(e) => format!("Electrum connection lost: {e}"),
            None => "Electrum not connected yet".to_owned(),
        });
        return d;
    }
    d.degraded = degraded(c, now, backlog_alert_secs);
    d
}

fn degraded(c: &ChainStatus, now: u64, backlog_alert_secs: u64) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(since) = c.backlog_since {
        let age = now.saturating_sub(since);
        if c.backlog > 0 && age >= backlog_alert_secs {
            out.push(format!(
                "detection degraded: {} of {} watched addresses not yet subscribed or synced after {age} s, so payments to them can go unnoticed; the server is pacing this session; {SERVER_FIX}",
                c.backlog, c.watched
            ));
        }
    }
    if let Some(msg) = &c.refused {
        out.push(format!(
            "the Electrum server refused subscriptions ({msg}); those addresses are only checked periodically; {SERVER_FIX}"
        ));
    }
    if let Some(ms) = c.request_ms
        && ms >= THROTTLED_MS
    {
        out.push(format!(
            "Electrum requests take {ms} ms: the server is throttling this session, so detection is slow; {SERVER_FIX}"
        ));
    }
    if c.recent_failures.len() >= FAILURES_TO_FLAG {
        out.push(format!(
            "the Electrum session ended {} times in the last 10 minutes; last error: {}; {SERVER_FIX}",
            c.recent_failures.len(),
            c.last_error.as_deref().unwrap_or("none")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up() -> ChainStatus {
        ChainStatus {
            connected: true,
            thread_alive: true,
            watched: 10,
            ..Default::default()
        }
    }

    #[test]
    fn a_connected_caught_up_session_is_healthy() {
        assert_eq!(detection(&up(), true, 1000, 60), Detection::default());
    }

    #[test]
    fn disabled_payments_have_no_detection_problem() {
        let c = ChainStatus::default();
        assert_eq!(detection(&c, false, 1000, 60), Detection::default());
    }

    #[test]
    fn a_lost_connection_is_an_outage_not_a_degradation() {
        let c = ChainStatus {
            connected: false,
            last_error: Some("refused".into()),
            ..up()
        };
        let d = detection(&c, true, 1000, 60);
        assert!(d.down.unwrap().contains("refused"));
        assert!(d.degraded.is_empty());
    }

    fn detection_problems(c: &ChainStatus, enabled: bool, now: u64, secs: u64) -> Vec<String> {
        detection(c, enabled, now, secs).problems()
    }

    #[test]
    fn a_dead_thread_is_reported_even_if_it_looked_connected() {
        let c = ChainStatus {
            thread_alive: false,
            ..up()
        };
        let p = detection_problems(&c, true, 1000, 60);
        assert_eq!(p.len(), 1);
        assert!(p[0].contains("thread ended"), "{p:?}");
    }

    #[test]
    fn a_backlog_counts_only_once_it_is_older_than_the_threshold() {
        let mut c = ChainStatus {
            backlog: 400,
            backlog_since: Some(1000),
            ..up()
        };
        assert!(detection_problems(&c, true, 1059, 60).is_empty());
        let p = detection_problems(&c, true, 1060, 60);
        assert_eq!(p.len(), 1);
        assert!(p[0].contains("400 of 10"), "{p:?}");
        assert!(p[0].contains("COST_SOFT_LIMIT"), "{p:?}");
        c.backlog = 0;
        assert!(detection_problems(&c, true, 5000, 60).is_empty());
    }

    #[test]
    fn throttling_refusals_and_repeated_drops_are_named() {
        let c = ChainStatus {
            request_ms: Some(2500),
            refused: Some("too many subscriptions".into()),
            recent_failures: vec![1, 2, 3],
            last_error: Some("connection reset".into()),
            ..up()
        };
        let p = detection_problems(&c, true, 1000, 60);
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[0].contains("refused"));
        assert!(p[1].contains("2500 ms"));
        assert!(p[2].contains("3 times"));
    }
}
