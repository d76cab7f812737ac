//! The client: one HTTP exchange per call, no retries (the gateway's relay owns the retry
//! schedule). What an answer means is decided in [`crate::classify`]; what it looks like,
//! in [`crate::write`] and [`crate::read`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use egisz_contract::remd::{RegisterAck, RegisterDocument, RegistryItem, RemdRegistry, SearchQuery};
use egisz_contract::{CallObserver, Failure};
use egisz_http::{BuildError, ClientSettings};
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use tokio::time::Instant;
use tracing::Instrument;

use crate::classify::{self, Operation};
use crate::dom::MAX_MESSAGE_BYTES;
use crate::model::{SoapVersion, new_message_id};
use crate::{RemdClientConfig, RemdClientError, SERVICE, write};
use egisz_http::redacted_url;

/// What the client accepts in answers.
const ACCEPT_SOAP: &str = "application/soap+xml, text/xml;q=0.9";

/// The REMD SOAP client. Cheap to share behind an `Arc`; calls through one client share
/// its connection pool.
pub struct RemdClient {
    http: reqwest::Client,
    endpoint: url::Url,
    client_entity_id: String,
    timeout: Duration,
    observer: Arc<dyn CallObserver>,
}

impl fmt::Debug for RemdClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemdClient")
            .field("endpoint", &redacted_url(&self.endpoint))
            .field("client_entity_id", &self.client_entity_id)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Runs every check [`RemdClient::new`] runs on `config` — endpoint, client entity id,
/// timeout, user agent, the extra CA bundle (read and parsed) and the TLS setup — and
/// drops the result. No I/O other than reading the CA bundle; needs no async runtime.
pub fn validate(config: &RemdClientConfig) -> Result<(), RemdClientError> {
    build(config).map(drop)
}

/// The only place a configuration is checked.
fn build(config: &RemdClientConfig) -> Result<(reqwest::Client, String), RemdClientError> {
    let invalid = |s: &str| RemdClientError::InvalidConfig(s.to_owned());
    let endpoint = &config.endpoint;
    if !matches!(endpoint.scheme(), "http" | "https") || endpoint.cannot_be_a_base() || endpoint.host().is_none() {
        return Err(invalid("endpoint must be an http(s) URL with a host"));
    }
    let client_entity_id = config.client_entity_id.trim();
    if client_entity_id.len() != 36 || uuid::Uuid::try_parse(client_entity_id).is_err() {
        return Err(invalid("client_entity_id must be a GUID like 1f0e6d3a-0000-4000-8000-000000000042"));
    }
    if config.timeout.is_zero() {
        return Err(invalid("timeout must be greater than zero"));
    }
    let http = egisz_http::build_client(&ClientSettings {
        timeout: config.timeout,
        user_agent: &config.user_agent,
        extra_ca_bundle: config.extra_ca_bundle.as_deref(),
        proxy: None,
    })
    .map_err(client_error)?;
    Ok((http, client_entity_id.to_owned()))
}

/// The adapter's error for a failed [`egisz_http::build_client`], with the same texts.
fn client_error(e: BuildError) -> RemdClientError {
    match e {
        BuildError::InvalidUserAgent => RemdClientError::InvalidConfig(e.to_string()),
        BuildError::CaBundle { path, reason } => RemdClientError::CaBundle { path, reason },
        BuildError::Http(e) => RemdClientError::Http(e),
    }
}

/// Why reading an answer's body stopped.
enum BodyError {
    TooLarge,
    Transport(reqwest::Error),
}

impl RemdClient {
    /// Checks the configuration (exactly as [`validate`] does) and builds the HTTP client
    /// (rustls with the built-in web PKI roots plus `extra_ca_bundle`, no redirects
    /// followed, per-call timeout). Does no I/O other than reading the CA bundle.
    pub fn new(config: RemdClientConfig, observer: Arc<dyn CallObserver>) -> Result<Self, RemdClientError> {
        let (http, client_entity_id) = build(&config)?;
        Ok(Self { http, endpoint: config.endpoint, client_entity_id, timeout: config.timeout, observer })
    }

