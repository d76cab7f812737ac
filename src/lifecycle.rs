//! The submission lifecycle: what happens to a submission after each thing that can happen
//! to it, as pure functions of its state, the event, the time and a random source.
//!
//! Everything that moves a submission goes through [`decide`] (one submission) or
//! [`sweep`] (many at once, selected by the store): REMD's answer to `registerDocument`,
//! a register look-up, REMD's result, an expired lease, an instance's restart, the result
//! watchdog, an operator's retry or cancel. Each answers a [`Step`]: the states it applies
//! in (the store's update is guarded by them, so a submission that moved on meanwhile is
//! left alone), the [`Transition`] and an outcome label for the metrics. The relay, the
//! REMD listener and the ops actions only do I/O around it; the stores only SQL. The
//! claim ([`CLAIM`]) and intake texts live here too.
//!
//! Layout: this file (the rules); `schedule` (when to try again, pure); `handle`
//! ([`Lifecycle`]: the rules as the running gateway applies them, with their random source
//! and the relay's bell, shared by the relay, the REMD listener and ops).
//!
//! | event \ state        | queued | sending | awaiting | retry_wait | unknown | registered | failed | cancelled |
//! |----------------------|--------|---------|----------|------------|---------|------------|--------|-----------|
//! | claim (due)          | send   | —       | —        | send       | look up | —          | —      | —         |
//! | register answer      | —      | ✓       | —        | —          | —       | —          | —      | —         |
//! | search answer        | —      | —       | —        | —          | ✓       | —          | —      | —         |
//! | result: registered   | ✓      | ✓       | ✓        | ✓          | ✓       | —          | ✓      | ✓         |
//! | result: other        | ✓      | ✓       | ✓        | ✓          | ✓       | —          | —      | —         |
//! | lease expired/restart/stopped| — | ✓   | —        | —          | ✓       | —          | —      | —         |
//! | handed back unsent   | —      | → as claimed² | —  | —          | ✓ (due now) | —      | —      | —         |
//! | result overdue       | —      | —       | ✓        | —          | —       | —          | —      | —         |
//! | ops retry            | —      | —       | —        | → queued   | look up | —          | → queued¹ | —      |
//! | ops cancel           | ✓      | ✓       | ✓        | ✓          | ✓       | —          | ✓      | —         |
//!
//! (— : the event changes nothing in that state; for an operator it is refused with a reason.
//! ¹ `failed` while the outcome of its last send was being found out — a
//! `GATEWAY_RECONCILIATION_*` or `GATEWAY_NO_RESULT` error, or REMD's "already registered" —
//! goes to `unknown`, looked up first. ² A stopping instance gives back a claim it has not
//! sent: to `queued` or `retry_wait` as it was claimed from, due now, the send not counted.)
//! A registration REMD reports is applied even to a `failed` or `cancelled` submission:
//! REMD's word that a document is registered is the truth.

use std::time::Duration;

use chrono::{DateTime, Utc};
use egisz_contract::Failure;
use egisz_contract::remd::{RegisterAck, RegisterResult, RegistryItem, RemdMessage, ResultStatus};
use rand::Rng;

use crate::mappings::{GatewayCode, Mappings, decisive};
mod handle;
pub mod schedule;

pub use handle::Lifecycle;

use self::schedule::{Hint, Next, RetryPolicy, next_attempt, next_check};
use crate::submission::{Disposition, Status, SubmissionError, SubmissionRecord, Transition};

/// The times the lifecycle works with (configuration `[relay]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timing {
    /// `awaiting_result` this long after the acceptance → looked up in the register
    /// (`relay.result_check_after`; shorter than `result_deadline`). Default: 2 min.
    pub result_check_after: Duration,
    /// Look-ups that cannot decide are repeated on growing intervals for this long
    /// (`relay.result_deadline`). Default: 1 h.
    pub result_deadline: Duration,
    /// How long after an unknown outcome the register is searched
    /// (`relay.reconcile_after`). Default: 30 s.
    pub reconcile_after: Duration,
    /// When a transient failure is tried again, and when it is given up.
    pub retry: RetryPolicy,
}

