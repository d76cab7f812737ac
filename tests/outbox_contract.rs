//! The outbox contract, on SQLite and PostgreSQL: intake, idempotency, claims and leases,
//! transitions, REMD's calls, lists.

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use common::{Db, TestDb};
use egisz_contract::Oid;
use egisz_gateway::config::Config;
use egisz_gateway::lifecycle::{Sweep, sweep};
use egisz_gateway::store::{self, CallbackRecord, Store};
use egisz_gateway::submission::{Disposition, Intake, ListFilter, NewSubmission, Status, SubmissionError, Transition};
use uuid::Uuid;

on_both_backends!(
    intake_is_idempotent_and_conflicts_on_other_bytes,
    concurrent_intake_of_one_document_stores_it_once,
    claims_lease_and_never_hand_out_a_row_twice,
    transitions_respect_state_and_lease,
    expired_leases_and_silent_results_go_to_reconciliation,
    callbacks_are_recorded_once,
    lists_filter_and_paginate_newest_first,
    a_batch_commits_together_and_a_bad_document_fails_alone,
    a_batch_without_failures_sorts_new_existing_and_repeated_documents,
    commits_are_durable_on_every_connection,
    an_instance_takes_back_its_own_leases,
    two_running_instances_never_share_an_id,
    claims_take_turns_between_organisations,
    two_instances_sweep_each_lease_and_deadline_once,
);

const MO: &str = "1.2.643.5.1.13.13.12.2.42.2917";

async fn open(db: &TestDb) -> Arc<dyn Store> {
    let env = [("EGISZ__DATABASE__URL".to_owned(), db.url.clone())];
    store::connect(&Config::load(None, &env).unwrap().database).await.expect("store opens")
}

fn new_submission(local_uid: &str, content: &[u8], at: DateTime<Utc>) -> NewSubmission {
    NewSubmission {
        id: Uuid::now_v7(),
        organization: Oid::parse(MO).unwrap(),
        local_uid: local_uid.to_owned(),
        kind: 40,
        checksum: crc(content),
        content: content.to_vec(),
        request: common::register_request(local_uid),
        created_at: at,
        actor: "api:test".into(),
        warnings: Vec::new(),
        detail: egisz_gateway::lifecycle::INTAKE_DETAIL.to_owned(),
    }
}

fn crc(bytes: &[u8]) -> u32 {
    // A stand-in checksum is enough for the store: it stores what it is given.
    bytes.iter().fold(0u32, |a, b| a.wrapping_mul(31).wrapping_add(u32::from(*b)))
}

async fn created(s: &Arc<dyn Store>, local_uid: &str, at: DateTime<Utc>) -> Uuid {
    match s.intake(&new_submission(local_uid, local_uid.as_bytes(), at)).await.unwrap() {
        Intake::Created(r) => r.id,
        other => panic!("{other:?}"),
    }
}

async fn intake_is_idempotent_and_conflicts_on_other_bytes(db: Db) {
    let test_db = TestDb::new(db).await;
    let s = open(&test_db).await;
    let now = egisz_gateway::now();
    let first = new_submission("uid-1", b"<ClinicalDocument/>", now);
    let Intake::Created(rec) = s.intake(&first).await.unwrap() else { panic!("created") };
    assert_eq!(rec.status, Status::Queued);
    assert_eq!(rec.request, first.request, "the derived request is stored whole");
    assert_eq!(rec.byte_size, first.content.len() as u64);
    assert_eq!(rec.next_attempt_at, Some(now), "due at once");
    assert_eq!(s.document_content(rec.id).await.unwrap().as_deref(), Some(&b"<ClinicalDocument/>"[..]));

    let again = new_submission("uid-1", b"<ClinicalDocument/>", now + Duration::seconds(1));
    assert_eq!(s.intake(&again).await.unwrap(), Intake::Existing(rec.clone()));
    let other = new_submission("uid-1", b"<ClinicalDocument>changed</ClinicalDocument>", now);
    assert_eq!(s.intake(&other).await.unwrap(), Intake::Conflict(rec.clone()));
    assert_eq!(s.document_content(rec.id).await.unwrap().as_deref(), Some(&b"<ClinicalDocument/>"[..]), "unchanged");

    let events = s.events(rec.id).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].status, events[0].actor.as_str()), (Status::Queued, "api:test"));
    assert_eq!(s.count_by_status().await.unwrap(), vec![(Status::Queued, 1)]);
}

