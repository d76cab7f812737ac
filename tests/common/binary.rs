//! The gateway binary as a child process, and a round-robin TCP balancer in front of
//! several of them (as nginx would be): for the tests that kill, stop and run instances
//! side by side.

use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

/// A free loopback port (bound, then released for the child to take).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `egisz-gateway serve` with the given environment; killed when dropped.
pub struct Gateway {
    child: Child,
}

impl Gateway {
    pub fn spawn(env: &[(String, String)]) -> Gateway {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_egisz-gateway"));
        cmd.arg("serve").env_remove("RUST_LOG").stdout(Stdio::null()).stderr(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        Gateway { child: cmd.spawn().expect("the gateway binary starts") }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, as a lost node: nothing is finished.
    pub fn kill(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().unwrap();
    }

    /// SIGTERM, as systemd stops it, and waits for it to exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let sent = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status().expect("kill -TERM");
        assert!(sent.success(), "SIGTERM sent");
        self.child.wait().unwrap()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `api` answers `/healthz` (10 s at most).
pub async fn wait_ready(http: &reqwest::Client, api: &str) {
    for _ in 0..400 {
        if http.get(format!("{api}/healthz")).send().await.is_ok_and(|r| r.status() == 200) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the gateway did not come up");
}

/// A TCP balancer on a loopback port: each connection goes to the next backend in turn,
/// and to the one after it when that one refuses (nginx's `proxy_next_upstream error`).
/// Connections already open to a backend that dies break, as they would behind nginx.
pub struct Balancer {
    pub port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl Balancer {
    pub async fn start(backends: Vec<SocketAddr>) -> Balancer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
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
        Balancer { port, task }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
