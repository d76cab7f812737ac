//! The operations API on SQLite and PostgreSQL, against the real gateway and the REMD
//! emulator: retry and cancel through the lifecycle, scope and roles, the audit log, bulk
//! re-runs (each re-queued once, never faster than the REMD rate), the summary, and the
//! report against a direct count over the database.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use common::{AUTHOR_SNILS, DISMISSED_SNILS, Db, MO_2917, TestDb, TestEnv, sample_as, submission_body};
use egisz_contract::Oid;
use egisz_gateway::auth::Role;
use egisz_gateway::store::{self, Store};
use egisz_gateway::submission::{Disposition, Intake, NewSubmission, Status, SubmissionError, Transition};
use serde_json::{Value, json};
use uuid::Uuid;

on_both_backends!(
    retry_and_cancel_go_through_the_lifecycle_and_the_audit_log,
    only_an_ops_key_acts_and_only_on_its_organisations,
    bulk_retry_requeues_each_once_within_the_remd_rate,
    the_report_equals_a_direct_count,
    the_summary_and_the_gauges_show_what_is_stuck,
    a_bulk_rerun_over_several_organisations_is_audited_for_each,
);

const OTHER_MO: &str = "1.2.643.5.1.13.13.12.2.42.3011";

async fn post(env: &TestEnv, key: &str, path: &str, body: Value) -> (u16, Value) {
    let res = env.http.post(env.url(path)).bearer_auth(key).json(&body).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn json_of(env: &TestEnv, key: &str, path: &str) -> Value {
    let res = env.get(key, path).await;
    assert_eq!(res.status(), 200, "{path}");
    res.json().await.unwrap()
}

/// A document whose author REMD does not find employed on its date: it ends `failed`.
async fn failed_document(env: &TestEnv, submitter: &str, uid: &str) -> String {
    let document = sample_as(uid).replace(AUTHOR_SNILS, DISMISSED_SNILS);
    let signer = common::signer_for(DISMISSED_SNILS);
    let (status, accepted) =
        post(env, submitter, "/api/v1/documents", submission_body(document.as_bytes(), &signer)).await;
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["id"].as_str().unwrap().to_owned();
    env.wait_status(submitter, &id, "failed").await;
    id
}

async fn retry_and_cancel_go_through_the_lifecycle_and_the_audit_log(db: Db) {
    let env = TestEnv::start_warning(db).await;
    let submitter = env.key(&[Role::Submitter, Role::Reader], &[MO_2917]).await;
    let ops = env.key(&[Role::Ops], &[MO_2917]).await;
    let id = failed_document(&env, &submitter, "ops-retry-1").await;

    let (status, doc) =
        post(&env, &ops, &format!("/api/v1/documents/{id}/retry"), json!({"comment": "роль уточнена"})).await;
    assert_eq!(status, 200, "{doc}");
    let retried = doc["events"].as_array().unwrap().iter().find(|e| e["actor"] == "ops:test client").cloned();
    let retried = retried.unwrap_or_else(|| panic!("the timeline shows the operator: {doc}"));
    assert_eq!(retried["status"], "queued");
    assert!(retried["detail"].as_str().unwrap().contains("«роль уточнена»"), "{retried}");
    // The relay sends it again; REMD refuses it again (nothing changed in FRMR).
    let again = env.wait_status(&submitter, &id, "failed").await;
    assert_eq!(again["attempts"], 1, "the schedule restarted: one send since the retry");

    let (status, doc) = post(&env, &ops, &format!("/api/v1/documents/{id}/cancel"), json!({})).await;
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["status"], "cancelled");
    let (status, problem) = post(&env, &ops, &format!("/api/v1/documents/{id}/retry"), json!({})).await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["code"], "action_not_allowed");
    assert!(problem["detail"].as_str().unwrap().contains("отменён"), "{problem}");
    // An empty body is a comment-less action; a malformed one a 422, changing nothing.
    let res = env.http.post(env.url(&format!("/api/v1/documents/{id}/cancel"))).bearer_auth(&ops).send().await.unwrap();
    assert_eq!(res.status(), 409, "already cancelled");
    let res = env
        .http
        .post(env.url(&format!("/api/v1/documents/{id}/retry")))
        .bearer_auth(&ops)
        .body("{\"comment\": 5}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);

    let audit = json_of(&env, &ops, "/api/v1/ops/audit").await;
    let items = audit["items"].as_array().unwrap();
    let actions: Vec<_> = items.iter().map(|e| (e["action"].as_str().unwrap(), e["count"].as_u64().unwrap())).collect();
    // Newest first; refused actions changed nothing and are not in the log.
    assert_eq!(actions, [("cancel", 1), ("retry", 1)], "{audit}");
    assert_eq!(items[1]["comment"], "роль уточнена");
    assert_eq!(items[1]["submission_id"], id);
    assert_eq!(items[1]["actor_name"], "test client");
    assert_eq!(items[1]["organization"], MO_2917);
    assert_eq!(items[1]["organization_name"], "ГАУЗ «Кемеровская клиническая районная больница»", "FRMO's name");
    env.shutdown().await;
}

