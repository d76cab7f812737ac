//! Configuration of the REMD client.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Time limit of one call when nothing else is configured: 30 s (REMD checks a request
/// synchronously before it answers `success`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// `User-Agent` sent when nothing else is configured: `egisz-gateway/<crate version>`.
pub const DEFAULT_USER_AGENT: &str = concat!("egisz-gateway/", env!("CARGO_PKG_VERSION"));

/// Everything [`crate::RemdClient::new`] needs. Build it with [`RemdClientConfig::new`],
/// which fills in the defaults, then adjust fields.
#[derive(Clone)]
pub struct RemdClientConfig {
    /// The REMD SOAP endpoint every call is `POST`ed to — in production the local address
    /// of the GOST TLS sidecar (`http://127.0.0.1:<port>/port/emdr`), which forwards to the
    /// endpoint issued at connection time (a test stand looked like
    /// `https://remd-dev.rt-eu.ru/port/emdr`). Used exactly as given.
    pub endpoint: url::Url,
    /// The GUID REMD issued to the registered information system; sent in
    /// `egis:transportHeader/egis:authInfo/egis:clientEntityId` of every request, as
    /// written here (trimmed). Must be a UUID (`1f0e6d3a-0000-4000-8000-000000000042`).
    pub client_entity_id: String,
    /// Time limit of one call, from connecting until the answer is read (default
    /// [`DEFAULT_TIMEOUT`] = 30 s). Connecting has the same limit. When it runs out after
    /// the request was sent, `register_document` ends in `Failure::Unknown`.
    pub timeout: Duration,
    /// A PEM file with extra root certificates to trust (e.g. the CA of a TLS-terminating
    /// sidecar), on top of the built-in web PKI roots. Default: none.
    pub extra_ca_bundle: Option<PathBuf>,
    /// `User-Agent` header (default [`DEFAULT_USER_AGENT`]).
    pub user_agent: String,
}

impl RemdClientConfig {
    /// A configuration with every default filled in.
    pub fn new(endpoint: url::Url, client_entity_id: impl Into<String>) -> Self {
        Self {
            endpoint,
            client_entity_id: client_entity_id.into(),
            timeout: DEFAULT_TIMEOUT,
            extra_ca_bundle: None,
            user_agent: DEFAULT_USER_AGENT.to_owned(),
        }
    }

    /// Runs every check [`crate::RemdClient::new`] runs on this configuration, without
    /// building a client: the same as [`crate::validate`].
    pub fn validate(&self) -> Result<(), RemdClientError> {
        crate::client::validate(self)
    }
}

impl fmt::Debug for RemdClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemdClientConfig")
            .field("endpoint", &redacted_url(&self.endpoint))
            .field("client_entity_id", &self.client_entity_id)
            .field("timeout", &self.timeout)
            .field("extra_ca_bundle", &self.extra_ca_bundle)
            .field("user_agent", &self.user_agent)
            .finish()
    }
}

pub(crate) use egisz_http::redacted_url;

/// Why a [`crate::RemdClient`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RemdClientError {
    /// A configuration value is out of range.
    #[error("invalid REMD client configuration: {0}")]
    InvalidConfig(String),
    /// The extra CA bundle could not be read or holds no usable certificate.
    #[error("extra CA bundle {path}: {reason}")]
    CaBundle { path: PathBuf, reason: String },
    /// The HTTP client could not be built (TLS setup).
    #[error("cannot build the HTTP client: {0}")]
    Http(#[source] reqwest::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_credentials_in_the_endpoint() {
        let c = RemdClientConfig::new(
            url::Url::parse("https://user:pw@remd.local:8443/port/emdr?key=k").unwrap(),
            "1f0e6d3a-0000-4000-8000-000000000042",
        );
        let shown = format!("{c:?}");
        assert!(shown.contains("https://remd.local:8443/port/emdr"), "{shown}");
        assert!(!shown.contains("pw") && !shown.contains("key=k"), "{shown}");
    }
}
