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
    (NsiService::new(client, store, Arc::clone(&live), mappings.dictionaries().clone()), live)
}

async fn versions_are_picked_up_and_broken_answers_change_nothing(db: Db) {
    let nsi = NsiSandbox::start(0).await.unwrap();
    nsi.publish(POSITIONS, "7.5", rows(&[("73", "врач-офтальмолог"), ("49", "врач-терапевт участковый")]));
    let test_db = TestDb::new(db).await;
    let store = store_on(&test_db).await;
    let mappings = Mappings::embedded().unwrap();
    let (service, live) = service_of(&nsi, Arc::clone(&store));

    let first = service.refresh(egisz_gateway::now()).await;
    assert_eq!(
        outcome(&first, POSITIONS),
        &Refreshed::Updated { oid: POSITIONS.into(), version: "7.5".into(), rows: 2 }
    );
    assert_eq!(
        outcome(&first, "1.2.643.5.1.13.13.99.2.197"),
        &Refreshed::NoVersions { oid: "1.2.643.5.1.13.13.99.2.197".into() }
    );
    // Now a complete copy: a code it lacks is an error of H13, which the shipped subset could not say.
    let copy = live.current().get(POSITIONS, "7.5").cloned().unwrap();
    assert_eq!(copy.coverage, egisz_gateway::mappings::Coverage::Complete);
    assert_eq!(copy.names.len(), 2);

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
    let restarted =
        NsiService::new(client, Arc::clone(&store), Arc::clone(&restarted_live), mappings.dictionaries().clone());
    restarted.load_stored().await.unwrap();
    assert_eq!(restarted_live.current().get(POSITIONS, "7.8").unwrap().names.len(), 3);
    assert!(restarted_live.current().get(POSITIONS, "7.5").is_some(), "the shipped 7.5 stays beside it");
    nsi.stop().await;
}

async fn an_unreachable_nsi_is_detail_not_failure(db: Db) {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let env = TestEnv::start_with(db, |c, _| {
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