async fn only_an_ops_key_acts_and_only_on_its_organisations(db: Db) {
    let env = TestEnv::start_warning(db).await;
    let submitter = env.key(&[Role::Submitter, Role::Reader], &[MO_2917]).await;
    let id = failed_document(&env, &submitter, "ops-scope-1").await;
    let reader = env.key(&[Role::Reader], &[MO_2917]).await;
    let foreign_ops = env.key(&[Role::Ops], &[OTHER_MO]).await;
    for (key, path, want) in [
        (&submitter, format!("/api/v1/documents/{id}/retry"), 403),
        (&reader, format!("/api/v1/documents/{id}/cancel"), 403),
        (&foreign_ops, format!("/api/v1/documents/{id}/retry"), 404),
        (&foreign_ops, format!("/api/v1/documents/{id}/cancel"), 404),
        (&reader, "/api/v1/ops/retry".to_owned(), 403),
    ] {
        let (status, problem) = post(&env, key, &path, json!({})).await;
        assert_eq!(status, want, "{path}: {problem}");
        assert!(
            problem["detail"].as_str().is_some_and(|d| d.chars().any(|c| ('а'..='я').contains(&c))),
            "Russian detail: {problem}"
        );
    }
    let (status, _) = post(&env, &foreign_ops, "/api/v1/ops/retry", json!({"organization": MO_2917})).await;
    assert_eq!(status, 403, "an organisation outside the key");
    let (status, outcome) = post(&env, &foreign_ops, "/api/v1/ops/retry", json!({"dry_run": true})).await;
    assert_eq!((status, outcome["matched"].as_u64()), (200, Some(0)), "the foreign key sees none of MO 2917's");
    let (status, problem) = post(&env, &foreign_ops, "/api/v1/ops/retry", json!({"organisation": MO_2917})).await;
    assert_eq!(status, 422, "a misspelt filter is refused, not ignored: {problem}");
    let no_key = env.http.post(env.url(&format!("/api/v1/documents/{id}/retry"))).send().await.unwrap();
    assert_eq!(no_key.status(), 401);
    assert_eq!(env.get(&reader, "/api/v1/ops/audit").await.status(), 403);
    // The audit log: a key limited to some organisations sees theirs and its own entries.
    let own_ops = env.key(&[Role::Ops], &[MO_2917]).await;
    let (status, _) = post(&env, &own_ops, "/api/v1/ops/retry", json!({"dry_run": true})).await;
    assert_eq!(status, 200);
    let theirs = json_of(&env, &foreign_ops, "/api/v1/ops/audit").await;
    let theirs = theirs["items"].as_array().unwrap();
    assert_eq!(theirs.len(), 1, "only the foreign key's own dry run: {theirs:?}");
    assert_eq!(theirs[0]["organization"], OTHER_MO);
    let mine = json_of(&env, &own_ops, "/api/v1/ops/audit").await;
    let mine = mine["items"].as_array().unwrap();
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(mine[0]["organization"], MO_2917);
    // Hostile bodies get a clear 4xx, never a 5xx, and change nothing.
    let ops = env.key(&[Role::Ops], &[MO_2917]).await;
    let long = "я".repeat(1001);
    for (path, body) in [
        (format!("/api/v1/documents/{id}/retry"), json!({"comment": long}).to_string()),
        (format!("/api/v1/documents/{id}/retry"), json!({"comment": "a\u{0007}b"}).to_string()),
        (format!("/api/v1/documents/{id}/retry"), json!({"comment": "\u{1b}[31mкрасный"}).to_string()),
        (format!("/api/v1/documents/{id}/retry"), json!({"comment": "a\u{0}b"}).to_string()),
        (format!("/api/v1/documents/{id}/retry"), json!({"comment": "оплачено \u{202e}00.001"}).to_string()),
        (format!("/api/v1/documents/{id}/retry"), json!({"comment": "x\u{2066}y"}).to_string()),
        ("/api/v1/ops/retry".to_owned(), json!({"comment": "\u{202e}x"}).to_string()),
        (format!("/api/v1/documents/{id}/cancel"), "{\"comment\": [1, 2]}".to_owned()),
        (format!("/api/v1/documents/{id}/cancel"), "\u{0}\u{1}garbage".to_owned()),
        ("/api/v1/ops/retry".to_owned(), "[]".to_owned()),
        ("/api/v1/ops/retry".to_owned(), json!({"kind": "сорок"}).to_string()),
        ("/api/v1/ops/retry".to_owned(), json!({"status": "registered"}).to_string()),
        ("/api/v1/ops/retry".to_owned(), json!({"from": "+262142-12-31"}).to_string()),
        ("/api/v1/ops/retry".to_owned(), json!({"comment": long}).to_string()),
    ] {
        let res = env.http.post(env.url(&path)).bearer_auth(&ops).body(body.clone()).send().await.unwrap();
        let status = res.status().as_u16();
        assert!((400..500).contains(&status), "{path} {body:.60}: {status}");
        assert_ne!(status, 404, "{path}");
    }
    // Nothing of that changed the document.
    let doc = json_of(&env, &submitter, &format!("/api/v1/documents/{id}")).await;
    assert_eq!(doc["status"], "failed");
    env.shutdown().await;
}

