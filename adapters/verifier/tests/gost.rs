//! The GOST verifier against Debian's engine, with its CRLs served over HTTP on loopback:
//! each case REMD refuses, with the code REMD gives.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, FixedOffset, Utc};
use egisz_gost::Gost;
use egisz_gost::test_pki::{Profile, SignOptions, Strength, TestCa, TestSigner, Usage};
use egisz_semd::{SignatureVerifier, Violation, check_signature, parse_signature};
use egisz_verifier::gost::{CrlSettings, GostVerifier, TrustSource};
use egisz_verifier::judge::RevocationPolicy;

const DAY: i64 = 86_400;
const DOCUMENT: &[u8] = b"<ClinicalDocument xmlns=\"urn:hl7-org:v3\">...</ClinicalDocument>";
const SNILS: &str = "20311784514";

fn gost() -> &'static Gost {
    Gost::load().expect("the GOST engine (libengine-gost-openssl)")
}

#[derive(Clone)]
enum Crl {
    Serve(Vec<u8>),
    Down,
    /// A body this many bytes long.
    Huge(usize),
    /// One byte a second.
    Trickle,
}

async fn serve(state: Arc<Mutex<Crl>>) -> SocketAddr {
    async fn crl(State(state): State<Arc<Mutex<Crl>>>) -> Response {
        let now = state.lock().unwrap().clone();
        match now {
            Crl::Serve(b) => b.into_response(),
            Crl::Down => StatusCode::SERVICE_UNAVAILABLE.into_response(),
            Crl::Huge(n) => vec![0x30u8; n].into_response(),
            Crl::Trickle => {
                let stream = futures::stream::unfold((), |()| async {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    Some((Ok::<_, std::io::Error>(vec![0x30u8]), ()))
                });
                axum::body::Body::from_stream(stream).into_response()
            }
        }
    }
    let app = Router::new().route("/ca.crl", get(crl)).with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

struct Pki {
    ca: TestCa,
    crl: Arc<Mutex<Crl>>,
    now: i64,
}

async fn pki() -> Pki {
    let crl = Arc::new(Mutex::new(Crl::Down));
    let addr = serve(crl.clone()).await;
    let ca = TestCa::new(gost(), "verifier-tests").with_crl_url(format!("http://{addr}/ca.crl"));
    let now = Utc::now().timestamp();
    *crl.lock().unwrap() = Crl::Serve(ca.crl(&[], now - DAY, now + DAY));
    Pki { ca, crl, now }
}

impl Pki {
    fn doctor(&self, seed: &str) -> TestSigner {
        self.ca.issue_doctor(seed, SNILS, self.now - 30 * DAY, self.now + 300 * DAY)
    }

    fn verifier(&self, policy: RevocationPolicy) -> GostVerifier {
        let settings =
            CrlSettings { timeout: Duration::from_secs(3), max_bytes: 1024 * 1024, ..CrlSettings::default() };
        GostVerifier::new(TrustSource::fixed(vec![self.ca.certificate_der()]), policy, settings).unwrap()
    }
}

fn created(now: i64) -> DateTime<FixedOffset> {
    DateTime::from_timestamp(now - DAY, 0).unwrap().fixed_offset()
}

async fn judge(v: &GostVerifier, cms: &[u8], at: DateTime<FixedOffset>) -> Result<Vec<&'static str>, String> {
    let sig = parse_signature(cms).unwrap();
    v.verify(&sig, DOCUMENT, at).await.map(|v| v.iter().map(|v| v.rule).collect()).map_err(|f| f.reason().to_owned())
}

#[tokio::test]
async fn valid_signatures_of_every_shape_pass() {
    let p = pki().await;
    let v = p.verifier(RevocationPolicy::Block);
    let at = created(p.now);
    for strength in [Strength::Gost256, Strength::Gost512] {
        let signer = p.ca.issue(
            &Profile::doctor(&format!("d-{strength:?}"), SNILS, p.now - 30 * DAY, p.now + 300 * DAY).strength(strength),
        );
        let der = signer.sign_detached(DOCUMENT);
        assert_eq!(judge(&v, &der, at).await, Ok(vec![]), "{strength:?} detached");
        let cades = signer.sign_cades_bes(DOCUMENT);
        assert_eq!(judge(&v, &cades, at).await, Ok(vec![]), "{strength:?} CAdES-BES");
        let ber = egisz_semd::ber::with_indefinite_lengths(&der);
        assert_eq!(ber[1], 0x80);
        assert_eq!(judge(&v, &ber, at).await, Ok(vec![]), "{strength:?} BER");
        let sig = parse_signature(&der).unwrap();
        assert_eq!(check_signature(&sig, DOCUMENT, at), Vec::<Violation>::new(), "{strength:?}: semd's checks");
    }
}