async fn concurrent_intake_of_one_document_stores_it_once(db: Db) {
    let test_db = TestDb::new(db).await;
    let s = open(&test_db).await;
    let now = egisz_gateway::now();
    let tasks = (0..16).map(|_| {
        let s = Arc::clone(&s);
        tokio::spawn(async move { s.intake(&new_submission("same", b"bytes", now)).await.unwrap() })
    });
    let results = futures::future::join_all(tasks).await;
    let created = results.iter().filter(|r| matches!(r.as_ref().unwrap(), Intake::Created(_))).count();
    let existing = results.iter().filter(|r| matches!(r.as_ref().unwrap(), Intake::Existing(_))).count();
    assert_eq!((created, existing), (1, 15));
}

async fn claims_lease_and_never_hand_out_a_row_twice(db: Db) {
    let test_db = TestDb::new(db).await;
    let s = open(&test_db).await;
    let t0 = egisz_gateway::now();
    for i in 0..60 {
        created(&s, &format!("doc-{i}"), t0 + Duration::milliseconds(i)).await;
    }
    let later = created(&s, "later", t0 + Duration::hours(1)).await;
    let now = t0 + Duration::seconds(1);
    let lease = now + Duration::seconds(30);
    let workers = (0..4).map(|w| {
        let s = Arc::clone(&s);
        tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let batch = s.claim_due(now, 7, &format!("worker-{w}"), lease).await.unwrap();
                if batch.is_empty() {
                    return mine;
                }
                mine.extend(batch);
            }
        })
    });
    let claimed: Vec<_> = futures::future::join_all(workers).await.into_iter().flat_map(|r| r.unwrap()).collect();
    let ids: HashSet<Uuid> = claimed.iter().map(|c| c.record.id).collect();
    assert_eq!(claimed.len(), 60, "every due row once");
    assert_eq!(ids.len(), 60, "no row twice");
    assert!(!ids.contains(&later), "not due yet");
    for c in &claimed {
        assert_eq!(c.claimed_from, Status::Queued);
        assert_eq!(c.record.status, Status::Sending);
        assert_eq!(c.record.attempts, 1);
        assert_eq!(c.record.lease_until, Some(lease));
        assert!(c.record.lease_owner.as_deref().unwrap().starts_with("worker-"));
        assert_eq!(c.record.next_attempt_at, None);
    }
    assert_eq!(s.next_due().await.unwrap(), Some(t0 + Duration::hours(1)));
}

