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
    if let Command::CheckConfig = cli.command {
        let problems: Vec<String> = [app::check_frmr_client(&config), app::check_remd_client(&config)]
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
        print_config(&config);
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
    match runtime.block_on(run(cli.command, config)) {
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
    }
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
                            "revoked_at": c.revoked_at,
                        })
                    );
                } else {
                    println!(
                        "{}  {}  {:8} {:30} roles={} orgs={}",
                        c.id,
                        c.key_id,
                        status,
                        c.name,
                        roles.join(","),
                        orgs.join(",")
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

fn print_config(c: &Config) {
    use egisz_gateway::config::{LogFormat, ServiceMode};
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
        ("remd.rate_per_second", format!("{} (burst {})", c.remd.rate_per_second, c.remd.burst)),
        ("relay.instance_id", c.relay.instance_id.clone()),
        ("relay.concurrency", c.relay.concurrency.to_string()),
        ("ops.bulk_retry_max", c.ops.bulk_retry_max.to_string()),
        ("ops.registration_deadline", humantime::format_duration(c.ops.registration_deadline).to_string()),
        ("mappings.dir", c.mappings.dir.as_ref().map_or_else(|| "built-in".into(), |d| d.display().to_string())),
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
}