/// What the lifecycle consults: the code tables and the times.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    pub mappings: &'a Mappings,
    pub timing: &'a Timing,
}

/// Something that happened to one submission.
#[derive(Debug, Clone, Copy)]
pub enum Happening<'a> {
    /// REMD's answer to `registerDocument` (or why there was none).
    RegisterAnswer(&'a Result<RegisterAck, Failure>),
    /// The register look-up for the submission's `localUid`.
    SearchAnswer(&'a Result<Vec<RegistryItem>, Failure>),
    /// `sendRegisterDocumentResult`, already admitted by [`judge_result`] (and, for a
    /// success, confirmed when the listener is set to confirm).
    Result(&'a RegisterResult),
    /// The worker holding the lease stopped renewing it.
    LeaseExpired,
    /// This instance restarted while it held the lease.
    Restarted,
    /// This instance is stopping and gives back a claim it has not sent (claimed from the
    /// given state): another instance takes it at once.
    HandedBack(Status),
    /// This instance stopped with the call still unanswered at the end of its grace period.
    Stopped,
    /// The result has not come by its look-up time.
    ResultOverdue,
    /// An operator sends it again now.
    Retry(&'a Operator<'a>),
    /// An operator stops it for good.
    Cancel(&'a Operator<'a>),
}

/// Who asked, and why.
#[derive(Debug, Clone, Copy)]
pub struct Operator<'a> {
    /// The API client's name.
    pub name: &'a str,
    pub comment: Option<&'a str>,
}

impl Operator<'_> {
    /// The timeline's actor of an operator's action.
    pub fn actor(&self) -> String {
        format!("ops:{}", self.name)
    }
}

/// The outcome of [`decide`].
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Apply(Step),
    /// The event means nothing in this state (a late answer: the submission moved on).
    Ignore,
    /// An operator's action this state does not allow; the reason, in Russian.
    Refuse(String),
}

/// A transition and where it applies.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The states the transition applies in: the store's update is guarded by them.
    pub from: &'static [Status],
    pub transition: Transition,
    /// A short label for the metrics (`relay_outcomes_total{outcome}` and alike).
    pub outcome: &'static str,
}

/// The many-at-once events, each applied by the store to the submissions it selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sweep {
    LeaseExpired,
    Restarted,
    /// This instance stopped while a call it had sent was still unanswered.
    Stopped,
    ResultOverdue,
}

/// The claim: due submissions in `sends_from` move to `sending` (attempts + 1, look-ups
/// reset, with `send_detail` as their event); those in `reconciles_from` stay where they
/// are and are looked up in the register (look-ups + 1, no event).
///
/// Which due submissions, in order: the earliest due of each organisation with due work,
/// the organisation served longest ago (or never) first, so that one organisation's backlog
/// cannot hold another's new document back; then, for a claim of several, the earliest due
/// of any. Each claim records its organisation's turn (`organization_turns`, shared by every
/// instance on the database).
#[derive(Debug, Clone, Copy)]
pub struct ClaimRule {
    pub sends_from: &'static [Status],
    pub reconciles_from: &'static [Status],
    pub send_detail: &'static str,
}

pub const CLAIM: ClaimRule = ClaimRule {
    sends_from: &[Status::Queued, Status::RetryWait],
    reconciles_from: &[Status::Unknown],
    send_detail: "отправка в РЭМД",
};

/// The first event of every submission accepted without warnings.
pub const INTAKE_DETAIL: &str = "документ принят и сохранён";

/// The first event of a submission: [`INTAKE_DETAIL`], and the warnings it was accepted
/// with, each with the REMD code it may draw.
pub fn intake_detail(warnings: &[crate::submission::IntakeWarning]) -> String {
    if warnings.is_empty() {
        return INTAKE_DETAIL.to_owned();
    }
    let listed: Vec<String> = warnings.iter().map(|w| format!("{} ({}): {}", w.rule, w.remd_code, w.message)).collect();
    format!("{INTAKE_DETAIL} с предупреждениями: {}", listed.join("; "))
}

