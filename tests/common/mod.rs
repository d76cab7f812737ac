//! The test harness: the real gateway on port 0, a fresh database (SQLite file or a new
//! PostgreSQL database on the server at 127.0.0.1:5432), the sandbox FRMR as upstream.
#![allow(dead_code, reason = "each test binary uses part of the harness")]

pub mod binary;
pub mod flood;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use egisz_contract::remd::{Coded, Patient, PersonalSignature, RegisterDocument, SignatureData, Signer};
use egisz_contract::{Oid, Personal, Snils};
use egisz_gateway::app::{self, RunningGateway};
use egisz_gateway::auth::{self, Role, Scope};
use egisz_gateway::config::Config;
use egisz_gateway::store::Store;
use egisz_sandbox::{FrmrSandbox, FrmrSandboxConfig};

/// The author of the shared sample TMK protocol.
pub const AUTHOR_SNILS: &str = "20311784514";
/// Dismissed from [`MO_2917`] on 2022-12-31.
pub const DISMISSED_SNILS: &str = "17450296372";
pub const MO_2917: &str = "1.2.643.5.1.13.13.12.2.42.2917";
/// The shared sample TMK protocol (a copy of `shared/samples/tmk-protocol-40.xml`).
pub const SAMPLE: &str = include_str!("../../semd/tests/data/tmk-protocol-40.xml");
/// The sample's localUid.
pub const SAMPLE_UID: &str = "5b0a3c1e-2f6d-4b8e-9a71-0c3d5e7f9a21";

/// The sample under another localUid.
pub fn sample_as(local_uid: &str) -> String {
    SAMPLE.replace(SAMPLE_UID, local_uid)
}

/// The sample's author as a signer of the GOST test PKI's sandbox CA (valid 2020–2030).
pub fn author_signer() -> egisz_gost::test_pki::TestSigner {
    signer_for(AUTHOR_SNILS)
}

/// The GOST engine (Debian's `libengine-gost-openssl`).
pub fn gost() -> &'static egisz_gost::Gost {
    egisz_gost::Gost::load().expect("the GOST engine (libengine-gost-openssl)")
}

/// The sandbox's GOST test CA: what the gateway's sandbox verifier and the REMD emulator trust.
pub fn sandbox_ca() -> egisz_gost::test_pki::TestCa {
    egisz_gost::test_pki::TestCa::new(gost(), egisz_gost::test_pki::SANDBOX_CA_SEED)
}

/// 2020-01-01 and 2030-01-01, the validity of the test doctors' certificates.
pub const VALID_FROM: i64 = 1_577_836_800;
pub const VALID_TILL: i64 = 1_893_456_000;

/// A test doctor's signer with `snils` in its certificate, valid 2020–2030.
pub fn signer_for(snils: &str) -> egisz_gost::test_pki::TestSigner {
    sandbox_ca().issue_doctor(&format!("doctor-{snils}"), snils, VALID_FROM, VALID_TILL)
}

/// The body of `POST /api/v1/documents` for `document` of kind 40 of [`MO_2917`], signed
/// by `signer`.
pub fn submission_body(document: &[u8], signer: &egisz_gost::test_pki::TestSigner) -> serde_json::Value {
    submission_body_of(MO_2917, document, signer)
}

/// The sample under another localUid, of another organisation (every OID of [`MO_2917`]
/// in it, the custodian's and the ids' roots, moved to `organization`).
pub fn sample_of(organization: &str, local_uid: &str) -> String {
    sample_as(local_uid).replace(MO_2917, organization)
}

/// The body of `POST /api/v1/documents` for `document` of kind 40 of `organization`.
pub fn submission_body_of(
    organization: &str,
    document: &[u8],
    signer: &egisz_gost::test_pki::TestSigner,
) -> serde_json::Value {
    submission_signed_with(organization, document, &signer.sign_detached(document))
}

/// The body of `POST /api/v1/documents` for `document` of kind 40 of `organization`, with
/// `cms` as its one personal signature (role 1).
pub fn submission_signed_with(organization: &str, document: &[u8], cms: &[u8]) -> serde_json::Value {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    serde_json::json!({
        "kind": 40, "organization": organization, "document": b64.encode(document),
        "signatures": [{"role": "1", "role_version": "2.4", "data": b64.encode(cms)}],
    })
}

