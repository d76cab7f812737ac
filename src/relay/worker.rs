//! The relay's workers: each takes a rate-limiter token, claims one due submission in a short
//! transaction, calls REMD outside any transaction, and records the outcome in a second
//! short transaction guarded by its lease.

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use egisz_contract::Failure;
use egisz_contract::remd::{RegisterAck, RemdMessage, RemdRegistry, SearchQuery};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::schedule::{Hint, Next, RetryPolicy, next_attempt, next_check};
use crate::mappings::{Mappings, UNKNOWN_CODE_DISPOSITION, decisive};
use crate::metrics::Metrics;
use crate::store::Store;
use crate::submission::{Claimed, Disposition, Status, SubmissionError, SubmissionRecord, Transition};

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
}

/// The outbox dispatcher.
pub struct Relay {
    store: Arc<dyn Store>,
    remd: Arc<dyn RemdRegistry>,
    mappings: Arc<Mappings>,
    metrics: Arc<Metrics>,
    limiter: DefaultDirectRateLimiter,
    settings: RelaySettings,
    wake: Arc<Notify>,
    rng: Mutex<StdRng>,
}

const ACTOR: &str = "relay";

impl Relay {
    pub fn new(
        store: Arc<dyn Store>,
        remd: Arc<dyn RemdRegistry>,
        mappings: Arc<Mappings>,
        metrics: Arc<Metrics>,
        settings: RelaySettings,
        wake: Arc<Notify>,
    ) -> Self {
        let period = Duration::from_secs_f64(1.0 / settings.rate_per_second.max(0.001));
        let burst = NonZeroU32::new(settings.burst.max(1)).expect("max(1) is non-zero");
        let quota = Quota::with_period(period).expect("a positive period").allow_burst(burst);
        Self {
            store,
            remd,
            mappings,
            metrics,
            limiter: RateLimiter::direct(quota),
            settings,
            wake,
            rng: Mutex::new(StdRng::from_os_rng()),
        }
    }

