//! # egisz-nsi
//!
//! The gateway's client of the federal NSI service (the Ministry of Health's register of
//! reference dictionaries): the versions of a dictionary, and the rows of one version as
//! `(code, name)` pairs, or page by page as the records of chosen columns for a dictionary too
//! large to hold (the FRMO organisations and departments: [`FrmoOrganization`],
//! [`FrmoDepartment`]) ([`NsiClient`]).
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
//! - paging the FRMO dictionaries ([`NsiClient::pages`]): one bounded page at a time, as
//!   [`FrmoOrganization`] / [`FrmoDepartment`] records, at most [`MAX_FRMO_ORGANIZATIONS`] /
//!   [`MAX_FRMO_DEPARTMENTS`] rows, for the caller to stream into storage;
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

use chrono::NaiveDate;
use egisz_contract::Failure;

pub use wire::{Column, Columns, DICTIONARIES, Record};

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
/// Most organisations one FRMO version may hold (the country has some 80,000 with their
/// branches; five times over).
pub const MAX_FRMO_ORGANIZATIONS: u64 = 500_000;
/// Most departments one FRMO version may hold (some 400,000 in the country; five times over).
pub const MAX_FRMO_DEPARTMENTS: u64 = 2_000_000;
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
        let wanted = columns.wanted();
        let mut pages = self.pages(columns.oid, version, &wanted, MAX_ROWS as u64);
        let mut out = Vec::new();
        let mut bytes = 0usize;
        while let Some(page) = pages.next().await? {
            for mut record in page {
                let name = record.pop().flatten().unwrap_or_default();
                let code = record.pop().flatten().unwrap_or_default();
                bytes += code.len() + name.len();
                if bytes > MAX_VERSION_BYTES {
                    return Err(Failure::Permanent {
                        reason: format!("в версии больше {MAX_VERSION_BYTES} байт кодов и наименований"),
                    });
                }
                out.push((code, name));
            }
        }
        Ok(out)
    }

    /// The rows of `(oid, version)` page by page, as [`wire::Record`]s of `columns`, at most
    /// `max_rows` in all: for a dictionary too large to hold, which the caller streams
    /// into storage one page at a time.
    pub fn pages<'a>(&'a self, oid: &'a str, version: &str, columns: &'a [wire::Column], max_rows: u64) -> Pages<'a> {
        Pages {
            client: self,
            oid,
            version: version.to_owned(),
            columns,
            max_rows,
            page: 0,
            total: None,
            seen: 0,
            done: false,
        }
    }
}

/// The pages of one dictionary version ([`NsiClient::pages`]). [`Pages::next`] gives each
/// page's records, then `None` once the pages add up to the `total` NSI gave; a version that
/// claims more than `max_rows`, or whose pages do not add up to its `total`, is an error, so
/// that a partial copy never passes for a complete one.
pub struct Pages<'a> {
    client: &'a NsiClient,
    oid: &'a str,
    version: String,
    columns: &'a [wire::Column],
    max_rows: u64,
    page: u64,
    total: Option<u64>,
    seen: u64,
    done: bool,
}

impl Pages<'_> {
    /// The next page's records; `None` when every row has been given.
    pub async fn next(&mut self) -> Result<Option<Vec<wire::Record>>, Failure> {
        if self.done {
            return Ok(None);
        }
        self.page += 1;
        let body = self
            .client
            .body(
                wire::DATA,
                &[
                    (wire::IDENTIFIER, self.oid.to_owned()),
                    (wire::VERSION, self.version.clone()),
                    (wire::PAGE, self.page.to_string()),
                    (wire::SIZE, wire::PAGE_SIZE.to_string()),
                ],
            )
            .await?;
        let answer = wire::read_records(&body, self.columns)
            .map_err(|why| Failure::Permanent { reason: format!("справочник {}: {why}", self.oid) })?;
        drop(body);
        self.total = self.total.or(answer.total);
        let max = self.max_rows;
        if let Some(t) = self.total
            && t > max
        {
            return Err(Failure::Permanent {
                reason: format!("НСИ обещал {t} строк, больше {max}")
            });
        }
        let got = answer.rows.len() as u64;
        self.seen += got;
        if self.seen > max {
            return Err(Failure::Permanent {
                reason: format!("в справочнике больше {max} строк")
            });
        }
        self.done = match self.total {
            Some(t) => self.seen >= t || got == 0,
            None => got == 0,
        };
        if self.done
            && let Some(t) = self.total
            && self.seen != t
        {
            return Err(Failure::Permanent {
                reason: format!("НСИ обещал {t} строк, страницы дали {}", self.seen)
            });
        }
        if got == 0 { Ok(None) } else { Ok(Some(answer.rows)) }
    }

    /// Rows given so far.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// The rows NSI says the version has, once the first page is read.
    pub fn total(&self) -> Option<u64> {
        self.total
    }
}