async fn transitions_respect_state_and_lease(db: Db) {
    let test_db = TestDb::new(db).await;
    let s = open(&test_db).await;
    let now = egisz_gateway::now();
    let id = created(&s, "t-1", now).await;
    let claimed = s.claim_due(now, 10, "w1", now + Duration::seconds(30)).await.unwrap();
    assert_eq!(claimed.len(), 1);
    s.note_message(id, "msg-1", now).await.unwrap();
    assert_eq!(s.submission_by_message("msg-1").await.unwrap().unwrap().id, id);
    assert!(s.submission_by_message("msg-unknown").await.unwrap().is_none());

    let accepted =
        Transition { awaiting_since: Some(now), ..Transition::to(Status::AwaitingResult, "relay", "принят") };
    assert!(!s.transition(id, &[Status::Sending], Some("w2"), &accepted, now).await.unwrap(), "another worker's lease");
    assert!(!s.transition(id, &[Status::Queued], Some("w1"), &accepted, now).await.unwrap(), "wrong state");
    assert!(s.transition(id, &[Status::Sending], Some("w1"), &accepted, now).await.unwrap());
    let rec = s.submission(id).await.unwrap().unwrap();
    assert_eq!((rec.status, rec.lease_owner.as_deref(), rec.awaiting_since), (Status::AwaitingResult, None, Some(now)));

    let registered = Transition {
        emdr_id: Some("16.62.23.09.000014523".into()),
        registered_at: Some(now),
        errors: Some(vec![]),
        ..Transition::to(Status::Registered, "remd", "зарегистрирован")
    };
    assert!(s.transition(id, &[Status::AwaitingResult], None, &registered, now).await.unwrap());
    assert!(!s.transition(id, &[Status::AwaitingResult], None, &registered, now).await.unwrap(), "only once");
    let rec = s.submission(id).await.unwrap().unwrap();
    assert_eq!(rec.emdr_id.as_deref(), Some("16.62.23.09.000014523"));
    assert_eq!(s.submission_by_emdr_id("16.62.23.09.000014523").await.unwrap().unwrap().id, id);
    assert!(s.submission_by_emdr_id("16.62.23.09.000000000").await.unwrap().is_none());
    let statuses: Vec<Status> = s.events(id).await.unwrap().iter().map(|e| e.status).collect();
    assert_eq!(statuses, [Status::Queued, Status::Sending, Status::AwaitingResult, Status::Registered]);

    let other = created(&s, "t-2", now).await;
    let error = SubmissionError {
        code: "PERSON_POST_IN_FRMR_MISMATCH".into(),
        message: "должность не совпадает".into(),
        disposition: Disposition::NeedsDataFix,
        hint_ru: "Проверьте должность".into(),
    };
    let failed =
        Transition { errors: Some(vec![error.clone()]), ..Transition::to(Status::Failed, "remd", "отклонён") };
    assert!(s.transition(other, &[Status::Queued], None, &failed, now).await.unwrap());
    assert_eq!(s.submission(other).await.unwrap().unwrap().errors, vec![error]);
}

async fn expired_leases_and_silent_results_go_to_reconciliation(db: Db) {
    let test_db = TestDb::new(db).await;
    let s = open(&test_db).await;
    let t0 = egisz_gateway::now();
    let crashed = created(&s, "crashed", t0).await;
    s.claim_due(t0, 10, "dead-worker", t0 + Duration::seconds(30)).await.unwrap();
    assert_eq!(
        s.reap_leases(t0 + Duration::seconds(10), &sweep(Sweep::LeaseExpired, t0 + Duration::seconds(10)))
            .await
            .unwrap(),
        0,
        "lease still valid"
    );
    assert_eq!(
        s.reap_leases(t0 + Duration::seconds(31), &sweep(Sweep::LeaseExpired, t0 + Duration::seconds(31)))
            .await
            .unwrap(),
        1
    );
    let rec = s.submission(crashed).await.unwrap().unwrap();
    assert_eq!(rec.status, Status::Unknown, "the call may have reached REMD");
    assert_eq!(rec.next_attempt_at, Some(t0 + Duration::seconds(31)));
    let again = s.claim_due(t0 + Duration::seconds(32), 10, "w", t0 + Duration::seconds(60)).await.unwrap();
    assert_eq!(again[0].claimed_from, Status::Unknown);
    assert_eq!(again[0].record.status, Status::Unknown, "reconciled, not re-sent");
    assert_eq!(again[0].record.attempts, 1, "a reconciliation is not a send");

    let silent = created(&s, "silent", t0).await;
    s.claim_due(t0, 10, "w", t0 + Duration::seconds(30)).await.unwrap();
    let awaiting =
        Transition { awaiting_since: Some(t0), ..Transition::to(Status::AwaitingResult, "relay", "принят") };
    assert!(s.transition(silent, &[Status::Sending], Some("w"), &awaiting, t0).await.unwrap());
    assert_eq!(s.expire_awaiting(t0 - Duration::seconds(1), t0, &sweep(Sweep::ResultOverdue, t0)).await.unwrap(), 0);
    assert_eq!(
        s.expire_awaiting(
            t0 + Duration::hours(1),
            t0 + Duration::hours(2),
            &sweep(Sweep::ResultOverdue, t0 + Duration::hours(2))
        )
        .await
        .unwrap(),
        1
    );
    assert_eq!(s.submission(silent).await.unwrap().unwrap().status, Status::Unknown);
}