/// Intake's idempotency: a document whose `(organization, local_uid)` already has a
/// submission is that submission again when its bytes are the same (the MIS repeated its
/// call), and a conflict when they differ. `stored` is the existing submission's document.
pub fn repeated(existing: SubmissionRecord, stored: &[u8], offered: &[u8]) -> crate::submission::Intake {
    if stored == offered {
        crate::submission::Intake::Existing(existing)
    } else {
        crate::submission::Intake::Conflict(existing)
    }
}

/// What one document of an intake batch is, by its key, before anything is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Its key has a stored submission (the index into the stored ones): [`repeated`].
    Stored(usize),
    /// The first of its key in the batch, and new: to be stored.
    First,
    /// A later document of a key an earlier one in the batch (its index) stores: [`repeated`]
    /// of that one.
    RepeatOf(usize),
}

/// [`Seen`] of each of `batch`'s keys, given the keys that have a stored submission.
pub fn seen<K: Eq + std::hash::Hash>(batch: &[K], stored: &[K]) -> Vec<Seen> {
    let stored: std::collections::HashMap<&K, usize> = stored.iter().enumerate().map(|(i, k)| (k, i)).collect();
    let mut first_of: std::collections::HashMap<&K, usize> = std::collections::HashMap::new();
    batch
        .iter()
        .enumerate()
        .map(|(i, k)| {
            if let Some(s) = stored.get(k) {
                return Seen::Stored(*s);
            }
            match first_of.entry(k) {
                std::collections::hash_map::Entry::Occupied(e) => Seen::RepeatOf(*e.get()),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(i);
                    Seen::First
                }
            }
        })
        .collect()
}

/// The detail of REMD pulling the file (an event of `awaiting_result`, not a state).
pub const PULL_DETAIL: &str = "РЭМД запросил файл документа";

const ONLY_SENDING: &[Status] = &[Status::Sending];
const ONLY_FAILED: &[Status] = &[Status::Failed];
const ONLY_RETRY_WAIT: &[Status] = &[Status::RetryWait];
const ONLY_UNKNOWN: &[Status] = &[Status::Unknown];
const ONLY_AWAITING: &[Status] = &[Status::AwaitingResult];
const LEASED: &[Status] = &[Status::Sending, Status::Unknown];
/// Still on their way to REMD.
pub const OPEN: &[Status] =
    &[Status::Queued, Status::Sending, Status::AwaitingResult, Status::RetryWait, Status::Unknown];
/// Every state but `registered`.
const NOT_REGISTERED: &[Status] = &[
    Status::Queued,
    Status::Sending,
    Status::AwaitingResult,
    Status::RetryWait,
    Status::Unknown,
    Status::Failed,
    Status::Cancelled,
];
/// What an operator may send again (from `unknown`: looked up first, never resent blind).
pub const RETRYABLE: &[Status] = &[Status::Failed, Status::RetryWait, Status::Unknown];
/// What an operator may cancel.
pub const CANCELLABLE: &[Status] =
    &[Status::Queued, Status::Sending, Status::AwaitingResult, Status::RetryWait, Status::Unknown, Status::Failed];

const RELAY: &str = "relay";
const REMD: &str = "remd";
const WATCHDOG: &str = "watchdog";