#[tokio::test]
async fn a_tampered_signature_value_and_a_foreign_ca_are_refused() {
    let p = pki().await;
    let v = p.verifier(RevocationPolicy::Warn);
    let mut cms = p.doctor("tamper").sign_detached(DOCUMENT);
    let value = parse_signature(&cms).unwrap().signature_value().to_vec();
    let i = cms.windows(value.len()).position(|w| w == value).unwrap() + 5;
    cms[i] ^= 0x01;
    assert_eq!(judge(&v, &cms, created(p.now)).await, Ok(vec!["SIGNATURE_VERIFICATION_ERROR"]));

    let foreign = TestCa::new(gost(), "foreign").issue_doctor("f", SNILS, p.now - DAY, p.now + DAY);
    let cms = foreign.sign_detached(DOCUMENT);
    assert_eq!(judge(&v, &cms, created(p.now)).await, Ok(vec!["CANT_BUILD_CERT_CHAIN_TO_ACCREDITED_CA_CERT"]));
}

#[tokio::test]
async fn a_tampered_document_wrong_usage_and_dates_are_semd_rules() {
    let p = pki().await;
    let at = created(p.now);
    let cms = p.doctor("doc").sign_detached(DOCUMENT);
    let sig = parse_signature(&cms).unwrap();
    let rules = |v: Vec<Violation>| v.iter().map(|v| v.rule).collect::<Vec<_>>();
    assert_eq!(rules(check_signature(&sig, b"<ClinicalDocument/>", at)), ["INCONSISTENT_DIGESTS"]);

    let enc = p.ca.issue(&Profile::doctor("enc", SNILS, p.now - 30 * DAY, p.now + DAY).usage(Usage::EnciphermentOnly));
    let sig = parse_signature(&enc.sign_detached(DOCUMENT)).unwrap();
    assert_eq!(rules(check_signature(&sig, DOCUMENT, at)), ["INVALID_CERT_KEY_USAGE"]);

    // Expired before the document was created, and valid only from after it.
    let expired = p.ca.issue_doctor("old", SNILS, p.now - 90 * DAY, p.now - 2 * DAY);
    let options = SignOptions { cades: false, signing_time: Some(p.now - 3 * DAY) };
    let sig = parse_signature(&expired.sign(DOCUMENT, &options)).unwrap();
    assert_eq!(rules(check_signature(&sig, DOCUMENT, at)), ["DOC_DATE_MISMATCH_CERT_NOT_AFTER"]);
    // The verifier judges the chain at the creation time the same way.
    let v = p.verifier(RevocationPolicy::Warn);
    assert_eq!(judge(&v, &expired.sign(DOCUMENT, &options), at).await, Ok(vec!["DOC_DATE_MISMATCH_CERT_NOT_AFTER"]));
    let future = p.ca.issue_doctor("new", SNILS, p.now - DAY / 2, p.now + DAY);
    let sig = parse_signature(&future.sign_detached(DOCUMENT)).unwrap();
    assert_eq!(rules(check_signature(&sig, DOCUMENT, at)), ["DOC_DATE_MISMATCH_CERT_NOT_BEFORE"]);
    // Signed (signingTime) after the certificate expired, the document made while it was valid.
    let lapsed = p.ca.issue_doctor("lapsed", SNILS, p.now - 90 * DAY, p.now - 10 * DAY);
    let options = SignOptions { cades: true, signing_time: Some(p.now - 5 * DAY) };
    let sig = parse_signature(&lapsed.sign(DOCUMENT, &options)).unwrap();
    let v = check_signature(&sig, DOCUMENT, DateTime::from_timestamp(p.now - 20 * DAY, 0).unwrap().fixed_offset());
    assert_eq!(rules(v.clone()), ["DOC_DATE_MISMATCH_CERT_NOT_AFTER"]);
    assert!(v[0].path.ends_with("/signingTime"), "{}", v[0].path);
}

