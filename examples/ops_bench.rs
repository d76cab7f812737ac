//! The ops endpoints with a large database: `GET /api/v1/ops/summary`, the weekly
//! `GET /api/v1/reports/remd` and the console's report, the console's failed list (whole, by
//! error code, by OID and by part of a name) and dashboard, the summary and the
//! failed documents for a key limited to ten organisations, against `/healthz` of the same
//! server in the same run.
//!
//! ```sh
//! cargo build --release --example ops_bench
//! target/release/examples/ops_bench --db sqlite   --submissions 1000000 --requests 300
//! target/release/examples/ops_bench --db postgres --submissions 1000000 --requests 300
//! ```
//!
//! Seeds N submissions through the store (intake batches, then operators' changes in
//! batches — no HTTP), spread over the last 365 days and 90 organisations, in the shares a
//! region sees: 90 % registered, 6 % failed (ten codes), 2 % cancelled, 2 % still on their
//! way (awaiting a result, waiting for a retry, being reconciled — none due, so the relay
//! stays idle). A country-sized FRMO copy (80,000 organisations, 400,000 departments) naming
//! the 90 is fetched from the NSI emulator by the gateway's refresh, so pages show names. Folds the count notes, runs `VACUUM ANALYZE` (PostgreSQL; `ANALYZE` on
//! SQLite) as a running server's autovacuum would, then starts the gateway on that database
//! and drives each endpoint R times, four at a time, printing p50 and p99 of each and their
//! ratio to `/healthz`. `--reuse NAME` runs again on a PostgreSQL database a previous run
//! seeded (and keeps it).

use std::time::{Duration, Instant};

use chrono::Utc;
use egisz_contract::Oid;
use egisz_gateway::audit::{Action, NewAudit};
use egisz_gateway::auth::{self, Role, Scope};
use egisz_gateway::config::Config;
use egisz_gateway::submission::{Disposition, Intake, NewSubmission, OpsChange, Status, SubmissionError, Transition};
use futures::StreamExt;
use rand::{Rng, SeedableRng};

struct Args {
    db: String,
    submissions: usize,
    requests: usize,
    /// A PostgreSQL database this bench seeded before (kept, not seeded again).
    reuse: Option<String>,
}

