//! FRMO, the register of medical organisations, on both engines: NSI's two dictionaries
//! fetched page by page into storage and put in force as the in-memory index; a failed
//! fetch keeping the copy in force; superseded copies dropped; and intake with no copy or a
//! stale one accepting with a warning, never refusing.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use egisz_gateway::auth::Role;
use egisz_gateway::config::NsiMode;
use egisz_gateway::nsi::Refreshed;
use egisz_gateway::nsi::frmo::Frmo;
use egisz_nsi::wire::frmo::{DEPARTMENTS, ORGANIZATIONS};
use egisz_sandbox::{NsiFault, NsiSandbox};
use serde_json::{Value, json};

on_both_backends!(
    a_copy_is_streamed_into_storage_and_a_failed_fetch_keeps_the_one_in_force,
    no_copy_or_a_stale_one_warns_and_never_refuses
);

async fn store_on(db: &TestDb) -> Arc<dyn egisz_gateway::store::Store> {
    let env = [("EGISZ__DATABASE__URL".to_owned(), db.url.clone())];
    egisz_gateway::store::connect(&egisz_gateway::config::Config::load(None, &env).unwrap().database).await.unwrap()
}

fn updated(results: &[Refreshed], oid: &str) -> Option<(String, usize)> {
    results.iter().find_map(|r| match r {
        Refreshed::Updated { oid: o, version, rows } if o == oid => Some((version.clone(), *rows)),
        _ => None,
    })
}

async fn a_copy_is_streamed_into_storage_and_a_failed_fetch_keeps_the_one_in_force(db: Db) {
    let nsi = NsiSandbox::start(0).await.unwrap();
    let test_db = TestDb::new(db).await;
    let store = store_on(&test_db).await;
    let client = egisz_nsi::NsiClient::new(url::Url::parse(&nsi.base_url()).unwrap(), Duration::from_secs(5)).unwrap();
    let frmo = Frmo::new();
    let now = egisz_gateway::now();

    // Nothing published: nothing in force, nothing stored.
    let results = frmo.refresh(&client, &*store, now).await;
    assert!(results.iter().all(|r| matches!(r, Refreshed::NoVersions { .. })), "{results:?}");
    assert!(frmo.current().is_none());

    nsi.publish_frmo("1.0", &egisz_sandbox::Frmo::builtin());
    let results = frmo.refresh(&client, &*store, now).await;
    assert_eq!(updated(&results, ORGANIZATIONS), Some(("1.0".into(), 10)), "{results:?}");
    assert_eq!(updated(&results, DEPARTMENTS), Some(("1.0".into(), 28)), "{results:?}");
    let index = frmo.current().expect("in force");
    assert_eq!(index.counts(), (10, 28));
    assert_eq!(
        index.name_of("1.2.643.5.1.13.13.12.2.42.2936"),
        Some("ГБУЗ «Кузбасский клинический кардиологический диспансер имени академика Л.С. Барбараша»")
    );
    let again = frmo.refresh(&client, &*store, now).await;
    assert!(again.iter().all(|r| matches!(r, Refreshed::Unchanged { .. })), "{again:?}");

    // A country's worth more (more than one page of each): streamed page by page.
    nsi.publish_frmo("2.0", &egisz_sandbox::Frmo::country(1200, 6000));
    let results = frmo.refresh(&client, &*store, now).await;
    assert_eq!(updated(&results, ORGANIZATIONS), Some(("2.0".into(), 1210)), "{results:?}");
    assert_eq!(updated(&results, DEPARTMENTS), Some(("2.0".into(), 6028)), "{results:?}");
    assert_eq!(frmo.current().unwrap().counts(), (1210, 6028));
    let copies = store.frmo_copies().await.unwrap();
    assert_eq!(
        copies.iter().map(|c| (c.version.as_str(), c.complete_at.is_some(), c.rows)).collect::<Vec<_>>(),
        [("2.0", true, 1210), ("2.0", true, 6028)],
        "the superseded copy is dropped"
    );
    assert!(store.frmo_organizations("1.0", None, 10).await.unwrap().is_empty(), "and its rows");

    // A broken version: the copy in force stays, in memory and for another instance.
    nsi.publish_frmo("3.0", &egisz_sandbox::Frmo::country(1300, 6500));
    nsi.set_fault(NsiFault::MissingColumn);
    let results = frmo.refresh(&client, &*store, now).await;
    assert!(
        results.iter().all(|r| matches!(r, Refreshed::Failed { reason, .. } if reason.contains("нет столбца"))),
        "{results:?}"
    );
    assert_eq!(frmo.current().unwrap().source.organizations_version, "2.0");
    let other = Frmo::new();
    assert!(other.load(&*store).await.unwrap());
    assert_eq!(other.current().unwrap().counts(), (1210, 6028), "another instance builds the same index");
    assert!(!other.load(&*store).await.unwrap(), "and does not rebuild an index it holds");

    // NSI mended: the interrupted version is fetched whole.
    nsi.set_fault(NsiFault::None);
    let results = frmo.refresh(&client, &*store, now).await;
    assert_eq!(updated(&results, DEPARTMENTS), Some(("3.0".into(), 6528)), "{results:?}");
    assert_eq!(frmo.current().unwrap().counts(), (1310, 6528));
    assert!(other.load(&*store).await.unwrap(), "the other instance takes the new copy");
    nsi.stop().await;
}