/// The transition of a sweep (the same for every submission it selects) and the states it
/// applies in.
pub fn sweep(kind: Sweep, now: DateTime<Utc>) -> Step {
    let (from, actor, detail, outcome) = match kind {
        Sweep::LeaseExpired => {
            (LEASED, RELAY, "обработчик не завершил отправку; результат будет сверен с РЭМД", "lease_expired")
        }
        Sweep::Restarted => {
            (LEASED, RELAY, "шлюз перезапущен во время отправки; результат будет сверен с РЭМД", "restarted")
        }
        Sweep::Stopped => (
            LEASED,
            RELAY,
            "экземпляр шлюза остановлен, не дождавшись ответа РЭМД; результат будет сверен с РЭМД",
            "stopped",
        ),
        Sweep::ResultOverdue => {
            (ONLY_AWAITING, WATCHDOG, "результат регистрации ещё не пришёл; сверка с реестром РЭМД", "result_overdue")
        }
    };
    // The last send may or may not have reached REMD: the register is looked up before
    // anything else.
    Step {
        from,
        transition: Transition { next_attempt_at: Some(now), ..Transition::to(Status::Unknown, actor, detail) },
        outcome,
    }
}

/// The registration REMD reports in `item`: at its `registrationDateTime`, or — when REMD
/// gave none the gateway could read — at `now`, marked as the gateway's clock (in the
/// record and in the event), never silently.
fn registered(item: &RegistryItem, now: DateTime<Utc>, actor: &str, detail: String) -> Transition {
    let (at, by_gateway) = match item.registration_date_time {
        Some(t) => (t.with_timezone(&Utc), false),
        None => (now, true),
    };
    let detail = if by_gateway {
        format!("{detail}; время регистрации РЭМД не сообщил или оно не читается — записано время шлюза")
    } else {
        detail
    };
    Transition {
        emdr_id: Some(item.emdr_id.clone()),
        registered_at: Some(at),
        registered_at_by_gateway: Some(by_gateway),
        errors: Some(Vec::new()),
        ..Transition::to(Status::Registered, actor, detail)
    }
}

/// The detail of a claim a stopping instance gave back unsent.
pub const HANDED_BACK_DETAIL: &str = "экземпляр шлюза останавливается: документ не отправлен и возвращён в очередь";

/// A claim given back unsent by a stopping instance: as it was before the claim, due now
/// (for another instance; a document never sent at its place in the queue), the send or
/// the look-up it was claimed for not counted.
fn hand_back(record: &SubmissionRecord, claimed_from: Status, now: DateTime<Utc>) -> Step {
    let (from, transition) = match claimed_from {
        Status::Unknown => (
            ONLY_UNKNOWN,
            Transition {
                checks: Some(record.checks.saturating_sub(1)),
                ..Transition::to(Status::Unknown, RELAY, HANDED_BACK_DETAIL)
            },
        ),
        before => {
            let back = if before == Status::RetryWait { Status::RetryWait } else { Status::Queued };
            (
                ONLY_SENDING,
                Transition {
                    attempts: Some(record.attempts.saturating_sub(1)),
                    ..Transition::to(back, RELAY, HANDED_BACK_DETAIL)
                },
            )
        }
    };
    // A document never sent goes back to its place in its organisation's queue (due since
    // its intake), not behind the documents that came after it.
    let due = if transition.to == Status::Queued { record.created_at.min(now) } else { now };
    Step { from, transition: Transition { next_attempt_at: Some(due), ..transition }, outcome: "handed_back" }
}

/// What `happening` does to `record` at `now`. `rng` spreads retries (seeded in tests).
pub fn decide(
    rules: Rules<'_>,
    record: &SubmissionRecord,
    happening: Happening<'_>,
    now: DateTime<Utc>,
    rng: &mut impl Rng,
) -> Decision {
    let step = match happening {
        Happening::RegisterAnswer(answer) => register_answer(rules, record, answer, now, rng),
        Happening::SearchAnswer(answer) => search_answer(rules, record, answer, now, rng),
        Happening::Result(result) => result_step(rules, record, result, now, rng),
        Happening::LeaseExpired => sweep(Sweep::LeaseExpired, now),
        Happening::Restarted => sweep(Sweep::Restarted, now),
        Happening::HandedBack(claimed_from) => hand_back(record, claimed_from, now),
        Happening::Stopped => sweep(Sweep::Stopped, now),
        Happening::ResultOverdue => sweep(Sweep::ResultOverdue, now),
        Happening::Retry(op) => return ops_retry(record, op, now),
        Happening::Cancel(op) => return ops_cancel(record, op),
    };
    if step.from.contains(&record.status) { Decision::Apply(step) } else { Decision::Ignore }
}

