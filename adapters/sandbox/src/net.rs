//! A small HTTP/1 server loop for the emulators.
//!
//! `axum::serve` would do for a healthy service, but an emulator of an unhealthy one must
//! also (a) drop connections at the listener without answering while it is "down", and
//! (b) shut down promptly although some requests are deliberately never answered. So the
//! loop is written out: accept, check the gate, serve the `Router` on the connection with
//! hyper, and on shutdown let connections that are doing real work finish while aborting
//! the ones that are stalled on purpose.

use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{Instant, sleep, sleep_until};
use tracing::{debug, warn};

/// How long shutdown waits for connections that are doing real work (not stalled by a
/// fault) before it aborts them anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A client that sends no complete request head within this time is disconnected.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Pause after a failed `accept` (out of file descriptors and the like) before trying
/// again, so that the loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// Lets a listener refuse connections: while `down` holds `true`, every accepted
/// connection is dropped at once and connections already open are dropped too.
#[derive(Clone)]
pub(crate) struct Gate {
    /// `true` while the listener is down.
    pub down: watch::Receiver<bool>,
    /// Called once for every connection dropped because of `down`.
    pub on_drop: Arc<dyn Fn() + Send + Sync>,
}

/// Counts requests that are stalled on purpose (a hang or injected latency). Shutdown
/// does not wait for connections that carry them.
#[derive(Clone, Debug, Default)]
pub(crate) struct Stalled(Arc<AtomicUsize>);

impl Stalled {
    /// Marks one request as stalled until the guard is dropped (also when the request's
    /// future is dropped because its connection is aborted).
    pub fn enter(&self) -> StalledGuard {
        self.0.fetch_add(1, Ordering::AcqRel);
        StalledGuard(self.0.clone())
    }

    fn count(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }
}

/// See [`Stalled::enter`].
pub(crate) struct StalledGuard(Arc<AtomicUsize>);

impl Drop for StalledGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Serves `router` on `listener` until `shutdown` holds `true` or its sender is dropped.
///
/// The returned task ends after every connection is closed: those with requests in
/// progress get up to [`SHUTDOWN_GRACE`] to finish, except that once only stalled
/// requests remain (see [`Stalled`]) the rest are aborted at once.
pub(crate) fn spawn_server(
    name: &'static str,
    listener: TcpListener,
    router: Router,
    gate: Option<Gate>,
    stalled: Stalled,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                biased;
                () = signalled(&mut shutdown) => break,
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
                accepted = listener.accept() => match accepted {
                    Ok((stream, _peer)) => {
                        if let Some(gate) = &gate
                            && *gate.down.borrow()
                        {
                            drop(stream);
                            (gate.on_drop)();
                            continue;
                        }
                        connections.spawn(serve_connection(
                            stream,
                            router.clone(),
                            gate.clone(),
                            shutdown.clone(),
                        ));
                    }
                    Err(error) => {
                        warn!(server = name, %error, "sandbox: accept failed");
                        sleep(ACCEPT_ERROR_PAUSE).await;
                    }
                }
            }
        }
        drop(listener);

        // Connections saw the same signal and are closing gracefully; wait for the ones
        // doing real work, abort the stalled ones.
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        while connections.len() > stalled.count() {
            tokio::select! {
                _ = connections.join_next() => {}
                () = sleep(Duration::from_millis(10)) => {}
                () = sleep_until(deadline) => {
                    debug!(server = name, left = connections.len(), "sandbox: shutdown grace over");
                    break;
                }
            }
        }
        connections.shutdown().await;
        debug!(server = name, "sandbox: server stopped");
    })
}

/// One connection: HTTP/1 with keep-alive, closed gracefully on shutdown and dropped at
/// once when the gate goes down.
async fn serve_connection(stream: TcpStream, router: Router, gate: Option<Gate>, mut shutdown: watch::Receiver<bool>) {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT);
    let mut connection = pin!(builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(router)));
    let mut down = gate.as_ref().map(|g| g.down.clone());
    let mut closing = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    debug!(%error, "sandbox: connection ended with an error");
                }
                return;
            }
            () = signalled(&mut shutdown), if !closing => {
                connection.as_mut().graceful_shutdown();
                closing = true;
            }
            () = went_down(&mut down) => {
                if let Some(gate) = &gate {
                    (gate.on_drop)();
                }
                return;
            }
        }
    }
}

/// Resolves when the flag is `true` or its sender is gone.
pub(crate) async fn signalled(flag: &mut watch::Receiver<bool>) {
    let _ = flag.wait_for(|&on| on).await;
}

/// Resolves when the gate goes down; never without a gate or once its sender is gone.
async fn went_down(down: &mut Option<watch::Receiver<bool>>) {
    if let Some(down) = down {
        let went_down = down.wait_for(|&on| on).await.is_ok();
        if went_down {
            return;
        }
    }
    std::future::pending::<()>().await;
}
