//! `[relay]`: the relay's settings, declared once and filled by the configuration reader
//! ([`crate::config`]); every key is documented for operators in `config/default.toml`.

use std::time::Duration;

use crate::lifecycle::Timing;

/// The relay's section of the configuration, as the relay uses it.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// This instance's name on leases (`relay.instance_id`): each lease is
    /// `<instance_id>:<claim>`, so a restart takes back its own. Default: the host name.
    pub instance_id: String,
    /// Workers sending to REMD at once (`relay.concurrency`). Default: 4.
    pub concurrency: usize,
    /// How long a claim is held (`relay.lease_for`); renewed every third of it while a call
    /// is in flight, so past it a crashed worker's submission is reconciled. At least 3 s.
    /// Default: 30 s.
    pub lease_for: Duration,
    /// Longest sleep when nothing is due (`relay.poll_interval_ms`); new work also wakes
    /// the relay at once. Default: 1 s.
    pub poll_interval: Duration,
    /// When the lifecycle looks up results and retries (`relay.result_check_after`,
    /// `result_deadline`, `reconcile_after`, `retry_base`, `retry_cap`, `max_attempts`,
    /// `max_age`, `rate_limited_wait`): the lifecycle's own [`Timing`], which
    /// [`crate::lifecycle::Lifecycle::new`] takes; the relay reads it from its lifecycle.
    pub timing: Timing,
    /// How long REMD's calls to the gateway are kept as received (`relay.callbacks_kept_for`).
    /// Default: 90 days.
    pub callbacks_kept_for: Duration,
    /// On a graceful stop, how long calls to REMD already on the wire may take to be
    /// answered (`relay.stop_grace`); claims not yet sent are given back at once.
    /// Default: 10 s.
    pub stop_grace: Duration,
}