fn new_submission(uid: &str, org: &str, kind: u32, at: chrono::DateTime<Utc>) -> NewSubmission {
    let content = sample_as(uid).into_bytes();
    let checksum = egisz_remd::checksum(&content);
    let mut request = common::register_request(uid);
    request.organization = Oid::parse(org).unwrap();
    request.kind = kind;
    request.checksum = checksum;
    NewSubmission {
        id: Uuid::now_v7(),
        organization: Oid::parse(org).unwrap(),
        local_uid: uid.to_owned(),
        kind,
        checksum,
        content,
        request,
        created_at: at,
        actor: "api:seed".into(),
        warnings: Vec::new(),
        detail: egisz_gateway::lifecycle::INTAKE_DETAIL.to_owned(),
    }
}

fn error(code: &str) -> SubmissionError {
    SubmissionError {
        code: code.into(),
        message: "—".into(),
        disposition: Disposition::NeedsDataFix,
        hint_ru: "подсказка".into(),
    }
}

/// Stores `n` submissions through the store and moves each to `status` (with `code` as its
/// error when given). Returns their ids.
async fn seed(
    store: &dyn Store,
    prefix: &str,
    n: usize,
    (org, kind): (&str, u32),
    at: chrono::DateTime<Utc>,
    status: Status,
    code: Option<&str>,
) -> Vec<Uuid> {
    let mut ids = Vec::new();
    for chunk in (0..n).collect::<Vec<_>>().chunks(200) {
        let batch: Vec<_> = chunk.iter().map(|i| new_submission(&format!("{prefix}-{i}"), org, kind, at)).collect();
        for r in store.intake_batch(&batch).await.unwrap() {
            let Ok(Intake::Created(rec)) = r else { panic!("{r:?}") };
            ids.push(rec.id);
        }
    }
    if status != Status::Queued {
        let t = Transition { errors: code.map(|c| vec![error(c)]), ..Transition::to(status, "seed", "seeded") };
        for id in &ids {
            assert!(store.transition(*id, &[Status::Queued], None, &t, at).await.unwrap());
        }
    }
    ids
}

