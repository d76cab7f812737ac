//! The cluster-wide quota of an upstream (REMD, FRMR) as a token bucket: `burst` tokens at
//! most, refilled at `rate` per second by the time elapsed, one token per call. A caller
//! *reserves* its token: when the bucket is empty it takes the next one still to come (the
//! bucket goes into debt) and waits until then, so that callers of every instance are served
//! in the order they asked, one every `1/rate`, with no gap while any is waiting (asking
//! again after a sleep would be a race that a caller can lose for seconds, and would leave
//! tokens unused between the attempts). A caller that would wait longer than it is willing
//! to reserves nothing and asks again later. Pure: the bucket, the time and the settings
//! come in; [`reserve`] says when the call may go. The PostgreSQL store applies the same
//! arithmetic in one statement (so that every instance draws from one bucket); this module
//! is its specification and what the tests of that statement compare with. [`QuotaClient`]
//! (`client.rs`) is the one client of a quota: REMD's ([`crate::remd::RemdCalls`], which the
//! relay and the REMD listener call through), the staff service's for FRMR.
//!
//! The upstream counts calls as they arrive, not as they were granted: a caller that wakes
//! late (a busy machine) sends later than its slot, next to the one after it. So one token of
//! the configured burst is held back ([`capacity`]), and a caller more than half a slot late
//! when it is about to call ([`late`]) gives its slot up and reserves again; the other half
//! is for the way from there to the upstream. A call that arrives within one slot of its
//! slot keeps the upstream at `rate + burst` calls in any second.

use std::time::Duration;

use chrono::{DateTime, Utc};

mod client;

pub use client::{QuotaClient, Waited};

/// An upstream's pace: `per_second` calls on average, and `burst` calls at once above it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Calls per second on average (more than zero).
    pub per_second: f64,
    /// Calls that may go at once after a quiet spell (at least one).
    pub burst: u32,
}

/// A bucket's state as stored: below zero, the tokens already promised to waiting callers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    pub tokens: f64,
    pub refilled_at: DateTime<Utc>,
}

/// What one caller's reservation gives.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reservation {
    /// A token is the caller's: the call goes at this moment (the bucket's time, or later);
    /// the bucket after it. A moment, not a wait: callers whose `now` lags the bucket's (a
    /// slower round trip, a clock a little behind) would otherwise go early and bunch up.
    Slot(Bucket, DateTime<Utc>),
    /// The callers already waiting would hold this one back longer than its `max_wait`:
    /// nothing taken (the bucket refilled to now), and how long until it would not.
    Busy(Bucket, Duration),
}

impl Reservation {
    /// The bucket after the reservation.
    pub fn bucket(&self) -> Bucket {
        match self {
            Reservation::Slot(b, _) | Reservation::Busy(b, _) => *b,
        }
    }
}

/// The caller's side of a reservation, as the store answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// Call at this moment (at once if it has passed).
    At(DateTime<Utc>),
    /// Nothing reserved; ask again after this long.
    Busy(Duration),
}

impl From<Reservation> for Grant {
    fn from(r: Reservation) -> Grant {
        match r {
            Reservation::Slot(_, at) => Grant::At(at),
            Reservation::Busy(_, again) => Grant::Busy(again),
        }
    }
}

/// The tokens a bucket holds at most for a configured `burst`: one fewer, the margin for
/// calls that arrive up to one slot late (zero: every call waits its slot, `1/rate` apart).
pub fn capacity(burst: u32) -> f64 {
    f64::from(burst.saturating_sub(1))
}

/// The most a caller may be past its slot and still call on it: half a slot
/// (`1/(2·rate)`), and never less than [`LATE_FLOOR`].
pub fn lateness_allowed(rate: f64) -> Duration {
    Duration::from_secs_f64((0.5 / rate.max(1e-6)).min(3600.0)).max(LATE_FLOOR)
}

/// What a timer wake-up overshoots by anyway (tokio's timer has a millisecond's
/// granularity): at rates so high that half a slot is less, every caller would be "late"
/// and none would ever call.
pub const LATE_FLOOR: Duration = Duration::from_millis(2);

/// Slots a caller gives up in a row before it calls on the next one however late it wakes
/// (a machine so busy that every wake-up is late still sends, at the rate).
pub const MAX_SLOTS_MISSED: u32 = 3;

