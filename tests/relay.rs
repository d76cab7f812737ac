//! The relay's decisions, on SQLite and PostgreSQL, against a scripted REMD: what each
//! answer of REMD does to a submission.

mod common;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Db, TestDb};
use egisz_contract::remd::{
    RegisterAck, RegisterDocument, RegisterResult, RegistryItem, RemdMessage, RemdRegistry, ResultStatus, SearchQuery,
};
use egisz_contract::{Failure, Oid, Personal};
use egisz_gateway::config::Config;
use egisz_gateway::lifecycle::schedule::RetryPolicy;
use egisz_gateway::lifecycle::{Lifecycle, Sweep, Timing, sweep};
use egisz_gateway::mappings::Mappings;
use egisz_gateway::metrics::Metrics;
use egisz_gateway::quota::Rate;
use egisz_gateway::relay::{Relay, RelayConfig};
use egisz_gateway::remd::RemdCalls;
use egisz_gateway::store::{self, Store};
use egisz_gateway::submission::{Disposition, Intake, NewSubmission, Status};
use uuid::Uuid;

on_both_backends!(
    accepted_then_awaiting_result,
    rate_limit_waits_a_minute,
    permanent_codes_fail_with_hints,
    already_registered_is_reconciled_to_registered,
    unknown_outcome_is_reconciled_before_any_resend,
    unknown_codes_are_safe,
    transport_failures_follow_the_schedule,
    a_success_after_the_gateway_gave_up_still_registers,
    an_error_about_an_earlier_send_does_not_override_the_latest,
    accepted_but_never_answered_ends_failed_not_in_a_loop,
    already_registered_with_other_codes_is_reconciled_first,
    a_repeated_result_is_applied_once,
    a_lost_result_is_found_at_the_first_look_up,
    a_request_remd_forgot_is_sent_again_after_the_look_up,
    already_registered_but_not_found_is_looked_up_later_each_time,
    search_failures_back_off_by_look_ups,
    a_slow_call_keeps_its_lease,
    a_stopping_relay_hands_back_what_it_has_not_sent,
    a_transition_sets_the_counts_it_names,
);

const MO: &str = "1.2.643.5.1.13.13.12.2.42.2917";

