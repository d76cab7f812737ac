//! The `registerDocument` data derived from the header, so that nothing is typed twice and
//! the request cannot disagree with the document (REMD cross-checks `localUid`, the patient,
//! each signer, and the creation time against the document).

use chrono::{DateTime, FixedOffset};
use egisz_contract::remd::{Coded, Patient, PersonalSignature, RegisterDocument, SignatureData, Signer};
use egisz_contract::{Oid, OidError, Personal, Snils};

use crate::header::{AssignedPerson, CdaHeader};
use crate::violation::{Violation, rules};

const CD: &str = "/ClinicalDocument";

/// A medical worker named in the header (an author, the legal authenticator, or both),
/// with everything REMD's `signer` needs except the role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerParts {
    /// `id[1]/@extension`: the MIS's id of the worker.
    pub local_id: String,
    pub snils: Snils,
    pub last_name: Personal<String>,
    pub first_name: Personal<String>,
    pub middle_name: Option<Personal<String>>,
    /// `code/@code` and `@codeSystemVersion` (NSI 1.2.643.5.1.13.13.11.1002).
    pub position: Coded,
    /// `representedOrganization/id/@root` when it is a department (`<MO OID>.0.<n>`).
    pub department: Option<Oid>,
    /// Named as an `author`.
    pub author: bool,
    /// Named as the `legalAuthenticator`.
    pub legal_authenticator: bool,
}

impl SignerParts {
    /// The REMD signer. The role (NSI 1.2.643.5.1.13.13.99.2.368) is not in the CDA: it
    /// comes with the submitted signature.
    pub fn signer(&self, role: Coded) -> Signer {
        Signer {
            local_id: self.local_id.clone(),
            role,
            last_name: self.last_name.clone(),
            first_name: self.first_name.clone(),
            middle_name: self.middle_name.clone(),
            snils: self.snils.clone(),
            position: self.position.clone(),
            speciality: None,
            department: self.department.clone(),
        }
    }
}

/// Everything of `registerDocument` that the document itself determines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestParts {
    /// `id/@extension`.
    pub local_uid: String,
    /// `effectiveTime`.
    pub creation_date_time: DateTime<FixedOffset>,
    pub patient: Patient,
    /// The department of the legal authenticator (else of the first author) when the
    /// header names one (`representedOrganization/id/@root` = `<MO OID>.0.<n>`).
    pub department: Option<Oid>,
    /// The authors, then the legal authenticator, one entry per SNILS.
    pub signers: Vec<SignerParts>,
}

impl RequestParts {
    pub fn signer_parts(&self, snils: &Snils) -> Option<&SignerParts> {
        self.signers.iter().find(|s| &s.snils == snils)
    }

    /// The REMD signer with this SNILS, with the role given by the caller (from the
    /// signature entry), or `None` when nobody in the header has that SNILS.
    pub fn signer(&self, snils: &Snils, role: Coded) -> Option<Signer> {
        self.signer_parts(snils).map(|s| s.signer(role))
    }

    /// The whole request, from these parts and what only the submission knows.
    pub fn into_register_document(
        self,
        message_id: String,
        kind: u32,
        organization: Oid,
        checksum: u32,
        personal_signatures: Vec<PersonalSignature>,
        org_signature: Option<SignatureData>,
    ) -> RegisterDocument {
        RegisterDocument {
            message_id,
            kind,
            organization,
            department: self.department,
            local_uid: self.local_uid,
            creation_date_time: self.creation_date_time,
            patient: self.patient,
            checksum,
            personal_signatures,
            org_signature,
        }
    }
}

/// Derives the request data from a header. `zone_if_absent` is the offset a creation time
/// without one (precise to the day) is read in: the region's time zone, from configuration.
///
/// Fails with the same rule ids and paths as [`crate::check`] where a needed field is
/// missing or invalid; a header that passes `check` always derives.
pub fn register_request_parts(header: &CdaHeader, zone_if_absent: FixedOffset) -> Result<RequestParts, Vec<Violation>> {
    let mut out = Vec::new();
    let local_uid = header.local_uid().map(str::to_owned);
    if local_uid.is_none() {
        out.push(Violation::new(rules::H3, format!("{CD}/id/@extension"), "пусто: идентификатор документа (localUid)"));
    }
    let created = match &header.effective_time {
        Some(Ok(t)) => Some(t.to_datetime(zone_if_absent)),
        None => {
            out.push(Violation::new(rules::H5, format!("{CD}/effectiveTime"), "нет даты создания документа"));
            None
        }
        Some(Err(e)) => {
            out.push(Violation::new(
                rules::H5,
                format!("{CD}/effectiveTime/@value"),
                format!("дата создания документа: {e}"),
            ));
            None
        }
    };
    let patient = patient(header, &mut out);

    let mut signers: Vec<SignerParts> = Vec::new();
    let la = header.legal_authenticator().and_then(|l| l.assigned.as_ref());
    let people = header
        .authors
        .iter()
        .enumerate()
        .filter_map(|(i, a)| {
            a.assigned.as_ref().map(|p| (format!("{CD}/author[{}]/assignedAuthor", i + 1), rules::H9, p, true))
        })
        .chain(la.map(|p| (format!("{CD}/legalAuthenticator/assignedEntity"), rules::H11, p, false)));
    for (path, rule, person, is_author) in people {
        let Some(parts) = signer_parts(&path, rule, person, &mut out) else { continue };
        match signers.iter_mut().find(|s| s.snils == parts.snils) {
            Some(known) => {
                known.author |= is_author;
                known.legal_authenticator |= !is_author;
            }
            None => signers.push(SignerParts { author: is_author, legal_authenticator: !is_author, ..parts }),
        }
    }
    let department = la
        .and_then(department_of)
        .or_else(|| header.authors.iter().filter_map(|a| a.assigned.as_ref()).find_map(department_of));

    match (local_uid, created, patient) {
        (Some(local_uid), Some(creation_date_time), Some(patient)) if out.is_empty() => {
            Ok(RequestParts { local_uid, creation_date_time, patient, department, signers })
        }
        _ => Err(out),
    }
}

