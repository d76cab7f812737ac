//! Every state × event pair of the lifecycle, and the details of each decision.

use std::time::Duration;

use chrono::{DateTime, Utc};
use egisz_contract::remd::{RegisterAck, RegisterResult, RegistryItem, RemdMessage, ResultStatus};
use egisz_contract::{Failure, Personal};
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::*;
use crate::submission::tests_support::record;

fn timing() -> Timing {
    Timing {
        result_check_after: Duration::from_secs(120),
        result_deadline: Duration::from_secs(3600),
        reconcile_after: Duration::from_secs(30),
        retry: RetryPolicy::default(),
    }
}

fn now() -> DateTime<Utc> {
    "2026-12-01T10:00:00Z".parse().unwrap()
}

fn message(code: &str) -> RemdMessage {
    RemdMessage { code: code.into(), message: Personal(format!("текст {code}")) }
}

fn item(local_uid: &str) -> RegistryItem {
    RegistryItem {
        emdr_id: "16.62.23.09.000014523".into(),
        local_uid: Some(local_uid.into()),
        kind: Some(40),
        registration_date_time: None,
        store_till_date: None,
        document_version: None,
    }
}

fn result(status: ResultStatus, item: Option<RegistryItem>, errors: Vec<RemdMessage>) -> RegisterResult {
    RegisterResult {
        message_id: "m".into(),
        relates_to_message: "ours".into(),
        status,
        kind: Some(40),
        organization: None,
        local_uid: None,
        creation_date_time: None,
        registry_item: item,
        errors,
    }
}

/// A submission in `status`, as the store would hold it there.
fn in_state(status: Status) -> SubmissionRecord {
    let mut r = record("L-1");
    r.status = status;
    r.attempts = 1;
    r.created_at = now() - chrono::Duration::minutes(10);
    r.schedule_from = r.created_at;
    r
}

fn run(r: &SubmissionRecord, h: Happening<'_>) -> Decision {
    let mappings = Mappings::embedded().unwrap();
    let timing = timing();
    decide(Rules { mappings: &mappings, timing: &timing }, r, h, now(), &mut StdRng::seed_from_u64(7))
}

fn applied(d: Decision) -> Transition {
    match d {
        Decision::Apply(step) => {
            assert!(!step.transition.detail.is_empty(), "every event has a detail");
            assert!(!step.transition.actor.is_empty(), "every event has an actor");
            step.transition
        }
        other => panic!("expected a transition, got {other:?}"),
    }
}

