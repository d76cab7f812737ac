//! The one client of an upstream's quota, used by the relay (REMD) and the staff service
//! (FRMR) alike: it reserves a slot from the cluster's bucket when the store shares quotas
//! (PostgreSQL), or from this process's (SQLite, and on PostgreSQL while the shared one
//! cannot be read); sleeps until the slot; gives a slot it woke too late for up and reserves
//! again ([`super::late`], at most [`super::MAX_SLOTS_MISSED`] times in a row); and, turned
//! away by a queue longer than it waits, asks again after the time it was told plus a jitter,
//! so that callers turned away together do not all ask again at once. The arithmetic is the
//! parent module's; this is the I/O around it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{Bucket, Grant, Rate, Reservation, from_row, full, late, reserve, until};
use crate::store::Store;

/// How a caller's wait for its slot went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waited {
    /// From the first reservation to the slot.
    pub waited: Duration,
    /// Slots given up for waking too late.
    pub missed: u32,
}

/// The quota of one upstream (`rate` calls per second, `burst`), for every caller of this
/// process.
pub struct QuotaClient {
    store: Arc<dyn Store>,
    /// The bucket's name in the shared table (`remd`, `frmr`).
    upstream: &'static str,
    rate: f64,
    burst: u32,
    /// How long a caller waits in the cluster's queue at most before it asks again.
    max_wait: Duration,
    shared: bool,
    local: Mutex<Bucket>,
    rng: Mutex<StdRng>,
}

impl QuotaClient {
    pub fn new(store: Arc<dyn Store>, upstream: &'static str, rate: Rate, max_wait: Duration) -> Self {
        let shared = store.shares_quotas();
        let burst = rate.burst.max(1);
        QuotaClient {
            store,
            upstream,
            rate: rate.per_second,
            burst,
            max_wait,
            shared,
            local: Mutex::new(full(crate::now(), burst)),
            rng: Mutex::new(StdRng::from_os_rng()),
        }
    }

    /// Whether the slots come from the bucket every instance on the database shares.
    pub fn shared(&self) -> bool {
        self.shared
    }

    /// Waits for the caller's slot, right before its call.
    pub async fn slot(&self) -> Waited {
        let started = tokio::time::Instant::now();
        let mut missed = 0;
        loop {
            let slot = if self.shared { self.shared_slot().await } else { self.local_slot(crate::now()) };
            tokio::time::sleep(until(slot, crate::now())).await;
            if missed >= super::MAX_SLOTS_MISSED || !late(slot, crate::now(), self.rate) {
                return Waited { waited: started.elapsed(), missed };
            }
            // Woken too late (a busy machine): the upstream would see this call next to the
            // next slot's. The slot is given up; a new one reserved.
            missed += 1;
        }
    }

    /// A slot of the cluster's bucket; of this process's while that cannot be read.
    async fn shared_slot(&self) -> DateTime<Utc> {
        loop {
            let now = crate::now();
            match self.store.quota_reserve(self.upstream, self.rate, self.burst, self.max_wait, now).await {
                Ok(row) => match from_row(row, self.rate, self.max_wait) {
                    Grant::At(slot) => return slot,
                    Grant::Busy(again) => {
                        let jitter = self.rng.lock().unwrap_or_else(|p| p.into_inner()).random_range(0.0..=0.5);
                        tokio::time::sleep(again.mul_f64(1.0 + jitter)).await;
                    }
                },
                Err(e) => {
                    tracing::warn!(
                        upstream = self.upstream,
                        error = %e,
                        "the shared quota could not be read; paced by this instance alone"
                    );
                    return self.local_slot(now);
                }
            }
        }
    }

    /// The next slot of this process's bucket (it waits as long as it takes).
    fn local_slot(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let mut bucket = self.local.lock().unwrap_or_else(|p| p.into_inner());
        match reserve(*bucket, now, self.rate, self.burst, Duration::MAX) {
            Reservation::Slot(next, slot) => {
                *bucket = next;
                slot
            }
            // Not for a caller that waits as long as it takes; were it so, nothing is reserved.
            Reservation::Busy(_, again) => now + chrono::Duration::from_std(again).unwrap_or_default(),
        }
    }
}
