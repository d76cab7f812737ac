//! Fault settings of the REMD emulator and its call counters.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// Faults the REMD emulator injects into `registerDocument` and into its own calls back to
/// the gateway. They never apply to `searchRegistryItem`, `getRegistryItem` or the admin
/// paths.
///
/// Every field has a "no fault" default, so `RemdFaults::default()` is a healthy REMD and a
/// partial JSON object (`{"sync_fault_rate": 0.3}`) sets only what it names.
///
/// The synchronous faults are decided in this order for every `registerDocument` call with
/// the right client entity id: `fail_next_sync`, then `sync_fault_rate` (a SOAP `Receiver`
/// fault), then `sync_5xx_rate` (a bare 503), then `rate_limit_per_second` (`status=error`
/// with `RATE_LIMIT`). A call that gets none of them is **accepted** and processed;
/// `accept_then_silent_rate` then decides whether its HTTP answer is withheld.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct RemdFaults {
    /// At most this many `registerDocument` calls per 1-second window; the calls above it
    /// get `status=error` with `RATE_LIMIT` (nothing registered). A window opens at the
    /// first call after the previous one closed and lasts one second; every
    /// `registerDocument` call that arrives in it counts, faulted or not. `None`: no limit.
    pub rate_limit_per_second: Option<u32>,
    /// Share, `0.0..=1.0`, of `registerDocument` calls answered with a SOAP `Receiver`
    /// fault (`INTERNAL_ERROR`, HTTP 500). Nothing is registered.
    pub sync_fault_rate: f64,
    /// Share, `0.0..=1.0`, of `registerDocument` calls answered with a bare HTTP 503 (no
    /// SOAP body). Nothing is registered.
    pub sync_5xx_rate: f64,
    /// Share, `0.0..=1.0`, of **accepted** `registerDocument` calls whose HTTP answer never
    /// comes: the connection is held until the client gives up (or the sandbox shuts
    /// down), while the document is processed — and registered — as if the answer had
    /// gone out. The gateway sees a timeout after sending.
    pub accept_then_silent_rate: f64,
    /// Share, `0.0..=1.0`, of results (`sendRegisterDocumentResult`) never posted.
    pub lost_callback_rate: f64,
    /// Share, `0.0..=1.0`, of results posted twice (two calls with their own message ids
    /// and the same `relatesToMessage`).
    pub duplicate_callback_rate: f64,
    /// Extra milliseconds before a result is posted (after the processing itself).
    pub callback_delay_ms: u64,
    /// The next N `registerDocument` calls get a `Receiver` fault whatever the rates say;
    /// decremented as used.
    pub fail_next_sync: u32,
    /// When non-empty, every result is `status=error` with these codes (texts from NSI
    /// 1.2.643.5.1.13.13.99.2.305 when the code is in it) and nothing is registered: for
    /// tests of permanent errors.
    pub reject_codes: Vec<String>,
}

impl RemdFaults {
    /// The same faults with every rate forced into `0.0..=1.0` (NaN becomes 0).
    pub(crate) fn normalized(mut self) -> RemdFaults {
        for rate in self.rates_mut() {
            *rate = if rate.is_nan() { 0.0 } else { rate.clamp(0.0, 1.0) };
        }
        self
    }

    /// The name of the first rate outside `0.0..=1.0` (or NaN), if any.
    pub(crate) fn invalid_rate(&self) -> Option<&'static str> {
        [
            ("sync_fault_rate", self.sync_fault_rate),
            ("sync_5xx_rate", self.sync_5xx_rate),
            ("accept_then_silent_rate", self.accept_then_silent_rate),
            ("lost_callback_rate", self.lost_callback_rate),
            ("duplicate_callback_rate", self.duplicate_callback_rate),
        ]
        .into_iter()
        .find(|(_, rate)| !(0.0..=1.0).contains(rate))
        .map(|(name, _)| name)
    }

    fn rates_mut(&mut self) -> [&mut f64; 5] {
        [
            &mut self.sync_fault_rate,
            &mut self.sync_5xx_rate,
            &mut self.accept_then_silent_rate,
            &mut self.lost_callback_rate,
            &mut self.duplicate_callback_rate,
        ]
    }
}

/// True with probability `rate` (never for 0, always for 1).
pub(crate) fn draw(rate: f64) -> bool {
    rate > 0.0 && (rate >= 1.0 || rand::random::<f64>() < rate)
}