/// A REMD whose answers the test scripts, recording what it was sent.
#[derive(Default)]
struct ScriptedRemd {
    register: Mutex<VecDeque<Result<RegisterAck, Failure>>>,
    search: Mutex<VecDeque<Result<Vec<RegistryItem>, Failure>>>,
    sent: Mutex<Vec<RegisterDocument>>,
    searched: Mutex<Vec<SearchQuery>>,
    /// How long each registerDocument takes.
    delay: Mutex<Duration>,
    /// registerDocument calls begun (the request on the wire), finished or not.
    begun: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl RemdRegistry for ScriptedRemd {
    async fn register_document(&self, request: &RegisterDocument) -> Result<RegisterAck, Failure> {
        self.begun.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let delay = *self.delay.lock().unwrap();
        tokio::time::sleep(delay).await;
        self.sent.lock().unwrap().push(request.clone());
        self.register.lock().unwrap().pop_front().expect("a scripted registerDocument answer")
    }
    async fn search_registry_items(&self, query: &SearchQuery) -> Result<Vec<RegistryItem>, Failure> {
        self.searched.lock().unwrap().push(query.clone());
        self.search.lock().unwrap().pop_front().expect("a scripted searchRegistryItem answer")
    }
    async fn get_registry_item(&self, _: &str) -> Result<Option<RegistryItem>, Failure> {
        Ok(None)
    }
}

fn msg(code: &str) -> RemdMessage {
    RemdMessage { code: code.into(), message: Personal(format!("сообщение {code}")) }
}

struct Rig {
    _db: TestDb,
    store: Arc<dyn Store>,
    remd: Arc<ScriptedRemd>,
    calls: Arc<RemdCalls>,
    relay: Arc<Relay>,
    metrics: Arc<Metrics>,
}

async fn rig(db: Db) -> Rig {
    rig_with(db, RetryPolicy::default()).await
}

async fn rig_with(db: Db, retry: RetryPolicy) -> Rig {
    rig_leased(db, retry, Duration::from_secs(60)).await
}

async fn rig_leased(db: Db, retry: RetryPolicy, lease: Duration) -> Rig {
    rig_tuned(db, |s, _| {
        s.timing.retry = retry;
        s.lease_for = lease;
    })
    .await
}

async fn rig_tuned(db: Db, tweak: impl FnOnce(&mut RelayConfig, &mut Rate)) -> Rig {
    let mut settings = RelayConfig {
        instance_id: "test-worker".into(),
        concurrency: 1,
        lease_for: Duration::from_secs(60),
        poll_interval: Duration::from_millis(100),
        timing: Timing {
            result_check_after: Duration::from_secs(120),
            result_deadline: Duration::from_secs(3600),
            reconcile_after: Duration::ZERO,
            retry: RetryPolicy::default(),
        },
        callbacks_kept_for: Duration::from_secs(90 * 24 * 3600),
        stop_grace: Duration::from_secs(5),
    };
    let mut quota = Rate { per_second: 1000.0, burst: 10 };
    tweak(&mut settings, &mut quota);
    let test_db = TestDb::new(db).await;
    let env = [("EGISZ__DATABASE__URL".to_owned(), test_db.url.clone())];
    let store = store::connect(&Config::load(None, &env).unwrap().database).await.unwrap();
    let remd = Arc::new(ScriptedRemd::default());
    let metrics = Arc::new(Metrics::new());
    let calls = Arc::new(RemdCalls::new(Arc::clone(&store), remd.clone(), quota, Arc::clone(&metrics)));
    let lifecycle = Arc::new(Lifecycle::new(
        Arc::new(Mappings::embedded().unwrap()),
        settings.timing.clone(),
        Arc::new(tokio::sync::Notify::new()),
        Arc::clone(&metrics),
    ));
    let relay = Arc::new(Relay::new(Arc::clone(&store), Arc::clone(&calls), lifecycle, Arc::clone(&metrics), settings));
    Rig { _db: test_db, store, remd, calls, relay, metrics }
}

async fn submit(r: &Rig, local_uid: &str) -> Uuid {
    let new = NewSubmission {
        id: Uuid::now_v7(),
        organization: Oid::parse(MO).unwrap(),
        local_uid: local_uid.into(),
        kind: 40,
        checksum: 7,
        content: b"<ClinicalDocument/>".to_vec(),
        request: common::register_request(local_uid),
        created_at: egisz_gateway::now(),
        actor: "api:test".into(),
        warnings: Vec::new(),
        detail: egisz_gateway::lifecycle::INTAKE_DETAIL.to_owned(),
    };
    match r.store.intake(&new).await.unwrap() {
        Intake::Created(rec) => rec.id,
        other => panic!("{other:?}"),
    }
}

async fn status(r: &Rig, id: Uuid) -> Status {
    r.store.submission(id).await.unwrap().unwrap().status
}

/// Makes a waiting submission due now, as if its time had come.
async fn make_due(r: &Rig, id: Uuid, from: Status) {
    let t = egisz_gateway::submission::Transition {
        next_attempt_at: Some(egisz_gateway::now()),
        ..egisz_gateway::submission::Transition::to(from, "test", "due now")
    };
    assert!(r.store.transition(id, &[from], None, &t, egisz_gateway::now()).await.unwrap());
}

async fn accepted_then_awaiting_result(db: Db) {
    let r = rig(db).await;
    let id = submit(&r, "a-1").await;
    r.remd.register.lock().unwrap().push_back(Ok(RegisterAck::Accepted));
    assert_eq!(r.relay.drain().await.unwrap(), 1);
    let rec = r.store.submission(id).await.unwrap().unwrap();
    assert_eq!(rec.status, Status::AwaitingResult);
    assert_eq!(rec.attempts, 1);
    assert!(rec.awaiting_since.is_some());
    let sent = r.remd.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    assert!(Uuid::parse_str(&sent[0].message_id).is_ok(), "a fresh MessageID per send");
    assert_eq!(r.store.submission_by_message(&sent[0].message_id).await.unwrap().unwrap().id, id);
    assert_eq!(r.relay.drain().await.unwrap(), 0, "nothing more to do until REMD answers");
}

async fn rate_limit_waits_a_minute(db: Db) {
    let r = rig(db).await;
    let id = submit(&r, "rl-1").await;
    r.remd.register.lock().unwrap().push_back(Ok(RegisterAck::Rejected(vec![msg("RATE_LIMIT")])));
    r.relay.drain().await.unwrap();
    let rec = r.store.submission(id).await.unwrap().unwrap();
    assert_eq!(rec.status, Status::RetryWait);
    let wait = rec.next_attempt_at.unwrap() - rec.updated_at;
    assert!(wait >= chrono::Duration::seconds(60), "RATE_LIMIT waits at least a minute, waited {wait}");
    assert_eq!(rec.errors[0].code, "RATE_LIMIT");
    assert_eq!(rec.errors[0].disposition, Disposition::Retry);
}

async fn permanent_codes_fail_with_hints(db: Db) {
    let r = rig(db).await;
    let id = submit(&r, "p-1").await;
    r.remd
        .register
        .lock()
        .unwrap()
        .push_back(Ok(RegisterAck::Rejected(vec![msg("RATE_LIMIT"), msg("PERSON_POST_IN_FRMR_MISMATCH")])));
    r.relay.drain().await.unwrap();
    let rec = r.store.submission(id).await.unwrap().unwrap();
    assert_eq!(rec.status, Status::Failed, "a data problem decides over a transient one");
    let e = rec.errors.iter().find(|e| e.code == "PERSON_POST_IN_FRMR_MISMATCH").unwrap();
    assert_eq!(e.disposition, Disposition::NeedsDataFix);
    assert!(!e.hint_ru.is_empty());
    assert_eq!(e.message, "сообщение PERSON_POST_IN_FRMR_MISMATCH", "REMD's text is kept for the submitter");
    assert_eq!(r.relay.drain().await.unwrap(), 0, "failed waits for ops");

    let admin = submit(&r, "p-2").await;
    r.remd.register.lock().unwrap().push_back(Ok(RegisterAck::Rejected(vec![msg("ACCESS_DENIED")])));
    r.relay.drain().await.unwrap();
    let rec = r.store.submission(admin).await.unwrap().unwrap();
    assert_eq!((rec.status, rec.errors[0].disposition), (Status::Failed, Disposition::NeedsAdmin));
}

async fn already_registered_is_reconciled_to_registered(db: Db) {
    let r = rig(db).await;
    let id = submit(&r, "dup-1").await;
    r.remd.register.lock().unwrap().push_back(Ok(RegisterAck::Rejected(vec![msg("NOT_UNIQUE_PROVIDED_ID")])));
    r.remd.search.lock().unwrap().push_back(Ok(vec![
        RegistryItem {
            emdr_id: "16.62.23.09.000000001".into(),
            local_uid: Some("someone-else".into()),
            kind: Some(40),
            registration_date_time: None,
            store_till_date: None,
            document_version: None,
        },
        RegistryItem {
            emdr_id: "16.62.23.09.000014523".into(),
            local_uid: Some("dup-1".into()),
            kind: Some(40),
            registration_date_time: Some("2023-08-18T11:00:00+07:00".parse().unwrap()),
            store_till_date: None,
            document_version: Some("1".into()),
        },
    ]));
    assert_eq!(r.relay.drain().await.unwrap(), 2, "send, then reconcile");
    let rec = r.store.submission(id).await.unwrap().unwrap();
    assert_eq!(rec.status, Status::Registered);
    assert_eq!(rec.emdr_id.as_deref(), Some("16.62.23.09.000014523"));
    assert!(rec.errors.is_empty());
    let q = r.remd.searched.lock().unwrap()[0].clone();
    assert_eq!((q.organization.as_str(), q.kind), (MO, Some(40)));
    assert_eq!(r.remd.sent.lock().unwrap().len(), 1, "never sent twice");
}

async fn unknown_outcome_is_reconciled_before_any_resend(db: Db) {
    let r = rig(db).await;
    let id = submit(&r, "u-1").await;
    {
        let mut reg = r.remd.register.lock().unwrap();
        reg.push_back(Err(Failure::Unknown { reason: "timed out after sending".into() }));
        reg.push_back(Ok(RegisterAck::Accepted));
    }
    r.remd.search.lock().unwrap().push_back(Ok(vec![]));
    assert_eq!(r.relay.drain().await.unwrap(), 2, "send, reconcile (not found)");
    let rec = r.store.submission(id).await.unwrap().unwrap();
    assert_eq!(rec.status, Status::Queued);
    assert!(rec.next_attempt_at.unwrap() > rec.updated_at, "sent again on the schedule, not at once");
    make_due(&r, id, Status::Queued).await;
    assert_eq!(r.relay.drain().await.unwrap(), 1, "sent again");
    assert_eq!(status(&r, id).await, Status::AwaitingResult);
    let statuses: Vec<Status> = r.store.events(id).await.unwrap().iter().map(|e| e.status).collect();
    assert_eq!(
        statuses,
        [
            Status::Queued,
            Status::Sending,
            Status::Unknown,
            Status::Queued,
            Status::Queued,
            Status::Sending,
            Status::AwaitingResult
        ]
    );
    let sent = r.remd.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 2);
    assert_ne!(sent[0].message_id, sent[1].message_id);
    assert_eq!(r.store.submission(id).await.unwrap().unwrap().attempts, 2);
}

