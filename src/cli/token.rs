//! `tessera token list|revoke`: the access and refresh tokens of a user or a client id, listed
//! without their values or digests, and revoked by owner, family or value. Revoking a refresh
//! token revokes its whole family, refresh and access tokens, as RFC 7009 revocation and reuse
//! detection do (`oauth::management`).
use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use clap::{ArgGroup, Subcommand};
use serde::Serialize;

use crate::app::open_store;
use crate::config::Settings;
use crate::crypto::jwt::JwtSigner;
use crate::domain::Secret;
use crate::oauth::management::{self, Revoked, TokenItem, TokenKind};
use crate::store::admin::{self, TokenOwner};
use crate::store::{DbConnection, users};

use super::user::find_user;
use super::{CliError, CliResult, JsonOutput, now, print_json, utc};

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// List the tokens of a user, a client id, or both (never their values).
    ///
    /// One line per access or refresh token: its kind, state (active, consumed, revoked,
    /// expired), dialect, client id, user, refresh-token family, issue and expiry times (UTC).
    #[command(group(
        ArgGroup::new("owner").args(["user", "client"]).required(true).multiple(true)
    ))]
    List {
        /// The user: username or UUID.
        #[arg(long)]
        user: Option<String>,
        /// The client id (registered, or a Wazo client id named by a token).
        #[arg(long)]
        client: Option<String>,
        /// Only the tokens still usable: not revoked, consumed or expired.
        #[arg(long)]
        active: bool,
        #[command(flatten)]
        output: JsonOutput,
    },
    /// Revoke the tokens of a user or a client id, a family, or one token.
    ///
    /// A refresh token is revoked with its whole family, refresh and access tokens, as RFC 7009
    /// revocation does; an access token alone leaves its refresh token working. Tokens already
    /// revoked are not counted again.
    #[command(group(
        ArgGroup::new("what").args(["user", "client", "family", "token"]).required(true).multiple(true)
    ))]
    Revoke {
        /// Every token of this user (username or UUID); with --client, of that client id only.
        #[arg(long)]
        user: Option<String>,
        /// Every token issued to this client id (the client stays registered).
        #[arg(long)]
        client: Option<String>,
        /// Every refresh and access token of this refresh-token family.
        #[arg(long, conflicts_with_all = ["user", "client", "token"])]
        family: Option<String>,
        /// A token value (OAuth2, Wazo or JWT; `-` reads it from the first line of standard
        /// input, out of the shell history): a refresh token is revoked with its family, an
        /// access token alone.
        // An OAuth2 token is base64url: one in 64 starts with a dash, and is still a value.
        #[arg(long, allow_hyphen_values = true, conflicts_with_all = ["user", "client", "family"])]
        token: Option<String>,
        #[command(flatten)]
        output: JsonOutput,
    },
}

/// A token as `token list --json` prints it.
#[derive(Serialize)]
struct TokenView<'a> {
    kind: &'static str,
    state: &'static str,
    dialect: &'a str,
    family_id: Option<&'a str>,
    generation: Option<i64>,
    client_id: Option<&'a str>,
    user_uuid: Option<&'a str>,
    username: Option<&'a str>,
    issued_at: i64,
    expires_at: Option<i64>,
    consumed_at: Option<i64>,
    revoked_at: Option<i64>,
}

/// What `token revoke --json` prints. Tokens already revoked are not counted.
#[derive(Serialize)]
struct RevokedView<'a> {
    /// What `--token` was: `access` or `refresh`; `null` otherwise.
    kind: Option<&'static str>,
    /// The family of `--family`, or of the token of `--token`; `null` otherwise.
    family_id: Option<&'a str>,
    refresh_tokens_revoked: usize,
    access_tokens_revoked: usize,
}

impl<'a> RevokedView<'a> {
    fn new(kind: Option<TokenKind>, family_id: Option<&'a str>, revoked: Revoked) -> Self {
        RevokedView {
            kind: kind.map(TokenKind::as_str),
            family_id,
            refresh_tokens_revoked: revoked.refresh,
            access_tokens_revoked: revoked.access,
        }
    }
}

pub fn run(settings: &Settings, command: TokenCommand) -> CliResult {
    let store = open_store(settings)?;
    let mut conn = store.conn()?;
    let conn = &mut *conn;
    match command {
        TokenCommand::List {
            user,
            client,
            active,
            output,
        } => {
            let owner = owner(conn, user.as_deref(), client.as_deref())?;
            let items = management::list_tokens(conn, &owner, active, now())?;
            print_tokens(conn, &items, output)
        }
        TokenCommand::Revoke {
            user,
            client,
            family,
            token,
            output,
        } => {
            if let Some(family) = family {
                let revoked = management::revoke_family(conn, &family, now())?
                    .ok_or_else(|| CliError::Failed(format!("no such family: {family}")))?;
                let view = RevokedView::new(None, Some(&family), revoked);
                return print_revoked(&format!("family {family}"), &view, output);
            }
            if let Some(token) = token {
                return revoke_token(settings, conn, &token, output);
            }
            let owner = owner(conn, user.as_deref(), client.as_deref())?;
            let what = match (&user, &client) {
                (Some(u), Some(c)) => format!("user {u} with client {c}"),
                (Some(u), None) => format!("user {u}"),
                (None, Some(c)) => format!("client {c}"),
                (None, None) => String::new(),
            };
            let revoked = management::revoke_tokens_of(conn, &owner, now())?;
            print_revoked(&what, &RevokedView::new(None, None, revoked), output)
        }
    }
}

