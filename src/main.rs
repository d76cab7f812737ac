//! The `egisz-gateway` command.

#![forbid(unsafe_code)]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use egisz_contract::Oid;
use egisz_gateway::auth::{self, Role, Scope};
use egisz_gateway::config::{Config, redact_url};
use egisz_gateway::nsi::frmo;
use egisz_gateway::{app, store, telemetry};

/// Regional gateway to the federal EGISZ services: FRMR staff verification and REMD
/// document registration.
#[derive(Debug, Parser)]
#[command(name = "egisz-gateway", version, about)]
struct Cli {
    /// Configuration file layered over the embedded default (config/default.toml).
    /// Environment variables EGISZ__<SECTION>__<KEY> override both.
    #[arg(long, global = true, value_name = "FILE", env = "EGISZ_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway (API listener, background tasks; sandbox emulators in sandbox mode).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Check the configuration and report every problem at once; exit code 2 on problems.
    CheckConfig,
    /// Manage API clients.
    #[command(subcommand)]
    Clients(ClientsCommand),
    /// Dictionaries from NSI (`nsi.mode`).
    #[command(subcommand)]
    Nsi(NsiCommand),
    /// Check a signed document as intake would, without sending it: the kind's rule package
    /// (the ministry's XSD and schematron), the header rules, the kind's profile, the
    /// dictionaries, the signatures (and, with --frmr, the signers against the configured
    /// FRMR). Exit code 0: valid; 1: invalid; 2: usage or unreadable input.
    Validate(ValidateArgs),
}

