//! `tessera user …`: users, their passwords, ACL, tenant, purpose and email. A new password or
//! disabling ends the user's sessions, as wazo-auth does. A user is named by its username
//! (case-insensitively) or its UUID.
use std::io::{BufRead, Write};

use clap::{Args, Subcommand};
use serde::Serialize;
use uuid::Uuid;

use crate::app::open_store;
use crate::config::Settings;
use crate::crypto::{password, token};
use crate::domain::User;
use crate::store::{DbConnection, StoreError, connection, sessions, users};

use super::{CliError, CliResult, JsonOutput, canonical_uuid, now, print_json, utc};

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
        /// The login: unique case-insensitively, without ':'.
        username: String,
        #[command(flatten)]
        password: PasswordArgs,
        /// ACL entry (repeatable), e.g. --acl 'confd.users.me.#'.
        #[arg(long = "acl")]
        acl: Vec<String>,
        /// The email address.
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
        /// Username or UUID.
        username: String,
        /// Replace the ACL with these entries (repeatable); `--acl ''` alone clears it.
        #[arg(long = "acl")]
        acl: Vec<String>,
        /// A new email address; `--email ''` removes it.
        #[arg(long)]
        email: Option<String>,
        /// Whether the email is confirmed (it then works as a login).
        #[arg(long)]
        email_confirmed: Option<bool>,
        /// A new tenant UUID.
        #[arg(long)]
        tenant: Option<String>,
        /// user, internal or external_api.
        #[arg(long, value_parser = ["user", "internal", "external_api"])]
        purpose: Option<String>,
    },
    /// List users.
    List {
        #[command(flatten)]
        output: JsonOutput,
    },
    /// Set a user's password.
    Passwd {
        /// Username or UUID.
        username: String,
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// Show one user (never its password hash).
    Show {
        /// Username or UUID.
        username: String,
        #[command(flatten)]
        output: JsonOutput,
    },
    /// Disable a user: its sessions end, logins and refreshes fail from now on.
    Disable {
        /// Username or UUID.
        username: String,
    },
    /// Enable a disabled user: logins and refreshes work again.
    Enable {
        /// Username or UUID.
        username: String,
    },
    /// Delete a user with its sessions and tokens.
    Remove {
        /// Username or UUID.
        username: String,
    },
}

fn read_or_generate_password(args: &PasswordArgs) -> Result<(String, bool), CliError> {
    if args.password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        let pw = line.trim_end_matches(['\r', '\n']).to_owned();
        if pw.is_empty() {
            return Err(CliError::Usage("empty password on standard input".into()));
        }
        Ok((pw, false))
    } else {
        Ok((token::new_password().expose().to_owned(), true))
    }
}

/// A user by username (case-insensitively), else by UUID.
pub(super) fn find_user(conn: &mut DbConnection, name: &str) -> Result<User, CliError> {
    if let Some(user) = users::find_by_login(conn, name)? {
        return Ok(user);
    }
    if let Ok(uuid) = Uuid::try_parse(name) {
        if let Some(user) = users::find_by_id(conn, &uuid.hyphenated().to_string())? {
            return Ok(user);
        }
    }
    Err(CliError::Failed(format!("no such user: {name}")))
}

/// A user as `user show --json` and `user list --json` print it: never its password hash.
#[derive(Serialize)]
struct UserView<'a> {
    uuid: &'a str,
    username: &'a str,
    tenant_uuid: &'a str,
    purpose: &'a str,
    email: Option<&'a str>,
    email_confirmed: bool,
    enabled: bool,
    acl: &'a [String],
    created_at: i64,
}

impl<'a> From<&'a User> for UserView<'a> {
    fn from(u: &'a User) -> Self {
        UserView {
            uuid: &u.id,
            username: &u.username,
            tenant_uuid: &u.tenant_uuid,
            purpose: &u.purpose,
            email: u.email.as_deref(),
            email_confirmed: u.email_confirmed,
            enabled: u.enabled,
            acl: &u.acl,
            created_at: u.created_at,
        }
    }
}

pub fn run(settings: &Settings, command: UserCommand) -> CliResult {
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
                return Err(CliError::Usage(
                    "a username must be non-empty and contain no ':'".into(),
                ));
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
        UserCommand::List { output } => {
            let list = users::list(conn)?;
            if output.json {
                let views: Vec<UserView<'_>> = list.iter().map(UserView::from).collect();
                return print_json(&views);
            }
            for u in list {
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
        UserCommand::Show { username, output } => {
            let u = find_user(conn, &username)?;
            if output.json {
                return print_json(&UserView::from(&u));
            }
            let _ = writeln!(
                out,
                "username: {}\nuuid: {}\ntenant_uuid: {}\npurpose: {}\nemail: {}{}\nenabled: {}\nacl: {}\ncreated_at: {}",
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
                u.acl.join(" "),
                utc(u.created_at)
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
