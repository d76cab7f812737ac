//! An emulator of the signature verification service a deployment puts in front of its
//! certified GOST provider (the contract of `docs/validation.md`, "The verification
//! service"): `POST /verify` with `{"cms": "<base64>"}` answers `{"valid": true}` or
//! `{"valid": false, "errors": [{"code", "message"}]}`, verifying GOST signatures with the
//! gateway's own backend, trusting the CA it is given. Faults: answer 503, hang, drop every connection, or say
//! `CA_INACCESSIBILITY`; counters of calls by outcome.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use egisz_semd::SignatureVerifier;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::net::{Gate, Stalled, spawn_server};

/// How the emulator misbehaves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerifierFault {
    #[default]
    None,
    /// Every call answers 503.
    ServerError,
    /// Calls are never answered.
    Hang,
    /// Connections are dropped at once.
    Down,
    /// Every call answers "the CA cannot be reached" (no verdict).
    CaInaccessible,
}

/// Calls the emulator has seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VerifierStats {
    pub valid: u64,
    pub invalid: u64,
    pub faulted: u64,
    pub refused_connections: u64,
}

struct Shared {
    verifier: egisz_verifier::gost::GostVerifier,
    fault: Mutex<VerifierFault>,
    stats: Mutex<VerifierStats>,
    stalled: Stalled,
    down: watch::Sender<bool>,
}

/// The running emulator.
pub struct VerifierSandbox {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

#[derive(Deserialize)]
struct VerifyIn {
    cms: String,
}

impl VerifierSandbox {
    /// Listens on loopback (`port` 0: any free port), trusting `ca_der` (DER).
    pub async fn start(port: u16, ca_der: &[u8]) -> io::Result<Self> {
        let verifier = crate::remd::verifier_trusting(&[ca_der.to_vec()])?;
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await?;
        let addr = listener.local_addr()?;
        let (down, down_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            verifier,
            fault: Mutex::new(VerifierFault::None),
            stats: Mutex::new(VerifierStats::default()),
            stalled: Stalled::default(),
            down,
        });
        let on_drop = {
            let shared = Arc::clone(&shared);
            Arc::new(move || shared.stats.lock().unwrap_or_else(|p| p.into_inner()).refused_connections += 1)
        };
        let router = Router::new()
            .route("/verify", post(verify))
            .layer(DefaultBodyLimit::max(1024 * 1024))
            .with_state(Arc::clone(&shared));
        let (shutdown, shutdown_rx) = watch::channel(false);
        let task = spawn_server(
            "verifier",
            listener,
            router,
            Some(Gate { down: down_rx, on_drop }),
            shared.stalled.clone(),
            shutdown_rx,
        );
        Ok(Self { addr, shared, shutdown, task })
    }

    /// The URL to configure as `validation.verifier_url`.
    pub fn url(&self) -> String {
        format!("http://{}/verify", self.addr)
    }

    pub fn set_fault(&self, fault: VerifierFault) {
        *self.shared.fault.lock().unwrap_or_else(|p| p.into_inner()) = fault;
        self.shared.down.send_replace(fault == VerifierFault::Down);
    }

    pub fn stats(&self) -> VerifierStats {
        *self.shared.stats.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub async fn stop(self) {
        self.shutdown.send_replace(true);
        let _ = self.task.await;
    }
}

fn count(shared: &Shared, f: impl FnOnce(&mut VerifierStats)) {
    f(&mut shared.stats.lock().unwrap_or_else(|p| p.into_inner()));
}

async fn verify(
    State(shared): State<Arc<Shared>>,
    body: Result<Json<VerifyIn>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let fault = *shared.fault.lock().unwrap_or_else(|p| p.into_inner());
    match fault {
        VerifierFault::None | VerifierFault::Down => {}
        VerifierFault::ServerError => {
            count(&shared, |s| s.faulted += 1);
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
        VerifierFault::Hang => {
            count(&shared, |s| s.faulted += 1);
            let _stalled = shared.stalled.enter();
            std::future::pending::<()>().await;
        }
        VerifierFault::CaInaccessible => {
            count(&shared, |s| s.faulted += 1);
            return Json(
                json!({"valid": false, "errors": [{"code": "CA_INACCESSIBILITY", "message": "OCSP недоступен"}]}),
            )
            .into_response();
        }
    }
    let Ok(Json(body)) = body else {
        return (StatusCode::BAD_REQUEST, "expected {\"cms\": \"<base64>\"}").into_response();
    };
    let Ok(der) = base64::engine::general_purpose::STANDARD.decode(body.cms.trim()) else {
        return (StatusCode::BAD_REQUEST, "cms is not base64").into_response();
    };
    let verdict = match egisz_semd::parse_signature(&der) {
        Err(violations) => violations,
        Ok(parsed) => {
            // The service is sent the container only: it judges the chain at the signing time
            // the container gives, or now.
            let at = parsed.signing_time.unwrap_or_else(chrono::Utc::now).fixed_offset();
            shared.verifier.verify(&parsed, &[], at).await.unwrap_or_default()
        }
    };
    if verdict.is_empty() {
        count(&shared, |s| s.valid += 1);
        Json(json!({"valid": true})).into_response()
    } else {
        count(&shared, |s| s.invalid += 1);
        let errors: Vec<_> = verdict.iter().map(|v| json!({"code": v.rule, "message": v.message})).collect();
        Json(json!({"valid": false, "errors": errors})).into_response()
    }
}
