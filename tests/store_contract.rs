//! One contract for every store implementation, run against SQLite and PostgreSQL.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::Duration;
use common::{Db, TestDb};
use egisz_contract::frmr::{FrmrPerson, PersonCard};
use egisz_contract::{Oid, Personal, Snils};
use egisz_gateway::auth::{self, Role, Scope};
use egisz_gateway::config::Config;
use egisz_gateway::store::{self, CachedLookup, Store};

on_both_backends!(
    migrations_are_idempotent_and_readiness_holds,
    clients_round_trip_and_revoke,
    staff_cache_upserts_keeps_the_newest_and_purges,
);

async fn open(db: &TestDb) -> Arc<dyn Store> {
    let env = [("EGISZ__DATABASE__URL".to_owned(), db.url.clone())];
    let config = Config::load(None, &env).unwrap();
    store::connect(&config.database).await.expect("store opens")
}

async fn migrations_are_idempotent_and_readiness_holds(db: Db) {
    let test_db = TestDb::new(db).await;
    let s = open(&test_db).await;
    s.readiness().await.expect("ready after migrations");
    s.migrate().await.expect("migrating again is a no-op");
    let again = open(&test_db).await;
    again.readiness().await.expect("a second process sees the same schema");
    assert_eq!(
        s.backend(),
        match db {
            Db::Sqlite => store::Backend::Sqlite,
            Db::Postgres => store::Backend::Postgres,
        }
    );
}

async fn clients_round_trip_and_revoke(db: Db) {
    let test_db = TestDb::new(db).await;
    let s = open(&test_db).await;
    let now = egisz_gateway::now();
    let orgs: BTreeSet<Oid> = ["1.2.643.5.1.13.13.12.2.42.2917", "1.2.643.5.1.13.13.12.2.42.3001"]
        .iter()
        .map(|o| Oid::parse(o).unwrap())
        .collect();
    let a = auth::issue("МИС А", BTreeSet::from([Role::Submitter, Role::Reader]), Scope::Only(orgs), now);
    let b = auth::issue("ops", BTreeSet::from([Role::Ops]), Scope::All, now + Duration::milliseconds(5));
    s.insert_client(&a.client).await.unwrap();
    s.insert_client(&b.client).await.unwrap();
    assert!(s.insert_client(&a.client).await.is_err(), "the same key id twice is refused");

    assert_eq!(s.client_by_key_id(&a.client.key_id).await.unwrap().as_ref(), Some(&a.client));
    assert_eq!(s.client_by_key_id("0000000000000000").await.unwrap(), None);
    let list = s.list_clients().await.unwrap();
    assert_eq!(list, vec![a.client.clone(), b.client.clone()]);

    let later = now + Duration::seconds(1);
    assert!(s.revoke_client(&a.client.key_id, later).await.unwrap());
    assert!(!s.revoke_client(&a.client.key_id, later).await.unwrap(), "revoking twice changes nothing");
    assert!(s.revoke_client(&b.client.id.to_string(), later).await.unwrap(), "by id too");
    assert!(!s.revoke_client("no-such-client", later).await.unwrap());
    assert_eq!(s.client_by_key_id(&a.client.key_id).await.unwrap().unwrap().revoked_at, Some(later));
}

fn person(snils: &Snils, position: &str) -> FrmrPerson {
    FrmrPerson {
        frmr_id: Some("2023.3475290".into()),
        snils: snils.clone(),
        last_name: Personal("Колпинская".into()),
        first_name: Personal("Светлана".into()),
        patronymic: Some(Personal("Александровна".into())),
        birth_date: Some(Personal("1981-03-14".parse().unwrap())),
        gender: Some(2),
        cards: vec![PersonCard {
            id: Some("1".into()),
            organization: Some("1.2.643.5.1.13.13.12.2.42.2917".into()),
            organization_name: Some("ГАУЗ «Кемеровская клиническая районная больница»".into()),
            department: None,
            department_name: None,
            position_code: Some(position.into()),
            position: None,
            position_type: Some(1),
            rate: Some(1.0),
            begin_date: Some("2015-02-01".parse().unwrap()),
            end_date: None,
            derelictions: vec![],
        }],
    }
}

async fn staff_cache_upserts_keeps_the_newest_and_purges(db: Db) {
    let test_db = TestDb::new(db).await;
    let s = open(&test_db).await;
    let snils = Snils::parse("20311784514").unwrap();
    let org = Oid::parse("1.2.643.5.1.13.13.12.2.42.2917").unwrap();
    let other_org = Oid::parse("1.2.643.5.1.13.13.12.2.42.3001").unwrap();
    let t0 = egisz_gateway::now();
    assert_eq!(s.staff_cache_get(&snils, &org).await.unwrap(), None);

    let first = CachedLookup {
        snils: snils.clone(),
        organization: org.clone(),
        person: Some(person(&snils, "73")),
        fetched_at: t0,
    };
    s.staff_cache_put(&first).await.unwrap();
    assert_eq!(s.staff_cache_get(&snils, &org).await.unwrap().as_ref(), Some(&first));
    assert_eq!(s.staff_cache_get(&snils, &other_org).await.unwrap(), None, "keyed by SNILS and organisation");

    let newer =
        CachedLookup { person: Some(person(&snils, "49")), fetched_at: t0 + Duration::seconds(10), ..first.clone() };
    s.staff_cache_put(&newer).await.unwrap();
    let older = CachedLookup { person: None, fetched_at: t0 - Duration::seconds(10), ..first.clone() };
    s.staff_cache_put(&older).await.unwrap();
    assert_eq!(
        s.staff_cache_get(&snils, &org).await.unwrap().as_ref(),
        Some(&newer),
        "an older answer never replaces a newer one"
    );

    let not_found = CachedLookup {
        snils: Snils::parse("11223344595").unwrap(),
        organization: org.clone(),
        person: None,
        fetched_at: t0 - Duration::days(8),
    };
    s.staff_cache_put(&not_found).await.unwrap();
    assert_eq!(s.staff_cache_get(&not_found.snils, &org).await.unwrap().as_ref(), Some(&not_found));
    assert_eq!(s.staff_cache_purge(t0 - Duration::days(7)).await.unwrap(), 1);
    assert_eq!(s.staff_cache_get(&not_found.snils, &org).await.unwrap(), None);
    assert!(s.staff_cache_get(&snils, &org).await.unwrap().is_some());
}
