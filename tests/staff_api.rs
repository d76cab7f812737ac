//! Staff verification through the real API, on SQLite and on PostgreSQL, against the
//! sandbox FRMR over loopback HTTP.

mod common;

use std::time::Duration;

use common::{AUTHOR_SNILS, DISMISSED_SNILS, Db, MO_2917, TestEnv};
use egisz_gateway::auth::Role;
use egisz_sandbox::{FaultMode, Faults};
use serde_json::{Value, json};

on_both_backends!(
    verdicts_from_the_roster,
    snils_vectors_and_bad_snils_never_reach_frmr,
    concurrent_lookups_make_one_frmr_call,
    transient_failures_are_retried_within_limits,
    frmr_down_serves_stale_cache_or_503,
    token_provider_is_asked_again_after_401_once,
    cache_survives_a_restart,
    authentication_and_scope,
    batch_verification,
    bad_input_is_4xx_never_500,
    a_hung_frmr_is_answered_within_the_deadline,
    another_organisation_learns_no_names,
);

const MO_3011: &str = "1.2.643.5.1.13.13.12.2.42.3011";
const MO_3158: &str = "1.2.643.5.1.13.13.12.2.42.3158";
const MO_3240: &str = "1.2.643.5.1.13.13.12.2.42.3240";
const MO_3415: &str = "1.2.643.5.1.13.13.12.2.42.3415";
const MO_3527: &str = "1.2.643.5.1.13.13.12.2.42.3527";

fn q(org: &str, position: Option<&str>, date: &str) -> String {
    let mut s = format!("organization={org}&date={date}");
    if let Some(p) = position {
        s.push_str(&format!("&position={p}"));
    }
    s
}

async fn verdicts_from_the_roster(db: Db) {
    let env = TestEnv::start(db).await;
    let key = env.verifier().await;
    let cases: &[(&str, &str, Option<&str>, &str, &str)] = &[
        // snils, MO, position, date, verdict
        (AUTHOR_SNILS, MO_2917, Some("73"), "2023-08-18", "verified"),
        (AUTHOR_SNILS, MO_2917, None, "2023-08-18", "verified"),
        (AUTHOR_SNILS, MO_2917, Some("49"), "2023-08-18", "position_mismatch"),
        (AUTHOR_SNILS, MO_2917, Some("73"), "2015-01-31", "not_employed"),
        (AUTHOR_SNILS, "1.2.643.5.1.13.13.12.2.42.9999", None, "2023-08-18", "not_employed"),
        (DISMISSED_SNILS, MO_2917, None, "2022-12-31", "verified"),
        (DISMISSED_SNILS, MO_2917, None, "2023-01-01", "not_employed"),
        ("11223344595", MO_2917, None, "2023-01-01", "not_found"),
        // Main job in 3158, external part-time in 2917.
        ("34786502816", MO_2917, Some("89"), "2023-01-01", "verified"),
        ("34786502816", MO_2917, Some("73"), "2023-01-01", "position_mismatch"),
        ("34786502816", MO_2917, None, "2019-02-28", "not_employed"),
        ("34786502816", MO_3158, Some("89"), "2019-02-28", "verified"),
        // Two cards in one MO with different positions.
        ("16287259094", MO_3011, Some("95"), "2023-01-01", "verified"),
        ("16287259094", MO_3011, Some("49"), "2023-01-01", "verified"),
        ("16287259094", MO_3011, Some("95"), "2019-12-31", "position_mismatch"),
        // Hired later.
        ("69798284208", MO_3240, None, "2026-05-31", "not_employed"),
        ("69798284208", MO_3240, None, "2026-06-01", "verified"),
        // On leave, and back.
        ("48752710018", MO_2917, Some("14"), "2026-12-15", "on_leave"),
        ("48752710018", MO_2917, Some("14"), "2027-03-01", "verified"),
        // Position changed on 2024-06-01.
        ("79733976185", MO_3011, Some("48"), "2024-05-31", "verified"),
        ("79733976185", MO_3011, Some("48"), "2024-06-01", "position_mismatch"),
        ("79733976185", MO_3011, Some("28"), "2024-06-01", "verified"),
        // Dismissed long ago from one MO, employed in another.
        ("18022635845", MO_3415, None, "2016-09-01", "not_employed"),
        ("18022635845", MO_3527, Some("43"), "2023-01-01", "verified"),
        // In FRMR without any card.
        ("13196850575", MO_2917, None, "2023-01-01", "not_employed"),
    ];
    for &(snils, mo, position, date, expected) in cases {
        let (status, body) = env.staff(&key, snils, &q(mo, position, date)).await;
        assert_eq!(status, 200, "{snils} {mo} {position:?} {date}: {body}");
        assert_eq!(body["verdict"], expected, "{snils} {mo} {position:?} {date}: {body}");
        assert_eq!(body["snils"], snils);
        assert_eq!(body["organization"], mo);
        assert_eq!(body["date"], date);
        assert_eq!(body["stale"], false);
        assert!(!body["detail"].as_str().unwrap_or("").is_empty());
    }
    // The author, as the portal shows them.
    let (_, body) = env.staff(&key, AUTHOR_SNILS, &q(MO_2917, Some("73"), "2023-08-18")).await;
    assert_eq!(body["person"]["last_name"], "Колпинская");
    assert_eq!(body["cards"][0]["position_code"], "73");
    assert_eq!(body["cards"][0]["end_date"], Value::Null);
    assert_eq!(body["source"], "cache", "the second question about the same person is answered from the cache");
    let (_, dismissed) = env.staff(&key, DISMISSED_SNILS, &q(MO_2917, None, "2023-01-01")).await;
    assert!(dismissed["cards"].as_array().unwrap().iter().any(|c| c["end_date"] == "2022-12-31"), "{dismissed}");
    let (_, mismatch) = env.staff(&key, AUTHOR_SNILS, &q(MO_2917, Some("49"), "2023-08-18")).await;
    assert!(mismatch["detail"].as_str().unwrap().contains("73"), "says which position is held: {mismatch}");
    env.shutdown().await;
}

