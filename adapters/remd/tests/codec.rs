//! The codec: every envelope the crate writes, pinned by snapshot files; round trips of
//! every message in both directions; readers against hand-written envelopes of other
//! shapes (SOAP 1.1, default namespaces, other prefixes, unqualified fields, bare ids);
//! what the readers refuse.
//!
//! Snapshots live in `tests/snapshots/`. To re-create them after a deliberate change of
//! the wire format: `UPDATE_SNAPSHOTS=1 cargo test -p egisz-remd --test codec`, then
//! review the diff.

mod common;

use chrono::{DateTime, NaiveDate};
use egisz_contract::Personal;
use egisz_contract::remd::{DocumentFileRequest, RegisterAck, RegisterResult, RegistryItem, RemdMessage, ResultStatus};
use egisz_remd::*;

use common::{CLIENT_ENTITY_ID, MESSAGE_ID, MO};

/// REMD's message ids in the fixtures.
const REMD_MESSAGE_ID: &str = "0b7c6a2e-91f3-4c1d-8e55-3a0d4c2b9f01";
const ANSWER_MESSAGE_ID: &str = "5e0f1d2c-3b4a-4958-a7b6-c5d4e3f2a1b0";

fn snapshot(name: &str, bytes: &[u8]) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots").join(name);
    let actual = std::str::from_utf8(bytes).expect("the writers emit UTF-8");
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(actual, expected, "{name} differs from its snapshot");
}

fn reply() -> ReplyHeader {
    ReplyHeader { message_id: ANSWER_MESSAGE_ID.to_owned(), relates_to: Some(REMD_MESSAGE_ID.to_owned()) }
}

/// The reply of REMD to one of our requests.
fn remd_reply() -> ReplyHeader {
    ReplyHeader { message_id: REMD_MESSAGE_ID.to_owned(), relates_to: Some(MESSAGE_ID.to_owned()) }
}

fn message(code: &str, text: &str) -> RemdMessage {
    RemdMessage { code: code.to_owned(), message: Personal(text.to_owned()) }
}

fn item() -> RegistryItem {
    RegistryItem {
        emdr_id: "16.62.23.09.000014523".to_owned(),
        local_uid: Some("TMK-2023-000042".to_owned()),
        kind: Some(40),
        registration_date_time: Some(DateTime::parse_from_rfc3339("2023-08-18T12:00:05.123+03:00").unwrap()),
        store_till_date: Some(NaiveDate::from_ymd_opt(2048, 8, 18).unwrap()),
        document_version: Some("1".to_owned()),
    }
}

fn result_success() -> RegisterResult {
    RegisterResult {
        message_id: REMD_MESSAGE_ID.to_owned(),
        relates_to_message: MESSAGE_ID.to_owned(),
        status: ResultStatus::Success,
        kind: Some(40),
        organization: Some(MO.to_owned()),
        local_uid: Some("TMK-2023-000042".to_owned()),
        creation_date_time: Some(DateTime::parse_from_rfc3339("2023-08-18T10:15:00+07:00").unwrap()),
        registry_item: Some(item()),
        errors: Vec::new(),
    }
}

fn result_error() -> RegisterResult {
    RegisterResult {
        status: ResultStatus::Error,
        registry_item: None,
        creation_date_time: None,
        errors: vec![
            message("INVALID_DOCTOR_SNILS", "Медицинский работник [17450296372] не найден в СЭМД"),
            message("RATE_LIMIT", "Достигнут защитный лимит, просьба повторить через минуту или позже"),
        ],
        ..result_success()
    }
}

fn file_request() -> DocumentFileRequest {
    DocumentFileRequest {
        message_id: REMD_MESSAGE_ID.to_owned(),
        relates_to_message: Some(MESSAGE_ID.to_owned()),
        emdr_id: None,
        local_uid: Some("TMK-2023-000042".to_owned()),
    }
}

fn document() -> DocumentFile {
    DocumentFile::new("<ClinicalDocument xmlns=\"urn:hl7-org:v3\">протокол</ClinicalDocument>".as_bytes().to_vec())
}

// ---------------------------------------------------------------------------------------
// Snapshots: every envelope the crate writes
// ---------------------------------------------------------------------------------------

