//! The ministry's rule packages (`packages/`: kinds 40, 119 and 160) at intake, in
//! `POST /api/v1/documents/validate` and in the REMD emulator: the three shared samples
//! pass; a corpus of kind-119 and kind-160 variants (one per schematron pattern family it
//! exercises, and the XSD) is refused with the ministry's message, code and location, and
//! the emulator, validating with the same packages, answers the same; reports are warnings;
//! the validation-only endpoint stores nothing, on both backends.

mod common;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use common::*;
use egisz_gateway::auth::Role;
use egisz_gateway::validation::policy::{KindPolicies, Policy};
use serde_json::{Value, json};

on_both_backends!(
    the_samples_pass_and_the_corpus_is_refused_as_remd_refuses_it,
    validation_only_stores_nothing_and_says_what_intake_says,
    under_warn_the_emulator_refuses_what_the_package_found,
);

const SAMPLE_119: &str = include_str!("../../shared/samples/consultation-protocol-119.xml");
const SAMPLE_160: &str = include_str!("../../shared/samples/tmk-cross-border-160.xml");

/// A variant of a sample and the finding intake must report for it.
struct Variant {
    kind: u32,
    /// What the pattern family is.
    family: &'static str,
    from: &'static str,
    to: &'static str,
    rule: &'static str,
    /// The ministry's code (the head of the schematron message).
    code: Option<&'static str>,
    path: &'static str,
    /// The message exactly (schematron), or its beginning (XSD: libxml2's wording).
    message: &'static str,
}

