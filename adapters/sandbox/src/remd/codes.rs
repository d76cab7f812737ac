//! The REMD message codes the emulator emits (NSI 1.2.643.5.1.13.13.99.2.305, with their
//! dictionary texts) and the document kinds it knows (NSI 1.2.643.5.1.13.13.11.1520).

use std::collections::HashMap;
use std::sync::LazyLock;

use chrono::NaiveDate;
use egisz_contract::Personal;
use egisz_contract::remd::RemdMessage;

/// NSI 1.2.643.5.1.13.13.99.2.305 v3.18 as `shared/federal/nsi-305-remd-message-codes.tsv`
/// has it (code, id, description, contour), copied into this crate.
const NSI_305: &str = include_str!("../../data/nsi-305-remd-message-codes.tsv");

/// `registerDocument` above the rate limit (sync answer).
pub const RATE_LIMIT: &str = "RATE_LIMIT";
/// Unknown client entity id (SOAP `Sender` fault, any operation).
pub const NO_RMIS: &str = "NO_RMIS";
/// An injected `Receiver` fault.
pub const INTERNAL_ERROR: &str = "INTERNAL_ERROR";
/// `localUid` of the organisation already registered.
pub const NOT_UNIQUE_PROVIDED_ID: &str = "NOT_UNIQUE_PROVIDED_ID";
/// The file could not be pulled from the gateway (after retries).
pub const GET_DOCUMENT_FILE_ERROR: &str = "GET_DOCUMENT_FILE_ERROR";
/// CRC-32 of the pulled bytes differs from the request's `docContent/checksum`.
pub const DIGEST_MISMATCH: &str = "DIGEST_MISMATCH";
/// The pulled file is not a readable CDA document.
pub const INVALID_DOC_CONTENT_TYPE: &str = "INVALID_DOC_CONTENT_TYPE";
/// `kind` is not a kind the emulator knows (no such dictionary entry).
pub const OBJECT_NOT_FOUND: &str = "OBJECT_NOT_FOUND";
/// `ClinicalDocument/code` is not the code of the requested kind.
pub const INVALID_CONTENT: &str = "INVALID_CONTENT";
/// The creation date is outside the kind's validity window.
pub const NO_DOCUMENT_KIND_ON_DATE: &str = "NO_DOCUMENT_KIND_ON_DATE";
/// The creation time is in the future.
pub const WRONG_CREATION_DATE: &str = "WRONG_CREATION_DATE";
/// The request disagrees with the document (organisation ↔ custodian, `localUid` ↔
/// `id/@extension`, `creationDateTime` ↔ `effectiveTime`).
pub const ATTRIBUTE_MISMATCH: &str = "ATTRIBUTE_MISMATCH";
/// No personal signature in the request.
pub const NO_SIGNATURE: &str = "NO_SIGNATURE";
/// A signer's SNILS is not an author or the legal authenticator of the document.
pub const INVALID_DOCTOR_SNILS: &str = "INVALID_DOCTOR_SNILS";
/// The legal authenticator of the document did not sign.
pub const LEGAL_AUTHENTICATOR_NOT_FOUND: &str = "LEGAL_AUTHENTICATOR_NOT_FOUND";
/// A signer's SNILS is not in the FRMR roster.
pub const PERSON_NOT_FOUND: &str = "PERSON_NOT_FOUND";
/// A signer has no card in the organisation active on the creation date.
pub const PERSON_CARD_NOT_FOUND: &str = "PERSON_CARD_NOT_FOUND";
/// A signer's position is not the `fedPositionId` of any of their active cards there.
pub const PERSON_POST_IN_FRMR_MISMATCH: &str = "PERSON_POST_IN_FRMR_MISMATCH";
/// A signer's names differ from FRMR's.
pub const VALUE_MISMATCH_METADATA_AND_FRMR: &str = "VALUE_MISMATCH_METADATA_AND_FRMR";
/// An organisation of the document (the request's, the custodian, a signer's) is not in FRMO.
pub const ORG_NOT_FOUND_IN_FRMO: &str = "ORG_NOT_FOUND_IN_FRMO";
/// An organisation of the document is in FRMO but not valid on the creation date.
pub const NO_ORG_ON_DATE: &str = "NO_ORG_ON_DATE";
/// A department of the document is not in FRMO (or not on the creation date).
pub const NO_DEPARTMENT: &str = "NO_DEPARTMENT";
/// `getRegistryItem` for an `emdrId` not in the register.
pub const REGISTRY_ITEM_NOT_FOUND: &str = "REGISTRY_ITEM_NOT_FOUND";
/// The document breaks its kind's XSD or schematron (with REMD's text of the finding).
pub const VALIDATION_ERROR: &str = "VALIDATION_ERROR";
/// The kind's schematron could not run over the document (an XPath error).
pub const XML_VALIDATION_ERROR: &str = "XML_VALIDATION_ERROR";

