//! Which backups to keep: the newest of each of the last N days and of the last M weeks.
//!
//! Pure: given backup times, returns the ones to keep. Days and weeks are UTC; weeks
//! start on Monday.

use std::collections::BTreeSet;

const DAY_MS: u64 = 86_400_000;

/// Unix day number of a time.
fn day(ms: u64) -> u64 {
    ms / DAY_MS
}

/// Week number (Monday-based): 1970-01-01 was a Thursday, so shift by 3 days.
fn week(ms: u64) -> u64 {
    (day(ms) + 3) / 7
}

/// Indices into `times` of the backups to keep. The newest is always kept.
pub fn keep(times: &[u64], daily: u32, weekly: u32) -> BTreeSet<usize> {
    let mut order: Vec<usize> = (0..times.len()).collect();
    // Newest first; for equal times, the later index first (deterministic).
    order.sort_by(|&a, &b| times[b].cmp(&times[a]).then(b.cmp(&a)));
    let mut kept = BTreeSet::new();
    if let Some(&newest) = order.first() {
        kept.insert(newest);
    }
    for (bucket, limit) in [(day as fn(u64) -> u64, daily), (week, weekly)] {
        let mut seen = BTreeSet::new();
        for &i in &order {
            let b = bucket(times[i]);
            if seen.contains(&b) {
                continue;
            }
            if seen.len() == limit as usize {
                break;
            }
            seen.insert(b);
            kept.insert(i);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: u64 = 3_600_000;
    /// 2026-11-23, a Monday, 00:00 UTC.
    const MONDAY: u64 = 1_795_392_000_000;

    #[test]
    fn monday_is_the_start_of_a_week() {
        assert_eq!(week(MONDAY), week(MONDAY + 6 * DAY_MS + 23 * H));
        assert_ne!(week(MONDAY), week(MONDAY - 1));
    }

    #[test]
    fn keeps_the_newest_of_each_recent_day() {
        // Two backups a day for 10 days.
        let times: Vec<u64> = (0..20).map(|i| MONDAY + i * 12 * H).collect();
        let kept = keep(&times, 3, 0);
        // Days 9, 8, 7: their later backups (indices 19, 17, 15).
        assert_eq!(kept, BTreeSet::from([15, 17, 19]));
    }

    #[test]
    fn weekly_reaches_further_back_than_daily() {
        // One backup a day for 5 weeks.
        let times: Vec<u64> = (0..35).map(|i| MONDAY + i * DAY_MS).collect();
        let kept = keep(&times, 2, 3);
        // Daily: days 34, 33. Weekly: newest of weeks 4, 3, 2 = days 34, 27, 20.
        assert_eq!(kept, BTreeSet::from([20, 27, 33, 34]));
    }

    #[test]
    fn unsorted_input_and_the_newest_always_kept() {
        let times = [MONDAY + 5 * DAY_MS, MONDAY, MONDAY + 9 * DAY_MS];
        assert_eq!(keep(&times, 1, 0), BTreeSet::from([2]));
        assert!(keep(&[], 1, 1).is_empty());
    }
}
