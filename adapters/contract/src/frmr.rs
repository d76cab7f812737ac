//! FRMR, the federal register of medical workers: the person record the gateway needs and
//! the lookup trait the FRMR adapter implements.
//!
//! These are domain types (snake_case when serialised, as the gateway stores them in its
//! cache); the FRMR wire format (camelCase envelopes) lives only in the adapter.

use chrono::NaiveDate;

use crate::{Failure, Oid, Personal, Snils};

/// A medical worker as FRMR knows them, with every employment card.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FrmrPerson {
    /// FRMR's own id of the person (like `2023.3475290`).
    pub frmr_id: Option<String>,
    pub snils: Snils,
    pub last_name: Personal<String>,
    pub first_name: Personal<String>,
    pub patronymic: Option<Personal<String>>,
    pub birth_date: Option<Personal<NaiveDate>>,
    /// 1 male, 2 female (NSI 1.2.643.5.1.13.13.11.1040).
    pub gender: Option<u8>,
    pub cards: Vec<PersonCard>,
}

/// One employment record ("card") of a person in a medical organisation.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PersonCard {
    /// FRMR's id of the card.
    pub id: Option<String>,
    /// OID of the medical organisation.
    pub organization: Option<String>,
    pub organization_name: Option<String>,
    /// OID of the department (`<MO OID>.0.<n>`).
    pub department: Option<String>,
    pub department_name: Option<String>,
    /// Position code in NSI 1.2.643.5.1.13.13.11.1002 (the code a SEMD author carries).
    pub position_code: Option<String>,
    pub position: Option<String>,
    /// 1 main job, 2 internal part-time, 3 combined, 4 external part-time.
    pub position_type: Option<u8>,
    pub rate: Option<f64>,
    /// Hired on.
    pub begin_date: Option<NaiveDate>,
    /// Dismissed on; `None` while employed.
    pub end_date: Option<NaiveDate>,
    /// Periods of temporary absence (leave, sick leave, …).
    pub derelictions: Vec<Dereliction>,
}

/// A temporary absence recorded on a card.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Dereliction {
    pub reason_id: Option<String>,
    pub begin_date: Option<NaiveDate>,
    pub end_date: Option<NaiveDate>,
}

/// Lookup of a person in FRMR. Implemented by the FRMR REST adapter.
///
/// `Ok(None)` means FRMR answered that it has no such person. Every other failure is one
/// of [`Failure`]'s kinds: `Retry` (already retried within the adapter's own limits),
/// `Permanent` (FRMR refused the request as malformed) or `Configuration` (token or
/// rights). `Unknown` is never returned: a lookup is safe to repeat.
#[async_trait::async_trait]
pub trait FrmrRegistry: Send + Sync {
    async fn person_full(&self, organization: &Oid, snils: &Snils) -> Result<Option<FrmrPerson>, Failure>;
}
