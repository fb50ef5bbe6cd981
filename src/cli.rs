//! The command line: `serve` (the default), `migrate`, `config check`, `user …`, `client …`,
//! `tenant …`. Secrets are printed once, on creation, and never logged.
mod tenant;

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use uuid::Uuid;

use crate::app::{Application, open_store};
use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::crypto::{password, token};
use crate::domain::{Client, GrantType, User};
use crate::policy::{Dialect, Policies};
use crate::store::{StoreError, clients, connection, migrations, sessions, users};

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

#[derive(Debug, Args)]
pub struct PasswordArgs {
    /// Read the password from the first line of standard input (otherwise one is generated
    /// and printed once).
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user.
    Add {
        username: String,
        #[command(flatten)]
        password: PasswordArgs,
        /// ACL entry (repeatable), e.g. --acl 'confd.users.me.#'.
        #[arg(long = "acl")]
        acl: Vec<String>,
        #[arg(long)]
        email: Option<String>,
        /// The email is confirmed: it then works as a login, case-insensitively.
        #[arg(long)]
        email_confirmed: bool,
        /// Tenant UUID (default: a new one).
        #[arg(long)]
        tenant: Option<String>,
        /// user, internal or external_api.
        #[arg(long, default_value = "user", value_parser = ["user", "internal", "external_api"])]
        purpose: String,
        /// The user's UUID (default: a new one), e.g. to keep a wazo-auth user's uuid.
        #[arg(long)]
        uuid: Option<Uuid>,
    },
    /// Change a user's ACL, email, tenant or purpose; its live sessions keep their ACL until
    /// they end.
    Set {
        username: String,
        /// Replace the ACL with these entries (repeatable); `--acl ''` alone clears it.
        #[arg(long = "acl")]
        acl: Vec<String>,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        email_confirmed: Option<bool>,
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long, value_parser = ["user", "internal", "external_api"])]
        purpose: Option<String>,
    },
    /// List users.
    List,
    /// Set a user's password.
    Passwd {
        username: String,
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// Show one user.
    Show { username: String },
    /// Disable a user: its sessions end, logins and refreshes fail from now on.
    Disable { username: String },
    /// Enable a disabled user.
    Enable { username: String },
    /// Delete a user with its sessions and tokens.
    Remove { username: String },
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client; a confidential client's secret is printed once.
    Add {
        client_id: String,
        /// A public client: no secret, identified by client_id alone.
        #[arg(long)]
        public: bool,
        /// Grant type (repeatable): password, client_credentials, refresh_token.
        /// Default: password and refresh_token (plus client_credentials if confidential).
        #[arg(long = "grant")]
        grants: Vec<String>,
        /// Scope pattern the client may be granted (repeatable; ACL syntax, `#` = any).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Scope granted when a request names none (repeatable).
        #[arg(long = "default-scope")]
        default_scopes: Vec<String>,
    },
    /// List clients.
    List,
    /// Delete a client and revoke every token issued to it.
    Remove { client_id: String },
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
        Command::Serve => serve(&settings),
        Command::Migrate => migrate(&settings),
        Command::Config(_) => Ok(()),
        Command::User(c) => user(&settings, c),
        Command::Client(c) => client(&settings, c),
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

fn serve(settings: &Settings) -> CliResult {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let mut app = Application::build(settings, Arc::new(SystemClock))
            .await
            .map_err(|e| e.to_string())?;
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

fn read_or_generate_password(args: &PasswordArgs) -> Result<(String, bool), String> {
    if args.password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        let pw = line.trim_end_matches(['\r', '\n']).to_owned();
        if pw.is_empty() {
            return Err("empty password on standard input".into());
        }
        Ok((pw, false))
    } else {
        Ok((token::new_password().expose().to_owned(), true))
    }
}

/// A UUID argument in canonical lower-case form.
fn canonical_uuid(value: &str, what: &str) -> Result<String, String> {
    Uuid::try_parse(value)
        .map(|u| u.hyphenated().to_string())
        .map_err(|_| format!("{what} must be a UUID"))
}

fn find_user(conn: &mut crate::store::DbConnection, username: &str) -> Result<User, String> {
    users::find_by_login(conn, username)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no such user: {username}"))
}

fn user(settings: &Settings, command: UserCommand) -> CliResult {
    let store = open_store(settings).map_err(|e| e.to_string())?;
    let mut conn = store.conn().map_err(|e| e.to_string())?;
    let conn = &mut *conn;
    let mut out = std::io::stdout().lock();
    match command {
        UserCommand::Add {
            username,
            password,
            acl,
            email,
            email_confirmed,
            tenant,
            purpose,
            uuid,
        } => {
            if username.is_empty() || username.contains(':') {
                return Err("a username must be non-empty and contain no ':'".into());
            }
            let tenant = tenant.map(|t| canonical_uuid(&t, "--tenant")).transpose()?;
            let (pw, generated) = read_or_generate_password(&password)?;
            let hash = password::hash_password(&pw).map_err(|e| e.to_string())?;
            let user = User {
                id: uuid.unwrap_or_else(Uuid::new_v4).hyphenated().to_string(),
                username,
                email,
                email_confirmed,
                password_hash: Some(hash),
                enabled: true,
                acl,
                tenant_uuid: tenant.unwrap_or_else(|| Uuid::new_v4().to_string()),
                purpose,
                created_at: now(),
            };
            users::insert(conn, &user).map_err(|e| match e {
                StoreError::Conflict => format!("user {} already exists", user.username),
                other => other.to_string(),
            })?;
            let _ = writeln!(out, "created user {} ({})", user.username, user.id);
            if generated {
                let _ = writeln!(out, "password: {pw}");
            }
        }
        UserCommand::List => {
            for u in users::list(conn).map_err(|e| e.to_string())? {
                let state = if u.enabled { "enabled" } else { "disabled" };
                let _ = writeln!(
                    out,
                    "{}\t{}\t{}\t{}\t{}",
                    u.username,
                    u.id,
                    state,
                    u.purpose,
                    u.acl.join(",")
                );
            }
        }
        UserCommand::Set {
            username,
            acl,
            email,
            email_confirmed,
            tenant,
            purpose,
        } => {
            let mut user = find_user(conn, &username)?;
            if !acl.is_empty() {
                user.acl = acl.into_iter().filter(|a| !a.is_empty()).collect();
            }
            if let Some(email) = email {
                user.email = (!email.is_empty()).then_some(email);
            }
            if let Some(confirmed) = email_confirmed {
                user.email_confirmed = confirmed;
            }
            if let Some(tenant) = tenant {
                user.tenant_uuid = canonical_uuid(&tenant, "--tenant")?;
            }
            if let Some(purpose) = purpose {
                user.purpose = purpose;
            }
            connection::write(conn, |c| users::update(c, &user)).map_err(|e| e.to_string())?;
            let _ = writeln!(out, "updated user {username}");
        }
        UserCommand::Show { username } => {
            let u = find_user(conn, &username)?;
            let _ = writeln!(
                out,
                "username: {}\nuuid: {}\ntenant_uuid: {}\npurpose: {}\nemail: {}{}\nenabled: {}\nacl: {}",
                u.username,
                u.id,
                u.tenant_uuid,
                u.purpose,
                u.email.as_deref().unwrap_or("-"),
                if u.email_confirmed {
                    " (confirmed)"
                } else {
                    ""
                },
                u.enabled,
                u.acl.join(" ")
            );
        }
        UserCommand::Passwd { username, password } => {
            let user = find_user(conn, &username)?;
            let (pw, generated) = read_or_generate_password(&password)?;
            let hash = password::hash_password(&pw).map_err(|e| e.to_string())?;
            // As wazo-auth: a new password ends the user's sessions (refresh tokens stay).
            let ended = connection::write(conn, |c| {
                users::set_password(c, &user.id, &hash)?;
                sessions::delete_of_user(c, &user.id)
            })
            .map_err(|e| e.to_string())?;
            let _ = writeln!(
                out,
                "password changed for {username}; {ended} sessions ended"
            );
            if generated {
                let _ = writeln!(out, "password: {pw}");
            }
        }
        UserCommand::Disable { username } => set_enabled(conn, &mut out, &username, false)?,
        UserCommand::Enable { username } => set_enabled(conn, &mut out, &username, true)?,
        UserCommand::Remove { username } => {
            let user = find_user(conn, &username)?;
            connection::write(conn, |c| users::delete(c, &user.id)).map_err(|e| e.to_string())?;
            let _ = writeln!(out, "removed user {username} and its tokens");
        }
    }
    Ok(())
}

fn set_enabled(
    conn: &mut crate::store::DbConnection,
    out: &mut impl Write,
    username: &str,
    enabled: bool,
) -> CliResult {
    let user = find_user(conn, username)?;
    connection::write(conn, |c| {
        users::set_enabled(c, &user.id, enabled)?;
        // As wazo-auth: disabling ends the user's sessions at once.
        if !enabled {
            sessions::delete_of_user(c, &user.id)?;
        }
        Ok::<_, StoreError>(())
    })
    .map_err(|e| e.to_string())?;
    let _ = writeln!(
        out,
        "{} user {username}",
        if enabled { "enabled" } else { "disabled" }
    );
    Ok(())
}

fn client(settings: &Settings, command: ClientCommand) -> CliResult {
    let store = open_store(settings).map_err(|e| e.to_string())?;
    let mut conn = store.conn().map_err(|e| e.to_string())?;
    let conn = &mut *conn;
    let mut out = std::io::stdout().lock();
    match command {
        ClientCommand::Add {
            client_id,
            public,
            grants,
            scopes,
            default_scopes,
        } => {
            if client_id.is_empty()
                || client_id.len() > 255
                || client_id.chars().any(char::is_control)
            {
                return Err("a client id must be 1 to 255 printable characters".into());
            }
            let grant_types = if grants.is_empty() {
                let mut g = vec![GrantType::Password, GrantType::RefreshToken];
                if !public {
                    g.push(GrantType::ClientCredentials);
                }
                g
            } else {
                grants
                    .iter()
                    .map(|g| {
                        g.parse::<GrantType>()
                            .map_err(|_| format!("unknown grant type: {g}"))
                    })
                    .collect::<Result<Vec<_>, _>>()?
            };
            if public && grant_types.contains(&GrantType::ClientCredentials) {
                return Err("a public client cannot use client_credentials".into());
            }
            let secret = (!public).then(token::new_client_secret);
            let client = Client {
                id: client_id,
                secret_hash: secret.as_ref().map(|s| token::digest(s.expose())),
                grant_types,
                scopes,
                default_scopes,
                created_at: now(),
            };
            clients::insert(conn, &client).map_err(|e| match e {
                StoreError::Conflict => format!("client {} already exists", client.id),
                other => other.to_string(),
            })?;
            let _ = writeln!(out, "created client {}", client.id);
            if let Some(secret) = secret {
                let _ = writeln!(out, "client secret (shown once): {}", secret.expose());
            }
        }
        ClientCommand::List => {
            for c in clients::list(conn).map_err(|e| e.to_string())? {
                let kind = if c.is_public() {
                    "public"
                } else {
                    "confidential"
                };
                let grants: Vec<&str> = c.grant_types.iter().map(|g| g.as_str()).collect();
                let _ = writeln!(
                    out,
                    "{}\t{}\t{}\t{}",
                    c.id,
                    kind,
                    grants.join(","),
                    c.scopes.join(" ")
                );
            }
        }
        ClientCommand::Remove { client_id } => {
            if !connection::write(conn, |c| clients::delete(c, &client_id, now()))
                .map_err(|e| e.to_string())?
            {
                return Err(format!("no such client: {client_id}"));
            }
            let _ = writeln!(out, "removed client {client_id} and revoked its tokens");
        }
    }
    Ok(())
}