async fn unknown_codes_are_safe(db: Db) {
    let r = rig(db).await;
    let id = submit(&r, "x-1").await;
    r.remd.register.lock().unwrap().push_back(Ok(RegisterAck::Rejected(vec![msg("BRAND_NEW_CODE")])));
    r.relay.drain().await.unwrap();
    let rec = r.store.submission(id).await.unwrap().unwrap();
    assert_eq!((rec.status, rec.errors[0].disposition), (Status::Failed, Disposition::NeedsDataFix));
    assert!(r.metrics.render().contains("egisz_remd_unknown_codes_total 1"));
}

async fn transport_failures_follow_the_schedule(db: Db) {
    let r = rig(db).await;
    let id = submit(&r, "t-1").await;
    {
        let mut reg = r.remd.register.lock().unwrap();
        reg.push_back(Err(Failure::Retry { reason: "503".into(), after: Some(Duration::from_secs(120)) }));
        reg.push_back(Err(Failure::Configuration { reason: "401".into() }));
    }
    r.relay.drain().await.unwrap();
    let rec = r.store.submission(id).await.unwrap().unwrap();
    assert_eq!(rec.status, Status::RetryWait);
    assert!(rec.next_attempt_at.unwrap() - rec.updated_at >= chrono::Duration::seconds(120), "the server's hint holds");
    make_due(&r, id, Status::RetryWait).await;
    r.relay.drain().await.unwrap();
    let rec = r.store.submission(id).await.unwrap().unwrap();
    assert_eq!((rec.status, rec.attempts), (Status::Failed, 2));
    assert_eq!(rec.errors[0].code, "GATEWAY_CONFIGURATION");
}