/// Every code the REMD emulator can emit by itself (the codes of
/// [`RemdFaults::reject_codes`](crate::RemdFaults::reject_codes) come on top). Each is in
/// NSI 1.2.643.5.1.13.13.99.2.305 (checked by the tests).
pub const EMITTED_CODES: &[&str] = &[
    RATE_LIMIT,
    NO_RMIS,
    INTERNAL_ERROR,
    NOT_UNIQUE_PROVIDED_ID,
    GET_DOCUMENT_FILE_ERROR,
    DIGEST_MISMATCH,
    INVALID_DOC_CONTENT_TYPE,
    OBJECT_NOT_FOUND,
    INVALID_CONTENT,
    NO_DOCUMENT_KIND_ON_DATE,
    WRONG_CREATION_DATE,
    ATTRIBUTE_MISMATCH,
    NO_SIGNATURE,
    INVALID_DOCTOR_SNILS,
    LEGAL_AUTHENTICATOR_NOT_FOUND,
    PERSON_NOT_FOUND,
    PERSON_CARD_NOT_FOUND,
    PERSON_POST_IN_FRMR_MISMATCH,
    VALUE_MISMATCH_METADATA_AND_FRMR,
    ORG_NOT_FOUND_IN_FRMO,
    NO_ORG_ON_DATE,
    NO_DEPARTMENT,
    REGISTRY_ITEM_NOT_FOUND,
    VALIDATION_ERROR,
    XML_VALIDATION_ERROR,
];

/// Code → description, from the dictionary copy.
static TEXTS: LazyLock<HashMap<&'static str, &'static str>> = LazyLock::new(|| {
    NSI_305
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut fields = line.split('\t');
            let code = fields.next()?.trim();
            let description = fields.nth(1)?.trim();
            (!code.is_empty()).then_some((code, description))
        })
        .collect()
});

/// The dictionary description of `code`, when the code is in NSI 305.
pub(crate) fn dictionary_text(code: &str) -> Option<&'static str> {
    TEXTS.get(code).copied()
}

/// The message REMD sends for `code`: its dictionary description, with `subject` in the
/// description's `[]` placeholder or appended in parentheses. `subject` names a field or a
/// signer by position — never personal data.
pub(crate) fn message(code: &str, subject: Option<&str>) -> RemdMessage {
    let text = dictionary_text(code).unwrap_or("Ошибка регистрации документа");
    let text = match subject {
        None => text.to_owned(),
        Some(subject) if text.contains("[]") => text.replacen("[]", &format!("[{subject}]"), 1),
        Some(subject) => format!("{text} ({subject})"),
    };
    RemdMessage { code: code.to_owned(), message: Personal(text) }
}

/// `code: description`, the reason text of a fault that carries a REMD code.
pub(crate) fn fault_reason(code: &str) -> String {
    format!("{code}: {}", dictionary_text(code).unwrap_or_default())
}

/// A document kind the emulator knows: NSI 1520 id, the `ClinicalDocument/code` it
/// requires (NSI 1.2.643.5.1.13.13.11.1522) and its validity window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Kind {
    pub id: u32,
    pub cda_code: &'static str,
    pub from: NaiveDate,
    pub until: Option<NaiveDate>,
}

impl Kind {
    /// True when a document created on `date` may be of this kind (both ends inclusive).
    pub fn valid_on(&self, date: NaiveDate) -> bool {
        self.from <= date && self.until.is_none_or(|until| date <= until)
    }
}

const fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    match NaiveDate::from_ymd_opt(y, m, d) {
        Some(date) => date,
        None => panic!("a valid date"),
    }
}

/// The consultation kinds a region sends (`shared/federal/SEMD-TMK.md`), as
/// `nsi-1520-document-kinds.tsv` lists them.
pub(crate) const KINDS: &[Kind] = &[
    // Протокол телемедицинской консультации (CDA) Редакция 1
    Kind { id: 40, cda_code: "36", from: date(2019, 11, 30), until: None },
    // Протокол консультации (CDA) Редакция 4
    Kind { id: 119, cda_code: "5", from: date(2022, 1, 1), until: None },
    // Протокол ТМК для трансграничных телемедицинских решений (CDA) Редакция 1
    Kind { id: 160, cda_code: "372", from: date(2023, 8, 28), until: None },
    // Протокол консультации (CDA) Редакция 5
    Kind { id: 227, cda_code: "5", from: date(2024, 3, 7), until: None },
];

/// The kind with this NSI 1520 id, when the emulator knows it.
pub(crate) fn kind(id: u32) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_emitted_code_is_in_the_dictionary_copy() {
        for code in EMITTED_CODES.iter().chain(super::super::content::EMITTED) {
            assert!(dictionary_text(code).is_some_and(|t| !t.is_empty()), "{code} is not in NSI 305");
        }
        assert_eq!(TEXTS.len(), 127, "NSI 305 v3.18 has 127 codes");
    }

    #[test]
    fn messages_fill_placeholders_or_append() {
        let m = message(PERSON_NOT_FOUND, Some("подписант №1"));
        assert_eq!(m.message.expose(), "Сотрудник не найден в ФРМР (подписант №1)");
        let m = message(INVALID_DOCTOR_SNILS, Some("подписант №2"));
        assert!(
            m.message.expose().starts_with("Медицинский работник [подписант №2] не найден"),
            "{:?}",
            m.message.expose()
        );
        assert_eq!(message(RATE_LIMIT, None).message.expose(), dictionary_text(RATE_LIMIT).unwrap());
        assert_eq!(message("NOT_A_CODE", None).message.expose(), "Ошибка регистрации документа");
        assert_eq!(fault_reason(NO_RMIS), "NO_RMIS: РМИС/МИС не зарегистрирована в РЭМД");
    }

    #[test]
    fn kinds() {
        let tmk = kind(40).unwrap();
        assert_eq!(tmk.cda_code, "36");
        assert!(tmk.valid_on(date(2023, 8, 18)));
        assert!(!tmk.valid_on(date(2019, 11, 29)));
        assert!(kind(41).is_none());
        let windowed = Kind { id: 1, cda_code: "1", from: date(2020, 1, 1), until: Some(date(2024, 1, 1)) };
        assert!(windowed.valid_on(date(2024, 1, 1)) && !windowed.valid_on(date(2024, 1, 2)));
    }
}
