//! The HTTP client setup and transport-error texts shared by the adapters; no knowledge of
//! any federal service.
//!
//! [`build_client`] makes the one kind of [`reqwest::Client`] the adapters use: rustls
//! with the built-in web PKI roots plus an optional extra CA bundle, one timeout for the
//! whole request and for connecting, no redirects followed, a fixed user agent.
//! [`transport_cause`] turns a transport error into a short text that never quotes the
//! request URL.

use std::error::Error as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use egisz_contract::scrub_personal;
use reqwest::header::HeaderValue;

/// What [`build_client`] makes a client from.
#[derive(Debug, Clone, Copy)]
pub struct ClientSettings<'a> {
    /// The limit for a whole request, also used as the connect timeout.
    pub timeout: Duration,
    /// The `User-Agent` header sent with every request.
    pub user_agent: &'a str,
    /// A PEM file with CA certificates trusted in addition to the built-in roots.
    pub extra_ca_bundle: Option<&'a Path>,
    /// An outbound HTTP proxy every request goes through (`http://host:port`).
    pub proxy: Option<&'a url::Url>,
}

/// Why [`build_client`] could not make a client.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The user agent is not a valid HTTP header value.
    #[error("user_agent has characters not allowed in an HTTP header")]
    InvalidUserAgent,
    /// The extra CA bundle could not be read or holds no usable certificate.
    #[error("extra CA bundle {path}: {reason}")]
    CaBundle { path: PathBuf, reason: String },
    /// The HTTP client could not be built (TLS setup).
    #[error("cannot build the HTTP client: {0}")]
    Http(#[source] reqwest::Error),
}

/// Checks the user agent, reads and parses the extra CA bundle (in that order) and builds
/// the client: rustls with the built-in web PKI roots plus the bundle's certificates,
/// `timeout` per request and for connecting, no redirects followed. Does no I/O other
/// than reading the CA bundle; needs no async runtime.
pub fn build_client(s: &ClientSettings) -> Result<reqwest::Client, BuildError> {
    if HeaderValue::from_str(s.user_agent).is_err() {
        return Err(BuildError::InvalidUserAgent);
    }
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .timeout(s.timeout)
        .connect_timeout(s.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(s.user_agent);
    if let Some(proxy) = s.proxy {
        builder = builder.proxy(reqwest::Proxy::all(proxy.as_str()).map_err(BuildError::Http)?);
    }
    if let Some(path) = s.extra_ca_bundle {
        let ca_error = |reason: String| BuildError::CaBundle { path: path.to_owned(), reason };
        let pem = std::fs::read(path).map_err(|e| ca_error(e.to_string()))?;
        let certificates =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| ca_error(format!("not a PEM bundle: {e}")))?;
        if certificates.is_empty() {
            return Err(ca_error("no certificate in the file".to_owned()));
        }
        for certificate in certificates {
            builder = builder.add_root_certificate(certificate);
        }
    }
    builder.build().map_err(BuildError::Http)
}

/// A short, stable text for the innermost cause of `err`, or `None` when there is none
/// that can be shown.
///
/// reqwest's own error texts are never used — not the outer error's, nor any reqwest
/// error's further down the chain: they may quote the request URL. Only the innermost
/// cause (an I/O or TLS error, which knows no URL) is kept: as the I/O error kind
/// (`connection refused`) when an OS error is on the way down, otherwise as its message
/// run through [`scrub_personal`], trimmed and cut to `max_chars` characters (plus `…`).
pub fn transport_cause(err: &reqwest::Error, max_chars: usize) -> Option<String> {
    let mut innermost = err.source()?;
    let mut os_error = None;
    loop {
        if let Some(io) = innermost.downcast_ref::<std::io::Error>()
            && io.raw_os_error().is_some()
        {
            os_error = Some(io.kind());
        }
        match innermost.source() {
            Some(next) => innermost = next,
            None => break,
        }
    }
    if innermost.is::<reqwest::Error>() {
        return None;
    }
    if let Some(kind) = os_error {
        let text = kind.to_string();
        // `Other` and std's uncategorised kinds say nothing; their message is used below.
        if kind != std::io::ErrorKind::Other && text != "uncategorized error" {
            return Some(text);
        }
    }
    Some(shorten(&scrub_personal(&innermost.to_string()), max_chars))
}

