//! The oracle crash test: the gateway binary, a child process, is SIGKILLed 20 times at
//! random moments while documents flow at concurrency 8 — intakes in flight at every kill —
//! and started again each time on the same database. The oracle is the set of ids the
//! gateway answered `202` (or `200`) for: every one of them must end registered, exactly once
//! in the register, and the work a kill left in flight must resume promptly after a restart.
//! On PostgreSQL the database also becomes unreachable for 10 s once (a loopback TCP proxy
//! between the gateway and the server is cut, then restored): intake answers `503`
//! meanwhile, nothing acknowledged is lost, and work resumes.
//!
//! REMD (the emulator) runs in the test process, so it outlives the gateway; the gateway
//! talks to it in remote mode, as it would to the real one. It loses the results it cannot
//! deliver while the gateway is down; the gateway's look-ups recover them.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::binary::{Gateway, free_port, wait_ready};
use common::{Db, MO_2917, TestDb, author_signer, remote_frmr_env, sample_as, submission_body};
use egisz_contract::Oid;
use egisz_gateway::auth::{self, Role, Scope};
use egisz_gateway::config::Config;
use egisz_gateway::store;
use egisz_sandbox::{FrmrSandbox, FrmrSandboxConfig, RemdSandbox, RemdSandboxConfig};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::net::{TcpListener, TcpStream};

on_both_backends!(every_acknowledged_document_survives_twenty_kills);

const KILLS: usize = 20;
/// Documents each life of the gateway acknowledges before it is killed.
const ACKS_PER_LIFE: usize = 10;
const CONCURRENCY: usize = 8;

/// The two backends take turns: each run loads both cores.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A loopback TCP proxy to PostgreSQL that can be cut (every connection dropped, new ones
/// refused) and restored.
struct DbProxy {
    port: u16,
    down: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl DbProxy {
    async fn start(upstream: &'static str) -> DbProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let down = Arc::new(AtomicBool::new(false));
        let connections: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let (d, c) = (Arc::clone(&down), Arc::clone(&connections));
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else { continue };
                if d.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                c.lock().unwrap().push(task.abort_handle());
            }
        });
        DbProxy { port, down, connections }
    }

    fn cut(&self) {
        self.down.store(true, Ordering::SeqCst);
        for c in self.connections.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    fn restore(&self) {
        self.down.store(false, Ordering::SeqCst);
    }
}

/// What the load generator saw.
#[derive(Default)]
struct Seen {
    /// localUids the gateway acknowledged (202, or 200 for a repeat).
    acknowledged: Mutex<HashSet<String>>,
    /// Answers by status while the database was cut.
    during_outage: Mutex<HashMap<u16, usize>>,
    /// Answers in 5xx outside the outage (must be none).
    unexpected: Mutex<Vec<String>>,
    /// Requests cut off by a kill (no answer).
    cut_off: AtomicUsize,
}