async fn snils_vectors_and_bad_snils_never_reach_frmr(db: Db) {
    let env = TestEnv::start(db).await;
    let key = env.verifier().await;
    for valid in ["112-233-445 95", "137-199-816 00", "999-999-999 01", "001-019-998 00"] {
        let (status, body) = env.staff(&key, &valid.replace(' ', "%20"), &q(MO_2917, None, "2024-01-01")).await;
        assert_eq!(status, 200, "{valid} is a valid SNILS: {body}");
        assert_eq!(body["snils"], valid.replace(['-', ' '], ""));
    }
    let calls_before = env.frmr.stats().person_calls;
    for invalid in ["001-001-999 00", "112-233-445 96", "1122334459", "abc", "112233445951"] {
        let (status, body) = env.staff(&key, &invalid.replace(' ', "%20"), &q(MO_2917, None, "2024-01-01")).await;
        assert_eq!(status, 422, "{invalid}: {body}");
        assert_eq!(body["code"], "invalid_snils", "{invalid}: {body}");
        assert!(body["errors"][0]["rule"].as_str().unwrap().starts_with("snils_"), "{body}");
    }
    assert_eq!(env.frmr.stats().person_calls, calls_before, "FRMR is never called for a bad SNILS");
    env.shutdown().await;
}

async fn concurrent_lookups_make_one_frmr_call(db: Db) {
    let env = TestEnv::start(db).await;
    let key = env.verifier().await;
    // A slow FRMR so that all 200 requests overlap the one call.
    env.frmr.set_faults(Faults { latency_ms: 300, ..Faults::default() });
    let url = env.url(&format!("/api/v1/staff/{AUTHOR_SNILS}?{}", q(MO_2917, Some("73"), "2023-08-18")));
    let requests = (0..200).map(|_| {
        let (http, url, key) = (env.http.clone(), url.clone(), key.clone());
        tokio::spawn(async move {
            let res = http.get(url).bearer_auth(key).send().await.expect("request");
            (res.status().as_u16(), res.json::<Value>().await.expect("json"))
        })
    });
    let answers = futures::future::join_all(requests).await;
    for answer in answers {
        let (status, body) = answer.expect("task");
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["verdict"], "verified");
    }
    assert_eq!(env.frmr.stats().person_calls, 1, "200 concurrent identical lookups → one FRMR call");
    let metrics = env.http.get(env.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("egisz_staff_coalesced_total"), "{metrics}");
    env.shutdown().await;
}

