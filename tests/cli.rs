//! The command line: configuration checks and client management, on a fresh SQLite file.

use std::process::Command;

fn gateway(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_egisz-gateway"));
    cmd.current_dir(dir)
        .env_remove("RUST_LOG")
        .env("EGISZ__DATABASE__URL", format!("sqlite://{}/cli.db", dir.display()))
        .env("EGISZ__VALIDATION__PACKAGES_DIR", concat!(env!("CARGO_MANIFEST_DIR"), "/packages"))
        .env("EGISZ__LOG__LEVEL", "warn");
    cmd
}

#[test]
fn check_config_reports_every_problem_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let ok = gateway(dir.path()).arg("check-config").output().unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let shown = String::from_utf8_lossy(&ok.stdout);
    assert!(shown.contains("configuration OK"));
    // Every service's settings, in words rather than the program's own debug forms.
    for key in ["remd.mode", "remd.rate_per_second", "remd_listener.allow_from", "frmr.mode", "ops.bulk_retry_max"] {
        assert!(shown.contains(key), "{key} missing from:\n{shown}");
    }
    for debug_form in ["Sandbox", "Remote", "Human", "Json", "Some("] {
        assert!(!shown.contains(debug_form), "{debug_form} in:\n{shown}");
    }

    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[api]\nlisten = \"everywhere\"\n[frmr]\nmode = \"remote\"\ntimout_ms = 5\n").unwrap();
    let bad = gateway(dir.path())
        .args(["check-config", "--config"])
        .arg(&file)
        .env("EGISZ__FRMR__RATE_PER_SECOND", "-1")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    for key in ["api.listen", "frmr.timout_ms", "frmr.rate_per_second", "frmr.base_url", "frmr.token"] {
        assert!(err.contains(key), "{key} missing from:\n{err}");
    }
    assert!(err.contains("EGISZ__FRMR__RATE_PER_SECOND"), "says where a value came from:\n{err}");

    let missing_ca = gateway(dir.path())
        .arg("check-config")
        .env("EGISZ__FRMR__EXTRA_CA_BUNDLE", "/nonexistent/ca.pem")
        .output()
        .unwrap();
    assert_eq!(missing_ca.status.code(), Some(2));
    let not_pem = dir.path().join("ca.pem");
    std::fs::write(&not_pem, "not a certificate").unwrap();
    let bad_ca =
        gateway(dir.path()).arg("check-config").env("EGISZ__FRMR__EXTRA_CA_BUNDLE", &not_pem).output().unwrap();
    assert_eq!(
        bad_ca.status.code(),
        Some(2),
        "the FRMR client's own checks run too: {}",
        String::from_utf8_lossy(&bad_ca.stderr)
    );
    let both = gateway(dir.path())
        .arg("check-config")
        .env("EGISZ__FRMR__EXTRA_CA_BUNDLE", &not_pem)
        .env("EGISZ__REMD__EXTRA_CA_BUNDLE", &not_pem)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&both.stderr);
    assert!(err.contains("2 configuration problem(s)") && err.contains("remd"), "the REMD client's checks too:\n{err}");
}

#[test]
fn clients_add_list_revoke() {
    let dir = tempfile::tempdir().unwrap();
    let migrate = gateway(dir.path()).arg("migrate").output().unwrap();
    assert!(migrate.status.success(), "{}", String::from_utf8_lossy(&migrate.stderr));

    let add = gateway(dir.path())
        .args([
            "clients",
            "add",
            "--name",
            "ТМК портал",
            "--role",
            "verifier,reader",
            "--org",
            "1.2.643.5.1.13.13.12.2.42.2917",
        ])
        .output()
        .unwrap();
    assert!(add.status.success(), "{}", String::from_utf8_lossy(&add.stderr));
    let key = String::from_utf8(add.stdout).unwrap().trim().to_owned();
    assert!(key.starts_with("egk_") && key.len() == 4 + 16 + 1 + 64, "{key}");
    let key_id = &key[4..20];

    let list = gateway(dir.path()).args(["clients", "list", "--json"]).output().unwrap();
    let out = String::from_utf8(list.stdout).unwrap();
    let row: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(row["name"], "ТМК портал");
    assert_eq!(row["roles"], serde_json::json!(["verifier", "reader"]));
    assert_eq!(row["status"], "active");
    assert!(!out.contains(&key[21..]), "the secret is never listed");

    let revoke = gateway(dir.path()).args(["clients", "revoke", key_id]).output().unwrap();
    assert!(revoke.status.success());
    let list = gateway(dir.path()).args(["clients", "list", "--json"]).output().unwrap();
    assert!(String::from_utf8(list.stdout).unwrap().contains("\"revoked\""));
    let again = gateway(dir.path()).args(["clients", "revoke", key_id]).output().unwrap();
    assert!(!again.status.success(), "revoking twice says so");

    for bad in [
        vec!["clients", "add", "--name", "x", "--role", "admin", "--all-orgs"],
        vec!["clients", "add", "--name", "x", "--role", "ops", "--org", "1.2.3"],
        vec!["clients", "add", "--name", "x", "--role", "ops"],
    ] {
        let out = gateway(dir.path()).args(&bad).output().unwrap();
        assert!(!out.status.success(), "{bad:?} must fail");
        assert!(!String::from_utf8_lossy(&out.stderr).is_empty());
    }
}