async fn every_acknowledged_document_survives_twenty_kills(db: Db) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let test_db = TestDb::new(db).await;
    let proxy = match db {
        Db::Postgres => Some(DbProxy::start("127.0.0.1:5432").await),
        Db::Sqlite => None,
    };
    // The gateway reaches PostgreSQL through the proxy; the test itself directly.
    let gateway_db_url = match &proxy {
        Some(p) => test_db.url.replace("127.0.0.1:5432", &format!("127.0.0.1:{}", p.port)),
        None => test_db.url.clone(),
    };
    let scratch = tempfile::tempdir().unwrap();
    let (api_port, listener_port) = (free_port(), free_port());
    let api = format!("http://127.0.0.1:{api_port}");
    let remd = RemdSandbox::start(RemdSandboxConfig {
        callback_url: Some(format!("http://127.0.0.1:{listener_port}/")),
        // REMD takes its time, so that kills find documents at every stage.
        processing_delay: Duration::from_millis(200),
        ..RemdSandboxConfig::default()
    })
    .await
    .unwrap();
    // FRMR as a real service too: no sandbox runs beside a remote REMD.
    let frmr = FrmrSandbox::start(FrmrSandboxConfig::default()).await.unwrap();
    let env: Vec<(String, String)> = [
        ("EGISZ__DATABASE__URL", gateway_db_url),
        ("EGISZ__DATABASE__ACQUIRE_TIMEOUT_MS", "1500".into()),
        ("EGISZ__API__LISTEN", format!("127.0.0.1:{api_port}")),
        ("EGISZ__REMD_LISTENER__LISTEN", format!("127.0.0.1:{listener_port}")),
        ("EGISZ__REMD__MODE", "remote".into()),
        // A remote REMD refuses the sandbox-CA verifier (check-config); the signatures' structure
        // and digests are still checked.
        ("EGISZ__VALIDATION__VERIFIER", "none".into()),
        ("EGISZ__NSI__MODE", "off".into()),
        ("EGISZ__REMD__ENDPOINT", remd.endpoint()),
        ("EGISZ__REMD__CLIENT_ENTITY_ID", remd.client_entity_id().to_owned()),
        ("EGISZ__REMD__TIMEOUT_MS", "1000".into()),
        ("EGISZ__REMD__RATE_PER_SECOND", "100".into()),
        ("EGISZ__REMD__BURST", "10".into()),
        ("EGISZ__RELAY__INSTANCE_ID", "crash-test".into()),
        ("EGISZ__RELAY__CONCURRENCY", "8".into()),
        ("EGISZ__RELAY__LEASE_FOR", "3s".into()),
        ("EGISZ__RELAY__POLL_INTERVAL_MS", "100".into()),
        ("EGISZ__RELAY__RESULT_CHECK_AFTER", "2s".into()),
        ("EGISZ__RELAY__RESULT_DEADLINE", "30s".into()),
        ("EGISZ__RELAY__RECONCILE_AFTER", "200ms".into()),
        ("EGISZ__RELAY__RETRY_BASE", "200ms".into()),
        ("EGISZ__RELAY__RETRY_CAP", "2s".into()),
        ("EGISZ__RELAY__MAX_ATTEMPTS", "1000".into()),
        ("EGISZ__SANDBOX__API_KEY_FILE", format!("{}/key", scratch.path().display())),
        ("EGISZ__LOG__LEVEL", "warn".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .chain(remote_frmr_env(&frmr))
    .collect();

    // A client, made in the database before the gateway starts.
    let direct = Config::load(None, &[("EGISZ__DATABASE__URL".into(), test_db.url.clone())]).unwrap();
    let s = store::connect(&direct.database).await.unwrap();
    let issued = auth::issue(
        "crash test",
        [Role::Submitter, Role::Reader].into_iter().collect(),
        Scope::Only([Oid::parse(MO_2917).unwrap()].into_iter().collect()),
        egisz_gateway::now(),
    );
    s.insert_client(&issued.client).await.unwrap();
    let key = issued.key;

    let signer = author_signer();
    let bodies: Arc<Vec<(String, String)>> = Arc::new(
        (0..4000)
            .map(|i| {
                let uid = format!("crash-{i:05}");
                (uid.clone(), submission_body(sample_as(&uid).as_bytes(), &signer).to_string())
            })
            .collect(),
    );
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).pool_max_idle_per_host(0).build().unwrap();
    let seen = Arc::new(Seen::default());
    let next = Arc::new(AtomicUsize::new(0));
    let outage = Arc::new(AtomicBool::new(false));
    let stop = tokio_util::sync::CancellationToken::new();

    // The load: 8 clients submitting distinct documents, whatever the gateway is doing.
    let mut clients = Vec::new();
    for _ in 0..CONCURRENCY {
        let (http, api, key, bodies, seen, next, outage, stop) = (
            http.clone(),
            api.clone(),
            key.clone(),
            Arc::clone(&bodies),
            Arc::clone(&seen),
            Arc::clone(&next),
            Arc::clone(&outage),
            stop.clone(),
        );
        clients.push(tokio::spawn(async move {
            // Like an MIS: a document not acknowledged (503, or no answer) is sent again.
            let mut current: Option<usize> = None;
            while !stop.is_cancelled() {
                let i = *current.get_or_insert_with(|| next.fetch_add(1, Ordering::SeqCst));
                let Some((uid, body)) = bodies.get(i) else { return };
                let outage_at_send = outage.load(Ordering::SeqCst);
                let sent = http
                    .post(format!("{api}/api/v1/documents"))
                    .bearer_auth(&key)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await;
                match sent {
                    Ok(res) => {
                        let status = res.status().as_u16();
                        let in_outage = outage_at_send || outage.load(Ordering::SeqCst);
                        if in_outage {
                            *seen.during_outage.lock().unwrap().entry(status).or_default() += 1;
                        }
                        if status == 202 || status == 200 {
                            seen.acknowledged.lock().unwrap().insert(uid.clone());
                            current = None;
                        } else if status == 503 {
                            if !in_outage {
                                seen.unexpected.lock().unwrap().push(format!("{uid}: {status}"));
                            }
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        } else {
                            seen.unexpected.lock().unwrap().push(format!("{uid}: {status}"));
                            current = None;
                        }
                    }
                    // The gateway was killed under this request: not acknowledged; again.
                    Err(_) => {
                        seen.cut_off.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
        }));
    }

    let mut rng = StdRng::seed_from_u64(0x0C2A5);
    let mut gateway = Gateway::spawn(&env);
    wait_ready(&http, &api).await;
    for kill in 0..KILLS {
        // Each life of the gateway acknowledges some documents before it is killed (however
        // slow the machine), then lives a random while longer.
        let before = seen.acknowledged.lock().unwrap().len();
        let alive_by = tokio::time::Instant::now() + Duration::from_secs(60);
        while seen.acknowledged.lock().unwrap().len() < before + ACKS_PER_LIFE {
            assert!(tokio::time::Instant::now() < alive_by, "no acknowledgements from a live gateway");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(300..1500))).await;
        if kill == KILLS / 2
            && let Some(p) = &proxy
        {
            // The database goes away for 10 s under a running gateway.
            outage.store(true, Ordering::SeqCst);
            p.cut();
            tokio::time::sleep(Duration::from_secs(10)).await;
            p.restore();
            // Back: ready again within seconds.
            let mut answered = false;
            for _ in 0..300 {
                if http.get(format!("{api}/readyz")).send().await.is_ok_and(|r| r.status() == 200) {
                    answered = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert!(answered, "the gateway is ready again after the database came back");
            // Requests made during the outage may be answered a moment after it, and the pool
            // takes a moment to connect all its connections again: the outage ends for the
            // load 3 s after the gateway says it is ready.
            tokio::time::sleep(Duration::from_secs(3)).await;
            outage.store(false, Ordering::SeqCst);
        }
        gateway.kill();
        gateway = Gateway::spawn(&env);
        wait_ready(&http, &api).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.cancel();
    for c in clients {
        c.await.unwrap();
    }
    let acknowledged = seen.acknowledged.lock().unwrap().clone();
    eprintln!(
        "{} documents acknowledged over {KILLS} kills, {} requests cut off by them; during the outage: {:?}",
        acknowledged.len(),
        seen.cut_off.load(Ordering::SeqCst),
        seen.during_outage.lock().unwrap()
    );
    assert!(acknowledged.len() >= KILLS * ACKS_PER_LIFE, "the load was real: {}", acknowledged.len());
    let cut_off = seen.cut_off.load(Ordering::SeqCst);
    assert!(cut_off >= KILLS, "intakes were in flight at the kills: {cut_off} requests cut off");
    assert_eq!(*seen.unexpected.lock().unwrap(), Vec::<String>::new(), "only 202/200, and 503 during the outage");
    if proxy.is_some() {
        let during = seen.during_outage.lock().unwrap().clone();
        assert!(
            during.get(&503).copied().unwrap_or(0) > 0,
            "intake answered 503 while the database was away: {during:?}"
        );
        assert!(
            during.keys().all(|s| *s == 503 || *s == 202 || *s == 200),
            "only 503 (or an acknowledgement committed before the cut) during the outage: {during:?}"
        );
    }

    // After the last restart, everything acknowledged is registered: the backlog drains as
    // fast as the machine lets it, and the test fails only when nothing more is registered
    // for 30 s (a document stuck, not a slow machine).
    let mut deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut left = usize::MAX;
    loop {
        let registered: HashSet<String> = remd.registry().into_iter().map(|e| e.local_uid).collect();
        let missing: Vec<&String> = acknowledged.iter().filter(|u| !registered.contains(*u)).collect();
        if missing.is_empty() {
            break;
        }
        if missing.len() < left {
            left = missing.len();
            deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} acknowledged documents not registered, none for 30 s, e.g. {:?}; by status: {:?}",
            missing.len(),
            &missing[..missing.len().min(5)],
            s.count_by_status().await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut per_uid: HashMap<String, usize> = HashMap::new();
    for entry in remd.registry() {
        *per_uid.entry(entry.local_uid).or_default() += 1;
    }
    for (uid, n) in &per_uid {
        assert_eq!(*n, 1, "{uid} registered {n} times");
    }
    // The gateway agrees with the register: each acknowledged document is `registered`.
    let counts = s.count_by_status().await.unwrap();
    let registered = counts.iter().find(|(st, _)| st.as_str() == "registered").map_or(0, |(_, n)| *n);
    assert!(registered as usize >= acknowledged.len(), "{counts:?}");
    drop(gateway);
    remd.shutdown().await;
}
