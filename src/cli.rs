//! The command line: `serve` (the default), `migrate`, `config check`, `user …`, `client …`,
//! `tenant …`, `token …`, `policy show`, `backup`. Secrets are printed once, on creation or
//! rotation, and never logged. Exit status: 0 done, 1 the command failed (not found, database
//! error), 2 bad usage or configuration (as clap's own usage errors). `docs/cli.md` holds every
//! `--help` text, checked against the binary by `tests/api/admin_cli.rs`.
mod backup;
mod client;
mod tenant;
mod token;
mod user;

pub use client::ClientCommand;
pub use token::TokenCommand;
pub use user::{PasswordArgs, UserCommand};

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use serde::Serialize;
use uuid::Uuid;

use crate::app::{Application, open_store};
use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::policy::{Dialect, Policies};
use crate::reload::ConfigSource;
use crate::store::migrations;

#[derive(Debug, Parser)]
#[command(
    name = "tessera",
    version,
    about = "OAuth2 (WSO2 semantics) and wazo-auth token server"
)]
pub struct Cli {
    /// Configuration file overlaid on the defaults (conf/tessera.toml).
    #[arg(long, global = true, env = "TESSERA_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default command).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Configuration tools.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage OAuth2 clients.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Manage tenants (for Wazo `?tenant=` and `Wazo-Tenant`).
    #[command(subcommand)]
    Tenant(tenant::TenantCommand),
    /// List and revoke access and refresh tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Inspect the token policy.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Copy the SQLite database, online, to a new file (PostgreSQL: use pg_dump).
    Backup {
        /// The copy to write; it must not exist, unless --force.
        file: PathBuf,
        /// Replace FILE if it exists (only once the new copy passed its integrity check).
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        output: JsonOutput,
    },
}

/// `--json`: machine-readable output with stable keys, instead of text.
#[derive(Debug, Clone, Copy, Args)]
pub struct JsonOutput {
    /// Print JSON (stable keys, for scripts) instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Print the effective policy and the table each value comes from.
    Show {
        /// A client id with (or without) a `[policy.clients."<id>"]` table.
        #[arg(long)]
        client: Option<String>,
        /// oauth2 or wazo.
        #[arg(long, default_value = "oauth2", value_parser = ["oauth2", "wazo"])]
        dialect: String,
        #[command(flatten)]
        output: JsonOutput,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a configuration file (with the environment overrides) and exit.
    Check {
        /// The configuration file to check.
        file: PathBuf,
    },
}

/// Why a command failed, printed on stderr; it sets the exit status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CliError {
    /// Bad arguments or configuration, which running again cannot fix: exit status 2.
    Usage(String),
    /// The command could not be done (no such user, client or token, a database error, a
    /// file in the way): exit status 1.
    Failed(String),
}

impl CliError {
    fn exit_code(&self) -> ExitCode {
        match self {
            CliError::Usage(_) => ExitCode::from(2),
            CliError::Failed(_) => ExitCode::FAILURE,
        }
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CliError::Usage(m) | CliError::Failed(m) => f.write_str(m),
        }
    }
}

impl From<String> for CliError {
    fn from(message: String) -> Self {
        CliError::Failed(message)
    }
}

impl From<&str> for CliError {
    fn from(message: &str) -> Self {
        CliError::Failed(message.to_owned())
    }
}

impl From<crate::store::StoreError> for CliError {
    fn from(e: crate::store::StoreError) -> Self {
        CliError::Failed(e.to_string())
    }
}

impl From<crate::oauth::Error> for CliError {
    fn from(e: crate::oauth::Error) -> Self {
        CliError::Failed(e.to_string())
    }
}

/// A command's outcome.
type CliResult = Result<(), CliError>;

/// Runs the parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    let command = cli.command.unwrap_or(Command::Serve);
    if let Command::Config(ConfigCommand::Check { file }) = &command {
        return match Settings::load(Some(file)) {
            Ok(_) => {
                println!("{}: ok", file.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{}: {e}", file.display());
                ExitCode::from(2)
            }
        };
    }
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tessera: {e}");
            return ExitCode::from(2);
        }
    };
    init_logger(&settings);
    let result = match command {
        Command::Serve => serve(&settings, ConfigSource::from_process(cli.config)),
        Command::Migrate => migrate(&settings),
        Command::Config(_) => Ok(()),
        Command::User(c) => user::run(&settings, c),
        Command::Client(c) => client::run(&settings, c),
        Command::Tenant(c) => tenant::run(&settings, c),
        Command::Token(c) => token::run(&settings, c),
        Command::Policy(PolicyCommand::Show {
            client,
            dialect,
            output,
        }) => policy_show(&settings, client.as_deref(), &dialect, output),
        Command::Backup {
            file,
            force,
            output,
        } => backup::run(&settings, &file, force, output),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tessera: {e}");
            e.exit_code()
        }
    }
}