fn corpus() -> Vec<Variant> {
    vec![
        Variant {
            kind: 119,
            family: "header: set of versions (У1-19)",
            from: r#"<setId root="1.2.643.5.1.13.13.12.2.42.2917.100.1.1.50" extension="cons-2023-09-14-0417"/>"#,
            to: "",
            rule: "SCH",
            code: Some("У1-19"),
            path: "/ClinicalDocument[1]",
            message: "У1-19. Элемент ClinicalDocument должен иметь 1 элемент setId.",
        },
        Variant {
            kind: 119,
            family: "header: realm (У1-9)",
            from: r#"<realmCode code="RU"/>"#,
            to: r#"<realmCode code="EN"/>"#,
            rule: "SCH",
            code: Some("У1-9"),
            path: "/ClinicalDocument[1]/realmCode[1]",
            message: "У1-9. Элемент ClinicalDocument/realmCode должен иметь значение атрибута @code равное 'RU'.",
        },
        Variant {
            kind: 119,
            family: "header: language (У1-17)",
            from: r#"<languageCode code="ru-RU"/>"#,
            to: r#"<languageCode code="en-US"/>"#,
            rule: "SCH",
            code: Some("У1-17"),
            path: "/ClinicalDocument[1]/languageCode[1]",
            message: "У1-17. Элемент ClinicalDocument/languageCode должен иметь значение атрибута @code равное 'ru-RU'.",
        },
        Variant {
            kind: 119,
            family: "common: telephone numbers (У1-4, a regular expression)",
            from: "tel:+79131234567",
            to: "tel:+7913-abc",
            rule: "SCH",
            code: Some("У1-4"),
            path: "/ClinicalDocument[1]/recordTarget[1]/patientRole[1]/telecom[1]",
            message: "У1-4. Все элементы //telecom со схемой \"tel:\" должны соответствовать следующему регулярному выражению: tel:\\+?[-0-9().]+ Как минимум одна цифра должна остаться в номере телефона после удаления всех разделителей.",
        },
        Variant {
            kind: 119,
            family: "common: addresses (У1-3)",
            from: "<postalCode>650070</postalCode>",
            to: "",
            rule: "SCH",
            code: Some("У1-3"),
            path: "/ClinicalDocument[1]/recordTarget[1]/patientRole[1]/addr[1]",
            message: "У1-3. Элемент addr должен иметь 1 элемент postalCode.",
        },
        Variant {
            kind: 119,
            family: "patient: birth date precision (У1-21)",
            from: r#"<birthTime value="19970805"/>"#,
            to: r#"<birthTime value="1997"/>"#,
            rule: "SCH",
            code: Some("У1-21"),
            path: "/ClinicalDocument[1]/recordTarget[1]/patientRole[1]/patient[1]/birthTime[1]",
            message: "У1-21. Дата в элементе должна быть указана с точностью до дня.",
        },
        Variant {
            kind: 119,
            family: "body: the DOCINFO section (У2-1)",
            from: r#"code="DOCINFO""#,
            to: r#"code="DOCINF0""#,
            rule: "SCH",
            code: Some("У2-1"),
            path: "/ClinicalDocument[1]/component[1]/structuredBody[1]",
            message: "У2-1. Элемент ClinicalDocument/component/structuredBody должен иметь 1 элемент component со значением атрибута section/code/@code равным 'DOCINFO'.",
        },
        Variant {
            kind: 119,
            family: "XSD: a value the CDA schema refuses",
            from: r#"codeSystemName="Уровень конфиденциальности медицинского документа""#,
            to: r#"codeSystemName="""#,
            rule: "XSD",
            code: None,
            path: "/ClinicalDocument[1]/confidentialityCode[1]",
            message: "ошибка валидации XSD (строка 10): Element 'confidentialityCode', attribute 'codeSystemName'",
        },
        Variant {
            kind: 160,
            family: "identity documents (Core05-1)",
            from: "<identity:Series>3217</identity:Series>",
            to: "<identity:Series></identity:Series>",
            rule: "SCH",
            code: Some("Core05-1"),
            path: "/ClinicalDocument[1]/recordTarget[1]/patientRole[1]",
            message: "Core05-1. Элемент //identity:IdentityDoc/identity:Series должен иметь не пустое значение.",
        },
        Variant {
            kind: 160,
            family: "XSD: kind 160's own strict schema (a fixed value)",
            from: r#"<realmCode code="RU"/>"#,
            to: r#"<realmCode code="EN"/>"#,
            rule: "XSD",
            code: None,
            path: "/ClinicalDocument[1]/realmCode[1]",
            message: "ошибка валидации XSD (строка 3): Element 'realmCode', attribute 'code': The value 'EN' does not match the fixed value constraint 'RU'.",
        },
        Variant {
            kind: 160,
            family: "XSD: a set of versions is required",
            from: r#"<setId root="1.2.643.5.1.13.13.12.2.42.2917.100.1.1.50" extension="tmk-cb-2023-10-05-0031"/>"#,
            to: "",
            rule: "XSD",
            code: None,
            path: "/ClinicalDocument[1]/versionNumber[1]",
            message: "ошибка валидации XSD (строка 13): Element 'versionNumber': This element is not expected. Expected is ( setId ).",
        },
    ]
}

/// The gateway, with the FRMR check of signers off for kinds 119 and 160: their shared
/// samples name the sandbox roster's doctor (SNILS 20311784514, position 73) under another
/// name than the roster's, which FRMR would refuse (`VALUE_MISMATCH_METADATA_AND_FRMR`)
/// whatever the packages say.
async fn start(db: Db, tweak: impl FnOnce(&mut egisz_gateway::config::Config)) -> TestEnv {
    TestEnv::start_with(db, |c, _| {
        c.validation.signers =
            KindPolicies { default: Policy::Block, by_kind: [(119, Policy::Off), (160, Policy::Off)].into() };
        tweak(c);
    })
    .await
}

fn sample(kind: u32) -> String {
    match kind {
        40 => sample_as("packages-40"),
        119 => SAMPLE_119.to_owned(),
        160 => SAMPLE_160.to_owned(),
        other => panic!("no sample of kind {other}"),
    }
}

fn variant_document(v: &Variant) -> String {
    let base = sample(v.kind);
    let doc = base.replacen(v.from, v.to, 1);
    assert_ne!(doc, base, "{}: the variant changes nothing", v.family);
    doc
}