    /// One exchange: POST `envelope`, read the answer (at most [`MAX_MESSAGE_BYTES`]),
    /// classify it with `classify`, report it to the observer.
    async fn exchange<T>(
        &self,
        op: Operation,
        envelope: Vec<u8>,
        classify: classify::Classifier<T>,
    ) -> Result<T, Failure> {
        let started = Instant::now();
        let sent = self
            .http
            .post(self.endpoint.clone())
            .header(CONTENT_TYPE, SoapVersion::Soap12.content_type(Some(op.action())))
            .header(ACCEPT, ACCEPT_SOAP)
            .body(envelope)
            .send()
            .await;
        let (outcome, result) = match sent {
            Err(e) => {
                let (outcome, failure) = classify::transport_error(op, &e, self.timeout);
                (outcome, Err(failure))
            }
            Ok(response) => {
                let status = response.status();
                let retry_after = classify::retry_after(response.headers());
                match read_body(response).await {
                    Ok(body) => classify(status, retry_after, &body),
                    Err(BodyError::TooLarge) => {
                        let (outcome, failure) = classify::too_large(op, status, MAX_MESSAGE_BYTES);
                        (outcome, Err(failure))
                    }
                    Err(BodyError::Transport(e)) => {
                        let (outcome, failure) = classify::transport_error(op, &e, self.timeout);
                        (outcome, Err(failure))
                    }
                }
            }
        };
        let elapsed = started.elapsed();
        self.observer.call_finished(SERVICE, outcome, elapsed);
        match &result {
            Ok(_) => tracing::debug!(outcome = outcome.label(), elapsed_ms = elapsed.as_millis(), "REMD call finished"),
            Err(failure) => tracing::warn!(
                outcome = outcome.label(),
                failure = failure.label(),
                reason = failure.reason(),
                elapsed_ms = elapsed.as_millis(),
                "REMD call failed"
            ),
        }
        result
    }
}

/// The body, refusing more than [`MAX_MESSAGE_BYTES`].
async fn read_body(mut response: reqwest::Response) -> Result<Vec<u8>, BodyError> {
    if response.content_length().is_some_and(|n| n > MAX_MESSAGE_BYTES as u64) {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
        if body.len() + chunk.len() > MAX_MESSAGE_BYTES {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[async_trait::async_trait]
impl RemdRegistry for RemdClient {
    /// `registerDocument` with `request.message_id` as `wsa:MessageID`. `Ok(Accepted)`
    /// only means REMD took the request; `Ok(Rejected(..))` carries REMD's codes. A
    /// timeout or broken connection after sending is `Failure::Unknown`.
    async fn register_document(&self, request: &RegisterDocument) -> Result<RegisterAck, Failure> {
        let span = tracing::debug_span!(
            "remd.register_document",
            message_id = %request.message_id,
            organization = %request.organization,
            kind = request.kind,
        );
        let envelope = write::write_register_document(request, &self.client_entity_id);
        self.exchange(Operation::Register, envelope, classify::register).instrument(span).await
    }

    /// `searchRegistryItem` with a fresh message id. REMD's `REGISTRY_ITEM_NOT_FOUND` is
    /// an empty list.
    async fn search_registry_items(&self, query: &SearchQuery) -> Result<Vec<RegistryItem>, Failure> {
        let message_id = new_message_id();
        let span = tracing::debug_span!(
            "remd.search_registry_items",
            message_id = %message_id,
            organization = %query.organization,
        );
        let envelope = write::write_search_registry_item(query, &message_id, &self.client_entity_id);
        self.exchange(Operation::Search, envelope, classify::search).instrument(span).await
    }

    /// `getRegistryItem` with a fresh message id. No item, or REMD's
    /// `REGISTRY_ITEM_NOT_FOUND`, is `Ok(None)`.
    async fn get_registry_item(&self, emdr_id: &str) -> Result<Option<RegistryItem>, Failure> {
        let message_id = new_message_id();
        let span = tracing::debug_span!("remd.get_registry_item", message_id = %message_id, emdr_id);
        let envelope = write::write_get_registry_item(emdr_id, &message_id, &self.client_entity_id);
        self.exchange(Operation::Get, envelope, classify::get).instrument(span).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(endpoint: &str, id: &str) -> RemdClientConfig {
        RemdClientConfig::new(url::Url::parse(endpoint).unwrap(), id)
    }

    #[test]
    fn checks() {
        let id = "1f0e6d3a-0000-4000-8000-000000000042";
        assert!(validate(&config("http://127.0.0.1:8443/port/emdr", id)).is_ok());
        assert!(validate(&config("http://127.0.0.1:8443/port/emdr", &format!(" {id} "))).is_ok());
        for bad_id in ["", "not-a-guid", "1f0e6d3a000040008000000000000042", "{1f0e6d3a-0000-4000-8000-000000000042}"] {
            assert!(
                matches!(validate(&config("http://h/", bad_id)), Err(RemdClientError::InvalidConfig(_))),
                "{bad_id}"
            );
        }
        assert!(validate(&config("ftp://h/x", id)).is_err());
        assert!(validate(&config("mailto:x@y", id)).is_err());
        let mut c = config("http://h/", id);
        c.timeout = Duration::ZERO;
        assert!(validate(&c).is_err());
        let mut c = config("http://h/", id);
        c.user_agent = "a\nb".to_owned();
        assert!(validate(&c).is_err());
        let mut c = config("http://h/", id);
        c.extra_ca_bundle = Some("/nonexistent/ca.pem".into());
        assert!(matches!(validate(&c), Err(RemdClientError::CaBundle { .. })));
    }
}