    /// Runs the workers and the maintenance loop until `stop`; then lets calls in flight
    /// finish (their leases cover them) and returns.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        // What this instance's previous run left in flight (it was killed, or the machine
        // went down) is ours: reconciled now, not when its leases run out.
        match self.store.release_leases_of(&self.lease_prefix(), crate::now()).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                submissions = n,
                instance = %self.settings.instance_id,
                "took back the submissions this instance had in flight before it stopped; reconciling them"
            ),
            Err(e) => tracing::warn!(error = %e, "could not take back this instance's leases; they expire instead"),
        }
        let mut tasks = Vec::new();
        for n in 0..self.settings.concurrency.max(1) {
            let relay = Arc::clone(&self);
            let stop = stop.clone();
            tasks.push(tokio::spawn(async move { relay.worker(n, stop).await }));
        }
        let relay = Arc::clone(&self);
        let maintenance = tokio::spawn({
            let stop = stop.clone();
            async move { relay.maintain(stop).await }
        });
        for t in tasks {
            let _ = t.await;
        }
        let _ = maintenance.await;
    }

    async fn worker(&self, n: usize, stop: CancellationToken) {
        loop {
            if stop.is_cancelled() {
                return;
            }
            match self.step().await {
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
        let now = crate::now();
        let lease_until = now + chrono::Duration::from_std(self.settings.lease).unwrap_or(chrono::Duration::minutes(5));
        // A lease names the claim, not just the process: an outcome recorded after the lease
        // was reaped and the submission claimed again (even in this process) is refused.
        let owner = format!("{}{}", self.lease_prefix(), &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let Some(claimed) = self.store.claim_due(now, 1, &owner, lease_until).await?.pop() else {
            return Ok(false);
        };
        match claimed.claimed_from {
            Status::Unknown => self.reconcile(claimed.record).await?,
            _ => self.send(claimed).await?,
        }
        Ok(true)
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
            match self.store.reap_leases(now).await {
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
            match self.store.expire_awaiting(deadline, now).await {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(submissions = n, "REMD results not in yet: looking them up in the register");
                    self.wake.notify_waiters();
                }
                Err(e) => tracing::warn!(error = %e, "the result watchdog failed"),
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

    fn schedule(&self, attempts: u32, record: &SubmissionRecord, hint: Hint, now: DateTime<Utc>) -> Next {
        let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        next_attempt(&self.settings.retry, attempts, record.created_at, now, hint, &mut *rng)
    }

    /// Back on the schedule (`next`) in `waiting` (with the detail `waiting_detail` gives
    /// for the due time), or — when the schedule is exhausted — `failed` with `give_up`'s
    /// error, whose event detail is `give_up.detail` followed by the schedule's reason.
    fn on_schedule(
        next: Next,
        waiting: Status,
        waiting_detail: impl FnOnce(DateTime<Utc>) -> String,
        give_up: GiveUp<'_>,
    ) -> Transition {
        match next {
            Next::RetryAt(at) => {
                Transition { next_attempt_at: Some(at), ..Transition::to(waiting, ACTOR, waiting_detail(at)) }
            }
            Next::GiveUp { reason } => Transition {
                errors: Some(vec![gateway_error(give_up.code, &reason, give_up.disposition, give_up.hint)]),
                detail: match give_up.detail {
                    Some(d) => format!("{d}; {reason}"),
                    None => reason,
                },
                ..Transition::to(Status::Failed, ACTOR, "")
            },
        }
    }

    /// A transient failure: back to the schedule, or `failed` when retries are exhausted.
    fn retry_or_give_up(&self, record: &SubmissionRecord, hint: Hint, now: DateTime<Utc>, why: &str) -> Transition {
        Self::on_schedule(
            self.schedule(record.attempts, record, hint, now),
            Status::RetryWait,
            |at| format!("{why}; повтор в {}", at.format("%Y-%m-%d %H:%M:%S UTC")),
            GiveUp {
                code: "GATEWAY_RETRIES_EXHAUSTED",
                disposition: Disposition::Retry,
                hint: "Автоматические повторы прекращены. Проверьте доступность РЭМД и отправьте документ повторно (retry).",
                detail: Some(why),
            },
        )
    }

    async fn send(&self, claimed: Claimed) -> Result<(), crate::store::StoreError> {
        let record = claimed.record;
        let message_id = uuid::Uuid::new_v4().to_string();
        self.store.note_message(record.id, &message_id, crate::now()).await?;
        let mut request = record.request.clone();
        request.message_id = message_id;
        // The wait for the rate limiter is inside the lease too: a long queue for REMD must
        // not look like a dead worker.
        let outcome = self
            .leased(&record, async {
                self.call_slot().await;
                self.remd.register_document(&request).await
            })
            .await;
        let now = crate::now();
        let t = match outcome {
            Ok(RegisterAck::Accepted) => {
                self.count("accepted");
                Transition {
                    awaiting_since: Some(now),
                    check_at: Some(
                        now + chrono::Duration::from_std(self.settings.result_check_after).unwrap_or_default(),
                    ),
                    errors: Some(Vec::new()),
                    ..Transition::to(
                        Status::AwaitingResult,
                        ACTOR,
                        "РЭМД принял запрос; ожидается результат регистрации",
                    )
                }
            }
            Ok(RegisterAck::Rejected(messages)) => {
                self.count("rejected");
                self.after_remd_errors(&record, &messages, now, "РЭМД отклонил запрос")
            }
            Err(Failure::Retry { reason, after }) => {
                self.count("retry");
                tracing::warn!(submission = %record.id, reason = %reason, "registerDocument failed; will retry");
                self.retry_or_give_up(&record, after.map_or(Hint::None, Hint::After), now, "РЭМД недоступен")
            }
            Err(Failure::Unknown { reason }) => {
                self.count("unknown");
                tracing::warn!(submission = %record.id, reason = %reason, "registerDocument outcome unknown; reconciling");
                Transition {
                    next_attempt_at: Some(
                        now + chrono::Duration::from_std(self.settings.reconcile_after).unwrap_or_default(),
                    ),
                    ..Transition::to(
                        Status::Unknown,
                        ACTOR,
                        "ответ РЭМД не получен; перед повторной отправкой будет сверка с реестром",
                    )
                }
            }
            Err(Failure::Permanent { reason }) => {
                self.count("permanent");
                tracing::error!(submission = %record.id, reason = %reason, "REMD refused the request");
                Transition {
                    errors: Some(vec![gateway_error(
                        "GATEWAY_REMD_FAULT",
                        &reason,
                        Disposition::NeedsAdmin,
                        "РЭМД отверг запрос шлюза как некорректный. Нужна проверка администратором шлюза (формат запроса, версия сервиса).",
                    )]),
                    ..Transition::to(Status::Failed, ACTOR, "РЭМД отверг запрос шлюза")
                }
            }
            Err(Failure::Configuration { reason }) => {
                self.count("configuration");
                tracing::error!(submission = %record.id, reason = %reason, "REMD refuses the gateway: configuration or rights");
                Transition {
                    errors: Some(vec![gateway_error(
                        "GATEWAY_CONFIGURATION",
                        &reason,
                        Disposition::NeedsAdmin,
                        "РЭМД не принимает запросы шлюза (доступ, сертификат, адрес). Администратору: проверить настройки [remd]; затем повторить отправку.",
                    )]),
                    ..Transition::to(Status::Failed, ACTOR, "ошибка настройки доступа к РЭМД")
                }
            }
        };
        self.apply(&record, &[Status::Sending], &t, now).await
    }

    /// Applies REMD's error list: the decisive disposition of its codes says what happens.
    pub fn after_remd_errors(
        &self,
        record: &SubmissionRecord,
        messages: &[RemdMessage],
        now: DateTime<Utc>,
        why: &str,
    ) -> Transition {
        let mut errors: Vec<SubmissionError> = messages.iter().map(|m| self.classify(m)).collect();
        if errors.is_empty() {
            errors.push(gateway_error(
                "GATEWAY_EMPTY_REJECTION",
                "REMD answered with an error but named no code",
                Disposition::Retry,
                "РЭМД вернул ошибку без кода. Шлюз повторит отправку; если повторяется — обратитесь в поддержку ЕГИСЗ.",
            ));
        }
        let codes = errors.iter().map(|e| e.code.as_str()).collect::<Vec<_>>().join(", ");
        let why = format!("{why}: {codes}");
        // "Already registered" is checked first, whatever else REMD says: if the register has
        // the document, the other codes no longer matter.
        let decision = if errors.iter().any(|e| e.disposition == Disposition::Reconcile) {
            Some(Disposition::Reconcile)
        } else {
            decisive(errors.iter().map(|e| e.disposition))
        };
        let t = match decision {
            Some(Disposition::Retry) | None => {
                let hint = if errors.iter().any(|e| e.code == "RATE_LIMIT") { Hint::RateLimited } else { Hint::None };
                self.retry_or_give_up(record, hint, now, &why)
            }
            Some(Disposition::Reconcile) => Transition {
                next_attempt_at: Some(now),
                ..Transition::to(Status::Unknown, ACTOR, format!("{why}; сверка с реестром"))
            },
            Some(Disposition::NeedsAdmin) => {
                tracing::error!(submission = %record.id, codes = %codes, "REMD: the gateway's configuration or rights need an administrator");
                Transition::to(Status::Failed, ACTOR, why)
            }
            Some(Disposition::NeedsDataFix) => Transition::to(Status::Failed, ACTOR, why),
        };
        Transition { errors: Some(errors), ..t }
    }

    fn classify(&self, m: &RemdMessage) -> SubmissionError {
        match self.mappings.code(&m.code) {
            Some(rule) => SubmissionError {
                code: m.code.clone(),
                message: m.message.expose().clone(),
                disposition: rule.disposition,
                hint_ru: rule.hint_ru.clone(),
            },
            None => {
                self.metrics.remd_unknown_codes.inc();
                // The code comes from outside: logged only when it looks like a code.
                let looks_like_a_code = !m.code.is_empty()
                    && m.code.len() <= 64
                    && m.code.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
                let shown = if looks_like_a_code { m.code.as_str() } else { "?" };
                tracing::warn!(
                    code = shown,
                    "REMD answered a code the mappings do not know; treated as needing a data fix"
                );
                SubmissionError {
                    code: m.code.clone(),
                    message: m.message.expose().clone(),
                    disposition: UNKNOWN_CODE_DISPOSITION,
                    hint_ru: "Код РЭМД отсутствует в справочнике шлюза. Разберите сообщение РЭМД вручную и сообщите администратору шлюза, чтобы дополнить справочник.".into(),
                }
            }
        }
    }

    async fn reconcile(&self, record: SubmissionRecord) -> Result<(), crate::store::StoreError> {
        let window = chrono::Duration::hours(1);
        let query = SearchQuery {
            organization: record.organization.clone(),
            kind: Some(record.kind),
            register_date_begin: Some((record.created_at - window).fixed_offset()),
            register_date_end: Some((crate::now() + window).fixed_offset()),
            patient_snils: record.request.patient.snils.clone(),
        };
        let outcome = self
            .leased(&record, async {
                self.call_slot().await;
                self.remd.search_registry_items(&query).await
            })
            .await;
        let now = crate::now();
        let t = match outcome {
            Ok(items) => match items.into_iter().find(|i| i.local_uid.as_deref() == Some(record.local_uid.as_str())) {
                Some(item) => {
                    self.count("reconciled_registered");
                    Transition {
                        registered_at: Some(item.registration_date_time.map_or(now, |t| t.with_timezone(&Utc))),
                        detail: format!("найден в реестре РЭМД при сверке, emdrId {}", item.emdr_id),
                        emdr_id: Some(item.emdr_id),
                        errors: Some(Vec::new()),
                        ..Transition::to(Status::Registered, ACTOR, "")
                    }
                }
                None if record.errors.iter().any(|e| e.disposition == Disposition::Reconcile)
                    && next_check(
                        self.settings.result_check_after,
                        self.settings.result_deadline,
                        record.inconclusive + 1,
                        now,
                    )
                    .is_some() =>
                {
                    // REMD says the localUid is taken; its search may simply not show the
                    // registration yet. Looked up again, later each time, up to the deadline.
                    self.count("reconciled_later");
                    let at = next_check(
                        self.settings.result_check_after,
                        self.settings.result_deadline,
                        record.inconclusive + 1,
                        now,
                    );
                    Transition {
                        next_attempt_at: at,
                        inconclusive: Some(record.inconclusive + 1),
                        ..Transition::to(
                            Status::Unknown,
                            ACTOR,
                            format!(
                                "РЭМД считает документ зарегистрированным, но поиск пока его не находит; повторная сверка в {}",
                                at.unwrap_or(now).format("%Y-%m-%d %H:%M:%S UTC")
                            ),
                        )
                    }
                }
                None if record.errors.iter().any(|e| e.disposition == Disposition::Reconcile) => {
                    self.count("reconciled_missing");
                    let mut errors = record.errors.clone();
                    errors.push(gateway_error(
                        "GATEWAY_RECONCILIATION_FAILED",
                        "REMD reports the localUid as registered, but the register search does not find it",
                        Disposition::NeedsAdmin,
                        "РЭМД сообщает, что документ с этим localUid уже зарегистрирован, но поиск его не находит. Проверьте документ в РЭМД вручную.",
                    ));
                    Transition {
                        errors: Some(errors),
                        ..Transition::to(
                            Status::Failed,
                            ACTOR,
                            "документ не найден в реестре, хотя РЭМД считает его зарегистрированным",
                        )
                    }
                }
                None => {
                    self.count("reconciled_resend");
                    // Sent again — but on the schedule, and not forever: a REMD that accepts
                    // and never answers must end in `failed`, not in an endless loop.
                    Self::on_schedule(
                        self.schedule(record.attempts, &record, Hint::None, now),
                        Status::Queued,
                        |_| "в реестре РЭМД не найден; будет отправлен снова".to_owned(),
                        GiveUp {
                            code: "GATEWAY_NO_RESULT",
                            disposition: Disposition::NeedsAdmin,
                            hint: "РЭМД принимал документ, но результат регистрации не пришёл, а в реестре документ не найден. Проверьте документ в РЭМД вручную, затем отправьте повторно.",
                            detail: Some("результат регистрации не получен"),
                        },
                    )
                }
            },
            Err(f) => {
                tracing::warn!(submission = %record.id, reason = %f.reason(), "register search failed; will try again");
                match f {
                    Failure::Configuration { .. } | Failure::Permanent { .. } => Transition {
                        errors: Some(vec![gateway_error(
                            "GATEWAY_CONFIGURATION",
                            f.reason(),
                            Disposition::NeedsAdmin,
                            "Поиск в реестре РЭМД недоступен шлюзу. Администратору: проверить настройки [remd].",
                        )]),
                        ..Transition::to(Status::Failed, ACTOR, "сверка с реестром невозможна")
                    },
                    _ => {
                        let hint = match f {
                            Failure::Retry { after: Some(a), .. } => Hint::After(a),
                            _ => Hint::None,
                        };
                        // Backs off by the look-ups made, not the sends.
                        Self::on_schedule(
                            self.schedule(record.checks, &record, hint, now),
                            Status::Unknown,
                            |_| "реестр РЭМД недоступен; сверка будет повторена".to_owned(),
                            GiveUp {
                                code: "GATEWAY_RETRIES_EXHAUSTED",
                                disposition: Disposition::Retry,
                                hint: "Сверка с реестром РЭМД не удалась за отведённое время. Проверьте документ в РЭМД и перезапустите.",
                                detail: None,
                            },
                        )
                    }
                }
            }
        };
        self.apply(&record, &[Status::Unknown], &t, now).await
    }

    async fn apply(
        &self,
        record: &SubmissionRecord,
        from: &[Status],
        t: &Transition,
        now: DateTime<Utc>,
    ) -> Result<(), crate::store::StoreError> {
        let owner = record.lease_owner.as_deref().unwrap_or(&self.settings.instance_id);
        if !self.store.transition(record.id, from, Some(owner), t, now).await? {
            // REMD's result arrived first, or the lease expired and another worker took over.
            tracing::debug!(submission = %record.id, to = %t.to, "the submission moved on meanwhile; outcome not applied");
        }
        if t.next_attempt_at.is_some() {
            self.wake.notify_waiters();
        }
        Ok(())
    }

    /// Waits for the REMD rate limiter, right before a call, so that what REMD sees is what
    /// the limiter allowed (a token taken earlier, before database work of varying length,
    /// would let calls bunch up).
    async fn call_slot(&self) {
        let started = tokio::time::Instant::now();
        self.limiter.until_ready().await;
        let waited = started.elapsed();
        if waited > Duration::from_millis(1) {
            egisz_contract::CallObserver::rate_limit_waited(&*self.metrics, "remd", waited);
        }
    }

    /// Asks REMD whether `emdr_id` is registered, for `submission`'s document: the item
    /// exists and names its `localUid` (or none). Within the REMD rate limit. `Err`: REMD
    /// could not answer (the reason, for the log).
    pub async fn confirm_registered(&self, emdr_id: &str, submission: &SubmissionRecord) -> Result<bool, String> {
        self.call_slot().await;
        match self.remd.get_registry_item(emdr_id).await {
            Ok(Some(item)) => Ok(item.local_uid.as_deref().is_none_or(|uid| uid == submission.local_uid)
                && item.kind.is_none_or(|kind| kind == submission.kind)),
            Ok(None) => Ok(false),
            Err(failure) => Err(failure.to_string()),
        }
    }

    /// Wakes idle workers (new or newly due work).
    pub fn wake(&self) {
        self.wake.notify_waiters();
    }

    fn count(&self, outcome: &str) {
        self.metrics.relay_outcome(outcome);
    }
}

/// The error a submission ends `failed` with when its schedule is exhausted.
struct GiveUp<'a> {
    code: &'a str,
    disposition: Disposition,
    hint: &'a str,
    /// What the event says before the schedule's reason.
    detail: Option<&'a str>,
}

fn gateway_error(code: &str, message: &str, disposition: Disposition, hint: &str) -> SubmissionError {
    SubmissionError { code: code.into(), message: message.into(), disposition, hint_ru: hint.into() }
}