#[tokio::test]
async fn a_revoked_certificate_is_not_actual_on_the_check_date() {
    let p = pki().await;
    let revoked = p.doctor("revoked");
    let kept = p.doctor("kept");
    *p.crl.lock().unwrap() = Crl::Serve(p.ca.crl(&[(revoked.certificate(), p.now - 3600)], p.now - 60, p.now + DAY));
    let v = p.verifier(RevocationPolicy::Warn);
    let at = created(p.now);
    assert_eq!(
        judge(&v, &revoked.sign_detached(DOCUMENT), at).await,
        Ok(vec!["PERSONAL_SIG_CERT_NOT_ACTUAL_ON_CHECK_DT"])
    );
    assert_eq!(judge(&v, &kept.sign_detached(DOCUMENT), at).await, Ok(vec![]));
    // The CRL is cached: the server going away changes nothing until its nextUpdate.
    *p.crl.lock().unwrap() = Crl::Down;
    assert_eq!(
        judge(&v, &revoked.sign_detached(DOCUMENT), at).await,
        Ok(vec!["PERSONAL_SIG_CERT_NOT_ACTUAL_ON_CHECK_DT"])
    );
}

#[tokio::test]
async fn no_usable_crl_warns_or_blocks_as_configured() {
    let p = pki().await;
    let at = created(p.now);
    let cms = p.doctor("ca-down").sign_detached(DOCUMENT);
    *p.crl.lock().unwrap() = Crl::Down;
    let warn = judge(&p.verifier(RevocationPolicy::Warn), &cms, at).await.unwrap_err();
    assert!(warn.contains("CA_INACCESSIBILITY"), "{warn}");
    assert_eq!(judge(&p.verifier(RevocationPolicy::Block), &cms, at).await, Ok(vec!["CA_INACCESSIBILITY"]));
    // A stale list (nextUpdate passed) is not used either.
    *p.crl.lock().unwrap() = Crl::Serve(p.ca.crl(&[], p.now - 2 * DAY, p.now - DAY));
    assert_eq!(judge(&p.verifier(RevocationPolicy::Block), &cms, at).await, Ok(vec!["CA_INACCESSIBILITY"]));
    // A list signed by another CA is not the issuer's.
    let other = TestCa::new(gost(), "other");
    *p.crl.lock().unwrap() = Crl::Serve(other.crl(&[], p.now - 60, p.now + DAY));
    assert_eq!(judge(&p.verifier(RevocationPolicy::Block), &cms, at).await, Ok(vec!["CA_INACCESSIBILITY"]));
}

#[tokio::test]
async fn hostile_crl_servers_are_bounded_in_size_and_time() {
    let p = pki().await;
    let at = created(p.now);
    let cms = p.doctor("hostile").sign_detached(DOCUMENT);
    *p.crl.lock().unwrap() = Crl::Huge(8 * 1024 * 1024);
    let v = p.verifier(RevocationPolicy::Block);
    assert_eq!(judge(&v, &cms, at).await, Ok(vec!["CA_INACCESSIBILITY"]), "over max_bytes (1 MiB)");
    *p.crl.lock().unwrap() = Crl::Trickle;
    let v = p.verifier(RevocationPolicy::Block);
    let started = Instant::now();
    assert_eq!(judge(&v, &cms, at).await, Ok(vec!["CA_INACCESSIBILITY"]));
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "cut at the 3 s timeout, took {took:?}");
    // The failure is remembered: the next document does not wait again.
    let started = Instant::now();
    assert_eq!(judge(&v, &cms, at).await, Ok(vec!["CA_INACCESSIBILITY"]));
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
}

