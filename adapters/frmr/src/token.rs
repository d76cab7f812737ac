//! The bearer token: static, or fetched from the token provider sidecar and cached.
//!
//! Tokens never reach a log: [`Token`]'s `Debug` prints `***`, the `Authorization` header
//! is marked sensitive, and no error text here carries a token or a provider answer.
//!
//! Provider fetches are single-flight: at most one fetch runs at a time, and every caller
//! that needs a token while it runs waits for it and gets its result — the token or the
//! failure. A failure is remembered for [`FAILURE_MEMO`] (at most the client's timeout),
//! so lookups arriving right after a failed fetch get the same failure at once instead of
//! asking the provider again. No lock is held across the fetch.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use egisz_contract::CallObserver;
use reqwest::header::{ACCEPT, HeaderValue};
use tokio::sync::OnceCell;
use tokio::time::Instant;

use crate::wire::{ACCEPT_JSON, BEARER, DEFAULT_TOKEN_LIFETIME_SECS, TokenResponse};
use crate::{SERVICE, TokenSource};

/// A token is not reused during the last this-much of its lifetime.
const REFRESH_MARGIN: Duration = Duration::from_secs(30);
/// Upper bound on how long a token is cached, whatever the provider says: 1 day.
const MAX_CACHE: Duration = Duration::from_secs(24 * 60 * 60);
/// How long a failed provider fetch is remembered, at most: 1 s (and never longer than
/// the client's timeout).
pub(crate) const FAILURE_MEMO: Duration = Duration::from_secs(1);

// ---------------------------------------------------------------------------------------
// Validation: the one place token strings and provider URLs are checked
// ---------------------------------------------------------------------------------------

/// Checks a token as it will go into `Authorization: Bearer <token>`: not empty, printable
/// ASCII only (no spaces, no control characters). Used for static tokens (by
/// [`TokenSource::parse`] and [`crate::FrmrClient::new`]) and for provider answers. The
/// error never repeats the token.
pub(crate) fn check_token(token: &str) -> Result<(), &'static str> {
    if token.is_empty() {
        return Err("the static token is empty");
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("the static token must be printable ASCII without spaces or control characters \
                    (it goes into an HTTP header)");
    }
    Ok(())
}

/// Checks the URL of a token provider: `http` or `https`, with a host.
pub(crate) fn check_provider_url(url: &url::Url) -> Result<(), &'static str> {
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err("the token provider URL must be an http(s) URL");
    }
    if url.host().is_none() {
        return Err("the token provider URL has no host");
    }
    Ok(())
}

/// Every check of a token source; [`TokenSource::parse`] and [`crate::FrmrClient::new`]
/// both run exactly this.
pub(crate) fn check_source(source: &TokenSource) -> Result<(), &'static str> {
    match source {
        TokenSource::Static(token) => check_token(token),
        TokenSource::Provider(url) => check_provider_url(url),
    }
}

// ---------------------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------------------

/// A bearer token with its ready-made, sensitive `Authorization` header value.
#[derive(Clone)]
pub(crate) struct Token(Arc<HeaderValue>);

impl Token {
    /// `None` when the token fails [`check_token`].
    fn new(token: &str) -> Option<Self> {
        check_token(token).ok()?;
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

/// Why no token could be had. Texts are fixed English with numbers only: no token, no
/// provider answer, no URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TokenError {
    /// The provider is unreachable, timed out or answered 408/429/5xx: try again later.
    Transient(String),
    /// The provider answered 4xx or something that is not a usable token: an
    /// administrator must act.
    Configuration(String),
}

/// The result of one provider fetch, shared by everyone who waited for it.
type Fetched = Result<Token, TokenError>;

/// What the provider cache holds.
enum Slot {
    Empty,
    /// A token, reused until `until`.
    Fresh {
        token: Token,
        until: Instant,
    },
    /// The last fetch failed; its failure is handed out until `until`.
    Failed {
        error: TokenError,
        until: Instant,
    },
    /// A fetch is running (or was abandoned by a cancelled caller and is taken over by
    /// the next one): join it.
    Fetching(Arc<OnceCell<Fetched>>),
}

/// The provider side of [`Tokens`].
pub(crate) struct Provider {
    url: url::Url,
    /// Per-attempt time limit of the HTTP client, for the texts.
    timeout: Duration,
    /// How long a failed fetch is remembered: `min(FAILURE_MEMO, timeout)`.
    failure_memo: Duration,
    /// Never held across an `.await`.
    slot: Mutex<Slot>,
}

/// The token source of a client.
pub(crate) enum Tokens {
    Static(Token),
    Provider(Provider),
}

/// Either the answer at once, or the fetch to join.
enum Current {
    Ready(Fetched),
    Join(Arc<OnceCell<Fetched>>),
}

impl Tokens {
    /// The token source, after [`check_source`]. `timeout` is the client's per-attempt
    /// time limit.
    pub(crate) fn new(source: &TokenSource, timeout: Duration) -> Result<Self, &'static str> {
        check_source(source)?;
        Ok(match source {
            TokenSource::Static(token) => Tokens::Static(Token::new(token).ok_or("the static token is unusable")?),
            TokenSource::Provider(url) => Tokens::Provider(Provider {
                url: url.clone(),
                timeout,
                failure_memo: FAILURE_MEMO.min(timeout),
                slot: Mutex::new(Slot::Empty),
            }),
        })
    }

    /// True when a rejected token can be replaced by asking the provider again.
    pub(crate) fn refreshable(&self) -> bool {
        matches!(self, Tokens::Provider(_))
    }

