use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use egisz_contract::frmr::FrmrRegistry;
use egisz_contract::{Failure, Oid, Snils};
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};

use super::shares::{Admission, Asker, SharePolicy, Shares, Ticket};
use crate::circuit::{CircuitBreaker, Health};
use crate::memo::Memo;
use crate::metrics::Metrics;
use crate::quota::QuotaClient;
use crate::store::{CachedLookup, Store};

/// How long cached FRMR answers are trusted, and how long a caller waits for FRMR.
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
    /// How long a fresh entry is also kept in process memory.
    pub memory_for: Duration,
    /// How long a caller waits for FRMR before it is answered from the stale cache or told
    /// FRMR is unavailable; the FRMR call itself goes on and fills the cache.
    pub answer_within: Duration,
    /// How the lookups in flight are shared between intake and the API's clients, and how
    /// many calls to FRMR are under way at once ([`super::shares`]).
    pub shares: SharePolicy,
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
    /// FRMR could not answer and the entry is older than the freshness limit.
    pub stale: bool,
}

/// Why no answer can be given. `detail` is Russian text for the caller; the technical
/// reason goes to the log.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LookupError {
    /// FRMR cannot answer now and nothing usable is cached.
    #[error("FRMR unavailable: {detail}")]
    Unavailable { detail: String, retry_after: Duration },
    /// FRMR refused the gateway's request as malformed, and nothing usable is cached.
    #[error("FRMR rejected the request")]
    Rejected,
    /// The asker holds its whole share of the lookups in flight; the others go on.
    #[error("over its share of FRMR lookups")]
    OverShare { retry_after: Duration },
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
    /// The caller's wait ended; the flight goes on.
    Deadline,
    /// Too many distinct lookups in flight.
    Overloaded,
    /// The asker holds its whole share.
    OverShare(Duration),
    /// The lookup task ended abnormally (a bug); details are in the log.
    Internal,
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
    inflight: Mutex<HashMap<Key, (Flight, Ticket)>>,
    gate: Gate,
    /// Copies of fresh database entries, so repeated checks skip the database.
    memo: Memo<Key, CachedLookup>,
    /// FRMR's quota for the whole cluster, when the store shares quotas (PostgreSQL): each
    /// lookup waits for its slot first.
    cluster_quota: Option<QuotaClient>,
}

/// The bucket of FRMR's lookups in the shared quota table.
pub const FRMR_QUOTA: &str = "frmr";

/// The longest a lookup waits in the cluster's queue for an FRMR slot before it asks again.
pub const FRMR_QUOTA_MAX_WAIT: Duration = Duration::from_secs(2);

/// Removes a flight from the in-flight map however its task ends (panics included).
struct Landing<'a> {
    inner: &'a Inner,
    key: &'a Key,
}

impl Drop for Landing<'_> {
    fn drop(&mut self) {
        self.inner.inflight.lock().unwrap_or_else(|p| p.into_inner()).remove(self.key);
    }
}

impl StaffService {
    /// The service of `[frmr]`: its cache policy, its fair shares, the circuit breaker in
    /// front of FRMR and, on a database every instance shares, the cluster's quota.
    pub fn of_config(
        store: Arc<dyn Store>,
        frmr: Arc<dyn FrmrRegistry>,
        metrics: Arc<Metrics>,
        config: &super::FrmrConfig,
    ) -> Self {
        let policy = CachePolicy {
            fresh_for: config.cache_fresh_for,
            stale_limit: config.cache_stale_limit,
            not_found_for: config.cache_not_found_for,
            retry_after: config.circuit_open_for,
            memory_for: config.cache_memory_for,
            answer_within: config.answer_within,
            shares: SharePolicy {
                max_pending: config.max_pending_lookups,
                intake_reserve: config.intake_reserve,
                client_share: config.client_share,
                // Calls under way at once: half a second's worth of FRMR's rate (at least two),
                // so that the queue, and its turns, is ours rather than the rate limiter's
                // (which serves its waiters in no particular order).
                max_calls: ((config.rate_per_second / 2.0).ceil() as usize).clamp(2, config.max_pending_lookups),
                rate_per_second: config.rate_per_second,
            },
        };
        let breaker = CircuitBreaker::new(config.circuit_failure_threshold, config.circuit_open_for);
        // On PostgreSQL frmr.rate_per_second is the cluster's (a burst of one second's calls).
        Self::new(store, frmr, metrics, breaker, policy).with_cluster_quota(crate::quota::Rate {
            per_second: config.rate_per_second,
            burst: config.rate_per_second.ceil().max(1.0) as u32,
        })
    }