/// Posts a result to the REMD-facing listener as REMD would (naming the document the
/// message was sent for); the HTTP status of the answer.
async fn post_result(
    r: &Rig,
    remd_message: &str,
    relates_to: &str,
    status: ResultStatus,
    errors: Vec<RemdMessage>,
) -> u16 {
    use tower::ServiceExt;
    let local_uid = r.store.submission_by_message(relates_to).await.unwrap().map(|s| s.local_uid);
    let result = RegisterResult {
        message_id: remd_message.into(),
        relates_to_message: relates_to.into(),
        status: status.clone(),
        kind: Some(40),
        organization: Some(MO.into()),
        local_uid,
        creation_date_time: None,
        registry_item: matches!(status, ResultStatus::Success).then(|| RegistryItem {
            emdr_id: "16.62.23.09.000000777".into(),
            local_uid: None,
            kind: Some(40),
            registration_date_time: None,
            store_till_date: None,
            document_version: None,
        }),
        errors,
    };
    let config = egisz_gateway::config::Config::load(None, &[]).unwrap();
    let app = egisz_gateway::remd_listener::router(
        egisz_gateway::remd_listener::ListenerState {
            store: Arc::clone(&r.store),
            lifecycle: Arc::clone(r.relay.lifecycle()),
            remd: Arc::clone(&r.calls),
            metrics: Arc::new(egisz_gateway::metrics::Metrics::new()),
            confirm_success: false,
        },
        &config.remd_listener.limits,
    );
    let body = egisz_remd::write_register_document_result(egisz_remd::SoapVersion::Soap12, &result);
    let req = axum::http::Request::post("/").body(axum::body::Body::from(body)).unwrap();
    app.oneshot(req).await.unwrap().status().as_u16()
}

async fn messages(r: &Rig, id: Uuid) -> Vec<String> {
    r.store.messages(id).await.unwrap()
}

