//! One API key flooding `POST /api/v1/staff/verify` with batches of random valid SNILS (the
//! greedy client of the fair-shares test and of `examples/staff_flood_bench.rs`), and the
//! timing of another key's lookups beside it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A valid SNILS (control number included) from the 9-digit number `n` (≥ 1,001,999).
pub fn valid_snils(n: u64) -> String {
    let digits = format!("{:09}", n % 1_000_000_000);
    let sum: u32 = digits.bytes().enumerate().map(|(i, b)| u32::from(b - b'0') * (9 - i as u32)).sum();
    let control = match sum {
        s if s < 100 => s,
        100 | 101 => 0,
        s => (s % 101) % 100,
    };
    format!("{digits}{control:02}")
}

/// What the flooding key was answered.
#[derive(Debug, Default)]
pub struct FloodStats {
    pub ok: AtomicU64,
    pub too_many: AtomicU64,
    pub unavailable: AtomicU64,
    pub other: AtomicU64,
    /// A 429 carried `Retry-After`.
    pub retry_after_seen: AtomicBool,
}

/// `parallel` loops, each posting batches of `batch` random valid SNILS for `organization`
/// with `key` until `stop`, one after another (at once again after a 429, as an attacker
/// would).
pub fn flood(
    http: reqwest::Client,
    api: String,
    key: String,
    organization: &str,
    parallel: usize,
    batch: usize,
    stop: Arc<AtomicBool>,
) -> (Arc<FloodStats>, Vec<tokio::task::JoinHandle<()>>) {
    let stats = Arc::new(FloodStats::default());
    let next = Arc::new(AtomicU64::new(2_000_000));
    let tasks = (0..parallel)
        .map(|_| {
            let (http, api, key, stop, stats, next) =
                (http.clone(), api.clone(), key.clone(), stop.clone(), stats.clone(), next.clone());
            let organization = organization.to_owned();
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let first = next.fetch_add(batch as u64, Ordering::Relaxed) * 7919 % 900_000_000 + 2_000_000;
                    let items: Vec<serde_json::Value> = (0..batch as u64)
                        .map(|i| serde_json::json!({ "snils": valid_snils(first + i * 31) }))
                        .collect();
                    let body = serde_json::json!({ "organization": organization, "items": items });
                    let answer =
                        http.post(format!("{api}/api/v1/staff/verify")).bearer_auth(&key).json(&body).send().await;
                    match answer.map(|r| (r.status().as_u16(), r.headers().contains_key("retry-after"))) {
                        Ok((200, _)) => stats.ok.fetch_add(1, Ordering::Relaxed),
                        Ok((429, retry_after)) => {
                            if retry_after {
                                stats.retry_after_seen.store(true, Ordering::Relaxed);
                            }
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            stats.too_many.fetch_add(1, Ordering::Relaxed)
                        }
                        Ok((503, _)) => stats.unavailable.fetch_add(1, Ordering::Relaxed),
                        _ => stats.other.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    (stats, tasks)
}

/// One GET of `path` with `key`: its status, answer and how long it took.
pub async fn timed_get(http: &reqwest::Client, url: &str, key: &str) -> (u16, serde_json::Value, Duration) {
    let started = Instant::now();
    let res = http.get(url).bearer_auth(key).send().await.expect("the gateway answers");
    let status = res.status().as_u16();
    let body = res.json().await.unwrap_or_default();
    (status, body, started.elapsed())
}

/// The `q` quantile (0..=1) of `times`.
pub fn quantile(times: &[Duration], q: f64) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted.get(((sorted.len().max(1) - 1) as f64 * q).round() as usize).copied().unwrap_or_default()
}
