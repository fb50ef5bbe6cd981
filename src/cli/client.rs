//! `tessera client …`: OAuth2 clients; a confidential client's secret is printed once.
use std::io::Write;

use clap::Subcommand;

use crate::app::open_store;
use crate::config::Settings;
use crate::crypto::token;
use crate::domain::{Client, GrantType};
use crate::store::{StoreError, clients, connection};

use super::{CliResult, now};

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
