//! The cluster-wide quota of an upstream (REMD, FRMR) as a token bucket: `burst` tokens at
//! most, refilled at `rate` per second by the time elapsed, one token per call. Pure: the
//! bucket, the time and the settings come in; [`take`] says whether a call may go now and,
//! if not, how long until it may. The PostgreSQL store applies the same arithmetic in one
//! `UPDATE` (so that every instance draws from one bucket); this function is its
//! specification and what the tests of that statement compare with.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// A bucket's state as stored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    pub tokens: f64,
    pub refilled_at: DateTime<Utc>,
}

/// What one attempt to take a token gives.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Take {
    /// A token was taken; the bucket after it.
    Granted(Bucket),
    /// No token: the bucket refilled to now (nothing taken), and how long until one is there.
    Wait(Bucket, Duration),
}

/// The bucket refilled to `now`: `tokens + elapsed × rate`, at most `burst`. Time never runs
/// backwards for a bucket (a clock a little behind another instance's refills nothing).
pub fn refill(bucket: Bucket, now: DateTime<Utc>, rate: f64, burst: u32) -> Bucket {
    let elapsed = (now - bucket.refilled_at).num_microseconds().unwrap_or(i64::MAX).max(0) as f64 / 1e6;
    Bucket {
        tokens: (bucket.tokens + elapsed * rate).min(f64::from(burst.max(1))),
        refilled_at: bucket.refilled_at.max(now),
    }
}

/// One call's attempt at `now`.
pub fn take(bucket: Bucket, now: DateTime<Utc>, rate: f64, burst: u32) -> Take {
    let full = refill(bucket, now, rate, burst);
    if full.tokens >= 1.0 {
        Take::Granted(Bucket { tokens: full.tokens - 1.0, ..full })
    } else {
        Take::Wait(full, wait_for_one(full.tokens, rate))
    }
}

/// How long until `tokens` reach one at `rate` per second (at least a millisecond).
pub fn wait_for_one(tokens: f64, rate: f64) -> Duration {
    let secs = ((1.0 - tokens) / rate.max(1e-6)).max(0.001);
    Duration::from_secs_f64(secs.min(3600.0))
}

/// A fresh bucket: full.
pub fn full(now: DateTime<Utc>, burst: u32) -> Bucket {
    Bucket { tokens: f64::from(burst.max(1)), refilled_at: now }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_800_000_000_000 + ms).unwrap()
    }

    #[test]
    fn a_burst_then_the_rate() {
        let (rate, burst) = (10.0, 3);
        let mut b = full(at(0), burst);
        for _ in 0..3 {
            match take(b, at(0), rate, burst) {
                Take::Granted(next) => b = next,
                other => panic!("{other:?}"),
            }
        }
        let Take::Wait(b2, wait) = take(b, at(0), rate, burst) else { panic!("the burst is spent") };
        assert_eq!(wait, Duration::from_millis(100));
        assert_eq!(b2.tokens, 0.0);
        // 50 ms later: half a token, 50 ms to wait; 100 ms later: one.
        assert!(matches!(take(b, at(50), rate, burst), Take::Wait(_, w) if w == Duration::from_millis(50)));
        assert!(matches!(take(b, at(100), rate, burst), Take::Granted(n) if n.tokens.abs() < 1e-9));
        // Never more than the burst, however long it rested.
        assert_eq!(refill(b, at(3_600_000), rate, burst).tokens, 3.0);
    }

    #[test]
    fn over_any_window_no_more_than_rate_times_window_plus_burst() {
        let (rate, burst) = (5.0, 2);
        let mut b = full(at(0), burst);
        let mut granted = Vec::new();
        for ms in (0..10_000).step_by(7) {
            if let Take::Granted(next) = take(b, at(ms), rate, burst) {
                b = next;
                granted.push(ms);
            }
        }
        for start in (0..9_000).step_by(100) {
            let n = granted.iter().filter(|&&t| t >= start && t < start + 1000).count();
            assert!(n as f64 <= rate + f64::from(burst), "{n} in [{start}, {start}+1s)");
        }
        // And the rate is used: 10 s at 5/s, plus the burst.
        assert!(granted.len() >= 50, "{}", granted.len());
    }

    #[test]
    fn a_clock_behind_refills_nothing() {
        let b = Bucket { tokens: 0.5, refilled_at: at(1000) };
        let r = refill(b, at(900), 10.0, 3);
        assert_eq!((r.tokens, r.refilled_at), (0.5, at(1000)));
    }
}