/// The body of a submission of `document` of `kind`, signed by the samples' author.
fn body(kind: u32, document: &str) -> Value {
    let cms = author_signer().sign_detached(document.as_bytes());
    json!({
        "kind": kind, "organization": MO_2917, "document": B64.encode(document),
        "signatures": [{"role": "1", "role_version": "2.4", "data": B64.encode(cms)}],
    })
}

async fn validate(env: &TestEnv, key: &str, body: &Value) -> (u16, Value) {
    let res = env.http.post(env.url("/api/v1/documents/validate")).bearer_auth(key).json(body).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Whether `findings` (a 422's `errors`, a report's `findings`) hold `v`'s finding.
fn holds(findings: &Value, v: &Variant) -> bool {
    findings.as_array().into_iter().flatten().any(|e| {
        e["rule"] == v.rule
            && e["path"] == v.path
            && e["remd_code"] == "VALIDATION_ERROR"
            && e["code"].as_str() == v.code
            && e["message"]
                .as_str()
                .is_some_and(|m| if v.rule == "SCH" { m == v.message } else { m.starts_with(v.message) })
    })
}

async fn the_samples_pass_and_the_corpus_is_refused_as_remd_refuses_it(db: Db) {
    let env = start(db, |_| {}).await;
    let key = env.key(&[Role::Submitter, Role::Reader], &[MO_2917]).await;
    for kind in [40, 119, 160] {
        let (status, answer) = env.submit(&key, &body(kind, &sample(kind))).await;
        assert_eq!(status, 202, "the kind-{kind} sample: {answer:#}");
        assert_eq!(answer["warnings"], json!([]), "kind {kind}");
    }
    // The emulator's judgement of the same bytes, with the same packages.
    let settings = env.config.validation.packages.as_ref().expect("packages_dir is set by default");
    let catalog = egisz_packages::Catalog::open(egisz_gateway::app::packages_settings(&env.config, settings)).unwrap();
    for v in corpus() {
        let document = variant_document(&v);
        let (status, answer) = env.submit(&key, &body(v.kind, &document)).await;
        assert_eq!(status, 422, "{}: {answer:#}", v.family);
        assert!(holds(&answer["errors"], &v), "{}: {:#}", v.family, answer["errors"]);
        assert_eq!(answer["package"]["kind"], v.kind, "{}: the 422 names the package", v.family);
        assert_eq!(answer["package"]["sha256"].as_str().map(str::len), Some(64));
        let remd = egisz_sandbox::remd::validate_package(&catalog, v.kind, document.as_bytes());
        let prefix = if v.rule == "SCH" {
            "Ошибка валидации Schematron"
        } else {
            "Ошибка валидации XSD"
        };
        let want = format!("{prefix}: {} Путь: {}", v.message, v.path);
        assert!(
            remd.iter().any(|m| m.code == "VALIDATION_ERROR"
                && (m.message.0 == want
                    || (v.rule == "XSD" && m.message.0.starts_with(&format!("{prefix}: {}", v.message))))),
            "{}: the emulator answered {remd:?}",
            v.family
        );
    }
    // A successful report is a warning: the document is accepted with it.
    let report = sample(160)
        .replacen(r#"<identity:IssueDate value="20170912"/>"#, r#"<identity:IssueDate value="2017"/>"#, 1)
        .replacen("c41e7b20-9f3a-4d85-b6e2-17a9d03f5c68", "report-160", 1);
    let (status, answer) = env.submit(&key, &body(160, &report)).await;
    assert_eq!(status, 202, "{answer:#}");
    let warning = &answer["warnings"][0];
    assert_eq!((warning["rule"].as_str(), warning["code"].as_str()), (Some("SCH"), Some("Core03-1")), "{answer:#}");
    assert_eq!(warning["path"], "/ClinicalDocument[1]/recordTarget[1]/patientRole[1]");
    // A document of kind 40 that breaks the CDA schema.
    let broken = sample(40).replacen("<title>", "<titlee>x</titlee><title>", 1);
    let (status, answer) = env.submit(&key, &body(40, &broken)).await;
    assert_eq!(status, 422, "{answer:#}");
    assert_eq!(answer["errors"][0]["rule"], "XSD", "{answer:#}");
    assert_eq!(answer["errors"][0]["path"], "/ClinicalDocument[1]/titlee[1]");
    env.shutdown().await;
}

/// How many submissions the gateway holds (the first page of the list is enough here).
async fn stored(env: &TestEnv, key: &str) -> usize {
    let list: Value = env.get(key, "/api/v1/documents?limit=100").await.json().await.unwrap();
    list["items"].as_array().map_or(0, Vec::len)
}

async fn validation_only_stores_nothing_and_says_what_intake_says(db: Db) {
    let env = start(db, |_| {}).await;
    let key = env.key(&[Role::Submitter, Role::Reader], &[MO_2917]).await;
    for kind in [40, 119, 160] {
        let (status, report) = validate(&env, &key, &body(kind, &sample(kind))).await;
        assert_eq!(status, 200, "{report:#}");
        assert_eq!((report["valid"].as_bool(), report["kind"].as_u64()), (Some(true), Some(u64::from(kind))));
        assert_eq!(report["findings"], json!([]), "kind {kind}: {report:#}");
        if kind != 40 {
            assert_eq!(report["package"]["schematron"], true, "{report:#}");
        }
    }
    for v in corpus() {
        let b = body(v.kind, &variant_document(&v));
        let (status, report) = validate(&env, &key, &b).await;
        assert_eq!(status, 200, "{}: {report:#}", v.family);
        assert_eq!(report["valid"], false);
        assert!(holds(&report["findings"], &v), "{}: {report:#}", v.family);
        // Exactly what intake answers for the same body.
        let (status, refused) = env.submit(&key, &b).await;
        assert_eq!(status, 422);
        assert_eq!(report["findings"], refused["errors"], "{}", v.family);
        assert_eq!(report["package"], refused["package"], "{}", v.family);
    }
    // A header rule of ours, outside the packages, is reported the same way.
    let (_, report) =
        validate(&env, &key, &body(40, &sample(40).replace(MO_2917, "1.2.643.5.1.13.13.12.2.42.3011"))).await;
    assert_eq!(report["valid"], false, "{report:#}");
    // The encoding as REMD reads it.
    let bom = format!("\u{feff}{}", sample(40));
    let (_, report) = validate(&env, &key, &body(40, &bom)).await;
    assert_eq!(report["findings"][0]["rule"], "ENC", "{report:#}");
    // Nothing was stored: the valid samples were only validated, the rest refused.
    assert_eq!(stored(&env, &key).await, 0);
    // Roles and limits: a reader may not validate; bad input is a 4xx.
    let reader = env.key(&[Role::Reader], &[MO_2917]).await;
    assert_eq!(validate(&env, &reader, &body(40, &sample(40))).await.0, 403);
    let (status, _) = validate(&env, &key, &json!({"kind": 40})).await;
    assert!((400..500).contains(&status), "{status}");
    env.shutdown().await;
}

async fn under_warn_the_emulator_refuses_what_the_package_found(db: Db) {
    let env = start(db, |c| {
        c.validation.schematron = KindPolicies { default: Policy::Block, by_kind: [(119, Policy::Warn)].into() };
    })
    .await;
    let key = env.key(&[Role::Submitter, Role::Reader], &[MO_2917]).await;
    // A rule only the package has (no header rule of the gateway's repeats it).
    let v = corpus().into_iter().find(|v| v.code == Some("У1-3")).unwrap();
    let (status, answer) = env.submit(&key, &body(119, &variant_document(&v))).await;
    assert_eq!(status, 202, "accepted under warn: {answer:#}");
    assert!(answer["warnings"].as_array().unwrap().iter().any(|w| w["code"] == "У1-3"), "{answer:#}");
    let id = answer["id"].as_str().unwrap();
    let doc = env.wait_status(&key, id, "failed").await;
    let error =
        doc["errors"].as_array().unwrap().iter().find(|e| e["code"] == "VALIDATION_ERROR").expect("VALIDATION_ERROR");
    assert_eq!(error["message"], format!("Ошибка валидации Schematron: {} Путь: {}", v.message, v.path), "{doc:#}");
    env.shutdown().await;
}