async fn bulk_retry_requeues_each_once_within_the_remd_rate(db: Db) {
    const RATE: f64 = 100.0;
    const BURST: u32 = 5;
    let db = TestDb::new(db).await;
    let at = egisz_gateway::now() - chrono::Duration::hours(1);
    let failed = {
        let config =
            egisz_gateway::config::Config::load(None, &[("EGISZ__DATABASE__URL".into(), db.url.clone())]).unwrap();
        let store = store::connect(&config.database).await.unwrap();
        let failed = seed(&*store, "bulk", 1000, (MO_2917, 40), at, Status::Failed, Some("PERSON_NOT_FOUND")).await;
        seed(&*store, "other-mo", 20, (OTHER_MO, 40), at, Status::Failed, Some("PERSON_NOT_FOUND")).await;
        seed(&*store, "done", 10, (MO_2917, 40), at, Status::Registered, None).await;
        failed
    };
    let env = TestEnv::start_on(db, |c, _| {
        c.ops.bulk_retry_max = 400;
        c.remd.quota.per_second = RATE;
        c.remd.quota.burst = BURST;
        c.relay.concurrency = 8;
    })
    .await;
    let ops = env.key(&[Role::Ops], &[MO_2917]).await;
    let filter = json!({"status": "failed", "error_code": "PERSON_NOT_FOUND", "comment": "ФРМР исправлен"});

    let mut dry = filter.clone();
    dry["dry_run"] = json!(true);
    let (status, outcome) = post(&env, &ops, "/api/v1/ops/retry", dry).await;
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(outcome, json!({"matched": 1000, "requeued": 0, "capped": true}), "the other MO's are not matched");
    let mut requeued = 0;
    let mut calls = 0;
    loop {
        let (status, outcome) = post(&env, &ops, "/api/v1/ops/retry", filter.clone()).await;
        assert_eq!(status, 200, "{outcome}");
        calls += 1;
        requeued += outcome["requeued"].as_u64().unwrap();
        if outcome["requeued"] == 0 {
            break;
        }
        assert!(outcome["requeued"].as_u64().unwrap() <= 400, "the cap holds: {outcome}");
        assert!(calls < 10, "bulk re-runs end");
    }
    assert_eq!(requeued, 1000, "every matched submission re-queued");

    // Each one was re-queued exactly once, and sent once.
    let store = env.store();
    for id in failed.iter().step_by(97) {
        let events = store.events(*id).await.unwrap();
        let retries = events.iter().filter(|e| e.actor.starts_with("ops:")).count();
        assert_eq!(retries, 1, "{events:?}");
    }
    let sandbox = env.gw.remd_sandbox().expect("the sandbox REMD");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while sandbox.register_call_times().len() < 1000 {
        assert!(tokio::time::Instant::now() < deadline, "sent: {}", sandbox.register_call_times().len());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut times = sandbox.register_call_times();
    assert_eq!(times.len(), 1000, "each re-queued submission is sent once");
    times.sort();
    // In no one-second window does REMD see more than the rate and the burst.
    let most = times
        .iter()
        .enumerate()
        .map(|(i, t)| times[i..].iter().take_while(|u| **u < *t + Duration::from_secs(1)).count())
        .max()
        .unwrap();
    assert!(most as f64 <= RATE + f64::from(BURST + common::ARRIVAL_JITTER), "{most} calls in one second");
    let audit = json_of(&env, &ops, "/api/v1/ops/audit?limit=20").await;
    let bulk: u64 = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "bulk_retry")
        .map(|e| e["count"].as_u64().unwrap())
        .sum();
    assert_eq!(bulk, 1000, "the audit log counts what was re-queued");
    assert_counts_match(&*store).await;
    let dry_entry = audit["items"].as_array().unwrap().iter().find(|e| e["action"] == "bulk_retry_dry_run").unwrap();
    assert_eq!(
        (dry_entry["count"].as_u64(), dry_entry["filter"]["error_code"].as_str()),
        (Some(1000), Some("PERSON_NOT_FOUND"))
    );
    env.shutdown().await;
}

