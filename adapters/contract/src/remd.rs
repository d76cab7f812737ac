//! REMD, the federal register of medical documents: the registration request as the
//! gateway derives it from a document, the answers, REMD's calls back to us, and the trait
//! the REMD SOAP adapter implements.
//!
//! Domain types only; the SOAP wire format (element names, namespaces, envelopes) lives in
//! the adapter, in one module.

use chrono::{DateTime, FixedOffset, NaiveDate};

use crate::{Failure, Oid, Personal, Snils};

/// A coded value with the version of its dictionary (`<ser:role version="2.4">1</ser:role>`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Coded {
    pub code: String,
    pub version: String,
}

/// The patient of a document, as REMD's request carries it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Patient {
    /// The MIS's patient id (`recordTarget/patientRole/id[1]/@extension`).
    pub local_id: String,
    pub snils: Option<Snils>,
    pub surname: Personal<String>,
    pub name: Personal<String>,
    pub patr_name: Option<Personal<String>>,
    pub birth_date: Personal<NaiveDate>,
    /// 1 male, 2 female (NSI 1.2.643.5.1.13.13.11.1040).
    pub gender: u8,
}

/// Who signed (an author or the legal authenticator of the document).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Signer {
    /// The MIS's id of the worker (`assignedAuthor/id[1]/@extension`).
    pub local_id: String,
    /// Signer role (NSI 1.2.643.5.1.13.13.99.2.368) with its version.
    pub role: Coded,
    pub last_name: Personal<String>,
    pub first_name: Personal<String>,
    pub middle_name: Option<Personal<String>>,
    pub snils: Snils,
    /// Position (NSI 1.2.643.5.1.13.13.11.1002) with its version.
    pub position: Coded,
    pub speciality: Option<Coded>,
    pub department: Option<Oid>,
}

/// CRC-32 (IEEE) of `bytes`: the `checksum` REMD expects for a document and for the
/// decoded bytes of a signature, written as an unsigned decimal. A fact of the REMD contract,
/// so it lives with its types (intake and validation compute it without the SOAP adapter).
pub fn checksum(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

/// A detached CMS signature and the CRC-32 of its decoded bytes.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SignatureData {
    pub data: Vec<u8>,
    pub checksum: u32,
}

impl std::fmt::Debug for SignatureData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SignatureData({} bytes, crc32 {})", self.data.len(), self.checksum)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PersonalSignature {
    pub signer: Signer,
    pub signature: SignatureData,
}

/// `registerDocument`: everything but the file, which REMD pulls with `getDocumentFile`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RegisterDocument {
    /// Our `wsa:MessageID` (a UUID, without `urn:uuid:`); REMD correlates its calls back by it.
    pub message_id: String,
    /// NSI 1520 id (40 for the TMK protocol).
    pub kind: u32,
    pub organization: Oid,
    pub department: Option<Oid>,
    /// `ClinicalDocument/id/@extension`.
    pub local_uid: String,
    /// `ClinicalDocument/effectiveTime`.
    pub creation_date_time: DateTime<FixedOffset>,
    pub patient: Patient,
    /// CRC-32 (IEEE) of the document bytes.
    pub checksum: u32,
    pub personal_signatures: Vec<PersonalSignature>,
    pub org_signature: Option<SignatureData>,
}

/// A message of REMD (a code of NSI 1.2.643.5.1.13.13.99.2.305 and its text).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RemdMessage {
    pub code: String,
    /// REMD's text. May quote document data: store it, never log it.
    pub message: Personal<String>,
}

/// REMD's synchronous answer to `registerDocument`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterAck {
    /// Request accepted; the result comes later through `sendRegisterDocumentResult`.
    Accepted,
    /// Rejected at the first check.
    Rejected(Vec<RemdMessage>),
}

/// A document in the register.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RegistryItem {
    /// Opaque (seen: `16.62.23.09.000014523`).
    pub emdr_id: String,
    pub local_uid: Option<String>,
    pub kind: Option<u32>,
    pub registration_date_time: Option<DateTime<FixedOffset>>,
    pub store_till_date: Option<NaiveDate>,
    pub document_version: Option<String>,
}

/// `searchRegistryItem` filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    pub organization: Oid,
    pub kind: Option<u32>,
    pub register_date_begin: Option<DateTime<FixedOffset>>,
    pub register_date_end: Option<DateTime<FixedOffset>>,
    pub patient_snils: Option<Snils>,
}

/// Calls the gateway makes to REMD. Implemented by the REMD SOAP adapter.
///
/// `register_document` ends in `Failure::Unknown` when the request may have reached REMD
/// but no answer came (a timeout after sending): the caller must reconcile with
/// `search_registry_items` before sending again. Lookups are safe to repeat and never
/// return `Unknown`.
#[async_trait::async_trait]
pub trait RemdRegistry: Send + Sync {
    async fn register_document(&self, request: &RegisterDocument) -> Result<RegisterAck, Failure>;
    async fn search_registry_items(&self, query: &SearchQuery) -> Result<Vec<RegistryItem>, Failure>;
    async fn get_registry_item(&self, emdr_id: &str) -> Result<Option<RegistryItem>, Failure>;
}

/// REMD asks for the bytes of a document (`getDocumentFile`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentFileRequest {
    /// REMD's `wsa:MessageID` of this call (our answer's `wsa:RelatesTo`).
    pub message_id: String,
    /// The `wsa:MessageID` of our `registerDocument`.
    pub relates_to_message: Option<String>,
    pub emdr_id: Option<String>,
    pub local_uid: Option<String>,
}

/// How a registration ended, as REMD reports it (`sendRegisterDocumentResult`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ResultStatus {
    Success,
    Error,
}

/// REMD's result of a registration.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RegisterResult {
    /// REMD's `wsa:MessageID` of this call.
    pub message_id: String,
    /// The `wsa:MessageID` of our `registerDocument`: the correlation key.
    pub relates_to_message: String,
    pub status: ResultStatus,
    pub kind: Option<u32>,
    pub organization: Option<String>,
    pub local_uid: Option<String>,
    pub creation_date_time: Option<DateTime<FixedOffset>>,
    pub registry_item: Option<RegistryItem>,
    pub errors: Vec<RemdMessage>,
}
