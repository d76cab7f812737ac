//! An emulator of the federal NSI service's public REST API (`shared/federal/NSI.md`):
//! `GET /versions?identifier=<oid>` and `GET /data?identifier=<oid>&version=<v>&page=<p>&size=<n>`,
//! serving the dictionary versions it is given or that a test publishes, with faults: down,
//! 503, "broken" answers (rows without their code column; not JSON), and a hostile NSI
//! ([`NsiFault::Hostile`]) that attacks each dictionary another way.

use std::collections::BTreeMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::frmo::{self, Frmo};
use crate::net::{Gate, Stalled, spawn_server};

/// The columns NSI names the code and the name of a dictionary by (as clients read them).
fn columns(oid: &str) -> (&'static str, &'static str) {
    match oid {
        "1.2.643.5.1.13.13.99.2.305" | "1.2.643.5.1.13.13.99.2.285" | "1.2.643.5.1.13.13.99.2.197" => ("CODE", "NAME"),
        _ => ("ID", "NAME"),
    }
}

/// How the emulator misbehaves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NsiFault {
    #[default]
    None,
    /// Connections are dropped at once.
    Down,
    /// Every call answers 503.
    ServerError,
    /// `data` rows come without their code column.
    MissingColumn,
    /// Answers are not JSON.
    NotJson,
    /// Every dictionary is attacked, each its own way, with rows made as they are served
    /// (nothing held): a version "999.1" with names of 100 KB (REMD codes, confidentiality,
    /// sections), one that claims 5,000,000 rows (document kinds), rows of a thousand extra
    /// columns (CDA document types), 8 MB of names of 4 KB (positions), and, for gender, the
    /// version the gateway ships ("2.1") with other names; FRMO's organisations claim
    /// 3,000,000 rows, and its departments break on the sixth page with an OID of 200 bytes.
    Hostile,
}

/// The newest version a hostile NSI lists.
pub const HOSTILE_VERSION: &str = "999.1";

/// What a hostile NSI serves for `oid`: `(version, total rows, one row's JSON)`.
fn hostile(oid: &str) -> (&'static str, usize, fn(usize) -> Value) {
    match oid {
        "1.2.643.5.1.13.13.11.1520" => (HOSTILE_VERSION, 5_000_000, |i| json!({"ID": i.to_string(), "NAME": "вид"})),
        "1.2.643.5.1.13.13.11.1522" => (HOSTILE_VERSION, 1000, |i| {
            let mut row: Map<String, Value> = (0..1000).map(|c| (format!("x{c}"), Value::from(c))).collect();
            row.insert("ID".into(), Value::String(i.to_string()));
            row.insert("NAME".into(), Value::String(format!("тип {i}")));
            Value::Object(row)
        }),
        "1.2.643.5.1.13.13.11.1002" => {
            (HOSTILE_VERSION, 2000, |i| json!({"ID": i.to_string(), "NAME": "д".repeat(2000)}))
        }
        "1.2.643.5.1.13.13.11.1040" => ("2.1", 3, |i| json!({"ID": (i + 1).to_string(), "NAME": "подмена"})),
        frmo::ORGANIZATIONS => {
            (HOSTILE_VERSION, 3_000_000, |i| json!({"oid": format!("1.2.643.5.1.13.13.12.2.1.{i}"), "name_full": "МО"}))
        }
        // Five good pages, then a row whose OID is 200 bytes.
        frmo::DEPARTMENTS => (HOSTILE_VERSION, 3000, |i| {
            let oid = if i == 2600 { "1.".repeat(100) } else { format!("1.2.643.5.1.13.13.12.2.1.1.0.{i}") };
            json!({"depart_oid": oid, "mo_oid": "1.2.643.5.1.13.13.12.2.1.1"})
        }),
        _ => (
            HOSTILE_VERSION,
            200,
            |i| json!({"CODE": i.to_string(), "ID": i.to_string(), "NAME": "x".repeat(100 * 1024)}),
        ),
    }
}

/// One published version: its name and its rows.
type Version = (String, Rows);

/// A version's rows: `(code, name)` pairs, or FRMO's register served in NSI's own columns.
#[derive(Clone)]
enum Rows {
    Pairs(Arc<Vec<(String, String)>>),
    Organizations(Frmo),
    Departments(Frmo),
}

impl Rows {
    fn len(&self) -> usize {
        match self {
            Rows::Pairs(rows) => rows.len(),
            Rows::Organizations(f) => f.organization_count(),
            Rows::Departments(f) => f.department_count(),
        }
    }
}

#[derive(Default)]
struct Dictionaries {
    /// oid → versions in publication order.
    by_oid: BTreeMap<String, Vec<Version>>,
}

struct Shared {
    dictionaries: Mutex<Dictionaries>,
    fault: Mutex<NsiFault>,
    calls: Mutex<u64>,
    down: watch::Sender<bool>,
}

/// The running emulator.
pub struct NsiSandbox {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

#[derive(Deserialize)]
struct VersionsQuery {
    identifier: String,
}

#[derive(Deserialize)]
struct DataQuery {
    identifier: String,
    version: String,
    page: Option<usize>,
    size: Option<usize>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl NsiSandbox {
    /// Listens on loopback (`port` 0: any free port) with no dictionaries.
    pub async fn start(port: u16) -> io::Result<Self> {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await?;
        let addr = listener.local_addr()?;
        let (down, down_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            dictionaries: Mutex::new(Dictionaries::default()),
            fault: Mutex::new(NsiFault::None),
            calls: Mutex::new(0),
            down,
        });
        let router =
            Router::new().route("/versions", get(versions)).route("/data", get(data)).with_state(Arc::clone(&shared));
        let (shutdown, shutdown_rx) = watch::channel(false);
        let gate = Gate { down: down_rx, on_drop: Arc::new(|| {}) };
        let task = spawn_server("nsi", listener, router, Some(gate), Stalled::default(), shutdown_rx);
        Ok(Self { addr, shared, shutdown, task })
    }