async fn callbacks_are_recorded_once(db: Db) {
    let test_db = TestDb::new(db).await;
    let s = open(&test_db).await;
    let cb = CallbackRecord {
        received_at: egisz_gateway::now(),
        operation: "sendRegisterDocumentResult".into(),
        message_id: "remd-msg-1".into(),
        relates_to: Some("never-sent".into()),
        submission_id: None,
        outcome: "unknown_message".into(),
        payload: serde_json::json!({"status": "success"}),
    };
    assert!(s.record_callback(&cb).await.unwrap());
    assert!(!s.record_callback(&cb).await.unwrap(), "a duplicate is recognised");
    let other_op = CallbackRecord { operation: "getDocumentFile".into(), ..cb.clone() };
    assert!(s.record_callback(&other_op).await.unwrap());
    assert_eq!(s.purge_callbacks(cb.received_at - Duration::seconds(1)).await.unwrap(), 0);
    assert_eq!(s.purge_callbacks(cb.received_at + Duration::seconds(1)).await.unwrap(), 2);
    assert!(s.record_callback(&cb).await.unwrap(), "after the purge it is new again");
}

async fn lists_filter_and_paginate_newest_first(db: Db) {
    let test_db = TestDb::new(db).await;
    let s = open(&test_db).await;
    let t0 = egisz_gateway::now();
    let mut ids = Vec::new();
    for i in 0..25 {
        ids.push(created(&s, &format!("l-{i:02}"), t0 + Duration::milliseconds(i * 10)).await);
    }
    let failed = Transition {
        errors: Some(vec![SubmissionError {
            code: "RATE_LIMIT".into(),
            message: String::new(),
            disposition: Disposition::Retry,
            hint_ru: String::new(),
        }]),
        ..Transition::to(Status::Failed, "relay", "x")
    };
    s.transition(ids[3], &[Status::Queued], None, &failed, t0).await.unwrap();

    let mut seen = Vec::new();
    let mut filter =
        ListFilter { organizations: Some(vec![Oid::parse(MO).unwrap()]), limit: 10, ..ListFilter::default() };
    loop {
        let page = s.list_submissions(&filter).await.unwrap();
        if page.is_empty() {
            break;
        }
        let last = page.last().unwrap();
        filter.before = Some((last.created_at, last.id));
        seen.extend(page.iter().map(|r| r.id));
    }
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first, "every submission once, newest first");

    let only = |f: ListFilter| {
        let s = Arc::clone(&s);
        async move { s.list_submissions(&ListFilter { limit: 100, ..f }).await.unwrap() }
    };
    assert_eq!(only(ListFilter { statuses: vec![Status::Failed], ..ListFilter::default() }).await.len(), 1);
    assert_eq!(only(ListFilter { error_code: Some("RATE_LIMIT".into()), ..ListFilter::default() }).await[0].id, ids[3]);
    assert_eq!(only(ListFilter { kind: Some(41), ..ListFilter::default() }).await.len(), 0);
    assert_eq!(
        only(ListFilter { from: Some(t0 + Duration::milliseconds(200)), ..ListFilter::default() }).await.len(),
        5
    );
    let other_org = Oid::parse("1.2.643.5.1.13.13.12.2.42.3011").unwrap();
    assert!(only(ListFilter { organizations: Some(vec![other_org]), ..ListFilter::default() }).await.is_empty());
    assert!(only(ListFilter { organizations: Some(vec![]), ..ListFilter::default() }).await.is_empty());
}

