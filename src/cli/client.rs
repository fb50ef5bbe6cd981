//! `tessera client …`: OAuth2 clients; a confidential client's secret is printed once, when it
//! is created or rotated.
use std::io::Write;

use clap::Subcommand;
use serde::Serialize;

use crate::app::open_store;
use crate::config::Settings;
use crate::crypto::token;
use crate::domain::{Client, GrantType};
use crate::oauth::management::{self, SecretRotation};
use crate::store::{StoreError, clients, connection};

use super::{CliError, CliResult, JsonOutput, now, print_json, utc};

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client; a confidential client's secret is printed once.
    Add {
        /// The client id: 1 to 255 printable characters.
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
    List {
        #[command(flatten)]
        output: JsonOutput,
    },
    /// Show one client (never its secret or the secret's digest).
    Show {
        /// The client id.
        client_id: String,
        #[command(flatten)]
        output: JsonOutput,
    },
    /// Give a confidential client a new secret, printed once.
    ///
    /// The old secret is refused at once. Tokens already issued stay valid: `tessera token
    /// revoke --client ID` revokes them.
    RotateSecret {
        /// The client id.
        client_id: String,
    },
    /// Delete a client and revoke every token issued to it.
    Remove {
        /// The client id.
        client_id: String,
    },
}

/// A client as `client show --json` and `client list --json` print it.
#[derive(Serialize)]
struct ClientView<'a> {
    client_id: &'a str,
    /// `confidential` or `public`.
    r#type: &'static str,
    grant_types: Vec<&'static str>,
    scopes: &'a [String],
    default_scopes: &'a [String],
    created_at: i64,
}

impl<'a> From<&'a Client> for ClientView<'a> {
    fn from(c: &'a Client) -> Self {
        ClientView {
            client_id: &c.id,
            r#type: kind(c),
            grant_types: c.grant_types.iter().map(|g| g.as_str()).collect(),
            scopes: &c.scopes,
            default_scopes: &c.default_scopes,
            created_at: c.created_at,
        }
    }
}

fn kind(c: &Client) -> &'static str {
    if c.is_public() {
        "public"
    } else {
        "confidential"
    }
}

fn find_client(conn: &mut crate::store::DbConnection, id: &str) -> Result<Client, CliError> {
    clients::find(conn, id)?.ok_or_else(|| CliError::Failed(format!("no such client: {id}")))
}

pub fn run(settings: &Settings, command: ClientCommand) -> CliResult {
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
                return Err(CliError::Usage(
                    "a client id must be 1 to 255 printable characters".into(),
                ));
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
                            .map_err(|_| CliError::Usage(format!("unknown grant type: {g}")))
                    })
                    .collect::<Result<Vec<_>, _>>()?
            };
            if public && grant_types.contains(&GrantType::ClientCredentials) {
                return Err(CliError::Usage(
                    "a public client cannot use client_credentials".into(),
                ));
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
        ClientCommand::List { output } => {
            let list = clients::list(conn)?;
            if output.json {
                let views: Vec<ClientView<'_>> = list.iter().map(ClientView::from).collect();
                return print_json(&views);
            }
            for c in list {
                let grants: Vec<&str> = c.grant_types.iter().map(|g| g.as_str()).collect();
                let _ = writeln!(
                    out,
                    "{}\t{}\t{}\t{}",
                    c.id,
                    kind(&c),
                    grants.join(","),
                    c.scopes.join(" ")
                );
            }
        }
        ClientCommand::Show { client_id, output } => {
            let c = find_client(conn, &client_id)?;
            if output.json {
                return print_json(&ClientView::from(&c));
            }
            let grants: Vec<&str> = c.grant_types.iter().map(|g| g.as_str()).collect();
            let or_dash = |list: &[String]| {
                if list.is_empty() {
                    "-".to_owned()
                } else {
                    list.join(" ")
                }
            };
            let _ = writeln!(
                out,
                "client_id: {}\ntype: {}\ngrant_types: {}\nscopes: {}\ndefault_scopes: {}\ncreated_at: {}",
                c.id,
                kind(&c),
                grants.join(" "),
                or_dash(&c.scopes),
                or_dash(&c.default_scopes),
                utc(c.created_at)
            );
        }
        ClientCommand::RotateSecret { client_id } => {
            match management::rotate_client_secret(conn, &client_id)? {
                SecretRotation::Rotated(secret) => {
                    let _ = writeln!(out, "rotated the secret of client {client_id}");
                    let _ = writeln!(out, "client secret (shown once): {}", secret.expose());
                }
                SecretRotation::Public => {
                    return Err(CliError::Failed(format!(
                        "client {client_id} is public: it has no secret to rotate"
                    )));
                }
                SecretRotation::UnknownClient => {
                    return Err(CliError::Failed(format!("no such client: {client_id}")));
                }
            }
        }
        ClientCommand::Remove { client_id } => {
            if !connection::write(conn, |c| clients::delete(c, &client_id, now()))
                .map_err(|e| e.to_string())?
            {
                return Err(CliError::Failed(format!("no such client: {client_id}")));
            }
            let _ = writeln!(out, "removed client {client_id} and revoked its tokens");
        }
    }
    Ok(())
}
