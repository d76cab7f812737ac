//! Upgrades while running: a database migrated by a newer gateway refuses a new start of an
//! older binary with a clear message; an instance already running goes on — intake, relay,
//! results, reads — when a newer release expands the schema under it; and every migration
//! here is such an expansion unless it says it contracts.

mod common;

use common::{Db, MO_2917, TestDb, TestEnv, author_signer, sample_as, submission_body};
use egisz_gateway::auth::Role;

on_both_backends!(
    an_older_binary_is_refused_by_a_newer_schema,
    a_running_instance_goes_on_when_a_newer_release_expands_the_schema
);

async fn an_older_binary_is_refused_by_a_newer_schema(db: Db) {
    let test_db = TestDb::new(db).await;
    let config =
        egisz_gateway::config::Config::load(None, &[("EGISZ__DATABASE__URL".into(), test_db.url.clone())]).unwrap();
    let store = egisz_gateway::store::connect(&config.database).await.unwrap();
    store.readiness().await.unwrap();
    // A newer release's migration, as its migrator records it.
    let future = 29_991_231_000_001_i64;
    let checksum = match db {
        Db::Sqlite => "x'00'",
        Db::Postgres => "'\\x00'",
    };
    execute(
        db,
        &test_db.url,
        &format!(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES ({future}, 'a newer release', TRUE, {checksum}, 1)"
        ),
    )
    .await;
    // The instance already running goes on: its own schema is all there.
    store.readiness().await.unwrap();
    // A new start of this (older) binary is refused, saying why.
    let err = egisz_gateway::store::connect(&config.database).await.err().expect("refused");
    let text = err.to_string();
    assert!(text.contains("newer gateway") && text.contains(&future.to_string()), "{text}");
}

/// What a newer release's expand migration does (docs/deployment.md, "Upgrades while
/// running"): a nullable column, a column with a default, a table, an index, and a trigger
/// that fills the new column for rows the older instance writes; then it records its
/// version. Everything the running (older) instance does must go on as before.
fn expand(db: Db) -> Vec<&'static str> {
    match db {
        Db::Sqlite => vec![
            "ALTER TABLE submissions ADD COLUMN priority INTEGER",
            "ALTER TABLE submission_events ADD COLUMN source TEXT NOT NULL DEFAULT ''",
            "CREATE TABLE submission_tags (submission_id TEXT NOT NULL, tag TEXT NOT NULL, PRIMARY KEY (submission_id, tag))",
            "CREATE INDEX submissions_by_org_created ON submissions (organization, created_at)",
            "CREATE TRIGGER submissions_priority AFTER INSERT ON submissions WHEN NEW.priority IS NULL
                 BEGIN UPDATE submissions SET priority = 0 WHERE id = NEW.id; END",
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
                 VALUES (29991231000002, 'a newer release: priorities', TRUE, x'00', 1)",
        ],
        Db::Postgres => vec![
            "ALTER TABLE submissions ADD COLUMN priority INTEGER",
            "ALTER TABLE submission_events ADD COLUMN source TEXT NOT NULL DEFAULT ''",
            "CREATE TABLE submission_tags (submission_id UUID NOT NULL, tag TEXT NOT NULL, PRIMARY KEY (submission_id, tag))",
            "CREATE INDEX submissions_by_org_created ON submissions (organization, created_at)",
            "CREATE FUNCTION submissions_priority() RETURNS trigger LANGUAGE plpgsql AS $$
                 BEGIN NEW.priority := COALESCE(NEW.priority, 0); RETURN NEW; END $$",
            "CREATE TRIGGER submissions_priority BEFORE INSERT ON submissions FOR EACH ROW EXECUTE FUNCTION submissions_priority()",
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
                 VALUES (29991231000002, 'a newer release: priorities', TRUE, '\\x00', 1)",
        ],
    }
}