#[test]
fn snapshots_of_the_gateway_requests() {
    snapshot("register_document.xml", &write_register_document(&common::register_document(), CLIENT_ENTITY_ID));
    snapshot(
        "register_document_minimal.xml",
        &write_register_document(&common::register_document_minimal(), CLIENT_ENTITY_ID),
    );
    snapshot(
        "search_registry_item.xml",
        &write_search_registry_item(&common::search_query(), MESSAGE_ID, CLIENT_ENTITY_ID),
    );
    let minimal = egisz_contract::remd::SearchQuery {
        kind: None,
        register_date_begin: None,
        register_date_end: None,
        patient_snils: None,
        ..common::search_query()
    };
    snapshot("search_registry_item_minimal.xml", &write_search_registry_item(&minimal, MESSAGE_ID, CLIENT_ENTITY_ID));
    snapshot("get_registry_item.xml", &write_get_registry_item("16.62.23.09.000014523", MESSAGE_ID, CLIENT_ENTITY_ID));
}

#[test]
fn snapshots_of_remd_answers() {
    let v = SoapVersion::Soap12;
    snapshot(
        "register_document_response_accepted.xml",
        &write_register_document_response(v, &remd_reply(), &RegisterAck::Accepted),
    );
    let rejected = RegisterAck::Rejected(vec![
        message("NOT_UNIQUE_PROVIDED_ID", "Документ с указанным идентификатором уже зарегистрирован"),
        message("INVALID_SNILS", "СНИЛС <20311784514> & неверен"),
    ]);
    snapshot("register_document_response_rejected.xml", &write_register_document_response(v, &remd_reply(), &rejected));
    snapshot(
        "search_registry_item_response.xml",
        &write_search_registry_item_response(
            v,
            &remd_reply(),
            &Answer::Success(vec![
                item(),
                RegistryItem {
                    emdr_id: "16.62.23.09.000014524".to_owned(),
                    local_uid: None,
                    kind: None,
                    registration_date_time: None,
                    store_till_date: None,
                    document_version: None,
                },
            ]),
        ),
    );
    snapshot(
        "search_registry_item_response_error.xml",
        &write_search_registry_item_response(
            v,
            &remd_reply(),
            &Answer::Error(vec![message("ACCESS_DENIED", "Нет доступа")]),
        ),
    );
    snapshot(
        "get_registry_item_response.xml",
        &write_get_registry_item_response(v, &remd_reply(), &Answer::Success(Some(item()))),
    );
    snapshot(
        "get_registry_item_response_none.xml",
        &write_get_registry_item_response(v, &remd_reply(), &Answer::Success(None)),
    );
}

#[test]
fn snapshots_of_remd_calls() {
    snapshot(
        "get_document_file_request_soap12.xml",
        &write_get_document_file_request(SoapVersion::Soap12, &file_request()),
    );
    let by_emdr_id = DocumentFileRequest {
        relates_to_message: None,
        emdr_id: Some("16.62.23.09.000014523".to_owned()),
        ..file_request()
    };
    snapshot(
        "get_document_file_request_soap11.xml",
        &write_get_document_file_request(SoapVersion::Soap11, &by_emdr_id),
    );
    snapshot(
        "register_document_result_success.xml",
        &write_register_document_result(SoapVersion::Soap12, &result_success()),
    );
    snapshot(
        "register_document_result_error_soap11.xml",
        &write_register_document_result(SoapVersion::Soap11, &result_error()),
    );
}

#[test]
fn snapshots_of_the_gateway_answers() {
    for (version, suffix) in [(SoapVersion::Soap12, "soap12"), (SoapVersion::Soap11, "soap11")] {
        snapshot(
            &format!("get_document_file_response_{suffix}.xml"),
            &write_get_document_file_response(version, &reply(), &document()),
        );
        snapshot(
            &format!("register_document_result_response_{suffix}.xml"),
            &write_register_document_result_response(version, &reply()),
        );
        snapshot(
            &format!("fault_wrong_message_id_{suffix}.xml"),
            &write_fault(version, &reply(), &Fault::wrong_message_id()),
        );
    }
    let no_relates_to = ReplyHeader { relates_to: None, ..reply() };
    snapshot(
        "fault_receiver_soap12.xml",
        &write_fault(
            SoapVersion::Soap12,
            &no_relates_to,
            &Fault::new(FaultCode::Receiver, "INTERNAL_ERROR: база данных недоступна"),
        ),
    );
}

// ---------------------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------------------