#[derive(Debug, Subcommand)]
enum NsiCommand {
    /// Refresh every dictionary now (the same pass the schedule runs) and print what
    /// happened to each; exit code 1 when one failed (the previous copy stays in force).
    Refresh {
        /// JSON lines instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The NSI versions stored and in force.
    Status,
}

#[derive(Debug, Args)]
struct ValidateArgs {
    /// The CDA document (XML), exactly the bytes that were signed.
    file: PathBuf,
    /// The NSI 1520 kind (40: TMK protocol).
    #[arg(long)]
    kind: u32,
    /// A personal signature: detached CMS, DER/BER, base64 or PEM. Repeat for each.
    #[arg(long = "signature", value_name = "FILE")]
    signatures: Vec<PathBuf>,
    /// The role of each --signature, in the same order: CODE or CODE@VERSION of NSI
    /// 1.2.643.5.1.13.13.99.2.368 (default 1@2.4 for every one not given).
    #[arg(long = "role", value_name = "CODE[@VERSION]")]
    roles: Vec<String>,
    /// The organisation's signature (detached CMS), when the kind carries one.
    #[arg(long, value_name = "FILE")]
    org_signature: Option<PathBuf>,
    /// The submitting organisation's OID (default: the custodian named in the document).
    #[arg(long, value_name = "OID")]
    organization: Option<String>,
    /// Check every author and the legal authenticator against the configured FRMR too.
    #[arg(long)]
    frmr: bool,
    /// Verify the signatures in GOST against the CA certificates (PEM or DER) in DIR,
    /// offline as far as the CRLs allow, instead of the configured verifier.
    #[arg(long, value_name = "DIR")]
    trust: Option<PathBuf>,
    /// `text` (Russian, for people) or `json` (for pipelines).
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    format: String,
}

#[derive(Debug, Subcommand)]
enum ClientsCommand {
    /// Create a client and print its API key (shown once, stored only as a hash).
    Add(AddClient),
    /// List clients (never their keys).
    List {
        /// JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a client by id or key id; its key stops working within api.key_cache_for.
    Revoke {
        /// The client id (UUID) or key id (16 hex digits) from `clients list`.
        id: String,
    },
}

#[derive(Debug, Args)]
struct AddClient {
    /// A name that tells people which system uses the key, e.g. "МИС ГКБ №3".
    #[arg(long)]
    name: String,
    /// Role(s): submitter, verifier, ops, reader. Repeat or separate with commas.
    #[arg(long = "role", required = true, value_delimiter = ',')]
    roles: Vec<String>,
    /// Organisation OID(s) the client may act for. Repeat or separate with commas.
    #[arg(long = "org", value_delimiter = ',', conflicts_with = "all_orgs", required_unless_present = "all_orgs")]
    orgs: Vec<String>,
    /// The client may act for every organisation (regional systems, ops).
    #[arg(long)]
    all_orgs: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::from_env_and_file(cli.config.as_deref()) {
        Ok(c) => c,
        Err(errors) => {
            eprint!("{errors}");
            return ExitCode::from(2);
        }
    };
    let command = match cli.command {
        Command::Validate(args) => return validate(args, &config),
        other => other,
    };
    if let Command::CheckConfig = command {
        let mappings =
            egisz_gateway::mappings::Mappings::load(config.mappings.dir.as_deref()).map(|_| ()).map_err(|problems| {
                let list: Vec<String> = problems.iter().map(|p| format!("    {p}")).collect();
                anyhow::anyhow!("the mappings do not load:\n{}", list.join("\n"))
            });
        let verifier = app::verification_for(&config.validation.verifier).map(|_| ());
        // Every rule package is compiled now: a broken one is a problem to fix before start
        // (a running gateway would keep the previous one, or check nothing, for its kind).
        let mut packages = Vec::new();
        let catalog = match &config.validation.packages {
            None => Ok(()),
            Some(settings) => match egisz_packages::Catalog::open(app::packages_settings(&config, settings)) {
                Ok(catalog) => {
                    let broken = catalog.load_all();
                    packages = catalog.status();
                    match broken.is_empty() {
                        true => Ok(()),
                        false => Err(anyhow::anyhow!(
                            "validation.packages_dir: {}",
                            broken.iter().map(|(k, why)| format!("kind {k}: {why}")).collect::<Vec<_>>().join("; ")
                        )),
                    }
                }
                Err(e) => Err(anyhow::anyhow!("validation.packages_dir: {e}")),
            },
        };
        let problems: Vec<String> =
            [app::check_frmr_client(&config), app::check_remd_client(&config), mappings, verifier, catalog]
                .into_iter()
                .filter_map(|r| r.err().map(|e| format!("{e:#}")))
                .collect();
        if !problems.is_empty() {
            eprintln!("{} configuration problem(s):", problems.len());
            for p in problems {
                eprintln!("  - {p}");
            }
            return ExitCode::from(2);
        }
        print_config(&config, &packages);
        return ExitCode::SUCCESS;
    }
    telemetry::init(&config.log);
    telemetry::log_panics();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(command, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve => serve(config).await,
        Command::Migrate => {
            let store = store::connect(&config.database).await?;
            store.readiness().await?;
            println!("migrations applied ({})", store.backend().label());
            Ok(())
        }
        Command::CheckConfig => Ok(()),
        Command::Clients(c) => clients(c, config).await,
        Command::Validate(_) => Ok(()),
        Command::Nsi(c) => nsi(c, config).await,
    }
}

async fn nsi(command: NsiCommand, config: Config) -> anyhow::Result<()> {
    use egisz_gateway::nsi::Refreshed;
    let store = store::connect(&config.database).await?;
    let mappings = egisz_gateway::mappings::Mappings::load(config.mappings.dir.as_deref())
        .map_err(|p| anyhow::anyhow!("the mappings do not load: {} problem(s)", p.len()))?;
    match command {
        NsiCommand::Status => {
            let stored = store.nsi_latest().await?;
            if stored.is_empty() {
                println!("из НСИ ничего не загружено: действуют справочники из mappings/");
            }
            for c in stored {
                println!("{}  версия {}  строк {}  загружена {}", c.oid, c.version, c.rows.len(), c.fetched_at);
            }
            let copies = store.frmo_copies().await?;
            if copies.is_empty() {
                println!("копии ФРМО нет: организации при приёме не сверяются (предупреждение)");
            }
            for c in copies {
                match c.complete_at {
                    Some(at) => {
                        println!("{} (ФРМО)  версия {}  строк {}  загружена {at}", c.dictionary, c.version, c.rows)
                    }
                    None => println!("{} (ФРМО)  версия {}  загружается с {}", c.dictionary, c.version, c.started_at),
                }
            }
            Ok(())
        }
        NsiCommand::Refresh { json } => {
            let live =
                std::sync::Arc::new(egisz_gateway::mappings::LiveDictionaries::new(mappings.dictionaries().clone()));
            let frmo = std::sync::Arc::new(egisz_gateway::nsi::frmo::Frmo::new());
            let (service, sandbox) = app::nsi_for(&config, &store, &live, &mappings, &frmo).await?;
            let Some(service) = service else { anyhow::bail!("nsi.mode = \"off\": nothing to refresh from") };
            let results = service.refresh(egisz_gateway::now()).await;
            for r in &results {
                if json {
                    println!("{}", serde_json::to_string(r)?);
                    continue;
                }
                match r {
                    Refreshed::Updated { oid, version, rows } => {
                        println!("{oid}: загружена версия {version} ({rows} строк)")
                    }
                    Refreshed::Unchanged { oid, version } => println!("{oid}: версия {version} уже загружена"),
                    Refreshed::NoVersions { oid } => println!("{oid}: НСИ не знает версий этого справочника"),
                    Refreshed::Shipped { oid, listed, shipped } => {
                        println!(
                            "{oid}: НСИ даёт версию {listed}, шлюз поставляется с {shipped}; остаётся поставленная"
                        )
                    }
                    Refreshed::Older { oid, listed, stored } => {
                        println!(
                            "{oid}: НСИ предлагает версию {listed}, старше загруженной {stored}; действует {stored}"
                        )
                    }
                    Refreshed::Failed { oid, reason } => {
                        println!("{oid}: не обновлён — {reason}; действует прежняя копия")
                    }
                }
            }
            if let Some(s) = sandbox {
                s.stop().await;
            }
            if results.iter().any(Refreshed::failed) {
                anyhow::bail!("not every dictionary was refreshed");
            }
            Ok(())
        }
    }
}

/// A signature file's bytes: PEM and base64 text decoded, DER/BER as they are.
fn signature_bytes(bytes: Vec<u8>) -> Vec<u8> {
    use base64::Engine;
    if bytes.first() == Some(&0x30) {
        return bytes;
    }
    let der = app::pem_or_der(&bytes);
    if der.first() == Some(&0x30) {
        return der;
    }
    let text: String = String::from_utf8_lossy(&bytes).split_whitespace().collect();
    base64::engine::general_purpose::STANDARD.decode(text).unwrap_or(bytes)
}

/// `validate`: exit 0 valid, 1 invalid, 2 usage.
fn validate(args: ValidateArgs, config: &Config) -> ExitCode {
    use egisz_gateway::validation::{self, DocumentInput, PersonalInput, policy, report};
    let usage = |message: String| {
        eprintln!("ошибка: {message}");
        ExitCode::from(2)
    };
    let read =
        |path: &PathBuf| std::fs::read(path).map_err(|e| format!("не удалось прочитать {}: {e}", path.display()));
    let mappings = match egisz_gateway::mappings::Mappings::load(config.mappings.dir.as_deref()) {
        Ok(m) => m,
        Err(problems) => {
            let list: Vec<String> = problems.iter().map(|p| format!("  - {p}")).collect();
            return usage(format!("справочники mappings/ не загружаются:\n{}", list.join("\n")));
        }
    };
    let Some(kind) = mappings.kind(args.kind).cloned() else {
        return usage(format!("вида документа {} нет в справочнике НСИ 1.2.643.5.1.13.13.11.1520", args.kind));
    };
    if args.roles.len() > args.signatures.len() {
        return usage("ролей (--role) больше, чем подписей (--signature)".into());
    }
    let content = match read(&args.file) {
        Ok(c) => c,
        Err(e) => return usage(e),
    };
    let mut signatures = Vec::new();
    for path in &args.signatures {
        match read(path) {
            Ok(b) => signatures.push(signature_bytes(b)),
            Err(e) => return usage(e),
        }
    }
    let org_signature = match args.org_signature.as_ref().map(read).transpose() {
        Ok(o) => o.map(signature_bytes),
        Err(e) => return usage(e),
    };
    let roles: Vec<(String, String)> = (0..signatures.len())
        .map(|i| match args.roles.get(i).map(|r| r.split_once('@').unwrap_or((r, "2.4"))) {
            Some((code, version)) => (code.to_owned(), version.to_owned()),
            None => ("1".to_owned(), "2.4".to_owned()),
        })
        .collect();
    let organization = match &args.organization {
        Some(raw) => match Oid::parse_organization(raw) {
            Ok(o) => o,
            Err(e) => return usage(format!("--organization: {e}")),
        },
        None => {
            let custodian = egisz_semd::CdaHeader::parse(&content).ok().and_then(|h| {
                h.custodians
                    .first()?
                    .organization
                    .as_ref()?
                    .id
                    .as_ref()?
                    .root
                    .as_deref()
                    .and_then(|r| Oid::parse(r).ok())
            });
            match custodian {
                Some(o) => o,
                None => {
                    return usage(
                        "в документе нет OID организации-хранителя (custodian); укажите --organization".into(),
                    );
                }
            }
        }
    };
    let input = DocumentInput {
        kind: &kind,
        organization: &organization,
        department: None,
        content: &content,
        signatures: signatures
            .iter()
            .zip(&roles)
            .map(|(cms, (role, version))| Some(PersonalInput { role, role_version: version, cms }))
            .collect(),
        org_signature: org_signature.as_deref().map(Some),
    };
    let now = chrono::Utc::now().with_timezone(&config.region.utc_offset);
    let checked = validation::check_document(&input, mappings.dictionaries(), now, config.region.utc_offset);
    let mut checks = vec![
        "заголовок CDA (H1–H12)".to_owned(),
        format!("профиль вида {} (K1–K4)", kind.kind),
        "справочники (H13)".to_owned(),
        "подписи: формат, алгоритмы, хеш документа, сроки сертификатов".to_owned(),
    ];
    // REMD's order: the bounded parse, the kind's rule package, then the rules above.
    let mut package = None;
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    if checked.parsed
        && let Some(settings) = &config.validation.packages
    {
        let catalog = match egisz_packages::Catalog::open(app::packages_settings(config, settings)) {
            Ok(c) => c,
            Err(e) => return usage(format!("validation.packages_dir: {e}")),
        };
        let (found, id) = validation::services::check_package(Some(&catalog), &config.validation, kind.kind, &content);
        if let Some(id) = &id {
            checks.insert(
                0,
                format!(
                    "пакет правил министерства для вида {} (XSD{})",
                    kind.kind,
                    if id.schematron { " и схематрон" } else { "" }
                ),
            );
        }
        errors.extend(found.errors);
        warnings.extend(found.warnings);
        package = id.map(Into::into);
    }
    errors.extend(checked.violations);
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return usage(format!("не удалось запустить среду выполнения: {e}")),
    };
    let mut certificates = Vec::new();
    if let Some(prepared) = &checked.prepared {
        certificates = prepared
            .signatures
            .iter()
            .map(|(path, s)| report::certificate_of(path, s, prepared.parts.creation_date_time))
            .collect();
        let choice = match &args.trust {
            None => config.validation.verifier.clone(),
            Some(dir) => {
                let mut settings = match &config.validation.verifier {
                    egisz_gateway::validation::settings::VerifierChoice::Gost(g) => g.clone(),
                    _ => match Config::load(None, &[]).map(|c| c.validation.verifier) {
                        Ok(egisz_gateway::validation::settings::VerifierChoice::Gost(g)) => g,
                        _ => return usage("встроенные настройки проверки ГОСТ не читаются".into()),
                    },
                };
                settings.trust = egisz_gateway::validation::settings::GostTrust::directory(dir.clone());
                egisz_gateway::validation::settings::VerifierChoice::Gost(settings)
            }
        };
        let verification = match app::verification_for(&choice) {
            Ok(v) => v,
            Err(e) => return usage(format!("{e:#}")),
        };
        let mut sorted = policy::Sorted::default();
        if let Some(answer) =
            runtime.block_on(verification.check(&prepared.signatures, &content, prepared.parts.creation_date_time))
        {
            checks.push(match &args.trust {
                Some(dir) => format!(
                    "значение подписи, цепочка до УЦ из {} и отзыв сертификатов (ГОСТ Р 34.10-2012)",
                    dir.display()
                ),
                None => "значение подписи и цепочка сертификатов (validation.verifier)".into(),
            });
            policy::apply(policy::Policy::Block, answer, &mut sorted);
        }
        let frmo = config.validation.frmo.for_kind(kind.kind);
        if frmo != policy::Policy::Off {
            checks.push("организации и подразделения по копии ФРМО из базы (validation.frmo)".into());
            let index = match runtime.block_on(app::frmo_for_command(config)) {
                Ok(index) => index,
                Err(e) => return usage(format!("{e:#}")),
            };
            let answer = validation::organizations::check(
                index.as_deref(),
                &prepared.organizations,
                prepared.parts.creation_date_time.date_naive(),
                egisz_gateway::now(),
                config.validation.frmo_max_age,
            );
            policy::apply(frmo, answer, &mut sorted);
        }
        if args.frmr {
            checks.push("подписанты по ФРМР (--frmr)".into());
            let date = prepared.parts.creation_date_time.date_naive();
            let answer = runtime.block_on(async {
                let (frmr, _sandbox) = app::frmr_for_command(config).await?;
                let mut answers = Vec::new();
                for s in &prepared.signers {
                    answers.push(frmr.person_full(&organization, &s.snils).await.map_err(|f| f.reason().to_string()));
                }
                Ok::<_, anyhow::Error>(validation::services::judge_signers(
                    &prepared.signers,
                    &organization,
                    date,
                    answers,
                ))
            });
            match answer {
                Ok(a) => policy::apply(policy::Policy::Block, a, &mut sorted),
                Err(e) => return usage(format!("{e:#}")),
            }
        }
        errors.extend(sorted.errors);
        warnings.extend(sorted.warnings);
    }
    let r = report::Report {
        valid: errors.is_empty(),
        file: args.file.display().to_string(),
        kind: kind.kind,
        kind_name: kind.name.clone(),
        organization: organization.to_string(),
        package,
        findings: errors,
        warnings,
        checks,
        certificates,
    };
    print!("{}", if args.format == "json" { report::json(&r) + "\n" } else { report::text(&r) });
    if r.valid { ExitCode::SUCCESS } else { ExitCode::from(1) }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let gateway = app::start(&config).await?;
    let stop = gateway.shutdown_token();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("stopping: finishing requests in progress");
        stop.cancel();
    });
    gateway.run_until_stopped().await;
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn clients(command: ClientsCommand, config: Config) -> anyhow::Result<()> {
    let store = store::connect(&config.database).await?;
    match command {
        ClientsCommand::Add(add) => {
            let mut problems = Vec::new();
            let roles: BTreeSet<Role> =
                add.roles.iter().filter_map(|r| r.trim().parse::<Role>().map_err(|e| problems.push(e)).ok()).collect();
            let scope = if add.all_orgs {
                Scope::All
            } else {
                Scope::Only(
                    add.orgs
                        .iter()
                        .filter_map(|o| {
                            Oid::parse_organization(o).map_err(|e| problems.push(format!("--org {o}: {e}"))).ok()
                        })
                        .collect(),
                )
            };
            if add.name.trim().is_empty() {
                problems.push("--name must not be empty".into());
            }
            if !problems.is_empty() {
                anyhow::bail!("{}", problems.join("; "));
            }
            let issued = auth::issue(add.name.trim(), roles, scope, egisz_gateway::now());
            store.insert_client(&issued.client).await.context("storing the client")?;
            eprintln!(
                "client {} created (key id {}). Its API key, shown only now:",
                issued.client.id, issued.client.key_id
            );
            println!("{}", issued.key);
            Ok(())
        }
        ClientsCommand::List { json } => {
            let list = store.list_clients().await?;
            // The organisations' names, from the FRMO copy in force (none without one).
            let oids: Vec<String> = list
                .iter()
                .flat_map(|c| match &c.scope {
                    Scope::All => Vec::new(),
                    Scope::Only(set) => set.iter().map(|o| o.to_string()).collect(),
                })
                .collect();
            let copies = store.frmo_copies().await?;
            let names: std::collections::BTreeMap<String, String> = match frmo::in_force(&copies) {
                Some((orgs, _)) => {
                    let wanted: Vec<&str> = oids.iter().map(String::as_str).collect();
                    store
                        .frmo_names(&orgs.version, &wanted)
                        .await?
                        .into_iter()
                        .map(|(oid, full, short)| {
                            let name = frmo::index::display_name(&full, short.as_deref()).to_owned();
                            (oid, name)
                        })
                        .collect()
                }
                None => Default::default(),
            };
            for c in &list {
                let roles: Vec<&str> = c.roles.iter().map(|r| r.as_str()).collect();
                let orgs: Vec<String> = match &c.scope {
                    Scope::All => vec!["*".into()],
                    Scope::Only(set) => set.iter().map(|o| o.to_string()).collect(),
                };
                let status = if c.revoked_at.is_some() { "revoked" } else { "active" };
                if json {
                    println!(
                        "{}",
                        serde_json::json!({
                            "id": c.id, "key_id": c.key_id, "name": c.name, "roles": roles,
                            "organizations": orgs, "status": status, "created_at": c.created_at,
                            "organization_names": orgs.iter().filter_map(|o| Some((o.clone(), names.get(o)?.clone())))
                                .collect::<std::collections::BTreeMap<_, _>>(),
                            "revoked_at": c.revoked_at,
                        })
                    );
                } else {
                    let shown: Vec<String> = orgs
                        .iter()
                        .map(|o| match names.get(o) {
                            Some(name) => format!("{o} «{name}»"),
                            None if o == "*" => o.clone(),
                            None => format!("{o} (нет в ФРМО)"),
                        })
                        .collect();
                    println!(
                        "{}  {}  {:8} {:30} roles={} orgs={}",
                        c.id,
                        c.key_id,
                        status,
                        c.name,
                        roles.join(","),
                        shown.join(", ")
                    );
                }
            }
            if list.is_empty() && !json {
                eprintln!("no clients yet: egisz-gateway clients add --name … --role … --org …");
            }
            Ok(())
        }
        ClientsCommand::Revoke { id } => {
            if store.revoke_client(id.trim(), egisz_gateway::now()).await? {
                println!("revoked {id}");
                Ok(())
            } else {
                anyhow::bail!("no active client with id or key id {id}")
            }
        }
    }
}

