//! The bearer token: static, or fetched from the token provider sidecar and cached.
//!
//! Tokens never reach a log: [`Token`]'s `Debug` prints `***`, the `Authorization` header
//! is marked sensitive, and no error text here carries a token or a provider answer.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use egisz_contract::CallObserver;
use reqwest::header::{ACCEPT, HeaderValue};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::SERVICE;
use crate::wire::{ACCEPT_JSON, BEARER, DEFAULT_TOKEN_LIFETIME_SECS, TokenResponse};

/// A token is not reused during the last this-much of its lifetime.
const REFRESH_MARGIN: Duration = Duration::from_secs(30);
/// Upper bound on how long a token is cached, whatever the provider says: 1 day.
const MAX_CACHE: Duration = Duration::from_secs(24 * 60 * 60);

/// A bearer token with its ready-made, sensitive `Authorization` header value.
#[derive(Clone)]
pub(crate) struct Token(Arc<HeaderValue>);

impl Token {
    /// `None` when the token cannot go into an HTTP header.
    fn new(token: &str) -> Option<Self> {
        if token.is_empty() {
            return None;
        }
        let mut value = HeaderValue::from_str(&format!("{BEARER} {token}")).ok()?;
        value.set_sensitive(true);
        Some(Self(Arc::new(value)))
    }

    /// The `Authorization` header value, `Bearer <token>`.
    pub(crate) fn authorization(&self) -> HeaderValue {
        (*self.0).clone()
    }

    fn same_as(&self, other: &Token) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(***)")
    }
}

/// Why no token could be had. Texts carry no token and no provider answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TokenError {
    /// The provider is unreachable, timed out or answered 408/429/5xx: try again later.
    Transient(String),
    /// The provider answered 4xx or something that is not a usable token: an
    /// administrator must act.
    Configuration(String),
}

pub(crate) struct Cached {
    token: Token,
    fresh_until: Instant,
}

/// The token source of a client.
pub(crate) enum Tokens {
    Static(Token),
    Provider {
        url: url::Url,
        /// One fetch at a time: callers that find the cache empty queue on the lock and
        /// then find the token the first one fetched.
        cache: Mutex<Option<Cached>>,
    },
}

impl Tokens {
    /// `None` when the static token cannot go into an HTTP header.
    pub(crate) fn new(source: &crate::TokenSource) -> Option<Self> {
        Some(match source {
            crate::TokenSource::Static(token) => Tokens::Static(Token::new(token)?),
            crate::TokenSource::Provider(url) => Tokens::Provider { url: url.clone(), cache: Mutex::new(None) },
        })
    }

    /// True when a rejected token can be replaced by asking the provider again.
    pub(crate) fn refreshable(&self) -> bool {
        matches!(self, Tokens::Provider { .. })
    }

    /// The cached token, or a freshly fetched one.
    pub(crate) async fn get(&self, http: &reqwest::Client, observer: &dyn CallObserver) -> Result<Token, TokenError> {
        let (url, cache) = match self {
            Tokens::Static(token) => return Ok(token.clone()),
            Tokens::Provider { url, cache } => (url, cache),
        };
        let mut cached = cache.lock().await;
        if let Some(c) = cached.as_ref()
            && Instant::now() < c.fresh_until
        {
            return Ok(c.token.clone());
        }
        *cached = None;
        let fetched = fetch(http, url).await;
        observer.token_fetched(SERVICE, fetched.is_ok());
        let (token, lifetime) = match fetched {
            Ok(ok) => ok,
            Err(e) => {
                tracing::warn!(error = ?e, "token provider failed");
                return Err(e);
            }
        };
        let keep = cache_duration(lifetime);
        tracing::debug!(cached_for_s = keep.as_secs(), "token fetched");
        *cached = Some(Cached { token: token.clone(), fresh_until: Instant::now() + keep });
        Ok(token)
    }

    /// Forgets `used` (FRMR rejected it), unless another caller already replaced it.
    pub(crate) async fn invalidate(&self, used: &Token) {
        if let Tokens::Provider { cache, .. } = self {
            let mut cached = cache.lock().await;
            if cached.as_ref().is_some_and(|c| c.token.same_as(used)) {
                *cached = None;
            }
        }
    }
}

/// How long a token with `lifetime` is reused: until [`REFRESH_MARGIN`] before expiry, or
/// until half its lifetime when the lifetime is shorter than twice the margin.
pub(crate) fn cache_duration(lifetime: Duration) -> Duration {
    let margin = REFRESH_MARGIN.min(lifetime / 2);
    lifetime.saturating_sub(margin).min(MAX_CACHE)
}

/// `POST <provider>` with no body; returns the token and its lifetime.
async fn fetch(http: &reqwest::Client, url: &url::Url) -> Result<(Token, Duration), TokenError> {
    let response = http.post(url.clone()).header(ACCEPT, ACCEPT_JSON).send().await.map_err(|e| {
        TokenError::Transient(if e.is_timeout() {
            "token provider did not answer in time".to_owned()
        } else {
            "token provider is unreachable".to_owned()
        })
    })?;
    let status = response.status();
    if status.is_server_error()
        || status == reqwest::StatusCode::TOO_MANY_REQUESTS
        || status == reqwest::StatusCode::REQUEST_TIMEOUT
    {
        return Err(TokenError::Transient(format!("token provider answered {}", status.as_u16())));
    }
    if !status.is_success() {
        return Err(TokenError::Configuration(format!("token provider answered {}", status.as_u16())));
    }
    let body = response.bytes().await.map_err(|e| {
        TokenError::Transient(if e.is_timeout() {
            "token provider did not answer in time".to_owned()
        } else {
            "token provider answer was cut off".to_owned()
        })
    })?;
    let answer: TokenResponse = serde_json::from_slice(&body)
        .map_err(|_| TokenError::Configuration("token provider answer is not the expected JSON".to_owned()))?;
    if let Some(kind) = answer.token_type.as_deref()
        && !kind.trim().eq_ignore_ascii_case(BEARER)
    {
        return Err(TokenError::Configuration("token provider answered a token that is not a bearer token".to_owned()));
    }
    let token = Token::new(answer.token.trim()).ok_or_else(|| {
        TokenError::Configuration(
            "token provider answered an empty token or one not usable in an HTTP header".to_owned(),
        )
    })?;
    let lifetime = answer.expires_in.unwrap_or(DEFAULT_TOKEN_LIFETIME_SECS).max(0.0);
    let lifetime = Duration::try_from_secs_f64(lifetime).unwrap_or(MAX_CACHE);
    Ok((token, lifetime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_lifetime() {
        let s = Duration::from_secs;
        assert_eq!(cache_duration(s(300)), s(270));
        assert_eq!(cache_duration(s(60)), s(30));
        assert_eq!(cache_duration(s(40)), s(20));
        assert_eq!(cache_duration(s(0)), s(0));
        assert_eq!(cache_duration(s(10 * 24 * 3600)), MAX_CACHE);
    }

    #[test]
    fn tokens_are_not_printed() {
        let t = Token::new("secret").unwrap();
        assert_eq!(format!("{t:?}"), "Token(***)");
        assert!(t.authorization().is_sensitive());
        assert_eq!(t.authorization(), "Bearer secret");
        assert!(Token::new("").is_none());
        assert!(Token::new("a\nb").is_none());
    }
}
