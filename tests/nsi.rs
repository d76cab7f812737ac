//! The NSI adapter against its emulator, on both engines: a new version is picked up and
//! put in force, a broken answer keeps the old data, an unreachable NSI is reported in
//! `/readyz` detail without making the gateway unready.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use egisz_gateway::config::NsiMode;
use egisz_gateway::mappings::{LiveDictionaries, Mappings};
use egisz_gateway::nsi::{NsiService, Refreshed};
use egisz_sandbox::{NsiFault, NsiSandbox};
use serde_json::Value;

on_both_backends!(
    versions_are_picked_up_and_broken_answers_change_nothing,
    an_unreachable_nsi_is_detail_not_failure,
    instances_on_one_database_refresh_once_and_all_put_it_in_force
);

const POSITIONS: &str = "1.2.643.5.1.13.13.11.1002";

fn rows(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(c, n)| (c.to_string(), n.to_string())).collect()
}

fn outcome<'a>(results: &'a [Refreshed], oid: &str) -> &'a Refreshed {
    results
        .iter()
        .find(|r| match r {
            Refreshed::Updated { oid: o, .. }
            | Refreshed::Unchanged { oid: o, .. }
            | Refreshed::NoVersions { oid: o }
            | Refreshed::Older { oid: o, .. }
            | Refreshed::Shipped { oid: o, .. }
            | Refreshed::Failed { oid: o, .. } => o == oid,
        })
        .unwrap()
}

async fn store_on(db: &TestDb) -> Arc<dyn egisz_gateway::store::Store> {
    let env = [("EGISZ__DATABASE__URL".to_owned(), db.url.clone())];
    egisz_gateway::store::connect(&egisz_gateway::config::Config::load(None, &env).unwrap().database).await.unwrap()
}

/// A refresher asking `nsi`, on `store`, with the dictionaries it puts in force.
fn service_of(nsi: &NsiSandbox, store: Arc<dyn egisz_gateway::store::Store>) -> (NsiService, Arc<LiveDictionaries>) {
    let mappings = Mappings::embedded().unwrap();
    let live = Arc::new(LiveDictionaries::new(mappings.dictionaries().clone()));
    let client = egisz_nsi::NsiClient::new(url::Url::parse(&nsi.base_url()).unwrap(), Duration::from_secs(2)).unwrap();
    (NsiService::new(client, store, Arc::clone(&live), mappings.dictionaries().clone(), Arc::default()), live)
}