/// Whether a caller at `now` is more than [`lateness_allowed`] past its `slot`: it must not
/// call on that slot (with the way to the upstream, the upstream could see it next to the
/// next one's call).
pub fn late(slot: DateTime<Utc>, now: DateTime<Utc>, rate: f64) -> bool {
    until(now, slot) > lateness_allowed(rate)
}

/// The bucket refilled to `now`: `tokens + elapsed × rate`, at most [`capacity`]. Time never
/// runs backwards for a bucket (a clock a little behind another instance's refills nothing).
pub fn refill(bucket: Bucket, now: DateTime<Utc>, rate: f64, burst: u32) -> Bucket {
    let elapsed = (now - bucket.refilled_at).num_microseconds().unwrap_or(i64::MAX).max(0) as f64 / 1e6;
    Bucket { tokens: (bucket.tokens + elapsed * rate).min(capacity(burst)), refilled_at: bucket.refilled_at.max(now) }
}

/// One caller's reservation at `now`, waiting at most `max_wait` for its token.
pub fn reserve(bucket: Bucket, now: DateTime<Utc>, rate: f64, burst: u32, max_wait: Duration) -> Reservation {
    let full = refill(bucket, now, rate, burst);
    let after = full.tokens - 1.0;
    let wait = wait_for(after, rate);
    if wait > max_wait {
        Reservation::Busy(full, busy_for(full.tokens, rate, max_wait))
    } else {
        Reservation::Slot(Bucket { tokens: after, ..full }, slot_at(full.refilled_at, after, rate))
    }
}

/// What a store's answer gives its caller: the bucket after the reservation, and whether
/// it reserved (the statement's `RETURNING`), read as [`reserve`] decides.
pub fn grant(after: Bucket, reserved: bool, rate: f64, max_wait: Duration) -> Grant {
    if reserved {
        Grant::At(slot_at(after.refilled_at, after.tokens, rate))
    } else {
        Grant::Busy(busy_for(after.tokens, rate, max_wait))
    }
}

/// [`grant`] of a shared bucket's answer (`crate::store::Store::quota_reserve`).
pub fn from_row(row: crate::store::QuotaRow, rate: f64, max_wait: Duration) -> Grant {
    grant(Bucket { tokens: row.tokens, refilled_at: row.refilled_at }, row.granted, rate, max_wait)
}

/// How long a caller turned away by a bucket holding `tokens` waits before it asks again:
/// until its token would be within `max_wait` (at least a millisecond).
fn busy_for(tokens: f64, rate: f64, max_wait: Duration) -> Duration {
    wait_for(tokens - 1.0, rate).saturating_sub(max_wait).max(Duration::from_millis(1))
}

/// When the token promised last from a bucket left with `tokens` at `refilled_at` is there.
pub fn slot_at(refilled_at: DateTime<Utc>, tokens: f64, rate: f64) -> DateTime<Utc> {
    refilled_at + chrono::Duration::from_std(wait_for(tokens, rate)).unwrap_or(chrono::Duration::zero())
}

/// How long the caller sleeps for a slot at `at`, seen at `now`.
pub fn until(at: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
    (at - now).to_std().unwrap_or(Duration::ZERO)
}

/// How long until a bucket left with `tokens` (below zero: in debt) is back at zero: when
/// the last token promised is there.
pub fn wait_for(tokens: f64, rate: f64) -> Duration {
    if tokens >= 0.0 { Duration::ZERO } else { seconds(-tokens / rate.max(1e-6)) }
}

fn seconds(s: f64) -> Duration {
    Duration::from_secs_f64(s.clamp(0.0, 3600.0))
}