/// A `sendRegisterDocumentResult` call (SOAP 1.2) reporting success for `relates_to`, naming
/// `local_uid` and `organization` (either left out when `None`).
pub fn success_call(
    remd_message: &str,
    relates_to: &str,
    local_uid: Option<&str>,
    organization: Option<&str>,
) -> Vec<u8> {
    use egisz_contract::remd::{RegisterResult, RegistryItem, ResultStatus};
    let result = RegisterResult {
        message_id: remd_message.into(),
        relates_to_message: relates_to.into(),
        status: ResultStatus::Success,
        kind: Some(40),
        organization: organization.map(Into::into),
        local_uid: local_uid.map(Into::into),
        creation_date_time: None,
        registry_item: Some(RegistryItem {
            emdr_id: "16.62.23.09.666666666".into(),
            local_uid: None,
            kind: Some(40),
            registration_date_time: None,
            store_till_date: None,
            document_version: None,
        }),
        errors: vec![],
    };
    egisz_remd::write_register_document_result(egisz_remd::SoapVersion::Soap12, &result)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// Where PostgreSQL tests create their databases.
pub fn postgres_admin_url() -> String {
    std::env::var("EGISZ_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A fresh database, dropped (PostgreSQL) or deleted (SQLite) at the end of the test.
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg_name: Option<String>,
}

impl TestDb {
    pub async fn new(db: Db) -> TestDb {
        match db {
            Db::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}/gateway.db", dir.path().display());
                TestDb { url, _dir: Some(dir), pg_name: None }
            }
            Db::Postgres => {
                use sqlx::Connection;
                let admin = postgres_admin_url();
                let name = format!("egisz_test_{}", uuid::Uuid::new_v4().simple());
                let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap_or_else(|e| {
                    panic!("PostgreSQL tests need a server at {admin} ({e}); set EGISZ_TEST_POSTGRES_URL")
                });
                sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.expect("create database");
                let base = admin.rsplit_once('/').map(|(b, _)| b.to_owned()).unwrap_or(admin);
                TestDb { url: format!("{base}/{name}"), _dir: None, pg_name: Some(name) }
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.pg_name.take() else { return };
        let admin = postgres_admin_url();
        // Drop runs inside the test's runtime; do the async cleanup on a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async move {
                use sqlx::Connection;
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                    let _ =
                        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn).await;
                }
            });
        })
        .join();
    }
}

/// The configuration tests start from: every listener on port 0, the given database,
/// every service an emulator (FRMR the test's own, at its address; see [`TestEnv::start_on`]),
/// quick retries.
pub fn test_config(db_url: &str, frmr: &FrmrSandbox) -> Config {
    let env = [
        ("EGISZ__DATABASE__URL", db_url.to_owned()),
        ("EGISZ__API__LISTEN", "127.0.0.1:0".into()),
        ("EGISZ__REMD_LISTENER__LISTEN", "127.0.0.1:0".into()),
        ("EGISZ__FRMR__MODE", "sandbox".into()),
        ("EGISZ__FRMR__BASE_URL", frmr.base_url()),
        ("EGISZ__FRMR__TOKEN", "static:sandbox-static-token".into()),
        ("EGISZ__FRMR__RATE_PER_SECOND", "1000".into()),
        ("EGISZ__FRMR__TIMEOUT_MS", "2000".into()),
        ("EGISZ__FRMR__RETRY_MAX_DELAY_MS", "200".into()),
        ("EGISZ__LOG__LEVEL", "warn".into()),
    ]
    .map(|(k, v)| (k.to_owned(), v));
    Config::load(None, &env).expect("test configuration is valid")
}

/// Calls the REMD emulator may count above the rate and burst in one second, measured at
/// its arrival times: the relay reserves slots exactly (`quota`, tested with time
/// passed in), but a call woken within half a slot of its time reaches the emulator later
/// on a loaded machine, next to the following slot's call. A missing limiter, or one per
/// caller, shows tens above.
pub const ARRIVAL_JITTER: u32 = 2;