    /// A service with its parts given (tests).
    pub fn new(
        store: Arc<dyn Store>,
        frmr: Arc<dyn FrmrRegistry>,
        metrics: Arc<Metrics>,
        breaker: CircuitBreaker,
        policy: CachePolicy,
    ) -> Self {
        let memo = Memo::new(policy.memory_for.min(policy.fresh_for), 10_000);
        let inflight = Mutex::new(HashMap::new());
        let gate = Gate { policy: policy.shares, state: Mutex::default(), freed: tokio::sync::Notify::new() };
        Self {
            inner: Arc::new(Inner { store, frmr, metrics, breaker, policy, inflight, gate, memo, cluster_quota: None }),
        }
    }

    /// Paces FRMR's lookups by the cluster-wide bucket (`rate` per second, `burst`) when the
    /// store shares quotas; the FRMR client's own limiter still paces this process's calls
    /// and retries.
    pub fn with_cluster_quota(mut self, rate: crate::quota::Rate) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner)
            && inner.store.shares_quotas()
        {
            inner.cluster_quota =
                Some(QuotaClient::new(Arc::clone(&inner.store), FRMR_QUOTA, rate, FRMR_QUOTA_MAX_WAIT));
        }
        self
    }

    /// FRMR's health as this process sees it.
    pub fn frmr_health(&self) -> Health {
        self.inner.breaker.health()
    }

    /// A fresh cached answer, without asking FRMR (memory first, then the database).
    pub async fn cached(&self, snils: &Snils, organization: &Oid) -> Option<Lookup> {
        self.fresh(snils, organization).await.0
    }

    /// The fresh answer if there is one; else whatever the database holds (for a stale answer).
    async fn fresh(&self, snils: &Snils, organization: &Oid) -> (Option<Lookup>, Option<CachedLookup>) {
        let inner = &self.inner;
        let key = (snils.clone(), organization.clone());
        if let Some(entry) = inner.memo.get(&key)
            && inner.policy.is_fresh(&entry, crate::now())
        {
            inner.metrics.staff_lookup("cache");
            return (Some(Lookup { entry, source: Source::Cache, stale: false }), None);
        }
        let cached = match inner.store.staff_cache_get(snils, organization).await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "staff cache read failed; asking FRMR");
                None
            }
        };
        match cached {
            Some(entry) if inner.policy.is_fresh(&entry, crate::now()) => {
                inner.metrics.staff_lookup("cache");
                inner.memo.insert(key, entry.clone());
                (Some(Lookup { entry, source: Source::Cache, stale: false }), None)
            }
            other => (None, other),
        }
    }

    /// The person record for `(snils, organization)`: from the cache while fresh, else from
    /// FRMR (one call however many ask at once, within `asker`'s share, in its turn), else
    /// stale from the cache. Waits for FRMR at most `answer_within`.
    pub async fn lookup(&self, asker: Asker, snils: &Snils, organization: &Oid) -> Result<Lookup, LookupError> {
        let inner = &self.inner;
        let (fresh, cached) = self.fresh(snils, organization).await;
        if let Some(hit) = fresh {
            return Ok(hit);
        }
        let outcome = match self.flight(asker, snils, organization) {
            Ok(flight) => match tokio::time::timeout(inner.policy.answer_within, flight).await {
                Ok(result) => result,
                Err(_) => Err(FlightError::Deadline),
            },
            Err(e) => Err(e),
        };
        let err = match outcome {
            Ok(f) => {
                inner.metrics.staff_lookup(if f.from_cache { "cache" } else { "frmr" });
                let source = if f.from_cache { Source::Cache } else { Source::Frmr };
                return Ok(Lookup { entry: f.entry, source, stale: false });
            }
            Err(e) => e,
        };
        if let Some(entry) = cached
            && inner.policy.is_servable_stale(&entry, crate::now())
        {
            inner.metrics.staff_lookup("stale");
            return Ok(Lookup { entry, source: Source::Cache, stale: true });
        }
        let retry_after = |d: Duration| d.max(Duration::from_secs(1));
        let (detail, wait) = match err {
            FlightError::OverShare(wait) => {
                inner.metrics.staff_lookup("over_share");
                return Err(LookupError::OverShare { retry_after: retry_after(wait) });
            }
            FlightError::Frmr(Failure::Permanent { .. }) => {
                inner.metrics.staff_lookup("error");
                return Err(LookupError::Rejected);
            }
            FlightError::CircuitOpen(wait) => {
                ("ФРМР не отвечает; обращения к нему временно приостановлены".to_owned(), wait)
            }
            FlightError::Deadline => (
                format!(
                    "ФРМР не ответил за {} мс; ответ будет сохранён, повторите запрос позже",
                    inner.policy.answer_within.as_millis()
                ),
                Duration::from_secs(5),
            ),
            FlightError::Overloaded => {
                ("Слишком много одновременных обращений к ФРМР".to_owned(), Duration::from_secs(5))
            }
            FlightError::Frmr(Failure::Configuration { .. }) => {
                ("Шлюз не может обратиться к ФРМР: ошибка настройки доступа".to_owned(), inner.policy.retry_after)
            }
            FlightError::Frmr(Failure::Retry { after, .. }) => {
                ("ФРМР временно недоступен".to_owned(), after.unwrap_or(inner.policy.retry_after))
            }
            FlightError::Frmr(Failure::Unknown { .. }) | FlightError::Internal => {
                ("ФРМР временно недоступен".to_owned(), inner.policy.retry_after)
            }
        };
        inner.metrics.staff_lookup("unavailable");
        Err(LookupError::Unavailable { detail, retry_after: retry_after(wait) })
    }

    /// [`StaffService::lookup`] for a caller with work of its own queued (a batch): while
    /// `asker` is over its share it waits for one of its own lookups to end, until
    /// `deadline`, instead of being turned away.
    pub async fn lookup_in_turn(
        &self,
        asker: Asker,
        snils: &Snils,
        organization: &Oid,
        deadline: tokio::time::Instant,
    ) -> Result<Lookup, LookupError> {
        loop {
            let freed = self.inner.gate.freed.notified();
            match self.lookup(asker, snils, organization).await {
                Err(LookupError::OverShare { retry_after }) => {
                    let woken = tokio::time::timeout_at(deadline, freed).await.is_ok();
                    // Past the deadline the batch has answered: no lookup is started for it.
                    if !woken || tokio::time::Instant::now() >= deadline {
                        return Err(LookupError::OverShare { retry_after });
                    }
                }
                other => return other,
            }
        }
    }

    /// Whether `asker` holds its whole share of the lookups in flight now, and when to ask
    /// again if so.
    pub fn over_share(&self, asker: Asker) -> Option<Duration> {
        let gate = &self.inner.gate;
        let state = gate.lock();
        (state.shares.admit(&gate.policy, asker) == Admission::OverShare)
            .then(|| state.shares.retry_after(&gate.policy, asker))
    }

    /// Joins the FRMR call in flight for this key, or starts one for `asker` within its
    /// share. The call runs in its own task, so a caller that goes away (or stops waiting)
    /// does not cancel it for the others.
    fn flight(&self, asker: Asker, snils: &Snils, organization: &Oid) -> Result<Flight, FlightError> {
        let key = (snils.clone(), organization.clone());
        let mut map = self.inner.inflight.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((f, ticket)) = map.get(&key) {
            self.inner.metrics.staff_coalesced.inc();
            // Intake must not wait in a client's queue for a lookup it needs as well.
            self.inner.gate.promote(*ticket, asker);
            return Ok(f.clone());
        }
        let (ticket, turn) = self.inner.gate.hold(asker)?;
        let inner = Arc::clone(&self.inner);
        let task_key = key.clone();
        let handle = tokio::spawn(async move {
            let _landing = Landing { inner: &inner, key: &task_key };
            let _held = Held { gate: &inner.gate, asker, ticket };
            inner.fetch(&task_key.0, &task_key.1, turn).await
        });
        let flight = handle
            .map(|joined| {
                joined.unwrap_or_else(|e| {
                    tracing::error!(panicked = e.is_panic(), "an FRMR lookup task ended abnormally");
                    Err(FlightError::Internal)
                })
            })
            .boxed()
            .shared();
        map.insert(key, (flight.clone(), ticket));
        Ok(flight)
    }
}