async fn the_report_equals_a_direct_count(db: Db) {
    let kind = db;
    let db = TestDb::new(kind).await;
    // The week of 2026-11-16 (Monday) in the region's time.
    let monday: chrono::DateTime<Utc> = "2026-11-15T17:00:00Z".parse().unwrap();
    let url = db.url.clone();
    {
        let config =
            egisz_gateway::config::Config::load(None, &[("EGISZ__DATABASE__URL".into(), url.clone())]).unwrap();
        let store = store::connect(&config.database).await.unwrap();
        let s = &*store;
        let h = |n| monday + chrono::Duration::hours(n);
        seed(s, "a-reg", 30, (MO_2917, 40), h(1), Status::Registered, None).await;
        seed(s, "a-fail1", 4, (MO_2917, 40), h(30), Status::Failed, Some("PERSON_NOT_FOUND")).await;
        seed(s, "a-fail2", 2, (MO_2917, 40), h(60), Status::Failed, Some("INVALID_SIGNATURE")).await;
        seed(s, "a-wait", 3, (MO_2917, 40), h(100), Status::AwaitingResult, None).await;
        seed(s, "a-cancel", 1, (MO_2917, 40), h(101), Status::Cancelled, None).await;
        seed(s, "a-119", 5, (MO_2917, 119), h(2), Status::Registered, None).await;
        seed(s, "b-reg", 7, (OTHER_MO, 40), h(167), Status::Registered, None).await;
        // Outside the week: the Sunday before (region time) and the Monday after.
        seed(s, "before", 9, (MO_2917, 40), monday - chrono::Duration::minutes(1), Status::Registered, None).await;
        seed(s, "after", 9, (MO_2917, 40), monday + chrono::Duration::days(7), Status::Failed, Some("X")).await;
    }
    let env = TestEnv::start_on(db, |_, _| {}).await;
    let ops = env.key(&[Role::Ops], &["*"]).await;
    let report = json_of(&env, &ops, "/api/v1/reports/remd?from=2026-11-16&to=2026-11-23").await;
    let rows = report["rows"].as_array().unwrap();
    // The figures, counted directly over the database.
    let direct = direct_counts(kind, &env.db.url, monday, monday + chrono::Duration::days(7)).await;
    assert_eq!(rows.len(), direct.len(), "{report}");
    for row in rows {
        let key = (row["organization"].as_str().unwrap().to_owned(), row["kind"].as_u64().unwrap() as u32);
        let by_status = &direct[&key];
        let of = |s: &str| by_status.get(s).copied().unwrap_or(0);
        assert_eq!(row["submitted"], by_status.values().sum::<u64>(), "{key:?}");
        assert_eq!(row["registered"], of("registered"), "{key:?}");
        assert_eq!(row["failed"], of("failed"), "{key:?}");
        assert_eq!(row["cancelled"], of("cancelled"), "{key:?}");
        let pending: u64 =
            ["queued", "sending", "awaiting_result", "retry_wait", "unknown"].iter().map(|s| of(s)).sum();
        assert_eq!(row["pending"], pending, "{key:?}");
    }
    let a = rows.iter().find(|r| r["organization"] == MO_2917 && r["kind"] == 40).unwrap();
    assert_eq!((a["submitted"].as_u64(), a["registered"].as_u64()), (Some(40), Some(30)));
    assert!((a["success_rate"].as_f64().unwrap() - 30.0 / 39.0).abs() < 1e-9);
    assert_eq!(
        a["top_error_codes"],
        json!([{"code": "PERSON_NOT_FOUND", "count": 4}, {"code": "INVALID_SIGNATURE", "count": 2}])
    );
    assert_eq!(report["total"]["submitted"], 52);

    // The CSV carries the same figures, for a Russian-locale spreadsheet.
    let res = env.get(&ops, "/api/v1/reports/remd?from=2026-11-16&to=2026-11-23&format=csv").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/csv; charset=utf-8");
    assert!(res.headers()["content-disposition"].to_str().unwrap().contains("remd-report-2026-11-16.csv"));
    let bytes = res.bytes().await.unwrap();
    assert_eq!(&bytes[..3], b"\xEF\xBB\xBF");
    let text = std::str::from_utf8(&bytes[3..]).unwrap();
    // Every JSON row is a CSV line with the same names and figures, and nothing else is.
    let lines = common::csv_rows(text);
    assert_eq!(
        lines[0][..3],
        ["Организация (OID)", "Организация (краткое наименование)", "Организация (полное наименование)"]
    );
    assert_eq!(lines.len(), rows.len() + 2, "the header, a line per row, the total");
    for row in rows {
        let (org, kind) = (row["organization"].as_str().unwrap(), row["kind"].to_string());
        let line = lines.iter().find(|l| l[0] == org && l[3] == kind).unwrap_or_else(|| panic!("{org} {kind}"));
        let text_of = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        assert_eq!(line[1], text_of(&row["organization_name"]), "{row}");
        assert_eq!(line[2], text_of(&row["organization_full_name"]), "{row}");
        let figures: Vec<String> =
            ["submitted", "registered", "failed", "pending", "cancelled"].iter().map(|k| row[*k].to_string()).collect();
        assert_eq!(line[5..10], figures[..], "{row}");
        let rate =
            row["success_rate"].as_f64().map(|r| format!("{:.1}", r * 100.0).replace('.', ",")).unwrap_or_default();
        assert_eq!(line[10], rate, "{row}");
        let codes: Vec<String> = row["top_error_codes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| format!("{} ({})", c["code"].as_str().unwrap(), c["count"]))
            .collect();
        assert_eq!(line[11], codes.join(", "), "{row}");
    }
    let mo = lines.iter().find(|l| l[0] == MO_2917 && l[3] == "40").unwrap();
    assert_eq!(mo[1], "ГАУЗ «Кемеровская клиническая районная больница»", "FRMO's short name");
    assert_eq!(mo[5..11], ["40", "30", "6", "3", "1", "76,9"]);
    assert_eq!(lines.last().unwrap()[..6], ["Итого", "", "", "", "", "52"]);
    // A key for one organisation sees only its own rows.
    let scoped = env.key(&[Role::Reader], &[OTHER_MO]).await;
    let theirs = json_of(&env, &scoped, "/api/v1/reports/remd?from=2026-11-16").await;
    assert_eq!(theirs["total"]["submitted"], 7);
    assert_eq!(env.get(&ops, "/api/v1/reports/remd?format=xls").await.status(), 422);
    for absurd in ["from=%2B262142-12-31", "to=-262143-01-01", "from=20266-01-01", "from=2026-13-01"] {
        assert_eq!(env.get(&ops, &format!("/api/v1/reports/remd?{absurd}")).await.status(), 422, "{absurd}");
        assert_eq!(env.get(&ops, &format!("/api/v1/documents?{absurd}")).await.status(), 422, "{absurd}");
    }
    assert_eq!(env.get(&ops, "/api/v1/reports/remd?from=2026-11-23&to=2026-11-16").await.status(), 422);
    env.shutdown().await;
}

/// `(organization, kind) → status → count` of submissions created in `[from, to)`, with a
/// query of the test's own.
async fn direct_counts(
    db: Db,
    url: &str,
    from: chrono::DateTime<Utc>,
    to: chrono::DateTime<Utc>,
) -> HashMap<(String, u32), HashMap<String, u64>> {
    use sqlx::Connection;
    let rows: Vec<(String, i64, String)> = match db {
        Db::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
            sqlx::query_as(
                "SELECT organization, kind, status FROM submissions WHERE created_at >= ? AND created_at < ?",
            )
            .bind(from.timestamp_millis())
            .bind(to.timestamp_millis())
            .fetch_all(&mut c)
            .await
            .unwrap()
        }
        Db::Postgres => {
            let mut c = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::query_as(
                "SELECT organization, kind::bigint, status FROM submissions WHERE created_at >= $1 AND created_at < $2",
            )
            .bind(from)
            .bind(to)
            .fetch_all(&mut c)
            .await
            .unwrap()
        }
    };
    let mut out: HashMap<(String, u32), HashMap<String, u64>> = HashMap::new();
    for (org, kind, status) in rows {
        *out.entry((org, kind as u32)).or_default().entry(status).or_default() += 1;
    }
    out
}