fn print_config(c: &Config, packages: &[egisz_packages::PackageStatus]) {
    use egisz_gateway::config::ServiceMode;
    use egisz_gateway::telemetry::LogFormat;
    let mode = |m: ServiceMode| match m {
        ServiceMode::Sandbox => "sandbox (the in-process emulator)",
        ServiceMode::Remote => "remote",
    };
    let rows: Vec<(&str, String)> = vec![
        ("database.url", redact_url(&c.database.url)),
        ("api.listen", c.api.listen.to_string()),
        ("remd_listener.listen", c.remd_listener.listen.to_string()),
        (
            "remd_listener.allow_from",
            c.remd_listener.allow_from.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(", "),
        ),
        ("remd_listener.tls", if c.remd_listener.tls.is_some() { "on (mutual TLS)".into() } else { "off".into() }),
        ("frmr.mode", mode(c.frmr.mode).into()),
        ("frmr.base_url", c.frmr.base_url.as_ref().map_or_else(|| "—".into(), |u| u.to_string())),
        ("frmr.rate_per_second", c.frmr.rate_per_second.to_string()),
        ("remd.mode", mode(c.remd.mode).into()),
        ("remd.endpoint", c.remd.endpoint.as_ref().map_or_else(|| "—".into(), |u| u.to_string())),
        ("remd.client_entity_id", c.remd.client_entity_id.clone().unwrap_or_else(|| "—".into())),
        ("remd.rate_per_second", format!("{} (burst {})", c.remd.quota.per_second, c.remd.quota.burst)),
        ("relay.instance_id", c.relay.instance_id.clone()),
        ("relay.concurrency", c.relay.concurrency.to_string()),
        ("ops.bulk_retry_max", c.ops.bulk_retry_max.to_string()),
        ("ops.registration_deadline", humantime::format_duration(c.ops.registration_deadline).to_string()),
        ("mappings.dir", c.mappings.dir.as_ref().map_or_else(|| "built-in".into(), |d| d.display().to_string())),
        ("validation.signers", c.validation.signers.describe()),
        (
            "validation.verifier",
            match &c.validation.verifier {
                egisz_gateway::validation::settings::VerifierChoice::None => {
                    "none: signatures not verified (structure, algorithms, digests, dates only)".into()
                }
                egisz_gateway::validation::settings::VerifierChoice::Gost(g) => format!(
                    "gost (trusts {}; CRL missing: {}; CRL fetch {} ms, at most {} bytes{})",
                    match &g.trust {
                        egisz_gateway::validation::settings::GostTrust::Accredited { dir, list } => {
                            let mut from: Vec<String> =
                                dir.iter().map(|d| format!("the CAs in {}", d.display())).collect();
                            from.extend(list.iter().map(|l| {
                                format!(
                                    "the accredited CAs listed at {} (kept in {}, fetched every {})",
                                    redact_url(l.url.as_str()),
                                    l.file.display(),
                                    humantime::format_duration(l.refresh)
                                )
                            }));
                            from.join(" and ")
                        }
                        egisz_gateway::validation::settings::GostTrust::SandboxCa => "the sandbox GOST test CA".into(),
                    },
                    g.revocation.as_str(),
                    g.crl_timeout.as_millis(),
                    g.crl_max_bytes,
                    g.crl_proxy.as_ref().map(|p| format!(", through {}", redact_url(p.as_str()))).unwrap_or_default()
                ),
                egisz_gateway::validation::settings::VerifierChoice::External { url, timeout } => {
                    format!("external {} (timeout {} ms)", redact_url(url.as_str()), timeout.as_millis())
                }
            },
        ),
        (
            "validation.packages_dir",
            match &c.validation.packages {
                None => "— (no rule package applied)".into(),
                Some(p) => format!(
                    "{} (read again every {}; schematron budget {} ms per document)",
                    p.dir.display(),
                    humantime::format_duration(p.refresh),
                    p.schematron_time.as_millis()
                ),
            },
        ),
        ("validation.xsd", c.validation.xsd.describe()),
        ("validation.schematron", c.validation.schematron.describe()),
        (
            "log",
            format!(
                "{} at {}",
                match c.log.format {
                    LogFormat::Human => "human",
                    LogFormat::Json => "json",
                },
                c.log.level
            ),
        ),
    ];
    println!("configuration OK");
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in rows {
        println!("  {k:width$}  {v}");
    }
    if !packages.is_empty() {
        println!("rule packages:");
    }
    for p in packages {
        let Some(id) = &p.in_force else { continue };
        let stats = p
            .stats
            .map(|s| {
                format!(
                    "; schematron: {} patterns, {} rules, {} asserts, {} reports",
                    s.patterns, s.rules, s.asserts, s.reports
                )
            })
            .unwrap_or_else(|| "; XSD only".into());
        println!(
            "  kind {:<5} sha256 {}  {} KiB{stats}{}",
            p.kind,
            id.sha256,
            p.bytes / 1024,
            id.version.as_ref().map(|v| format!("\n             {v}")).unwrap_or_default()
        );
    }
}