#[test]
fn broken_mappings_stop_check_config_and_the_start_with_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let mappings = dir.path().join("mappings");
    std::fs::create_dir(&mappings).unwrap();
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/mappings");
    for f in ["remd-message-codes.tsv", "document-kinds.tsv"] {
        std::fs::copy(format!("{shipped}/{f}"), mappings.join(f)).unwrap();
    }
    let profiles = std::fs::read_to_string(format!("{shipped}/kind-profiles.toml")).unwrap();
    std::fs::write(
        mappings.join("kind-profiles.toml"),
        profiles.replacen("org_signature = \"optional\"", "org_signature = \"sometimes\"", 1),
    )
    .unwrap();
    let check = gateway(dir.path()).arg("check-config").env("EGISZ__MAPPINGS__DIR", &mappings).output().unwrap();
    assert_eq!(check.status.code(), Some(2));
    let err = String::from_utf8_lossy(&check.stderr);
    assert!(err.contains("kind-profiles.toml:14"), "the file and line:\n{err}");
    let serve = gateway(dir.path())
        .arg("serve")
        .env("EGISZ__MAPPINGS__DIR", &mappings)
        .env("EGISZ__API__LISTEN", "127.0.0.1:0")
        .env("EGISZ__REMD_LISTENER__LISTEN", "127.0.0.1:0")
        .env("EGISZ__SANDBOX__API_KEY_FILE", dir.path().join("key"))
        .output()
        .unwrap();
    assert!(!serve.status.success());
    assert!(
        String::from_utf8_lossy(&serve.stderr).contains("kind-profiles.toml"),
        "{}",
        String::from_utf8_lossy(&serve.stderr)
    );
}

/// No sandbox beside a real service: each configuration that mixes them is refused by
/// `check-config` and by `serve`, naming every sandbox setting, before anything starts.
#[test]
fn a_sandbox_beside_a_real_service_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let remote_frmr = [
        ("EGISZ__FRMR__MODE", "remote"),
        ("EGISZ__FRMR__BASE_URL", "https://frmr.example/"),
        ("EGISZ__FRMR__TOKEN", "static:abc"),
    ];
    let remote_remd = [
        ("EGISZ__REMD__MODE", "remote"),
        ("EGISZ__REMD__ENDPOINT", "http://127.0.0.1:9444/port/emdr"),
        ("EGISZ__REMD__CLIENT_ENTITY_ID", "0f0e0d0c-0b0a-4909-8807-060504030201"),
    ];
    let remote_nsi = [("EGISZ__NSI__MODE", "remote"), ("EGISZ__NSI__BASE_URL", "https://nsi.example/api/")];
    // (what is remote, the sandbox settings left that must be named)
    type Settings<'a> = Vec<(&'a str, &'a str)>;
    let cases: Vec<(Settings, Vec<&str>)> = vec![
        // The forgotten [frmr]: REMD real, FRMR (and the rest) left on the default.
        (remote_remd.to_vec(), vec!["frmr.mode", "nsi.mode", "validation.verifier"]),
        (
            [&remote_remd[..], &[("EGISZ__NSI__MODE", "off"), ("EGISZ__VALIDATION__VERIFIER", "none")]].concat(),
            vec!["frmr.mode"],
        ),
        (remote_frmr.to_vec(), vec!["remd.mode", "nsi.mode", "validation.verifier"]),
        (remote_nsi.to_vec(), vec!["frmr.mode", "remd.mode", "validation.verifier"]),
        ([&remote_frmr[..], &remote_remd[..], &[("EGISZ__VALIDATION__VERIFIER", "none")]].concat(), vec!["nsi.mode"]),
    ];
    for (env, named) in cases {
        for command in ["check-config", "serve"] {
            let mut cmd = gateway(dir.path());
            cmd.arg(command)
                .env("EGISZ__API__LISTEN", "127.0.0.1:0")
                .env("EGISZ__REMD_LISTENER__LISTEN", "127.0.0.1:0");
            for (k, v) in &env {
                cmd.env(k, v);
            }
            let out = cmd.output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{command} with {env:?}:\n{err}");
            assert!(err.contains(&format!("{} configuration problem(s)", named.len())), "{command} {env:?}:\n{err}");
            for key in &named {
                assert!(err.contains(key), "{command} with {env:?} does not name {key}:\n{err}");
            }
            assert!(err.contains("sandbox piece beside a real service"), "{err}");
        }
    }
    assert!(!dir.path().join("data/sandbox-api-key").exists(), "no demo key written by a refused start");
    assert!(!dir.path().join("cli.db").exists(), "a refused start opens no database");

    // Every service real (or off): accepted.
    let mut cmd = gateway(dir.path());
    cmd.arg("check-config").env("EGISZ__NSI__MODE", "off").env("EGISZ__VALIDATION__VERIFIER", "none");
    for (k, v) in remote_frmr.iter().chain(&remote_remd) {
        cmd.env(k, v);
    }
    let ok = cmd.output().unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
}