/// The shares of FRMR ([`super::shares`]) and the lookups waiting for their turn.
struct Gate {
    policy: SharePolicy,
    state: Mutex<GateState>,
    /// Told whenever a lookup ends (a share is freed).
    freed: tokio::sync::Notify,
}

#[derive(Default)]
struct GateState {
    shares: Shares,
    /// Whom to wake when their turn comes.
    turns: HashMap<Ticket, tokio::sync::oneshot::Sender<()>>,
    /// Tickets whose call is under way.
    calling: HashSet<Ticket>,
}

impl Gate {
    fn lock(&self) -> std::sync::MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Admits a new lookup of `asker` and queues it for its call.
    fn hold(&self, asker: Asker) -> Result<(Ticket, tokio::sync::oneshot::Receiver<()>), FlightError> {
        let mut state = self.lock();
        match state.shares.admit(&self.policy, asker) {
            Admission::Admitted => {}
            Admission::OverShare => return Err(FlightError::OverShare(state.shares.retry_after(&self.policy, asker))),
            Admission::Full => return Err(FlightError::Overloaded),
        }
        let ticket = state.shares.hold(asker);
        let (tx, rx) = tokio::sync::oneshot::channel();
        state.turns.insert(ticket, tx);
        Ok((ticket, rx))
    }