fn args() -> Args {
    let mut a = Args { db: "sqlite".into(), submissions: 1_000_000, requests: 300, reuse: None };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().unwrap_or_default();
        match k.as_str() {
            "--db" => a.db = v,
            "--submissions" => a.submissions = v.parse().expect("--submissions N"),
            "--requests" => a.requests = v.parse().expect("--requests N"),
            "--reuse" => a.reuse = Some(v),
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

const CODES: [&str; 10] = [
    "PERSON_NOT_FOUND",
    "PERSON_POST_IN_FRMR_MISMATCH",
    "INVALID_SIGNATURE",
    "INVALID_DICTIONARY_VERSION",
    "ATTRIBUTE_MISMATCH",
    "PATIENT_NOT_FOUND",
    "ORG_SIGNATURE_OCCURRENCE_MISMATCH",
    "ROLE_OCCURRENCE_MISMATCH",
    "XML_VALIDATION_ERROR",
    "INVALID_ELEMENT_VALUE_NAME",
];

fn organization(i: usize) -> Oid {
    Oid::parse(&format!("1.2.643.5.1.13.13.12.2.42.{}", 2900 + i % 90)).expect("an MO OID")
}

/// Who asks: the key of every organisation, the key of ten, or the console's session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Key,
    Scoped,
    Console,
}

struct Run {
    p50: Duration,
    p99: Duration,
    errors: usize,
}

async fn drive<F, Fut>(n: usize, make: F) -> Run
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let results: Vec<(Duration, bool)> = futures::stream::iter(0..n)
        .map(|i| {
            let f = make(i);
            async move {
                let t = Instant::now();
                let ok = f.await;
                (t.elapsed(), ok)
            }
        })
        .buffer_unordered(4)
        .collect()
        .await;
    let mut lat: Vec<Duration> = results.iter().map(|(d, _)| *d).collect();
    lat.sort();
    Run {
        p50: lat[lat.len() / 2],
        p99: lat[lat.len() * 99 / 100],
        errors: results.iter().filter(|(_, ok)| !ok).count(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = args();
    let dir = tempfile::tempdir()?;
    let pg_name = a.reuse.clone().unwrap_or_else(|| format!("egisz_ops_bench_{}", std::process::id()));
    let url = match a.db.as_str() {
        "postgres" if a.reuse.is_some() => format!("postgres://postgres@127.0.0.1:5432/{pg_name}"),
        "sqlite" => format!("sqlite://{}/bench.db", dir.path().display()),
        "postgres" => {
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect("postgres://postgres@127.0.0.1:5432/postgres").await?;
            sqlx::query(&format!("CREATE DATABASE {pg_name}")).execute(&mut c).await?;
            format!("postgres://postgres@127.0.0.1:5432/{pg_name}")
        }
        other => anyhow::bail!("--db sqlite|postgres, not {other}"),
    };
    let env: Vec<(String, String)> = [
        ("EGISZ__DATABASE__URL", url),
        ("EGISZ__API__LISTEN", "127.0.0.1:0".to_owned()),
        ("EGISZ__REMD_LISTENER__LISTEN", "127.0.0.1:0".to_owned()),
        ("EGISZ__SANDBOX__API_KEY_FILE", format!("{}/key", dir.path().display())),
        ("EGISZ__LOG__LEVEL", "warn".to_owned()),
        // The FRMO copy is the one seeded below; no NSI refresh replaces it.
        ("EGISZ__NSI__MODE", "off".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let config = Config::load(None, &env)?;
    egisz_gateway::telemetry::init(&config.log);

    // Seed through the store, before the gateway runs.
    let started = Instant::now();
    if a.reuse.is_none() {
        let store = egisz_gateway::store::connect(&config.database).await?;
        let mut rng = rand::rngs::StdRng::seed_from_u64(42);
        let now = egisz_gateway::now();
        let far = now + chrono::Duration::days(3650);
        let request = {
            let mut r = template_request();
            r.checksum = 1;
            r
        };
        let batch = 1000;
        for start in (0..a.submissions).step_by(batch) {
            let rows: Vec<NewSubmission> = (start..(start + batch).min(a.submissions))
                .map(|i| {
                    let at = now - chrono::Duration::seconds(rng.random_range(0..365 * 86_400));
                    let local_uid = format!("seed-{i:08}");
                    let mut request = request.clone();
                    request.local_uid = local_uid.clone();
                    request.organization = organization(i);
                    NewSubmission {
                        id: uuid::Uuid::now_v7(),
                        organization: organization(i),
                        local_uid,
                        kind: if i % 10 == 0 { 119 } else { 40 },
                        checksum: 1,
                        content: b"<ClinicalDocument/>".to_vec(),
                        request,
                        created_at: at,
                        actor: "api:seed".into(),
                        warnings: Vec::new(),
                        detail: egisz_gateway::lifecycle::INTAKE_DETAIL.to_owned(),
                    }
                })
                .collect();
            let created: Vec<_> = store
                .intake_batch(&rows)
                .await?
                .into_iter()
                .filter_map(|r| match r {
                    Ok(Intake::Created(rec)) => Some(rec),
                    _ => None,
                })
                .collect();
            let transitions: Vec<(uuid::Uuid, Transition)> = created
                .iter()
                .map(|rec| {
                    let roll = rng.random_range(0..100);
                    let t = match roll {
                        0..90 => Transition {
                            registered_at: Some(rec.created_at + chrono::Duration::minutes(3)),
                            errors: Some(Vec::new()),
                            ..Transition::to(Status::Registered, "remd", "seeded")
                        },
                        90..96 => Transition {
                            errors: Some(vec![SubmissionError {
                                code: CODES[rng.random_range(0..CODES.len())].into(),
                                message: "—".into(),
                                disposition: Disposition::NeedsDataFix,
                                hint_ru: "—".into(),
                            }]),
                            ..Transition::to(Status::Failed, "relay", "seeded")
                        },
                        96..98 => Transition::to(Status::Cancelled, "ops:seed", "seeded"),
                        98 => Transition {
                            awaiting_since: Some(rec.created_at),
                            check_at: Some(far),
                            ..Transition::to(Status::AwaitingResult, "relay", "seeded")
                        },
                        _ => Transition {
                            next_attempt_at: Some(far),
                            ..Transition::to(Status::RetryWait, "relay", "seeded")
                        },
                    };
                    (rec.id, t)
                })
                .collect();
            let changes: Vec<OpsChange<'_>> = transitions
                .iter()
                .map(|(id, t)| OpsChange { id: *id, from: &[Status::Queued], transition: t })
                .collect();
            let audit = NewAudit {
                at: now,
                actor_id: uuid::Uuid::nil(),
                actor_name: "seed".into(),
                action: Action::BulkRetry,
                submission_id: None,
                organization: None,
                filter: None,
                comment: None,
                count: None,
            };
            store.operate(&changes, &audit).await?;
            if start % 100_000 == 0 {
                eprintln!("seeded {start} of {} ({:.0} s)", a.submissions, started.elapsed().as_secs_f64());
            }
        }
    }
    let seeding = started.elapsed();
    // A country-sized FRMO copy naming the 90 organisations, through the NSI emulator and the
    // gateway's own refresh, so that every page shows names as in production.
    let frmo_started = Instant::now();
    if a.reuse.is_none() {
        let store = egisz_gateway::store::connect(&config.database).await?;
        let nsi = egisz_sandbox::NsiSandbox::start(0).await?;
        let mut register = egisz_sandbox::Frmo::country(80_000, 400_000);
        for i in 0..90 {
            let oid = organization(i);
            let name = format!("ГБУЗ «Районная больница № {}» с длинным наименованием, как у настоящих", 2900 + i);
            register.upsert_organization(egisz_sandbox::Frmo::organization_row(oid.as_str(), &name));
        }
        nsi.publish_frmo("1.0", &register);
        let client = egisz_nsi::NsiClient::new(url::Url::parse(&nsi.base_url())?, Duration::from_secs(30))?;
        let results = egisz_gateway::nsi::frmo::Frmo::new().refresh(&client, &*store, egisz_gateway::now()).await;
        anyhow::ensure!(results.iter().all(|r| !r.failed()), "FRMO not seeded: {results:?}");
        nsi.stop().await;
    }
    eprintln!("FRMO seeded in {:.1} s", frmo_started.elapsed().as_secs_f64());
    // What the database noted as rows changed, folded into the kept counts before the run
    // (as the relay does while it runs), so that the run sees the steady state.
    let fold_started = Instant::now();
    let mut folded = 0;
    {
        let store = egisz_gateway::store::connect(&config.database).await?;
        loop {
            let n = store.compact_counts().await?;
            if n == 0 {
                break;
            }
            folded += n;
        }
    }
    eprintln!("folded {folded} count notes in {:.1} s", fold_started.elapsed().as_secs_f64());
    // The planner's statistics, and (PostgreSQL) the dead rows of a million updates cleared,
    // as autovacuum does on a running server — these machines run PostgreSQL with
    // autovacuum off, so the bench does it once, timed.
    let vacuum_started = Instant::now();
    {
        use sqlx::Connection;
        match a.db.as_str() {
            "postgres" => {
                let mut c = sqlx::PgConnection::connect(&config.database.url).await?;
                sqlx::query("VACUUM ANALYZE").execute(&mut c).await?;
            }
            _ => {
                let mut c = sqlx::SqliteConnection::connect(&config.database.url).await?;
                sqlx::query("ANALYZE").execute(&mut c).await?;
            }
        }
    }
    eprintln!("vacuum/analyze took {:.1} s", vacuum_started.elapsed().as_secs_f64());
    let gw = egisz_gateway::app::start(&config).await?;
    let store = gw.store();
    let issued = auth::issue("bench-ops", [Role::Ops].into_iter().collect(), Scope::All, egisz_gateway::now());
    store.insert_client(&issued.client).await?;
    let key = issued.key;
    // An operator of ten organisations: what the organisation filters cost.
    let ten = Scope::Only((0..10).map(organization).collect());
    let scoped = auth::issue("bench-ops-10", [Role::Ops].into_iter().collect(), ten, egisz_gateway::now());
    store.insert_client(&scoped.client).await?;
    let scoped_key = scoped.key;
    // A console session, made as the sign-in makes it.
    let token = &format!("bench-session-{}", uuid::Uuid::new_v4().simple());
    use sha2::Digest;
    let hash = sha2::Sha256::digest(token.as_bytes()).to_vec();
    let now = egisz_gateway::now();
    store.create_session(&hash, issued.client.id, "csrf", now, now + chrono::Duration::hours(1)).await?;
    let cookie = format!("egisz_ops={token}");

    let http = reqwest::Client::builder().pool_max_idle_per_host(8).build()?;
    let base = gw.api_url();
    let get = |path: String, who: Who| {
        let (http, url) = (http.clone(), format!("{base}{path}"));
        let (key, scoped_key, cookie) = (key.clone(), scoped_key.clone(), cookie.clone());
        async move {
            let req = http.get(url);
            let req = match who {
                Who::Key => req.bearer_auth(key),
                Who::Scoped => req.bearer_auth(scoped_key),
                Who::Console => req.header("cookie", cookie),
            };
            req.send().await.is_ok_and(|r| r.status() == 200)
        }
    };
    let one = organization(7);
    let week = (Utc::now() - chrono::Duration::days(7)).format("%Y-%m-%d").to_string();
    let runs = [
        ("GET /healthz", "/healthz".to_owned(), Who::Key),
        ("GET /api/v1/ops/summary", "/api/v1/ops/summary".to_owned(), Who::Key),
        ("GET /api/v1/reports/remd (week)", format!("/api/v1/reports/remd?from={week}"), Who::Key),
        ("GET /ops/failed (console)", "/ops/failed".to_owned(), Who::Console),
        ("GET /ops/failed?error_code=…", "/ops/failed?error_code=INVALID_SIGNATURE".to_owned(), Who::Console),
        ("GET /ops/failed?organization=…", format!("/ops/failed?organization={one}"), Who::Console),
        (
            "GET /ops/failed?organization=<part of a name>",
            "/ops/failed?organization=%D0%B1%D0%BE%D0%BB%D1%8C%D0%BD%D0%B8%D1%86%D0%B0%20%E2%84%96%202907".to_owned(),
            Who::Console,
        ),
        ("GET /ops/report (console, week)", format!("/ops/report?week={week}"), Who::Console),
        ("GET /ops/ (dashboard)", "/ops/".to_owned(), Who::Console),
        ("GET /api/v1/ops/summary (10 MOs)", "/api/v1/ops/summary".to_owned(), Who::Scoped),
        ("GET /api/v1/documents?status=failed (10 MOs)", "/api/v1/documents?status=failed".to_owned(), Who::Scoped),
    ];
    let mut results = Vec::new();
    for (name, path, who) in &runs {
        // One warm-up request, then the measured ones.
        let _ = get(path.clone(), *who).await;
        let r = drive(a.requests, |_| get(path.clone(), *who)).await;
        results.push((*name, r));
    }
    println!(
        "== ops bench: {}, {} submissions seeded in {:.0} s, {} requests per endpoint, 4 at a time",
        a.db,
        a.submissions,
        seeding.as_secs_f64(),
        a.requests
    );
    let health_p99 = results[0].1.p99;
    for (name, r) in &results {
        println!(
            "{name:46} p50 {:7.2} ms   p99 {:7.2} ms   p99/healthz {:7.1}   errors {}",
            r.p50.as_secs_f64() * 1000.0,
            r.p99.as_secs_f64() * 1000.0,
            r.p99.as_secs_f64() / health_p99.as_secs_f64(),
            r.errors
        );
    }
    gw.shutdown().await;
    if a.db == "postgres" && a.reuse.is_none() {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect("postgres://postgres@127.0.0.1:5432/postgres").await?;
        sqlx::query(&format!("DROP DATABASE IF EXISTS {pg_name} WITH (FORCE)")).execute(&mut c).await?;
    }
    Ok(())
}

/// A registerDocument request for the sample's patient and author.
fn template_request() -> egisz_contract::remd::RegisterDocument {
    use egisz_contract::remd::{Patient, RegisterDocument};
    use egisz_contract::{Personal, Snils};
    RegisterDocument {
        message_id: String::new(),
        kind: 40,
        organization: organization(0),
        department: None,
        local_uid: String::new(),
        creation_date_time: "2023-08-18T10:15:00+07:00".parse().expect("a time"),
        patient: Patient {
            local_id: "P-0048213".into(),
            snils: Some(Snils::parse("15643219866").expect("a SNILS")),
            surname: Personal("Павлова".into()),
            name: Personal("Елена".into()),
            patr_name: None,
            birth_date: Personal("1997-08-05".parse().expect("a date")),
            gender: 2,
        },
        checksum: 1,
        personal_signatures: vec![],
        org_signature: None,
    }
}
