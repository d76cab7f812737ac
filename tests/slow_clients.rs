//! Slow and many clients on both listeners: slow-loris connections do not stop `/healthz`,
//! a client that never finishes its headers is disconnected, idle keep-alive connections
//! are closed, and the connection cap holds.

mod common;

use std::time::{Duration, Instant};

use common::{Db, TestEnv};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A connection that sent half a request line and stalls.
async fn stalled(addr: std::net::SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /healthz HT").await.unwrap();
    s
}

/// Whether the server closed `s` within `within`.
async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 256];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

fn addr_of(url: &str) -> std::net::SocketAddr {
    url.trim_start_matches("http://").trim_end_matches('/').parse().unwrap()
}

#[tokio::test]
async fn five_hundred_slow_loris_connections_do_not_stop_healthz() {
    let env = TestEnv::start_with(Db::Sqlite, |c, _| {
        c.api.limits.header_read_timeout = Duration::from_secs(30);
    })
    .await;
    let addr = env.gw.api_addr();
    let mut crowd = Vec::new();
    for _ in 0..500 {
        crowd.push(stalled(addr).await);
    }
    for _ in 0..5 {
        let started = Instant::now();
        let res = env.http.get(env.url("/healthz")).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert!(started.elapsed() < Duration::from_secs(1), "healthz took {:?}", started.elapsed());
    }
    drop(crowd);
    env.shutdown().await;
}

#[tokio::test]
async fn header_read_and_idle_timeouts_close_connections_on_both_listeners() {
    let env = TestEnv::start_with(Db::Sqlite, |c, _| {
        for limits in [&mut c.api.limits, &mut c.remd_listener.limits] {
            limits.header_read_timeout = Duration::from_millis(300);
            limits.idle_timeout = Duration::from_millis(300);
        }
    })
    .await;
    for addr in [env.gw.api_addr(), addr_of(&env.gw.remd_listener_url())] {
        // Never finishes its headers: disconnected.
        let mut slow = stalled(addr).await;
        assert!(closed_within(&mut slow, Duration::from_secs(3)).await, "{addr}: a stalled client is disconnected");

        // A finished request, then silence: the idle connection is closed.
        let mut idle = TcpStream::connect(addr).await.unwrap();
        idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 64];
        assert!(idle.read(&mut buf).await.unwrap() > 0, "{addr}: answered");
        assert!(closed_within(&mut idle, Duration::from_secs(3)).await, "{addr}: an idle connection is closed");
    }
    env.shutdown().await;
}

#[tokio::test]
async fn the_connection_cap_holds_until_slots_free_up() {
    const HEADER_READ: Duration = Duration::from_secs(3);
    let env = TestEnv::start_with(Db::Sqlite, |c, _| {
        c.api.limits.max_connections = 4;
        c.api.limits.header_read_timeout = HEADER_READ;
    })
    .await;
    let addr = env.gw.api_addr();
    // Measured from before the crowd connects: no stalled client can be let go earlier than
    // the header-read timeout after this, however slow the machine.
    let before_crowd = Instant::now();
    let mut crowd = Vec::new();
    for _ in 0..4 {
        crowd.push(stalled(addr).await);
    }
    let res = env.http.get(env.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let waited = before_crowd.elapsed();
    // It waited for the stalled clients to be disconnected (the cap held), and was then
    // answered (not never: the bound is generous, for a loaded machine).
    assert!(waited >= HEADER_READ, "answered after {waited:?} despite the cap");
    assert!(waited < Duration::from_secs(30), "answered after {waited:?}");
    env.shutdown().await;
}

/// A body that trickles in: 408 (a clear client error) once `body_read_timeout` passes, on
/// both listeners, before the request timeout would answer 504.
#[tokio::test]
async fn a_slow_body_gets_408_on_both_listeners() {
    let env = TestEnv::start_with(Db::Sqlite, |c, _| {
        for limits in [&mut c.api.limits, &mut c.remd_listener.limits] {
            limits.body_read_timeout = Duration::from_millis(400);
            limits.request_timeout = Duration::from_secs(5);
        }
    })
    .await;
    let key = env.key(&[egisz_gateway::auth::Role::Submitter], &[common::MO_2917]).await;
    let cases = [
        (env.gw.api_addr(), "/api/v1/documents", "application/json", Some(key.as_str())),
        (addr_of(&env.gw.remd_listener_url()), "/", "application/soap+xml", None),
    ];
    for (addr, path, content_type, key) in cases {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let auth = key.map(|k| format!("Authorization: Bearer {k}\r\n")).unwrap_or_default();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n{auth}Content-Length: 1000\r\n\r\n"
        );
        s.write_all(head.as_bytes()).await.unwrap();
        let started = Instant::now();
        let trickle = async {
            for _ in 0..50 {
                if s.write_all(b"{").await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        let _ = tokio::time::timeout(Duration::from_millis(1500), trickle).await;
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut answer)).await;
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 408"), "{addr}: {answer}");
        assert!(started.elapsed() < Duration::from_secs(5), "{addr}: before the request timeout");
        if key.is_none() {
            assert!(answer.contains("Fault"), "{answer}");
        }
    }
    env.shutdown().await;
}

/// A client that asks and never reads (its window stays shut): once nothing has moved for
/// the idle timeout, its connection is dropped, answer finished or not, and its slot is free.
#[tokio::test]
async fn a_client_that_stops_reading_loses_its_connection() {
    let env = TestEnv::start_with(Db::Sqlite, |c, _| {
        c.api.limits.idle_timeout = Duration::from_millis(300);
        c.api.limits.max_connections = 1;
    })
    .await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut greedy = socket.connect(env.gw.api_addr()).await.unwrap();
    // Many answers asked for at once, none read: the gateway's writes stall.
    let pipelined = "GET /api/openapi.json HTTP/1.1\r\nHost: x\r\n\r\n".repeat(2000);
    let _ = tokio::time::timeout(Duration::from_secs(2), greedy.write_all(pipelined.as_bytes())).await;
    // The only slot comes free: another client is answered.
    let started = Instant::now();
    let res = env.http.get(env.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(5), "waited {:?}", started.elapsed());
    drop(greedy);
    env.shutdown().await;
}
