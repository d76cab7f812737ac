//! Fault settings of the FRMR emulator and its call counters.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// Faults the FRMR service listener injects. They never apply to the control listener
/// (token provider and admin).
///
/// Every field has a "no fault" default, so `Faults::default()` is a healthy FRMR and a
/// partial JSON object (`{"mode": "down"}`) sets only what it names.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Faults {
    /// Milliseconds added before every answer of the service listener (normal answers,
    /// errors and faulted answers alike).
    pub latency_ms: u64,
    /// What a faulted `person/full` request gets. [`FaultMode::Down`] is different: it
    /// applies to every connection at the listener, regardless of `error_rate` and
    /// `fail_next`.
    pub mode: FaultMode,
    /// Probability, `0.0..=1.0`, that a `person/full` request is faulted with `mode`.
    /// [`crate::FrmrSandbox::set_faults`] clamps it into range; the admin endpoint refuses
    /// values out of range.
    pub error_rate: f64,
    /// The next N `person/full` requests are faulted with `mode` whatever `error_rate`
    /// says; decremented as used. Ignored (and not decremented) while `mode` is
    /// [`FaultMode::None`] or [`FaultMode::Down`].
    pub fail_next: u32,
    /// Seconds to put in a `Retry-After` header on 429 and 503 answers; no header when
    /// `None`.
    pub retry_after_secs: Option<u64>,
    /// Answer "not found" as FRMR sometimes does, `200 {"requestId": …, "content":
    /// null}`, instead of a 404 error envelope.
    pub not_found_as_null: bool,
}

impl Faults {
    /// The same faults with `error_rate` forced into `0.0..=1.0` (NaN becomes 0).
    pub(crate) fn normalized(mut self) -> Faults {
        self.error_rate = if self.error_rate.is_nan() { 0.0 } else { self.error_rate.clamp(0.0, 1.0) };
        self
    }
}

/// What a faulted request gets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultMode {
    /// No fault: `error_rate` and `fail_next` have no effect.
    #[default]
    None,
    /// `429 Too Many Requests` error envelope, with `Retry-After` when
    /// [`Faults::retry_after_secs`] is set.
    TooManyRequests,
    /// `503 Service Unavailable` error envelope, with `Retry-After` when
    /// [`Faults::retry_after_secs`] is set.
    ServerError,
    /// `500 Internal Server Error` error envelope.
    InternalError,
    /// The request is never answered (the connection stays open until the client gives
    /// up or the sandbox shuts down).
    Hang,
    /// The listener accepts every connection and drops it at once, without an HTTP
    /// answer; connections already open are dropped when this mode is set. Applies to
    /// every connection while set, regardless of `error_rate` and `fail_next`.
    Down,
}

/// What the FRMR emulator has seen since start or the last reset.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct FrmrStats {
    /// Every request that reached the `person/full` route, faulted or not.
    pub person_calls: u64,
    /// `person/full` answered `200` with a person.
    pub answered_ok: u64,
    /// `person/full` answered "not found" (404 envelope or `content: null`).
    pub not_found: u64,
    /// `person/full` answered `401` (no token, or not a valid one).
    pub unauthorized: u64,
    /// `person/full` answered `400` (missing or malformed `snils`, `mo` or `mr`) or
    /// `405` (a method other than GET).
    pub bad_requests: u64,
    /// `person/full` requests faulted with a 429/503/500 answer or a hang.
    pub faulted: u64,
    /// Connections to the service listener dropped without an answer because the mode
    /// was [`FaultMode::Down`].
    pub dropped_connections: u64,
    /// Tokens issued by the token provider.
    pub tokens_issued: u64,
}

/// The live counters behind [`FrmrStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub person_calls: AtomicU64,
    pub answered_ok: AtomicU64,
    pub not_found: AtomicU64,
    pub unauthorized: AtomicU64,
    pub bad_requests: AtomicU64,
    pub faulted: AtomicU64,
    pub dropped_connections: AtomicU64,
    pub tokens_issued: AtomicU64,
}

impl Counters {
    /// Adds one to a counter.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn all(&self) -> [&AtomicU64; 8] {
        [
            &self.person_calls,
            &self.answered_ok,
            &self.not_found,
            &self.unauthorized,
            &self.bad_requests,
            &self.faulted,
            &self.dropped_connections,
            &self.tokens_issued,
        ]
    }

    pub fn snapshot(&self) -> FrmrStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        FrmrStats {
            person_calls: get(&self.person_calls),
            answered_ok: get(&self.answered_ok),
            not_found: get(&self.not_found),
            unauthorized: get(&self.unauthorized),
            bad_requests: get(&self.bad_requests),
            faulted: get(&self.faulted),
            dropped_connections: get(&self.dropped_connections),
            tokens_issued: get(&self.tokens_issued),
        }
    }

    pub fn reset(&self) {
        for counter in self.all() {
            counter.store(0, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_json_is_snake_case_and_partial() {
        let f: Faults = serde_json::from_str(r#"{"mode":"too_many_requests","fail_next":2}"#).unwrap();
        assert_eq!(f.mode, FaultMode::TooManyRequests);
        assert_eq!(f.fail_next, 2);
        assert_eq!(f.latency_ms, 0);
        assert_eq!(serde_json::to_value(FaultMode::ServerError).unwrap(), "server_error");
        assert_eq!(serde_json::to_value(FaultMode::Down).unwrap(), "down");
    }

    #[test]
    fn error_rate_is_clamped() {
        let clamp = |r: f64| Faults { error_rate: r, ..Faults::default() }.normalized().error_rate;
        assert_eq!(clamp(1.5), 1.0);
        assert_eq!(clamp(-1.0), 0.0);
        assert_eq!(clamp(f64::NAN), 0.0);
        assert_eq!(clamp(0.25), 0.25);
    }

    #[test]
    fn counters_snapshot_and_reset() {
        let c = Counters::default();
        Counters::bump(&c.person_calls);
        Counters::bump(&c.tokens_issued);
        let s = c.snapshot();
        assert_eq!((s.person_calls, s.tokens_issued, s.faulted), (1, 1, 0));
        c.reset();
        assert_eq!(c.snapshot(), FrmrStats::default());
    }
}
