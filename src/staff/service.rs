use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use egisz_contract::frmr::FrmrRegistry;
use egisz_contract::{Failure, Oid, Snils};
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};

use crate::circuit::{CircuitBreaker, CircuitState, Health};
use crate::metrics::Metrics;
use crate::store::{CachedLookup, Store};

/// How long cached FRMR answers are trusted.
#[derive(Debug, Clone, Copy)]
pub struct CachePolicy {
    /// Served without asking FRMR.
    pub fresh_for: Duration,
    /// Served, marked stale, when FRMR cannot answer.
    pub stale_limit: Duration,
    /// How long "not in FRMR" is trusted.
    pub not_found_for: Duration,
    /// `Retry-After` when FRMR is unavailable and the breaker gives no better figure.
    pub retry_after: Duration,
}

impl CachePolicy {
    fn age(entry: &CachedLookup, now: DateTime<Utc>) -> Duration {
        (now - entry.fetched_at).to_std().unwrap_or(Duration::ZERO)
    }

    pub fn is_fresh(&self, entry: &CachedLookup, now: DateTime<Utc>) -> bool {
        let limit = if entry.person.is_some() { self.fresh_for } else { self.not_found_for };
        Self::age(entry, now) < limit
    }

    pub fn is_servable_stale(&self, entry: &CachedLookup, now: DateTime<Utc>) -> bool {
        Self::age(entry, now) < self.stale_limit
    }
}

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// FRMR was asked for this request (or for a concurrent identical one).
    Frmr,
    Cache,
}

/// A person record (or its absence) with its provenance.
#[derive(Debug, Clone)]
pub struct Lookup {
    pub entry: CachedLookup,
    pub source: Source,
    /// FRMR could not be reached and the entry is older than the freshness limit.
    pub stale: bool,
}

/// Why no answer can be given.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LookupError {
    /// FRMR cannot answer now and nothing usable is cached.
    #[error("FRMR unavailable: {reason}")]
    Unavailable { reason: String, retry_after: Duration },
    /// FRMR refused our request as malformed (a bug on our side, or an input FRMR rejects).
    #[error("FRMR rejected the request: {reason}")]
    Rejected { reason: String },
}

type Key = (Snils, Oid);

#[derive(Debug, Clone)]
struct Fetched {
    entry: CachedLookup,
    /// The flight found a fresh entry another flight had just written.
    from_cache: bool,
}

#[derive(Debug, Clone)]
enum FlightError {
    Frmr(Failure),
    CircuitOpen(Duration),
}

type Flight = Shared<BoxFuture<'static, Result<Fetched, FlightError>>>;

/// Staff verification lookups. Cheap to clone.
#[derive(Clone)]
pub struct StaffService {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    frmr: Arc<dyn FrmrRegistry>,
    metrics: Arc<Metrics>,
    breaker: CircuitBreaker,
    policy: CachePolicy,
    inflight: Mutex<HashMap<Key, Flight>>,
}

impl StaffService {
    pub fn new(
        store: Arc<dyn Store>,
        frmr: Arc<dyn FrmrRegistry>,
        metrics: Arc<Metrics>,
        breaker: CircuitBreaker,
        policy: CachePolicy,
    ) -> Self {
        Self { inner: Arc::new(Inner { store, frmr, metrics, breaker, policy, inflight: Mutex::new(HashMap::new()) }) }
    }

    pub fn policy(&self) -> CachePolicy {
        self.inner.policy
    }

    /// FRMR's health as this process sees it.
    pub fn frmr_health(&self) -> Health {
        self.inner.breaker.health()
    }

