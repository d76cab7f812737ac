//! A circuit breaker in front of an outside service, so that a dead service is not hammered
//! and callers get a prompt answer ("unavailable, retry after N s") instead of a timeout.
//!
//! Closed → (threshold consecutive failures) → Open for `open_for` → HalfOpen: one probe is
//! let through; its success closes the circuit, its failure opens it again. State is per
//! process: it protects the process's own callers; the shared durable state lives in SQL.

use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    Closed,
    Open,
    HalfOpen,
}

impl CircuitState {
    pub fn as_str(self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half_open",
        }
    }
}

/// What the ops summary shows about a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub state: CircuitState,
    pub consecutive_failures: u32,
    pub last_success: Option<DateTime<Utc>>,
    pub last_failure: Option<DateTime<Utc>>,
    /// The last failure's reason (safe to show: no personal data).
    pub last_error: Option<String>,
}

#[derive(Debug)]
struct Inner {
    state: CircuitState,
    failures: u32,
    open_until: Option<Instant>,
    probe_in_flight: bool,
    last_success: Option<DateTime<Utc>>,
    last_failure: Option<DateTime<Utc>>,
    last_error: Option<String>,
}

#[derive(Debug)]
pub struct CircuitBreaker {
    threshold: u32,
    open_for: Duration,
    inner: Mutex<Inner>,
}

/// A call the breaker let through; report its end with [`Permit::success`] or
/// [`Permit::failure`]. A permit dropped without either (the call was cancelled or
/// panicked) says nothing about the service, and frees the probe slot if it held it.
#[derive(Debug)]
#[must_use]
pub struct Permit<'a> {
    breaker: &'a CircuitBreaker,
    probe: bool,
    reported: bool,
}

impl Permit<'_> {
    pub fn success(mut self) {
        self.reported = true;
        self.breaker.record(self.probe, None);
    }

    pub fn failure(mut self, reason: &str) {
        self.reported = true;
        self.breaker.record(self.probe, Some(reason));
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.reported && self.probe {
            self.breaker.lock().probe_in_flight = false;
        }
    }
}

impl CircuitBreaker {
    pub fn new(threshold: u32, open_for: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            open_for,
            inner: Mutex::new(Inner {
                state: CircuitState::Closed,
                failures: 0,
                open_until: None,
                probe_in_flight: false,
                last_success: None,
                last_failure: None,
                last_error: None,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Lets a call through, or says how long until the service may be tried again.
    pub fn try_acquire(&self) -> Result<Permit<'_>, Duration> {
        let mut s = self.lock();
        let now = Instant::now();
        match s.state {
            CircuitState::Closed => Ok(Permit { breaker: self, probe: false, reported: false }),
            CircuitState::Open => {
                let until = s.open_until.unwrap_or(now);
                if now >= until {
                    s.state = CircuitState::HalfOpen;
                    s.probe_in_flight = true;
                    Ok(Permit { breaker: self, probe: true, reported: false })
                } else {
                    Err(until - now)
                }
            }
            CircuitState::HalfOpen => {
                if s.probe_in_flight {
                    Err(Duration::from_secs(1))
                } else {
                    s.probe_in_flight = true;
                    Ok(Permit { breaker: self, probe: true, reported: false })
                }
            }
        }
    }

    /// Records the end of a call that did not ask for a permit (a service whose calls are
    /// paced elsewhere — REMD's by the relay's schedule — watched for the ops summary).
    pub fn observe(&self, failure: Option<&str>) {
        self.record(false, failure);
    }

    fn record(&self, probe: bool, failure: Option<&str>) {
        let mut s = self.lock();
        if probe {
            s.probe_in_flight = false;
        }
        match failure {
            None => {
                s.state = CircuitState::Closed;
                s.failures = 0;
                s.open_until = None;
                s.last_success = Some(Utc::now());
            }
            Some(reason) => {
                s.failures = s.failures.saturating_add(1);
                s.last_failure = Some(Utc::now());
                s.last_error = Some(reason.chars().take(300).collect());
                if probe || s.failures >= self.threshold {
                    s.state = CircuitState::Open;
                    let now = Instant::now();
                    // Configuration bounds open_for; never let an addition overflow anyway.
                    s.open_until = Some(now.checked_add(self.open_for).unwrap_or(now + Duration::from_secs(86_400)));
                }
            }
        }
    }

    pub fn health(&self) -> Health {
        let s = self.lock();
        let state = match (s.state, s.open_until) {
            (CircuitState::Open, Some(until)) if Instant::now() >= until => CircuitState::HalfOpen,
            (state, _) => state,
        };
        Health {
            state,
            consecutive_failures: s.failures,
            last_success: s.last_success,
            last_failure: s.last_failure,
            last_error: s.last_error.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn opens_after_threshold_and_probes_after_cooldown() {
        let cb = CircuitBreaker::new(3, Duration::from_secs(30));
        for _ in 0..2 {
            cb.try_acquire().unwrap().failure("503");
        }
        assert_eq!(cb.health().state, CircuitState::Closed);
        cb.try_acquire().unwrap().failure("503");
        assert_eq!(cb.health().state, CircuitState::Open);
        let wait = cb.try_acquire().unwrap_err();
        assert!(wait <= Duration::from_secs(30) && wait > Duration::from_secs(29));

        tokio::time::advance(Duration::from_secs(31)).await;
        let probe = cb.try_acquire().expect("one probe after the cooldown");
        assert!(cb.try_acquire().is_err(), "only one probe at a time");
        probe.failure("still down");
        assert!(cb.try_acquire().is_err(), "a failed probe opens again");

        tokio::time::advance(Duration::from_secs(31)).await;
        cb.try_acquire().unwrap().success();
        assert_eq!(cb.health().state, CircuitState::Closed);
        assert!(cb.try_acquire().is_ok());
        assert_eq!(cb.health().last_error.as_deref(), Some("still down"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_success_resets_the_count() {
        let cb = CircuitBreaker::new(2, Duration::from_secs(5));
        cb.try_acquire().unwrap().failure("x");
        cb.try_acquire().unwrap().success();
        cb.try_acquire().unwrap().failure("x");
        assert_eq!(cb.health().state, CircuitState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_probe_frees_the_slot() {
        let cb = CircuitBreaker::new(1, Duration::from_secs(1));
        cb.try_acquire().unwrap().failure("x");
        tokio::time::advance(Duration::from_secs(2)).await;
        let probe = cb.try_acquire().unwrap();
        drop(probe);
        assert!(cb.try_acquire().is_ok(), "a cancelled probe must not jam the breaker");
    }
}