/// What the REMD emulator has seen and done since start.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct RemdStats {
    /// `registerDocument` calls that were readable and carried the right client entity id,
    /// whatever happened to them next (each also has an entry in
    /// [`crate::RemdSandbox::register_call_times`]).
    pub register_calls: u64,
    /// `registerDocument` calls accepted (sync `success`, or withheld by
    /// `accept_then_silent_rate`) and handed to processing.
    pub accepted: u64,
    /// `registerDocument` calls answered `status=error` with `RATE_LIMIT`.
    pub rate_limited: u64,
    /// `registerDocument` calls answered with an injected `Receiver` fault or a bare 503.
    pub faulted: u64,
    /// Accepted `registerDocument` calls whose answer was withheld (also in `accepted`).
    pub silent: u64,
    /// `getDocumentFile` calls made to the gateway (every attempt, retries included).
    pub file_pulls: u64,
    /// `sendRegisterDocumentResult` calls the gateway acknowledged (a duplicated result
    /// counts twice).
    pub results_posted: u64,
    /// Results never delivered: dropped by `lost_callback_rate`, or not acknowledged after
    /// every retry (or no callback URL was set).
    pub results_lost: u64,
    /// `searchRegistryItem` calls answered.
    pub search_calls: u64,
    /// `getRegistryItem` calls answered.
    pub get_calls: u64,
}

/// The live counters behind [`RemdStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub register_calls: AtomicU64,
    pub accepted: AtomicU64,
    pub rate_limited: AtomicU64,
    pub faulted: AtomicU64,
    pub silent: AtomicU64,
    pub file_pulls: AtomicU64,
    pub results_posted: AtomicU64,
    pub results_lost: AtomicU64,
    pub search_calls: AtomicU64,
    pub get_calls: AtomicU64,
}

impl Counters {
    /// Adds one to a counter.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> RemdStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        RemdStats {
            register_calls: get(&self.register_calls),
            accepted: get(&self.accepted),
            rate_limited: get(&self.rate_limited),
            faulted: get(&self.faulted),
            silent: get(&self.silent),
            file_pulls: get(&self.file_pulls),
            results_posted: get(&self.results_posted),
            results_lost: get(&self.results_lost),
            search_calls: get(&self.search_calls),
            get_calls: get(&self.get_calls),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_json_is_partial() {
        let f: RemdFaults =
            serde_json::from_str(r#"{"sync_fault_rate":0.3,"reject_codes":["PERSON_NOT_FOUND"]}"#).unwrap();
        assert_eq!(f.sync_fault_rate, 0.3);
        assert_eq!(f.reject_codes, ["PERSON_NOT_FOUND"]);
        assert_eq!(f.rate_limit_per_second, None);
        assert_eq!(f.fail_next_sync, 0);
        let json = serde_json::to_value(RemdFaults::default()).unwrap();
        assert_eq!(json["rate_limit_per_second"], serde_json::Value::Null);
        assert_eq!(json["callback_delay_ms"], 0);
    }

    #[test]
    fn rates_are_clamped_and_checked() {
        let f = RemdFaults {
            sync_fault_rate: 1.5,
            sync_5xx_rate: f64::NAN,
            lost_callback_rate: -1.0,
            ..RemdFaults::default()
        };
        assert_eq!(f.invalid_rate(), Some("sync_fault_rate"));
        let n = f.normalized();
        assert_eq!((n.sync_fault_rate, n.sync_5xx_rate, n.lost_callback_rate), (1.0, 0.0, 0.0));
        assert_eq!(n.invalid_rate(), None);
        assert_eq!(
            RemdFaults { duplicate_callback_rate: 2.0, ..RemdFaults::default() }.invalid_rate(),
            Some("duplicate_callback_rate")
        );
    }

    #[test]
    fn draws() {
        assert!(!draw(0.0));
        assert!(draw(1.0));
        assert!((0..1000).any(|_| draw(0.5)) && (0..1000).any(|_| !draw(0.5)));
    }

    #[test]
    fn counters_snapshot() {
        let c = Counters::default();
        Counters::bump(&c.register_calls);
        Counters::bump(&c.results_lost);
        let s = c.snapshot();
        assert_eq!((s.register_calls, s.results_lost, s.accepted), (1, 1, 0));
    }
}
