//! The emulator's register: every document it registered, unique by
//! `(organization, localUid)`, with `emdrId`s in the seen form
//! (`16.62.23.09.000014523`: a prefix, a dot, a nine-digit counter).

use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, FixedOffset, Months, NaiveDate};
use egisz_contract::Snils;
use egisz_contract::remd::{RegistryItem, SearchQuery};
use serde::{Deserialize, Serialize};

/// How long REMD keeps a document, for `storeTillDate`. \[model\]: REMD's retention
/// periods are per kind and not public; the emulator uses one for all.
const STORE_FOR_YEARS: u32 = 25;

/// A document in the emulator's register.
///
/// `Debug` prints the document's size, not its bytes (they are personal data).
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryEntry {
    /// REMD's id of the registration: `<emdr_prefix>.<9-digit counter>`.
    pub emdr_id: String,
    /// The MO OID of the request (equal to the document's custodian).
    pub organization: String,
    /// NSI 1520 id.
    pub kind: u32,
    /// `ClinicalDocument/id/@extension`.
    pub local_uid: String,
    /// When it was registered, in +07:00 (the reference region's time), to the millisecond.
    pub registered_at: DateTime<FixedOffset>,
    /// CRC-32 of the document bytes (as requested, and as pulled).
    pub checksum: u32,
    /// The exact bytes pulled with `getDocumentFile` (empty when the sandbox was started
    /// with `keep_documents: false`).
    pub document: Vec<u8>,
}

impl fmt::Debug for RegistryEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryEntry")
            .field("emdr_id", &self.emdr_id)
            .field("organization", &self.organization)
            .field("kind", &self.kind)
            .field("local_uid", &self.local_uid)
            .field("registered_at", &self.registered_at)
            .field("checksum", &self.checksum)
            .field("document", &format_args!("{} bytes", self.document.len()))
            .finish()
    }
}

/// What `GET /_admin/registry` shows of an entry: everything but the bytes.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct EntryView {
    emdr_id: String,
    organization: String,
    kind: u32,
    local_uid: String,
    registered_at: DateTime<FixedOffset>,
    checksum: u32,
    document_bytes: usize,
    store_till_date: NaiveDate,
    document_version: String,
}

/// A registration as the register's file keeps it (one JSON line each): everything but
/// the bytes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Persisted {
    emdr_id: String,
    organization: String,
    kind: u32,
    local_uid: String,
    registered_at: DateTime<FixedOffset>,
    checksum: u32,
    size: usize,
    patient_snils: Option<String>,
    store_till_date: NaiveDate,
    document_version: String,
}

/// One registration with what the answers need besides the public entry.
struct Record {
    entry: RegistryEntry,
    /// The size of the pulled document (kept when the bytes are not).
    size: usize,
    patient_snils: Option<Snils>,
    store_till_date: NaiveDate,
    document_version: String,
}

impl Record {
    fn item(&self) -> RegistryItem {
        RegistryItem {
            emdr_id: self.entry.emdr_id.clone(),
            local_uid: Some(self.entry.local_uid.clone()),
            kind: Some(self.entry.kind),
            registration_date_time: Some(self.entry.registered_at),
            store_till_date: Some(self.store_till_date),
            document_version: Some(self.document_version.clone()),
        }
    }
}

/// What to register (everything but the id and the time, which the register assigns).
pub(crate) struct NewEntry {
    pub organization: String,
    pub kind: u32,
    pub local_uid: String,
    pub checksum: u32,
    pub document: Vec<u8>,
    pub patient_snils: Option<Snils>,
    pub document_version: String,
}

/// The register. Guarded by one mutex in the sandbox, so that the uniqueness check and the
/// insertion are one step: a document is never registered twice.
pub(crate) struct Registry {
    emdr_prefix: String,
    keep_documents: bool,
    records: Vec<Record>,
    /// `(organization, localUid)` → index.
    by_local_uid: HashMap<(String, String), usize>,
    /// `emdrId` → index.
    by_emdr_id: HashMap<String, usize>,
    /// The last counter value given out.
    counter: u64,
}

