//! The relay's workers: each claims one due submission in a short transaction, reserves its
//! slot in REMD's quota ([`crate::quota`]: the cluster's bucket on PostgreSQL, this
//! process's on SQLite), calls REMD outside any transaction at that slot, and records what
//! [`crate::lifecycle`] decides about the outcome in a second short transaction guarded by
//! its lease.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use egisz_contract::Failure;
use egisz_contract::remd::{RegisterAck, RemdMessage, RemdRegistry, SearchQuery};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::circuit::{CircuitBreaker, Health};
use crate::lifecycle::schedule::RetryPolicy;
use crate::lifecycle::{self, Decision, Happening, Rules, Sweep, Timing};
use crate::mappings::Mappings;
use crate::metrics::Metrics;
use crate::quota::QuotaClient;
use crate::store::Store;
use crate::submission::{Claimed, Disposition, Status, SubmissionRecord};

/// Settings of the relay (configuration `[relay]` and `[remd]`).
#[derive(Debug, Clone)]
pub struct RelaySettings {
    /// Workers sending at once.
    pub concurrency: usize,
    /// How long a claim is held; renewed every third of it while a call is in flight, so
    /// past it a crashed worker's submission is reconciled.
    pub lease: Duration,
    /// Longest sleep when nothing is due (new work also wakes the relay at once).
    pub poll_interval: Duration,
    /// `awaiting_result` this long after the acceptance → looked up in the register.
    pub result_check_after: Duration,
    /// Look-ups that cannot decide are repeated on growing intervals for this long.
    pub result_deadline: Duration,
    /// How long after an unknown outcome the register is searched.
    pub reconcile_after: Duration,
    /// Calls per second to REMD, and the burst above it.
    pub rate_per_second: f64,
    pub burst: u32,
    pub retry: RetryPolicy,
    /// This instance's name on leases (`relay.instance_id`): each lease is
    /// `<instance_id>:<claim>`, so a restart takes back its own.
    pub instance_id: String,
    /// On stop, how long calls already on the wire may take to be answered.
    pub stop_grace: Duration,
}

/// Why a stopping relay's claim was not carried through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stopping {
    /// Stopped before the call's slot: nothing was sent.
    Unsent,
    /// The grace period ended with the call on the wire.
    Cut,
}

/// On a stop, how long the workers whose calls were cut short at the end of the grace period
/// have to record it before they are aborted (what is still leased then is swept).
pub const CUT_CALLS_END_WITHIN: Duration = Duration::from_secs(5);

/// Consecutive failed calls after which the summary shows REMD's circuit as open.
const REMD_FAILURES_TO_OPEN: u32 = 5;

/// The outbox dispatcher.
/// The bucket of REMD's calls in the shared quota table.
pub const REMD_QUOTA: &str = "remd";

/// The longest a relay worker waits in the cluster's queue for a REMD slot before it asks
/// again (it holds its claim meanwhile; the lease is renewed).
pub const QUOTA_MAX_WAIT: Duration = Duration::from_secs(5);

pub struct Relay {
    store: Arc<dyn Store>,
    remd: Arc<dyn RemdRegistry>,
    mappings: Arc<Mappings>,
    metrics: Arc<Metrics>,
    /// REMD's quota: the cluster's on PostgreSQL, this process's on SQLite.
    quota: QuotaClient,
    settings: RelaySettings,
    wake: Arc<Notify>,
    rng: Mutex<StdRng>,
    timing: Timing,
    /// What REMD's calls have been doing lately (watched, not gating: the schedule paces).
    remd_health: CircuitBreaker,
}

impl Relay {
    pub fn new(
        store: Arc<dyn Store>,
        remd: Arc<dyn RemdRegistry>,
        mappings: Arc<Mappings>,
        metrics: Arc<Metrics>,
        settings: RelaySettings,
        wake: Arc<Notify>,
    ) -> Self {
        let timing = Timing {
            result_check_after: settings.result_check_after,
            result_deadline: settings.result_deadline,
            reconcile_after: settings.reconcile_after,
            retry: settings.retry,
        };
        Self {
            store: Arc::clone(&store),
            remd,
            mappings,
            metrics,
            quota: QuotaClient::new(store, REMD_QUOTA, settings.rate_per_second, settings.burst, QUOTA_MAX_WAIT),
            timing,
            remd_health: CircuitBreaker::new(REMD_FAILURES_TO_OPEN, Duration::from_secs(60)),
            settings,
            wake,
            rng: Mutex::new(StdRng::from_os_rng()),
        }
    }