async fn a_success_after_the_gateway_gave_up_still_registers(db: Db) {
    let r = rig(db).await;
    let id = submit(&r, "gave-up-1").await;
    r.remd.register.lock().unwrap().push_back(Err(Failure::Unknown { reason: "timeout after sending".into() }));
    r.remd.search.lock().unwrap().push_back(Err(Failure::Permanent { reason: "search refused".into() }));
    r.relay.drain().await.unwrap();
    assert_eq!(status(&r, id).await, Status::Failed);
    // REMD had it after all.
    let sent = messages(&r, id).await;
    assert_eq!(post_result(&r, "remd-1", &sent[0], ResultStatus::Success, vec![]).await, 200);
    let rec = r.store.submission(id).await.unwrap().unwrap();
    assert_eq!(rec.status, Status::Registered, "REMD's success is the truth");
    assert_eq!(rec.emdr_id.as_deref(), Some("16.62.23.09.000000777"));
}

async fn an_error_about_an_earlier_send_does_not_override_the_latest(db: Db) {
    let r = rig(db).await;
    let id = submit(&r, "two-sends").await;
    {
        let mut reg = r.remd.register.lock().unwrap();
        reg.push_back(Err(Failure::Unknown { reason: "timeout after sending".into() }));
        reg.push_back(Ok(RegisterAck::Accepted));
    }
    r.remd.search.lock().unwrap().push_back(Ok(vec![]));
    r.relay.drain().await.unwrap();
    make_due(&r, id, Status::Queued).await;
    r.relay.drain().await.unwrap();
    let sent = messages(&r, id).await;
    assert_eq!(sent.len(), 2);
    let answer = post_result(&r, "remd-old", &sent[0], ResultStatus::Error, vec![msg("PERSON_POST_IN_FRMR_MISMATCH")]);
    assert_eq!(answer.await, 400, "a result for an outdated send is refused with a fault");
    assert_eq!(status(&r, id).await, Status::AwaitingResult, "an error about the first send changes nothing");
    assert_eq!(post_result(&r, "remd-new", &sent[1], ResultStatus::Success, vec![]).await, 200);
    assert_eq!(status(&r, id).await, Status::Registered);
}

async fn accepted_but_never_answered_ends_failed_not_in_a_loop(db: Db) {
    let r = rig_with(db, RetryPolicy { max_attempts: 2, ..RetryPolicy::default() }).await;
    let id = submit(&r, "silent").await;
    for _ in 0..2 {
        r.remd.register.lock().unwrap().push_back(Ok(RegisterAck::Accepted));
        r.remd.search.lock().unwrap().push_back(Ok(vec![]));
    }
    for round in 0..2 {
        r.relay.drain().await.unwrap();
        assert_eq!(status(&r, id).await, Status::AwaitingResult, "round {round}");
        // The result never comes: the watchdog hands it to reconciliation.
        let later = egisz_gateway::now() + chrono::Duration::hours(2);
        assert_eq!(r.store.expire_awaiting(later, later, &sweep(Sweep::ResultOverdue, later)).await.unwrap(), 1);
        make_due(&r, id, Status::Unknown).await;
        r.relay.drain().await.unwrap();
        if round == 0 {
            assert_eq!(status(&r, id).await, Status::Queued);
            make_due(&r, id, Status::Queued).await;
        }
    }
    let rec = r.store.submission(id).await.unwrap().unwrap();
    assert_eq!(rec.status, Status::Failed);
    assert_eq!(rec.errors[0].code, "GATEWAY_NO_RESULT");
    assert_eq!(r.remd.sent.lock().unwrap().len(), 2, "no more sends than max_attempts");
}

async fn already_registered_with_other_codes_is_reconciled_first(db: Db) {
    let r = rig(db).await;
    let id = submit(&r, "dup-2").await;
    r.remd
        .register
        .lock()
        .unwrap()
        .push_back(Ok(RegisterAck::Rejected(vec![msg("PERSON_POST_IN_FRMR_MISMATCH"), msg("NOT_UNIQUE_PROVIDED_ID")])));
    r.remd.search.lock().unwrap().push_back(Ok(vec![RegistryItem {
        emdr_id: "16.62.23.09.000000042".into(),
        local_uid: Some("dup-2".into()),
        kind: Some(40),
        registration_date_time: None,
        store_till_date: None,
        document_version: None,
    }]));
    r.relay.drain().await.unwrap();
    let rec = r.store.submission(id).await.unwrap().unwrap();
    assert_eq!((rec.status, rec.emdr_id.as_deref()), (Status::Registered, Some("16.62.23.09.000000042")));
}