#[test]
fn gateway_requests_round_trip() {
    for request in [common::register_document(), common::register_document_minimal()] {
        let (envelope, read) = read_register_document(&write_register_document(&request, CLIENT_ENTITY_ID)).unwrap();
        assert_eq!(read, request);
        assert_eq!(envelope.version, SoapVersion::Soap12);
        assert_eq!(envelope.client_entity_id.as_deref(), Some(CLIENT_ENTITY_ID));
        assert_eq!(envelope.action.as_deref(), Some(wire::ACTION_REGISTER_DOCUMENT));
        assert_eq!(envelope.message_id.as_deref(), Some(MESSAGE_ID));
    }

    let query = common::search_query();
    let (envelope, read) =
        read_search_registry_item(&write_search_registry_item(&query, MESSAGE_ID, CLIENT_ENTITY_ID)).unwrap();
    assert_eq!(read, query);
    assert_eq!(envelope.action.as_deref(), Some(wire::ACTION_SEARCH_REGISTRY_ITEM));
    assert_eq!(envelope.client_entity_id.as_deref(), Some(CLIENT_ENTITY_ID));

    let (envelope, emdr_id) =
        read_get_registry_item(&write_get_registry_item("16.62.23.09.000014523", MESSAGE_ID, CLIENT_ENTITY_ID))
            .unwrap();
    assert_eq!(emdr_id, "16.62.23.09.000014523");
    assert_eq!(envelope.message_id.as_deref(), Some(MESSAGE_ID));
    assert_eq!(envelope.action.as_deref(), Some(wire::ACTION_GET_REGISTRY_ITEM));
}

#[test]
fn remd_answers_round_trip() {
    for version in [SoapVersion::Soap12, SoapVersion::Soap11] {
        for ack in [RegisterAck::Accepted, RegisterAck::Rejected(vec![message("A_B", "x <y> & z"), message("C", "")])] {
            let (envelope, read) =
                read_register_document_response(&write_register_document_response(version, &remd_reply(), &ack))
                    .unwrap();
            assert_eq!(read, Response::Body(ack));
            assert_eq!(envelope.version, version);
            assert_eq!(envelope.relates_to.as_deref(), Some(MESSAGE_ID));
            assert_eq!(envelope.message_id.as_deref(), Some(REMD_MESSAGE_ID));
        }
        for answer in [
            Answer::Success(vec![item(), item()]),
            Answer::Success(vec![]),
            Answer::Error(vec![message("ACCESS_DENIED", "нет")]),
        ] {
            let (_, read) = read_search_registry_item_response(&write_search_registry_item_response(
                version,
                &remd_reply(),
                &answer,
            ))
            .unwrap();
            assert_eq!(read, Response::Body(answer));
        }
        for answer in [
            Answer::Success(Some(item())),
            Answer::Success(None),
            Answer::Error(vec![message("REGISTRY_ITEM_NOT_FOUND", "")]),
        ] {
            let (_, read) =
                read_get_registry_item_response(&write_get_registry_item_response(version, &remd_reply(), &answer))
                    .unwrap();
            assert_eq!(read, Response::Body(answer));
        }
    }
}

#[test]
fn remd_calls_round_trip_through_parse_incoming() {
    for version in [SoapVersion::Soap12, SoapVersion::Soap11] {
        let by_emdr_id = DocumentFileRequest {
            relates_to_message: None,
            emdr_id: Some("16.62.23.09.000014523".to_owned()),
            local_uid: None,
            ..file_request()
        };
        for request in [file_request(), by_emdr_id] {
            let (envelope, incoming) = parse_incoming(&write_get_document_file_request(version, &request)).unwrap();
            assert_eq!(envelope.version, version);
            assert_eq!(envelope.message_id.as_deref(), Some(REMD_MESSAGE_ID));
            assert_eq!(incoming.action(), wire::ACTION_GET_DOCUMENT_FILE);
            assert_eq!(incoming.message_id(), REMD_MESSAGE_ID);
            assert_eq!(incoming, Incoming::GetDocumentFile(request));
        }
        for result in [result_success(), result_error()] {
            let (envelope, incoming) = parse_incoming(&write_register_document_result(version, &result)).unwrap();
            assert_eq!(envelope.version, version);
            assert_eq!(envelope.action.as_deref(), Some(wire::ACTION_SEND_REGISTER_DOCUMENT_RESULT));
            assert_eq!(incoming, Incoming::RegisterResult(result));
        }
    }
}

