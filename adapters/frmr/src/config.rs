//! Configuration of the FRMR client and where its token comes from.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Calls per second to FRMR when nothing else is configured: a vendor script pauses 0.5 s
/// between calls, and FRMR publishes no limit (FRMR.md).
pub const DEFAULT_RATE_PER_SECOND: f64 = 2.0;
/// Time limit of one HTTP attempt (FRMR or token provider): 5 s.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts per lookup for transient failures, the first one included: 3.
pub const DEFAULT_RETRY_MAX_ATTEMPTS: u32 = 3;
/// First backoff delay: 200 ms.
pub const DEFAULT_RETRY_MIN_DELAY: Duration = Duration::from_millis(200);
/// Largest backoff delay, and the largest `Retry-After` waited out in place: 2 s.
pub const DEFAULT_RETRY_MAX_DELAY: Duration = Duration::from_secs(2);
/// `User-Agent` sent when nothing else is configured: `egisz-gateway/<crate version>`.
pub const DEFAULT_USER_AGENT: &str = concat!("egisz-gateway/", env!("CARGO_PKG_VERSION"));

/// Everything [`crate::FrmrClient::new`] needs. Build it with [`FrmrClientConfig::new`],
/// which fills in the defaults, then adjust fields.
#[derive(Debug, Clone)]
pub struct FrmrClientConfig {
    /// Base URL of the FRMR service behind the federal integration gateway,
    /// `https://<ips host>/<service hash>/`. Request paths are joined relative to it; a
    /// missing trailing slash is added, so `https://ips.host/abc` and
    /// `https://ips.host/abc/` mean the same.
    pub base_url: url::Url,
    /// Where the bearer token comes from.
    pub token: TokenSource,
    /// Calls to FRMR per second, shared by all lookups through this client (default
    /// [`DEFAULT_RATE_PER_SECOND`] = 2.0). Fractional rates work (0.5 = one call every
    /// 2 s). Burst = `max(1, ceil(rate))` calls. Retries and token-refresh retries wait
    /// for the limiter too; token provider calls do not.
    pub rate_per_second: f64,
    /// Time limit of one HTTP attempt, from connecting until the body is read; applies to
    /// FRMR and to the token provider (default [`DEFAULT_TIMEOUT`] = 5 s).
    pub timeout: Duration,
    /// Total attempts for transient failures within one lookup, the first included
    /// (default [`DEFAULT_RETRY_MAX_ATTEMPTS`] = 3; must be at least 1). The single retry
    /// after a 401 with a refreshed token does not count against it.
    pub retry_max_attempts: u32,
    /// First delay of the exponential backoff (factor 2, with jitter) between attempts
    /// (default [`DEFAULT_RETRY_MIN_DELAY`] = 200 ms).
    pub retry_min_delay: Duration,
    /// Cap of the backoff delay (default [`DEFAULT_RETRY_MAX_DELAY`] = 2 s). A server
    /// `Retry-After` up to this long is waited out before the next attempt; a longer one
    /// ends the lookup at once with `Failure::Retry { after: Some(retry_after) }`.
    pub retry_max_delay: Duration,
    /// A PEM file with extra root certificates to trust (e.g. the CA of a TLS-terminating
    /// sidecar), on top of the built-in web PKI roots. Default: none.
    pub extra_ca_bundle: Option<PathBuf>,
    /// `User-Agent` header (default [`DEFAULT_USER_AGENT`]).
    pub user_agent: String,
}

impl FrmrClientConfig {
    /// Runs every check [`crate::FrmrClient::new`] runs on this configuration, without
    /// building a client: the same as [`crate::validate`].
    pub fn validate(&self) -> Result<(), FrmrClientError> {
        crate::client::validate(self)
    }

    /// A configuration with every default filled in.
    pub fn new(base_url: url::Url, token: TokenSource) -> Self {
        Self {
            base_url,
            token,
            rate_per_second: DEFAULT_RATE_PER_SECOND,
            timeout: DEFAULT_TIMEOUT,
            retry_max_attempts: DEFAULT_RETRY_MAX_ATTEMPTS,
            retry_min_delay: DEFAULT_RETRY_MIN_DELAY,
            retry_max_delay: DEFAULT_RETRY_MAX_DELAY,
            extra_ca_bundle: None,
            user_agent: DEFAULT_USER_AGENT.to_owned(),
        }
    }
}

