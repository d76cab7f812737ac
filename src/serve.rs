//! How every listener of the gateway serves its connections: the trust boundary below
//! HTTP routing.
//!
//! - **a cap on connections** ([`ListenerLimits::max_connections`]): past it the listener
//!   stops accepting, and further clients wait in the kernel's backlog, so that a crowd of
//!   clients costs a bounded amount of memory and file descriptors;
//! - **a header-read timeout**: a client that does not send the whole head of a request
//!   within [`ListenerLimits::header_read_timeout`] is disconnected (a slow-loris client
//!   trickling bytes holds nothing for long);
//! - **an idle timeout**: a connection on which no byte moved for
//!   [`ListenerLimits::idle_timeout`] is closed once its request in progress, if any, is
//!   answered;
//! - **admission by address**: an [`Admission`] decides at accept, before a byte is read,
//!   whether the peer is served; a refused peer is sent the prepared refusal (a whole HTTP
//!   `403` answer) once its request head arrived (at most 8 KiB of it read, and discarded)
//!   and disconnected, within a second and without taking one of the listener's connection
//!   slots (refusals have a small cap of
//!   their own, [`REFUSALS_AT_ONCE`]);
//! - **mutual TLS** (optional, where TLS ends in the gateway): a [`TlsGate`] requires a
//!   client certificate of the configured CA, of an admitted subject, before any HTTP;
//! - **a hard end**: a connection asked to close (shutdown, or idle) that does not finish
//!   its answer within a grace period is dropped — a client that stops reading cannot hold
//!   its slot.
//!
//! The request timeout and the body limit are the routers' own layers (the API's and the
//! REMD listener's). HTTP/1.1 only: REMD and the regional systems speak it, and every
//! timeout above applies to it.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// How a listener bounds its clients: connections, and time to send a request. Read by the
/// configuration from each listener's section (`[api]`, `[remd_listener]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerLimits {
    /// Connections served at once (`max_connections`); past it new ones wait in the backlog.
    /// Default: 1024 (`[api]`), 256 (`[remd_listener]`).
    pub max_connections: usize,
    /// How long a client may take to send a request's headers (`header_read_timeout_ms`);
    /// then the connection is closed. Default: 10 s.
    pub header_read_timeout: Duration,
    /// How long a connection may stay open with no request (`idle_timeout`). Default: 60 s.
    pub idle_timeout: Duration,
    /// How long the body of one request may take to arrive (`body_read_timeout_ms`; shorter
    /// than `request_timeout`, so that a slow client gets 408, not the 504 of a slow gateway).
    /// Default: 20 s (`[api]`), 10 s (`[remd_listener]`).
    pub body_read_timeout: Duration,
    /// How long one request may take, answer included (`request_timeout_ms`); past it the
    /// request ends in an error (504 on the API). Default: 30 s.
    pub request_timeout: Duration,
    /// The largest request body taken, in bytes (`body_limit_bytes`); larger ones are refused.
    /// Default: 16 MiB (`[api]`), 1 MiB (`[remd_listener]`).
    pub body_limit_bytes: usize,
}

/// Refusals being written at once; further refused peers are disconnected without one.
pub const REFUSALS_AT_ONCE: usize = 64;
/// How long a refused peer is given to take its refusal.
const REFUSAL_WRITE: Duration = Duration::from_secs(1);
/// How long a connection asked to close because it was idle may take to finish.
const IDLE_GRACE: Duration = Duration::from_secs(1);

/// Who may talk to a listener, decided by the peer's address at accept.
#[derive(Clone)]
pub struct Admission {
    /// `None`: everyone.
    pub allow_from: Option<Vec<ipnet::IpNet>>,
    /// The bytes sent to everyone else: a whole HTTP response (with `Connection: close`).
    pub refusal: Arc<[u8]>,
    /// Called once per refused connection (a metric, a log line).
    pub on_refused: Arc<dyn Fn(SocketAddr) + Send + Sync>,
    /// Mutual TLS, when TLS ends in the gateway: the peer must present a certificate of the
    /// configured CA (and of an allowed subject) before a byte of HTTP is read.
    pub tls: Option<TlsGate>,
}

/// A TLS server configuration that requires client certificates, and the subjects admitted.
#[derive(Clone)]
pub struct TlsGate {
    pub acceptor: tokio_rustls::TlsAcceptor,
    /// RFC 4514 subjects, normalised; empty: any certificate the client CA issued.
    pub allowed_subjects: Vec<String>,
}