fn register_answer(
    rules: Rules<'_>,
    record: &SubmissionRecord,
    answer: &Result<RegisterAck, Failure>,
    now: DateTime<Utc>,
    rng: &mut impl Rng,
) -> Step {
    let step = |transition, outcome| Step { from: ONLY_SENDING, transition, outcome };
    match answer {
        Ok(RegisterAck::Accepted) => step(
            Transition {
                awaiting_since: Some(now),
                check_at: Some(now + chrono_duration(rules.timing.result_check_after)),
                errors: Some(Vec::new()),
                ..Transition::to(Status::AwaitingResult, RELAY, "РЭМД принял запрос; ожидается результат регистрации")
            },
            "accepted",
        ),
        Ok(RegisterAck::Rejected(messages)) => {
            step(after_remd_errors(rules, record, messages, now, rng, RELAY, "РЭМД отклонил запрос"), "rejected")
        }
        Err(Failure::Retry { after, .. }) => step(
            retry_or_give_up(rules, record, after.map_or(Hint::None, Hint::After), now, rng, RELAY, "РЭМД недоступен"),
            "retry",
        ),
        Err(Failure::Unknown { .. }) => step(
            Transition {
                next_attempt_at: Some(now + chrono_duration(rules.timing.reconcile_after)),
                ..Transition::to(
                    Status::Unknown,
                    RELAY,
                    "ответ РЭМД не получен; перед повторной отправкой будет сверка с реестром",
                )
            },
            "unknown",
        ),
        Err(Failure::Permanent { reason }) => step(
            Transition {
                errors: Some(vec![gateway_error(rules, GatewayCode::RemdFault, reason)]),
                ..Transition::to(Status::Failed, RELAY, "РЭМД отверг запрос шлюза")
            },
            "permanent",
        ),
        Err(Failure::Configuration { reason }) => step(
            Transition {
                errors: Some(vec![gateway_error(rules, GatewayCode::Configuration, reason)]),
                ..Transition::to(Status::Failed, RELAY, "ошибка настройки доступа к РЭМД")
            },
            "configuration",
        ),
    }
}