async fn a_repeated_result_is_applied_once(db: Db) {
    let r = rig(db).await;
    let id = submit(&r, "repeat").await;
    r.remd.register.lock().unwrap().push_back(Ok(RegisterAck::Accepted));
    r.relay.drain().await.unwrap();
    let sent = messages(&r, id).await;
    for _ in 0..3 {
        assert_eq!(post_result(&r, "remd-same", &sent[0], ResultStatus::Error, vec![msg("RATE_LIMIT")]).await, 200);
    }
    let events = r.store.events(id).await.unwrap();
    assert_eq!(events.iter().filter(|e| e.status == Status::RetryWait).count(), 1, "{events:?}");
}

fn item(local_uid: &str, emdr_id: &str) -> RegistryItem {
    RegistryItem {
        emdr_id: emdr_id.into(),
        local_uid: Some(local_uid.into()),
        kind: Some(40),
        registration_date_time: None,
        store_till_date: None,
        document_version: None,
    }
}

/// Accepted, then the result is lost: the look-up is scheduled `result_check_after` after the
/// acceptance, is not due before, and finds the registration.
async fn a_lost_result_is_found_at_the_first_look_up(db: Db) {
    let r = rig(db).await;
    let id = submit(&r, "lost-1").await;
    r.remd.register.lock().unwrap().push_back(Ok(RegisterAck::Accepted));
    r.relay.drain().await.unwrap();
    let rec = r.store.submission(id).await.unwrap().unwrap();
    assert_eq!(rec.status, Status::AwaitingResult);
    let check_at = rec.check_at.expect("a look-up is scheduled");
    assert_eq!((check_at - rec.awaiting_since.unwrap()).num_seconds(), 120);
    let before = check_at - chrono::Duration::seconds(1);
    assert_eq!(
        r.store
            .expire_awaiting(before - chrono::Duration::hours(1), before, &sweep(Sweep::ResultOverdue, before))
            .await
            .unwrap(),
        0,
        "not yet"
    );
    assert_eq!(
        r.store
            .expire_awaiting(check_at - chrono::Duration::hours(1), check_at, &sweep(Sweep::ResultOverdue, check_at))
            .await
            .unwrap(),
        1
    );
    make_due(&r, id, Status::Unknown).await;
    r.remd.search.lock().unwrap().push_back(Ok(vec![item("lost-1", "16.62.23.09.000000101")]));
    r.relay.drain().await.unwrap();
    let rec = r.store.submission(id).await.unwrap().unwrap();
    assert_eq!((rec.status, rec.emdr_id.as_deref()), (Status::Registered, Some("16.62.23.09.000000101")));
    assert_eq!(rec.check_at, None);
    assert_eq!(r.remd.sent.lock().unwrap().len(), 1, "found, not sent again");
}

/// Accepted, and REMD forgot it: the look-up finds nothing, and the document is sent again.
async fn a_request_remd_forgot_is_sent_again_after_the_look_up(db: Db) {
    let r = rig_with(db, RetryPolicy { base: Duration::ZERO, ..RetryPolicy::default() }).await;
    let id = submit(&r, "forgot-1").await;
    {
        let mut reg = r.remd.register.lock().unwrap();
        reg.push_back(Ok(RegisterAck::Accepted));
        reg.push_back(Ok(RegisterAck::Accepted));
    }
    r.relay.drain().await.unwrap();
    let check_at = r.store.submission(id).await.unwrap().unwrap().check_at.unwrap();
    assert_eq!(r.store.expire_awaiting(check_at, check_at, &sweep(Sweep::ResultOverdue, check_at)).await.unwrap(), 1);
    make_due(&r, id, Status::Unknown).await;
    r.remd.search.lock().unwrap().push_back(Ok(vec![]));
    r.relay.drain().await.unwrap();
    let rec = r.store.submission(id).await.unwrap().unwrap();
    assert_eq!(rec.status, Status::AwaitingResult, "sent again and accepted again");
    assert_eq!(r.remd.sent.lock().unwrap().len(), 2);
    assert_eq!(messages(&r, id).await.len(), 2);
}