#[tokio::test]
async fn a_subordinate_ca_path_in_the_container_is_followed_and_each_link_checked() {
    let crl = Arc::new(Mutex::new(Crl::Down));
    let addr = serve(crl.clone()).await;
    let now = Utc::now().timestamp();
    // One address serves the root's list (which names the sub-CA's certificate or not).
    let root =
        TestCa::root(gost(), "v-root", Strength::Gost512, "Корневой").with_crl_url(format!("http://{addr}/ca.crl"));
    let sub = root.subordinate("v-sub", "Подчинённый");
    let leaf = sub.issue_doctor("leaf", SNILS, now - DAY * 30, now + DAY * 30);
    let settings = CrlSettings { timeout: Duration::from_secs(3), ..CrlSettings::default() };
    let v =
        GostVerifier::new(TrustSource::fixed(vec![root.certificate_der()]), RevocationPolicy::Warn, settings.clone())
            .unwrap();
    *crl.lock().unwrap() = Crl::Serve(root.crl(&[], now - 60, now + DAY));
    // The leaf has no CRL address (its CA publishes none): revocation unknown, a warning.
    let warn = judge(&v, &leaf.sign_detached(DOCUMENT), created(now)).await.unwrap_err();
    assert!(warn.contains("нет адреса списка отзыва"), "{warn}");
    // The sub-CA revoked by the root: the chain fails.
    *crl.lock().unwrap() = Crl::Serve(root.crl(&[(sub.certificate(), now - 60)], now - 30, now + DAY));
    let v =
        GostVerifier::new(TrustSource::fixed(vec![root.certificate_der()]), RevocationPolicy::Warn, settings).unwrap();
    assert_eq!(
        judge(&v, &leaf.sign_detached(DOCUMENT), created(now)).await,
        Ok(vec!["CANT_BUILD_CERT_CHAIN_TO_ACCREDITED_CA_CERT"])
    );
}

#[tokio::test]
async fn a_trust_directory_and_a_ca_made_outside_the_project() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl").args(args).current_dir(dir.path()).output().unwrap();
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    // A CA and a doctor's certificate made with the openssl command and the engine.
    run(&["genpkey", "-engine", "gost", "-algorithm", "gost2012_256", "-pkeyopt", "paramset:A", "-out", "ca.key"]);
    run(&["req", "-engine", "gost", "-new", "-x509", "-key", "ca.key", "-subj", "/C=RU/CN=Outside CA", "-days", "30"]
        .into_iter()
        .chain(["-md_gost12_256", "-out", "ca.pem"])
        .collect::<Vec<_>>());
    run(&["genpkey", "-engine", "gost", "-algorithm", "gost2012_256", "-pkeyopt", "paramset:A", "-out", "doc.key"]);
    std::fs::write(dir.path().join("ext.cnf"), "keyUsage=critical,digitalSignature,nonRepudiation\n").unwrap();
    run(&[
        "req",
        "-engine",
        "gost",
        "-new",
        "-key",
        "doc.key",
        "-subj",
        "/C=RU/CN=Doctor/SNILS=20311784514",
        "-out",
        "doc.csr",
    ]);
    run(&[
        "x509",
        "-engine",
        "gost",
        "-req",
        "-in",
        "doc.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-days",
        "10",
        "-md_gost12_256",
        "-extfile",
        "ext.cnf",
        "-set_serial",
        "7",
        "-out",
        "doc.pem",
    ]);
    std::fs::write(dir.path().join("document.xml"), DOCUMENT).unwrap();
    run(&[
        "cms",
        "-sign",
        "-engine",
        "gost",
        "-binary",
        "-in",
        "document.xml",
        "-signer",
        "doc.pem",
        "-inkey",
        "doc.key",
        "-outform",
        "DER",
        "-out",
        "document.sig",
        "-cades",
        "-nosmimecap",
    ]);
    let trust = dir.path().join("trust");
    std::fs::create_dir(&trust).unwrap();
    std::fs::copy(dir.path().join("ca.pem"), trust.join("outside.pem")).unwrap();
    std::fs::write(trust.join("README.txt"), "not a certificate").unwrap();
    let cms = std::fs::read(dir.path().join("document.sig")).unwrap();
    let sig = parse_signature(&cms).unwrap();
    assert_eq!(sig.certificate.snils.as_ref().map(|s| s.as_str()), Some(SNILS));
    let now = Utc::now().fixed_offset();
    assert_eq!(check_signature(&sig, DOCUMENT, now), vec![]);

    let v = GostVerifier::new(TrustSource::directory(trust.clone()), RevocationPolicy::Block, CrlSettings::default())
        .unwrap();
    assert_eq!(v.trusted(), 1, "the README is skipped");
    // It carries no CRL address: under `block` that is CA_INACCESSIBILITY, under `warn` a warning.
    assert_eq!(judge(&v, &cms, now).await, Ok(vec!["CA_INACCESSIBILITY"]));
    let v = GostVerifier::new(TrustSource::directory(trust.clone()), RevocationPolicy::Warn, CrlSettings::default())
        .unwrap();
    assert!(judge(&v, &cms, now).await.unwrap_err().contains("CA_INACCESSIBILITY"));
    // The sandbox's CA does not vouch for it.
    let sandbox = TestCa::new(gost(), egisz_gost::test_pki::SANDBOX_CA_SEED);
    let v = GostVerifier::new(
        TrustSource::fixed(vec![sandbox.certificate_der()]),
        RevocationPolicy::Warn,
        CrlSettings::default(),
    )
    .unwrap();
    assert_eq!(judge(&v, &cms, now).await, Ok(vec!["CANT_BUILD_CERT_CHAIN_TO_ACCREDITED_CA_CERT"]));
    // An empty directory trusts nobody: refused at start, with the reason.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let e =
        GostVerifier::new(TrustSource::directory(empty), RevocationPolicy::Warn, CrlSettings::default()).unwrap_err();
    assert!(e.contains("no CA certificate"), "{e}");
}

