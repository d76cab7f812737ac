//! The header rules H2–H12 of `SEMD-TMK.md` (H1 is enforced by [`CdaHeader::parse`]), and
//! the fields the `registerDocument` request needs (`REQ`).
//!
//! Readings of the rules where `SEMD-TMK.md` leaves room:
//! - H5: "not in the future" allows [`CLOCK_SKEW`]; day precision needs no time zone.
//! - H8: the patient's SNILS is required only when [`Expectations::require_patient_snils`];
//!   when present it must be valid.
//! - H11: "the same id pattern and SNILS as an author" is read as the same *shape* (`id[1]`
//!   `<MO OID>.100.<n>.<n>.70` with an extension, `id[2]` a valid SNILS, a position), not as
//!   "one of the authors": a head of department may give legal force to a document someone
//!   else wrote. That the legal authenticator has signed is checked with the signatures
//!   (`LEGAL_AUTHENTICATOR_NOT_FOUND`).
//! - H12: only top-level sections (`structuredBody/component/section`) count.
//!
//! - K1: the kind's templates ([`Expectations::template_ids`]) — one of them is named.
//!
//! H13 (dictionaries) is [`crate::check_dictionaries`]: it needs the caller's dictionaries.

use chrono::{DateTime, FixedOffset, TimeDelta};
use egisz_contract::{Oid, SnilsError};

use crate::header::{AssignedPerson, CdaHeader, InstanceId, PersonName, SNILS_ROOT, SnilsField, SnilsId};
use crate::time::TimePrecision;
use crate::violation::{Violation, rules};

/// NSI 1.2.643.5.1.13.13.11.1522, the document types (`ClinicalDocument/code`).
pub const DOCUMENT_TYPES: &str = "1.2.643.5.1.13.13.11.1522";
/// NSI 1.2.643.5.1.13.13.99.2.285, confidentiality levels.
pub const CONFIDENTIALITY: &str = "1.2.643.5.1.13.13.99.2.285";
/// NSI 1.2.643.5.1.13.13.11.1002, positions of medical workers.
pub const POSITIONS: &str = "1.2.643.5.1.13.13.11.1002";
/// NSI 1.2.643.5.1.13.13.99.2.197, section codes.
pub const SECTIONS: &str = "1.2.643.5.1.13.13.99.2.197";
/// How far ahead of `now` an `effectiveTime` may be before it counts as "in the future":
/// the MIS's clock and ours are not the same clock.
pub const CLOCK_SKEW: TimeDelta = TimeDelta::minutes(5);

const CD: &str = "/ClinicalDocument";

/// What the document is checked against: the kind it is submitted as and who submits it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectations {
    /// NSI 1520 id (40 for the TMK protocol).
    pub kind: u32,
    /// The kind's `ClinicalDocument/code` in NSI 1522 (36 for kind 40), from `mappings/`.
    pub cda_code: String,
    /// The submitting medical organisation: the root of the H3/H7/H8/H9/H11 identifiers and
    /// the custodian (H10).
    pub organization: Oid,
    /// The time "not in the future" is judged against (H5).
    pub now: DateTime<FixedOffset>,
    /// The sections the kind needs besides `DOCINFO` (a TMK protocol: `RESCONS`; H12).
    pub required_sections: Vec<String>,
    /// The kind's `templateId/@root` values: the document names at least one (K1). Empty:
    /// not checked.
    pub template_ids: Vec<String>,
    /// The kind needs the patient's SNILS (H8: "the kind may require it"; REMD: `NO_SNILS`).
    pub require_patient_snils: bool,
    /// The kind gives the patient an MIS identifier (`id[1]`, H8). Kind 160's schema allows
    /// the patient a single `id`, the SNILS: there the rule does not apply.
    pub patient_local_id: bool,
}

/// Checks a parsed header. Returns every violation found, in document order; empty when
/// the header passes all rules.
pub fn check(header: &CdaHeader, expectations: &Expectations) -> Vec<Violation> {
    let mut c = Checker { e: expectations, out: Vec::new() };
    c.h2(header);
    c.h3(header);
    c.h4(header);
    c.h5(header);
    c.h6(header);
    c.h7(header);
    c.h8(header);
    c.h9(header);
    c.h10(header);
    c.h11(header);
    c.h12(header);
    c.k1(header);
    c.out
}