fn patient(header: &CdaHeader, out: &mut Vec<Violation>) -> Option<Patient> {
    let path = format!("{CD}/recordTarget/patientRole");
    let Some(p) = &header.patient else {
        out.push(Violation::new(rules::H8, path, "нет сведений о пациенте"));
        return None;
    };
    let snils = p.snils_id.as_ref().and_then(|i| i.snils.valid()).cloned();
    // A kind that gives the patient no MIS identifier (160: the SNILS is the only `id`)
    // names the patient by the SNILS **[model: what REMD expects in `localId` then is not
    // public]**; whether the kind requires the MIS identifier is rule H8's (`check`).
    let local_id = p
        .local_id
        .as_ref()
        .and_then(|i| i.extension.as_deref())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .or_else(|| snils.as_ref().map(|s| s.as_str().to_owned()));
    if local_id.is_none() {
        out.push(Violation::new(rules::H8, format!("{path}/id[1]/@extension"), "пусто: идентификатор пациента в МИС"));
    }
    let name = p.name();
    let family = name.and_then(|n| n.family());
    let given = name.and_then(|n| n.name());
    if family.is_none() || given.is_none() {
        out.push(Violation::new(rules::REQ, format!("{path}/patient/name"), "нет фамилии или имени пациента"));
    }
    let birth = match &p.birth_time {
        Some(Ok(t)) if t.expose().precision >= crate::time::TimePrecision::Day => Some(t.expose().date()),
        _ => {
            out.push(Violation::new(
                rules::REQ,
                format!("{path}/patient/birthTime/@value"),
                "нет даты рождения пациента",
            ));
            None
        }
    };
    let gender = match p.gender.as_ref().and_then(|g| g.code.as_deref()).map(str::trim) {
        Some("1") => Some(1),
        Some("2") => Some(2),
        _ => {
            out.push(Violation::new(
                rules::REQ,
                format!("{path}/patient/administrativeGenderCode/@code"),
                "пол пациента должен быть 1 или 2",
            ));
            None
        }
    };
    Some(Patient {
        local_id: local_id?,
        snils,
        surname: Personal(family?.to_owned()),
        name: Personal(given?.to_owned()),
        patr_name: name.and_then(|n| n.patronymic()).map(|s| Personal(s.to_owned())),
        birth_date: Personal(birth?),
        gender: gender?,
    })
}

fn signer_parts(path: &str, rule: &'static str, p: &AssignedPerson, out: &mut Vec<Violation>) -> Option<SignerParts> {
    let before = out.len();
    let local_id = p.local_id.as_ref().and_then(|i| i.extension.as_deref()).map(str::trim).filter(|s| !s.is_empty());
    if local_id.is_none() {
        out.push(Violation::new(rule, format!("{path}/id[1]/@extension"), "пусто: идентификатор сотрудника в МИС"));
    }
    let snils = p.snils();
    if snils.is_none() {
        out.push(Violation::new(rule, format!("{path}/id[2]/@extension"), "нет корректного СНИЛС сотрудника"));
    }
    let position = p.position.as_ref().and_then(|c| {
        let code = c.code.as_deref().map(str::trim).filter(|s| !s.is_empty())?;
        let version = c.code_system_version.as_deref().map(str::trim).filter(|s| !s.is_empty())?;
        Some(Coded { code: code.to_owned(), version: version.to_owned() })
    });
    if position.is_none() {
        out.push(Violation::new(rules::REQ, format!("{path}/code"), "нет кода должности или версии справочника"));
    }
    let name = p.name();
    let (family, given) = (name.and_then(|n| n.family()), name.and_then(|n| n.name()));
    if family.is_none() || given.is_none() {
        out.push(Violation::new(rules::REQ, format!("{path}/assignedPerson/name"), "нет фамилии или имени сотрудника"));
    }
    if out.len() > before {
        return None;
    }
    Some(SignerParts {
        local_id: local_id?.to_owned(),
        snils: snils?.clone(),
        last_name: Personal(family?.to_owned()),
        first_name: Personal(given?.to_owned()),
        middle_name: name.and_then(|n| n.patronymic()).map(|s| Personal(s.to_owned())),
        position: position?,
        department: department_of(p),
        author: false,
        legal_authenticator: false,
    })
}

/// `representedOrganization/id/@root` when it is a department of an MO (`<MO OID>.0.<n>`).
fn department_of(p: &AssignedPerson) -> Option<Oid> {
    let root = p.organization.as_ref()?.id.as_ref()?.root.as_deref()?;
    match Oid::parse_organization(root) {
        Err(OidError::Department(_)) => Oid::parse(root).ok(),
        _ => None,
    }
}