/// The ministry's list as the portal publishes it, with `cas` as (name, status, certificate
/// DER, CRL address).
fn accredited_list(cas: &[(&str, &str, Vec<u8>, String)]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><АккредитованныеУдостоверяющиеЦентры><Версия>1</Версия><Дата>2026-12-01T00:00:00+03:00</Дата>",
    );
    for (name, status, der, crl) in cas {
        xml.push_str(&format!(
            "<УдостоверяющийЦентр><Название>{name}</Название><КраткоеНазвание>{name}</КраткоеНазвание>\
             <СтатусАккредитации><Статус>{status}</Статус><ДействуетС>2020-01-01T00:00:00+03:00</ДействуетС></СтатусАккредитации>\
             <ПрограммноАппаратныеКомплексы><ПрограммноАппаратныйКомплекс><Псевдоним>p</Псевдоним><КлассСредствЭП>КС1</КлассСредствЭП>\
             <КлючиУполномоченныхЛиц><Ключ><ИдентификаторКлюча>00</ИдентификаторКлюча>\
             <АдресаСписковОтзыва><Адрес>{crl}</Адрес></АдресаСписковОтзыва>\
             <Сертификаты><ДанныеСертификата><Отпечаток>00</Отпечаток><КемВыдан>x</КемВыдан><КомуВыдан>x</КомуВыдан>\
             <СерийныйНомер>01</СерийныйНомер><ПериодДействияС>2020-01-01T00:00:00+03:00</ПериодДействияС>\
             <ПериодДействияДо>2099-01-01T00:00:00+03:00</ПериодДействияДо><Данные>{}</Данные></ДанныеСертификата></Сертификаты>\
             </Ключ></КлючиУполномоченныхЛиц></ПрограммноАппаратныйКомплекс></ПрограммноАппаратныеКомплексы></УдостоверяющийЦентр>",
            b64.encode(der)
        ));
    }
    xml.push_str("</АккредитованныеУдостоверяющиеЦентры>");
    xml
}