#[test]
fn gateway_answers_round_trip() {
    for version in [SoapVersion::Soap12, SoapVersion::Soap11] {
        let (envelope, read) =
            read_get_document_file_response(&write_get_document_file_response(version, &reply(), &document())).unwrap();
        assert_eq!(read, Response::Body(document()));
        assert_eq!(envelope.version, version);
        assert_eq!(envelope.relates_to.as_deref(), Some(REMD_MESSAGE_ID));
        assert_eq!(envelope.action.as_deref(), Some(wire::ACTION_GET_DOCUMENT_FILE_RESPONSE));

        let (envelope, read) =
            read_register_document_result_response(&write_register_document_result_response(version, &reply()))
                .unwrap();
        assert_eq!(read, Response::Body(ResultStatus::Success));
        assert_eq!(envelope.relates_to.as_deref(), Some(REMD_MESSAGE_ID));

        for fault in [
            Fault::wrong_message_id(),
            Fault::new(FaultCode::Receiver, "сбой"),
            Fault::new(FaultCode::VersionMismatch, ""),
            Fault::new(FaultCode::MustUnderstand, "m"),
        ] {
            let bytes = write_fault(version, &reply(), &fault);
            let (envelope, read) = read_get_document_file_response(&bytes).unwrap();
            assert_eq!(read, Response::Fault(fault.clone()));
            assert_eq!(envelope.action.as_deref(), Some(wire::ACTION_FAULT));
            // Any reader sees a fault as a fault.
            assert_eq!(read_register_document_response(&bytes).unwrap().1, Response::Fault(fault.clone()));
            assert_eq!(read_search_registry_item_response(&bytes).unwrap().1, Response::Fault(fault));
        }
    }
    let fault = Fault::new(FaultCode::DataEncodingUnknown, "d");
    let read = read_register_document_response(&write_fault(SoapVersion::Soap12, &reply(), &fault)).unwrap().1;
    assert_eq!(read, Response::Fault(fault));
    assert_eq!(fault_http_status(SoapVersion::Soap12, &Fault::wrong_message_id()), 400);
    assert_eq!(fault_http_status(SoapVersion::Soap12, &Fault::new(FaultCode::Receiver, "")), 500);
    assert_eq!(fault_http_status(SoapVersion::Soap11, &Fault::wrong_message_id()), 500);
}

#[test]
fn documents_survive_byte_for_byte() {
    let bytes: Vec<u8> = (0..=255u8).cycle().take(70_001).collect();
    let file = DocumentFile::new(bytes.clone());
    let (_, read) =
        read_get_document_file_response(&write_get_document_file_response(SoapVersion::Soap12, &reply(), &file))
            .unwrap();
    let Response::Body(read) = read else { panic!() };
    assert_eq!(read.document, bytes);
    assert_eq!(read.checksum, checksum(&bytes));
}

// ---------------------------------------------------------------------------------------
// Readers against other shapes
// ---------------------------------------------------------------------------------------

/// REMD's result as a SOAP 1.1 client with default namespaces, `SOAP-ENV`, a bare
/// MessageID, status `OK`, a full-URI action, and a date-time without an offset.
const RESULT_SOAP11_DEFAULT_NS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/">
  <SOAP-ENV:Header>
    <MessageID xmlns="http://www.w3.org/2005/08/addressing">0b7c6a2e-91f3-4c1d-8e55-3a0d4c2b9f01</MessageID>
    <Action xmlns="http://www.w3.org/2005/08/addressing">http://egisz.rosminzdrav.ru/iehr/emdr/callback/sendRegisterDocumentResult</Action>
  </SOAP-ENV:Header>
  <SOAP-ENV:Body>
    <registerDocumentResult xmlns="http://egisz.rosminzdrav.ru/iehr/emdr/callback/">
      <relatesToMessage>urn:uuid:7d4d3e5e-4bd0-4a55-9d4a-5f2f7e7b1c10</relatesToMessage>
      <status>OK</status>
      <kind>40</kind>
      <organization>1.2.643.5.1.13.13.12.2.42.1234</organization>
      <localUid>TMK-2023-000042</localUid>
      <creationDateTime>2023-08-18T10:15:00</creationDateTime>
      <registryItem>
        <emdrId>16.62.23.09.000014523</emdrId>
        <registrationDateTime>2023-08-18T12:00:05+03:00</registrationDateTime>
        <storeTillDate>2048-08-18T00:00:00+03:00</storeTillDate>
      </registryItem>
    </registerDocumentResult>
  </SOAP-ENV:Body>
</SOAP-ENV:Envelope>"#;