impl Registry {
    pub fn new(emdr_prefix: String, keep_documents: bool) -> Self {
        Self {
            emdr_prefix,
            keep_documents,
            records: Vec::new(),
            by_local_uid: HashMap::new(),
            by_emdr_id: HashMap::new(),
            counter: 0,
        }
    }

    /// True when the organisation already registered a document with this `localUid`.
    pub fn contains(&self, organization: &str, local_uid: &str) -> bool {
        self.by_local_uid.contains_key(&(organization.to_owned(), local_uid.to_owned()))
    }

    /// Registers `new` at `now` with the next `emdrId`, or `None` when its
    /// `(organization, localUid)` is already registered.
    pub fn register(&mut self, new: NewEntry, now: DateTime<FixedOffset>) -> Option<RegistryItem> {
        let key = (new.organization.clone(), new.local_uid.clone());
        if self.by_local_uid.contains_key(&key) {
            return None;
        }
        self.counter += 1;
        let emdr_id = format!("{}.{:09}", self.emdr_prefix, self.counter);
        let size = new.document.len();
        let record = Record {
            entry: RegistryEntry {
                emdr_id: emdr_id.clone(),
                organization: new.organization,
                kind: new.kind,
                local_uid: new.local_uid,
                registered_at: now,
                checksum: new.checksum,
                document: if self.keep_documents { new.document } else { Vec::new() },
            },
            size,
            patient_snils: new.patient_snils,
            store_till_date: now
                .date_naive()
                .checked_add_months(Months::new(12 * STORE_FOR_YEARS))
                .unwrap_or(NaiveDate::MAX),
            document_version: new.document_version,
        };
        let item = record.item();
        let index = self.records.len();
        self.records.push(record);
        self.by_local_uid.insert(key, index);
        self.by_emdr_id.insert(emdr_id, index);
        Some(item)
    }

    /// The last registration, as the register's file keeps it.
    pub fn last_persisted(&self) -> Option<Persisted> {
        self.records.last().map(|r| Persisted {
            emdr_id: r.entry.emdr_id.clone(),
            organization: r.entry.organization.clone(),
            kind: r.entry.kind,
            local_uid: r.entry.local_uid.clone(),
            registered_at: r.entry.registered_at,
            checksum: r.entry.checksum,
            size: r.size,
            patient_snils: r.patient_snils.as_ref().map(|s| s.as_str().to_owned()),
            store_till_date: r.store_till_date,
            document_version: r.document_version.clone(),
        })
    }

    /// Takes back a registration from the register's file (its bytes are not kept there);
    /// the counter continues after the largest one seen.
    pub fn restore(&mut self, p: Persisted) {
        let key = (p.organization.clone(), p.local_uid.clone());
        if self.by_local_uid.contains_key(&key) || self.by_emdr_id.contains_key(&p.emdr_id) {
            return;
        }
        if let Some(n) = p.emdr_id.rsplit('.').next().and_then(|n| n.parse::<u64>().ok()) {
            self.counter = self.counter.max(n);
        }
        let index = self.records.len();
        self.by_local_uid.insert(key, index);
        self.by_emdr_id.insert(p.emdr_id.clone(), index);
        self.records.push(Record {
            entry: RegistryEntry {
                emdr_id: p.emdr_id,
                organization: p.organization,
                kind: p.kind,
                local_uid: p.local_uid,
                registered_at: p.registered_at,
                checksum: p.checksum,
                document: Vec::new(),
            },
            size: p.size,
            patient_snils: p.patient_snils.and_then(|s| Snils::parse(&s).ok()),
            store_till_date: p.store_till_date,
            document_version: p.document_version,
        });
    }

    /// The registrations matching `query`, in registration order: the organisation, and
    /// when given the kind, `registerDateBegin <= registered_at <= registerDateEnd`, and the
    /// patient's SNILS.
    pub fn search(&self, query: &SearchQuery) -> Vec<RegistryItem> {
        self.records
            .iter()
            .filter(|r| r.entry.organization == query.organization.as_str())
            .filter(|r| query.kind.is_none_or(|kind| r.entry.kind == kind))
            .filter(|r| query.register_date_begin.is_none_or(|begin| r.entry.registered_at >= begin))
            .filter(|r| query.register_date_end.is_none_or(|end| r.entry.registered_at <= end))
            .filter(|r| query.patient_snils.as_ref().is_none_or(|snils| r.patient_snils.as_ref() == Some(snils)))
            .map(Record::item)
            .collect()
    }

