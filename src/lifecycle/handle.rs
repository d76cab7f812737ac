//! The lifecycle as the running gateway applies it. [`Lifecycle`] holds what
//! [`super::decide`] is given — the code tables, the times, a random source for the retry
//! schedule — and the bell that wakes the relay when something is due now. The relay, the
//! REMD listener and ops share one handle, so that they decide alike and none of them reaches
//! through another to decide. The decisions themselves stay pure (`lifecycle.rs`).

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use egisz_contract::remd::RemdMessage;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::sync::Notify;

use super::{Decision, Happening, Rules, Timing, decide, unknown_codes};
use crate::mappings::Mappings;
use crate::metrics::Metrics;
use crate::submission::SubmissionRecord;

/// The lifecycle's rules, its random source and the relay's bell, shared.
pub struct Lifecycle {
    mappings: Arc<Mappings>,
    timing: Timing,
    rng: Mutex<StdRng>,
    /// Rung when a submission becomes due now (intake, a re-run, a retry due at once);
    /// idle relay workers wait on it.
    bell: Arc<Notify>,
    metrics: Arc<Metrics>,
}

impl Lifecycle {
    /// The rules of `mappings` and `timing` (`[relay]`), with `bell` the relay listens to.
    pub fn new(mappings: Arc<Mappings>, timing: Timing, bell: Arc<Notify>, metrics: Arc<Metrics>) -> Self {
        Self { mappings, timing, rng: Mutex::new(StdRng::from_os_rng()), bell, metrics }
    }

    /// What `happening` does to `record` now ([`super::decide`] with these rules and this
    /// random source).
    pub fn decide(&self, record: &SubmissionRecord, happening: Happening<'_>, now: DateTime<Utc>) -> Decision {
        let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        decide(Rules { mappings: &self.mappings, timing: &self.timing }, record, happening, now, &mut *rng)
    }

    /// The times the rules work with.
    pub fn timing(&self) -> &Timing {
        &self.timing
    }

    /// Wakes the relay's idle workers: something is due now.
    pub fn wake(&self) {
        self.bell.notify_waiters();
    }

    /// The bell itself, for those who wait on it or ring it from elsewhere (the relay's
    /// idle workers; the database's notifications of other instances' intakes).
    pub fn bell(&self) -> &Arc<Notify> {
        &self.bell
    }

    /// Counts (and logs, when it looks like a code) each code of `messages` the mappings
    /// do not know, so that the table can be brought up to date.
    pub fn observe_codes(&self, messages: &[RemdMessage]) {
        for code in unknown_codes(&self.mappings, messages) {
            self.metrics.remd_unknown_codes.inc();
            // The code comes from outside: logged only when it looks like a code.
            let looks_like_a_code = !code.is_empty()
                && code.len() <= 64
                && code.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
            let shown = if looks_like_a_code { code } else { "?" };
            tracing::warn!(
                code = shown,
                "REMD answered a code the mappings do not know; treated as needing a data fix"
            );
        }
    }
}