async fn the_summary_and_the_gauges_show_what_is_stuck(db: Db) {
    let db = TestDb::new(db).await;
    let old = egisz_gateway::now() - chrono::Duration::hours(30);
    let stuck = {
        let config =
            egisz_gateway::config::Config::load(None, &[("EGISZ__DATABASE__URL".into(), db.url.clone())]).unwrap();
        let store = store::connect(&config.database).await.unwrap();
        let stuck = seed(&*store, "stuck", 2, (MO_2917, 40), old, Status::AwaitingResult, None).await;
        seed(&*store, "failed", 3, (MO_2917, 40), old, Status::Failed, Some("PERSON_NOT_FOUND")).await;
        seed(&*store, "elsewhere", 4, (OTHER_MO, 40), old, Status::RetryWait, None).await;
        stuck
    };
    // A long look-up time: the watchdog leaves the seeded ones where they are.
    let env = TestEnv::start_on(db, |c, _| c.relay.timing.result_check_after = Duration::from_secs(3600 * 48)).await;
    let ops = env.key(&[Role::Ops], &[MO_2917]).await;
    let summary = json_of(&env, &ops, "/api/v1/ops/summary").await;
    assert_eq!(summary["counts"]["awaiting_result"], 2, "{summary}");
    assert_eq!(summary["counts"]["failed"], 3);
    assert_eq!(summary["counts"]["retry_wait"], 0, "another MO's are not this key's");
    assert_eq!(summary["queue_depth"], 2);
    assert_eq!(summary["past_deadline"], 2, "on their way for 30 h, the deadline is 24 h");
    assert_eq!(summary["oldest_waiting"]["id"], stuck[0].to_string());
    assert_eq!(summary["oldest_waiting"]["organization_name"], "ГАУЗ «Кемеровская клиническая районная больница»");
    assert!(summary["oldest_waiting"]["age_seconds"].as_i64().unwrap() >= 30 * 3600);
    assert_eq!(summary["remd"]["circuit"], "closed");
    assert!(summary["frmr"]["circuit"].is_string());
    // The gauges count the whole database, for alerts on age and depth.
    let metrics = env.http.get(env.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("egisz_submissions{status=\"retry_wait\"} 4"), "{metrics}");
    assert!(metrics.contains("egisz_submissions_past_deadline 6"), "{metrics}");
    let age = metrics
        .lines()
        .find_map(|l| l.strip_prefix("egisz_oldest_waiting_submission_seconds "))
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap();
    assert!(age >= 30 * 3600, "{age}");
    assert_counts_match(&*env.store()).await;
    env.shutdown().await;
}

