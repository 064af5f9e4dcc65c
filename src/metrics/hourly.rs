//! Detection latency per hour over the last day, for the status page's chart. A fixed
//! ring of 24 slots: constant memory and constant work per observation.

/// Hours kept.
pub const HOURS: usize = 24;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Slot {
    /// Unix hour (seconds / 3600) the slot holds; stale slots are ignored.
    hour: u64,
    count: u64,
    sum_ms: u64,
    max_ms: u64,
}

/// Observations bucketed by the hour they were made in.
#[derive(Debug, Clone, Default)]
pub struct Hourly {
    slots: [Slot; HOURS],
}

/// One hour of the last day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HourStat {
    /// Observations in the hour.
    pub count: u64,
    /// Their mean, milliseconds.
    pub mean_ms: Option<u64>,
    /// Their maximum, milliseconds.
    pub max_ms: Option<u64>,
}

impl Hourly {
    /// Records one observation of `ms` milliseconds made at unix second `now`.
    pub fn record(&mut self, now: u64, ms: u64) {
        let hour = now / 3600;
        let slot = &mut self.slots[(hour % HOURS as u64) as usize];
        if slot.hour != hour {
            *slot = Slot {
                hour,
                ..Slot::default()
            };
        }
        slot.count += 1;
        slot.sum_ms = slot.sum_ms.saturating_add(ms);
        slot.max_ms = slot.max_ms.max(ms);
    }

    /// The last 24 hours up to and including the current one, oldest first.
    pub fn last_day(&self, now: u64) -> [HourStat; HOURS] {
        let current = now / 3600;
        std::array::from_fn(|i| {
            let hour = current + 1 + i as u64 - HOURS as u64;
            let s = self.slots[(hour % HOURS as u64) as usize];
            if s.hour != hour || s.count == 0 {
                return HourStat::default();
            }
            HourStat {
                count: s.count,
                mean_ms: Some(s.sum_ms / s.count),
                max_ms: Some(s.max_ms),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_roll_over_and_old_ones_drop_out() {
        let mut h = Hourly::default();
        let t0 = 1_000 * 3600;
        h.record(t0, 100);
        h.record(t0 + 10, 300);
        h.record(t0 + 3600, 50);
        let day = h.last_day(t0 + 3600);
        assert_eq!(day[HOURS - 1].mean_ms, Some(50));
        assert_eq!(
            day[HOURS - 2],
            HourStat {
                count: 2,
                mean_ms: Some(200),
                max_ms: Some(300)
            }
        );
        assert_eq!(day[0].count, 0);
        // A day later the same slots hold other hours: the old values are gone.
        let later = t0 + 25 * 3600;
        assert!(h.last_day(later).iter().all(|s| s.count == 0));
        h.record(later, 7);
        assert_eq!(h.last_day(later)[HOURS - 1].count, 1);
    }
}