/// The settings that point a gateway at `frmr` as at a real FRMR: for gateways whose REMD
/// is remote too (no sandbox runs beside a real service).
pub fn remote_frmr_env(frmr: &FrmrSandbox) -> Vec<(String, String)> {
    [
        ("EGISZ__FRMR__MODE", "remote".to_owned()),
        ("EGISZ__FRMR__BASE_URL", frmr.base_url()),
        ("EGISZ__FRMR__TOKEN", "static:sandbox-static-token".to_owned()),
    ]
    .map(|(k, v)| (k.to_owned(), v))
    .into()
}

/// Turns the test configuration into one where every service is real (no sandbox runs
/// beside a real service): FRMR at the test's emulator, REMD at `remd` (an emulator the test
/// runs), the signature verifier off.
pub fn every_service_remote(c: &mut Config, remd: &egisz_sandbox::RemdSandbox) {
    c.frmr.mode = egisz_gateway::config::ServiceMode::Remote;
    c.remd.mode = egisz_gateway::config::ServiceMode::Remote;
    c.remd.endpoint = Some(url::Url::parse(&remd.endpoint()).expect("the emulator's endpoint"));
    c.remd.client_entity_id = Some(remd.client_entity_id().to_owned());
    c.validation.verifier = egisz_gateway::validation::settings::VerifierChoice::None;
    if c.nsi.mode == egisz_gateway::config::NsiMode::Sandbox {
        c.nsi.mode = egisz_gateway::config::NsiMode::Off;
    }
}

/// A registerDocument request for the sample's author and patient (a test fixture for
/// stores and the relay, which do not look at the document).
pub fn register_request(local_uid: &str) -> RegisterDocument {
    RegisterDocument {
        message_id: String::new(),
        kind: 40,
        organization: Oid::parse(MO_2917).unwrap(),
        department: None,
        local_uid: local_uid.to_owned(),
        creation_date_time: "2023-08-18T10:15:00+07:00".parse().unwrap(),
        patient: Patient {
            local_id: "P-0048213".into(),
            snils: Some(Snils::parse("15643219866").unwrap()),
            surname: Personal("Павлова".into()),
            name: Personal("Елена".into()),
            patr_name: Some(Personal("Сергеевна".into())),
            birth_date: Personal("1997-08-05".parse().unwrap()),
            gender: 2,
        },
        checksum: 1,
        personal_signatures: vec![PersonalSignature {
            signer: Signer {
                local_id: "D-1187".into(),
                role: Coded { code: "1".into(), version: "2.4".into() },
                last_name: Personal("Колпинская".into()),
                first_name: Personal("Светлана".into()),
                middle_name: Some(Personal("Александровна".into())),
                snils: Snils::parse("20311784514").unwrap(),
                position: Coded { code: "73".into(), version: "7.5".into() },
                speciality: None,
                department: None,
            },
            signature: SignatureData { data: vec![1, 2, 3], checksum: 55 },
        }],
        org_signature: None,
    }
}

/// One gateway with its database and its FRMR emulator.
pub struct TestEnv {
    pub gw: RunningGateway,
    pub frmr: FrmrSandbox,
    pub db: TestDb,
    pub config: Config,
    pub http: reqwest::Client,
}

impl TestEnv {
    pub async fn start(db: Db) -> TestEnv {
        Self::start_with(db, |_, _| {}).await
    }

    /// Starts with the FRMR check of signers at intake warning instead of refusing: a
    /// signer FRMR does not know (or no longer employs) reaches the REMD emulator, which
    /// refuses the document — the failures ops work on.
    pub async fn start_warning(db: Db) -> TestEnv {
        Self::start_with(db, |c, _| {
            c.validation.signers = egisz_gateway::validation::policy::KindPolicies::uniform(
                egisz_gateway::validation::policy::Policy::Warn,
            )
        })
        .await
    }

    /// Starts with `tweak` applied to the test configuration (it sees the emulator).
    pub async fn start_with(db: Db, tweak: impl FnOnce(&mut Config, &FrmrSandbox)) -> TestEnv {
        Self::start_on(TestDb::new(db).await, tweak).await
    }