    /// The cached token, the remembered failure of a fetch that just failed, or the
    /// result of a fetch — the one running, or a new one.
    pub(crate) async fn get(&self, http: &reqwest::Client, observer: &dyn CallObserver) -> Result<Token, TokenError> {
        let provider = match self {
            Tokens::Static(token) => return Ok(token.clone()),
            Tokens::Provider(provider) => provider,
        };
        let cell = match provider.current() {
            Current::Ready(result) => return result,
            Current::Join(cell) => cell,
        };
        // Only one caller at a time runs the initialiser; the others wait for its value.
        // If that caller is cancelled, the next waiter runs it instead.
        cell.get_or_init(|| provider.fetch_into(http, observer, &cell)).await.clone()
    }

    /// Forgets `used` (FRMR rejected it), unless another caller already replaced it.
    pub(crate) fn invalidate(&self, used: &Token) {
        if let Tokens::Provider(provider) = self {
            let mut slot = provider.lock();
            if matches!(&*slot, Slot::Fresh { token, .. } if token.same_as(used)) {
                *slot = Slot::Empty;
            }
        }
    }
}

impl Provider {
    fn lock(&self) -> MutexGuard<'_, Slot> {
        // The slot is always in a consistent state: a panic elsewhere cannot leave it
        // half-written.
        self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn current(&self) -> Current {
        let now = Instant::now();
        let mut slot = self.lock();
        match &*slot {
            Slot::Fresh { token, until } if now < *until => return Current::Ready(Ok(token.clone())),
            Slot::Failed { error, until } if now < *until => return Current::Ready(Err(error.clone())),
            Slot::Fetching(cell) => return Current::Join(cell.clone()),
            Slot::Empty | Slot::Fresh { .. } | Slot::Failed { .. } => {}
        }
        let cell = Arc::new(OnceCell::new());
        *slot = Slot::Fetching(cell.clone());
        Current::Join(cell)
    }

    /// Runs one fetch and stores its result in the slot (if the slot still belongs to
    /// this fetch).
    async fn fetch_into(
        &self,
        http: &reqwest::Client,
        observer: &dyn CallObserver,
        cell: &Arc<OnceCell<Fetched>>,
    ) -> Fetched {
        let fetched = fetch(http, &self.url, self.timeout).await;
        observer.token_fetched(SERVICE, fetched.is_ok());
        let now = Instant::now();
        let (next, result) = match fetched {
            Ok((token, lifetime)) => {
                let keep = cache_duration(lifetime);
                tracing::debug!(cached_for_s = keep.as_secs(), "token fetched");
                (Slot::Fresh { token: token.clone(), until: now + keep }, Ok(token))
            }
            Err(error) => {
                tracing::warn!(
                    error = ?error,
                    remembered_ms = millis(self.failure_memo),
                    "token provider failed"
                );
                (Slot::Failed { error: error.clone(), until: now + self.failure_memo }, Err(error))
            }
        };
        let mut slot = self.lock();
        if matches!(&*slot, Slot::Fetching(c) if Arc::ptr_eq(c, cell)) {
            *slot = next;
        }
        result
    }
}

/// How long a token with `lifetime` is reused: until [`REFRESH_MARGIN`] before expiry, or
/// until half its lifetime when the lifetime is shorter than twice the margin.
pub(crate) fn cache_duration(lifetime: Duration) -> Duration {
    let margin = REFRESH_MARGIN.min(lifetime / 2);
    lifetime.saturating_sub(margin).min(MAX_CACHE)
}

/// Whole milliseconds, for texts and log fields.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// `POST <provider>` with no body; returns the token and its lifetime. Error texts are
/// fixed: reqwest's own texts (which quote the URL) are never used.
async fn fetch(http: &reqwest::Client, url: &url::Url, timeout: Duration) -> Result<(Token, Duration), TokenError> {
    let timed_out = || TokenError::Transient(format!("token provider timed out after {} ms", millis(timeout)));
    let response = http.post(url.clone()).header(ACCEPT, ACCEPT_JSON).send().await.map_err(|e| {
        if e.is_timeout() { timed_out() } else { TokenError::Transient("token provider is unreachable".to_owned()) }
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
        if e.is_timeout() { timed_out() } else { TokenError::Transient("token provider answer was cut off".to_owned()) }
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
        assert!(Token::new("a b").is_none());
        assert!(Token::new("токен").is_none());
    }

    #[test]
    fn sources_are_checked() {
        let url = |s| TokenSource::Provider(url::Url::parse(s).unwrap());
        assert!(check_source(&TokenSource::Static("eyJ.x-y_z~+/=".to_owned())).is_ok());
        for bad in ["", "a b", "a\tb", "a\u{7f}", "a\u{0}", "ключ"] {
            let err = check_source(&TokenSource::Static(bad.to_owned())).unwrap_err();
            assert!(bad.is_empty() || !err.contains(bad), "{err}");
        }
        assert!(check_source(&url("https://sidecar.local/token")).is_ok());
        assert!(check_source(&url("ftp://sidecar.local/token")).is_err());
        assert!(check_source(&url("file:///tmp/token")).is_err());
        assert!(check_source(&url("mailto:x@y")).is_err());
    }

    #[test]
    fn failures_are_remembered_for_at_most_the_timeout() {
        let tokens = |timeout| match Tokens::new(&TokenSource::Provider("http://h/t".parse().unwrap()), timeout) {
            Ok(Tokens::Provider(p)) => p.failure_memo,
            _ => panic!(),
        };
        assert_eq!(tokens(Duration::from_secs(5)), FAILURE_MEMO);
        assert_eq!(tokens(Duration::from_millis(300)), Duration::from_millis(300));
    }
}
