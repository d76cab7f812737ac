//! A TCP balancer on loopback, as nginx would stand in front of several gateway instances:
//! each connection goes to the next backend in turn, and to the one after it when that one
//! refuses (`proxy_next_upstream error`). Connections already open to a backend that dies
//! break, as they would behind nginx. For the tests and benchmarks that run instances side
//! by side.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A running balancer; stops when dropped.
#[derive(Debug)]
pub struct Balancer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Balancer {
    /// Listens on a free loopback port and balances over `backends`.
    pub async fn start(backends: Vec<SocketAddr>) -> io::Result<Balancer> {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
        let addr = listener.local_addr()?;
        let backends = Arc::new(backends);
        let turn = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else { continue };
                let (backends, turn) = (Arc::clone(&backends), Arc::clone(&turn));
                tokio::spawn(async move {
                    let first = turn.fetch_add(1, Ordering::Relaxed);
                    for i in 0..backends.len() {
                        let backend = backends[(first + i) % backends.len()];
                        if let Ok(mut outbound) = TcpStream::connect(backend).await {
                            let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                            return;
                        }
                    }
                });
            }
        });
        Ok(Balancer { addr, task })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
