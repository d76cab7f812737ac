//! Every namespace, prefix, element name, attribute name and action of the REMD SOAP
//! contract — the ONE place to correct them against the official WSDL/XSD, which is not
//! public. Nothing else in the crate spells a name of the contract.
//!
//! Each constant says where it comes from, as `/work/shared/federal/REMD.md` marks it:
//! **\[confirmed\]** by public client code of MIS vendors, or **\[model\]** (this project's
//! concrete guess). Prefixes are what the writers emit; the readers never look at
//! prefixes, only at (namespace, local name).

// ---------------------------------------------------------------------------------------
// Namespaces and the prefixes the writers use
// ---------------------------------------------------------------------------------------

/// SOAP 1.2 envelope namespace. \[confirmed\]
pub const SOAP12_NS: &str = "http://www.w3.org/2003/05/soap-envelope";
/// SOAP 1.1 envelope namespace (REMD's calls to us may use it). \[confirmed\]
pub const SOAP11_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// Transport header (`egis:transportHeader`). \[confirmed\]
pub const EGIS_NS: &str = "http://egisz.rosminzdrav.ru";
/// WS-Addressing 1.0. \[confirmed\]
pub const WSA_NS: &str = "http://www.w3.org/2005/08/addressing";
/// Service operations, MIS → REMD. \[confirmed\]
pub const SER_NS: &str = "http://egisz.rosminzdrav.ru/iehr/emdr/service/";
/// REMD's calls to the MIS and our answers to them. \[confirmed\]
pub const CB_NS: &str = "http://egisz.rosminzdrav.ru/iehr/emdr/callback/";
/// The `xml:` namespace (for `xml:lang` on a SOAP 1.2 fault reason). \[XML spec\]
pub const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

pub const SOAP_PREFIX: &str = "soap";
pub const EGIS_PREFIX: &str = "egis";
pub const WSA_PREFIX: &str = "wsa";
pub const SER_PREFIX: &str = "ser";
pub const CB_PREFIX: &str = "cb";

// ---------------------------------------------------------------------------------------
// Content types
// ---------------------------------------------------------------------------------------

/// SOAP 1.2 media type; the action goes into its `action` parameter. \[confirmed\]
pub const SOAP12_CONTENT_TYPE: &str = "application/soap+xml; charset=utf-8";
/// SOAP 1.1 media type; the action goes into the `SOAPAction` header. \[SOAP 1.1\]
pub const SOAP11_CONTENT_TYPE: &str = "text/xml; charset=utf-8";
/// The SOAP 1.1 action header.
pub const SOAP11_ACTION_HEADER: &str = "SOAPAction";

// ---------------------------------------------------------------------------------------
// Envelope (both SOAP versions)
// ---------------------------------------------------------------------------------------

pub const ENVELOPE: &str = "Envelope";
pub const HEADER: &str = "Header";
pub const BODY: &str = "Body";
pub const FAULT: &str = "Fault";

/// SOAP 1.2 fault parts (in the envelope namespace).
pub const FAULT12_CODE: &str = "Code";
pub const FAULT12_VALUE: &str = "Value";
pub const FAULT12_REASON: &str = "Reason";
pub const FAULT12_TEXT: &str = "Text";
/// `xml:lang` of the reason text we write. \[model\]
pub const FAULT12_LANG: &str = "ru";
/// SOAP 1.2 fault code values (local names in the envelope namespace).
pub const FAULT12_SENDER: &str = "Sender";
pub const FAULT12_RECEIVER: &str = "Receiver";
pub const FAULT_VERSION_MISMATCH: &str = "VersionMismatch";
pub const FAULT_MUST_UNDERSTAND: &str = "MustUnderstand";
pub const FAULT12_DATA_ENCODING_UNKNOWN: &str = "DataEncodingUnknown";

/// SOAP 1.1 fault parts (unqualified, no namespace).
pub const FAULT11_CODE: &str = "faultcode";
pub const FAULT11_STRING: &str = "faultstring";
/// SOAP 1.1 fault code values (local names in the envelope namespace).
pub const FAULT11_CLIENT: &str = "Client";
pub const FAULT11_SERVER: &str = "Server";

// ---------------------------------------------------------------------------------------
// Header
// ---------------------------------------------------------------------------------------

/// `egis:transportHeader/egis:authInfo/egis:clientEntityId`. \[confirmed\]
pub const TRANSPORT_HEADER: &str = "transportHeader";
pub const AUTH_INFO: &str = "authInfo";
pub const CLIENT_ENTITY_ID: &str = "clientEntityId";

/// `wsa:MessageID`, `wsa:Action`, `wsa:RelatesTo`. \[confirmed\]
pub const MESSAGE_ID: &str = "MessageID";
pub const ACTION: &str = "Action";
pub const RELATES_TO: &str = "RelatesTo";
/// The prefix of a message id as we write it (`urn:uuid:<uuid>`); read with or without.
/// \[confirmed\]
pub const URN_UUID: &str = "urn:uuid:";