/// Where the bearer token for FRMR comes from (\[model\] per FRMR.md).
///
/// `Debug` never prints a static token.
#[derive(Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// A fixed token (sandbox, tests). A 401 with it is a configuration failure at once.
    Static(String),
    /// A token provider sidecar: `POST <url>` with no body answers
    /// `{"token": "...", "expires_in": 300, "token_type": "Bearer"}`. The token is cached
    /// until 30 s before expiry (or half its lifetime, if that is shorter than 30 s); on
    /// a 401 it is fetched again once.
    Provider(url::Url),
}

impl TokenSource {
    /// Parses `static:<token>` or an `http://` / `https://` URL of a token provider, and
    /// runs every check [`crate::FrmrClient::new`] runs on a token source (a static token
    /// must be printable ASCII without spaces or control characters, so that it can go
    /// into an HTTP header; a provider URL must be http(s) with a host). A source this
    /// accepts is never refused by `new`.
    ///
    /// The error message never repeats the input (it may be a token).
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let source = if let Some(token) = s.strip_prefix("static:") {
            Self::Static(token.to_owned())
        } else {
            let lower = s.to_ascii_lowercase();
            if !(lower.starts_with("http://") || lower.starts_with("https://")) {
                return Err("token source must be `static:<token>` or the http(s) URL of a token provider".to_owned());
            }
            // url's parse errors are fixed texts; they never quote the input.
            Self::Provider(url::Url::parse(s).map_err(|e| format!("token provider URL is not a valid URL: {e}"))?)
        };
        source.check().map_err(|e| format!("token source: {e}"))?;
        Ok(source)
    }

    /// The checks of a token source, shared by [`TokenSource::parse`] and
    /// [`crate::FrmrClient::new`].
    pub(crate) fn check(&self) -> Result<(), &'static str> {
        crate::token::check_source(self)
    }
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenSource::Static(_) => f.write_str("Static(***)"),
            // Scheme, host, port and path only: a URL may carry credentials.
            TokenSource::Provider(url) => write!(f, "Provider({})", egisz_http::redacted_url(url)),
        }
    }
}

/// Why an [`crate::FrmrClient`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum FrmrClientError {
    /// A configuration value is out of range.
    #[error("invalid FRMR client configuration: {0}")]
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
    fn parses_static_tokens() {
        assert_eq!(TokenSource::parse("static:abc.def"), Ok(TokenSource::Static("abc.def".to_owned())));
        assert_eq!(TokenSource::parse("  static:abc  "), Ok(TokenSource::Static("abc".to_owned())));
        assert!(TokenSource::parse("static:").is_err());
        assert!(TokenSource::parse("static:a b").is_err());
        for bad in ["static:a\tb", "static:a\u{1}b", "static:a\u{7f}", "static:токен", "static:a\"b c"] {
            let err = TokenSource::parse(bad).unwrap_err();
            assert!(!err.contains(&bad[7..]), "{err}");
        }
    }

    #[test]
    fn parses_provider_urls() {
        assert_eq!(
            TokenSource::parse("http://127.0.0.1:8081/token"),
            Ok(TokenSource::Provider(url::Url::parse("http://127.0.0.1:8081/token").unwrap()))
        );
        assert!(matches!(TokenSource::parse("https://sidecar.local/token"), Ok(TokenSource::Provider(_))));
        assert!(TokenSource::parse("https://").is_err());
    }

    #[test]
    fn rejects_everything_else_without_echoing_it() {
        for bad in ["", "secret-token", "ftp://host/token", "Static:x", "file:///tmp/t"] {
            let err = TokenSource::parse(bad).unwrap_err();
            assert!(err.contains("static:<token>"), "{err}");
            if !bad.is_empty() {
                assert!(!err.contains(bad), "{err}");
            }
        }
    }

    #[test]
    fn debug_hides_the_token() {
        let s = TokenSource::Static("very-secret".to_owned());
        assert_eq!(format!("{s:?}"), "Static(***)");
        let p = TokenSource::parse("https://user:pw@sidecar.local:8443/token?key=k").unwrap();
        let shown = format!("{p:?}");
        assert_eq!(shown, "Provider(https://sidecar.local:8443/token)");
    }
}
