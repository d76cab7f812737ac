//! # egisz-verifier
//!
//! The gateway's signature verifiers ([`egisz_semd::SignatureVerifier`]s): GOST in the
//! process ([`gost::GostVerifier`]: the value, the chain to the trusted CAs, revocation by
//! CRL) and the client of an HTTP verification service ([`HttpVerifier`], for a deployment
//! whose rules require a certified provider).
//!
//! ## What this crate owns
//!
//! - the trusted CAs (a directory, the ministry's list of accredited CAs, or certificates
//!   given in code), read again on request with the store in force kept on failure;
//! - CRLs: fetched from the distribution points (through a proxy, bounded in size and time),
//!   cached until their `nextUpdate`, failures remembered for a minute;
//! - what every finding means as REMD's code (`judge`, pure): the chain's failures, revoked
//!   certificates, a CRL that cannot be had under the `warn` or `block` policy;
//! - the ministry's list of accredited CAs (`tsl`, **[model]**): its structure, read
//!   streamed and bounded;
//! - the wire of the HTTP service's call (`wire`, **[model]**, documented in `docs/validation.md`);
//! - the mapping of every answer to a verdict (violations with REMD codes) or to "no
//!   verdict" ([`egisz_contract::Failure`]): timeouts, refused connections, `429`/`5xx`,
//!   malformed answers and `CA_INACCESSIBILITY` are no verdict, never a refusal;
//! - a circuit breaker: after [`BREAKER_THRESHOLD`] calls without a verdict in a row the
//!   service is not called for [`BREAKER_OPEN_FOR`]; intake then accepts documents at once
//!   with a warning instead of waiting for a dead service on every signature.
//!
//! ## What it must not do
//!
//! - log or send anything but the CMS container (no document, no personal data: the
//!   certificate's subject is in the container, which is the service's to read);
//! - turn "no verdict" into a refusal.
//!
//! ## Layout
//!
//! - `gost`: [`gost::GostVerifier`], the trust sources, the CRL cache, the list's fetch (the
//!   edge: files, network, clock); `judge`: findings → REMD codes (pure); `tsl`: the list;
//! - `wire`: the HTTP service's request and answer; this file: [`HttpVerifier`] and its
//!   breaker.
#![forbid(unsafe_code)]

pub mod gost;
pub mod judge;
pub mod tsl;
mod wire;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use egisz_contract::Failure;
use egisz_semd::{ParsedSignature, SignatureVerifier, Violation, rules};

/// Calls in a row without a verdict that open the breaker.
pub const BREAKER_THRESHOLD: u32 = 5;
/// How long an open breaker keeps calls away.
pub const BREAKER_OPEN_FOR: Duration = Duration::from_secs(30);
/// Longest answer read, in bytes.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// The codes a verdict may carry as its rule, by REMD's name, with the message the gateway
/// gives (the service's own text is never passed on: it may quote the certificate's subject).
const KNOWN: [(&str, &str); 5] = [
    (rules::SIGNATURE_VERIFICATION_ERROR, "служба проверки: значение подписи неверно"),
    (
        rules::CANT_BUILD_CERT_CHAIN_TO_ACCREDITED_CA_CERT,
        "служба проверки: сертификат не ведёт к аккредитованному УЦ или одно из звеньев цепочки недействительно",
    ),
    (rules::UNKNOWN_ALGORITHM, "служба проверки: алгоритм подписи не поддерживается"),
    ("INVALID_CERT_KEY_USAGE", "служба проверки: назначение ключа сертификата не допускает такую подпись"),
    ("PERSONAL_SIG_CERT_NOT_ACTUAL_ON_CHECK_DT", "служба проверки: сертификат недействителен на дату проверки"),
];

#[derive(Debug, Default)]
struct Breaker {
    failures: u32,
    open_until: Option<Instant>,
}

/// The verification service at one URL.
pub struct HttpVerifier {
    client: reqwest::Client,
    url: url::Url,
    breaker: Mutex<Breaker>,
}

impl std::fmt::Debug for HttpVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpVerifier").field("url", &egisz_http::redacted_url(&self.url)).finish_non_exhaustive()
    }
}