impl TlsGate {
    /// From PEM files: the listener's certificate chain and key, the CA bundle client
    /// certificates must chain to, and the subjects admitted (RFC 4514, as
    /// `openssl x509 -noout -subject -nameopt RFC2253` prints them; empty: any).
    pub fn from_files(
        cert: &std::path::Path,
        key: &std::path::Path,
        client_ca: &std::path::Path,
        allowed_subjects: &[String],
    ) -> Result<Self, String> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let read = |p: &std::path::Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&read(cert)?)
            .collect::<Result<_, _>>()
            .map_err(|e| format!("{}: not a PEM certificate chain ({e})", cert.display()))?;
        if chain.is_empty() {
            return Err(format!("{}: no certificate", cert.display()));
        }
        let key = PrivateKeyDer::from_pem_slice(&read(key)?)
            .map_err(|e| format!("{}: not a PEM private key ({e})", key.display()))?;
        let mut roots = rustls::RootCertStore::empty();
        for ca in CertificateDer::pem_slice_iter(&read(client_ca)?) {
            let ca = ca.map_err(|e| format!("{}: not a PEM bundle ({e})", client_ca.display()))?;
            roots.add(ca).map_err(|e| format!("{}: {e}", client_ca.display()))?;
        }
        if roots.is_empty() {
            return Err(format!("{}: no CA certificate", client_ca.display()));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
                .build()
                .map_err(|e| format!("the client CA bundle: {e}"))?;
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .map_err(|e| format!("the listener's certificate and key: {e}"))?;
        let allowed_subjects = allowed_subjects
            .iter()
            .map(|s| normalized_subject(s).ok_or_else(|| format!("not an RFC 4514 subject: {s:?}")))
            .collect::<Result<_, _>>()?;
        Ok(Self { acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)), allowed_subjects })
    }

    /// Whether the peer's (verified) certificate is of an admitted subject.
    fn admits(&self, peer_certificates: Option<&[rustls::pki_types::CertificateDer<'_>]>) -> bool {
        if self.allowed_subjects.is_empty() {
            return true;
        }
        let Some(subject) = peer_certificates.and_then(<[_]>::first).and_then(|der| certificate_subject(der)) else {
            return false;
        };
        self.allowed_subjects.contains(&subject)
    }
}

/// An RFC 4514 subject, parsed and printed again (so spacing and case of attribute names
/// do not matter).
pub fn normalized_subject(text: &str) -> Option<String> {
    use std::str::FromStr;
    // Spaces around the separators (as older tools print them) are not part of the values.
    let mut parts = Vec::new();
    let (mut part, mut escaped) = (String::new(), false);
    for c in text.chars() {
        match c {
            ',' | '+' if !escaped => {
                parts.push((std::mem::take(&mut part).trim().to_owned(), c));
                continue;
            }
            '\\' if !escaped => escaped = true,
            _ => escaped = false,
        }
        part.push(c);
    }
    let mut compact = String::new();
    for (p, separator) in parts {
        compact.push_str(&p);
        compact.push(separator);
    }
    compact.push_str(part.trim());
    x509_cert::name::RdnSequence::from_str(&compact).ok().map(|n| n.to_string())
}

/// The subject of a DER certificate, RFC 4514.
fn certificate_subject(der: &[u8]) -> Option<String> {
    use x509_cert::der::Decode;
    x509_cert::Certificate::from_der(der).ok().map(|c| c.tbs_certificate.subject.to_string())
}

impl Admission {
    /// Everyone is served.
    pub fn everyone() -> Self {
        Self { allow_from: None, refusal: Arc::from(&[][..]), on_refused: Arc::new(|_| {}), tls: None }
    }

    pub fn admits(&self, peer: &SocketAddr) -> bool {
        admits(self.allow_from.as_deref(), peer)
    }
}

/// Whether `peer` is in one of `allow_from` (`None`: everyone). An IPv4 peer reached over
/// an IPv6 socket (`::ffff:a.b.c.d`) is judged by its IPv4 address.
pub fn admits(allow_from: Option<&[ipnet::IpNet]>, peer: &SocketAddr) -> bool {
    let Some(networks) = allow_from else { return true };
    let ip = match peer.ip() {
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(std::net::IpAddr::V6(v6), std::net::IpAddr::V4),
        v4 => v4,
    };
    networks.iter().any(|n| n.contains(&ip))
}