fn search_answer(
    rules: Rules<'_>,
    record: &SubmissionRecord,
    answer: &Result<Vec<RegistryItem>, Failure>,
    now: DateTime<Utc>,
    rng: &mut impl Rng,
) -> Step {
    let step = |transition, outcome| Step { from: ONLY_UNKNOWN, transition, outcome };
    let timing = rules.timing;
    let items = match answer {
        Ok(items) => items,
        Err(f @ (Failure::Configuration { .. } | Failure::Permanent { .. })) => {
            return step(
                Transition {
                    errors: Some(vec![gateway_error(rules, GatewayCode::ReconciliationRefused, f.reason())]),
                    ..Transition::to(Status::Failed, RELAY, "сверка с реестром невозможна")
                },
                "reconcile_refused",
            );
        }
        Err(f) => {
            let hint = match f {
                Failure::Retry { after: Some(a), .. } => Hint::After(*a),
                _ => Hint::None,
            };
            // Backs off by the look-ups made, not the sends.
            let next = schedule(timing, record.checks, record, hint, now, rng);
            return step(
                on_schedule(
                    rules,
                    next,
                    Status::Unknown,
                    |_| "реестр РЭМД недоступен; сверка будет повторена".to_owned(),
                    GatewayCode::ReconciliationExhausted,
                    None,
                ),
                "reconcile_retry",
            );
        }
    };
    if let Some(item) = items.iter().find(|i| i.local_uid.as_deref() == Some(record.local_uid.as_str())) {
        return step(
            registered(item, now, RELAY, format!("найден в реестре РЭМД при сверке, emdrId {}", item.emdr_id)),
            "reconciled_registered",
        );
    }
    let taken = record.errors.iter().any(|e| e.disposition == Disposition::Reconcile);
    if taken {
        // REMD says the localUid is taken; its search may simply not show the registration
        // yet. Looked up again, later each time, up to the deadline.
        let checks = record.inconclusive + 1;
        return match next_check(timing.result_check_after, timing.result_deadline, checks, now) {
            Some(at) => step(
                Transition {
                    next_attempt_at: Some(at),
                    inconclusive: Some(checks),
                    ..Transition::to(
                        Status::Unknown,
                        RELAY,
                        format!(
                            "РЭМД считает документ зарегистрированным, но поиск пока его не находит; повторная сверка в {}",
                            at.format("%Y-%m-%d %H:%M:%S UTC")
                        ),
                    )
                },
                "reconciled_later",
            ),
            None => {
                let mut errors = record.errors.clone();
                errors.push(gateway_error(
                    rules,
                    GatewayCode::ReconciliationFailed,
                    "РЭМД считает localUid зарегистрированным, но поиск в реестре его не находит",
                ));
                step(
                    Transition {
                        errors: Some(errors),
                        ..Transition::to(
                            Status::Failed,
                            RELAY,
                            "документ не найден в реестре, хотя РЭМД считает его зарегистрированным",
                        )
                    },
                    "reconciled_missing",
                )
            }
        };
    }
    // Sent again — but on the schedule, and not forever: a REMD that accepts and never
    // answers must end in `failed`, not in an endless loop.
    let next = schedule(timing, record.attempts, record, Hint::None, now, rng);
    step(
        on_schedule(
            rules,
            next,
            Status::Queued,
            |_| "в реестре РЭМД не найден; будет отправлен снова".to_owned(),
            GatewayCode::NoResult,
            Some("результат регистрации не получен"),
        ),
        "reconciled_resend",
    )
}

fn result_step(
    rules: Rules<'_>,
    record: &SubmissionRecord,
    result: &RegisterResult,
    now: DateTime<Utc>,
    rng: &mut impl Rng,
) -> Step {
    match (&result.status, &result.registry_item) {
        (ResultStatus::Success, Some(item)) => {
            let mut detail = format!("зарегистрирован в РЭМД, emdrId {}", item.emdr_id);
            if matches!(record.status, Status::Failed | Status::Cancelled) {
                detail.push_str(&format!(" (документ был в статусе {})", record.status));
            }
            Step { from: NOT_REGISTERED, transition: registered(item, now, REMD, detail), outcome: "registered" }
        }
        (ResultStatus::Success, None) => Step {
            from: OPEN,
            transition: Transition {
                next_attempt_at: Some(now),
                ..Transition::to(
                    Status::Unknown,
                    REMD,
                    "РЭМД сообщил об успехе без номера регистрации; сверка с реестром",
                )
            },
            outcome: "success_without_item",
        },
        (ResultStatus::Error, _) => Step {
            from: OPEN,
            transition: after_remd_errors(
                rules,
                record,
                &result.errors,
                now,
                rng,
                REMD,
                "РЭМД: документ не зарегистрирован",
            ),
            outcome: "errors",
        },
    }
}

fn ops_retry(record: &SubmissionRecord, op: &Operator<'_>, now: DateTime<Utc>) -> Decision {
    if !RETRYABLE.contains(&record.status) {
        return Decision::Refuse(refusal("отправить повторно", record.status));
    }
    let note = with_comment("повторная отправка по решению оператора", op.comment);
    let look_up = format!("{note}; сначала сверка с реестром РЭМД");
    // Guarded by exactly the state decided for: a submission that moved on meanwhile (sent,
    // say, and now of unknown outcome) is not re-queued on the strength of its old state.
    let (from, to, detail) = match record.status {
        // The last send may have reached REMD: the register is looked up first, now.
        Status::Unknown => (ONLY_UNKNOWN, Status::Unknown, look_up),
        Status::Failed if outcome_unknown(&record.errors) => (ONLY_FAILED, Status::Unknown, look_up),
        Status::Failed => (ONLY_FAILED, Status::Queued, note),
        _ => (ONLY_RETRY_WAIT, Status::Queued, note),
    };
    Decision::Apply(Step {
        from,
        transition: Transition {
            next_attempt_at: Some(now),
            restart_schedule: true,
            ..Transition::to(to, &op.actor(), detail)
        },
        outcome: "ops_retry",
    })
}

