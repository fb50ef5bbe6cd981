//! The command line: `serve` (the default), `migrate`, `config check`, `user …`, `client …`,
//! `tenant …`. Secrets are printed once, on creation, and never logged.
mod client;
mod tenant;
mod user;

pub use client::ClientCommand;
pub use user::{PasswordArgs, UserCommand};

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
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
    /// Inspect the token policy.
    #[command(subcommand)]
    Policy(PolicyCommand),
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
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a configuration file (with the environment overrides) and exit.
    Check { file: PathBuf },
}

/// A command's failure, printed on stderr.
type CliResult = Result<(), String>;

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
        Command::Policy(PolicyCommand::Show { client, dialect }) => {
            policy_show(&settings, client.as_deref(), &dialect);
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tessera: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_logger(settings: &Settings) {
    let level = settings.log_filter().unwrap_or(log::LevelFilter::Info);
    let _ = env_logger::Builder::new()
        .filter_level(level)
        .parse_env(env_logger::Env::default())
        .try_init();
}

/// Serves until stopped; `source` is where `settings` came from, re-read on a policy reload.
fn serve(settings: &Settings, source: ConfigSource) -> CliResult {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
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
    })
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

/// `key = value  # from [table]`, one line per key, in TOML syntax.
fn policy_show(settings: &Settings, client: Option<&str>, dialect: &str) {
    let dialect = if dialect == "wazo" {
        Dialect::Wazo
    } else {
        Dialect::OAuth2
    };
    let policies = Policies::from(&settings.policy);
    let mut out = std::io::stdout().lock();
    for (key, value, source) in policies.explain(dialect, client) {
        let _ = writeln!(out, "{key} = {value}  # from {source}");
    }
}

fn now() -> i64 {
    SystemClock.now().secs()
}

/// A UUID argument in canonical lower-case form.
fn canonical_uuid(value: &str, what: &str) -> Result<String, String> {
    Uuid::try_parse(value)
        .map(|u| u.hyphenated().to_string())
        .map_err(|_| format!("{what} must be a UUID"))
}