/// The table of the module's documentation, written out: for each event, the state it
/// leads to from each state (`None`: nothing happens; for an operator, refused).
#[test]
fn every_state_and_event() {
    use Status::*;
    let ops = Operator { name: "оператор", comment: Some("проверено") };
    let accepted = Ok(RegisterAck::Accepted);
    let rejected = Ok(RegisterAck::Rejected(vec![message("PERSON_NOT_FOUND")]));
    let transient: Result<RegisterAck, Failure> = Err(Failure::Retry { reason: "503".into(), after: None });
    let found = Ok(vec![item("L-1")]);
    let nothing: Result<Vec<RegistryItem>, Failure> = Ok(vec![]);
    let success = result(ResultStatus::Success, Some(item("L-1")), vec![]);
    let success_bare = result(ResultStatus::Success, None, vec![]);
    let errors = result(ResultStatus::Error, None, vec![message("PERSON_NOT_FOUND")]);
    // Columns: queued, sending, awaiting_result, retry_wait, unknown, registered, failed, cancelled.
    let n = None;
    let table: Vec<(&str, Happening<'_>, [Option<Status>; 8])> = vec![
        ("register accepted", Happening::RegisterAnswer(&accepted), [n, Some(AwaitingResult), n, n, n, n, n, n]),
        ("register rejected", Happening::RegisterAnswer(&rejected), [n, Some(Failed), n, n, n, n, n, n]),
        ("register transient", Happening::RegisterAnswer(&transient), [n, Some(RetryWait), n, n, n, n, n, n]),
        ("search found", Happening::SearchAnswer(&found), [n, n, n, n, Some(Registered), n, n, n]),
        ("search nothing", Happening::SearchAnswer(&nothing), [n, n, n, n, Some(Queued), n, n, n]),
        (
            "result registered",
            Happening::Result(&success),
            [
                Some(Registered),
                Some(Registered),
                Some(Registered),
                Some(Registered),
                Some(Registered),
                n,
                Some(Registered),
                Some(Registered),
            ],
        ),
        (
            "result success without item",
            Happening::Result(&success_bare),
            [Some(Unknown), Some(Unknown), Some(Unknown), Some(Unknown), Some(Unknown), n, n, n],
        ),
        (
            "result errors",
            Happening::Result(&errors),
            [Some(Failed), Some(Failed), Some(Failed), Some(Failed), Some(Failed), n, n, n],
        ),
        ("lease expired", Happening::LeaseExpired, [n, Some(Unknown), n, n, Some(Unknown), n, n, n]),
        ("restarted", Happening::Restarted, [n, Some(Unknown), n, n, Some(Unknown), n, n, n]),
        ("stopped", Happening::Stopped, [n, Some(Unknown), n, n, Some(Unknown), n, n, n]),
        ("handed back (queued)", Happening::HandedBack(Queued), [n, Some(Queued), n, n, n, n, n, n]),
        ("handed back (retry)", Happening::HandedBack(RetryWait), [n, Some(RetryWait), n, n, n, n, n, n]),
        ("handed back (look-up)", Happening::HandedBack(Unknown), [n, n, n, n, Some(Unknown), n, n, n]),
        ("result overdue", Happening::ResultOverdue, [n, n, Some(Unknown), n, n, n, n, n]),
        ("ops retry", Happening::Retry(&ops), [n, n, n, Some(Queued), Some(Unknown), n, Some(Queued), n]),
        (
            "ops cancel",
            Happening::Cancel(&ops),
            [
                Some(Cancelled),
                Some(Cancelled),
                Some(Cancelled),
                Some(Cancelled),
                Some(Cancelled),
                n,
                Some(Cancelled),
                n,
            ],
        ),
    ];
    for (name, happening, row) in table {
        let operator = matches!(happening, Happening::Retry(_) | Happening::Cancel(_));
        for (state, expected) in Status::ALL.into_iter().zip(row) {
            let d = run(&in_state(state), happening);
            match (expected, d) {
                (Some(to), Decision::Apply(step)) => {
                    assert_eq!(step.transition.to, to, "{name} in {state}");
                    assert!(
                        step.from.contains(&state),
                        "{name} in {state}: the guard must admit the state decided for"
                    );
                    assert!(!step.outcome.is_empty());
                }
                (None, Decision::Ignore) if !operator => {}
                (None, Decision::Refuse(why)) if operator => {
                    assert!(why.contains(state.as_str()), "{name} in {state}: {why}");
                }
                (expected, got) => panic!("{name} in {state}: expected {expected:?}, got {got:?}"),
            }
        }
    }
}

#[test]
fn an_accepted_request_waits_for_its_result_and_is_looked_up_later() {
    let t = applied(run(&in_state(Status::Sending), Happening::RegisterAnswer(&Ok(RegisterAck::Accepted))));
    assert_eq!(t.awaiting_since, Some(now()));
    assert_eq!(t.check_at, Some(now() + chrono::Duration::seconds(120)));
    assert_eq!(t.errors, Some(vec![]), "earlier errors are cleared");
    assert_eq!(t.actor, "relay");
}

#[test]
fn remd_errors_are_classified_by_the_decisive_code() {
    let sending = in_state(Status::Sending);
    let answer = |codes: &[&str]| Ok(RegisterAck::Rejected(codes.iter().map(|c| message(c)).collect()));
    // A retry code with a data code: a person must act.
    let t = applied(run(&sending, Happening::RegisterAnswer(&answer(&["INTERNAL_ERROR", "PERSON_NOT_FOUND"]))));
    assert_eq!(t.to, Status::Failed);
    assert_eq!(t.errors.as_ref().unwrap().len(), 2);
    assert!(t.detail.contains("INTERNAL_ERROR, PERSON_NOT_FOUND"), "{}", t.detail);
    // Already registered wins over everything: looked up now.
    let t = applied(run(&sending, Happening::RegisterAnswer(&answer(&["ACCESS_DENIED", "NOT_UNIQUE_PROVIDED_ID"]))));
    assert_eq!((t.to, t.next_attempt_at), (Status::Unknown, Some(now())));
    // RATE_LIMIT waits at least a minute.
    let t = applied(run(&sending, Happening::RegisterAnswer(&answer(&["RATE_LIMIT"]))));
    assert_eq!(t.to, Status::RetryWait);
    assert!(t.next_attempt_at.unwrap() >= now() + chrono::Duration::seconds(60));
    // No code at all: the gateway's own code, retried.
    let t = applied(run(&sending, Happening::RegisterAnswer(&answer(&[]))));
    assert_eq!(t.to, Status::RetryWait);
    assert_eq!(t.errors.unwrap()[0].code, "GATEWAY_EMPTY_REJECTION");
    // A code the table does not know: a person looks, with the stand-in hint.
    let t = applied(run(&sending, Happening::RegisterAnswer(&answer(&["BRAND_NEW_CODE"]))));
    assert_eq!(t.to, Status::Failed);
    let e = &t.errors.unwrap()[0];
    assert_eq!((e.code.as_str(), e.disposition), ("BRAND_NEW_CODE", Disposition::NeedsDataFix));
    assert!(e.hint_ru.contains("отсутствует в справочнике"), "{}", e.hint_ru);
}

