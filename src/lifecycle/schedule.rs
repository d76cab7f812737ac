//! The retry schedule of a submission: one pure function of the attempts made, the
//! submission's age, the server's hint and a random source (seeded in tests); and
//! [`next_check`], when to look a submission up in the register again when a look-up
//! could not decide.
//!
//! Exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff And
//! Jitter"): the n-th retry waits a uniform random time in `[floor, min(cap, base·2ⁿ⁻¹)]`,
//! which spreads a crowd of failed submissions instead of sending them back together. A
//! server hint lengthens the wait, never shortens it; REMD's `RATE_LIMIT` ("retry in a minute
//! or later") waits at least `rate_limited_wait`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;

/// Limits of the schedule (configuration `[relay]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The first retry waits up to this long (`relay.retry_base`). Default: 30 s.
    pub base: Duration,
    /// No wait is longer than this (`relay.retry_cap`, not shorter than `base`).
    /// Default: 1 h.
    pub cap: Duration,
    /// Attempts (sends) after which a transient failure ends in `failed`
    /// (`relay.max_attempts`). Default: 30.
    pub max_attempts: u32,
    /// Age after which a submission is not retried any more (`relay.max_age`).
    /// Default: 7 days.
    pub max_age: Duration,
    /// The least wait after REMD's `RATE_LIMIT` (`relay.rate_limited_wait`). Default: 60 s.
    pub rate_limited_wait: Duration,
}

impl RetryPolicy {
    /// The shortest wait before a retry unless `base` is shorter still.
    pub const FLOOR: Duration = Duration::from_secs(1);

    /// No wait is shorter than this (a retry storm is worse than a late retry): [`Self::FLOOR`],
    /// or `base` when that is shorter (a region that sets a short base means it).
    pub fn floor(&self) -> Duration {
        Self::FLOOR.min(self.base)
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(30),
            cap: Duration::from_secs(3600),
            max_attempts: 30,
            max_age: Duration::from_secs(7 * 24 * 3600),
            rate_limited_wait: Duration::from_secs(60),
        }
    }
}

/// What the service said about when to come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hint {
    None,
    /// `Retry-After` or similar.
    After(Duration),
    /// REMD's `RATE_LIMIT`.
    RateLimited,
}

/// The decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    RetryAt(DateTime<Utc>),
    /// Retries are exhausted; the submission waits for ops.
    GiveUp {
        reason: String,
    },
}

/// When to try again after the `attempts`-th attempt failed transiently.
pub fn next_attempt(
    policy: &RetryPolicy,
    attempts: u32,
    created_at: DateTime<Utc>,
    now: DateTime<Utc>,
    hint: Hint,
    rng: &mut impl Rng,
) -> Next {
    if attempts >= policy.max_attempts {
        return Next::GiveUp {
            reason: format!("исчерпаны попытки отправки ({attempts} из {})", policy.max_attempts)
        };
    }
    let exponent = attempts.saturating_sub(1).min(30);
    let floor = policy.floor();
    let ceiling = policy.base.saturating_mul(1u32 << exponent).min(policy.cap).max(floor);
    let jittered = Duration::from_millis(rng.random_range(floor.as_millis() as u64..=ceiling.as_millis() as u64));
    let wait = match hint {
        Hint::None => jittered,
        Hint::After(d) => jittered.max(d.min(policy.cap)),
        Hint::RateLimited => jittered.max(policy.rate_limited_wait),
    };
    let at = now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
    let age_then = (at - created_at).to_std().unwrap_or(Duration::ZERO);
    if age_then > policy.max_age {
        return Next::GiveUp {
            reason: format!(
                "документ не зарегистрирован за {}; автоматические повторы прекращены",
                humantime::format_duration(policy.max_age)
            ),
        };
    }
    Next::RetryAt(at)
}

