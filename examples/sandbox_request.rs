//! Builds the JSON body of `POST /api/v1/documents` for a CDA file, signed in GOST R
//! 34.10-2012 (CAdES-BES) by the sandbox's test CA in the name of each signer the document
//! names — so that a document can be sent
//! to a gateway running on the embedded default (whose REMD is the emulator).
//!
//! ```sh
//! cargo run --release --example sandbox_request -- ../shared/samples/tmk-protocol-40.xml
//! curl -H "Authorization: Bearer $(cat data/sandbox-api-key)" -H 'Content-Type: application/json' \
//!      --data @data/sandbox-request.json http://127.0.0.1:8080/api/v1/documents
//! ```
//!
//! With `--release` it reuses what `cargo run --release -- serve` built. Options: `--kind N`
//! (default 40), `--organization OID` (default: the document's custodian), `--out FILE`
//! (default `data/sandbox-request.json`; `-` for stdout), `--key 256|512` (the GOST key size,
//! with Streebog-256 or -512 digests; default 256), `--ber` (containers with indefinite
//! lengths, as streaming signers write them), `--crl-url URL` (the certificates name it as
//! their CRL distribution point: the sandbox REMD's `<address>/pki/sandbox-ca.crl`, where
//! `POST /_admin/pki/revoked {"serial": "<hex>"}` revokes one), `--signatures-dir DIR` (also write
//! each signature as `DIR/signature-<n>.p7s`, DER, for `egisz-gateway validate FILE
//! --signature DIR/signature-1.p7s`). Test signatures only: never for production documents.

use std::process::ExitCode;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{TimeZone, Utc};
use egisz_gost::test_pki::{Profile, SANDBOX_CA_SEED, Strength, TestCa};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut file = None;
    let mut kind = 40u32;
    let mut organization = None;
    let mut out = String::from("data/sandbox-request.json");
    let mut strength = Strength::Gost256;
    let mut crl_url = None;
    let mut ber = false;
    let mut signatures_dir = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--key" => {
                strength = match args.next().as_deref() {
                    Some("256") => Strength::Gost256,
                    Some("512") => Strength::Gost512,
                    other => {
                        eprintln!("--key: 256 or 512, not {other:?}");
                        return ExitCode::from(2);
                    }
                }
            }
            "--ber" => ber = true,
            "--crl-url" => crl_url = args.next(),
            "--signatures-dir" => signatures_dir = args.next(),
            "--kind" => kind = args.next().and_then(|k| k.parse().ok()).unwrap_or(kind),
            "--organization" => organization = args.next(),
            "--out" => out = args.next().unwrap_or(out),
            "-h" | "--help" => {
                eprintln!("usage: sandbox_request [--kind N] [--organization OID] [--out FILE|-] FILE.xml");
                return ExitCode::SUCCESS;
            }
            _ => file = Some(a),
        }
    }
    let Some(file) = file else {
        eprintln!("usage: sandbox_request [--kind N] [--organization OID] [--out FILE|-] FILE.xml");
        return ExitCode::from(2);
    };
    let bytes = match std::fs::read(&file) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("cannot read {file}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let header = match egisz_semd::CdaHeader::parse(&bytes) {
        Ok(h) => h,
        Err(problems) => {
            for p in problems {
                eprintln!("{p}");
            }
            return ExitCode::FAILURE;
        }
    };
    let organization = organization
        .or_else(|| {
            header
                .custodians
                .first()
                .and_then(|c| c.organization.as_ref())
                .and_then(|o| o.id.as_ref())
                .and_then(|i| i.root.clone())
        })
        .unwrap_or_default();
    let parts = match egisz_semd::register_request_parts(&header, chrono::FixedOffset::east_opt(7 * 3600).unwrap()) {
        Ok(p) => p,
        Err(problems) => {
            for p in problems {
                eprintln!("{p}");
            }
            return ExitCode::FAILURE;
        }
    };
    let gost = match egisz_gost::Gost::load() {
        Ok(g) => g,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let ca = TestCa::new(gost, SANDBOX_CA_SEED);
    let ca = match crl_url {
        Some(url) => ca.with_crl_url(url),
        None => ca,
    };
    let mut containers = Vec::new();
    let signatures: Vec<serde_json::Value> = parts
        .signers
        .iter()
        .map(|s| {
            let at = |y| Utc.with_ymd_and_hms(y, 1, 1, 0, 0, 0).unwrap().timestamp();
            let profile =
                Profile::doctor(&format!("sandbox-{}", s.snils.as_str()), s.snils.as_str(), at(2010), at(2040))
                    .strength(strength);
            let cms = ca.issue(&profile).sign_cades_bes(&bytes);
            let cms = if ber { egisz_semd::ber::with_indefinite_lengths(&cms) } else { cms };
            let json = serde_json::json!({"role": "1", "role_version": "2.4", "data": B64.encode(&cms)});
            containers.push(cms);
            json
        })
        .collect();
    let signed = signatures.len();
    if let Some(dir) = &signatures_dir {
        if let Err(e) = std::fs::create_dir_all(dir) {
            eprintln!("cannot create {dir}: {e}");
            return ExitCode::FAILURE;
        }
        for (i, cms) in containers.iter().enumerate() {
            let path = std::path::Path::new(dir).join(format!("signature-{}.p7s", i + 1));
            if let Err(e) = std::fs::write(&path, cms) {
                eprintln!("cannot write {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
            eprintln!("wrote {}", path.display());
        }
    }
    let body = serde_json::json!({
        "kind": kind,
        "organization": organization,
        "document": B64.encode(&bytes),
        "signatures": signatures,
    });
    if out == "-" {
        println!("{body}");
        return ExitCode::SUCCESS;
    }
    let path = std::path::Path::new(&out);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Err(e) = std::fs::create_dir_all(dir)
    {
        eprintln!("cannot create {}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    match std::fs::write(path, body.to_string()) {
        Ok(()) => {
            eprintln!("wrote {} ({} signature(s), organization {organization}, kind {kind})", path.display(), signed);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cannot write {}: {e}", path.display());
            ExitCode::FAILURE
        }
    }
}