impl HttpVerifier {
    /// A client with `timeout` for the whole call (connecting included).
    pub fn new(url: url::Url, timeout: Duration) -> Result<Self, egisz_http::BuildError> {
        let client = egisz_http::build_client(&egisz_http::ClientSettings {
            timeout,
            user_agent: concat!("egisz-gateway/", env!("CARGO_PKG_VERSION")),
            extra_ca_bundle: None,
            proxy: None,
        })?;
        Ok(Self { client, url, breaker: Mutex::new(Breaker::default()) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Breaker> {
        self.breaker.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Only the service's own failures count towards opening the breaker (no answer, 429,
    /// 5xx): an answer refusing one request, or a CA unreachable for one certificate, says
    /// nothing about the service, and a submitter must not be able to switch verification
    /// off for everyone by sending containers the service refuses.
    fn record(&self, result: &Result<Vec<Violation>, Failure>) {
        let mut b = self.lock();
        if !matches!(result, Err(Failure::Retry { .. })) {
            *b = Breaker::default();
        } else {
            b.failures = b.failures.saturating_add(1);
            if b.failures >= BREAKER_THRESHOLD {
                b.open_until = Some(Instant::now() + BREAKER_OPEN_FOR);
            }
        }
    }

    async fn call(&self, signature: &ParsedSignature) -> Result<Vec<Violation>, Failure> {
        let cms = base64::engine::general_purpose::STANDARD.encode(signature.container());
        let sent = self.client.post(self.url.clone()).json(&wire::VerifyRequest { cms: &cms }).send().await;
        let body = egisz_http::answer_body(sent, "сервис проверки подписей", MAX_ANSWER_BYTES).await?;
        let answer: wire::VerifyAnswer = serde_json::from_slice(&body).map_err(|_| Failure::Permanent {
            reason: "ответ службы не в формате {\"valid\": …}".to_owned(),
        })?;
        verdict(answer)
    }
}

/// The answer as a verdict, or "no verdict" for `CA_INACCESSIBILITY`.
fn verdict(answer: wire::VerifyAnswer) -> Result<Vec<Violation>, Failure> {
    if answer.valid {
        return Ok(Vec::new());
    }
    if answer.errors.iter().any(|e| e.code == wire::NO_VERDICT) {
        // No verdict for this certificate; the service itself is fine.
        return Err(Failure::Permanent {
            reason: "УЦ недоступен для проверки (CA_INACCESSIBILITY)".to_owned()
        });
    }
    let mut out: Vec<Violation> = answer
        .errors
        .iter()
        .map(|e| match KNOWN.iter().find(|(k, _)| *k == e.code) {
            Some((code, message)) => Violation::new(code, "", *message),
            None => {
                // Only a code's own characters are repeated, never the service's text.
                let code: String = e
                    .code
                    .chars()
                    .filter(|c| c.is_ascii_uppercase() || *c == '_' || c.is_ascii_digit())
                    .take(64)
                    .collect();
                Violation::new(
                    rules::SIGNATURE_VERIFICATION_ERROR,
                    "",
                    format!("служба проверки отклонила подпись с кодом {code}"),
                )
            }
        })
        .collect();
    if out.is_empty() {
        out.push(Violation::new(rules::SIGNATURE_VERIFICATION_ERROR, "", "служба проверки: подпись неверна"));
    }
    Ok(out)
}

#[async_trait::async_trait]
impl SignatureVerifier for HttpVerifier {
    async fn verify(
        &self,
        signature: &ParsedSignature,
        _document: &[u8],
        _created: chrono::DateTime<chrono::FixedOffset>,
    ) -> Result<Vec<Violation>, Failure> {
        if let Some(until) = self.lock().open_until
            && Instant::now() < until
        {
            return Err(Failure::Retry {
                reason: format!(
                    "служба проверки подписей недоступна, повтор через {} с",
                    (until - Instant::now()).as_secs() + 1
                ),
                after: Some(until - Instant::now()),
            });
        }
        let result = self.call(signature).await;
        self.record(&result);
        if let Err(e) = &result {
            tracing::warn!(reason = %e.reason(), "signature verifier: no verdict");
        }
        result
    }
}