#[test]
fn failures_without_an_answer() {
    let sending = in_state(Status::Sending);
    let t = applied(run(&sending, Happening::RegisterAnswer(&Err(Failure::Unknown { reason: "timeout".into() }))));
    assert_eq!((t.to, t.next_attempt_at), (Status::Unknown, Some(now() + chrono::Duration::seconds(30))));
    let t = applied(run(&sending, Happening::RegisterAnswer(&Err(Failure::Permanent { reason: "fault".into() }))));
    assert_eq!((t.to, t.errors.unwrap()[0].code.as_str()), (Status::Failed, "GATEWAY_REMD_FAULT"));
    let t = applied(run(&sending, Happening::RegisterAnswer(&Err(Failure::Configuration { reason: "403".into() }))));
    assert_eq!((t.to, t.errors.unwrap()[0].code.as_str()), (Status::Failed, "GATEWAY_CONFIGURATION"));
    let hinted = Err(Failure::Retry { reason: "429".into(), after: Some(Duration::from_secs(600)) });
    let t = applied(run(&sending, Happening::RegisterAnswer(&hinted)));
    assert!(t.next_attempt_at.unwrap() >= now() + chrono::Duration::seconds(600), "the server's hint is honoured");
}

#[test]
fn an_exhausted_schedule_ends_in_failed_with_the_gateway_code() {
    let mut r = in_state(Status::Sending);
    r.attempts = RetryPolicy::default().max_attempts;
    let t = applied(run(&r, Happening::RegisterAnswer(&Err(Failure::Retry { reason: "x".into(), after: None }))));
    assert_eq!(t.to, Status::Failed);
    let e = &t.errors.unwrap()[0];
    assert_eq!((e.code.as_str(), e.disposition), ("GATEWAY_RETRIES_EXHAUSTED", Disposition::Retry));
    assert!(t.detail.starts_with("РЭМД недоступен; исчерпаны попытки"), "{}", t.detail);
    // A document older than the schedule's age limit gives up too — counted from the
    // schedule's start, which an operator's retry moves.
    let mut r = in_state(Status::Sending);
    r.schedule_from = now() - chrono::Duration::days(8);
    let t = applied(run(&r, Happening::RegisterAnswer(&Err(Failure::Retry { reason: "x".into(), after: None }))));
    assert_eq!(t.to, Status::Failed);
    r.schedule_from = now();
    let t = applied(run(&r, Happening::RegisterAnswer(&Err(Failure::Retry { reason: "x".into(), after: None }))));
    assert_eq!(t.to, Status::RetryWait);
}

