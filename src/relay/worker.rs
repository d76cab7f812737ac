//! The relay's workers: each claims one due submission in a short transaction, reserves its
//! slot in REMD's quota ([`crate::remd`]: the cluster's bucket on PostgreSQL, this
//! process's on SQLite), calls REMD outside any transaction at that slot, and records what
//! [`crate::lifecycle`] decides about the outcome in a second short transaction guarded by
//! its lease.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use egisz_contract::Failure;
use egisz_contract::remd::{RegisterAck, SearchQuery};
use tokio_util::sync::CancellationToken;

use super::RelayConfig;
use crate::lifecycle::{self, Decision, Happening, Lifecycle, Sweep};
use crate::metrics::Metrics;
use crate::remd::RemdCalls;
use crate::store::Store;
use crate::submission::{Claimed, Disposition, Status, SubmissionRecord};

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

/// The outbox dispatcher.
pub struct Relay {
    store: Arc<dyn Store>,
    /// REMD's client, paced by its quota, with its health.
    remd: Arc<RemdCalls>,
    /// What each answer does to a submission, and the bell idle workers wait on.
    lifecycle: Arc<Lifecycle>,
    metrics: Arc<Metrics>,
    settings: RelayConfig,
}

impl Relay {
    /// A relay of `settings` (`[relay]`), sending through `remd` and deciding through
    /// `lifecycle` (both shared with the REMD listener and ops).
    pub fn new(
        store: Arc<dyn Store>,
        remd: Arc<RemdCalls>,
        lifecycle: Arc<Lifecycle>,
        metrics: Arc<Metrics>,
        settings: RelayConfig,
    ) -> Self {
        // The times are the lifecycle's; `settings.timing` is what it was made with.
        debug_assert_eq!(&settings.timing, lifecycle.timing(), "a relay and its lifecycle with different times");
        Self { store, remd, lifecycle, metrics, settings }
    }

    /// The lifecycle this relay decides through (shared).
    pub fn lifecycle(&self) -> &Arc<Lifecycle> {
        &self.lifecycle
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
        let notified = self.lifecycle.bell().notified();
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
        let lease_until =
            now + chrono::Duration::from_std(self.settings.lease_for).unwrap_or(chrono::Duration::minutes(5));
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
            _ = self.remd.slot() => {}
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
        let decision = self.lifecycle.decide(record, happening, now);
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
                    self.lifecycle.wake();
                }
                Err(e) => tracing::warn!(error = %e, "reaping leases failed"),
            }
            let deadline = now
                - chrono::Duration::from_std(self.lifecycle.timing().result_check_after)
                    .unwrap_or(chrono::Duration::minutes(2));
            match self.store.expire_awaiting(deadline, now, &lifecycle::sweep(Sweep::ResultOverdue, now)).await {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(submissions = n, "REMD results not in yet: looking them up in the register");
                    self.lifecycle.wake();
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
        let every = (self.settings.lease_for / 3).max(Duration::from_millis(100));
        tokio::pin!(call);
        loop {
            tokio::select! {
                out = &mut call => return out,
                _ = tokio::time::sleep(every) => {
                    let until = crate::now() + chrono::Duration::from_std(self.settings.lease_for).unwrap_or_default();
                    match self.store.renew_lease(record.id, owner, until).await {
                        Ok(true) => {}
                        Ok(false) => tracing::warn!(submission = %record.id, "the lease was lost during a call to REMD"),
                        Err(e) => tracing::warn!(submission = %record.id, error = %e, "could not renew a lease"),
                    }
                }
            }
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
        let outcome = self
            .leased(&record, self.call_unless_stopped(stop, cut, self.remd.registry().register_document(&request)))
            .await;
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(how) => return self.stopped(&record, claimed.claimed_from, how).await,
        };
        self.remd.observe(&outcome);
        match &outcome {
            Ok(RegisterAck::Accepted) => {}
            Ok(RegisterAck::Rejected(messages)) => self.lifecycle.observe_codes(messages),
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
        let decision = self.lifecycle.decide(&record, Happening::RegisterAnswer(&outcome), now);
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
        let outcome = self
            .leased(&record, self.call_unless_stopped(stop, cut, self.remd.registry().search_registry_items(&query)))
            .await;
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(how) => return self.stopped(&record, Status::Unknown, how).await,
        };
        self.remd.observe(&outcome);
        if let Err(f) = &outcome {
            tracing::warn!(submission = %record.id, reason = %f.reason(), "register search failed");
        }
        let now = crate::now();
        let decision = self.lifecycle.decide(&record, Happening::SearchAnswer(&outcome), now);
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
            self.lifecycle.wake();
        }
        Ok(())
    }

    fn count(&self, outcome: &str) {
        self.metrics.relay_outcome(outcome);
    }
}