/// REMD says "already registered" but its search does not show it yet: looked up again at
/// growing intervals (4, 8, 16 min after 2), then failed for ops at the deadline. Look-ups
/// that fail in between (the search is down) do not eat into that window.
async fn already_registered_but_not_found_is_looked_up_later_each_time(db: Db) {
    let r = rig(db).await;
    let id = submit(&r, "lagging-1").await;
    r.remd.register.lock().unwrap().push_back(Ok(RegisterAck::Rejected(vec![msg("NOT_UNIQUE_PROVIDED_ID")])));
    {
        let mut search = r.remd.search.lock().unwrap();
        search.push_back(Ok(vec![]));
        for _ in 0..3 {
            search.push_back(Err(Failure::Retry { reason: "503".into(), after: None }));
        }
        for _ in 0..3 {
            search.push_back(Ok(vec![]));
        }
    }
    r.relay.drain().await.unwrap();
    let mut waits = Vec::new();
    let mut seen = 0;
    loop {
        let rec = r.store.submission(id).await.unwrap().unwrap();
        if rec.status != Status::Unknown {
            assert_eq!(rec.status, Status::Failed);
            assert!(rec.errors.iter().any(|e| e.code == "GATEWAY_RECONCILIATION_FAILED"), "{:?}", rec.errors);
            break;
        }
        if rec.inconclusive > seen {
            seen = rec.inconclusive;
            waits.push((rec.next_attempt_at.unwrap() - rec.updated_at).num_seconds());
        }
        make_due(&r, id, Status::Unknown).await;
        r.relay.drain().await.unwrap();
    }
    assert_eq!(waits, vec![240, 480, 960]);
    assert_eq!(r.remd.searched.lock().unwrap().len(), 7);
    assert_eq!(r.remd.sent.lock().unwrap().len(), 1, "never sent again while REMD holds the localUid");
}

/// A register that cannot be searched: each look-up waits longer (its count, not the sends,
/// drives the backoff).
async fn search_failures_back_off_by_look_ups(db: Db) {
    let r = rig(db).await;
    let id = submit(&r, "nosearch-1").await;
    r.remd.register.lock().unwrap().push_back(Err(Failure::Unknown { reason: "timeout after sending".into() }));
    for _ in 0..4 {
        r.remd.search.lock().unwrap().push_back(Err(Failure::Retry { reason: "503".into(), after: None }));
    }
    r.relay.drain().await.unwrap();
    let base = RetryPolicy::default().base;
    for checks in 1..=3u32 {
        let rec = r.store.submission(id).await.unwrap().unwrap();
        assert_eq!((rec.status, rec.checks, rec.attempts), (Status::Unknown, checks, 1));
        let wait = (rec.next_attempt_at.unwrap() - rec.updated_at).to_std().unwrap();
        assert!(wait <= base * (1 << (checks - 1)), "look-up {checks}: waited {wait:?}");
        make_due(&r, id, Status::Unknown).await;
        r.relay.drain().await.unwrap();
    }
    let rec = r.store.submission(id).await.unwrap().unwrap();
    assert_eq!((rec.status, rec.checks), (Status::Unknown, 4));
    assert_eq!(r.remd.searched.lock().unwrap().len(), 4);
}

/// A call slower than the lease: the lease is renewed while it runs, the reaper leaves it
/// alone, and its outcome is applied.
async fn a_slow_call_keeps_its_lease(db: Db) {
    // The call outlasts the lease; renewed every third of it (1 s), the lease has 2 s of
    // slack for a renewal's write on a loaded machine.
    let r = rig_leased(db, RetryPolicy::default(), Duration::from_secs(3)).await;
    let id = submit(&r, "slow-1").await;
    r.remd.register.lock().unwrap().push_back(Ok(RegisterAck::Accepted));
    *r.remd.delay.lock().unwrap() = Duration::from_secs(4);
    let relay = Arc::clone(&r.relay);
    let step = tokio::spawn(async move { relay.step().await.unwrap() });
    let mut reaped = 0;
    while !step.is_finished() {
        tokio::time::sleep(Duration::from_millis(150)).await;
        reaped +=
            r.store.reap_leases(egisz_gateway::now(), &sweep(Sweep::LeaseExpired, egisz_gateway::now())).await.unwrap();
    }
    assert!(step.await.unwrap());
    assert_eq!(reaped, 0, "a live call's lease never ran out");
    assert_eq!(status(&r, id).await, Status::AwaitingResult);
}