async fn a_running_instance_goes_on_when_a_newer_release_expands_the_schema(db: Db) {
    let env = TestEnv::start(db).await;
    let key = env.key(&[Role::Submitter, Role::Reader, Role::Ops], &[MO_2917]).await;
    let submit = |uid: &'static str| {
        let body = submission_body(sample_as(uid).as_bytes(), &author_signer());
        let (http, url, key) = (env.http.clone(), env.url("/api/v1/documents"), key.clone());
        async move {
            let res = http.post(url).bearer_auth(&key).json(&body).send().await.unwrap();
            assert_eq!(res.status(), 202, "{uid}");
            res.json::<serde_json::Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
        }
    };
    let before = submit("before-upgrade").await;
    env.wait_status(&key, &before, "registered").await;

    // The newer release migrates the database under the running instance.
    for statement in expand(db) {
        execute(db, &env.db.url, statement).await;
    }
    // The newer instance writes its new column on the rows it touches.
    execute(db, &env.db.url, "UPDATE submissions SET priority = 5").await;

    // The older instance: intake, the relay, REMD's results, reads, lists and figures.
    let after = submit("after-upgrade").await;
    env.wait_status(&key, &after, "registered").await;
    let again = env.wait_status(&key, &before, "registered").await;
    assert_eq!(again["local_uid"], "before-upgrade", "{again}");
    let list: serde_json::Value = env.get(&key, "/api/v1/documents").await.json().await.unwrap();
    let uids: Vec<&str> = list["items"].as_array().unwrap().iter().filter_map(|d| d["local_uid"].as_str()).collect();
    assert!(uids.contains(&"before-upgrade") && uids.contains(&"after-upgrade"), "{list}");
    let summary = env.get(&key, "/api/v1/ops/summary").await;
    assert_eq!(summary.status(), 200);
    let ready = env.http.get(env.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200, "the older instance stays ready: its own schema is all there");
    env.gw.shutdown().await;
}

async fn execute(db: Db, url: &str, statement: &str) {
    use sqlx::Connection;
    match db {
        Db::Sqlite => {
            sqlx::query(statement).execute(&mut sqlx::SqliteConnection::connect(url).await.unwrap()).await.unwrap();
        }
        Db::Postgres => {
            sqlx::query(statement).execute(&mut sqlx::PgConnection::connect(url).await.unwrap()).await.unwrap();
        }
    }
}

/// Every migration is one an older instance still running tolerates (expand): it adds
/// tables, columns (nullable or with a default), indexes, functions and triggers. Taking
/// anything away or changing it (contract) waits for a release after the one that stopped
/// using it, and says so on the line before: `-- contract: <which release no longer uses it>`.
/// An index dropped and created again in the same migration is a rebuild, not a contract.
#[test]
fn migrations_only_expand_unless_they_say_they_contract() {
    let destructive = [
        "DROP TABLE",
        "DROP COLUMN",
        "DROP FUNCTION",
        "DROP TRIGGER",
        "DROP VIEW",
        "DROP TYPE",
        "RENAME",
        "ALTER COLUMN",
        "SET NOT NULL",
        "TRUNCATE",
        "DELETE FROM",
    ];
    let mut problems = Vec::new();
    for engine in ["sqlite", "postgres"] {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations").join(engine);
        let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            let name = format!("{engine}/{}", file.file_name().unwrap().to_string_lossy());
            let mut previous = "";
            for (n, line) in text.lines().enumerate() {
                let code = line.split("--").next().unwrap().to_uppercase();
                let marked = previous.trim_start().starts_with("-- contract:");
                previous = line;
                if marked {
                    continue;
                }
                for word in destructive {
                    if code.contains(word) {
                        problems.push(format!("{name}:{}: {word} without a `-- contract:` line before it", n + 1));
                    }
                }
                if code.contains("ADD COLUMN") && code.contains("NOT NULL") && !code.contains("DEFAULT") {
                    problems.push(format!("{name}:{}: a NOT NULL column without a default", n + 1));
                }
                if let Some(rest) = code.trim().strip_prefix("DROP INDEX ") {
                    let index = rest.trim_end_matches(';').trim().trim_start_matches("IF EXISTS ").to_owned();
                    let rebuilt = text.to_uppercase().contains(&format!("CREATE INDEX {index} "));
                    if !rebuilt {
                        problems.push(format!("{name}:{}: DROP INDEX {index} not created again", n + 1));
                    }
                }
            }
        }
    }
    assert_eq!(problems, Vec::<String>::new());
}

