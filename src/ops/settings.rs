//! `[ops]`: operations staff's settings, declared here, where they are used, and filled by
//! the configuration reader ([`crate::config`]); every key is documented for operators in
//! `config/default.toml`.

use std::time::Duration;

/// `[ops]`: operations staff's API and console.
#[derive(Debug, Clone)]
pub struct OpsConfig {
    /// Most submissions one bulk re-run puts back in the queue (`ops.bulk_retry_max`; at
    /// most 1500). Default: 500.
    pub bulk_retry_max: u32,
    /// A submission still on its way to REMD this long after intake is past its deadline
    /// (`ops.registration_deadline`). Default: 24 h.
    pub registration_deadline: Duration,
    /// How long a console sign-in lasts (`ops.session_ttl`). Default: 8 h.
    pub session_ttl: Duration,
    /// Console cookies carry `Secure` (the console is served over HTTPS, e.g. behind a TLS
    /// proxy) (`ops.secure_cookies`). Default: false: plain HTTP on loopback.
    pub secure_cookies: bool,
}
