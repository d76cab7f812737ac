//! REMD as this gateway calls it: one client, the quota every call takes its slot from
//! ([`crate::quota`]: the cluster's on PostgreSQL, this process's on SQLite), and what the
//! calls have been finding lately (a circuit watched, not gating: the relay's schedule paces
//! the retries). The relay sends and looks up through it; the REMD listener confirms a
//! success through it; ops show its health.

use std::sync::Arc;
use std::time::Duration;

use egisz_contract::remd::RemdRegistry;
use egisz_contract::{CallObserver, Failure};

use crate::circuit::{CircuitBreaker, Health};
use crate::metrics::Metrics;
use crate::quota::{QuotaClient, Rate, Waited};
use crate::store::Store;
use crate::submission::SubmissionRecord;

/// The bucket of REMD's calls in the shared quota table.
pub const REMD_QUOTA: &str = "remd";

/// The longest a caller waits in the cluster's queue for a REMD slot before it asks again
/// (a relay worker holds its claim meanwhile; the lease is renewed).
pub const QUOTA_MAX_WAIT: Duration = Duration::from_secs(5);

/// Consecutive failed calls after which the summary shows REMD's circuit as open.
const FAILURES_TO_OPEN: u32 = 5;

/// REMD's client with its quota and health, shared by every caller of this process.
pub struct RemdCalls {
    registry: Arc<dyn RemdRegistry>,
    quota: QuotaClient,
    health: CircuitBreaker,
    metrics: Arc<Metrics>,
}

impl RemdCalls {
    /// `registry` paced by `rate` (`[remd]`), shared through `store` when it shares quotas.
    pub fn new(store: Arc<dyn Store>, registry: Arc<dyn RemdRegistry>, rate: Rate, metrics: Arc<Metrics>) -> Self {
        Self {
            quota: QuotaClient::new(store, REMD_QUOTA, rate, QUOTA_MAX_WAIT),
            registry,
            health: CircuitBreaker::new(FAILURES_TO_OPEN, Duration::from_secs(60)),
            metrics,
        }
    }

    /// The client itself. A caller takes its [`RemdCalls::slot`] before each call (the relay
    /// races it against its stop) and reports the outcome to [`RemdCalls::observe`].
    pub fn registry(&self) -> &dyn RemdRegistry {
        &*self.registry
    }

    /// Waits for this call's slot in REMD's quota, right before the call, so that what REMD
    /// sees is what the quota allows (a token taken earlier, before database work of varying
    /// length, would let calls bunch up). The wait, and the slots given up for waking late
    /// (`slot_missed`), are counted.
    pub async fn slot(&self) -> Waited {
        let waited = self.quota.slot().await;
        for _ in 0..waited.missed {
            self.metrics.relay_outcome("slot_missed");
        }
        if waited.waited > Duration::from_millis(1) {
            self.metrics.rate_limit_waited("remd", waited.waited);
        }
        waited
    }

    /// Notes how a call went, for [`RemdCalls::health`].
    pub fn observe<T>(&self, outcome: &Result<T, Failure>) {
        self.health.observe(outcome.as_ref().err().map(|f| f.reason()));
    }

    /// Asks REMD whether `emdr_id` is registered, for `submission`'s document: the item
    /// exists and names its `localUid` (or none) and its kind (or none). Within REMD's quota.
    /// `Err`: REMD could not answer (the reason, for the log).
    pub async fn confirm_registered(&self, emdr_id: &str, submission: &SubmissionRecord) -> Result<bool, String> {
        self.slot().await;
        let answer = self.registry.get_registry_item(emdr_id).await;
        self.observe(&answer);
        match answer {
            Ok(Some(item)) => Ok(item.local_uid.as_deref().is_none_or(|uid| uid == submission.local_uid)
                && item.kind.is_none_or(|kind| kind == submission.kind)),
            Ok(None) => Ok(false),
            Err(failure) => Err(failure.to_string()),
        }
    }

    /// REMD as this instance's calls found it: the circuit state (open after consecutive
    /// failures), the last success and the last error.
    pub fn health(&self) -> Health {
        self.health.health()
    }
}
