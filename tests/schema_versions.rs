//! Upgrades while running: a database migrated by a newer gateway refuses a new start of an
//! older binary with a clear message, while everything this binary's schema has keeps
//! working (migrations are additive).

mod common;

use common::{Db, TestDb};

on_both_backends!(an_older_binary_is_refused_by_a_newer_schema);

async fn an_older_binary_is_refused_by_a_newer_schema(db: Db) {
    let test_db = TestDb::new(db).await;
    let config =
        egisz_gateway::config::Config::load(None, &[("EGISZ__DATABASE__URL".into(), test_db.url.clone())]).unwrap();
    let store = egisz_gateway::store::connect(&config.database).await.unwrap();
    store.readiness().await.unwrap();
    // A newer release's migration, as its migrator records it.
    let future = 29_991_231_000_001_i64;
    let insert = match db {
        Db::Sqlite => {
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (?, 'a newer release', TRUE, x'00', 1)"
        }
        Db::Postgres => {
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES ($1, 'a newer release', TRUE, '\\x00', 1)"
        }
    };
    match db {
        Db::Sqlite => {
            use sqlx::Connection;
            let mut c = sqlx::SqliteConnection::connect(&test_db.url).await.unwrap();
            sqlx::query(insert).bind(future).execute(&mut c).await.unwrap();
        }
        Db::Postgres => {
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect(&test_db.url).await.unwrap();
            sqlx::query(insert).bind(future).execute(&mut c).await.unwrap();
        }
    }
    // The instance already running goes on: its own schema is all there.
    store.readiness().await.unwrap();
    // A new start of this (older) binary is refused, saying why.
    let err = egisz_gateway::store::connect(&config.database).await.err().expect("refused");
    let text = err.to_string();
    assert!(text.contains("newer gateway") && text.contains(&future.to_string()), "{text}");
}