async fn versions_are_picked_up_and_broken_answers_change_nothing(db: Db) {
    let nsi = NsiSandbox::start(0).await.unwrap();
    let test_db = TestDb::new(db).await;
    let store = store_on(&test_db).await;
    let mappings = Mappings::embedded().unwrap();
    let (service, live) = service_of(&nsi, Arc::clone(&store));
    // NSI's whole 7.5, of which the gateway ships a subset: taken only when it agrees with it.
    let mut whole_75: Vec<(String, String)> = mappings
        .dictionaries()
        .get(POSITIONS, "7.5")
        .unwrap()
        .names
        .iter()
        .map(|(c, n)| (c.clone(), n.clone()))
        .collect();
    whole_75.sort();
    let contradicting: Vec<_> =
        whole_75.iter().map(|(c, n)| (c.clone(), if c == "73" { "подмена".into() } else { n.clone() })).collect();
    nsi.publish(POSITIONS, "7.5", contradicting);
    let refused = service.refresh(egisz_gateway::now()).await;
    assert!(
        matches!(outcome(&refused, POSITIONS), Refreshed::Failed { reason, .. } if reason.contains("копии шлюза")),
        "{refused:?}"
    );
    assert_eq!(
        live.current().get(POSITIONS, "7.5"),
        mappings.dictionaries().get(POSITIONS, "7.5"),
        "the shipped one stays"
    );
    whole_75.push(("999".into(), "врач-новая должность".into()));
    let whole_rows = whole_75.len();
    nsi.publish(POSITIONS, "7.5", whole_75);

    let first = service.refresh(egisz_gateway::now()).await;
    assert_eq!(
        outcome(&first, POSITIONS),
        &Refreshed::Updated { oid: POSITIONS.into(), version: "7.5".into(), rows: whole_rows }
    );
    assert_eq!(
        outcome(&first, "1.2.643.5.1.13.13.99.2.197"),
        &Refreshed::NoVersions { oid: "1.2.643.5.1.13.13.99.2.197".into() }
    );
    // Now a complete copy: a code it lacks is an error of H13, which the shipped subset could not say.
    let copy = live.current().get(POSITIONS, "7.5").cloned().unwrap();
    assert_eq!(copy.coverage, egisz_gateway::mappings::Coverage::Complete);
    assert_eq!(copy.names.len(), whole_rows);

    let again = service.refresh(egisz_gateway::now()).await;
    assert_eq!(outcome(&again, POSITIONS), &Refreshed::Unchanged { oid: POSITIONS.into(), version: "7.5".into() });

    // A new version with a broken answer: refused, 7.5 stays in force.
    nsi.publish(POSITIONS, "7.6", rows(&[("73", "врач-офтальмолог"), ("36", "врач-невролог")]));
    for fault in [NsiFault::MissingColumn, NsiFault::NotJson, NsiFault::ServerError, NsiFault::Down] {
        nsi.set_fault(fault);
        let broken = service.refresh(egisz_gateway::now()).await;
        assert!(outcome(&broken, POSITIONS).failed(), "{fault:?}: {broken:?}");
        assert_eq!(service.status().in_force[POSITIONS], "7.5", "{fault:?}");
        assert!(live.current().get(POSITIONS, "7.6").is_none(), "{fault:?}");
    }
    // Duplicate codes are refused too.
    nsi.set_fault(NsiFault::None);
    nsi.publish(POSITIONS, "7.7", rows(&[("73", "a"), ("73", "b")]));
    let dup = service.refresh(egisz_gateway::now()).await;
    assert!(
        matches!(outcome(&dup, POSITIONS), Refreshed::Failed { reason, .. } if reason.contains("повторяется")),
        "{dup:?}"
    );

    // The good new version is picked up; it survives a restart (stored by (oid, version)).
    nsi.publish(
        POSITIONS,
        "7.8",
        rows(&[("73", "врач-офтальмолог"), ("36", "врач-невролог"), ("28", "врач-кардиолог")]),
    );
    let picked = service.refresh(egisz_gateway::now()).await;
    assert_eq!(
        outcome(&picked, POSITIONS),
        &Refreshed::Updated { oid: POSITIONS.into(), version: "7.8".into(), rows: 3 }
    );
    // NSI withdraws 7.8: its list's newest is now older than what is stored, which stays.
    nsi.withdraw(POSITIONS, "7.8");
    let older = service.refresh(egisz_gateway::now()).await;
    assert!(matches!(outcome(&older, POSITIONS), Refreshed::Older { stored, .. } if stored == "7.8"), "{older:?}");
    assert_eq!(service.status().in_force[POSITIONS], "7.8");
    // A version whose rows have an empty name is refused (it would refuse every document).
    nsi.publish(POSITIONS, "7.9", rows(&[("73", "врач-офтальмолог"), ("36", "")]));
    let empty = service.refresh(egisz_gateway::now()).await;
    assert!(outcome(&empty, POSITIONS).failed(), "{empty:?}");
    assert_eq!(service.status().in_force[POSITIONS], "7.8");
    let restarted_live = Arc::new(LiveDictionaries::new(mappings.dictionaries().clone()));
    let client =
        egisz_nsi::NsiClient::new(url::Url::parse("http://127.0.0.1:1/").unwrap(), Duration::from_secs(1)).unwrap();
    let restarted = NsiService::new(
        client,
        Arc::clone(&store),
        Arc::clone(&restarted_live),
        mappings.dictionaries().clone(),
        Arc::default(),
    );
    restarted.load_stored().await.unwrap();
    assert_eq!(restarted_live.current().get(POSITIONS, "7.8").unwrap().names.len(), 3);
    assert!(restarted_live.current().get(POSITIONS, "7.5").is_some(), "the shipped 7.5 stays beside it");
    nsi.stop().await;
}