    /// Starts on a database the test prepared (seeded through the store, say).
    pub async fn start_on(db: TestDb, tweak: impl FnOnce(&mut Config, &FrmrSandbox)) -> TestEnv {
        let frmr = FrmrSandbox::start(FrmrSandboxConfig::default()).await.expect("sandbox FRMR");
        let mut config = test_config(&db.url, &frmr);
        tweak(&mut config, &frmr);
        let gw = app::start_with(&config, Some(&frmr)).await.expect("gateway starts");
        TestEnv { gw, frmr, db, config, http: http_client() }
    }

    /// Stops the gateway and starts a new one on the same database and emulator.
    pub async fn restart(self) -> TestEnv {
        let TestEnv { gw, frmr, db, config, http } = self;
        gw.shutdown().await;
        let gw = app::start_with(&config, Some(&frmr)).await.expect("gateway restarts");
        TestEnv { gw, frmr, db, config, http }
    }

    pub fn store(&self) -> Arc<dyn Store> {
        self.gw.store()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.gw.api_url(), path)
    }

    /// Creates a client and returns its key.
    pub async fn key(&self, roles: &[Role], orgs: &[&str]) -> String {
        let scope =
            if orgs == ["*"] { Scope::All } else { Scope::Only(orgs.iter().map(|o| Oid::parse(o).unwrap()).collect()) };
        let issued =
            auth::issue("test client", roles.iter().copied().collect::<BTreeSet<_>>(), scope, egisz_gateway::now());
        self.store().insert_client(&issued.client).await.expect("insert client");
        issued.key
    }

    /// A verifier for every organisation.
    pub async fn verifier(&self) -> String {
        self.key(&[Role::Verifier], &["*"]).await
    }

    /// `POST /api/v1/documents` with `body`: the status and the answer's JSON.
    pub async fn submit(&self, key: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
        let res =
            self.http.post(self.url("/api/v1/documents")).bearer_auth(key).json(body).send().await.expect("request");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// `POST /api/v1/documents` with `body`, which must be accepted (`202`): the new
    /// submission's id.
    pub async fn submit_accepted(&self, key: &str, body: &serde_json::Value) -> String {
        let (status, answer) = self.submit(key, body).await;
        assert_eq!(status, 202, "{answer}");
        answer["id"].as_str().expect("the submission's id").to_owned()
    }

    /// The sample under `local_uid`, signed by its author, accepted: the submission's id.
    pub async fn submit_sample(&self, key: &str, local_uid: &str) -> String {
        self.submit_accepted(key, &submission_body(sample_as(local_uid).as_bytes(), &author_signer())).await
    }

    /// The status body of submission `id` (`GET /api/v1/documents/{id}`).
    pub async fn document(&self, key: &str, id: &str) -> serde_json::Value {
        self.get(key, &format!("/api/v1/documents/{id}")).await.json().await.expect("a document's status")
    }

    pub async fn get(&self, key: &str, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).bearer_auth(key).send().await.expect("request")
    }

    pub async fn staff(&self, key: &str, snils: &str, query: &str) -> (u16, serde_json::Value) {
        let res = self.get(key, &format!("/api/v1/staff/{snils}?{query}")).await;
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// The document `id` once it is in `status` (its status body, timeline included);
    /// panics after 30 s.
    pub async fn wait_status(&self, key: &str, id: &str, status: &str) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let doc = self.document(key, id).await;
            if doc["status"] == status {
                return doc;
            }
            assert!(tokio::time::Instant::now() < deadline, "still {} after 30 s: {doc}", doc["status"]);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn shutdown(self) {
        self.gw.shutdown().await;
        self.frmr.shutdown().await;
    }
}

pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("http client")
}

/// Runs each named `async fn name(db: Db)` once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::common::Db::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::common::Db::Postgres).await
                }
            )*
        }
    };
}

/// The lines of a CSV with `;` between fields, each as its fields (quotes undone).
pub fn csv_rows(text: &str) -> Vec<Vec<String>> {
    let mut lines = Vec::new();
    let (mut line, mut field, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            ('"', _) => quoted = !quoted,
            (';', false) => line.push(std::mem::take(&mut field)),
            ('\r', false) => {}
            ('\n', false) => {
                line.push(std::mem::take(&mut field));
                lines.push(std::mem::take(&mut line));
            }
            (c, _) => field.push(c),
        }
    }
    if !field.is_empty() || !line.is_empty() {
        line.push(field);
        lines.push(line);
    }
    lines
}