async fn transient_failures_are_retried_within_limits(db: Db) {
    let env = TestEnv::start(db).await;
    let key = env.verifier().await;
    // Two failures, then FRMR answers: within retry_max_attempts = 3.
    env.frmr.set_faults(Faults { mode: FaultMode::ServerError, fail_next: 2, ..Faults::default() });
    let (status, body) = env.staff(&key, AUTHOR_SNILS, &q(MO_2917, None, "2023-08-18")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["source"], "frmr");
    assert_eq!(env.frmr.stats().person_calls, 3);

    env.frmr.set_faults(Faults {
        mode: FaultMode::TooManyRequests,
        fail_next: 1,
        retry_after_secs: Some(0),
        ..Faults::default()
    });
    let (status, body) = env.staff(&key, DISMISSED_SNILS, &q(MO_2917, None, "2023-01-01")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(env.frmr.stats().person_calls, 5);

    // Failing for longer than the attempts allow: no more than 3 calls for one lookup.
    env.frmr.set_faults(Faults { mode: FaultMode::ServerError, fail_next: 10, ..Faults::default() });
    let (status, body) = env.staff(&key, "11223344595", &q(MO_2917, None, "2023-01-01")).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(env.frmr.stats().person_calls, 8);
    let metrics = env.http.get(env.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("outcome=\"server_error\""), "{metrics}");
    assert!(metrics.contains("outcome=\"rate_limited\""), "{metrics}");
    env.shutdown().await;
}

async fn frmr_down_serves_stale_cache_or_503(db: Db) {
    let env = TestEnv::start_with(db, |c, _| {
        c.frmr.cache_fresh_for = Duration::from_millis(300);
        c.frmr.circuit_failure_threshold = 2;
    })
    .await;
    let key = env.verifier().await;
    let (status, first) = env.staff(&key, AUTHOR_SNILS, &q(MO_2917, Some("73"), "2023-08-18")).await;
    assert_eq!(status, 200);
    assert_eq!(first["stale"], false);
    tokio::time::sleep(Duration::from_millis(400)).await;

    env.frmr.set_faults(Faults { mode: FaultMode::Down, ..Faults::default() });
    let (status, body) = env.staff(&key, AUTHOR_SNILS, &q(MO_2917, Some("73"), "2023-08-18")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["stale"], true);
    assert_eq!(body["source"], "cache");
    assert_eq!(body["verdict"], "verified");
    assert_eq!(body["checked_at"], first["checked_at"], "the stale answer says when FRMR gave it");

    let res = env.get(&key, &format!("/api/v1/staff/{DISMISSED_SNILS}?{}", q(MO_2917, None, "2023-01-01"))).await;
    assert_eq!(res.status(), 503);
    let retry_after: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after >= 1, "Retry-After {retry_after}");
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], "frmr_unavailable");

    // The breaker is open now: FRMR is not hammered.
    let dropped = env.frmr.stats().dropped_connections;
    for _ in 0..5 {
        let (status, _) = env.staff(&key, "11223344595", &q(MO_2917, None, "2023-01-01")).await;
        assert_eq!(status, 503);
    }
    assert_eq!(env.frmr.stats().dropped_connections, dropped, "an open circuit makes no calls");
    env.shutdown().await;
}