/// The migrations' numbers and names of one engine, in order.
fn versions(engine: &str) -> Vec<(i64, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations").join(engine);
    let mut found: Vec<(i64, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().trim_end_matches(".sql").to_owned();
            let (version, description) = name.split_once('_').unwrap();
            (version.parse().unwrap(), description.to_owned())
        })
        .collect();
    found.sort();
    found
}

/// "Schema N" means the same on both engines: the too-new check, the logs and an operator
/// comparing two databases speak of one list.
#[test]
fn both_engines_number_their_migrations_alike() {
    assert_eq!(versions("sqlite"), versions("postgres"));
}

/// A database migrated before the numbers were the same on both engines (SQLite numbered
/// fair_claims 0003 and periodic_tasks 0004) opens with this release: its records take
/// today's numbers, the one it lacks (0003, rate_buckets: nothing on SQLite) is applied,
/// and what it holds stays.
#[tokio::test]
async fn an_sqlite_database_numbered_the_old_way_upgrades() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old-migrations");
    std::fs::create_dir(&old).unwrap();
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    for (version, description) in versions("sqlite") {
        let renamed = match version {
            20261203000003 => continue,
            20261203000004 => 20261203000003,
            20261203000005 => 20261203000004,
            v => v,
        };
        std::fs::copy(
            here.join(format!("{version}_{description}.sql")),
            old.join(format!("{renamed}_{description}.sql")),
        )
        .unwrap();
    }
    let url = format!("sqlite://{}", dir.path().join("gateway.db").display());
    {
        let options: sqlx::sqlite::SqliteConnectOptions = url.parse().unwrap();
        let mut conn = sqlx::SqliteConnection::connect_with(&options.create_if_missing(true)).await.unwrap();
        sqlx::migrate::Migrator::new(old.as_path()).await.unwrap().run(&mut conn).await.unwrap();
        sqlx::query("INSERT INTO periodic_tasks (name, last_run_at, instance) VALUES ('nsi', 1, 'gw-1')")
            .execute(&mut conn)
            .await
            .unwrap();
        let numbered: Vec<(i64, String)> =
            sqlx::query_as("SELECT version, description FROM _sqlx_migrations WHERE version BETWEEN 20261203000003 AND 20261203000005 ORDER BY version")
                .fetch_all(&mut conn)
                .await
                .unwrap();
        assert_eq!(numbered, [(20261203000003, "fair claims".into()), (20261203000004, "periodic tasks".into())]);
    }
    let config = egisz_gateway::config::Config::load(None, &[("EGISZ__DATABASE__URL".into(), url.clone())]).unwrap();
    let store = egisz_gateway::store::connect(&config.database).await.expect("the old numbering upgrades");
    store.readiness().await.unwrap();
    // Connecting again finds nothing to do.
    egisz_gateway::store::connect(&config.database).await.unwrap().readiness().await.unwrap();
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let recorded: Vec<(i64, String)> =
        sqlx::query_as("SELECT version, description FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    let expected: Vec<(i64, String)> =
        versions("postgres").into_iter().map(|(v, d)| (v, d.replace('_', " "))).collect();
    assert_eq!(recorded, expected);
    let kept: i64 = sqlx::query_scalar("SELECT last_run_at FROM periodic_tasks WHERE name = 'nsi'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(kept, 1, "what the database held stays");
    // The periodic task claims still work on the renumbered schema.
    assert!(
        !store
            .claim_periodic("nsi", "gw-2", egisz_gateway::now(), chrono::DateTime::from_timestamp_millis(0).unwrap())
            .await
            .unwrap()
    );
}

/// The partial index of submissions on their way names the lifecycle's open states in the
/// order the summary's statement names them: the planner uses a partial index only for a
/// statement whose condition implies the index's.
#[test]
fn the_open_index_names_the_open_states() {
    let states: Vec<String> = egisz_gateway::lifecycle::OPEN.iter().map(|s| format!("'{}'", s.as_str())).collect();
    let condition = format!("WHERE status IN ({});", states.join(", "));
    for engine in ["sqlite", "postgres"] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("migrations/{engine}/20261206000003_open_by_organization.sql"));
        let text = std::fs::read_to_string(path).unwrap();
        assert!(text.contains(&condition), "{engine}: the index's condition is not {condition}");
    }
}