#[test]
fn look_ups() {
    let unknown = in_state(Status::Unknown);
    let t = applied(run(&unknown, Happening::SearchAnswer(&Ok(vec![item("OTHER"), item("L-1")]))));
    assert_eq!((t.to, t.emdr_id.as_deref()), (Status::Registered, Some("16.62.23.09.000014523")));
    // Nothing found, never taken: sent again on the schedule; exhausted → GATEWAY_NO_RESULT.
    let mut r = unknown.clone();
    r.attempts = RetryPolicy::default().max_attempts;
    let t = applied(run(&r, Happening::SearchAnswer(&Ok(vec![item("OTHER")]))));
    assert_eq!((t.to, t.errors.unwrap()[0].code.as_str()), (Status::Failed, "GATEWAY_NO_RESULT"));
    // REMD said "taken": looked up again later, then given up with the gateway's code.
    let mut taken = unknown.clone();
    taken.errors = vec![crate::lifecycle::classify(&Mappings::embedded().unwrap(), &message("NOT_UNIQUE_PROVIDED_ID"))];
    let t = applied(run(&taken, Happening::SearchAnswer(&Ok(vec![]))));
    assert_eq!((t.to, t.inconclusive), (Status::Unknown, Some(1)));
    assert_eq!(t.next_attempt_at, Some(now() + chrono::Duration::seconds(240)));
    taken.inconclusive = 10;
    let t = applied(run(&taken, Happening::SearchAnswer(&Ok(vec![]))));
    assert_eq!(t.to, Status::Failed);
    let codes: Vec<_> = t.errors.unwrap().into_iter().map(|e| e.code).collect();
    assert_eq!(codes, ["NOT_UNIQUE_PROVIDED_ID", "GATEWAY_RECONCILIATION_FAILED"]);
    // The search itself fails: backs off by look-ups; refused → needs an administrator.
    let t = applied(run(&unknown, Happening::SearchAnswer(&Err(Failure::Retry { reason: "x".into(), after: None }))));
    assert_eq!(t.to, Status::Unknown);
    assert!(t.next_attempt_at.unwrap() > now());
    let mut r = unknown.clone();
    r.checks = RetryPolicy::default().max_attempts;
    let t = applied(run(&r, Happening::SearchAnswer(&Err(Failure::Retry { reason: "x".into(), after: None }))));
    assert_eq!(t.errors.unwrap()[0].code, "GATEWAY_RECONCILIATION_EXHAUSTED");
    let t = applied(run(&unknown, Happening::SearchAnswer(&Err(Failure::Configuration { reason: "x".into() }))));
    assert_eq!((t.to, t.errors.unwrap()[0].code.as_str()), (Status::Failed, "GATEWAY_RECONCILIATION_REFUSED"));
}

#[test]
fn results() {
    let t = applied(run(
        &in_state(Status::Cancelled),
        Happening::Result(&result(ResultStatus::Success, Some(item("L-1")), vec![])),
    ));
    assert_eq!(t.actor, "remd");
    assert!(t.detail.contains("документ был в статусе cancelled"), "{}", t.detail);
    let t = applied(run(
        &in_state(Status::AwaitingResult),
        Happening::Result(&result(ResultStatus::Error, None, vec![message("MIS_NOT_AVAILABLE")])),
    ));
    assert_eq!((t.to, t.actor.as_str()), (Status::RetryWait, "remd"));
}

#[test]
fn sweeps_put_submissions_in_reconciliation_due_now() {
    for kind in [Sweep::LeaseExpired, Sweep::Restarted, Sweep::Stopped, Sweep::ResultOverdue] {
        let step = sweep(kind, now());
        assert_eq!((step.transition.to, step.transition.next_attempt_at), (Status::Unknown, Some(now())));
        assert_eq!(step.transition.check_at, None, "the look-up time is cleared");
    }
    assert_eq!(sweep(Sweep::ResultOverdue, now()).transition.actor, "watchdog");
}

#[test]
fn a_claim_handed_back_unsent_is_due_now_and_its_send_not_counted() {
    let mut claimed = in_state(Status::Sending);
    claimed.attempts = 3;
    let t = applied(run(&claimed, Happening::HandedBack(Status::RetryWait)));
    assert_eq!((t.to, t.next_attempt_at, t.attempts), (Status::RetryWait, Some(now()), Some(2)));
    assert_eq!(t.detail, crate::lifecycle::HANDED_BACK_DETAIL);
    assert!(!t.restart_schedule && t.errors.is_none(), "nothing else changes");
    let mut first = in_state(Status::Sending);
    first.attempts = 1;
    first.created_at = now() - chrono::Duration::minutes(5);
    let t = applied(run(&first, Happening::HandedBack(Status::Queued)));
    assert_eq!(
        (t.to, t.next_attempt_at, t.attempts),
        (Status::Queued, Some(first.created_at), Some(0)),
        "its place kept"
    );
    let mut looking_up = in_state(Status::Unknown);
    looking_up.checks = 2;
    let t = applied(run(&looking_up, Happening::HandedBack(Status::Unknown)));
    assert_eq!((t.to, t.next_attempt_at, t.attempts, t.checks), (Status::Unknown, Some(now()), None, Some(1)));
}