/// The errors say the last send may have registered the document (it failed while its
/// outcome was being found out).
pub fn outcome_unknown(errors: &[SubmissionError]) -> bool {
    errors.iter().any(|e| {
        e.disposition == Disposition::Reconcile
            || GatewayCode::parse(&e.code).is_some_and(GatewayCode::leaves_outcome_unknown)
    })
}

fn ops_cancel(record: &SubmissionRecord, op: &Operator<'_>) -> Decision {
    if !CANCELLABLE.contains(&record.status) {
        return Decision::Refuse(refusal("отменить", record.status));
    }
    Decision::Apply(Step {
        from: CANCELLABLE,
        transition: Transition::to(
            Status::Cancelled,
            &op.actor(),
            with_comment("отменён оператором; больше не отправляется", op.comment),
        ),
        outcome: "ops_cancel",
    })
}

fn refusal(action: &str, status: Status) -> String {
    let why = match status {
        Status::Registered => "документ уже зарегистрирован в РЭМД",
        Status::Cancelled => "документ отменён",
        Status::Sending => "документ отправляется прямо сейчас",
        Status::Queued => "документ уже в очереди на отправку",
        Status::AwaitingResult => "РЭМД принял документ, результат регистрации ещё не пришёл",
        Status::RetryWait | Status::Unknown | Status::Failed => "в этом статусе действие недоступно",
    };
    format!("нельзя {action}: {why} (статус {status})")
}

fn with_comment(text: &str, comment: Option<&str>) -> String {
    match comment.map(str::trim).filter(|c| !c.is_empty()) {
        Some(c) => format!("{text}: «{c}»"),
        None => text.to_owned(),
    }
}

/// Applies REMD's error list: the decisive disposition of its codes says what happens.
fn after_remd_errors(
    rules: Rules<'_>,
    record: &SubmissionRecord,
    messages: &[RemdMessage],
    now: DateTime<Utc>,
    rng: &mut impl Rng,
    actor: &str,
    why: &str,
) -> Transition {
    let mut errors: Vec<SubmissionError> = messages.iter().map(|m| classify(rules.mappings, m)).collect();
    if errors.is_empty() {
        errors.push(gateway_error(rules, GatewayCode::EmptyRejection, "РЭМД ответил ошибкой, не назвав кода"));
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
            retry_or_give_up(rules, record, hint, now, rng, actor, &why)
        }
        Some(Disposition::Reconcile) => Transition {
            next_attempt_at: Some(now),
            ..Transition::to(Status::Unknown, actor, format!("{why}; сверка с реестром"))
        },
        Some(Disposition::NeedsAdmin | Disposition::NeedsDataFix) => Transition::to(Status::Failed, actor, why),
    };
    Transition { errors: Some(errors), ..t }
}

/// A REMD code with its disposition and hint (an unknown code: the table's stand-in).
pub fn classify(mappings: &Mappings, m: &RemdMessage) -> SubmissionError {
    let rule = mappings.code(&m.code).unwrap_or_else(|| mappings.gateway(GatewayCode::UnknownRemdCode));
    SubmissionError {
        code: m.code.clone(),
        message: m.message.expose().clone(),
        disposition: rule.disposition,
        hint_ru: rule.hint_ru.clone(),
    }
}

/// The codes of `messages` the table does not know (for the metric and the log).
pub fn unknown_codes<'m>(mappings: &Mappings, messages: &'m [RemdMessage]) -> impl Iterator<Item = &'m str> {
    messages.iter().map(|m| m.code.as_str()).filter(|c| mappings.code(c).is_none())
}

