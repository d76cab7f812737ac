//! The client: HTTP, rate limit, token, retries. What an answer means is decided in
//! [`crate::classify`]; what it looks like, in [`crate::wire`].

use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use egisz_contract::frmr::{FrmrPerson, FrmrRegistry};
use egisz_contract::{CallObserver, CallOutcome, Failure, Oid, Snils};
use egisz_http::{BuildError, ClientSettings};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::header::{ACCEPT, AUTHORIZATION};
use tokio::time::Instant;
use tracing::Instrument;

use crate::classify::{self, Classified};
use crate::token::{Token, TokenError, Tokens, millis};
use crate::wire::{ACCEPT_JSON, PERSON_FULL_PATH, QUERY_MO, QUERY_MR, QUERY_MR_VALUE, QUERY_SNILS};
use crate::{FrmrClientConfig, FrmrClientError, SERVICE};

/// The FRMR REST client. Cheap to share behind an `Arc`; all lookups through one client
/// share its rate limiter, token cache and connection pool.
pub struct FrmrClient {
    http: reqwest::Client,
    /// `{base}person/full`, without a query.
    person_url: url::Url,
    tokens: Tokens,
    limiter: DefaultDirectRateLimiter,
    backoff: ExponentialBuilder,
    retry_max_attempts: u32,
    retry_max_delay: Duration,
    timeout: Duration,
    observer: Arc<dyn CallObserver>,
}

impl fmt::Debug for FrmrClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrmrClient")
            .field("person_url", &self.person_url.as_str())
            .field("token_refreshable", &self.tokens.refreshable())
            .field("retry_max_attempts", &self.retry_max_attempts)
            .field("retry_max_delay", &self.retry_max_delay)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Runs every check [`FrmrClient::new`] runs on `config` — base URL, rate, retries,
/// timeout, the token source (the same checks as [`crate::TokenSource::parse`]), the user
/// agent, the extra CA bundle (read and parsed) and the TLS setup — and drops the result.
/// Does no I/O other than reading the CA bundle; needs no async runtime.
pub fn validate(config: &FrmrClientConfig) -> Result<(), FrmrClientError> {
    Parts::build(config).map(drop)
}

/// Everything a client is made of, checked.
struct Parts {
    http: reqwest::Client,
    person_url: url::Url,
    tokens: Tokens,
    limiter: DefaultDirectRateLimiter,
    backoff: ExponentialBuilder,
}

impl Parts {
    /// The only place a configuration is checked: [`FrmrClient::new`] and [`validate`]
    /// both run this.
    fn build(config: &FrmrClientConfig) -> Result<Self, FrmrClientError> {
        let invalid = |s: &str| FrmrClientError::InvalidConfig(s.to_owned());

        let person_url = person_url(config.base_url.clone())?;
        let limiter = RateLimiter::direct(quota(config.rate_per_second)?);
        if config.retry_max_attempts == 0 {
            return Err(invalid("retry_max_attempts must be at least 1"));
        }
        if config.timeout.is_zero() {
            return Err(invalid("timeout must be greater than zero"));
        }
        if config.retry_min_delay > config.retry_max_delay {
            return Err(invalid("retry_min_delay must not exceed retry_max_delay"));
        }
        let tokens = Tokens::new(&config.token, config.timeout)
            .map_err(|e| FrmrClientError::InvalidConfig(format!("token: {e}")))?;
        let http = egisz_http::build_client(&ClientSettings {
            timeout: config.timeout,
            user_agent: &config.user_agent,
            extra_ca_bundle: config.extra_ca_bundle.as_deref(),
            proxy: None,
        })
        .map_err(client_error)?;

        let backoff = ExponentialBuilder::default()
            .with_min_delay(config.retry_min_delay)
            .with_max_delay(config.retry_max_delay)
            .with_max_times((config.retry_max_attempts - 1) as usize)
            .with_jitter();
        Ok(Self { http, person_url, tokens, limiter, backoff })
    }
}

/// The adapter's error for a failed [`egisz_http::build_client`], with the same texts.
fn client_error(e: BuildError) -> FrmrClientError {
    match e {
        BuildError::InvalidUserAgent => FrmrClientError::InvalidConfig(e.to_string()),
        BuildError::CaBundle { path, reason } => FrmrClientError::CaBundle { path, reason },
        BuildError::Http(e) => FrmrClientError::Http(e),
    }
}

impl FrmrClient {
    /// Checks the configuration (exactly as [`validate`] does) and builds the HTTP client
    /// (rustls with the built-in web PKI roots plus `extra_ca_bundle`, no redirects
    /// followed, per-attempt timeout) and the rate limiter. Does no I/O other than
    /// reading the CA bundle.
    pub fn new(config: FrmrClientConfig, observer: Arc<dyn CallObserver>) -> Result<Self, FrmrClientError> {
        let Parts { http, person_url, tokens, limiter, backoff } = Parts::build(&config)?;
        Ok(Self {
            http,
            person_url,
            tokens,
            limiter,
            backoff,
            retry_max_attempts: config.retry_max_attempts,
            retry_max_delay: config.retry_max_delay,
            timeout: config.timeout,
            observer,
        })
    }

