//! # egisz-nsi
//!
//! The gateway's client of the federal NSI service (the Ministry of Health's register of
//! reference dictionaries): the versions of a dictionary, and the rows of one version as
//! `(code, name)` pairs ([`NsiClient`]).
//!
//! ## What this crate owns
//!
//! - the wire (`wire`: paths, parameters, answer shapes, the code and name columns of each
//!   dictionary the gateway refreshes — **[model]** where public client code is all there is);
//! - paging through `data`, every dimension bounded by a named constant: [`MAX_ROWS`] rows
//!   (a `total` above it refused with the first page), [`MAX_VERSION_BYTES`] of codes and
//!   names in one version, [`MAX_CODE_BYTES`] and [`MAX_NAME_BYTES`] per field,
//!   [`wire::MAX_PAGE_ROWS`] rows per page, [`MAX_ANSWER_BYTES`] per answer,
//!   [`MAX_VERSION_LABEL_BYTES`] per version label; each page is read straight into
//!   `(code, name)` pairs (every other column skipped, never kept), so a hostile NSI costs
//!   at most one bounded page and the rows kept so far;
//! - the mapping of every failure to [`Failure`] (no answer: `Retry`; an answer of another
//!   shape: `Permanent`).
//!
//! ## What it must not do
//!
//! - decide anything: which version to take, whether rows are good enough to use, and what
//!   to keep are the gateway's (`src/nsi.rs`);
//! - follow NSI into code: rows are data.
//!
//! ## Layout
//!
//! - `wire`: the modelled names; this file: [`NsiClient`].
#![forbid(unsafe_code)]

pub mod wire;

use std::time::Duration;

use egisz_contract::Failure;

pub use wire::{Columns, DICTIONARIES};

/// Most rows of one dictionary version accepted.
pub const MAX_ROWS: usize = 200_000;
/// Most bytes of codes and names in one dictionary version (the largest the gateway uses,
/// the REMD message codes, is some 150 KB: a hundred times over).
pub const MAX_VERSION_BYTES: usize = 4 * 1024 * 1024;
/// Longest code, in bytes.
pub const MAX_CODE_BYTES: usize = 256;
/// Longest name, in bytes (2,048 Cyrillic characters).
pub const MAX_NAME_BYTES: usize = 4096;
/// Largest answer read, in bytes (a page of [`wire::PAGE_SIZE`] rows at the longest fields
/// fits twice over).
pub const MAX_ANSWER_BYTES: usize = 8 * 1024 * 1024;
/// Longest version label taken from NSI's list, in bytes (real ones: "7.5", "3.18").
pub const MAX_VERSION_LABEL_BYTES: usize = 64;

/// One row: the code and the name.
pub type Row = (String, String);

/// The NSI REST API at one base URL.
#[derive(Debug, Clone)]
pub struct NsiClient {
    client: reqwest::Client,
    base: url::Url,
}

impl NsiClient {
    pub fn new(base: url::Url, timeout: Duration) -> Result<Self, egisz_http::BuildError> {
        let client = egisz_http::build_client(&egisz_http::ClientSettings {
            timeout,
            user_agent: concat!("egisz-gateway/", env!("CARGO_PKG_VERSION")),
            extra_ca_bundle: None,
            proxy: None,
        })?;
        let base = if base.path().ends_with('/') { base } else { url::Url::parse(&format!("{base}/")).unwrap_or(base) };
        Ok(Self { client, base })
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str, query: &[(&str, String)]) -> Result<T, Failure> {
        let body = self.body(path, query).await?;
        serde_json::from_slice(&body).map_err(|e| Failure::Permanent {
            reason: format!("ответ НСИ другого вида: {}", e.classify_text()),
        })
    }

    async fn body(&self, path: &str, query: &[(&str, String)]) -> Result<Vec<u8>, Failure> {
        let url = self.base.join(path).map_err(|e| Failure::Configuration { reason: format!("nsi.base_url: {e}") })?;
        let sent = self.client.get(url).query(query).send().await;
        egisz_http::answer_body(sent, "НСИ", MAX_ANSWER_BYTES).await
    }

    /// The versions NSI lists for `oid`, as it lists them.
    pub async fn versions(&self, oid: &str) -> Result<Vec<String>, Failure> {
        let answer: wire::VersionsAnswer = self
            .get(wire::VERSIONS, &[(wire::IDENTIFIER, oid.to_owned()), (wire::SIZE, wire::VERSIONS_ASKED.to_string())])
            .await?;
        let versions: Vec<String> =
            answer.list.into_iter().map(|v| v.version.trim().to_owned()).filter(|v| !v.is_empty()).collect();
        if versions.iter().any(|v| v.len() > MAX_VERSION_LABEL_BYTES) {
            return Err(Failure::Permanent {
                reason: format!("метка версии длиннее {MAX_VERSION_LABEL_BYTES} байт")
            });
        }
        Ok(versions)
    }

    /// Every row of `(oid, version)` as `(code, name)`, by the dictionary's columns. A row
    /// without the code or the name column is an error of the whole answer (another shape
    /// than modelled), and so is a version whose pages do not add up to the `total` NSI
    /// gives: a partial copy must never pass for a complete one.
    pub async fn rows(&self, columns: &Columns, version: &str) -> Result<Vec<Row>, Failure> {
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let mut total = None;
        for page in 1.. {
            let body = self
                .body(
                    wire::DATA,
                    &[
                        (wire::IDENTIFIER, columns.oid.to_owned()),
                        (wire::VERSION, version.to_owned()),
                        (wire::PAGE, page.to_string()),
                        (wire::SIZE, wire::PAGE_SIZE.to_string()),
                    ],
                )
                .await?;
            let answer = wire::read_page(&body, columns)
                .map_err(|why| Failure::Permanent { reason: format!("справочник {}: {why}", columns.oid) })?;
            drop(body);
            total = total.or(answer.total);
            if let Some(t) = total
                && t > MAX_ROWS as u64
            {
                return Err(Failure::Permanent {
                    reason: format!("НСИ обещал {t} строк, больше {MAX_ROWS}")
                });
            }
            let got = answer.rows.len();
            for (code, name) in answer.rows {
                bytes += code.len() + name.len();
                out.push((code, name));
                if out.len() > MAX_ROWS {
                    return Err(Failure::Permanent {
                        reason: format!("в справочнике больше {MAX_ROWS} строк")
                    });
                }
                if bytes > MAX_VERSION_BYTES {
                    return Err(Failure::Permanent {
                        reason: format!("в версии больше {MAX_VERSION_BYTES} байт кодов и наименований"),
                    });
                }
            }
            let done = match total {
                Some(t) => out.len() as u64 >= t || got == 0,
                None => got == 0,
            };
            if done {
                break;
            }
        }
        if let Some(t) = total
            && out.len() as u64 != t
        {
            return Err(Failure::Permanent {
                reason: format!("НСИ обещал {t} строк, страницы дали {}", out.len())
            });
        }
        Ok(out)
    }
}

trait Classify {
    fn classify_text(&self) -> &'static str;
}

impl Classify for serde_json::Error {
    fn classify_text(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "ошибка чтения",
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => "не JSON",
            serde_json::error::Category::Data => "не те поля",
        }
    }
}