    /// The registration with this `emdrId`.
    pub fn get(&self, emdr_id: &str) -> Option<RegistryItem> {
        self.by_emdr_id.get(emdr_id).map(|&i| self.records[i].item())
    }

    /// Every entry, in registration order.
    pub fn entries(&self) -> Vec<RegistryEntry> {
        self.records.iter().map(|r| r.entry.clone()).collect()
    }

    /// Every entry without its bytes, for the admin endpoint.
    pub fn views(&self) -> Vec<EntryView> {
        self.records
            .iter()
            .map(|r| EntryView {
                emdr_id: r.entry.emdr_id.clone(),
                organization: r.entry.organization.clone(),
                kind: r.entry.kind,
                local_uid: r.entry.local_uid.clone(),
                registered_at: r.entry.registered_at,
                checksum: r.entry.checksum,
                document_bytes: r.size,
                store_till_date: r.store_till_date,
                document_version: r.document_version.clone(),
            })
            .collect()
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use egisz_contract::Oid;

    use super::*;

    fn new(org: &str, uid: &str) -> NewEntry {
        NewEntry {
            organization: org.to_owned(),
            kind: 40,
            local_uid: uid.to_owned(),
            checksum: 7,
            document: b"<doc/>".to_vec(),
            patient_snils: Some(Snils::parse("15643219866").unwrap()),
            document_version: "1".to_owned(),
        }
    }

    fn at(hour: u32) -> DateTime<FixedOffset> {
        FixedOffset::east_opt(7 * 3600).unwrap().with_ymd_and_hms(2025, 1, 2, hour, 0, 0).unwrap()
    }

    #[test]
    fn ids_uniqueness_search_and_get() {
        let mut r = Registry::new("16.62.23.09".to_owned(), true);
        let first = r.register(new("1.2.3", "a"), at(10)).unwrap();
        assert_eq!(first.emdr_id, "16.62.23.09.000000001");
        assert_eq!(first.store_till_date, NaiveDate::from_ymd_opt(2050, 1, 2));
        assert!(r.register(new("1.2.3", "a"), at(11)).is_none(), "the same localUid twice");
        assert!(r.contains("1.2.3", "a") && !r.contains("1.2.4", "a"));
        let other = r.register(new("1.2.4", "a"), at(12)).unwrap();
        assert_eq!(other.emdr_id, "16.62.23.09.000000002");
        assert_eq!(r.len(), 2);

        let query = |begin, end| SearchQuery {
            organization: Oid::parse("1.2.3").unwrap(),
            kind: Some(40),
            register_date_begin: begin,
            register_date_end: end,
            patient_snils: None,
        };
        assert_eq!(r.search(&query(None, None)).len(), 1);
        assert_eq!(r.search(&query(Some(at(10)), Some(at(10)))).len(), 1);
        assert!(r.search(&query(Some(at(11)), None)).is_empty());
        assert!(r.search(&SearchQuery { kind: Some(41), ..query(None, None) }).is_empty());
        let other_patient = Some(Snils::parse("11223344595").unwrap());
        assert!(r.search(&SearchQuery { patient_snils: other_patient, ..query(None, None) }).is_empty());

        assert_eq!(r.get("16.62.23.09.000000002").unwrap().local_uid.as_deref(), Some("a"));
        assert!(r.get("16.62.23.09.000000003").is_none());
        let debug = format!("{:?}", r.entries()[0]);
        assert!(debug.contains("6 bytes") && !debug.contains("<doc/>"), "{debug}");
    }

    #[test]
    fn documents_can_be_dropped() {
        let mut r = Registry::new("1.2".to_owned(), false);
        r.register(new("1.2.3", "a"), at(10)).unwrap();
        assert!(r.entries()[0].document.is_empty());
        let view = serde_json::to_value(&r.views()[0]).unwrap();
        assert_eq!(view["document_bytes"], 6);
    }
}