#[test]
fn reads_a_soap11_result_in_default_namespaces() {
    let (envelope, incoming) = parse_incoming(RESULT_SOAP11_DEFAULT_NS.as_bytes()).unwrap();
    assert_eq!(envelope.version, SoapVersion::Soap11);
    let Incoming::RegisterResult(result) = incoming else { panic!("{incoming:?}") };
    assert_eq!(result.message_id, REMD_MESSAGE_ID);
    assert_eq!(result.relates_to_message, MESSAGE_ID);
    assert_eq!(result.status, ResultStatus::Success);
    assert_eq!(result.creation_date_time, None, "no offset: dropped, not guessed");
    let item = result.registry_item.unwrap();
    assert_eq!(item.emdr_id, "16.62.23.09.000014523");
    assert_eq!(item.local_uid.as_deref(), Some("TMK-2023-000042"));
    assert_eq!(item.kind, Some(40));
    assert_eq!(item.store_till_date, NaiveDate::from_ymd_opt(2048, 8, 18));
    assert!(result.errors.is_empty());
}

/// A SOAP 1.2 call with other prefixes, unqualified fields and no MessageID.
const FILE_REQUEST_OTHER_PREFIXES: &str = r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"
    xmlns:a="http://www.w3.org/2005/08/addressing" xmlns:ns2="http://egisz.rosminzdrav.ru/iehr/emdr/callback/">
  <s:Header><a:Action s:mustUnderstand="true">getDocumentFile</a:Action></s:Header>
  <s:Body>
    <ns2:getDocumentFileRequest>
      <emdrId>16.62.23.09.000014523</emdrId>
      <ns2:localUid>TMK-2023-000042</ns2:localUid>
    </ns2:getDocumentFileRequest>
  </s:Body>
</s:Envelope>"#;

#[test]
fn reads_other_prefixes_and_unqualified_fields() {
    let (envelope, incoming) = parse_incoming(FILE_REQUEST_OTHER_PREFIXES.as_bytes()).unwrap();
    assert_eq!(envelope.version, SoapVersion::Soap12);
    assert_eq!(envelope.message_id, None);
    assert_eq!(
        incoming,
        Incoming::GetDocumentFile(DocumentFileRequest {
            message_id: String::new(),
            relates_to_message: None,
            emdr_id: Some("16.62.23.09.000014523".to_owned()),
            local_uid: Some("TMK-2023-000042".to_owned()),
        })
    );
    // Answered without RelatesTo.
    assert_eq!(ReplyHeader::answering(&envelope).relates_to, None);
}

#[test]
fn reads_an_error_result_with_aliases_and_escapes() {
    let xml = r#"<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:cb="http://egisz.rosminzdrav.ru/iehr/emdr/callback/">
  <env:Body><cb:registerDocumentResult>
    <cb:relatesToMessage> 7d4d3e5e-4bd0-4a55-9d4a-5f2f7e7b1c10 </cb:relatesToMessage>
    <cb:status>ERROR</cb:status>
    <cb:kind>сорок</cb:kind>
    <cb:errors>
      <cb:item><cb:code>RECIPIENT_INFO_MISMATCH</cb:code><cb:message>Получатель &lt;Иванов&gt; &amp; &#1071;</cb:message></cb:item>
      <cb:item><cb:code>RATE_LIMIT</cb:code></cb:item>
    </cb:errors>
  </cb:registerDocumentResult></env:Body>
</env:Envelope>"#;
    let (_, incoming) = parse_incoming(xml.as_bytes()).unwrap();
    let Incoming::RegisterResult(result) = incoming else { panic!() };
    assert_eq!(result.status, ResultStatus::Error);
    assert_eq!(result.relates_to_message, MESSAGE_ID);
    assert_eq!(result.kind, None, "an unreadable optional value is dropped");
    assert_eq!(
        result.errors,
        vec![message("RECIPIENT_INFO_MISMATCH", "Получатель <Иванов> & Я"), message("RATE_LIMIT", "")]
    );
    assert!(!format!("{result:?}").contains("Иванов"), "REMD's text never shows in Debug");
}