    /// The person record for `(snils, organization)`: from the cache while fresh, else from
    /// FRMR (one call however many ask at once), else stale from the cache.
    pub async fn lookup(&self, snils: &Snils, organization: &Oid) -> Result<Lookup, LookupError> {
        let inner = &self.inner;
        let cached = match inner.store.staff_cache_get(snils, organization).await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "staff cache read failed; asking FRMR");
                None
            }
        };
        if let Some(entry) = &cached
            && inner.policy.is_fresh(entry, crate::now())
        {
            inner.metrics.staff_lookup("cache");
            return Ok(Lookup { entry: entry.clone(), source: Source::Cache, stale: false });
        }
        match self.flight(snils, organization).await {
            Ok(f) => {
                inner.metrics.staff_lookup(if f.from_cache { "cache" } else { "frmr" });
                Ok(Lookup {
                    entry: f.entry,
                    source: if f.from_cache { Source::Cache } else { Source::Frmr },
                    stale: false,
                })
            }
            Err(FlightError::Frmr(Failure::Permanent { reason })) => {
                inner.metrics.staff_lookup("error");
                Err(LookupError::Rejected { reason })
            }
            Err(err) => {
                if let Some(entry) = cached
                    && inner.policy.is_servable_stale(&entry, crate::now())
                {
                    inner.metrics.staff_lookup("stale");
                    return Ok(Lookup { entry, source: Source::Cache, stale: true });
                }
                inner.metrics.staff_lookup("unavailable");
                let (reason, retry_after) = match err {
                    FlightError::CircuitOpen(wait) => {
                        ("FRMR не отвечает; повторные обращения приостановлены".to_owned(), wait)
                    }
                    FlightError::Frmr(f) => {
                        let after = match &f {
                            Failure::Retry { after: Some(a), .. } => *a,
                            _ => inner.policy.retry_after,
                        };
                        (f.reason().to_owned(), after)
                    }
                };
                Err(LookupError::Unavailable { reason, retry_after: retry_after.max(Duration::from_secs(1)) })
            }
        }
    }

    /// Joins the FRMR call in flight for this key, or starts one. The call runs in its own
    /// task, so a caller that goes away does not cancel it for the others.
    fn flight(&self, snils: &Snils, organization: &Oid) -> Flight {
        let key = (snils.clone(), organization.clone());
        let mut map = self.inner.inflight.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = map.get(&key) {
            self.inner.metrics.staff_coalesced.inc();
            return f.clone();
        }
        let inner = Arc::clone(&self.inner);
        let task_key = key.clone();
        let handle = tokio::spawn(async move {
            let result = inner.fetch(&task_key.0, &task_key.1).await;
            inner.inflight.lock().unwrap_or_else(|p| p.into_inner()).remove(&task_key);
            result
        });
        let flight = handle
            .map(|joined| {
                joined.unwrap_or_else(|e| {
                    Err(FlightError::Frmr(Failure::Retry { reason: format!("lookup task failed: {e}"), after: None }))
                })
            })
            .boxed()
            .shared();
        map.insert(key, flight.clone());
        flight
    }
}

impl Inner {
    async fn fetch(&self, snils: &Snils, organization: &Oid) -> Result<Fetched, FlightError> {
        // A flight that ended a moment ago may have filled the cache after our caller looked.
        if let Ok(Some(entry)) = self.store.staff_cache_get(snils, organization).await
            && self.policy.is_fresh(&entry, crate::now())
        {
            return Ok(Fetched { entry, from_cache: true });
        }
        let permit = self.breaker.try_acquire().map_err(FlightError::CircuitOpen)?;
        let result = self.frmr.person_full(organization, snils).await;
        match &result {
            Ok(_) | Err(Failure::Permanent { .. }) => self.breaker.success(permit),
            Err(f) => {
                if matches!(f, Failure::Configuration { .. }) {
                    tracing::error!(
                        reason = f.reason(),
                        "FRMR refuses our credentials: the token provider or access rights need an administrator"
                    );
                } else {
                    tracing::warn!(organization = %organization, reason = f.reason(), "FRMR lookup failed");
                }
                self.breaker.failure(permit, f.reason());
            }
        }
        self.metrics.frmr_circuit_open.set(i64::from(self.breaker.health().state == CircuitState::Open));
        let person = result.map_err(FlightError::Frmr)?;
        let entry =
            CachedLookup { snils: snils.clone(), organization: organization.clone(), person, fetched_at: crate::now() };
        if let Err(e) = self.store.staff_cache_put(&entry).await {
            tracing::error!(error = %e, "staff cache write failed; the answer is served but not kept");
        }
        Ok(Fetched { entry, from_cache: false })
    }
}