/// When to look a submission up in the register again after its `checks`-th look-up (≥ 1)
/// could not decide: `first · 2^checks` from `now` — so look-ups come at `first`, `3·first`,
/// `7·first`, … after the first was due — or `None` once the look-ups would go on for
/// longer than `deadline` in all.
pub fn next_check(first: Duration, deadline: Duration, checks: u32, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    // Past 2^20 intervals the look-ups have gone on for years: over.
    if checks >= 20 {
        return None;
    }
    let exponent = checks;
    let spent_then = first.saturating_mul((1u32 << (exponent + 1)) - 1);
    if spent_then > deadline {
        return None;
    }
    Some(now + chrono::Duration::from_std(first.saturating_mul(1 << exponent)).ok()?)
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    fn t0() -> DateTime<Utc> {
        "2026-11-25T10:00:00Z".parse().unwrap()
    }

    fn wait(next: Next, now: DateTime<Utc>) -> Duration {
        match next {
            Next::RetryAt(at) => (at - now).to_std().unwrap(),
            Next::GiveUp { reason } => panic!("gave up: {reason}"),
        }
    }

    #[test]
    fn waits_grow_exponentially_within_the_jitter_band() {
        let p = RetryPolicy::default();
        let mut rng = StdRng::seed_from_u64(7);
        for attempts in 1..=10u32 {
            let ceiling = p.base.saturating_mul(1 << (attempts - 1)).min(p.cap);
            for _ in 0..200 {
                let w = wait(next_attempt(&p, attempts, t0(), t0(), Hint::None, &mut rng), t0());
                assert!(
                    w >= p.floor() && w <= ceiling,
                    "attempt {attempts}: {w:?} outside [{:?}, {ceiling:?}]",
                    p.floor()
                );
            }
        }
    }

    #[test]
    fn jitter_spreads_the_crowd() {
        let p = RetryPolicy::default();
        let mut rng = StdRng::seed_from_u64(42);
        let waits: Vec<Duration> =
            (0..1000).map(|_| wait(next_attempt(&p, 5, t0(), t0(), Hint::None, &mut rng), t0())).collect();
        let mean = waits.iter().sum::<Duration>() / 1000;
        // Uniform on [1 s, 480 s]: mean ≈ 240 s.
        assert!(mean > Duration::from_secs(200) && mean < Duration::from_secs(280), "{mean:?}");
        let distinct: std::collections::BTreeSet<_> = waits.iter().map(|w| w.as_secs()).collect();
        assert!(distinct.len() > 300, "waits are spread, not synchronised");
    }

    #[test]
    fn seeded_schedules_repeat() {
        let p = RetryPolicy::default();
        let a = next_attempt(&p, 3, t0(), t0(), Hint::None, &mut StdRng::seed_from_u64(1));
        let b = next_attempt(&p, 3, t0(), t0(), Hint::None, &mut StdRng::seed_from_u64(1));
        assert_eq!(a, b);
    }

    #[test]
    fn rate_limit_waits_at_least_a_minute() {
        let p = RetryPolicy::default();
        let mut rng = StdRng::seed_from_u64(3);
        for _ in 0..500 {
            let w = wait(next_attempt(&p, 1, t0(), t0(), Hint::RateLimited, &mut rng), t0());
            assert!(w >= Duration::from_secs(60), "{w:?}");
        }
    }

    #[test]
    fn a_server_hint_lengthens_never_shortens() {
        let p = RetryPolicy::default();
        let mut rng = StdRng::seed_from_u64(9);
        for _ in 0..200 {
            let w = wait(next_attempt(&p, 1, t0(), t0(), Hint::After(Duration::from_secs(120)), &mut rng), t0());
            assert!(w >= Duration::from_secs(120));
        }
        let w = wait(next_attempt(&p, 1, t0(), t0(), Hint::After(Duration::from_secs(10 * 86400)), &mut rng), t0());
        assert_eq!(w, p.cap, "a hint longer than the cap is capped");
    }

    #[test]
    fn gives_up_after_max_attempts_or_max_age() {
        let p = RetryPolicy::default();
        let mut rng = StdRng::seed_from_u64(5);
        assert!(matches!(next_attempt(&p, p.max_attempts, t0(), t0(), Hint::None, &mut rng), Next::GiveUp { .. }));
        let old = t0() - chrono::Duration::days(7);
        assert!(matches!(next_attempt(&p, 2, old, t0(), Hint::None, &mut rng), Next::GiveUp { .. }));
        assert!(matches!(
            next_attempt(&p, 2, t0() - chrono::Duration::days(6), t0(), Hint::None, &mut rng),
            Next::RetryAt(_)
        ));
    }

    #[test]
    fn the_floor_is_a_second_or_a_shorter_base() {
        let mut rng = StdRng::seed_from_u64(11);
        let p = RetryPolicy::default();
        assert_eq!(p.floor(), Duration::from_secs(1));
        for _ in 0..200 {
            assert!(wait(next_attempt(&p, 1, t0(), t0(), Hint::None, &mut rng), t0()) >= Duration::from_secs(1));
        }
        let short = RetryPolicy { base: Duration::from_millis(200), ..RetryPolicy::default() };
        assert_eq!(short.floor(), Duration::from_millis(200), "a base set shorter is meant");
        assert_eq!(wait(next_attempt(&short, 1, t0(), t0(), Hint::None, &mut rng), t0()), Duration::from_millis(200));
        let none = RetryPolicy { base: Duration::ZERO, ..RetryPolicy::default() };
        assert_eq!(wait(next_attempt(&none, 1, t0(), t0(), Hint::None, &mut rng), t0()), Duration::ZERO);
    }

    #[test]
    fn look_ups_grow_and_end_at_the_deadline() {
        let (first, deadline) = (Duration::from_secs(120), Duration::from_secs(3600));
        let after = |checks| next_check(first, deadline, checks, t0()).map(|at| (at - t0()).num_seconds());
        // Look-ups at 2, 6, 14 and 30 min; the next would end past the hour.
        assert_eq!(after(1), Some(240));
        assert_eq!(after(2), Some(480));
        assert_eq!(after(3), Some(960));
        assert_eq!(after(4), None);
        assert_eq!(after(40), None, "no overflow");
        // However long the deadline, the look-ups end.
        assert_eq!(next_check(first, Duration::from_secs(u64::MAX / 4), 20, t0()), None);
        // Counted from the acceptance: the second look-up is at 3·first.
        assert_eq!(next_check(first, Duration::from_secs(360), 1, t0()).map(|at| (at - t0()).num_seconds()), Some(240));
        assert_eq!(next_check(first, Duration::from_secs(359), 1, t0()), None);
    }
}