/// A fresh bucket: full.
pub fn full(now: DateTime<Utc>, burst: u32) -> Bucket {
    Bucket { tokens: capacity(burst), refilled_at: now }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_800_000_000_000 + ms).unwrap()
    }

    const PATIENT: Duration = Duration::from_secs(3600);

    #[test]
    fn a_burst_then_one_slot_after_another() {
        let (rate, burst) = (10.0, 3);
        let mut b = full(at(0), burst);
        let mut slots = Vec::new();
        for _ in 0..6 {
            let Reservation::Slot(next, slot) = reserve(b, at(0), rate, burst, PATIENT) else { panic!("patient") };
            b = next;
            slots.push(slot);
        }
        // The burst less the margin at once, then one every 100 ms, in the order asked.
        assert_eq!(slots, [at(0), at(0), at(100), at(200), at(300), at(400)]);
        assert!((b.tokens + 4.0).abs() < 1e-9, "four promised: {}", b.tokens);
        // 400 ms on the debt is paid: the next goes 100 ms later.
        assert!(matches!(reserve(b, at(400), rate, burst, PATIENT), Reservation::Slot(_, t) if t == at(500)));
        // A caller whose `now` lags the bucket's is given the same next slot, not an earlier one.
        assert!(matches!(reserve(b, at(350), rate, burst, PATIENT), Reservation::Slot(_, t) if t == at(500)));
        // Never more than the capacity, however long it rested.
        assert_eq!(refill(b, at(3_600_000), rate, burst).tokens, 2.0);
        // A burst of one: every call waits its slot.
        assert!(matches!(reserve(full(at(0), 1), at(0), rate, 1, PATIENT), Reservation::Slot(_, t) if t == at(100)));
    }

    #[test]
    fn a_caller_that_would_wait_too_long_reserves_nothing() {
        let (rate, burst) = (10.0, 1);
        let b = Bucket { tokens: -4.0, refilled_at: at(0) };
        // Its token would be the fifth promised: 500 ms.
        let r = reserve(b, at(0), rate, burst, Duration::from_millis(200));
        assert_eq!(r, Reservation::Busy(b, Duration::from_millis(300)));
        assert!(matches!(reserve(b, at(0), rate, burst, Duration::from_millis(500)), Reservation::Slot(n, t)
            if t == at(500) && (n.tokens + 5.0).abs() < 1e-9));
    }

    #[test]
    fn over_any_second_no_more_than_rate_plus_burst_even_a_slot_late() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for (rate, burst) in [(5.0, 2), (30.0, 3), (10.0, 1), (20.0, 10)] {
            let mut b = full(at(0), burst);
            // Callers now and then in bursts, each willing to wait 2 s; each call leaves up to
            // half a slot after its slot (no later: a later caller reserves again) and takes
            // up to another half to arrive.
            let mut calls = Vec::new();
            let mut ms = 0;
            while ms < 10_000 {
                ms += if rng.random_bool(0.1) { rng.random_range(0..1500) } else { rng.random_range(0..20) };
                if let Reservation::Slot(next, slot) = reserve(b, at(ms), rate, burst, Duration::from_secs(2)) {
                    b = next;
                    let leaves = rng.random_range(0..=(500.0 / rate) as i64);
                    assert!(!late(slot, slot + chrono::Duration::milliseconds(leaves), rate));
                    let way = rng.random_range(0..=(500.0 / rate) as i64);
                    calls.push((slot - at(0)).num_milliseconds() + leaves + way);
                }
            }
            calls.sort();
            let worst = (0..calls.len())
                .map(|i| calls[i..].iter().take_while(|&&t| t < calls[i] + 1000).count())
                .max()
                .unwrap();
            assert!(worst as f64 <= rate + f64::from(burst), "rate {rate}, burst {burst}: {worst} in one second");
        }
    }

    #[test]
    fn at_any_rate_a_caller_woken_within_the_timer_granularity_is_on_time() {
        let slot = at(0);
        for rate in [1.0, 30.0, 100.0, 1000.0, 1e6] {
            assert!(!late(slot, slot + chrono::Duration::milliseconds(2), rate), "{rate}/s");
        }
        assert!(late(slot, at(20), 30.0), "more than half of a 33 ms slot");
        assert!(!late(slot, at(16), 30.0));
    }

    #[test]
    fn the_rate_is_used_while_callers_wait() {
        let (rate, burst) = (5.0, 2);
        let mut b = full(at(0), burst);
        let mut calls = 0;
        for ms in (0..10_000).step_by(7) {
            if let Reservation::Slot(next, _) = reserve(b, at(ms), rate, burst, Duration::from_secs(2)) {
                b = next;
                calls += 1;
            }
        }
        // The capacity at once, then slots at 5/s up to 2 s past the last ask (at 9,996 ms).
        assert_eq!(calls, 1 + 59);
    }

    #[test]
    fn a_clock_behind_refills_nothing() {
        let b = Bucket { tokens: 0.5, refilled_at: at(1000) };
        let r = refill(b, at(900), 10.0, 3);
        assert_eq!((r.tokens, r.refilled_at), (0.5, at(1000)));
    }
}