#[tokio::test]
async fn the_ministrys_list_trusts_the_cas_in_force_and_names_their_crls() {
    use egisz_verifier::gost::{ListFetcher, load_trust};
    let crl = Arc::new(Mutex::new(Crl::Down));
    let crl_addr = serve(crl.clone()).await;
    let list = Arc::new(Mutex::new(String::new()));
    let served = list.clone();
    let app = Router::new().route(
        "/getxml",
        get(move || {
            let served = served.clone();
            async move {
                let body = served.lock().unwrap().clone();
                if body.is_empty() { StatusCode::SERVICE_UNAVAILABLE.into_response() } else { body.into_response() }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let list_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let now = Utc::now().timestamp();
    // Certificates that name no CRL address of their own: the list's address is asked.
    let head = TestCa::root(gost(), "listed-head", Strength::Gost256, "Головной УЦ");
    let in_force = head.subordinate("listed-in-force", "УЦ действующий");
    let terminated = head.subordinate("listed-terminated", "УЦ прекративший");
    let crl_url = format!("http://{crl_addr}/ca.crl");
    *list.lock().unwrap() = accredited_list(&[
        // The head CA's self-signed root, in force: not an anchor, or every CA it ever
        // certified — the terminated one too — would chain to it.
        ("Головной УЦ", "Действует", head.certificate_der(), crl_url.clone()),
        ("УЦ действующий", "Действует", in_force.certificate_der(), crl_url.clone()),
        ("УЦ прекративший", "Прекращена", terminated.certificate_der(), crl_url.clone()),
    ]);
    let revoked = in_force.issue_doctor("listed-revoked", SNILS, now - 30 * DAY, now + 30 * DAY);
    let good = in_force.issue_doctor("listed-good", SNILS, now - 30 * DAY, now + 30 * DAY);
    *crl.lock().unwrap() = Crl::Serve(in_force.crl(&[(revoked.certificate(), now - 60)], now - 30, now + DAY));

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("accredited-cas.xml");
    let fetcher = ListFetcher::new(format!("http://{list_addr}/getxml").parse().unwrap(), file.clone(), None).unwrap();
    assert_eq!(fetcher.fetch().await, Ok(2), "two certificates of CAs in force");
    let source = TrustSource { list_file: Some(file.clone()), ..TrustSource::default() };
    let loaded = load_trust(gost(), &source).unwrap();
    assert_eq!(loaded.store.anchors().len(), 1, "the self-signed root is not an anchor");
    assert!(loaded.skipped.iter().any(|s| s.contains("self-signed")), "{:?}", loaded.skipped);

    let v = GostVerifier::new(source.clone(), RevocationPolicy::Block, CrlSettings::default()).unwrap();
    let at = created(now);
    assert_eq!(judge(&v, &good.sign_detached(DOCUMENT), at).await, Ok(vec![]));
    assert_eq!(
        judge(&v, &revoked.sign_detached(DOCUMENT), at).await,
        Ok(vec!["PERSONAL_SIG_CERT_NOT_ACTUAL_ON_CHECK_DT"]),
        "the CRL named by the list"
    );
    // Signed under the terminated CA, its certificate (by the head CA) in the container.
    let of_terminated = terminated.issue_doctor("t", SNILS, now - DAY, now + DAY);
    assert_eq!(
        judge(&v, &of_terminated.sign_detached(DOCUMENT), at).await,
        Ok(vec!["CANT_BUILD_CERT_CHAIN_TO_ACCREDITED_CA_CERT"]),
        "a CA whose accreditation ended is not trusted"
    );

    // The portal down, or serving something that is not the list: the copy in force stays.
    list.lock().unwrap().clear();
    assert!(fetcher.fetch().await.is_err());
    *list.lock().unwrap() = "<html>maintenance</html>".into();
    assert!(fetcher.fetch().await.unwrap_err().contains("root element"));
    assert_eq!(v.reload_trust(), Ok(1), "the kept copy still reads");
    let _ = &head;
    assert!(!dir.path().join("accredited-cas.partial").exists() || std::fs::read(&file).is_ok());
}

#[tokio::test]
async fn an_older_crl_never_replaces_a_newer_one() {
    let p = pki().await;
    let revoked = p.doctor("rollback");
    // Due for its refresh (nextUpdate within the hour ahead) but current.
    *p.crl.lock().unwrap() = Crl::Serve(p.ca.crl(&[(revoked.certificate(), p.now - 600)], p.now - 60, p.now + 1800));
    let v = p.verifier(RevocationPolicy::Warn);
    let at = created(p.now);
    let cms = revoked.sign_detached(DOCUMENT);
    assert_eq!(judge(&v, &cms, at).await, Ok(vec!["PERSONAL_SIG_CERT_NOT_ACTUAL_ON_CHECK_DT"]));
    // A replayed older list, which does not name it yet.
    *p.crl.lock().unwrap() = Crl::Serve(p.ca.crl(&[], p.now - 3600, p.now + 1800));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(v.refresh_crls().await, 1, "the list was due and fetched");
    assert_eq!(judge(&v, &cms, at).await, Ok(vec!["PERSONAL_SIG_CERT_NOT_ACTUAL_ON_CHECK_DT"]), "the newer list kept");
}