async fn a_batch_commits_together_and_a_bad_document_fails_alone(db: Db) {
    let db = TestDb::new(db).await;
    let s = open(&db).await;
    let now = egisz_gateway::now();
    let existing = created(&s, "batch-0", now).await;
    let mut clash = new_submission("batch-clash", b"x", now);
    // Its id is taken: the insert fails inside the batch, under its own savepoint.
    clash.id = existing;
    let batch = vec![
        new_submission("batch-1", b"one", now),
        new_submission("batch-0", b"other bytes", now),
        clash,
        new_submission("batch-0", b"batch-0", now),
        new_submission("batch-2", b"two", now),
        // The same document twice in one batch: the second finds the first.
        new_submission("batch-2", b"two", now),
    ];
    let results = s.intake_batch(&batch).await.unwrap();
    assert_eq!(results.len(), 6);
    assert!(matches!(&results[0], Ok(Intake::Created(r)) if r.local_uid == "batch-1"));
    assert!(matches!(&results[1], Ok(Intake::Conflict(r)) if r.id == existing));
    assert!(results[2].is_err(), "{:?}", results[2]);
    assert!(matches!(&results[3], Ok(Intake::Existing(r)) if r.id == existing));
    let Ok(Intake::Created(two)) = &results[4] else { panic!("{:?}", results[4]) };
    assert!(matches!(&results[5], Ok(Intake::Existing(r)) if r.id == two.id));
    // Everything the batch created is stored, with its event; the failed one left nothing.
    for uid in ["batch-1", "batch-2"] {
        let found = s.list_submissions(&ListFilter { limit: 50, ..ListFilter::default() }).await.unwrap();
        let rec = found.iter().find(|r| r.local_uid == uid).unwrap_or_else(|| panic!("{uid} stored"));
        assert_eq!(s.events(rec.id).await.unwrap().len(), 1);
        assert!(s.document_content(rec.id).await.unwrap().is_some());
    }
    let all = s.list_submissions(&ListFilter { limit: 50, ..ListFilter::default() }).await.unwrap();
    assert_eq!(all.len(), 3, "batch-0, batch-1, batch-2 and nothing of the clash");
}

async fn commits_are_durable_on_every_connection(db: Db) {
    let kind = db;
    let db = TestDb::new(db).await;
    let s = open(&db).await;
    let d = s.durability().await.unwrap();
    assert!(d.durable, "{d:?}");
    match kind {
        Db::Sqlite => {
            let pool_size = Config::load(None, &[]).unwrap().database.max_connections as usize;
            assert_eq!(d.settings, vec!["FULL".to_owned(); pool_size], "every pooled connection");
        }
        Db::Postgres => assert!(d.settings.iter().any(|s| s == "fsync=on"), "{d:?}"),
    }
}

async fn an_instance_takes_back_its_own_leases(db: Db) {
    let db = TestDb::new(db).await;
    let s = open(&db).await;
    let now = egisz_gateway::now();
    let ours = created(&s, "lease-a", now).await;
    let theirs = created(&s, "lease-b", now).await;
    let later = now + Duration::minutes(10);
    let a = s.claim_due(now, 1, "gw-a:0001", later).await.unwrap();
    let b = s.claim_due(now, 1, "gw-a2:0002", later).await.unwrap();
    assert_eq!((a[0].record.id, b[0].record.id), (ours, theirs));
    // "gw-a" restarted: its lease (not yet expired) comes back at once; "gw-a2"'s does not.
    assert_eq!(s.release_leases_of("gw-a:", now, &sweep(Sweep::Restarted, now)).await.unwrap(), 1);
    let rec = s.submission(ours).await.unwrap().unwrap();
    assert_eq!((rec.status, rec.lease_owner, rec.next_attempt_at), (Status::Unknown, None, Some(now)));
    assert_eq!(s.submission(theirs).await.unwrap().unwrap().status, Status::Sending);
    assert!(s.renew_lease(theirs, "gw-a2:0002", later).await.unwrap());
    assert!(!s.renew_lease(ours, "gw-a:0001", later).await.unwrap(), "a released lease is not renewed");
}