/// The owner named by `--user` and `--client`, each of which must exist.
fn owner(
    conn: &mut DbConnection,
    user: Option<&str>,
    client: Option<&str>,
) -> Result<TokenOwner, CliError> {
    let user_id = user.map(|u| find_user(conn, u).map(|u| u.id)).transpose()?;
    if let Some(c) = client {
        if !admin::client_id_known(conn, c)? {
            return Err(CliError::Failed(format!("no such client: {c}")));
        }
    }
    if user_id.is_none() && client.is_none() {
        return Err(CliError::Usage("name a --user or a --client".into()));
    }
    Ok(TokenOwner {
        user_id,
        client_id: client.map(str::to_owned),
    })
}

fn print_tokens(conn: &mut DbConnection, items: &[TokenItem], output: JsonOutput) -> CliResult {
    // The usernames of the users named, looked up once each.
    let mut usernames: BTreeMap<&str, Option<String>> = BTreeMap::new();
    for id in items.iter().filter_map(|t| t.user_id.as_deref()) {
        if !usernames.contains_key(id) {
            let name = users::find_by_id(conn, id)?.map(|u| u.username);
            usernames.insert(id, name);
        }
    }
    let username = |t: &TokenItem| {
        t.user_id
            .as_deref()
            .and_then(|id| usernames.get(id))
            .and_then(|n| n.as_deref())
    };
    if output.json {
        let views: Vec<TokenView<'_>> = items
            .iter()
            .map(|t| TokenView {
                kind: t.kind.as_str(),
                state: t.state.as_str(),
                dialect: &t.dialect,
                family_id: t.family_id.as_deref(),
                generation: t.generation,
                client_id: t.client_id.as_deref(),
                user_uuid: t.user_id.as_deref(),
                username: username(t),
                issued_at: t.issued_at,
                expires_at: t.expires_at,
                consumed_at: t.consumed_at,
                revoked_at: t.revoked_at,
            })
            .collect();
        return print_json(&views);
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "KIND\tSTATE\tDIALECT\tCLIENT\tUSER\tFAMILY\tISSUED\tEXPIRES"
    );
    for t in items {
        let _ = writeln!(
            out,
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            t.kind.as_str(),
            t.state.as_str(),
            t.dialect,
            t.client_id.as_deref().unwrap_or("-"),
            username(t).or(t.user_id.as_deref()).unwrap_or("-"),
            t.family_id.as_deref().unwrap_or("-"),
            utc(t.issued_at),
            t.expires_at.map_or_else(|| "never".to_owned(), utc),
        );
    }
    Ok(())
}

/// `--token T`: revokes what the token is.
fn revoke_token(
    settings: &Settings,
    conn: &mut DbConnection,
    token: &str,
    output: JsonOutput,
) -> CliResult {
    let token = if token == "-" {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    } else {
        token.to_owned()
    };
    if token.is_empty() {
        return Err(CliError::Usage("--token: empty token".into()));
    }
    let jwt = jwt_signer(settings)?;
    let revoked = management::revoke_presented(conn, &Secret::new(token), jwt.as_ref(), now())?
        .ok_or_else(|| CliError::Failed("no such token".into()))?;
    let what = match (revoked.kind, revoked.family_id.as_deref()) {
        (TokenKind::Refresh, Some(family)) => format!("a refresh token, with its family {family}"),
        (TokenKind::Refresh, None) => "a refresh token".to_owned(),
        (TokenKind::Access, _) => "an access token".to_owned(),
    };
    let view = RevokedView::new(
        Some(revoked.kind),
        revoked.family_id.as_deref(),
        revoked.revoked,
    );
    print_revoked(&what, &view, output)
}

/// The JWT signing key, if its file exists: JWT access tokens are found through their `jti`.
/// Never created here.
fn jwt_signer(settings: &Settings) -> Result<Option<JwtSigner>, CliError> {
    let path = settings.jwt_key_path();
    match std::fs::read_to_string(&path) {
        Ok(pem) => JwtSigner::from_pem(&pem)
            .map(Some)
            .map_err(|e| CliError::Failed(format!("JWT signing key {}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CliError::Failed(format!(
            "cannot read the JWT signing key {}: {e}",
            path.display()
        ))),
    }
}

fn print_revoked(what: &str, view: &RevokedView<'_>, output: JsonOutput) -> CliResult {
    if output.json {
        return print_json(view);
    }
    let _ = writeln!(
        std::io::stdout().lock(),
        "revoked {} refresh and {} access tokens ({what})",
        view.refresh_tokens_revoked,
        view.access_tokens_revoked
    );
    Ok(())
}