/// The logger: `[log] level` (then `RUST_LOG` on top), in `[log] format`. Libraries whose
/// `debug` and `trace` records are noise at every I/O event or HTTP/2 frame (`actix_http`, `h2`,
/// `mio`) or dump TLS handshake messages (`rustls`) stay at `info` or below, unless `RUST_LOG`
/// names them.
fn init_logger(settings: &Settings) {
    const QUIET: [&str; 4] = ["actix_http", "h2", "mio", "rustls"];
    let level = settings.log_filter().unwrap_or(log::LevelFilter::Info);
    let mut builder = env_logger::Builder::new();
    builder.filter_level(level);
    for target in QUIET {
        builder.filter_module(target, level.min(log::LevelFilter::Info));
    }
    builder.parse_env(env_logger::Env::default());
    if settings.log.format == crate::config::LogFormat::Json {
        builder.format(crate::http::access_log::write_json);
    }
    let _ = builder.try_init();
}

/// Serves until stopped; `source` is where `settings` came from, re-read on a policy reload.
fn serve(settings: &Settings, source: ConfigSource) -> CliResult {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let result: Result<(), String> = runtime.block_on(async {
        let mut app = Application::build(settings, Arc::new(SystemClock))
            .await
            .map_err(|e| e.to_string())?;
        app.watch_config(source);
        app.stop_on_signals();
        if let Some(creds) = app.take_initial_credentials() {
            // Printed once, on stdout (never through the logger), and kept in a 0600 file.
            println!(
                "First start: created user {} with password {} and client {} with secret {}\n\
                 Saved in {} (mode 0600).",
                creds.username,
                creds.password.expose(),
                creds.client_id,
                creds.client_secret.expose(),
                creds.file.display()
            );
        }
        log::info!(
            "listening on {} (issuer {})",
            settings.server.bind,
            settings.issuer()
        );
        app.run_until_stopped().await.map_err(|e| e.to_string())
    });
    Ok(result?)
}

fn migrate(settings: &Settings) -> CliResult {
    let store = open_store(settings).map_err(|e| e.to_string())?;
    let mut conn = store.conn().map_err(|e| e.to_string())?;
    let pending = migrations::pending(&mut conn).map_err(|e| e.to_string())?;
    println!(
        "migrations up to date ({}){}",
        store.backend().describe(),
        if pending { ", some pending" } else { "" }
    );
    Ok(())
}

/// `key = value  # from [table]`, one line per key, in TOML syntax; with `--json`, an array
/// of `{"key", "value", "source"}`.
fn policy_show(
    settings: &Settings,
    client: Option<&str>,
    dialect: &str,
    output: JsonOutput,
) -> CliResult {
    let dialect = if dialect == "wazo" {
        Dialect::Wazo
    } else {
        Dialect::OAuth2
    };
    let policies = Policies::from(&settings.policy);
    let explained = policies.explain(dialect, client);
    if output.json {
        let items: Vec<serde_json::Value> = explained
            .into_iter()
            .map(|(key, value, source)| {
                // The values are TOML integers, booleans and basic strings: JSON too.
                let value =
                    serde_json::from_str(&value).unwrap_or(serde_json::Value::String(value));
                serde_json::json!({"key": key, "value": value, "source": source.to_string()})
            })
            .collect();
        return print_json(&items);
    }
    let mut out = std::io::stdout().lock();
    for (key, value, source) in explained {
        let _ = writeln!(out, "{key} = {value}  # from {source}");
    }
    Ok(())
}

/// Prints `value` as pretty JSON on stdout.
fn print_json(value: &impl Serialize) -> CliResult {
    let text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
    let _ = writeln!(std::io::stdout().lock(), "{text}");
    Ok(())
}

/// Epoch seconds as RFC 3339 UTC (`2026-11-23T04:16:57Z`), for text output.
fn utc(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0).map_or_else(
        || secs.to_string(),
        |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    )
}

fn now() -> i64 {
    SystemClock.now().secs()
}

/// A UUID argument in canonical lower-case form.
fn canonical_uuid(value: &str, what: &str) -> Result<String, CliError> {
    Uuid::try_parse(value)
        .map(|u| u.hyphenated().to_string())
        .map_err(|_| CliError::Usage(format!("{what} must be a UUID")))
}
