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
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::config::ListenerLimits;

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
}

impl Admission {
    /// Everyone is served.
    pub fn everyone() -> Self {
        Self { allow_from: None, refusal: Arc::from(&[][..]), on_refused: Arc::new(|_| {}) }
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
        let (app, shutdown) = (app.clone(), shutdown.clone());
        tokio::spawn(async move {
            serve_connection(stream, app, limits, shutdown).await;
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
async fn refuse(mut stream: TcpStream, refusal: &[u8]) {
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

async fn serve_connection(stream: TcpStream, app: Router, limits: ListenerLimits, shutdown: CancellationToken) {
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
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl AsyncWrite for Watched {
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
