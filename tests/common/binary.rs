//! The gateway binary as a child process: for the tests that kill, stop and run instances
//! side by side (behind `egisz_sandbox::Balancer`).

use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

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
        self.sigterm();
        self.child.wait().unwrap()
    }

    /// SIGTERM, without waiting (see [`Gateway::exited`]).
    pub fn sigterm(&self) {
        let sent = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status().expect("kill -TERM");
        assert!(sent.success(), "SIGTERM sent");
    }

    /// Waits (without blocking the runtime) for the process to exit.
    pub async fn exited(&mut self) -> ExitStatus {
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
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