    fn promote(&self, ticket: Ticket, asker: Asker) {
        if asker == Asker::Intake {
            self.lock().shares.promote(ticket, asker);
            self.dispatch();
        }
    }

    /// Wakes the lookups whose turn it is, as many as calls may start.
    fn dispatch(&self) {
        let mut state = self.lock();
        while let Some(ticket) = state.shares.next_call(&self.policy) {
            let woken = state.turns.remove(&ticket).is_some_and(|tx| tx.send(()).is_ok());
            if woken {
                state.calling.insert(ticket);
            } else {
                // Its lookup ended before its turn: the call slot is not used.
                state.shares.call_done();
            }
        }
    }

    /// A lookup ended: its share and its call (if it made one) are freed.
    fn release(&self, asker: Asker, ticket: Ticket) {
        {
            let mut state = self.lock();
            state.shares.release(asker, ticket);
            state.turns.remove(&ticket);
            if state.calling.remove(&ticket) {
                state.shares.call_done();
            }
        }
        self.freed.notify_waiters();
        self.dispatch();
    }
}

/// A lookup's share, given back however its task ends.
struct Held<'a> {
    gate: &'a Gate,
    asker: Asker,
    ticket: Ticket,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.gate.release(self.asker, self.ticket);
    }
}

impl Inner {
    async fn fetch(
        &self,
        snils: &Snils,
        organization: &Oid,
        turn: tokio::sync::oneshot::Receiver<()>,
    ) -> Result<Fetched, FlightError> {
        // A flight that ended a moment ago may have filled the cache after our caller looked.
        if let Ok(Some(entry)) = self.store.staff_cache_get(snils, organization).await
            && self.policy.is_fresh(&entry, crate::now())
        {
            return Ok(Fetched { entry, from_cache: true });
        }
        // This lookup's turn to call FRMR (intake first, then the clients in turn).
        self.gate.dispatch();
        if turn.await.is_err() {
            return Err(FlightError::Internal);
        }
        let permit = self.breaker.try_acquire().map_err(FlightError::CircuitOpen)?;
        if let Some(quota) = &self.cluster_quota {
            // In the cluster's queue for FRMR, in the order asked (crate::quota).
            quota.slot().await;
        }
        let result = self.frmr.person_full(organization, snils).await;
        match &result {
            Ok(_) | Err(Failure::Permanent { .. }) => permit.success(),
            Err(f) => {
                if matches!(f, Failure::Configuration { .. }) {
                    tracing::error!(
                        reason = f.reason(),
                        "FRMR refuses the gateway's credentials: the token provider or access rights need an administrator"
                    );
                } else {
                    tracing::warn!(organization = %organization, reason = f.reason(), "FRMR lookup failed");
                }
                permit.failure(f.reason());
            }
        }
        if let Err(Failure::Permanent { reason }) = &result {
            tracing::error!(organization = %organization, reason = %reason, "FRMR rejected the gateway's request");
        }
        let person = result.map_err(FlightError::Frmr)?;
        let entry =
            CachedLookup { snils: snils.clone(), organization: organization.clone(), person, fetched_at: crate::now() };
        if let Err(e) = self.store.staff_cache_put(&entry).await {
            tracing::error!(error = %e, "staff cache write failed; the answer is served but not kept");
        }
        self.memo.insert((snils.clone(), organization.clone()), entry.clone());
        Ok(Fetched { entry, from_cache: false })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use egisz_contract::frmr::FrmrPerson;

    use super::*;
    use crate::store::SqliteStore;

    /// An FRMR that panics on the first call and answers "not found" afterwards.
    struct PanicsOnce(AtomicU32);

    #[async_trait::async_trait]
    impl FrmrRegistry for PanicsOnce {
        async fn person_full(&self, _: &Oid, _: &Snils) -> Result<Option<FrmrPerson>, Failure> {
            if self.0.fetch_add(1, Ordering::SeqCst) == 0 {
                panic!("simulated bug");
            }
            Ok(None)
        }
    }

    /// An FRMR that never answers.
    struct Hangs;

    #[async_trait::async_trait]
    impl FrmrRegistry for Hangs {
        async fn person_full(&self, _: &Oid, _: &Snils) -> Result<Option<FrmrPerson>, Failure> {
            std::future::pending().await
        }
    }

    fn policy() -> CachePolicy {
        CachePolicy {
            fresh_for: Duration::from_secs(3600),
            stale_limit: Duration::from_secs(7200),
            not_found_for: Duration::from_secs(60),
            retry_after: Duration::from_secs(30),
            memory_for: Duration::from_secs(30),
            answer_within: Duration::from_secs(1),
            shares: SharePolicy {
                max_pending: 2,
                intake_reserve: 0,
                client_share: 2,
                max_calls: 2,
                rate_per_second: 10.0,
            },
        }
    }

    async fn service(frmr: Arc<dyn FrmrRegistry>) -> StaffService {
        let store = SqliteStore::connect("sqlite::memory:", 1, Duration::from_secs(5)).await.unwrap();
        store.migrate().await.unwrap();
        StaffService::new(
            Arc::new(store),
            frmr,
            Arc::new(Metrics::new()),
            CircuitBreaker::new(5, Duration::from_secs(30)),
            policy(),
        )
    }

    fn key(n: u32) -> (Snils, Oid) {
        let snils = ["11223344595", "13719981600", "99999999901", "20311784514"][n as usize];
        (Snils::parse(snils).unwrap(), Oid::parse("1.2.643.5.1.13.13.12.2.42.2917").unwrap())
    }

    #[tokio::test]
    async fn a_panicking_lookup_does_not_block_its_key() {
        let frmr = Arc::new(PanicsOnce(AtomicU32::new(0)));
        let svc = service(frmr.clone()).await;
        let (s, o) = key(0);
        let first = svc.lookup(Asker::Intake, &s, &o).await.unwrap_err();
        match first {
            LookupError::Unavailable { detail, .. } => assert!(!detail.contains("panic"), "{detail}"),
            other => panic!("{other:?}"),
        }
        let second = svc.lookup(Asker::Intake, &s, &o).await.expect("the next lookup asks FRMR again");
        assert!(second.entry.person.is_none());
        assert_eq!(frmr.0.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_hung_frmr_is_bounded_by_the_answer_deadline_and_the_pending_cap() {
        let svc = service(Arc::new(Hangs)).await;
        let started = tokio::time::Instant::now();
        let (s, o) = key(0);
        assert!(matches!(svc.lookup(Asker::Intake, &s, &o).await, Err(LookupError::Unavailable { .. })));
        assert!(started.elapsed() < Duration::from_secs(10), "answered at the deadline, not never");
        let (s1, _) = key(1);
        assert!(svc.lookup(Asker::Intake, &s1, &o).await.is_err());
        // Two flights still hang in the background: a third key is refused at once.
        let started = tokio::time::Instant::now();
        let (s2, _) = key(2);
        match svc.lookup(Asker::Intake, &s2, &o).await {
            Err(LookupError::Unavailable { detail, .. }) => assert!(detail.contains("Слишком много"), "{detail}"),
            other => panic!("{other:?}"),
        }
        // The reason says it was not the deadline; and it came before the deadline would have.
        assert!(started.elapsed() < Duration::from_secs(1), "no waiting when over the cap");
    }
}