/// Two instances (two pools on one database) reap the same expired leases and watch the
/// same overdue results at the same moment, each with several tasks: every submission
/// moves to `unknown` once — one event each, and the counts the sweeps report add up.
async fn two_instances_sweep_each_lease_and_deadline_once(db: Db) {
    let db = TestDb::new(db).await;
    let (a, b) = (open(&db).await, open(&db).await);
    let t0 = egisz_gateway::now();
    const EACH: usize = 150;
    let mut leased = Vec::new();
    for i in 0..EACH {
        leased.push(created(&a, &format!("leased-{i}"), t0).await);
    }
    assert_eq!(a.claim_due(t0, EACH as u32, "lost-node:1", t0 + Duration::seconds(30)).await.unwrap().len(), EACH);
    let mut awaiting = Vec::new();
    for i in 0..EACH {
        let id = created(&a, &format!("awaiting-{i}"), t0).await;
        a.claim_due(t0, 1, "node-c:2", t0 + Duration::seconds(30)).await.unwrap();
        let t =
            Transition { awaiting_since: Some(t0), ..Transition::to(Status::AwaitingResult, "relay", "принят") };
        assert!(a.transition(id, &[Status::Sending], Some("node-c:2"), &t, t0).await.unwrap());
        awaiting.push(id);
    }
    // A minute on: every lease has run out and every result is overdue.
    let now = t0 + Duration::seconds(60);
    let start = Arc::new(tokio::sync::Barrier::new(8));
    let tasks: Vec<_> = (0..8)
        .map(|k| {
            let s = Arc::clone(if k % 2 == 0 { &a } else { &b });
            let start = Arc::clone(&start);
            tokio::spawn(async move {
                start.wait().await;
                let mut moved = 0;
                for _ in 0..5 {
                    moved += s.reap_leases(now, &sweep(Sweep::LeaseExpired, now)).await.unwrap();
                    moved += s
                        .expire_awaiting(t0 + Duration::seconds(1), now, &sweep(Sweep::ResultOverdue, now))
                        .await
                        .unwrap();
                }
                moved
            })
        })
        .collect();
    let mut moved = 0;
    for t in tasks {
        moved += t.await.unwrap();
    }
    assert_eq!(moved, 2 * EACH as u64, "the sweeps report each submission once");
    for id in leased.iter().chain(&awaiting) {
        let rec = a.submission(*id).await.unwrap().unwrap();
        assert_eq!((rec.status, rec.lease_owner), (Status::Unknown, None));
        let events = b.events(*id).await.unwrap();
        assert_eq!(events.iter().filter(|e| e.status == Status::Unknown).count(), 1, "{id}: {events:?}");
    }
}

async fn two_running_instances_never_share_an_id(db: Db) {
    let kind = db;
    let db = TestDb::new(db).await;
    let s = open(&db).await;
    let wait = std::time::Duration::from_millis(300);
    let first = s.hold_instance("gw-1", wait).await.unwrap();
    let other = s.hold_instance("gw-2", wait).await;
    assert!(other.is_ok(), "another id is free");
    let same = s.hold_instance("gw-1", wait).await;
    match kind {
        Db::Postgres => {
            let e = same.err().expect("the same id is refused while the first instance runs");
            assert!(e.to_string().contains("relay.instance_id"), "{e}");
        }
        // SQLite serves one process: nothing to share with.
        Db::Sqlite => assert!(same.is_ok()),
    }
    drop(first);
    assert!(s.hold_instance("gw-1", std::time::Duration::from_secs(5)).await.is_ok(), "free again once released");
}

