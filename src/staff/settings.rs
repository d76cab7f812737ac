//! `[frmr]`: FRMR as the staff service reaches and uses it, declared here, where it is used,
//! and filled by the configuration reader ([`crate::config`]); every key is documented for
//! operators in `config/default.toml`.

use std::path::PathBuf;
use std::time::Duration;

use egisz_contract::ServiceMode;
use url::Url;

/// FRMR's section of the configuration.
#[derive(Debug, Clone)]
pub struct FrmrConfig {
    /// The FRMR emulator or the real FRMR (`frmr.mode`). Default: sandbox.
    pub mode: ServiceMode,
    /// FRMR's base URL (`frmr.base_url`). Required in remote mode; in sandbox mode the
    /// emulator's address is used when empty. Default: empty.
    pub base_url: Option<Url>,
    /// The bearer token source (`frmr.token`): `static:<token>` or a provider URL; `None` in
    /// sandbox mode means the emulator's token provider. Default: empty.
    pub token: Option<String>,
    /// PEM file of extra root certificates for FRMR and the token provider
    /// (`frmr.extra_ca_bundle`). Default: none: the built-in web roots only.
    pub extra_ca_bundle: Option<PathBuf>,
    /// Calls per second to FRMR, fractions allowed (`frmr.rate_per_second`): for the cluster
    /// on PostgreSQL, for the process on SQLite. Default: 2.
    pub rate_per_second: f64,
    /// How long a verification waits for FRMR before it answers from the stale cache or with
    /// 503 (`frmr.answer_within_ms`); the call goes on into the cache. Default: 8 s.
    pub answer_within: Duration,
    /// Distinct FRMR lookups in flight at once, everyone together
    /// (`frmr.max_pending_lookups`); beyond it the answer is stale or 503. Default: 100.
    pub max_pending_lookups: usize,
    /// Of `max_pending_lookups`, what only intake's signer check may use
    /// (`frmr.intake_reserve`). Default: 20 lookups.
    pub intake_reserve: usize,
    /// The most lookups in flight one API client may hold; beyond it the client gets `429`
    /// (`frmr.client_share`). Default: 20 lookups.
    pub client_share: usize,
    /// Time limit of one HTTP call to FRMR (`frmr.timeout_ms`). Default: 5 s.
    pub timeout: Duration,
    /// Attempts per lookup for transient failures (429, 5xx, timeouts), the first included
    /// (`frmr.retry_max_attempts`). Default: 3.
    pub retry_max_attempts: u32,
    /// Longest pause between two attempts; a `Retry-After` beyond it ends the retries
    /// (`frmr.retry_max_delay_ms`). Default: 2 s.
    pub retry_max_delay: Duration,
    /// A cached answer younger than this is served without asking FRMR
    /// (`frmr.cache_fresh_for`). Default: 24 h.
    pub cache_fresh_for: Duration,
    /// A cached answer younger than this is served, marked stale, when FRMR cannot answer;
    /// older entries are deleted (`frmr.cache_stale_limit`). Default: 7 days.
    pub cache_stale_limit: Duration,
    /// How long a "not in FRMR" answer is trusted (`frmr.cache_not_found_for`).
    /// Default: 15 min.
    pub cache_not_found_for: Duration,
    /// How long a fresh entry is also kept in process memory, never beyond `cache_fresh_for`
    /// (`frmr.cache_memory_for`); zero: off. Default: 30 s.
    pub cache_memory_for: Duration,
    /// Consecutive failed calls that open the circuit breaker, so FRMR is not called
    /// (`frmr.circuit_failure_threshold`). Default: 5 calls.
    pub circuit_failure_threshold: u32,
    /// How long the breaker stays open before one probe call is let through
    /// (`frmr.circuit_open_for`). Default: 30 s.
    pub circuit_open_for: Duration,
}
