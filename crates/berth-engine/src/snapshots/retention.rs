//! Which snapshots a retention policy keeps (issue 11: autosave
//! retention), with restic's `forget --keep-last/--keep-hourly/
//! --keep-daily/--keep-weekly` semantics:
//!
//! - snapshots are taken newest first;
//! - `keep_last` keeps the newest N;
//! - each of `keep_hourly`, `keep_daily`, `keep_weekly` keeps the newest
//!   snapshot of each of the last N hours / days / weeks that have one
//!   (a snapshot is kept when its period differs from the period of the
//!   last snapshot that rule kept, while the rule has count left);
//! - the rules are independent: a snapshot is kept when any rule keeps it,
//!   and every rule looks at every snapshot;
//! - a policy with every count 0 keeps everything (restic refuses to
//!   forget without a policy).
//!
//! Periods are UTC (the daemon does not know the user's time zone);
//! weeks run Monday to Sunday, as ISO 8601 weeks do.

use serde::{Deserialize, Serialize};

/// How many snapshots of each kind to keep; 0 means the rule is off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    /// The newest N.
    pub keep_last: u32,
    /// The newest of each of the last N hours with a snapshot.
    pub keep_hourly: u32,
    /// The newest of each of the last N days with a snapshot.
    pub keep_daily: u32,
    /// The newest of each of the last N weeks with a snapshot.
    pub keep_weekly: u32,
}

impl Retention {
    /// True when no rule is on (then everything is kept).
    pub fn is_empty(&self) -> bool {
        self.keep_last == 0
            && self.keep_hourly == 0
            && self.keep_daily == 0
            && self.keep_weekly == 0
    }
}

/// The period numbers of a time (seconds since the Unix epoch, UTC):
/// hours, days and Monday-started weeks since the epoch.
fn periods(ts: f64) -> [i64; 3] {
    let secs = ts.floor() as i64;
    let days = secs.div_euclid(86_400);
    // 1970-01-01 was a Thursday: shifting by 3 days starts weeks on Monday.
    [secs.div_euclid(3_600), days, (days + 3).div_euclid(7)]
}

/// Which of `times` (seconds since the epoch, in any order) `policy`
/// keeps: one flag per time, in the same order.
pub fn keep(times: &[f64], policy: &Retention) -> Vec<bool> {
    let mut flags = vec![policy.is_empty(); times.len()];
    if policy.is_empty() {
        return flags;
    }
    let mut order: Vec<usize> = (0..times.len()).collect();
    order.sort_by(|&a, &b| times[b].total_cmp(&times[a]));
    let mut counts = [policy.keep_hourly, policy.keep_daily, policy.keep_weekly];
    let mut last: [Option<i64>; 3] = [None; 3];
    for (nth, &i) in order.iter().enumerate() {
        if nth < policy.keep_last as usize {
            flags[i] = true;
        }
        let p = periods(times[i]);
        for rule in 0..3 {
            if counts[rule] > 0 && last[rule] != Some(p[rule]) {
                flags[i] = true;
                last[rule] = Some(p[rule]);
                counts[rule] -= 1;
            }
        }
    }
    flags
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: f64 = 3_600.0;
    const D: f64 = 86_400.0;
    /// Monday 2024-01-01 00:00:00 UTC.
    const MON: f64 = 1_704_067_200.0;

    fn kept(times: &[f64], p: Retention) -> Vec<f64> {
        let flags = keep(times, &p);
        let mut out: Vec<f64> = times
            .iter()
            .zip(flags)
            .filter(|(_, k)| *k)
            .map(|(t, _)| *t)
            .collect();
        out.sort_by(|a, b| b.total_cmp(a));
        out
    }

    #[test]
    fn no_rule_keeps_everything() {
        let t = [MON, MON + 1.0, MON + 2.0];
        assert_eq!(keep(&t, &Retention::default()), vec![true; 3]);
    }

    #[test]
    fn keep_last_keeps_the_newest_whatever_the_input_order() {
        let t = [MON + 2.0, MON, MON + 3.0, MON + 1.0];
        let p = Retention {
            keep_last: 2,
            ..Default::default()
        };
        assert_eq!(kept(&t, p), vec![MON + 3.0, MON + 2.0]);
        assert_eq!(keep(&t, &p), vec![true, false, true, false]);
    }

    #[test]
    fn keep_hourly_keeps_the_newest_of_each_of_the_last_hours_that_have_one() {
        // Every 15 minutes for 5 hours, with hour 2 empty.
        let mut t = Vec::new();
        for h in [0.0, 1.0, 3.0, 4.0] {
            for q in 0..4 {
                t.push(MON + h * H + f64::from(q) * 900.0);
            }
        }
        let p = Retention {
            keep_hourly: 3,
            ..Default::default()
        };
        // The last three hours *with* snapshots: 4, 3 and 1 (2 is empty).
        assert_eq!(
            kept(&t, p),
            vec![
                MON + 4.0 * H + 2700.0,
                MON + 3.0 * H + 2700.0,
                MON + H + 2700.0
            ]
        );
    }

    #[test]
    fn daily_and_weekly_count_calendar_periods_in_utc() {
        // One snapshot at 23:00 and one at 01:00 each day for 15 days.
        let mut t = Vec::new();
        for d in 0..15 {
            t.push(MON + f64::from(d) * D + H);
            t.push(MON + f64::from(d) * D + 23.0 * H);
        }
        let daily = Retention {
            keep_daily: 3,
            ..Default::default()
        };
        assert_eq!(
            kept(&t, daily),
            vec![
                MON + 14.0 * D + 23.0 * H,
                MON + 13.0 * D + 23.0 * H,
                MON + 12.0 * D + 23.0 * H
            ]
        );
        // Weeks start on Monday: days 14 (Mon), 7-13 and 0-6 are three weeks.
        let weekly = Retention {
            keep_weekly: 5,
            ..Default::default()
        };
        assert_eq!(
            kept(&t, weekly),
            vec![
                MON + 14.0 * D + 23.0 * H,
                MON + 13.0 * D + 23.0 * H,
                MON + 6.0 * D + 23.0 * H
            ]
        );
    }

    #[test]
    fn rules_are_independent_and_a_snapshot_kept_by_one_still_counts_for_the_others() {
        // Hourly snapshots over two days.
        let t: Vec<f64> = (0..48).map(|h| MON + f64::from(h) * H).collect();
        let p = Retention {
            keep_last: 2,
            keep_daily: 2,
            ..Default::default()
        };
        // keep_last takes hours 47 and 46; the daily rule takes the
        // newest of day 1 (hour 47, already kept) and of day 0 (hour 23).
        assert_eq!(
            kept(&t, p),
            vec![MON + 47.0 * H, MON + 46.0 * H, MON + 23.0 * H]
        );
    }

    #[test]
    fn times_before_the_epoch_and_the_week_boundary_are_periods_too() {
        // Sunday 23:59:59 and Monday 00:00:00 are different weeks.
        let t = [MON - 1.0, MON];
        let p = Retention {
            keep_weekly: 2,
            ..Default::default()
        };
        assert_eq!(keep(&t, &p), vec![true, true]);
        assert_eq!(periods(-1.0), [-1, -1, 0]);
    }
}