/// `text` trimmed and, when longer than `max_chars` characters, cut to them plus `…`.
fn shorten(text: &str, max_chars: usize) -> String {
    let text = text.trim();
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// A `Retry-After` given in seconds; `None` when absent or in the HTTP-date form (which a
/// federal service has not been seen to send; a retry schedule then applies its own wait).
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<std::time::Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(std::time::Duration::from_secs)
}

/// The body of a JSON service's answer, or why there is none, as [`egisz_contract::Failure`]:
/// no answer (`Retry`, with the transport cause), `429` or `5xx` (`Retry`), another non-2xx
/// (`Permanent`), a body over `max_bytes` (`Permanent`; reading stops there). `service` names
/// the service in the Russian reasons ("служба", "НСИ").
pub async fn answer_body(
    sent: Result<reqwest::Response, reqwest::Error>,
    service: &str,
    max_bytes: usize,
) -> Result<Vec<u8>, egisz_contract::Failure> {
    use egisz_contract::Failure;
    let mut response = sent.map_err(|e| Failure::Retry {
        reason: transport_cause(&e, 200).unwrap_or_else(|| "нет ответа".to_owned()),
        after: None,
    })?;
    let status = response.status();
    if status.as_u16() == 429 || status.is_server_error() {
        return Err(Failure::Retry {
            reason: format!("{service} ответил HTTP {}", status.as_u16()),
            after: retry_after(response.headers()),
        });
    }
    if !status.is_success() {
        return Err(Failure::Permanent {
            reason: format!("{service} отклонил запрос: HTTP {}", status.as_u16())
        });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| Failure::Retry {
            reason: format!("ответ оборван: {}", e.without_url()), after: None
        })?
    {
        if body.len() + chunk.len() > max_bytes {
            return Err(Failure::Permanent { reason: format!("ответ больше {max_bytes} байт") });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Scheme, host, port and path of a URL: no credentials, no query — safe for `Debug` and logs.
pub fn redacted_url(url: &url::Url) -> String {
    format!(
        "{}://{}{}{}",
        url.scheme(),
        url.host_str().unwrap_or(""),
        url.port().map(|p| format!(":{p}")).unwrap_or_default(),
        url.path()
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn retry_after_seconds_only() {
        use reqwest::header::{HeaderMap, RETRY_AFTER};
        let mut h = HeaderMap::new();
        assert_eq!(super::retry_after(&h), None);
        h.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(super::retry_after(&h), Some(std::time::Duration::from_secs(7)));
        h.insert(RETRY_AFTER, "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap());
        assert_eq!(super::retry_after(&h), None);
    }

    #[test]
    fn redacted_urls_carry_no_credentials_or_query() {
        let u = url::Url::parse("https://user:pw@remd.local:8443/port/emdr?key=k").unwrap();
        assert_eq!(super::redacted_url(&u), "https://remd.local:8443/port/emdr");
    }

    use std::io::{Read as _, Write as _};

    use super::*;

    /// A throw-away self-signed CA certificate (P-256), only ever parsed.
    const CA_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBoDCCAUegAwIBAgIUYkNXRDhw71uBtTPQYm2VsflmROgwCgYIKoZIzj0EAwIw
HTEbMBkGA1UEAwwSZWdpc3otaHR0cCB0ZXN0IENBMCAXDTI2MTEyNTIyNDcyMVoY
DzIxMjYxMTAxMjI0NzIxWjAdMRswGQYDVQQDDBJlZ2lzei1odHRwIHRlc3QgQ0Ew
WTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAARp/B6c9MHJx+kcYq4dbW+ZBhiR4I2w
6fAX0y2YBp8a8lv4P+n/tHWxFkFenSlPKRAQ0vGmRD9jvY3/QJgWNK57o2MwYTAd
BgNVHQ4EFgQUmFvQ0dEJisU+bXbzqByEY+4Lo6MwHwYDVR0jBBgwFoAUmFvQ0dEJ
isU+bXbzqByEY+4Lo6MwDwYDVR0TAQH/BAUwAwEB/zAOBgNVHQ8BAf8EBAMCAgQw
CgYIKoZIzj0EAwIDRwAwRAIgNzGhM5y3d41U0+4zKm0yFb9eI2XI2wt6L0Vlx7hv
rCYCIFI8kJZx9PxJkfWIIXwAQ51is6DK99USw5ph8U+wbKa5
-----END CERTIFICATE-----
";

    fn settings(extra_ca_bundle: Option<&Path>) -> ClientSettings<'_> {
        ClientSettings {
            timeout: Duration::from_secs(2),
            user_agent: "egisz-gateway/test",
            extra_ca_bundle,
            proxy: None,
        }
    }

    fn bundle(content: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(content.as_bytes()).unwrap();
        file
    }

    /// The reason of a [`BuildError::CaBundle`] for `path`, checking the path and the text.
    fn ca_reason(path: &Path) -> String {
        match build_client(&settings(Some(path))) {
            Err(e @ BuildError::CaBundle { .. }) => {
                let text = e.to_string();
                let BuildError::CaBundle { path: got, reason } = e else { unreachable!() };
                assert_eq!(got, path);
                assert_eq!(text, format!("extra CA bundle {}: {reason}", path.display()));
                reason
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn builds_without_and_with_an_extra_bundle() {
        build_client(&settings(None)).unwrap();
        let file = bundle(CA_PEM);
        build_client(&settings(Some(file.path()))).unwrap();
        let two = bundle(&format!("a comment line\n{CA_PEM}{CA_PEM}"));
        build_client(&settings(Some(two.path()))).unwrap();
    }

    #[test]
    fn a_missing_bundle_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let reason = ca_reason(&dir.path().join("ca.pem"));
        assert!(reason.contains("No such file or directory"), "{reason}");
    }

    #[test]
    fn a_bundle_that_is_not_pem_is_refused() {
        let file = bundle("-----BEGIN CERTIFICATE-----\n!!! not base64 !!!\n-----END CERTIFICATE-----\n");
        let reason = ca_reason(file.path());
        assert!(reason.starts_with("not a PEM bundle: "), "{reason}");
    }

    #[test]
    fn a_bundle_without_certificates_is_refused() {
        for content in ["", "this is not a certificate\n"] {
            let file = bundle(content);
            assert_eq!(ca_reason(file.path()), "no certificate in the file", "{content:?}");
        }
    }

    #[test]
    fn an_invalid_user_agent_is_refused_before_the_bundle_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("ca.pem");
        for user_agent in ["egisz\ngateway", "a\u{7f}b", "a\rb"] {
            let s = ClientSettings { user_agent, ..settings(Some(&missing)) };
            let err = build_client(&s).unwrap_err();
            assert!(matches!(err, BuildError::InvalidUserAgent), "{user_agent:?}: {err:?}");
            assert_eq!(err.to_string(), "user_agent has characters not allowed in an HTTP header");
        }
    }

    #[tokio::test]
    async fn a_refused_connection_is_its_kind_without_the_address() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let client = build_client(&settings(None)).unwrap();
        let err = client.get(format!("http://127.0.0.1:{port}/path?snils=20311784514")).send().await.unwrap_err();
        assert!(err.is_connect(), "{err:?}");
        assert!(err.to_string().contains(&port.to_string()), "the reqwest text quotes the URL: {err}");
        assert_eq!(transport_cause(&err, 160).as_deref(), Some("connection refused"));
    }

    #[tokio::test]
    async fn another_cause_is_its_message_cut_without_the_address() {
        // A server that answers a TLS handshake with plain HTTP: the innermost cause is
        // a rustls error, not an OS error.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let _ = stream.read(&mut [0; 1024]);
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n");
        });
        let client = build_client(&settings(None)).unwrap();
        let err = client.get(format!("https://127.0.0.1:{port}/path")).send().await.unwrap_err();
        server.join().unwrap();

        let full = transport_cause(&err, 1000).unwrap();
        assert!(!full.is_empty() && !full.ends_with('…'), "{full}");
        assert!(!full.contains(&port.to_string()) && !full.contains("127.0.0.1"), "{full}");
        let cut = transport_cause(&err, 10).unwrap();
        assert_eq!(cut, format!("{}…", full.chars().take(10).collect::<String>()));
    }

    #[test]
    fn long_causes_are_cut() {
        let long = "x".repeat(170);
        let cut = shorten(&long, 160);
        assert_eq!(cut.chars().count(), 161);
        assert!(cut.ends_with('…'));
        assert_eq!(shorten(&"я".repeat(160), 160), "я".repeat(160));
        assert_eq!(shorten(&"я".repeat(161), 160), format!("{}…", "я".repeat(160)));
        assert_eq!(shorten(" short ", 160), "short");
    }
}