/// The sample with its author in an organisation FRMO does not have.
fn unknown_author_org(uid: &str) -> Value {
    let document = sample_as(uid).replacen(
        r#"<representedOrganization>
        <id root="1.2.643.5.1.13.13.12.2.42.2917"/>"#,
        r#"<representedOrganization>
        <id root="1.2.643.5.1.13.13.12.2.42.1"/>"#,
        1,
    );
    assert!(document.contains("42.1\"/>"));
    submission_body(document.as_bytes(), &author_signer())
}

fn o1_warnings(accepted: &Value) -> Vec<String> {
    accepted["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["rule"] == "O1")
        .map(|w| format!("{} {}", w["path"].as_str().unwrap(), w["remd_code"].as_str().unwrap()))
        .collect()
}

async fn no_copy_or_a_stale_one_warns_and_never_refuses(db: Db) {
    // No copy (NSI off, nothing stored): accepted, with the reason.
    let env = TestEnv::start_with(db, |c, _| c.nsi.mode = NsiMode::Off).await;
    let key = env.key(&[Role::Submitter, Role::Reader], &[MO_2917]).await;
    let res =
        env.http.post(env.url("/api/v1/documents")).bearer_auth(&key).json(&unknown_author_org("f-none")).send().await;
    let res = res.unwrap();
    assert_eq!(res.status(), 202);
    let accepted: Value = res.json().await.unwrap();
    assert_eq!(o1_warnings(&accepted), ["/organization ORG_NOT_FOUND_IN_FRMO"], "{accepted}");
    assert!(accepted["warnings"][0]["message"].as_str().unwrap().contains("копии ФРМО ещё нет"), "{accepted}");
    assert_eq!(accepted.get("organization_name"), None, "no copy, no name: {accepted}");
    let test_db = env.db;
    env.gw.shutdown().await;

    // A copy in force (the sandbox NSI's, fetched before the first request): refused.
    let env = TestEnv::start_on(test_db, |_, _| {}).await;
    let key = env.key(&[Role::Submitter, Role::Reader], &[MO_2917]).await;
    let res =
        env.http.post(env.url("/api/v1/documents")).bearer_auth(&key).json(&unknown_author_org("f-fresh")).send().await;
    let res = res.unwrap();
    let problem: Value = res.json().await.unwrap();
    assert_eq!(problem["errors"][0]["remd_code"], "ORG_NOT_FOUND_IN_FRMO", "{problem}");
    assert_eq!(
        problem["errors"][0]["path"],
        "/ClinicalDocument/author[1]/assignedAuthor/representedOrganization/id/@root"
    );
    let accepted: Value = env.get(&key, "/api/v1/documents").await.json().await.unwrap();
    assert_eq!(
        accepted["items"][0]["organization_name"], "ГАУЗ «Кемеровская клиническая районная больница»",
        "the list names the organisation once the copy is in force: {accepted}"
    );
    let readyz: Value = env.http.get(env.url("/readyz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(readyz["frmo"]["organizations"], json!(10), "{readyz:#}");
    let test_db = env.db;
    env.gw.shutdown().await;

    // The same copy, older than frmo_max_age: accepted, the finding a warning beside the reason.
    let env = TestEnv::start_on(test_db, |c, _| {
        c.nsi.mode = NsiMode::Off;
        c.validation.frmo_max_age = Duration::from_millis(1);
    })
    .await;
    let key = env.key(&[Role::Submitter, Role::Reader], &[MO_2917]).await;
    let res =
        env.http.post(env.url("/api/v1/documents")).bearer_auth(&key).json(&unknown_author_org("f-stale")).send().await;
    let res = res.unwrap();
    assert_eq!(res.status(), 202);
    let accepted: Value = res.json().await.unwrap();
    assert_eq!(
        o1_warnings(&accepted),
        [
            "/organization ORG_NOT_FOUND_IN_FRMO",
            "/ClinicalDocument/author[1]/assignedAuthor/representedOrganization/id/@root ORG_NOT_FOUND_IN_FRMO"
        ],
        "{accepted}"
    );
    env.shutdown().await;
}