/// The same mix as above without a failing document (on PostgreSQL: the batch's fast path).
async fn a_batch_without_failures_sorts_new_existing_and_repeated_documents(db: Db) {
    let db = TestDb::new(db).await;
    let s = open(&db).await;
    let now = egisz_gateway::now();
    let existing = created(&s, "fast-0", now).await;
    let batch = vec![
        new_submission("fast-1", b"one", now),
        new_submission("fast-0", b"other bytes", now),
        new_submission("fast-0", b"fast-0", now),
        new_submission("fast-2", b"two", now),
        new_submission("fast-2", b"two", now),
        new_submission("fast-2", b"two, changed", now),
    ];
    let results = s.intake_batch(&batch).await.unwrap();
    assert!(matches!(&results[0], Ok(Intake::Created(r)) if r.local_uid == "fast-1" && r.id == batch[0].id));
    assert!(matches!(&results[1], Ok(Intake::Conflict(r)) if r.id == existing));
    assert!(matches!(&results[2], Ok(Intake::Existing(r)) if r.id == existing));
    let Ok(Intake::Created(two)) = &results[3] else { panic!("{:?}", results[3]) };
    assert!(matches!(&results[4], Ok(Intake::Existing(r)) if r.id == two.id));
    assert!(matches!(&results[5], Ok(Intake::Conflict(r)) if r.id == two.id));
    let all = s.list_submissions(&ListFilter { limit: 50, ..ListFilter::default() }).await.unwrap();
    assert_eq!(all.len(), 3);
    for rec in &all {
        assert_eq!(s.events(rec.id).await.unwrap().len(), 1, "one first event each");
    }
    assert_eq!(s.document_content(two.id).await.unwrap().as_deref(), Some(&b"two"[..]));
}

/// One organisation's backlog does not hold another's new document back: claims go to the
/// organisation served longest ago, and then round the organisations with due work.
async fn claims_take_turns_between_organisations(db: Db) {
    let test_db = TestDb::new(db).await;
    let s = open(&test_db).await;
    let t0 = Utc::now() - Duration::hours(1);
    let org = |n: u32| format!("1.2.643.5.1.13.13.12.2.42.{n}");
    let of = |uid: &str, mo: &str, at: DateTime<Utc>| {
        let mut n = new_submission(uid, uid.as_bytes(), at);
        n.organization = Oid::parse(mo).unwrap();
        n.request.organization = n.organization.clone();
        n
    };
    // The large MO's backlog, all older than anything else.
    for i in 0..60 {
        s.intake(&of(&format!("big-{i}"), &org(1000), t0 + Duration::milliseconds(i))).await.unwrap();
    }
    let now = Utc::now();
    let lease = now + Duration::seconds(60);
    // Two claims of the large MO's; then a small MO's new document arrives.
    for _ in 0..2 {
        let c = s.claim_due(now, 1, "w", lease).await.unwrap();
        assert_eq!(c[0].record.organization.as_str(), org(1000));
    }
    s.intake(&of("small-new", &org(2000), now - Duration::seconds(1))).await.unwrap();
    let c = s.claim_due(now + Duration::milliseconds(1), 1, "w", lease).await.unwrap();
    assert_eq!(c[0].record.local_uid, "small-new", "the small MO is served next, not after 58 older documents");
    // Three MOs with due work: they take turns.
    for i in 0..3 {
        s.intake(&of(&format!("c-{i}"), &org(3000), now - Duration::seconds(2))).await.unwrap();
        s.intake(&of(&format!("b-{i}"), &org(2000), now - Duration::seconds(2))).await.unwrap();
    }
    let mut served = Vec::new();
    for k in 0..9 {
        let c = s.claim_due(now + Duration::milliseconds(2 + k), 1, "w", lease).await.unwrap();
        served.push(c[0].record.organization.to_string());
    }
    for window in served.windows(3) {
        let distinct: HashSet<&String> = window.iter().collect();
        assert_eq!(distinct.len(), 3, "every three claims serve all three MOs: {served:?}");
    }
    // A claim for more takes one of each, then the earliest of any.
    let many = s.claim_due(now + Duration::milliseconds(20), 5, "w", lease).await.unwrap();
    assert_eq!(many.len(), 5);
}