    /// The lookup with its retries. `url` carries the SNILS: it is never logged.
    ///
    /// `attempt` counts attempts of the transient budget (1 ..= `retry_max_attempts`);
    /// the single resend after a 401 repeats the same attempt number.
    async fn lookup(&self, url: &url::Url, snils: &Snils) -> Result<Option<FrmrPerson>, Failure> {
        let mut backoff = self.backoff.build();
        let mut attempt: u32 = 1;
        let mut token_refreshed = false;
        loop {
            let token = match self.tokens.get(&self.http, &*self.observer).await {
                Ok(token) => token,
                Err(TokenError::Configuration(reason)) => {
                    return Err(Failure::Configuration { reason: self.at(&reason, attempt) });
                }
                Err(TokenError::Transient(reason)) => {
                    let delay = self.next_delay(&mut backoff, attempt, &reason, None)?;
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                    continue;
                }
            };

            self.wait_for_limiter().await;
            let started = Instant::now();
            let (outcome, classified) = self.exchange(url, &token, snils).await;
            let elapsed = started.elapsed();
            self.observer.call_finished(SERVICE, outcome, elapsed);
            tracing::debug!(attempt, outcome = outcome.label(), elapsed_ms = millis(elapsed), "FRMR attempt finished");

            match classified {
                Classified::Found(person) => return Ok(Some(person)),
                Classified::NotFound => return Ok(None),
                Classified::Fatal(failure) => return Err(self.numbered(failure, attempt)),
                Classified::Unauthorized(reason) => {
                    if !self.tokens.refreshable() {
                        return Err(Failure::Configuration {
                            reason: format!("{}; the token is static", self.at(&reason, attempt)),
                        });
                    }
                    self.tokens.invalidate(&token);
                    if token_refreshed {
                        return Err(Failure::Configuration {
                            reason: format!("{}; a freshly fetched token was refused too", self.at(&reason, attempt)),
                        });
                    }
                    // Once per lookup, at once, outside the transient budget.
                    token_refreshed = true;
                    tracing::debug!(attempt, "FRMR refused the token; fetching a new one");
                }
                Classified::Transient { reason, retry_after } => {
                    let delay = self.next_delay(&mut backoff, attempt, &reason, retry_after)?;
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
            }
        }
    }

    /// `reason (attempt n of m)`.
    fn at(&self, reason: &str, attempt: u32) -> String {
        format!("{reason} (attempt {attempt} of {})", self.retry_max_attempts)
    }

    /// `failure` with the attempt number appended to its reason.
    fn numbered(&self, failure: Failure, attempt: u32) -> Failure {
        match failure {
            Failure::Retry { reason, after } => Failure::Retry { reason: self.at(&reason, attempt), after },
            Failure::Unknown { reason } => Failure::Unknown { reason: self.at(&reason, attempt) },
            Failure::Permanent { reason } => Failure::Permanent { reason: self.at(&reason, attempt) },
            Failure::Configuration { reason } => Failure::Configuration { reason: self.at(&reason, attempt) },
        }
    }

    /// How long to wait before the next attempt after a transient failure, or the final
    /// `Failure::Retry` when the budget is spent or the server asks for a longer pause
    /// than `retry_max_delay`.
    fn next_delay(
        &self,
        backoff: &mut impl Iterator<Item = Duration>,
        attempt: u32,
        reason: &str,
        retry_after: Option<Duration>,
    ) -> Result<Duration, Failure> {
        if let Some(after) = retry_after
            && after > self.retry_max_delay
        {
            return Err(Failure::Retry {
                reason: format!("{}; asked to retry after {} s", self.at(reason, attempt), after.as_secs()),
                after: Some(after),
            });
        }
        let Some(delay) = backoff.next() else {
            return Err(Failure::Retry { reason: self.at(reason, attempt), after: retry_after });
        };
        let delay = delay.min(self.retry_max_delay).max(retry_after.unwrap_or_default());
        tracing::debug!(attempt, delay_ms = millis(delay), reason, "FRMR transient failure, retrying");
        Ok(delay)
    }

    /// Waits for the rate limiter, reporting the wait when there was one.
    async fn wait_for_limiter(&self) {
        if self.limiter.check().is_ok() {
            return;
        }
        let started = Instant::now();
        self.limiter.until_ready().await;
        let waited = started.elapsed();
        if !waited.is_zero() {
            self.observer.rate_limit_waited(SERVICE, waited);
        }
    }

    /// One HTTP exchange, classified.
    async fn exchange(&self, url: &url::Url, token: &Token, snils: &Snils) -> (CallOutcome, Classified) {
        let sent = self
            .http
            .get(url.clone())
            .header(AUTHORIZATION, token.authorization())
            .header(ACCEPT, ACCEPT_JSON)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(e) => return classify::transport_error(&e, self.timeout),
        };
        let status = response.status();
        let retry_after = classify::retry_after(response.headers());
        match response.bytes().await {
            Ok(body) => classify::response(status, retry_after, &body, snils),
            Err(e) => classify::transport_error(&e, self.timeout),
        }
    }