// ---------------------------------------------------------------------------------------
// Actions (`wsa:Action`; also the `action` parameter of the content type)
// ---------------------------------------------------------------------------------------

/// \[confirmed\]
pub const ACTION_REGISTER_DOCUMENT: &str = "registerDocument";
/// \[confirmed\]
pub const ACTION_SEARCH_REGISTRY_ITEM: &str = "searchRegistryItem";
/// \[confirmed\]
pub const ACTION_GET_REGISTRY_ITEM: &str = "getRegistryItem";
/// \[model\] (the operation name is confirmed; that it is the action is the model)
pub const ACTION_GET_DOCUMENT_FILE: &str = "getDocumentFile";
/// \[confirmed\]
pub const ACTION_SEND_REGISTER_DOCUMENT_RESULT: &str = "sendRegisterDocumentResult";
/// Actions of the answers. \[model\]
pub const ACTION_REGISTER_DOCUMENT_RESPONSE: &str = "registerDocumentResponse";
pub const ACTION_SEARCH_REGISTRY_ITEM_RESPONSE: &str = "searchRegistryItemResponse";
pub const ACTION_GET_REGISTRY_ITEM_RESPONSE: &str = "getRegistryItemResponse";
pub const ACTION_GET_DOCUMENT_FILE_RESPONSE: &str = "getDocumentFileResponse";
pub const ACTION_SEND_REGISTER_DOCUMENT_RESULT_RESPONSE: &str = "sendRegisterDocumentResultResponse";
/// The WS-Addressing action of a fault. \[WS-Addressing 1.0 SOAP binding\]
pub const ACTION_FAULT: &str = "http://www.w3.org/2005/08/addressing/soap/fault";

// ---------------------------------------------------------------------------------------
// Shared body elements (in `ser` or `cb`, depending on the message)
// ---------------------------------------------------------------------------------------

/// `status`: `success` | `error` (REMD also sends `OK`). \[confirmed in callbacks, model elsewhere\]
pub const STATUS: &str = "status";
pub const STATUS_SUCCESS: &str = "success";
pub const STATUS_ERROR: &str = "error";
/// Accepted on reading as a synonym of `success`. \[confirmed\]
pub const STATUS_OK: &str = "OK";
/// `errors/item/{code, message}`. \[confirmed in callbacks, model in answers\]
pub const ERRORS: &str = "errors";
pub const ITEM: &str = "item";
pub const CODE: &str = "code";
pub const MESSAGE: &str = "message";
/// The dictionary version attribute of a coded value (`<ser:role version="2.4">`). \[model\]
pub const VERSION_ATTR: &str = "version";

// ---------------------------------------------------------------------------------------
// registerDocument (ser) [model; names confirmed where noted]
// ---------------------------------------------------------------------------------------

pub const REGISTER_DOCUMENT_REQUEST: &str = "registerDocumentRequest";
pub const REGISTER_DOCUMENT_RESPONSE: &str = "registerDocumentResponse";
/// \[confirmed\] NSI 1520 id.
pub const KIND: &str = "kind";
/// \[confirmed\] MO OID.
pub const ORGANIZATION: &str = "organization";
pub const DEPARTMENT: &str = "department";
/// \[confirmed\] `ClinicalDocument/id/@extension`.
pub const LOCAL_UID: &str = "localUid";
/// \[confirmed\] `ClinicalDocument/effectiveTime`.
pub const CREATION_DATE_TIME: &str = "creationDateTime";
pub const PATIENT: &str = "patient";
pub const LOCAL_ID: &str = "localId";
pub const SNILS: &str = "snils";
pub const SURNAME: &str = "surname";
pub const NAME: &str = "name";
pub const PATR_NAME: &str = "patrName";
pub const BIRTH_DATE: &str = "birthDate";
pub const GENDER: &str = "gender";
pub const DOC_CONTENT: &str = "docContent";
pub const CHECKSUM: &str = "checksum";
pub const PERSONAL_SIGNATURES: &str = "personalSignatures";
pub const SIGNER: &str = "signer";
pub const ROLE: &str = "role";
pub const LAST_NAME: &str = "lastName";
pub const FIRST_NAME: &str = "firstName";
pub const MIDDLE_NAME: &str = "middleName";
pub const POSITION: &str = "position";
pub const SPECIALITY: &str = "speciality";
pub const SIGNATURE: &str = "signature";
pub const DATA: &str = "data";
pub const ORG_SIGNATURE: &str = "orgSignature";

// ---------------------------------------------------------------------------------------
// searchRegistryItem / getRegistryItem (ser) [names confirmed, details model]
// ---------------------------------------------------------------------------------------

