//! Failed-authentication limiter: a few free failures per source, then exponential blocks.
//!
//! A source is an IPv4 address or an IPv6 /64 (one host usually owns a whole /64). While
//! blocked, a source gets 429 for every request that needs a token, even a correct one,
//! so that a guesser cannot learn which guess was right.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Failures a source may make within [`FAILURE_WINDOW`] before it is blocked.
pub const FREE_FAILURES: u32 = 5;
/// Failures further apart than this start counting afresh.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(600);
/// The first block; each further failure doubles it.
pub const FIRST_BLOCK: Duration = Duration::from_secs(1);
/// The longest block.
pub const MAX_BLOCK: Duration = Duration::from_secs(900);
/// Sources remembered at most (memory bound under a spread-out attack).
pub const MAX_SOURCES: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last: Instant,
    blocked_until: Option<Instant>,
}

/// What recording a failure did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    /// Failures of this source within the window, this one included.
    pub failures: u32,
    /// The block this failure started, if any.
    pub blocked_for: Option<Duration>,
}

/// Per-source failure counts and blocks.
#[derive(Debug, Default)]
pub struct Limiter {
    sources: HashMap<IpAddr, Entry>,
}

/// The limiter's key for an address: IPv4 as is, IPv6 by its /64.
pub fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

impl Limiter {
    /// How much longer `ip` is blocked, if it is.
    pub fn blocked(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let until = self.sources.get(&source_key(ip))?.blocked_until?;
        (until > now).then(|| until - now)
    }

    /// Records a failed authentication of `ip`.
    pub fn failure(&mut self, ip: IpAddr, now: Instant) -> Failure {
        let key = source_key(ip);
        if !self.sources.contains_key(&key) && self.sources.len() >= MAX_SOURCES {
            self.make_room(now);
        }
        let e = self.sources.entry(key).or_insert(Entry {
            failures: 0,
            last: now,
            blocked_until: None,
        });
        if now.saturating_duration_since(e.last) > FAILURE_WINDOW {
            e.failures = 0;
        }
        e.failures = e.failures.saturating_add(1);
        e.last = now;
        let blocked_for = block_for(e.failures);
        if let Some(d) = blocked_for {
            e.blocked_until = Some(now + d);
        }
        Failure {
            failures: e.failures,
            blocked_for,
        }
    }

    /// A successful authentication of `ip` clears its record.
    pub fn success(&mut self, ip: IpAddr) {
        self.sources.remove(&source_key(ip));
    }

    /// Failures recorded within the window across all sources (for the page and alerts).
    pub fn recent_sources(&self, now: Instant) -> usize {
        self.sources
            .values()
            .filter(|e| now.saturating_duration_since(e.last) <= FAILURE_WINDOW)
            .count()
    }

    fn make_room(&mut self, now: Instant) {
        self.sources.retain(|_, e| {
            now.saturating_duration_since(e.last) <= FAILURE_WINDOW
                || e.blocked_until.is_some_and(|u| u > now)
        });
        if self.sources.len() >= MAX_SOURCES
            && let Some(oldest) = self
                .sources
                .iter()
                .min_by_key(|(_, e)| e.last)
                .map(|(k, _)| *k)
        {
            self.sources.remove(&oldest);
        }
    }
}

/// The block after `failures` failures: none for the free ones, then 1 s, 2 s, 4 s, ...
pub fn block_for(failures: u32) -> Option<Duration> {
    let over = failures.checked_sub(FREE_FAILURES + 1)?;
    let factor = 1u32.checked_shl(over.min(20)).unwrap_or(u32::MAX);
    Some(FIRST_BLOCK.saturating_mul(factor).min(MAX_BLOCK))
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 5));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 6));

    #[test]
    fn blocks_grow_exponentially_after_the_free_failures() {
        assert_eq!(block_for(1), None);
        assert_eq!(block_for(FREE_FAILURES), None);
        assert_eq!(block_for(FREE_FAILURES + 1), Some(Duration::from_secs(1)));
        assert_eq!(block_for(FREE_FAILURES + 2), Some(Duration::from_secs(2)));
        assert_eq!(block_for(FREE_FAILURES + 4), Some(Duration::from_secs(8)));
        assert_eq!(block_for(FREE_FAILURES + 40), Some(MAX_BLOCK));
        assert_eq!(block_for(u32::MAX), Some(MAX_BLOCK));
    }

    #[test]
    fn a_source_is_blocked_after_repeated_failures_and_others_are_not() {
        let mut l = Limiter::default();
        let t0 = Instant::now();
        for i in 1..=FREE_FAILURES {
            let f = l.failure(A, t0);
            assert_eq!((f.failures, f.blocked_for), (i, None));
            assert_eq!(l.blocked(A, t0), None);
        }
        let f = l.failure(A, t0);
        assert_eq!(f.blocked_for, Some(Duration::from_secs(1)));
        assert_eq!(l.blocked(A, t0), Some(Duration::from_secs(1)));
        assert_eq!(l.blocked(B, t0), None);
        assert_eq!(l.blocked(A, t0 + Duration::from_secs(1)), None);
        let f = l.failure(A, t0 + Duration::from_secs(1));
        assert_eq!(f.blocked_for, Some(Duration::from_secs(2)));
        l.success(A);
        assert_eq!(l.blocked(A, t0 + Duration::from_secs(1)), None);
    }

    #[test]
    fn failures_far_apart_start_afresh() {
        let mut l = Limiter::default();
        let t0 = Instant::now();
        for _ in 0..FREE_FAILURES {
            l.failure(A, t0);
        }
        let later = t0 + FAILURE_WINDOW + Duration::from_secs(1);
        assert_eq!(l.failure(A, later).failures, 1);
    }

    #[test]
    fn ipv6_sources_count_by_their_64() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let mapped: IpAddr = "::ffff:10.0.0.5".parse().unwrap();
        assert_eq!(source_key(a), source_key(b));
        assert_eq!(source_key(mapped), A);
    }

    #[test]
    fn memory_stays_bounded() {
        let mut l = Limiter::default();
        let t0 = Instant::now();
        for i in 0..(MAX_SOURCES as u32 + 50) {
            l.failure(IpAddr::V4(i.into()), t0);
        }
        assert!(l.sources.len() <= MAX_SOURCES);
    }
}