    /// The base URL to configure as `nsi.base_url`.
    pub fn base_url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Publishes `version` of `oid` as the newest.
    pub fn publish(&self, oid: &str, version: &str, rows: Vec<(String, String)>) {
        let mut d = lock(&self.shared.dictionaries);
        let versions = d.by_oid.entry(oid.to_owned()).or_default();
        versions.retain(|(v, _)| v != version);
        versions.push((version.to_owned(), Rows::Pairs(Arc::new(rows))));
    }

    /// Publishes `version` of both FRMO dictionaries (organisations and departments) as the
    /// newest, served from `register` as it is read ([`Frmo::country`] holds nothing).
    pub fn publish_frmo(&self, version: &str, register: &Frmo) {
        let mut d = lock(&self.shared.dictionaries);
        for (oid, rows) in [
            (frmo::ORGANIZATIONS, Rows::Organizations(register.clone())),
            (frmo::DEPARTMENTS, Rows::Departments(register.clone())),
        ] {
            let versions = d.by_oid.entry(oid.to_owned()).or_default();
            versions.retain(|(v, _)| v != version);
            versions.push((version.to_owned(), rows));
        }
    }

    /// Takes `version` of `oid` off the list (as NSI withdrawing a version).
    pub fn withdraw(&self, oid: &str, version: &str) {
        if let Some(versions) = lock(&self.shared.dictionaries).by_oid.get_mut(oid) {
            versions.retain(|(v, _)| v != version);
        }
    }

    pub fn set_fault(&self, fault: NsiFault) {
        *lock(&self.shared.fault) = fault;
        self.shared.down.send_replace(fault == NsiFault::Down);
    }

    /// Requests answered so far.
    pub fn calls(&self) -> u64 {
        *lock(&self.shared.calls)
    }

    pub async fn stop(self) {
        self.shutdown.send_replace(true);
        let _ = self.task.await;
    }
}

fn faulted(shared: &Shared) -> Option<Response> {
    *lock(&shared.calls) += 1;
    match *lock(&shared.fault) {
        NsiFault::ServerError => Some(StatusCode::SERVICE_UNAVAILABLE.into_response()),
        NsiFault::NotJson => Some((StatusCode::OK, "<html>maintenance</html>").into_response()),
        _ => None,
    }
}

async fn versions(State(shared): State<Arc<Shared>>, Query(q): Query<VersionsQuery>) -> Response {
    if let Some(r) = faulted(&shared) {
        return r;
    }
    if *lock(&shared.fault) == NsiFault::Hostile {
        let (version, ..) = hostile(&q.identifier);
        return Json(json!({"list": [{"version": version}], "total": 1})).into_response();
    }
    let d = lock(&shared.dictionaries);
    // Newest first, as NSI lists them.
    let list: Vec<Value> = d
        .by_oid
        .get(&q.identifier)
        .into_iter()
        .flatten()
        .rev()
        .map(|(v, _)| json!({"version": v, "publishDate": "2026-01-01"}))
        .collect();
    Json(json!({"list": list, "total": list.len()})).into_response()
}

async fn data(State(shared): State<Arc<Shared>>, Query(q): Query<DataQuery>) -> Response {
    if let Some(r) = faulted(&shared) {
        return r;
    }
    let size = q.size.unwrap_or(100).clamp(1, 1000);
    let page = q.page.unwrap_or(1).max(1);
    if *lock(&shared.fault) == NsiFault::Hostile {
        let (_, total, row) = hostile(&q.identifier);
        let list: Vec<Value> = ((page - 1) * size..(page * size).min(total)).map(row).collect();
        return Json(json!({"list": list, "total": total})).into_response();
    }
    let missing_column = *lock(&shared.fault) == NsiFault::MissingColumn;
    let rows = {
        let d = lock(&shared.dictionaries);
        let found = d.by_oid.get(&q.identifier).and_then(|vs| vs.iter().find(|(v, _)| *v == q.version));
        match found {
            Some((_, rows)) => rows.clone(),
            None => {
                return (StatusCode::NOT_FOUND, Json(json!({"message": "dictionary version not found"})))
                    .into_response();
            }
        }
    };
    let range = ((page - 1) * size).min(rows.len())..(page * size).min(rows.len());
    let list: Vec<Value> = match &rows {
        Rows::Pairs(pairs) => {
            let (code_col, name_col) = columns(&q.identifier);
            pairs[range]
                .iter()
                .map(|(code, name)| {
                    let mut row = Map::new();
                    if !missing_column {
                        row.insert(code_col.to_owned(), Value::String(code.clone()));
                    }
                    row.insert(name_col.to_owned(), Value::String(name.clone()));
                    Value::Object(row)
                })
                .collect()
        }
        Rows::Organizations(f) => {
            range.filter_map(|i| f.organization(i)).map(|r| without(r, "oid", missing_column)).collect()
        }
        Rows::Departments(f) => {
            range.filter_map(|i| f.department(i)).map(|r| without(r, "depart_oid", missing_column)).collect()
        }
    };
    Json(json!({"list": list, "total": rows.len()})).into_response()
}

/// `row` without its `key` column when `drop` (the "broken" answer).
fn without(mut row: Value, key: &str, drop: bool) -> Value {
    if drop && let Some(o) = row.as_object_mut() {
        o.remove(key);
    }
    row
}