/// [`CdaHeader::parse`], then [`check`]: the header when it passes, else every violation.
pub fn parse_and_check(bytes: &[u8], expectations: &Expectations) -> Result<CdaHeader, Vec<Violation>> {
    let header = CdaHeader::parse(bytes)?;
    let violations = check(&header, expectations);
    if violations.is_empty() { Ok(header) } else { Err(violations) }
}

fn text(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// `<organization>.100.<n>.<n>.<suffix>`, the identifier roots of a MIS inside an MO.
fn is_mis_root(root: Option<&str>, organization: &Oid, suffix: &str) -> bool {
    let Some(rest) = root.and_then(|r| r.strip_prefix(organization.as_str())).and_then(|r| r.strip_prefix(".100."))
    else {
        return false;
    };
    let arcs: Vec<&str> = rest.split('.').collect();
    matches!(&arcs[..], [mis, instance, s] if is_arc(mis) && is_arc(instance) && *s == suffix)
}

fn is_arc(arc: &str) -> bool {
    !arc.is_empty() && arc.bytes().all(|b| b.is_ascii_digit()) && !(arc.len() > 1 && arc.starts_with('0'))
}

fn snils_problem(e: &SnilsError) -> &'static str {
    match e {
        SnilsError::Format => "не 11 цифр",
        SnilsError::Checksum => "не совпадает контрольное число",
    }
}

/// Who a participant is, for messages and paths.
struct Who<'a> {
    path: String,
    whose: &'a str,
}

struct Checker<'a> {
    e: &'a Expectations,
    out: Vec<Violation>,
}