/// A transient failure: back to the schedule, or `failed` when retries are exhausted.
fn retry_or_give_up(
    rules: Rules<'_>,
    record: &SubmissionRecord,
    hint: Hint,
    now: DateTime<Utc>,
    rng: &mut impl Rng,
    actor: &str,
    why: &str,
) -> Transition {
    let next = schedule(rules.timing, record.attempts, record, hint, now, rng);
    Transition {
        actor: actor.to_owned(),
        ..on_schedule(
            rules,
            next,
            Status::RetryWait,
            |at| format!("{why}; повтор в {}", at.format("%Y-%m-%d %H:%M:%S UTC")),
            GatewayCode::RetriesExhausted,
            Some(why),
        )
    }
}

fn schedule(
    timing: &Timing,
    attempts: u32,
    record: &SubmissionRecord,
    hint: Hint,
    now: DateTime<Utc>,
    rng: &mut impl Rng,
) -> Next {
    next_attempt(&timing.retry, attempts, record.schedule_from, now, hint, rng)
}

/// Back on the schedule (`next`) in `waiting` (with the detail `waiting_detail` gives for
/// the due time), or — when the schedule is exhausted — `failed` with `give_up`'s error,
/// whose event detail is `detail` followed by the schedule's reason.
fn on_schedule(
    rules: Rules<'_>,
    next: Next,
    waiting: Status,
    waiting_detail: impl FnOnce(DateTime<Utc>) -> String,
    give_up: GatewayCode,
    detail: Option<&str>,
) -> Transition {
    match next {
        Next::RetryAt(at) => {
            Transition { next_attempt_at: Some(at), ..Transition::to(waiting, RELAY, waiting_detail(at)) }
        }
        Next::GiveUp { reason } => Transition {
            errors: Some(vec![gateway_error(rules, give_up, &reason)]),
            ..Transition::to(
                Status::Failed,
                RELAY,
                match detail {
                    Some(d) => format!("{d}; {reason}"),
                    None => reason,
                },
            )
        },
    }
}

fn gateway_error(rules: Rules<'_>, code: GatewayCode, message: &str) -> SubmissionError {
    let rule = rules.mappings.gateway(code);
    SubmissionError {
        code: code.as_str().to_owned(),
        message: message.to_owned(),
        disposition: rule.disposition,
        hint_ru: rule.hint_ru.clone(),
    }
}

fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// What a result from REMD may do, judged from the submission its `relatesToMessage` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgement {
    /// Apply it ([`decide`] works out the change).
    Apply,
    /// Record it, answer with a fault, change nothing; the reason is a metric label.
    Reject(&'static str),
}

/// The trust rule of REMD's results: a result counts only when it answers the MessageID the
/// gateway sent last for the submission (an earlier send's result is outdated, whatever it
/// says), and its `localUid`, organisation and kind are the submission's. A success must
/// carry `localUid` and organisation: nothing is registered on a result that does not say
/// what it registered.
pub fn judge_result(submission: Option<&SubmissionRecord>, result: &RegisterResult) -> Judgement {
    let Some(sub) = submission else { return Judgement::Reject("unknown_message") };
    if sub.current_message_id.as_deref() != Some(result.relates_to_message.as_str()) {
        return Judgement::Reject("not_current");
    }
    let success = result.status == ResultStatus::Success;
    let same = |given: Option<&str>, ours: &str| match given.map(str::trim) {
        Some(given) => given == ours,
        None => !success,
    };
    let kind_ok = result.kind.is_none_or(|k| k == sub.kind);
    let item_uid_ok = result
        .registry_item
        .as_ref()
        .and_then(|i| i.local_uid.as_deref())
        .is_none_or(|uid| uid.trim() == sub.local_uid);
    if !same(result.local_uid.as_deref(), &sub.local_uid)
        || !same(result.organization.as_deref(), sub.organization.as_str())
        || !kind_ok
        || !item_uid_ok
    {
        return Judgement::Reject("mismatch");
    }
    Judgement::Apply
}

#[cfg(test)]
mod tests;