async fn token_provider_is_asked_again_after_401_once(db: Db) {
    // The emulator's token provider instead of a static token.
    let env = TestEnv::start_with(db, |c, frmr| c.frmr.token = Some(frmr.token_url())).await;
    let key = env.verifier().await;

    let (status, _) = env.staff(&key, AUTHOR_SNILS, &q(MO_2917, None, "2023-08-18")).await;
    assert_eq!(status, 200);
    assert_eq!(env.frmr.stats().tokens_issued, 1);
    let (status, _) = env.staff(&key, DISMISSED_SNILS, &q(MO_2917, None, "2023-01-01")).await;
    assert_eq!(status, 200);
    assert_eq!(env.frmr.stats().tokens_issued, 1, "the token is cached");

    env.frmr.revoke_tokens();
    let (status, body) = env.staff(&key, "11223344595", &q(MO_2917, None, "2023-01-01")).await;
    assert_eq!(status, 200, "{body}");
    let stats = env.frmr.stats();
    assert_eq!(stats.tokens_issued, 2, "asked the provider again once");
    assert_eq!(stats.unauthorized, 1);
    assert_eq!(stats.person_calls, 4, "one call rejected, one retried");
    env.shutdown().await;
}

async fn cache_survives_a_restart(db: Db) {
    let env = TestEnv::start(db).await;
    let key = env.verifier().await;
    let (status, first) = env.staff(&key, AUTHOR_SNILS, &q(MO_2917, Some("73"), "2023-08-18")).await;
    assert_eq!(status, 200);
    assert_eq!(first["source"], "frmr");
    let env = env.restart().await;
    env.frmr.set_faults(Faults { mode: FaultMode::Down, ..Faults::default() });
    let (status, body) = env.staff(&key, AUTHOR_SNILS, &q(MO_2917, Some("73"), "2023-08-18")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["source"], "cache");
    assert_eq!(body["stale"], false);
    assert_eq!(body["verdict"], "verified");
    assert_eq!(env.frmr.stats().person_calls, 1);
    env.shutdown().await;
}