impl Checker<'_> {
    fn push(&mut self, rule: &'static str, path: impl Into<String>, message: impl Into<String>) {
        self.out.push(Violation::new(rule, path, message));
    }

    fn h2(&mut self, h: &CdaHeader) {
        if text(&h.realm_code) != Some("RU") {
            self.push(rules::H2, format!("{CD}/realmCode/@code"), "должен быть RU");
        }
        let type_id = h.type_id.clone().unwrap_or_default();
        if text(&type_id.root) != Some("2.16.840.1.113883.1.3") {
            self.push(rules::H2, format!("{CD}/typeId/@root"), "должен быть 2.16.840.1.113883.1.3");
        }
        if text(&type_id.extension) != Some("POCD_MT000040") {
            self.push(rules::H2, format!("{CD}/typeId/@extension"), "должен быть POCD_MT000040");
        }
        if text(&h.language_code) != Some("ru-RU") {
            self.push(rules::H2, format!("{CD}/languageCode/@code"), "должен быть ru-RU");
        }
    }

    fn mis_id(&mut self, rule: &'static str, path: &str, id: Option<&InstanceId>, suffix: &str, what: &str) {
        let Some(id) = id else {
            self.push(rule, path, format!("нет элемента: {what}"));
            return;
        };
        if !is_mis_root(text(&id.root), &self.e.organization, suffix) {
            self.push(
                rule,
                format!("{path}/@root"),
                format!(
                    "должен иметь вид {}.100.<номер МИС>.<экземпляр МИС>.{suffix} (OID организации-отправителя)",
                    self.e.organization
                ),
            );
        }
        if text(&id.extension).is_none() {
            self.push(rule, format!("{path}/@extension"), format!("пусто: {what}"));
        }
    }

    fn h3(&mut self, h: &CdaHeader) {
        self.mis_id(rules::H3, &format!("{CD}/id"), h.id.as_ref(), "51", "идентификатор документа (localUid)");
    }

    fn h4(&mut self, h: &CdaHeader) {
        let path = format!("{CD}/code");
        let Some(code) = &h.code else {
            self.push(rules::H4, path, "нет кода вида документа");
            return;
        };
        if text(&code.code_system) != Some(DOCUMENT_TYPES) {
            self.push(rules::H4, format!("{path}/@codeSystem"), format!("должен быть {DOCUMENT_TYPES}"));
        }
        if text(&code.code) != Some(self.e.cda_code.as_str()) {
            self.push(
                rules::H4,
                format!("{path}/@code"),
                format!("для вида документа {} код должен быть {}", self.e.kind, self.e.cda_code),
            );
        }
        if text(&code.code_system_version).is_none() {
            self.push(rules::H4, format!("{path}/@codeSystemVersion"), "не указана версия справочника");
        }
        if text(&code.display_name).is_none() {
            self.push(rules::H4, format!("{path}/@displayName"), "не указано наименование вида документа");
        }
    }

    fn h5(&mut self, h: &CdaHeader) {
        let path = format!("{CD}/effectiveTime/@value");
        match &h.effective_time {
            None => self.push(rules::H5, format!("{CD}/effectiveTime"), "нет даты создания документа"),
            Some(Err(e)) => self.push(rules::H5, path, format!("дата создания документа: {e}")),
            Some(Ok(t)) => {
                if t.precision < TimePrecision::Day {
                    self.push(rules::H5, &path, "дата создания должна быть указана как минимум с точностью до дня");
                }
                if t.precision >= TimePrecision::Minute && t.offset.is_none() {
                    self.push(rules::H5, &path, "время создания с точностью до минут требует часового пояса (+ччмм)");
                }
                if t.to_datetime(*self.e.now.offset()) > self.e.now + CLOCK_SKEW {
                    self.out.push(
                        Violation::new(rules::H5, &path, "дата создания документа в будущем")
                            .prevents("WRONG_CREATION_DATE"),
                    );
                }
            }
        }
    }

    fn h6(&mut self, h: &CdaHeader) {
        let system = h.confidentiality.as_ref().and_then(|c| text(&c.code_system));
        if system != Some(CONFIDENTIALITY) {
            self.push(
                rules::H6,
                format!("{CD}/confidentialityCode/@codeSystem"),
                format!("должен быть {CONFIDENTIALITY}"),
            );
        }
    }

    fn h7(&mut self, h: &CdaHeader) {
        self.mis_id(rules::H7, &format!("{CD}/setId"), h.set_id.as_ref(), "50", "идентификатор набора версий");
        if text(&h.version_number).is_none() {
            self.push(rules::H7, format!("{CD}/versionNumber/@value"), "не указан номер версии документа");
        }
    }

    /// `id[2]`: root `1.2.643.100.3` and a valid SNILS.
    fn snils_id(&mut self, rule: &'static str, who: &Who<'_>, id: Option<&SnilsId>, required: bool) {
        let path = format!("{}/id[2]", who.path);
        let Some(id) = id else {
            if required {
                self.out.push(Violation::new(rule, path, format!("нет СНИЛС {}", who.whose)).prevents("NO_SNILS"));
            }
            return;
        };
        if id.null_flavor.is_some() && text(&id.root).is_none() && id.snils == SnilsField::Absent {
            if required {
                self.out.push(
                    Violation::new(rule, path, format!("СНИЛС {} обязателен для этого вида документа", who.whose))
                        .prevents("NO_SNILS"),
                );
            }
            return;
        }
        if text(&id.root) != Some(SNILS_ROOT) {
            self.push(rule, format!("{path}/@root"), format!("должен быть {SNILS_ROOT} (СНИЛС)"));
        }
        match &id.snils {
            SnilsField::Valid(_) => {}
            SnilsField::Absent => self.push(rule, format!("{path}/@extension"), format!("пустой СНИЛС {}", who.whose)),
            SnilsField::Invalid(e) => self.push(
                rule,
                format!("{path}/@extension"),
                format!("некорректный СНИЛС {}: {}", who.whose, snils_problem(e)),
            ),
        }
    }

    fn person_name(&mut self, path: &str, name: Option<&PersonName>, whose: &str) {
        let Some(name) = name else {
            self.push(rules::REQ, path, format!("нет ФИО {whose}"));
            return;
        };
        let patient = whose == "пациента";
        if name.family().is_none() {
            let v = Violation::new(rules::REQ, format!("{path}/family"), format!("нет фамилии {whose}"));
            self.out.push(if patient { v.prevents("PATIENT_SURNAME_NOT_FOUND") } else { v });
        }
        if name.name().is_none() {
            let v = Violation::new(rules::REQ, format!("{path}/given[1]"), format!("нет имени {whose}"));
            self.out.push(if patient { v.prevents("PATIENT_NAME_NOT_FOUND") } else { v });
        }
    }

    fn h8(&mut self, h: &CdaHeader) {
        let path = format!("{CD}/recordTarget/patientRole");
        if h.record_target_count != 1 {
            self.push(rules::H8, format!("{CD}/recordTarget"), "должен быть ровно один recordTarget (пациент)");
        }
        let Some(p) = &h.patient else {
            self.push(rules::H8, path, "нет сведений о пациенте");
            return;
        };
        if self.e.patient_local_id {
            self.mis_id(rules::H8, &format!("{path}/id[1]"), p.local_id.as_ref(), "10", "идентификатор пациента в МИС");
        }
        let who = Who { path: path.clone(), whose: "пациента" };
        self.snils_id(rules::H8, &who, p.snils_id.as_ref(), self.e.require_patient_snils);

        self.person_name(&format!("{path}/patient/name"), p.name(), "пациента");
        let gender = p.gender.as_ref().and_then(|g| text(&g.code));
        if !matches!(gender, Some("1" | "2")) {
            self.push(
                rules::REQ,
                format!("{path}/patient/administrativeGenderCode/@code"),
                "пол пациента должен быть 1 или 2 (НСИ 1.2.643.5.1.13.13.11.1040)",
            );
        }
        let birth = format!("{path}/patient/birthTime");
        match &p.birth_time {
            None => self.push(rules::REQ, birth, "нет даты рождения пациента"),
            Some(Err(e)) => self.push(rules::REQ, format!("{birth}/@value"), format!("дата рождения пациента: {e}")),
            Some(Ok(t)) if t.expose().precision < TimePrecision::Day => {
                self.push(rules::REQ, format!("{birth}/@value"), "дата рождения пациента нужна с точностью до дня");
            }
            Some(Ok(_)) => {}
        }
    }

    /// An author's `assignedAuthor` or the legal authenticator's `assignedEntity`.
    fn assigned(&mut self, rule: &'static str, who: &Who<'_>, p: &AssignedPerson) {
        self.mis_id(rule, &format!("{}/id[1]", who.path), p.local_id.as_ref(), "70", "идентификатор сотрудника в МИС");
        self.snils_id(rule, who, p.snils_id.as_ref(), true);
        let path = format!("{}/code", who.path);
        match &p.position {
            None => self.push(rule, path, format!("нет должности {}", who.whose)),
            Some(code) => {
                if text(&code.code_system) != Some(POSITIONS) {
                    self.push(rule, format!("{path}/@codeSystem"), format!("должен быть {POSITIONS} (должности)"));
                }
                if text(&code.code).is_none() {
                    self.push(rules::REQ, format!("{path}/@code"), format!("не указан код должности {}", who.whose));
                }
                if text(&code.code_system_version).is_none() {
                    self.push(
                        rules::REQ,
                        format!("{path}/@codeSystemVersion"),
                        format!("не указана версия справочника должностей {}", who.whose),
                    );
                }
            }
        }
        self.person_name(&format!("{}/assignedPerson/name", who.path), p.name(), who.whose);
    }

    fn h9(&mut self, h: &CdaHeader) {
        if h.authors.is_empty() {
            self.push(rules::H9, format!("{CD}/author"), "нет автора документа");
        }
        for (i, author) in h.authors.iter().enumerate() {
            let path = format!("{CD}/author[{}]", i + 1);
            match author.time.as_ref().map(|t| text(&t.null_flavor)) {
                Some(Some("NI")) => {}
                None => self.push(rules::H9, format!("{path}/time"), "нет элемента time (nullFlavor=\"NI\")"),
                Some(_) => self.push(rules::H9, format!("{path}/time/@nullFlavor"), "должен быть NI"),
            }
            let who = Who { path: format!("{path}/assignedAuthor"), whose: "автора" };
            match &author.assigned {
                None => self.push(rules::H9, who.path.clone(), "нет сведений об авторе"),
                Some(p) => self.assigned(rules::H9, &who, p),
            }
        }
    }

    fn h10(&mut self, h: &CdaHeader) {
        if h.custodians.len() != 1 {
            self.push(
                rules::H10,
                format!("{CD}/custodian"),
                "должна быть ровно одна организация-хранитель (custodian)",
            );
        }
        let Some(custodian) = h.custodians.first() else { return };
        let path = format!("{CD}/custodian/assignedCustodian/representedCustodianOrganization");
        if custodian.organization_count > 1 {
            self.push(rules::H10, &path, "должна быть ровно одна организация-хранитель");
        }
        let Some(org) = &custodian.organization else {
            self.push(rules::H10, path, "нет организации-хранителя");
            return;
        };
        match org.id.as_ref().and_then(|i| text(&i.root)).map(Oid::parse) {
            None => self.push(rules::H10, format!("{path}/id/@root"), "нет OID организации-хранителя"),
            Some(Err(_)) => self.push(rules::H10, format!("{path}/id/@root"), "OID организации-хранителя некорректен"),
            Some(Ok(oid)) if oid != self.e.organization => self.out.push(
                Violation::new(
                    rules::H10,
                    format!("{path}/id/@root"),
                    format!("организация-хранитель должна быть организацией-отправителем {}", self.e.organization),
                )
                .prevents("ATTRIBUTE_MISMATCH"),
            ),
            Some(Ok(_)) => {}
        }
        if org.name.is_none() {
            self.push(rules::H10, format!("{path}/name"), "нет наименования организации-хранителя");
        }
        if !org.has_address {
            self.push(rules::H10, format!("{path}/addr"), "нет адреса организации-хранителя");
        }
    }

    fn h11(&mut self, h: &CdaHeader) {
        let path = format!("{CD}/legalAuthenticator");
        if h.legal_authenticators.len() != 1 {
            self.push(rules::H11, &path, "должен быть ровно один legalAuthenticator (подписант)");
        }
        let Some(la) = h.legal_authenticator() else { return };
        if la.time.as_ref().and_then(|t| text(&t.null_flavor)) != Some("NI") {
            self.push(rules::H11, format!("{path}/time/@nullFlavor"), "должен быть NI");
        }
        if la.signature_code.as_ref().and_then(|c| text(&c.null_flavor)) != Some("NI") {
            self.push(rules::H11, format!("{path}/signatureCode/@nullFlavor"), "должен быть NI");
        }
        let who = Who { path: format!("{path}/assignedEntity"), whose: "подписанта" };
        match &la.assigned {
            None => self.push(rules::H11, who.path.clone(), "нет сведений о подписанте"),
            Some(p) => self.assigned(rules::H11, &who, p),
        }
    }

    fn h12(&mut self, h: &CdaHeader) {
        let path = format!("{CD}/component/structuredBody");
        if !h.structured_body {
            self.push(rules::H12, path, "нет структурированного тела документа (structuredBody)");
            return;
        }
        for (i, section) in h.sections.iter().enumerate() {
            if text(&section.code_system) != Some(SECTIONS) {
                self.push(
                    rules::H12,
                    format!("{path}/component[{}]/section/code/@codeSystem", i + 1),
                    format!("код секции должен быть из справочника {SECTIONS}"),
                );
            }
        }
        let has = |code: &str| {
            h.sections.iter().any(|s| text(&s.code) == Some(code) && text(&s.code_system) == Some(SECTIONS))
        };
        if !has("DOCINFO") {
            self.push(rules::H12, format!("{path}/component/section"), "нет секции DOCINFO (сведения о документе)");
        }
        for code in self.e.required_sections.iter().filter(|c| *c != "DOCINFO") {
            if !has(code) {
                self.push(
                    rules::H12,
                    format!("{path}/component/section"),
                    format!("нет секции {code}, обязательной для вида документа {}", self.e.kind),
                );
            }
        }
    }

    fn k1(&mut self, h: &CdaHeader) {
        if self.e.template_ids.is_empty() || h.template_ids.iter().any(|t| self.e.template_ids.contains(t)) {
            return;
        }
        self.push(
            rules::K1,
            format!("{CD}/templateId/@root"),
            format!("для вида документа {} ожидается templateId {}", self.e.kind, self.e.template_ids.join(" или ")),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mis_roots() {
        let mo = Oid::parse("1.2.643.5.1.13.13.12.2.42.2917").unwrap();
        assert!(is_mis_root(Some("1.2.643.5.1.13.13.12.2.42.2917.100.1.1.51"), &mo, "51"));
        assert!(is_mis_root(Some("1.2.643.5.1.13.13.12.2.42.2917.100.12.3.70"), &mo, "70"));
        for bad in [
            "1.2.643.5.1.13.13.12.2.42.2917.100.1.1.50",
            "1.2.643.5.1.13.13.12.2.42.2917.100.1.51",
            "1.2.643.5.1.13.13.12.2.42.2917.100.1.1.1.51",
            "1.2.643.5.1.13.13.12.2.42.2917.101.1.1.51",
            "1.2.643.5.1.13.13.12.2.42.29170.100.1.1.51",
            "1.2.643.5.1.13.13.12.2.42.2918.100.1.1.51",
            "1.2.643.5.1.13.13.12.2.42.2917.100.01.1.51",
            "1.2.643.5.1.13.13.12.2.42.2917.100..1.51",
        ] {
            assert!(!is_mis_root(Some(bad), &mo, "51"), "{bad}");
        }
        assert!(!is_mis_root(None, &mo, "51"));
    }
}
