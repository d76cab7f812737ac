//! Request parameters read the same way by the lists, the report and the console.

use chrono::{DateTime, FixedOffset, Utc};
use egisz_contract::Oid;
use serde::{Deserialize, Serialize};

use super::extract::Caller;
use super::problem::{ApiError, FieldError};
use crate::auth::Scope;
use crate::submission::{ListFilter, Status};

/// The years a time parameter may name.
const YEARS: std::ops::RangeInclusive<i32> = 2000..=2100;

/// RFC 3339, or a date meaning midnight in the region's time; years 2000–2100.
pub fn region_time(
    raw: Option<&str>,
    name: &str,
    offset: FixedOffset,
    errors: &mut Vec<FieldError>,
) -> Option<DateTime<Utc>> {
    use chrono::Datelike;
    let s = raw.map(str::trim).filter(|s| !s.is_empty())?;
    let parsed = match DateTime::parse_from_rfc3339(s) {
        Ok(t) => Some(t.with_timezone(&Utc)),
        Err(_) => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .and_then(|m| m.and_local_timezone(offset).single())
            .map(|t| t.to_utc()),
    };
    match parsed {
        Some(t) if YEARS.contains(&t.year()) => Some(t),
        _ => {
            errors.push(FieldError::new(
                "datetime",
                name,
                format!("время в RFC 3339 или дата ГГГГ-ММ-ДД (годы 2000–2100), получено {s:?}"),
            ));
            None
        }
    }
}

/// The page size a list asks for: 1–500, `default` when not given.
pub fn page_limit(raw: Option<u32>, default: u32, errors: &mut Vec<FieldError>) -> u32 {
    let limit = raw.unwrap_or(default);
    if !(1..=500).contains(&limit) {
        errors.push(FieldError::new("limit", "limit", "limit от 1 до 500"));
    }
    limit
}

/// The filters the document list, the bulk re-run and the console share.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
pub struct Filters {
    /// MO OID; default: every organisation of the key.
    pub organization: Option<String>,
    pub status: Option<String>,
    pub kind: Option<u32>,
    /// Created at or after (RFC 3339).
    pub from: Option<String>,
    /// Created before (RFC 3339).
    pub to: Option<String>,
    pub error_code: Option<String>,
    /// `retry`, `reconcile`, `needs_data_fix`, `needs_admin`.
    pub disposition: Option<String>,
}

impl Filters {
    /// The store's filter, within `caller`'s organisations (403 for an organisation outside
    /// them); a malformed field is added to `errors` and left out.
    pub fn parse(
        &self,
        caller: &Caller,
        offset: chrono::FixedOffset,
        errors: &mut Vec<FieldError>,
    ) -> Result<ListFilter, ApiError> {
        self.parse_for(&caller.0.scope, offset, errors)
            .map_err(|oid| ApiError::forbidden(format!("ключ API не может действовать от имени организации {oid}")))
    }

    /// As [`Filters::parse`], for a scope; `Err` names an organisation outside it. A date
    /// is midnight at `offset` (the region's time).
    pub fn parse_for(
        &self,
        scope: &Scope,
        offset: chrono::FixedOffset,
        errors: &mut Vec<FieldError>,
    ) -> Result<ListFilter, Oid> {
        let organizations = match self.organization.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            Some(raw) => match Oid::parse_organization(raw) {
                Ok(oid) if scope.allows(&oid) => Some(vec![oid]),
                Ok(oid) => return Err(oid),
                Err(e) => {
                    errors.push(FieldError::new("organization_oid", "organization", e.to_string()));
                    None
                }
            },
            None => scope.organizations(),
        };
        let statuses = match self.status.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => Vec::new(),
            Some(s) => match s.parse::<Status>() {
                Ok(status) => vec![status],
                Err(_) => {
                    let known = Status::ALL.map(|x| x.as_str()).join(", ");
                    errors.push(FieldError::new(
                        "status",
                        "status",
                        format!("статус {s:?} неизвестен; возможные: {known}"),
                    ));
                    Vec::new()
                }
            },
        };
        let disposition = match self.disposition.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => s
                .parse::<crate::submission::Disposition>()
                .map_err(|_| {
                    let known = crate::submission::Disposition::ALL.map(|x| x.as_str()).join(", ");
                    errors.push(FieldError::new(
                        "disposition",
                        "disposition",
                        format!("решение {s:?} неизвестно; возможные: {known}"),
                    ))
                })
                .ok(),
        };
        let mut time = |raw: &Option<String>, name: &str| region_time(raw.as_deref(), name, offset, errors);
        let from = time(&self.from, "from");
        let to = time(&self.to, "to");
        Ok(ListFilter {
            organizations,
            statuses,
            kind: self.kind,
            from,
            to,
            error_code: self.error_code.clone().map(|c| c.trim().to_owned()).filter(|c| !c.is_empty()),
            disposition,
            before: None,
            limit: 0,
            oldest_first: false,
            not_due_at: None,
        })
    }
}