#[test]
fn operators() {
    let op = Operator { name: "Иванова", comment: Some("  роль исправлена в ФРМР ") };
    let t = applied(run(&in_state(Status::Failed), Happening::Retry(&op)));
    assert_eq!((t.to, t.next_attempt_at, t.restart_schedule), (Status::Queued, Some(now()), true));
    assert_eq!(t.actor, "ops:Иванова");
    assert!(t.detail.ends_with("«роль исправлена в ФРМР»"), "{}", t.detail);
    assert_eq!(t.errors, None, "the errors stay until REMD answers again");
    // From unknown the register is looked up first, never a blind resend.
    let t = applied(run(&in_state(Status::Unknown), Happening::Retry(&op)));
    assert_eq!(t.to, Status::Unknown);
    let silent = Operator { name: "x", comment: Some("  ") };
    let t = applied(run(&in_state(Status::Queued), Happening::Cancel(&silent)));
    assert_eq!(t.detail, "отменён оператором; больше не отправляется");
    // Each retry is guarded by exactly the state it was decided for.
    let guard = |s: Status| match run(&in_state(s), Happening::Retry(&op)) {
        Decision::Apply(step) => step.from.to_vec(),
        other => panic!("{other:?}"),
    };
    assert_eq!(guard(Status::Failed), [Status::Failed]);
    assert_eq!(guard(Status::RetryWait), [Status::RetryWait]);
    assert_eq!(guard(Status::Unknown), [Status::Unknown]);
    // A failure while the outcome was being found out: looked up before any resend.
    let mappings = Mappings::embedded().unwrap();
    for code in [
        "GATEWAY_RECONCILIATION_EXHAUSTED",
        "GATEWAY_RECONCILIATION_FAILED",
        "GATEWAY_RECONCILIATION_REFUSED",
        "GATEWAY_NO_RESULT",
        "NOT_UNIQUE_PROVIDED_ID",
    ] {
        let mut failed = in_state(Status::Failed);
        failed.errors = vec![match crate::mappings::GatewayCode::parse(code) {
            Some(g) => SubmissionError {
                code: code.into(),
                message: String::new(),
                disposition: mappings.gateway(g).disposition,
                hint_ru: String::new(),
            },
            None => classify(&mappings, &message(code)),
        }];
        let t = applied(run(&failed, Happening::Retry(&op)));
        assert_eq!(t.to, Status::Unknown, "{code}");
    }
    let mut refused = in_state(Status::Failed);
    refused.errors = vec![classify(&mappings, &message("PERSON_NOT_FOUND"))];
    assert_eq!(applied(run(&refused, Happening::Retry(&op))).to, Status::Queued, "REMD refused it: sent again");
    match run(&in_state(Status::Registered), Happening::Retry(&op)) {
        Decision::Refuse(why) => assert!(why.contains("уже зарегистрирован"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_claim_rule_covers_every_due_state_once() {
    for s in CLAIM.sends_from {
        assert!(!CLAIM.reconciles_from.contains(s));
    }
    // Every state a transition leaves due (next_attempt_at set) is claimable.
    let claimable: Vec<Status> = CLAIM.sends_from.iter().chain(CLAIM.reconciles_from).copied().collect();
    assert_eq!(claimable, [Status::Queued, Status::RetryWait, Status::Unknown]);
}

#[test]
fn judging_results() {
    let mut sub = in_state(Status::AwaitingResult);
    sub.current_message_id = Some("ours".into());
    let mut r = result(ResultStatus::Success, Some(item("L-1")), vec![]);
    assert_eq!(judge_result(None, &r), Judgement::Reject("unknown_message"));
    assert_eq!(judge_result(Some(&sub), &r), Judgement::Reject("mismatch"), "a success must name what it registered");
    r.local_uid = Some("L-1".into());
    r.organization = Some(sub.organization.to_string());
    assert_eq!(judge_result(Some(&sub), &r), Judgement::Apply);
    r.relates_to_message = "earlier".into();
    assert_eq!(judge_result(Some(&sub), &r), Judgement::Reject("not_current"));
}

#[test]
fn a_repeated_document_is_the_same_submission_only_with_the_same_bytes() {
    let existing = record("uid-1");
    assert_eq!(repeated(existing.clone(), b"<a/>", b"<a/>"), crate::submission::Intake::Existing(existing.clone()));
    assert_eq!(repeated(existing.clone(), b"<a/>", b"<b/>"), crate::submission::Intake::Conflict(existing));
}

#[test]
fn a_batch_sees_each_key_once_stored_first_or_repeated() {
    let batch = ["a", "b", "a", "c", "b", "a"];
    let stored = ["c"];
    assert_eq!(
        seen(&batch, &stored),
        [Seen::First, Seen::First, Seen::RepeatOf(0), Seen::Stored(0), Seen::RepeatOf(1), Seen::RepeatOf(0)]
    );
    assert!(seen::<&str>(&[], &stored).is_empty());
}
