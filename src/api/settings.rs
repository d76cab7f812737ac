//! `[api]`, `[documents]` and `[region]`: the API's settings, declared here, where they are
//! used, and filled by the configuration reader ([`crate::config`]); every key is documented
//! for operators in `config/default.toml`.

use std::net::SocketAddr;
use std::time::Duration;

use chrono::FixedOffset;

use crate::serve::ListenerLimits;

#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// The address the internal API binds (`api.listen`). Default: `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// Most items in one `POST /api/v1/staff/verify` batch (`api.max_batch_items`).
    /// Default: 1000 items.
    pub max_batch_items: usize,
    /// How long a batch verification waits for FRMR before it answers; items not answered
    /// by then come back as `frmr_timeout` (`api.batch_deadline_ms`). Default: 20 s.
    pub batch_deadline: Duration,
    /// How many lookups of one batch run at once (`api.batch_concurrency`).
    /// Default: 8 lookups.
    pub batch_concurrency: usize,
    /// How long an API key that authenticated is remembered in process (`api.key_cache_for`);
    /// zero: off. Default: 10 s.
    pub key_cache_for: Duration,
    /// Documents checked at once (resolved: 0 in the file means one per CPU)
    /// (`api.intake_workers`). Default: 0: one per CPU.
    pub intake_workers: usize,
    /// `POST /api/v1/documents/validate` calls per minute per client; beyond it 429
    /// (`api.validate_per_minute`). Default: 120 calls.
    pub validate_per_minute: u32,
    /// How the listener bounds its clients (`api.max_connections`, `header_read_timeout_ms`,
    /// `idle_timeout`, `body_read_timeout_ms`, `request_timeout_ms`, `body_limit_bytes`).
    /// Defaults: 1024 connections, 10 s, 60 s, 20 s, 30 s, 16 MiB.
    pub limits: ListenerLimits,
}

#[derive(Debug, Clone)]
pub struct DocumentsConfig {
    /// Largest document accepted (the CDA bytes, before base64), in bytes
    /// (`documents.max_bytes`). Default: 10 MiB.
    pub max_bytes: usize,
}

#[derive(Debug, Clone, Copy)]
pub struct RegionConfig {
    /// The region's offset from UTC, used for "today" when a request gives no date
    /// (`region.utc_offset`). Default: `+07:00` (Kuzbass).
    pub utc_offset: FixedOffset,
}