/// Serves `app` on `listener` within `limits` until `shutdown`, then lets the requests in
/// progress finish (at most `drain_for`).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ListenerLimits,
    admission: Admission,
    shutdown: CancellationToken,
    drain_for: Duration,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let refusals = Arc::new(Semaphore::new(REFUSALS_AT_ONCE));
    loop {
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            _ = shutdown.cancelled() => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, say: wait a little instead of spinning.
                    tracing::warn!(error = %e, "a listener could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        if !admission.admits(&peer) {
            drop(slot);
            (admission.on_refused)(peer);
            if let Ok(turn) = Arc::clone(&refusals).try_acquire_owned() {
                let refusal = Arc::clone(&admission.refusal);
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(REFUSAL_WRITE, refuse(stream, &refusal)).await;
                    drop(turn);
                });
            }
            continue;
        }
        let (app, shutdown, admission) = (app.clone(), shutdown.clone(), admission.clone());
        tokio::spawn(async move {
            match &admission.tls {
                None => serve_connection(stream, app, limits, shutdown).await,
                Some(gate) => {
                    // The handshake is bounded like a request head.
                    let handshake =
                        tokio::time::timeout(limits.header_read_timeout, gate.acceptor.accept(stream)).await;
                    match handshake {
                        Ok(Ok(tls)) if gate.admits(tls.get_ref().1.peer_certificates()) => {
                            serve_connection(tls, app, limits, shutdown).await;
                        }
                        Ok(Ok(tls)) => {
                            (admission.on_refused)(peer);
                            let _ = tokio::time::timeout(REFUSAL_WRITE, refuse(tls, &admission.refusal)).await;
                        }
                        Ok(Err(_)) | Err(_) => {
                            // No certificate, one of another CA, or no handshake at all.
                            (admission.on_refused)(peer);
                        }
                    }
                }
            }
            drop(slot);
        });
    }
    // Connections in progress return their slots as they finish.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(drain_for, slots.acquire_many(all)).await.is_err() {
        tracing::warn!(drain_ms = drain_for.as_millis() as u64, "connections still open at shutdown were dropped");
    }
}

/// Reads (and discards) at most the first few KiB of what a refused peer sends — so that an
/// HTTP client sees the refusal as the answer to its request — then sends the refusal.
async fn refuse<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, refusal: &[u8]) {
    let mut head = [0u8; 8192];
    let mut seen = 0;
    while seen < head.len() {
        match stream.read(&mut head[seen..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => seen += n,
        }
        if head[..seen].windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let _ = stream.write_all(refusal).await;
    let _ = stream.shutdown().await;
}

async fn serve_connection<S>(stream: S, app: Router, limits: ListenerLimits, shutdown: CancellationToken)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched { inner: stream, activity: Arc::clone(&activity) });
    let service = TowerToHyperService::new(app.map_request(|req: hyper::Request<Incoming>| req.map(Body::new)));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout).keep_alive(true);
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    let check_every = (limits.idle_timeout / 4).clamp(Duration::from_millis(10), Duration::from_millis(500));
    // When asked to close: by then the connection must be gone, finished or not.
    let mut closing: Option<Instant> = None;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "a connection ended with an error");
                }
                return;
            }
            _ = shutdown.cancelled(), if closing.is_none() => {
                // Requests in progress may finish; the listener drains for as long.
                closing = Some(Instant::now() + limits.request_timeout);
                connection.as_mut().graceful_shutdown();
            }
            _ = tokio::time::sleep(check_every) => match closing {
                None if activity.idle_for() >= limits.idle_timeout => {
                    closing = Some(Instant::now() + IDLE_GRACE);
                    connection.as_mut().graceful_shutdown();
                }
                Some(deadline) if Instant::now() >= deadline => {
                    tracing::debug!("a connection that did not finish closing was dropped");
                    return;
                }
                _ => {}
            },
        }
    }
}

/// When bytes last moved on a connection.
struct Activity {
    origin: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self { origin: Instant::now(), last_ms: AtomicU64::new(0) }
    }

    fn touch(&self) {
        self.last_ms.store(self.origin.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        self.origin.elapsed().saturating_sub(Duration::from_millis(self.last_ms.load(Ordering::Relaxed)))
    }
}

/// A stream that notes when bytes move.
struct Watched<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_compared_normalised() {
        let a = normalized_subject("CN=remd.test,O=Test").unwrap();
        assert_eq!(normalized_subject("CN=remd.test, O=Test").as_deref(), Some(a.as_str()));
        assert_eq!(normalized_subject(" cn=remd.test ,  o=Test ").as_deref(), Some(a.as_str()));
        assert_ne!(normalized_subject("CN=remd.test,O=Other"), Some(a));
        assert_eq!(normalized_subject("no equals sign"), None);
        // An escaped comma belongs to the value.
        assert!(normalized_subject(r"CN=a\, b,O=Test").is_some());
    }

    #[test]
    fn admission_by_network() {
        let nets: Vec<ipnet::IpNet> = vec!["127.0.0.1/8".parse().unwrap(), "10.1.2.0/24".parse().unwrap()];
        let at = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert!(admits(Some(&nets), &at("127.0.0.1:5000")));
        assert!(admits(Some(&nets), &at("127.9.9.9:5000")));
        assert!(admits(Some(&nets), &at("10.1.2.200:5000")));
        assert!(!admits(Some(&nets), &at("10.1.3.1:5000")));
        assert!(!admits(Some(&nets), &at("[::1]:5000")));
        // An IPv4 peer on a dual-stack socket.
        assert!(admits(Some(&nets), &at("[::ffff:10.1.2.3]:5000")));
        assert!(!admits(Some(&[]), &at("127.0.0.1:1")));
        assert!(admits(None, &at("192.0.2.1:1")));
    }
}