    /// Runs the workers and the maintenance loop until `stop`. Then it claims nothing more,
    /// gives back at once every claim it has not sent ([`Happening::HandedBack`]: another
    /// instance takes it), lets the calls already on the wire finish within
    /// `stop_grace`, and sends those still unanswered then to a look-up
    /// ([`Sweep::Stopped`]), so that nothing waits for this instance's leases to run out.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        // What this instance's previous run left in flight (it was killed, or the machine
        // went down) is ours: reconciled now, not when its leases run out.
        let now = crate::now();
        match self.store.release_leases_of(&self.lease_prefix(), now, &lifecycle::sweep(Sweep::Restarted, now)).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                submissions = n,
                instance = %self.settings.instance_id,
                "took back the submissions this instance had in flight before it stopped; reconciling them"
            ),
            Err(e) => tracing::warn!(error = %e, "could not take back this instance's leases; they expire instead"),
        }
        // Cancelled when the stop's grace period is over: calls still on the wire are cut.
        let cut = CancellationToken::new();
        let mut tasks = Vec::new();
        for n in 0..self.settings.concurrency.max(1) {
            let relay = Arc::clone(&self);
            let (stop, cut) = (stop.clone(), cut.clone());
            tasks.push(tokio::spawn(async move { relay.worker(n, stop, cut).await }));
        }
        let relay = Arc::clone(&self);
        let maintenance = tokio::spawn({
            let stop = stop.clone();
            async move { relay.maintain(stop).await }
        });
        let aborts: Vec<_> = tasks.iter().map(|t| t.abort_handle()).collect();
        let mut workers = futures::future::join_all(tasks);
        stop.cancelled().await;
        let grace = self.settings.stop_grace;
        if tokio::time::timeout(grace, &mut workers).await.is_err() {
            tracing::warn!(
                grace_ms = grace.as_millis() as u64,
                "calls to REMD still unanswered at the end of the stop's grace period; they are looked up next"
            );
            cut.cancel();
            if tokio::time::timeout(CUT_CALLS_END_WITHIN, &mut workers).await.is_err() {
                for a in &aborts {
                    a.abort();
                }
            }
        }
        drop(workers);
        let _ = maintenance.await;
        // A worker that could not record its end (the database did not answer in time):
        // what is still leased to this instance is looked up at once by whichever is up.
        let now = crate::now();
        match self.store.release_leases_of(&self.lease_prefix(), now, &lifecycle::sweep(Sweep::Stopped, now)).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(submissions = n, "stopped with submissions still leased; they are looked up next"),
            Err(e) => tracing::warn!(error = %e, "could not give back this instance's leases; they expire instead"),
        }
    }

    async fn worker(&self, n: usize, stop: CancellationToken, cut: CancellationToken) {
        loop {
            if stop.is_cancelled() {
                return;
            }
            match self.step_until(&stop, &cut).await {
                Ok(true) => {}
                Ok(false) => self.idle(&stop).await,
                Err(e) => {
                    tracing::warn!(worker = n, error = %e, "relay step failed; retrying shortly");
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        }
    }

    /// Sleeps until new work is announced, the next submission is due, or the poll interval.
    async fn idle(&self, stop: &CancellationToken) {
        let notified = self.wake.notified();
        let mut wait = self.settings.poll_interval;
        if let Ok(Some(due)) = self.store.next_due().await {
            let until = (due - crate::now()).to_std().unwrap_or(Duration::ZERO);
            wait = wait.min(until.max(Duration::from_millis(10)));
        }
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = notified => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }

    /// Claims and handles one due submission. `false` when nothing was due.
    pub async fn step(&self) -> Result<bool, crate::store::StoreError> {
        let never = CancellationToken::new();
        self.step_until(&never, &never).await
    }

    /// [`Relay::step`] of a relay that may be stopping: the claim is given back unsent if
    /// `stop` comes before its call, and its call is cut short (the submission looked up)
    /// when `cut` comes before REMD's answer.
    async fn step_until(
        &self,
        stop: &CancellationToken,
        cut: &CancellationToken,
    ) -> Result<bool, crate::store::StoreError> {
        let now = crate::now();
        let lease_until = now + chrono::Duration::from_std(self.settings.lease).unwrap_or(chrono::Duration::minutes(5));
        // A lease names the claim, not just the process: an outcome recorded after the lease
        // was reaped and the submission claimed again (even in this process) is refused.
        let owner = format!("{}{}", self.lease_prefix(), &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let Some(claimed) = self.store.claim_due(now, 1, &owner, lease_until).await?.pop() else {
            return Ok(false);
        };
        match claimed.claimed_from {
            Status::Unknown => self.reconcile(claimed.record, stop, cut).await?,
            _ => self.send(claimed, stop, cut).await?,
        }
        Ok(true)
    }

    /// `call` at its slot in REMD's quota, unless the relay stops first: [`Stopping::Unsent`]
    /// when `stop` comes before the slot, [`Stopping::Cut`] when `cut` comes before the answer.
    async fn call_unless_stopped<T>(
        &self,
        stop: &CancellationToken,
        cut: &CancellationToken,
        call: impl std::future::Future<Output = T>,
    ) -> Result<T, Stopping> {
        tokio::select! {
            biased;
            _ = stop.cancelled() => return Err(Stopping::Unsent),
            _ = self.call_slot() => {}
        }
        tokio::select! {
            biased;
            out = call => Ok(out),
            _ = cut.cancelled() => Err(Stopping::Cut),
        }
    }

    /// Records how a stopping instance left a claim: given back unsent, or (a call cut
    /// short) to be looked up at once. Guarded by the lease, like every outcome.
    async fn stopped(
        &self,
        record: &SubmissionRecord,
        claimed_from: Status,
        how: Stopping,
    ) -> Result<(), crate::store::StoreError> {
        let now = crate::now();
        let happening = match how {
            Stopping::Unsent => Happening::HandedBack(claimed_from),
            Stopping::Cut => Happening::Stopped,
        };
        let decision = self.decide(record, happening, now);
        self.apply(record, decision, now).await
    }

    /// Handles due submissions until none is left (tests, tools).
    pub async fn drain(&self) -> Result<usize, crate::store::StoreError> {
        let mut n = 0;
        while self.step().await? {
            n += 1;
        }
        Ok(n)
    }

    async fn maintain(&self, stop: CancellationToken) {
        let every = self.settings.poll_interval.clamp(Duration::from_millis(200), Duration::from_secs(5));
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            let now = crate::now();
            match self.store.reap_leases(now, &lifecycle::sweep(Sweep::LeaseExpired, now)).await {
                Ok(0) => {}
                Ok(n) => {
                    tracing::warn!(
                        submissions = n,
                        "expired leases: reconciling submissions whose send did not finish"
                    );
                    self.wake.notify_waiters();
                }
                Err(e) => tracing::warn!(error = %e, "reaping leases failed"),
            }
            let deadline = now
                - chrono::Duration::from_std(self.settings.result_check_after).unwrap_or(chrono::Duration::minutes(2));
            match self.store.expire_awaiting(deadline, now, &lifecycle::sweep(Sweep::ResultOverdue, now)).await {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(submissions = n, "REMD results not in yet: looking them up in the register");
                    self.wake.notify_waiters();
                }
                Err(e) => tracing::warn!(error = %e, "the result watchdog failed"),
            }
            // Folded as fast as they come (a burst, or a bulk load, folds over a few ticks).
            for _ in 0..20 {
                match self.store.compact_counts().await {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "folding the submission counts failed");
                        break;
                    }
                }
            }
        }
    }

    /// What every lease of this instance starts with.
    fn lease_prefix(&self) -> String {
        format!("{}:", self.settings.instance_id)
    }

    /// Runs `call` (a call to REMD) while renewing `record`'s lease every third of the lease
    /// time, so that a slow call is not mistaken for a dead worker, and a dead worker's
    /// lease runs out soon.
    async fn leased<T>(&self, record: &SubmissionRecord, call: impl std::future::Future<Output = T>) -> T {
        let Some(owner) = record.lease_owner.as_deref() else { return call.await };
        let every = (self.settings.lease / 3).max(Duration::from_millis(100));
        tokio::pin!(call);
        loop {
            tokio::select! {
                out = &mut call => return out,
                _ = tokio::time::sleep(every) => {
                    let until = crate::now() + chrono::Duration::from_std(self.settings.lease).unwrap_or_default();
                    match self.store.renew_lease(record.id, owner, until).await {
                        Ok(true) => {}
                        Ok(false) => tracing::warn!(submission = %record.id, "the lease was lost during a call to REMD"),
                        Err(e) => tracing::warn!(submission = %record.id, error = %e, "could not renew a lease"),
                    }
                }
            }
        }
    }

    /// What the lifecycle consults.
    fn rules(&self) -> Rules<'_> {
        Rules { mappings: &self.mappings, timing: &self.timing }
    }

    /// What `happening` does to `record` now ([`lifecycle::decide`] with this relay's
    /// rules and random source).
    pub fn decide(&self, record: &SubmissionRecord, happening: Happening<'_>, now: DateTime<Utc>) -> Decision {
        let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        lifecycle::decide(self.rules(), record, happening, now, &mut *rng)
    }

    /// Counts (and logs, when it looks like a code) each code of `messages` the mappings
    /// do not know, so that the table can be brought up to date.
    pub fn observe_codes(&self, messages: &[RemdMessage]) {
        for code in lifecycle::unknown_codes(&self.mappings, messages) {
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

    async fn send(
        &self,
        claimed: Claimed,
        stop: &CancellationToken,
        cut: &CancellationToken,
    ) -> Result<(), crate::store::StoreError> {
        let record = claimed.record;
        let message_id = uuid::Uuid::new_v4().to_string();
        self.store.note_message(record.id, &message_id, crate::now()).await?;
        let mut request = record.request.clone();
        request.message_id = message_id;
        // The wait for the rate limiter is inside the lease too: a long queue for REMD must
        // not look like a dead worker. A stop before the slot gives the claim back; once
        // the call is on the wire it is let finish.
        let outcome =
            self.leased(&record, self.call_unless_stopped(stop, cut, self.remd.register_document(&request))).await;
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(how) => return self.stopped(&record, claimed.claimed_from, how).await,
        };
        self.remd_health.observe(outcome.as_ref().err().map(|f| f.reason()));
        match &outcome {
            Ok(RegisterAck::Accepted) => {}
            Ok(RegisterAck::Rejected(messages)) => self.observe_codes(messages),
            Err(f @ Failure::Retry { .. }) => {
                tracing::warn!(submission = %record.id, reason = %f.reason(), "registerDocument failed; will retry")
            }
            Err(f @ Failure::Unknown { .. }) => {
                tracing::warn!(submission = %record.id, reason = %f.reason(), "registerDocument outcome unknown; reconciling")
            }
            Err(f @ Failure::Permanent { .. }) => {
                tracing::error!(submission = %record.id, reason = %f.reason(), "REMD refused the request")
            }
            Err(f @ Failure::Configuration { .. }) => {
                tracing::error!(submission = %record.id, reason = %f.reason(), "REMD refuses the gateway: configuration or rights")
            }
        }
        let now = crate::now();
        let decision = self.decide(&record, Happening::RegisterAnswer(&outcome), now);
        self.apply(&record, decision, now).await
    }

    async fn reconcile(
        &self,
        record: SubmissionRecord,
        stop: &CancellationToken,
        cut: &CancellationToken,
    ) -> Result<(), crate::store::StoreError> {
        let window = chrono::Duration::hours(1);
        let query = SearchQuery {
            organization: record.organization.clone(),
            kind: Some(record.kind),
            register_date_begin: Some((record.created_at - window).fixed_offset()),
            register_date_end: Some((crate::now() + window).fixed_offset()),
            patient_snils: record.request.patient.snils.clone(),
        };
        let outcome =
            self.leased(&record, self.call_unless_stopped(stop, cut, self.remd.search_registry_items(&query))).await;
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(how) => return self.stopped(&record, Status::Unknown, how).await,
        };
        self.remd_health.observe(outcome.as_ref().err().map(|f| f.reason()));
        if let Err(f) = &outcome {
            tracing::warn!(submission = %record.id, reason = %f.reason(), "register search failed");
        }
        let now = crate::now();
        let decision = self.decide(&record, Happening::SearchAnswer(&outcome), now);
        self.apply(&record, decision, now).await
    }

    /// Applies a decision about a submission this relay holds (guarded by its lease).
    async fn apply(
        &self,
        record: &SubmissionRecord,
        decision: Decision,
        now: DateTime<Utc>,
    ) -> Result<(), crate::store::StoreError> {
        let step = match decision {
            Decision::Apply(step) => step,
            Decision::Ignore | Decision::Refuse(_) => {
                tracing::debug!(submission = %record.id, status = %record.status, "nothing to apply in this state");
                return Ok(());
            }
        };
        self.count(step.outcome);
        let t = &step.transition;
        if t.to == Status::Failed
            && t.errors.as_ref().is_some_and(|e| e.iter().any(|e| e.disposition == Disposition::NeedsAdmin))
        {
            tracing::error!(submission = %record.id, "a submission failed on what needs an administrator (REMD access, configuration)");
        }
        let owner = record.lease_owner.as_deref().unwrap_or(&self.settings.instance_id);
        if !self.store.transition(record.id, step.from, Some(owner), t, now).await? {
            // REMD's result arrived first, or the lease expired and another worker took over.
            tracing::debug!(submission = %record.id, to = %t.to, "the submission moved on meanwhile; outcome not applied");
        }
        if t.next_attempt_at.is_some() {
            self.wake.notify_waiters();
        }
        Ok(())
    }

    /// Waits for this call's slot in REMD's quota, right before the call, so that what REMD
    /// sees is what the quota allows (a token taken earlier, before database work of varying
    /// length, would let calls bunch up): `crate::quota::QuotaClient`. On a database every
    /// instance shares (PostgreSQL) the bucket is the cluster's (`remd.rate_per_second` is the
    /// cluster's); on SQLite, or while the shared one cannot be read, this process's.
    async fn call_slot(&self) {
        let waited = self.quota.slot().await;
        for _ in 0..waited.missed {
            self.count("slot_missed");
        }
        if waited.waited > Duration::from_millis(1) {
            egisz_contract::CallObserver::rate_limit_waited(&*self.metrics, "remd", waited.waited);
        }
    }

    /// Asks REMD whether `emdr_id` is registered, for `submission`'s document: the item
    /// exists and names its `localUid` (or none). Within the REMD rate limit. `Err`: REMD
    /// could not answer (the reason, for the log).
    pub async fn confirm_registered(&self, emdr_id: &str, submission: &SubmissionRecord) -> Result<bool, String> {
        self.call_slot().await;
        let answer = self.remd.get_registry_item(emdr_id).await;
        self.remd_health.observe(answer.as_ref().err().map(|f| f.reason()));
        match answer {
            Ok(Some(item)) => Ok(item.local_uid.as_deref().is_none_or(|uid| uid == submission.local_uid)
                && item.kind.is_none_or(|kind| kind == submission.kind)),
            Ok(None) => Ok(false),
            Err(failure) => Err(failure.to_string()),
        }
    }

    /// REMD as this instance's calls found it: the circuit state (open after
    /// consecutive failures), the last success and the last error.
    pub fn remd_health(&self) -> Health {
        self.remd_health.health()
    }

    /// Wakes idle workers (new or newly due work).
    pub fn wake(&self) {
        self.wake.notify_waiters();
    }

    fn count(&self, outcome: &str) {
        self.metrics.relay_outcome(outcome);
    }
}