pub const SEARCH_REGISTRY_ITEM_REQUEST: &str = "searchRegistryItemRequest";
pub const SEARCH_REGISTRY_ITEM_RESPONSE: &str = "searchRegistryItemResponse";
pub const GET_REGISTRY_ITEM_REQUEST: &str = "getRegistryItemRequest";
pub const GET_REGISTRY_ITEM_RESPONSE: &str = "getRegistryItemResponse";
pub const REGISTER_DATE_BEGIN: &str = "registerDateBegin";
pub const REGISTER_DATE_END: &str = "registerDateEnd";
pub const PATIENT_SNILS: &str = "patientSnils";
/// `matches/item` in a search answer.
pub const MATCHES: &str = "matches";
/// The one item of a `getRegistryItemResponse` (`ser:item`; absent = not found). \[model\]
pub const GET_ITEM: &str = "item";

// ---------------------------------------------------------------------------------------
// Registry item fields (ser in answers, cb in results)
// ---------------------------------------------------------------------------------------

pub const EMDR_ID: &str = "emdrId";
pub const REGISTRATION_DATE_TIME: &str = "registrationDateTime";
pub const STORE_TILL_DATE: &str = "storeTillDate";
/// The SOAP attribute (in the envelope's namespace) of a header block the receiver must
/// understand.
pub const MUST_UNDERSTAND: &str = "mustUnderstand";
/// SOAP 1.1's attribute naming whom a header block is for, and the value meaning "the next
/// receiver" (the gateway).
pub const SOAP11_ACTOR: &str = "actor";
pub const SOAP11_ACTOR_NEXT: &str = "http://schemas.xmlsoap.org/soap/actor/next";
/// SOAP 1.2's attribute naming whom a header block is for, and the roles the gateway plays.
pub const SOAP12_ROLE: &str = "role";
pub const SOAP12_ROLE_NEXT: &str = "http://www.w3.org/2003/05/soap-envelope/role/next";
pub const SOAP12_ROLE_ULTIMATE: &str = "http://www.w3.org/2003/05/soap-envelope/role/ultimateReceiver";
pub const DOCUMENT_VERSION: &str = "documentVersion";

// ---------------------------------------------------------------------------------------
// REMD's calls to us (cb)
// ---------------------------------------------------------------------------------------

/// \[model\]
pub const GET_DOCUMENT_FILE_REQUEST: &str = "getDocumentFileRequest";
/// \[model\]
pub const GET_DOCUMENT_FILE_RESPONSE: &str = "getDocumentFileResponse";
/// \[model\] base64 of the exact stored bytes.
pub const DOCUMENT: &str = "document";
/// \[confirmed\] The MessageID of our registerDocument.
pub const RELATES_TO_MESSAGE: &str = "relatesToMessage";
/// \[confirmed\]
pub const REGISTER_DOCUMENT_RESULT: &str = "registerDocumentResult";
/// \[model\]
pub const REGISTER_DOCUMENT_RESULT_RESPONSE: &str = "registerDocumentResultResponse";
/// \[confirmed\]
pub const REGISTRY_ITEM: &str = "registryItem";

// ---------------------------------------------------------------------------------------
// Message codes this crate itself uses
// ---------------------------------------------------------------------------------------

/// NSI 1.2.643.5.1.13.13.99.2.305 id 48: the reason text of the fault we answer to a
/// `getDocumentFile` for a message we do not know. \[confirmed code, model placement\]
pub const WRONG_MESSAGE_ID: &str = "WRONG_MESSAGE_ID";
/// Its description in the dictionary, verbatim.
pub const WRONG_MESSAGE_ID_TEXT: &str = "Асинхронный запрос файла ЭМД с указанным messageID не найден";
/// "No such registry item" (NSI id 37): a lookup that found nothing.
pub const REGISTRY_ITEM_NOT_FOUND: &str = "REGISTRY_ITEM_NOT_FOUND";

/// True when `action` (a `wsa:Action` as received) names `operation`: equal to it, or a
/// URI ending in `/operation`, `#operation` or `:operation`. \[model\]: vendors' samples
/// show the bare operation name; WSDL-generated clients often send a URI.
pub fn action_names(action: &str, operation: &str) -> bool {
    let action = action.trim();
    action == operation
        || action
            .strip_suffix(operation)
            .is_some_and(|head| head.ends_with('/') || head.ends_with('#') || head.ends_with(':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_match_bare_names_and_uris() {
        assert!(action_names("getDocumentFile", ACTION_GET_DOCUMENT_FILE));
        assert!(action_names(" http://egisz.rosminzdrav.ru/iehr/emdr/callback/getDocumentFile ", "getDocumentFile"));
        assert!(action_names("urn:x#getDocumentFile", "getDocumentFile"));
        assert!(!action_names("xgetDocumentFile", "getDocumentFile"));
        assert!(!action_names("sendRegisterDocumentResult", "getDocumentFile"));
    }
}