/// The counts the database keeps as rows change equal a count over the table.
async fn assert_counts_match(store: &dyn Store) {
    let kept = store.queue_figures(&[], egisz_gateway::now(), None).await.unwrap().counts;
    let mut kept: Vec<_> = kept.into_iter().collect();
    let mut counted = store.count_by_status().await.unwrap();
    kept.sort_by_key(|(s, _)| s.as_str());
    counted.sort_by_key(|(s, _)| s.as_str());
    assert_eq!(kept, counted);
}

/// A bulk re-run by a key of two organisations, with a comment in a form's line breaks:
/// one audit entry per organisation it touched, each with its count, so that an operator of
/// either organisation finds the re-run of its documents.
async fn a_bulk_rerun_over_several_organisations_is_audited_for_each(db: Db) {
    let db = TestDb::new(db).await;
    let at = egisz_gateway::now() - chrono::Duration::hours(1);
    {
        let config =
            egisz_gateway::config::Config::load(None, &[("EGISZ__DATABASE__URL".into(), db.url.clone())]).unwrap();
        let store = store::connect(&config.database).await.unwrap();
        seed(&*store, "two-a", 3, (MO_2917, 40), at, Status::Failed, Some("PERSON_NOT_FOUND")).await;
        seed(&*store, "two-b", 2, (OTHER_MO, 40), at, Status::Failed, Some("PERSON_NOT_FOUND")).await;
    }
    let env = TestEnv::start_on(db, |_, _| {}).await;
    let both = env.key(&[Role::Ops], &[MO_2917, OTHER_MO]).await;
    let (status, outcome) =
        post(&env, &both, "/api/v1/ops/retry", json!({"status": "failed", "comment": "ФРМР исправлен\r\nпо заявке 7"}))
            .await;
    assert_eq!((status, outcome["requeued"].as_u64()), (200, Some(5)), "{outcome}");
    let audit = json_of(&env, &both, "/api/v1/ops/audit").await;
    let mut entries: Vec<(String, u64, String)> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "bulk_retry")
        .map(|e| {
            (
                e["organization"].as_str().unwrap_or("none").to_owned(),
                e["count"].as_u64().unwrap(),
                e["comment"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    entries.sort();
    let comment = "ФРМР исправлен\nпо заявке 7".to_owned();
    assert_eq!(
        entries,
        [(MO_2917.to_owned(), 3, comment.clone()), (OTHER_MO.to_owned(), 2, comment)],
        "one entry per organisation, the form's line break kept as one"
    );
    let theirs = env.key(&[Role::Ops], &[OTHER_MO]).await;
    let seen = json_of(&env, &theirs, "/api/v1/ops/audit").await;
    let seen: Vec<_> = seen["items"].as_array().unwrap().iter().filter(|e| e["action"] == "bulk_retry").collect();
    assert_eq!(seen.len(), 1, "the other organisation's operator finds the re-run of its documents: {seen:?}");
    assert_eq!(seen[0]["count"], 2);
    env.shutdown().await;
}