#[test]
fn parse_incoming_refuses_what_is_not_a_call() {
    // Action names another operation.
    let mismatched = FILE_REQUEST_OTHER_PREFIXES.replace(">getDocumentFile<", ">sendRegisterDocumentResult<");
    assert_eq!(
        parse_incoming(mismatched.as_bytes()).unwrap_err(),
        ParseError::ActionMismatch { expected: "getDocumentFile" }
    );
    // Our own request is not a call to us.
    let ours = write_register_document(&common::register_document(), CLIENT_ENTITY_ID);
    assert!(matches!(parse_incoming(&ours), Err(ParseError::UnexpectedBody { .. })));
    // The right local name in the wrong namespace.
    let wrong_ns = FILE_REQUEST_OTHER_PREFIXES.replace("emdr/callback/", "emdr/service/");
    assert!(matches!(parse_incoming(wrong_ns.as_bytes()), Err(ParseError::UnexpectedBody { .. })));
    // Neither relatesToMessage nor emdrId.
    let no_key = FILE_REQUEST_OTHER_PREFIXES.replace("<emdrId>16.62.23.09.000014523</emdrId>", "");
    assert_eq!(parse_incoming(no_key.as_bytes()).unwrap_err(), ParseError::Missing("relatesToMessage"));
    // A result without the correlation key, or with an unknown status.
    let no_relates = RESULT_SOAP11_DEFAULT_NS
        .replace("<relatesToMessage>urn:uuid:7d4d3e5e-4bd0-4a55-9d4a-5f2f7e7b1c10</relatesToMessage>", "");
    assert_eq!(parse_incoming(no_relates.as_bytes()).unwrap_err(), ParseError::Missing("relatesToMessage"));
    let bad_status = RESULT_SOAP11_DEFAULT_NS.replace("<status>OK</status>", "<status>maybe</status>");
    assert_eq!(parse_incoming(bad_status.as_bytes()).unwrap_err(), ParseError::Invalid("status"));
    // Not SOAP at all, or an envelope of another namespace, or no body.
    assert_eq!(parse_incoming(b"<Envelope/>").unwrap_err(), ParseError::NotSoap);
    assert_eq!(
        parse_incoming(br#"<e:Envelope xmlns:e="urn:other"><e:Body/></e:Envelope>"#).unwrap_err(),
        ParseError::NotSoap
    );
    assert_eq!(
        parse_incoming(br#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body/></s:Envelope>"#)
            .unwrap_err(),
        ParseError::NoBody
    );
}

#[test]
fn refuses_doctype_and_entities() {
    let billion_laughs = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><x>&lol2;</x></s:Body></s:Envelope>"#;
    assert_eq!(parse_incoming(billion_laughs.as_bytes()).unwrap_err(), ParseError::Doctype);
    let xxe = r#"<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"/>"#;
    assert_eq!(read_register_document_response(xxe.as_bytes()).unwrap_err(), ParseError::Doctype);
    let undeclared = RESULT_SOAP11_DEFAULT_NS.replace("<kind>40</kind>", "<kind>&xxe;</kind>");
    assert_eq!(parse_incoming(undeclared.as_bytes()).unwrap_err(), ParseError::Entity);
    let huge = vec![b'x'; MAX_MESSAGE_BYTES + 1];
    assert_eq!(read_register_document_response(&huge).unwrap_err(), ParseError::TooLarge { limit: MAX_MESSAGE_BYTES });
    // REMD's calls are small: the listener's reader takes far less.
    let call = vec![b' '; MAX_CALL_BYTES + 1];
    assert_eq!(parse_incoming(&call).unwrap_err(), ParseError::TooLarge { limit: MAX_CALL_BYTES });
}

#[test]
fn parse_errors_never_quote_the_message() {
    let personal = RESULT_SOAP11_DEFAULT_NS.replace("<kind>40</kind>", "<kind>Иванов 20311784514</kind></oops>");
    let error = parse_incoming(personal.as_bytes()).unwrap_err();
    let text = error.to_string();
    assert!(!text.contains("Иванов") && !text.contains("20311784514") && !text.contains("oops"), "{text}");
}

#[test]
fn envelope_version_sniffs_the_root_only() {
    assert_eq!(envelope_version(RESULT_SOAP11_DEFAULT_NS.as_bytes()), Some(SoapVersion::Soap11));
    let broken = FILE_REQUEST_OTHER_PREFIXES.replace("</s:Body>", "");
    assert!(parse_incoming(broken.as_bytes()).is_err());
    assert_eq!(envelope_version(broken.as_bytes()), Some(SoapVersion::Soap12));
    assert_eq!(envelope_version(b"<html/>"), None);
    assert_eq!(envelope_version(b"<!DOCTYPE x><x/>"), None);
}

#[test]
fn reads_faults_of_both_versions() {
    let soap11 = r#"<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Body>
  <SOAP-ENV:Fault><faultcode>SOAP-ENV:Server.Database</faultcode><faultstring>INTERNAL_ERROR сбой</faultstring></SOAP-ENV:Fault>
</SOAP-ENV:Body></SOAP-ENV:Envelope>"#;
    let (_, read) = read_register_document_response(soap11.as_bytes()).unwrap();
    let Response::Fault(fault) = read else { panic!() };
    assert_eq!(fault.code, FaultCode::Receiver);
    assert_eq!(fault.reason.expose(), "INTERNAL_ERROR сбой");
    assert_eq!(fault.remd_code(), Some("INTERNAL_ERROR"));

    let soap12 = r#"<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body>
  <env:Fault>
    <env:Code><env:Value>env:Sender</env:Value><env:Subcode><env:Value xmlns:r="urn:remd">r:WRONG</env:Value></env:Subcode></env:Code>
    <env:Reason><env:Text xml:lang="ru">Неверный запрос</env:Text><env:Text xml:lang="en">Bad request</env:Text></env:Reason>
  </env:Fault>
</env:Body></env:Envelope>"#;
    let Response::Fault(fault) = read_search_registry_item_response(soap12.as_bytes()).unwrap().1 else { panic!() };
    assert_eq!(fault.code, FaultCode::Sender);
    assert_eq!(fault.reason.expose(), "Неверный запрос");

    // A code whose prefix is bound to another namespace is not a SOAP code.
    let other =
        soap12.replace("<env:Value>env:Sender</env:Value>", r#"<env:Value xmlns:x="urn:x">x:Sender</env:Value>"#);
    let Response::Fault(fault) = read_get_registry_item_response(other.as_bytes()).unwrap().1 else { panic!() };
    assert_eq!(fault.code, FaultCode::Other("x:Sender".to_owned()));
}

#[test]
fn reads_remd_answers_in_other_shapes() {
    // SOAP 1.2 entirely in default namespaces, status in upper case, bare RelatesTo.
    let default_ns = r#"<Envelope xmlns="http://www.w3.org/2003/05/soap-envelope">
  <Header><RelatesTo xmlns="http://www.w3.org/2005/08/addressing">7d4d3e5e-4bd0-4a55-9d4a-5f2f7e7b1c10</RelatesTo></Header>
  <Body><registerDocumentResponse xmlns="http://egisz.rosminzdrav.ru/iehr/emdr/service/"><status>SUCCESS</status></registerDocumentResponse></Body>
</Envelope>"#;
    let (envelope, read) = read_register_document_response(default_ns.as_bytes()).unwrap();
    assert_eq!(read, Response::Body(RegisterAck::Accepted));
    assert_eq!(envelope.relates_to.as_deref(), Some(MESSAGE_ID));

    // SOAP 1.1, generated prefixes, unqualified fields, an unreadable optional date.
    let soap11 = r#"<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body>
  <ns3:searchRegistryItemResponse xmlns:ns3="http://egisz.rosminzdrav.ru/iehr/emdr/service/">
    <status>success</status>
    <matches>
      <item><emdrId>16.62.23.09.000014523</emdrId><localUid>TMK-2023-000042</localUid><kind>40</kind>
        <registrationDateTime>18.08.2023 12:00</registrationDateTime></item>
    </matches>
  </ns3:searchRegistryItemResponse>
</S:Body></S:Envelope>"#;
    let (envelope, read) = read_search_registry_item_response(soap11.as_bytes()).unwrap();
    assert_eq!(envelope.version, SoapVersion::Soap11);
    let expected =
        RegistryItem { registration_date_time: None, store_till_date: None, document_version: None, ..item() };
    assert_eq!(read, Response::Body(Answer::Success(vec![expected])));

    // An item without its emdrId is not an item.
    let no_id = soap11.replace("<emdrId>16.62.23.09.000014523</emdrId>", "");
    assert_eq!(read_search_registry_item_response(no_id.as_bytes()).unwrap_err(), ParseError::Missing("emdrId"));

    // The gateway's requests are read strictly (the emulator must notice a bad request).
    let bad = String::from_utf8(write_register_document(&common::register_document(), CLIENT_ENTITY_ID))
        .unwrap()
        .replace("<ser:snils>20311784514</ser:snils>", "<ser:snils>20311784515</ser:snils>");
    assert_eq!(read_register_document(bad.as_bytes()).unwrap_err(), ParseError::Invalid("snils"));
    let no_version = String::from_utf8(write_register_document(&common::register_document(), CLIENT_ENTITY_ID))
        .unwrap()
        .replace(r#"<ser:role version="2.4">1</ser:role>"#, "<ser:role>1</ser:role>");
    assert_eq!(read_register_document(no_version.as_bytes()).unwrap_err(), ParseError::Missing("version"));
}

#[test]
fn identifiers_in_remd_calls_are_bounded() {
    let long = "x".repeat(MAX_ID_BYTES + 1);
    let cases = [
        (
            "urn:uuid:7d4d3e5e-4bd0-4a55-9d4a-5f2f7e7b1c10</relatesToMessage>",
            format!("{long}</relatesToMessage>"),
            "relatesToMessage",
        ),
        ("TMK-2023-000042</localUid>", format!("{long}</localUid>"), "localUid"),
        ("1.2.643.5.1.13.13.12.2.42.1234</organization>", format!("{long}</organization>"), "organization"),
        ("16.62.23.09.000014523</emdrId>", format!("{long}</emdrId>"), "emdrId"),
        ("0b7c6a2e-91f3-4c1d-8e55-3a0d4c2b9f01</MessageID>", format!("{long}</MessageID>"), "MessageID"),
    ];
    for (from, to, name) in cases {
        let call = RESULT_SOAP11_DEFAULT_NS.replace(from, &to);
        assert_eq!(parse_incoming(call.as_bytes()).unwrap_err(), ParseError::Invalid(name), "{name}");
    }
    // At the limit: read.
    let at_limit = RESULT_SOAP11_DEFAULT_NS.replace("TMK-2023-000042", &"x".repeat(MAX_ID_BYTES));
    assert!(parse_incoming(at_limit.as_bytes()).is_ok());
}

/// A result as REMD may vary it within the contract: `storeTillDate` an `xs:date` with an
/// offset, `registrationDateTime` unreadable (dropped, for the gateway to mark its own
/// clock), and a header block the reader does not know, first optional, then marked
/// `mustUnderstand`.
fn result_varied(header: &str) -> String {
    format!(
        r#"<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:cb="http://egisz.rosminzdrav.ru/iehr/emdr/callback/" xmlns:x="urn:example:extension">
  <env:Header>{header}</env:Header>
  <env:Body><cb:registerDocumentResult>
    <cb:relatesToMessage>7d4d3e5e-4bd0-4a55-9d4a-5f2f7e7b1c10</cb:relatesToMessage>
    <cb:status>SUCCESS</cb:status>
    <cb:registryItem>
      <cb:emdrId>16.62.23.09.000014523</cb:emdrId>
      <cb:registrationDateTime>вчера</cb:registrationDateTime>
      <cb:storeTillDate>2048-09-22+03:00</cb:storeTillDate>
    </cb:registryItem>
  </cb:registerDocumentResult></env:Body>
</env:Envelope>"#
    )
}

#[test]
fn store_till_date_in_every_form_and_unreadable_times_dropped() {
    let (_, incoming) = parse_incoming(result_varied("").as_bytes()).unwrap();
    let Incoming::RegisterResult(result) = incoming else { panic!() };
    let item = result.registry_item.unwrap();
    assert_eq!(item.store_till_date, NaiveDate::from_ymd_opt(2048, 9, 22), "an xs:date with an offset is kept");
    assert_eq!(item.registration_date_time, None, "unreadable: dropped, for the gateway to mark");
}

#[test]
fn an_unknown_header_is_ignored_unless_it_must_be_understood() {
    for optional in [
        r#"<x:trace>abc</x:trace>"#,
        r#"<x:trace env:mustUnderstand="false">abc</x:trace>"#,
        r#"<x:trace env:mustUnderstand="0">abc</x:trace>"#,
        r#"<x:trace mustUnderstand="true">abc</x:trace>"#,
    ] {
        assert!(parse_incoming(result_varied(optional).as_bytes()).is_ok(), "{optional}");
    }
    for must in [r#"<x:trace env:mustUnderstand="true">abc</x:trace>"#, r#"<x:trace env:mustUnderstand="1"/>"#] {
        let err = parse_incoming(result_varied(must).as_bytes()).unwrap_err();
        assert_eq!(err, ParseError::NotUnderstood("urn:example:extension".into(), "trace".into()), "{must}");
    }
    // A block for another role is not the gateway's to understand.
    for other in [
        r#"<x:trace env:mustUnderstand="true" env:role="http://www.w3.org/2003/05/soap-envelope/role/none"/>"#,
        r#"<x:trace env:mustUnderstand="true" env:role="urn:example:proxy"/>"#,
    ] {
        assert!(parse_incoming(result_varied(other).as_bytes()).is_ok(), "{other}");
    }
    let ultimate = r#"<x:trace env:mustUnderstand="true" env:role="http://www.w3.org/2003/05/soap-envelope/role/ultimateReceiver"/>"#;
    assert!(parse_incoming(result_varied(ultimate).as_bytes()).is_err());
    // WS-Addressing's blocks are understood.
    let wsa = r#"<a:Action xmlns:a="http://www.w3.org/2005/08/addressing" env:mustUnderstand="true">sendRegisterDocumentResult</a:Action>"#;
    assert!(parse_incoming(result_varied(wsa).as_bytes()).is_ok());
}