    fn lookup_url(&self, organization: &Oid, snils: &Snils) -> url::Url {
        let mut url = self.person_url.clone();
        url.query_pairs_mut()
            .append_pair(QUERY_MO, organization.as_str())
            .append_pair(QUERY_MR, QUERY_MR_VALUE)
            .append_pair(QUERY_SNILS, snils.as_str());
        url
    }
}

#[async_trait::async_trait]
impl FrmrRegistry for FrmrClient {
    /// `GET {base}person/full?mo=<organization>&mr=true&snils=<11 digits>`, with the
    /// rate limit, token handling and retries described on [`FrmrClientConfig`].
    async fn person_full(&self, organization: &Oid, snils: &Snils) -> Result<Option<FrmrPerson>, Failure> {
        let span = tracing::debug_span!("frmr.person_full", organization = %organization);
        let url = self.lookup_url(organization, snils);
        async {
            let result = self.lookup(&url, snils).await;
            match &result {
                Ok(Some(_)) => tracing::debug!(%organization, outcome = "found", "FRMR lookup"),
                Ok(None) => tracing::debug!(%organization, outcome = "not_found", "FRMR lookup"),
                Err(failure) => tracing::warn!(
                    %organization,
                    outcome = failure.label(),
                    reason = failure.reason(),
                    "FRMR lookup failed"
                ),
            }
            result
        }
        .instrument(span)
        .await
    }
}

/// `{base}person/full`, with the base's trailing slash ensured.
fn person_url(mut base: url::Url) -> Result<url::Url, FrmrClientError> {
    let invalid = |s: &str| FrmrClientError::InvalidConfig(s.to_owned());
    if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
        return Err(invalid("base_url must be an http(s) URL"));
    }
    if base.host().is_none() {
        return Err(invalid("base_url has no host"));
    }
    base.set_query(None);
    base.set_fragment(None);
    if !base.path().ends_with('/') {
        let path = format!("{}/", base.path());
        base.set_path(&path);
    }
    base.join(PERSON_FULL_PATH).map_err(|e| FrmrClientError::InvalidConfig(format!("base_url: {e}")))
}

/// `rate` calls per second as a governor quota: one cell every `1/rate` s, burst
/// `max(1, ceil(rate))`.
fn quota(rate: f64) -> Result<Quota, FrmrClientError> {
    let invalid = || {
        FrmrClientError::InvalidConfig(
            "rate_per_second must be a positive number of calls per second (at most 1e9)".to_owned(),
        )
    };
    if !rate.is_finite() || rate <= 0.0 || rate > 1e9 {
        return Err(invalid());
    }
    let period = Duration::try_from_secs_f64(1.0 / rate).map_err(|_| invalid())?;
    let burst = NonZeroU32::new(rate.ceil().max(1.0) as u32).ok_or_else(invalid)?;
    Ok(Quota::with_period(period).ok_or_else(invalid)?.allow_burst(burst))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_gets_its_trailing_slash() {
        for base in ["https://ips.host/abc123", "https://ips.host/abc123/", "https://ips.host/abc123/?x=1"] {
            let url = person_url(url::Url::parse(base).unwrap()).unwrap();
            assert_eq!(url.as_str(), "https://ips.host/abc123/person/full", "{base}");
        }
        assert_eq!(
            person_url(url::Url::parse("http://h:8080").unwrap()).unwrap().as_str(),
            "http://h:8080/person/full"
        );
        assert!(person_url(url::Url::parse("ftp://h/x").unwrap()).is_err());
        assert!(person_url(url::Url::parse("mailto:x@y").unwrap()).is_err());
    }

    #[test]
    fn quotas() {
        let q = quota(2.0).unwrap();
        assert_eq!(q.burst_size().get(), 2);
        assert_eq!(q.replenish_interval(), Duration::from_millis(500));
        let q = quota(0.5).unwrap();
        assert_eq!(q.burst_size().get(), 1);
        assert_eq!(q.replenish_interval(), Duration::from_secs(2));
        assert_eq!(quota(2.5).unwrap().burst_size().get(), 3);
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(quota(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lookup_url_has_the_three_parameters() {
        let client = FrmrClient::new(
            FrmrClientConfig::new(
                url::Url::parse("https://ips.host/h").unwrap(),
                crate::TokenSource::Static("t".to_owned()),
            ),
            Arc::new(egisz_contract::NoopObserver),
        )
        .unwrap();
        let url = client.lookup_url(
            &Oid::parse("1.2.643.5.1.13.13.12.2.42.2917").unwrap(),
            &Snils::parse("203-117-845 14").unwrap(),
        );
        assert_eq!(
            url.as_str(),
            "https://ips.host/h/person/full?mo=1.2.643.5.1.13.13.12.2.42.2917&mr=true&snils=20311784514"
        );
    }
}
