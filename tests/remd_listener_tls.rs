//! Mutual TLS on the REMD listener (where TLS ends in the gateway): only a client
//! certificate of the configured CA, of an admitted subject, reaches HTTP; a caller without
//! one, or with one of another CA, fails the handshake; an admitted CA's certificate of
//! another subject gets 403. Every refusal is counted.

mod common;

use std::time::Duration;

use common::{Db, TestEnv};
use egisz_gateway::config::ListenerTls;
use rcgen::{BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};

struct Ca {
    cert: Certificate,
    key: KeyPair,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    Ca { cert: params.self_signed(&key).unwrap(), key }
}

/// A leaf of `ca`: (certificate PEM, key PEM).
fn leaf(
    ca: &Ca,
    common_name: &str,
    organization: &str,
    names: &[&str],
    usage: ExtendedKeyUsagePurpose,
) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, common_name);
    params.distinguished_name.push(DnType::OrganizationName, organization);
    params.extended_key_usages = vec![usage];
    let cert = params.signed_by(&key, &ca.cert, &ca.key).unwrap();
    (cert.pem(), key.serialize_pem())
}

async fn metric(env: &TestEnv, series: &str) -> f64 {
    let text = env.http.get(env.url("/metrics")).send().await.unwrap().text().await.unwrap();
    text.lines().find_map(|l| l.strip_prefix(series).and_then(|rest| rest.trim().parse().ok())).unwrap_or(0.0)
}

#[tokio::test]
async fn only_an_admitted_client_certificate_reaches_the_listener() {
    let dir = tempfile::tempdir().unwrap();
    let trusted = ca("Test REMD CA");
    let stranger = ca("Another CA");
    let (server_cert, server_key) =
        leaf(&trusted, "gateway.test", "Test", &["localhost", "127.0.0.1"], ExtendedKeyUsagePurpose::ServerAuth);
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let tls = ListenerTls {
        cert: write("server.pem", &server_cert),
        key: write("server.key", &server_key),
        client_ca: write("ca.pem", &trusted.cert.pem()),
        // As `openssl x509 -noout -subject -nameopt RFC2253` prints this certificate's
        // subject, with a space after the comma as an operator might type it.
        allowed_subjects: vec!["O=Test, CN=remd.test".into()],
    };
    let env = TestEnv::start_with(Db::Sqlite, |c, _| c.remd_listener.tls = Some(tls.clone())).await;
    let url = env.gw.remd_listener_url().replace("http://", "https://");
    let client = |identity: Option<(String, String)>| {
        let mut b = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(trusted.cert.pem().as_bytes()).unwrap())
            .timeout(Duration::from_secs(5));
        if let Some((cert, key)) = identity {
            b = b.identity(reqwest::Identity::from_pem(format!("{cert}{key}").as_bytes()).unwrap());
        }
        b.build().unwrap()
    };
    let post = |c: reqwest::Client, url: String| async move {
        c.post(url).header("content-type", "application/soap+xml").body("<not-soap/>").send().await
    };

    // REMD's certificate: HTTP is reached (and the garbage call gets its SOAP fault).
    let remd = leaf(&trusted, "remd.test", "Test", &[], ExtendedKeyUsagePurpose::ClientAuth);
    let res = post(client(Some(remd)), url.clone()).await.expect("the handshake succeeds");
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("Fault"));
    let refused = "egisz_remd_listener_refused_connections_total";
    assert_eq!(metric(&env, refused).await, 0.0);

    // No certificate; a certificate of another CA: no handshake.
    assert!(post(client(None), url.clone()).await.is_err(), "no client certificate");
    let foreign = leaf(&stranger, "remd.test", "Test", &[], ExtendedKeyUsagePurpose::ClientAuth);
    assert!(post(client(Some(foreign)), url.clone()).await.is_err(), "a certificate of another CA");

    // The right CA, another subject: 403 with a fault.
    let intruder = leaf(&trusted, "intruder.test", "Test", &[], ExtendedKeyUsagePurpose::ClientAuth);
    let res = post(client(Some(intruder)), url.clone()).await.expect("the handshake succeeds");
    assert_eq!(res.status(), 403);
    assert!(res.text().await.unwrap().contains("Fault"));
    assert_eq!(metric(&env, refused).await, 3.0);

    // Plain HTTP to a TLS listener reaches nothing either.
    let plain = env.gw.remd_listener_url();
    let res = env.http.post(plain).body("<not-soap/>").send().await;
    assert!(res.is_err() || res.unwrap().status() != 200);
    env.shutdown().await;
}

#[test]
fn tls_settings_are_checked_with_the_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let env = [
        ("EGISZ__REMD_LISTENER__TLS_CERT".to_owned(), missing.display().to_string()),
        ("EGISZ__REMD_LISTENER__TLS_KEY".to_owned(), missing.display().to_string()),
    ];
    let problems = egisz_gateway::config::Config::load(None, &env).unwrap_err().to_string();
    assert!(problems.contains("all three or none"), "{problems}");
    let env = [
        ("EGISZ__REMD_LISTENER__TLS_CERT".to_owned(), missing.display().to_string()),
        ("EGISZ__REMD_LISTENER__TLS_KEY".to_owned(), missing.display().to_string()),
        ("EGISZ__REMD_LISTENER__TLS_CLIENT_CA".to_owned(), missing.display().to_string()),
        ("EGISZ__REMD_LISTENER__TLS_ALLOWED_SUBJECTS".to_owned(), "[\"no equals sign\"]".to_owned()),
    ];
    let problems = egisz_gateway::config::Config::load(None, &env).unwrap_err().to_string();
    assert!(problems.contains("missing.pem"), "{problems}");
    assert!(problems.contains("RFC 4514"), "{problems}");
}
