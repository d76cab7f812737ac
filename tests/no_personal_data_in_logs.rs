//! Runs lookups that succeed, fail and get rejected with every log level on, and checks that
//! no log line carries a SNILS or a name.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::{AUTHOR_SNILS, DISMISSED_SNILS, Db, MO_2917, TestEnv};
use egisz_sandbox::{FaultMode, Faults};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_snils_or_name_in_any_log_line() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        .with_env_filter("trace,sqlx=trace,hyper=info,h2=info,reqwest=trace,tower_http=trace")
        .with_writer(move || writer.clone())
        .json()
        .init();

    let env = TestEnv::start(Db::Sqlite).await;
    let key = env.verifier().await;
    env.staff(&key, AUTHOR_SNILS, &format!("organization={MO_2917}&position=73")).await;
    env.staff(&key, AUTHOR_SNILS, &format!("organization={MO_2917}&position=49")).await;
    env.staff(&key, "112-233-445 96".replace(' ', "%20").as_str(), &format!("organization={MO_2917}")).await;
    env.frmr.set_faults(Faults { mode: FaultMode::ServerError, fail_next: 5, ..Faults::default() });
    env.staff(&key, DISMISSED_SNILS, &format!("organization={MO_2917}")).await;
    env.frmr.set_faults(Faults { mode: FaultMode::Down, ..Faults::default() });
    env.staff(&key, "11223344595", &format!("organization={MO_2917}")).await;
    env.staff("egk_bad", AUTHOR_SNILS, &format!("organization={MO_2917}")).await;
    env.shutdown().await;

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(logs.lines().count() > 20, "the test must actually see logs:\n{logs}");
    assert!(logs.contains(MO_2917), "organisation OIDs are logged (they are not personal data)");
    for secret in [
        AUTHOR_SNILS,
        DISMISSED_SNILS,
        "11223344595",
        "112-233-445",
        "Колпинская",
        "Светлана",
        "Александровна",
        "1981-03-14",
    ] {
        let hits: Vec<&str> = logs.lines().filter(|l| l.contains(secret)).take(3).collect();
        assert!(hits.is_empty(), "{secret} appears in logs:\n{}", hits.join("\n"));
    }
}