/// A medical organisation as FRMO publishes it (the columns the gateway keeps).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrmoOrganization {
    pub oid: String,
    pub name_full: String,
    pub name_short: Option<String>,
    pub region_id: Option<String>,
    pub region_name: Option<String>,
    /// The day it was entered in the register.
    pub created: Option<NaiveDate>,
    /// The day it was deleted from it.
    pub deleted: Option<NaiveDate>,
}

impl FrmoOrganization {
    /// A record of [`wire::frmo::ORGANIZATION_COLUMNS`]; a date NSI writes in a form not
    /// modelled refuses the whole version (Russian reason).
    pub fn of(record: wire::Record) -> Result<Self, String> {
        let [oid, name_full, name_short, region_id, region_name, created, deleted]: [Option<String>; 7] =
            record.try_into().map_err(|_| "строка ФРМО другого вида".to_owned())?;
        let oid = oid.unwrap_or_default();
        Ok(Self {
            created: date_of(created.as_deref(), &oid, "create_date")?,
            deleted: date_of(deleted.as_deref(), &oid, "delete_date")?,
            oid,
            name_full: name_full.unwrap_or_default(),
            name_short,
            region_id,
            region_name,
        })
    }
}

/// A structural unit of a medical organisation as FRMO publishes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrmoDepartment {
    pub oid: String,
    /// The organisation's OID (`mo_oid`).
    pub organization: String,
    pub name: Option<String>,
    pub created: Option<NaiveDate>,
    /// The day it was liquidated.
    pub liquidated: Option<NaiveDate>,
}

impl FrmoDepartment {
    /// A record of [`wire::frmo::DEPARTMENT_COLUMNS`], as [`FrmoOrganization::of`].
    pub fn of(record: wire::Record) -> Result<Self, String> {
        let [oid, organization, name, created, liquidated]: [Option<String>; 5] =
            record.try_into().map_err(|_| "строка ФРМО другого вида".to_owned())?;
        let oid = oid.unwrap_or_default();
        Ok(Self {
            created: date_of(created.as_deref(), &oid, "depart_create_date")?,
            liquidated: date_of(liquidated.as_deref(), &oid, "depart_liquidation_date")?,
            oid,
            organization: organization.unwrap_or_default(),
            name,
        })
    }
}

/// A date as NSI writes it: `2019-05-14`, with or without a time after it
/// (`2019-05-14T00:00:00`, `2019-05-14 00:00:00.0`), or `14.05.2019` **[model]**.
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    let text = text.trim();
    let head = text.get(..10)?;
    let rest = &text[10..];
    if !(rest.is_empty() || rest.starts_with('T') || rest.starts_with(' ')) {
        return None;
    }
    NaiveDate::parse_from_str(head, "%Y-%m-%d").or_else(|_| NaiveDate::parse_from_str(head, "%d.%m.%Y")).ok()
}

fn date_of(text: Option<&str>, oid: &str, column: &str) -> Result<Option<NaiveDate>, String> {
    match text {
        None => Ok(None),
        Some(t) => parse_date(t).map(Some).ok_or_else(|| format!("у {oid} в столбце {column} не дата")),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_as_nsi_writes_them() {
        let day = NaiveDate::from_ymd_opt(2019, 5, 14);
        for text in ["2019-05-14", " 2019-05-14T00:00:00", "2019-05-14 00:00:00.0", "14.05.2019"] {
            assert_eq!(parse_date(text), day, "{text}");
        }
        for text in ["", "2019-05", "2019-05-14x", "2019-13-01", "вчера", "14/05/2019"] {
            assert_eq!(parse_date(text), None, "{text}");
        }
    }

    #[test]
    fn frmo_records_read_by_their_columns() {
        let s = |v: &str| Some(v.to_owned());
        let org =
            FrmoOrganization::of(vec![s("1.2.3"), s("Полное"), None, s("42"), s("Кузбасс"), s("2010-01-01"), None])
                .unwrap();
        assert_eq!((org.oid.as_str(), org.created, org.deleted), ("1.2.3", NaiveDate::from_ymd_opt(2010, 1, 1), None));
        let bad = FrmoOrganization::of(vec![s("1.2.3"), s("П"), None, None, None, None, s("скоро")]);
        assert!(bad.unwrap_err().contains("delete_date"));
        let dept = FrmoDepartment::of(vec![s("1.2.3.0.1"), s("1.2.3"), None, None, s("01.02.2024")]).unwrap();
        assert_eq!(dept.liquidated, NaiveDate::from_ymd_opt(2024, 2, 1));
        assert!(FrmoDepartment::of(vec![None; 3]).is_err(), "another shape");
    }
}