/// A graceful stop while one call is on the wire and three claims wait for their slots (one
/// REMD call every 5 s): the three are given back at once, unsent and not counted, due now
/// for another instance; the call on the wire is let finish. With a grace shorter than the
/// call, the call is cut short and its submission goes to a look-up at once.
async fn a_stopping_relay_hands_back_what_it_has_not_sent(db: Db) {
    for (call, grace) in
        [(Duration::from_millis(800), Duration::from_secs(20)), (Duration::from_secs(30), Duration::ZERO)]
    {
        let r = rig_tuned(db, |s, quota| {
            s.concurrency = 4;
            quota.per_second = 0.2;
            // One token of the burst is held back: one call at once, the next 5 s later.
            quota.burst = 2;
            s.stop_grace = grace;
        })
        .await;
        let mut ids = Vec::new();
        for i in 0..4 {
            ids.push(submit(&r, &format!("stop-{i}")).await);
            r.remd.register.lock().unwrap().push_back(Ok(RegisterAck::Accepted));
        }
        *r.remd.delay.lock().unwrap() = call;
        let stop = tokio_util::sync::CancellationToken::new();
        let run = tokio::spawn(Arc::clone(&r.relay).run(stop.clone()));
        // Until all four are claimed and one is on the wire (its call begun), three waiting
        // for a slot.
        let started = tokio::time::Instant::now();
        loop {
            let counts = r.store.count_by_status().await.unwrap();
            let on_the_wire = r.remd.begun.load(std::sync::atomic::Ordering::SeqCst) == 1;
            if on_the_wire && counts.iter().any(|(s, n)| *s == Status::Sending && *n == 4) {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "claimed: {counts:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stop.cancel();
        run.await.unwrap();
        let mut handed_back = 0;
        for id in &ids {
            let rec = r.store.submission(*id).await.unwrap().unwrap();
            let events = r.store.events(*id).await.unwrap();
            assert!(rec.lease_owner.is_none(), "no lease left behind: {rec:?}");
            if events.iter().any(|e| e.detail == egisz_gateway::lifecycle::HANDED_BACK_DETAIL) {
                handed_back += 1;
                assert_eq!((rec.status, rec.attempts), (Status::Queued, 0), "as it was before the claim");
                assert!(rec.next_attempt_at.is_some_and(|t| t <= egisz_gateway::now()), "due now");
                assert_eq!(
                    events.iter().filter(|e| e.detail == egisz_gateway::lifecycle::HANDED_BACK_DETAIL).count(),
                    1
                );
            } else if grace > call {
                assert_eq!(rec.status, Status::AwaitingResult, "the call on the wire finished");
            } else {
                assert_eq!(rec.status, Status::Unknown, "the call cut short is looked up");
                assert!(rec.next_attempt_at.is_some_and(|t| t <= egisz_gateway::now()), "at once");
            }
        }
        assert_eq!(handed_back, 3, "every claim not sent was given back (call {call:?}, grace {grace:?})");
        let sent = r.remd.sent.lock().unwrap().len();
        assert_eq!(sent, usize::from(grace > call), "REMD saw only the call that was on the wire");
    }
}

/// The store applies the counts a transition names (what a hand-back restores) and keeps
/// the others.
async fn a_transition_sets_the_counts_it_names(db: Db) {
    let r = rig(db).await;
    let id = submit(&r, "counts-1").await;
    let t = egisz_gateway::submission::Transition {
        attempts: Some(3),
        checks: Some(5),
        registered_at_by_gateway: Some(false),
        next_attempt_at: Some(egisz_gateway::now()),
        ..egisz_gateway::submission::Transition::to(Status::Queued, "test", "counts")
    };
    assert!(r.store.transition(id, &[Status::Queued], None, &t, egisz_gateway::now()).await.unwrap());
    let rec = r.store.submission(id).await.unwrap().unwrap();
    assert_eq!((rec.attempts, rec.checks, rec.registered_at_by_gateway), (3, 5, false));
    let keep = egisz_gateway::submission::Transition {
        next_attempt_at: Some(egisz_gateway::now()),
        ..egisz_gateway::submission::Transition::to(Status::Queued, "test", "nothing named")
    };
    assert!(r.store.transition(id, &[Status::Queued], None, &keep, egisz_gateway::now()).await.unwrap());
    let rec = r.store.submission(id).await.unwrap().unwrap();
    assert_eq!((rec.attempts, rec.checks), (3, 5), "counts not named are kept");
}