async fn authentication_and_scope(db: Db) {
    let env = TestEnv::start(db).await;
    let path = format!("/api/v1/staff/{AUTHOR_SNILS}?{}", q(MO_2917, None, "2023-08-18"));

    let res = env.http.get(env.url(&path)).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    assert!(res.headers().contains_key("x-request-id"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], "unauthorized");

    let verifier = env.verifier().await;
    let mut forged = verifier.clone();
    forged.pop();
    forged.push(if verifier.ends_with('0') { '1' } else { '0' });
    for bad in [forged.as_str(), "egk_nonsense", "Basic abc"] {
        let res = env.get(bad, &path).await;
        assert_eq!(res.status(), 401, "{bad}");
    }

    let submitter = env.key(&[Role::Submitter, Role::Reader], &["*"]).await;
    let (status, body) = env.staff(&submitter, AUTHOR_SNILS, &q(MO_2917, None, "2023-08-18")).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")));

    let other_mo = "1.2.643.5.1.13.13.12.2.42.3001";
    let scoped = env.key(&[Role::Verifier], &[other_mo]).await;
    let (status, body) = env.staff(&scoped, AUTHOR_SNILS, &q(MO_2917, None, "2023-08-18")).await;
    assert_eq!(status, 403, "a client of one MO cannot verify for another: {body}");
    let res = env
        .http
        .post(env.url("/api/v1/staff/verify"))
        .bearer_auth(&scoped)
        .json(&json!({"organization": MO_2917, "items": [{"snils": AUTHOR_SNILS}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    // Its own organisation is the default when it has only one.
    let (status, body) = env.staff(&scoped, AUTHOR_SNILS, "date=2023-08-18").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["organization"], other_mo);

    let own = env.key(&[Role::Verifier], &[MO_2917]).await;
    let (status, _) = env.staff(&own, AUTHOR_SNILS, &q(MO_2917, None, "2023-08-18")).await;
    assert_eq!(status, 200);

    let revoked = env.verifier().await;
    let id = revoked.split('_').nth(1).unwrap().to_owned();
    assert!(env.store().revoke_client(&id, egisz_gateway::now()).await.unwrap());
    let res = env.get(&revoked, &path).await;
    assert_eq!(res.status(), 401);
    env.shutdown().await;
}

async fn batch_verification(db: Db) {
    let env = TestEnv::start(db).await;
    let key = env.verifier().await;
    let res = env
        .http
        .post(env.url("/api/v1/staff/verify"))
        .bearer_auth(&key)
        .json(&json!({
            "organization": MO_2917,
            "date": "2023-08-18",
            "items": [
                {"snils": AUTHOR_SNILS, "position": "73"},
                {"snils": "112-233-445 96"},
                {"snils": DISMISSED_SNILS},
                {"snils": AUTHOR_SNILS, "position": "49"},
                {"snils": "11223344595"},
            ]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let verdicts: Vec<&str> =
        body["items"].as_array().unwrap().iter().map(|i| i["verdict"].as_str().unwrap()).collect();
    assert_eq!(verdicts, ["verified", "invalid_snils", "not_employed", "position_mismatch", "not_found"]);
    assert_eq!(env.frmr.stats().person_calls, 3, "one call per distinct SNILS, none for the bad one");

    let too_many: Vec<Value> = (0..1001).map(|_| json!({"snils": AUTHOR_SNILS})).collect();
    let res = env
        .http
        .post(env.url("/api/v1/staff/verify"))
        .bearer_auth(&key)
        .json(&json!({"organization": MO_2917, "items": too_many}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], "batch_too_large");
    assert!(body["detail"].as_str().unwrap().contains("1000"), "{body}");

    // FRMR down for items not in the cache: those items carry an error, the others answer.
    env.frmr.set_faults(Faults { mode: FaultMode::Down, ..Faults::default() });
    let res = env
        .http
        .post(env.url("/api/v1/staff/verify"))
        .bearer_auth(&key)
        .json(&json!({"organization": MO_2917, "date": "2023-08-18", "items": [{"snils": AUTHOR_SNILS}, {"snils": "13719981600"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["items"][0]["verdict"], "verified");
    assert_eq!(body["items"][1]["error"]["code"], "frmr_unavailable", "{body}");
    env.shutdown().await;
}

async fn bad_input_is_4xx_never_500(db: Db) {
    let env = TestEnv::start_with(db, |c, _| c.api.limits.body_limit_bytes = 64 * 1024).await;
    let key = env.verifier().await;
    let cases: &[(&str, &str, u16, &str)] = &[
        (AUTHOR_SNILS, "organization=1.2.643.5.1.13.13.11.1002", 422, "organization_oid"),
        (AUTHOR_SNILS, "organization=1..2", 422, "organization_oid"),
        (AUTHOR_SNILS, "organization=hospital", 422, "organization_oid"),
        (AUTHOR_SNILS, "", 422, "organization_required"),
        (AUTHOR_SNILS, &format!("organization={MO_2917}&position=врач"), 422, "position_code"),
        (AUTHOR_SNILS, &format!("organization={MO_2917}&date=18.08.2023"), 422, "date_format"),
        ("123", &format!("organization={MO_2917}&date=tomorrow"), 422, "snils_format"),
        (AUTHOR_SNILS, "organization=1.2.643.5.1.13.13.12.2.42.2917.0.4411", 422, "organization_oid"),
        ("%FF%FE", &format!("organization={MO_2917}"), 422, "snils_format"),
        ("2%200%203%201%201%207%208%204%205%201%204", &format!("organization={MO_2917}"), 422, "snils_format"),
    ];
    for &(snils, query, status, rule) in cases {
        let (got, body) = env.staff(&key, snils, query).await;
        assert_eq!(got, status, "{snils}?{query}: {body}");
        let rules: Vec<&str> = body["errors"].as_array().unwrap().iter().map(|e| e["rule"].as_str().unwrap()).collect();
        assert!(rules.contains(&rule), "{snils}?{query}: {body}");
    }
    // Every problem at once.
    let (_, body) = env.staff(&key, "123", &format!("organization={MO_2917}&date=tomorrow&position=x")).await;
    assert_eq!(body["errors"].as_array().unwrap().len(), 3, "{body}");

    let post = |body: reqwest::Body, content_type: &'static str| {
        env.http
            .post(env.url("/api/v1/staff/verify"))
            .bearer_auth(&key)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let res = post("{not json".into(), "application/json").await.unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let res = post("{}".into(), "text/plain").await.unwrap();
    assert_eq!(res.status(), 415);
    let res = post(r#"{"items": "x"}"#.into(), "application/json").await.unwrap();
    assert_eq!(res.status(), 422);
    let res = post(r#"{"organization": "1.2.643.5.1.13.13.12.2.42.2917", "items": []}"#.into(), "application/json")
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let huge = format!(r#"{{"items": [{}]}}"#, vec![r#"{"snils": "20311784514"}"#; 5000].join(","));
    let res = post(huge.into(), "application/json").await.unwrap();
    assert_eq!(res.status(), 413);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], "payload_too_large");

    let res = env.get(&key, "/api/v1/nothing-here").await;
    assert_eq!(res.status(), 404);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let res = env.http.delete(env.url("/api/v1/staff/verify")).bearer_auth(&key).send().await.unwrap();
    assert_eq!(res.status(), 405);
    env.shutdown().await;
}

async fn a_hung_frmr_is_answered_within_the_deadline(db: Db) {
    let env = TestEnv::start_with(db, |c, _| {
        c.frmr.cache_fresh_for = Duration::from_millis(300);
        c.frmr.answer_within = Duration::from_millis(600);
        c.frmr.timeout = Duration::from_secs(10);
        c.api.batch_deadline = Duration::from_millis(1500);
        c.api.limits.request_timeout = Duration::from_secs(20);
    })
    .await;
    let key = env.verifier().await;
    let (status, _) = env.staff(&key, AUTHOR_SNILS, &q(MO_2917, Some("73"), "2023-08-18")).await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(400)).await;
    env.frmr.set_faults(Faults { mode: FaultMode::Hang, error_rate: 1.0, ..Faults::default() });

    // FRMR hangs (the adapter would wait 10 s per attempt): the cached answer comes at the
    // deadline, marked stale, long before the request timeout.
    let (status, body) = env.staff(&key, AUTHOR_SNILS, &q(MO_2917, Some("73"), "2023-08-18")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["stale"], true);
    let res = env.get(&key, &format!("/api/v1/staff/{DISMISSED_SNILS}?{}", q(MO_2917, None, "2023-01-01"))).await;
    assert_eq!(res.status(), 503);
    assert!(res.headers().contains_key("retry-after"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], "frmr_unavailable");

    // A batch: the fresh cache answers whatever FRMR does; the rest carry an error.
    let res = env
        .http
        .post(env.url("/api/v1/staff/verify"))
        .bearer_auth(&key)
        .json(&json!({"organization": MO_2917, "date": "2023-08-18", "items": [{"snils": "11223344595"}, {"snils": "13719981600"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    for item in body["items"].as_array().unwrap() {
        let code = item["error"]["code"].as_str().unwrap_or_default();
        assert!(code == "frmr_unavailable" || code == "frmr_timeout", "{item}");
    }
    env.frmr.set_faults(Faults::default());
    env.shutdown().await;
}

async fn another_organisation_learns_no_names(db: Db) {
    let env = TestEnv::start(db).await;
    let key = env.verifier().await;
    // 18022635845 worked in 3415 and works in 3527, never in 2917.
    let (status, body) = env.staff(&key, "18022635845", &q(MO_2917, None, "2023-01-01")).await;
    assert_eq!(status, 200);
    assert_eq!(body["verdict"], "not_employed");
    assert_eq!(body["person"], Value::Null, "no name or birth date for an organisation the person never worked in");
    assert_eq!(body["cards"], json!([]));
    let (_, body) = env.staff(&key, "18022635845", &q(MO_3415, None, "2023-01-01")).await;
    assert_eq!(body["verdict"], "not_employed");
    assert!(body["person"]["last_name"].is_string(), "a former employer sees who it was: {body}");
    let cards = body["cards"].as_array().unwrap();
    assert!(cards.iter().all(|c| c["organization"] == MO_3415), "only this organisation's cards: {body}");
    env.shutdown().await;
}