async fn an_unreachable_nsi_is_detail_not_failure(db: Db) {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    // NSI remote: every other service real too (REMD an emulator that posts no results).
    let remd = egisz_sandbox::RemdSandbox::start(egisz_sandbox::RemdSandboxConfig::default()).await.unwrap();
    let env = TestEnv::start_with(db, |c, _| {
        every_service_remote(c, &remd);
        c.nsi.mode = NsiMode::Remote(url::Url::parse(&format!("http://{dead}/")).unwrap());
        c.nsi.timeout = Duration::from_millis(300);
    })
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let res = env.http.get(env.url("/readyz")).send().await.unwrap();
        assert_eq!(res.status(), 200, "NSI never makes the gateway unready");
        let body: Value = res.json().await.unwrap();
        if body["nsi"]["state"] == "degraded" {
            assert!(!body["nsi"]["failed"].as_array().unwrap().is_empty(), "{body}");
            assert_eq!(body["nsi"]["last_success"], Value::Null, "{body}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Intake goes on with the shipped dictionaries.
    let key = env.key(&[egisz_gateway::auth::Role::Submitter], &[MO_2917]).await;
    let document = sample_as("nsi-down");
    let res = env
        .http
        .post(env.url("/api/v1/documents"))
        .bearer_auth(&key)
        .json(&submission_body(document.as_bytes(), &author_signer()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    env.shutdown().await;
}

/// Two instances on one database, each running its refresher: NSI is asked once per
/// `refresh_every`, by one of them, and the other puts the copy in force from the database.
async fn instances_on_one_database_refresh_once_and_all_put_it_in_force(db: Db) {
    let nsi = NsiSandbox::start(0).await.unwrap();
    nsi.publish(POSITIONS, "9.1", rows(&[("73", "врач-офтальмолог"), ("49", "врач-терапевт участковый")]));
    let test_db = TestDb::new(db).await;
    let mut instances = Vec::new();
    for _ in 0..2 {
        let (service, live) = service_of(&nsi, store_on(&test_db).await);
        instances.push((Arc::new(service), live));
    }
    let stop = tokio_util::sync::CancellationToken::new();
    let tasks: Vec<_> = instances
        .iter()
        .enumerate()
        .map(|(n, (service, _))| {
            let (service, stop) = (Arc::clone(service), stop.clone());
            tokio::spawn(service.run(Duration::from_secs(3600), Duration::from_millis(100), format!("gw-{n}"), stop))
        })
        .collect();
    // Both have the new version in force within a few reloads.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !instances.iter().all(|(_, live)| live.current().get(POSITIONS, "9.1").is_some()) {
        assert!(tokio::time::Instant::now() < deadline, "both instances put 9.1 in force");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let asked = nsi.calls();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.cancel();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(nsi.calls(), asked, "no second refresh within refresh_every");
    let statuses: Vec<_> = instances.iter().map(|(s, _)| s.status()).collect();
    assert_eq!(statuses.iter().filter(|s| s.last_run.is_some()).count(), 1, "one instance refreshed");
    let other = statuses.iter().find(|s| s.last_run.is_none()).unwrap();
    assert!(other.last_loaded.is_some() && other.in_force[POSITIONS] == "9.1", "{other:?}");
    // A single refresh asks NSI this often: the cluster asked no more.
    let single = NsiSandbox::start(0).await.unwrap();
    single.publish(POSITIONS, "9.1", rows(&[("73", "врач-офтальмолог"), ("49", "врач-терапевт участковый")]));
    let alone = TestDb::new(db).await;
    service_of(&single, store_on(&alone).await).0.refresh(egisz_gateway::now()).await;
    assert_eq!(asked, single.calls(), "the cluster's calls are one refresh's");
}

/// A hostile NSI against the gateway binary (every other service real, emulated): names of
/// 100 KB, a version claiming 5,000,000 rows, rows of a thousand extra columns, 8 MB of
/// long names, the shipped version of a complete dictionary with other names, an FRMO
/// claiming 3,000,000 organisations and one whose sixth page of departments breaks. What was
/// in force stays, `/readyz` says why for each, and the process's peak resident memory
/// stays under 100 MB (it was 560 MB, for good, before the bounds).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_nsi_is_bounded() {
    use common::binary::{Gateway, free_port, wait_ready};
    let test_db = TestDb::new(Db::Sqlite).await;
    let scratch = tempfile::tempdir().unwrap();
    let nsi = NsiSandbox::start(0).await.unwrap();
    nsi.set_fault(NsiFault::Hostile);
    let frmr = egisz_sandbox::FrmrSandbox::start(Default::default()).await.unwrap();
    let remd = egisz_sandbox::RemdSandbox::start(egisz_sandbox::RemdSandboxConfig::default()).await.unwrap();
    let api = format!("127.0.0.1:{}", free_port());
    let mut env: Vec<(String, String)> = [
        ("EGISZ__DATABASE__URL", test_db.url.clone()),
        ("EGISZ__API__LISTEN", api.clone()),
        ("EGISZ__REMD_LISTENER__LISTEN", "127.0.0.1:0".into()),
        ("EGISZ__REMD__MODE", "remote".into()),
        ("EGISZ__REMD__ENDPOINT", remd.endpoint()),
        ("EGISZ__REMD__CLIENT_ENTITY_ID", remd.client_entity_id().to_owned()),
        ("EGISZ__NSI__MODE", "remote".into()),
        ("EGISZ__NSI__BASE_URL", nsi.base_url()),
        ("EGISZ__VALIDATION__VERIFIER", "none".into()),
        ("EGISZ__SANDBOX__API_KEY_FILE", format!("{}/key", scratch.path().display())),
        ("EGISZ__LOG__LEVEL", "warn".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    env.extend(remote_frmr_env(&frmr));
    let gateway = Gateway::spawn(&env);
    let http = reqwest::Client::new();
    wait_ready(&http, &format!("http://{api}")).await;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let body = loop {
        let body: Value = http.get(format!("http://{api}/readyz")).send().await.unwrap().json().await.unwrap();
        if body["nsi"]["state"] != "pending" {
            break body;
        }
        assert!(tokio::time::Instant::now() < deadline, "the refresh never ended: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let failed = body["nsi"]["failed"].as_array().unwrap().clone();
    let reason = |oid: &str| -> String {
        failed.iter().find(|f| f["oid"] == oid).map(|f| f["reason"].as_str().unwrap().to_owned()).unwrap_or_default()
    };
    assert_eq!(body["nsi"]["state"], "degraded", "{body}");
    for (oid, why) in [
        ("1.2.643.5.1.13.13.99.2.305", "больше 8388608 байт"),
        ("1.2.643.5.1.13.13.99.2.285", "больше 8388608 байт"),
        ("1.2.643.5.1.13.13.11.1520", "больше 200000"),
        ("1.2.643.5.1.13.13.11.1002", "больше 4194304 байт"),
        ("1.2.643.5.1.13.13.11.1461", "НСИ обещал 3000000 строк, больше 500000"),
        ("1.2.643.5.1.13.13.99.2.114", "длиннее 128 байт"),
    ] {
        assert!(reason(oid).contains(why), "{oid}: {} in {body}", reason(oid));
    }
    assert!(reason("1.2.643.5.1.13.13.11.1040").is_empty(), "the shipped version is not fetched: {body}");
    let in_force = &body["nsi"]["in_force"];
    assert!(in_force.get("1.2.643.5.1.13.13.11.1002").is_none(), "old data kept: {body}");
    assert!(in_force.get("1.2.643.5.1.13.13.11.1040").is_none(), "the shipped complete copy kept: {body}");
    assert_eq!(body["frmo"], Value::Null, "no FRMO copy goes in force: {body}");
    // Extra columns cost nothing: the rows themselves are fine, so that version is taken.
    assert_eq!(in_force["1.2.643.5.1.13.13.11.1522"], egisz_sandbox::HOSTILE_VERSION, "{body}");

    let status = std::fs::read_to_string(format!("/proc/{}/status", gateway.pid())).unwrap();
    let peak_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM");
    eprintln!("the gateway's peak resident memory through a hostile NSI refresh: {:.1} MB", peak_kb as f64 / 1024.0);
    assert!(peak_kb < 100 * 1024, "peak resident memory {peak_kb} kB");
    drop(gateway);
    remd.shutdown().await;
    nsi.stop().await;
}
